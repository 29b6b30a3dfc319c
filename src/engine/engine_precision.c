/* Mixed precision in the engine: the precision policy the ZeRO strategies call
 * (zero/precision.h: types, "cast" buffers, dtype-generic vector ops) and fp16's loss
 * scale.
 *
 * The loss scale (fp16 only; DeepSpeed never scales bf16) multiplies the gradient that
 * starts backward. At the accumulation boundary, DeepSpeed's ZeRO order:
 *   1. inf/nan in this rank's share of the reduced gradients, agreed across the ranks
 *      (fp16 always; bf16 with check_grad_overflow);
 *   2. the scaler's update; an overflowing step is skipped: gradients zeroed, the LR
 *      schedule not stepped, skipped_steps counted;
 *   3. the global norm of the scaled gradients, divided by the scale;
 *   4. the optimizer on the fp32 master partition with gradients multiplied by
 *      1 / (scale * max(1, (norm + 1e-6) / clip)), i.e. unscaled and clipped in one pass;
 *   5. the master partition rounded into the 16-bit parameters, and allgathered. */
#include <math.h>
#include <string.h>

#include "core/log.h"
#include "engine/engine_internal.h"

#define dp_size zl__engine_dp_size
#define dp_rank zl__engine_dp_rank

zl_status zl__engine_precision_init(zl_engine *e)
{
    zl_engine_precision *p = &e->opt.precision;
    zl_status st = zl_precision_init(&e->prec, e->device, &e->model, e->opt.seed, p->dtype,
                                     p->grad_accum_fp32, p->comm_fp32);
    if (st != ZL_OK) return st;
    e->dtype = e->prec.dtype;
    e->grad_dtype = e->prec.grad_dtype;
    e->comm_dtype = e->prec.comm_dtype;

    /* The loss scale: fp16's scaler (its ZeRO optimizer's, or FP16_Optimizer's without
     * ZeRO), a constant 1 for the others. */
    if (e->dtype == ZL_F16) {
        bool defaults = p->loss_scale == 0 && p->initial_scale_power == 0 &&
                        p->loss_scale_window == 0 && p->hysteresis == 0 && p->min_loss_scale == 0;
        zl_scaler_kind kind = e->zero.strategy->zero_optimizer ? ZL_SCALER_ZERO : ZL_SCALER_FP16_OPTIMIZER;
        st = defaults ? zl_loss_scaler_init(&e->scaler, kind, 0, 16, 1000, 2, false, 1)
                      : zl_loss_scaler_init(&e->scaler, kind, p->loss_scale, p->initial_scale_power,
                                            p->loss_scale_window, p->hysteresis,
                                            p->consecutive_hysteresis, p->min_loss_scale);
    } else {
        st = zl_loss_scaler_init(&e->scaler, ZL_SCALER_ZERO, 1.0, 0, 0, 0, false, 0);
    }
    return st != ZL_OK ? st : zl_precision_alloc(&e->prec);
}

void zl__engine_precision_free(zl_engine *e) { zl_precision_free(&e->prec); }

/* ---- the boundary ------------------------------------------------------------------- */

/* Steps 1-2 of the file comment. *skip: this step must not update. */
zl_status zl__engine_check_overflow(zl_engine *e, const void *own, size_t n, bool *skip)
{
    *skip = false;
    e->overflow = false;
    bool check = e->dtype == ZL_F16 || (e->dtype == ZL_BF16 && e->opt.precision.check_grad_overflow);
    if (!check) return ZL_OK;
    /* MAX over the data-parallel group: one rank's inf skips everybody's step. */
    double flag = zl_precision_nonfinite(&e->prec, own, e->grad_dtype, n) ? 1.0 : 0.0;
    if (dp_size(e) > 1) {
        zl_status st = zl_comm_allreduce(e->opt.dp, &flag, 1, ZL_F64, ZL_REDUCE_MAX);
        if (st != ZL_OK) return st;
    }
    e->overflow = flag != 0.0;
    if (e->dtype == ZL_BF16) {
        *skip = e->overflow;
        if (*skip && dp_rank(e) == 0)
            zl_log_info("[zerolab] OVERFLOW! Rank 0 Skipping step: inf/nan gradients under bf16 "
                        "(bf16.check_grad_overflow); no loss scale to reduce");
        return ZL_OK;
    }
    char event[256];
    zl_status st = zl_loss_scaler_update(&e->scaler, e->overflow, skip, event, sizeof event);
    if (event[0] && dp_rank(e) == 0) zl_log_info("[zerolab] %s", event);
    return st;
}

double zl_engine_loss_scale(const zl_engine *e) { return e->scaler.cur_scale; }
