/* Adam / AdamW over a flat fp32 parameter buffer, or over one shard of it.
 *
 * The optimizer owns the two moment buffers, exp_avg (m) and exp_avg_sq (v), of `numel`
 * fp32 elements each, allocated on the device under the tags "adam.m" and "adam.v" (so
 * the ledger shows the 8 bytes per parameter the ZeRO paper counts for Adam's state),
 * and the step count t. Parameters and gradients are passed to each step: a ZeRO rank
 * passes pointers to its own partition (numel = partition size), the master weights of
 * mixed precision or the fp32 params themselves, and ranges relative to that start
 * (see zl_param_ranges_clip).
 *
 * A step runs the device's ops->adamw kernel once per range (contiguous ranges with the
 * same decay flag merged into one call; the kernel reads 16-bit gradients and writes the
 * 16-bit parameter copy itself, so a step is one pass over memory), with
 *   t += 1;  bias corrections 1 - beta1^t and 1 - beta2^t (1 when bias_correction is off),
 * using the beta1 of this step (OneCycle cycles it, as torch and DeepSpeed do: the bias
 * correction uses the current beta, not a product of past ones), weight_decay only on
 * ranges marked decay, and decoupled decay when params.adam_w_mode (see optimizer.h). */
#ifndef ZL_OPTIM_ADAMW_H
#define ZL_OPTIM_ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "config/optim_settings.h"
#include "core/device.h"
#include "core/tensor.h"
#include "optim/param_range.h"

typedef struct zl_adamw {
    zl_device *device;
    zl_optimizer_params p; /* p.beta2 may be changed between steps (OneCycle pins it to
                            * 0.99 while cycling beta1: zl_lr_schedule.momentum_beta2) */
    size_t numel;
    int64_t step;          /* optimizer steps taken; the next step is t = step + 1 */
    /* Not NULL: every kernel call of a step adds the sum of squares of the gradients it
     * used, (g * grad_scale)^2 in double, here (zl_adamw_args.sumsq): the gradient norm
     * from the step's own pass. Set and read by the caller around a step. */
    double *sumsq;
    zl_tensor m, v;        /* (numel) fp32, tags "adam.m", "adam.v" */
} zl_adamw;

/* Allocate zeroed moments for `numel` elements (0 is allowed: an empty shard). On failure
 * (ZL_ERR_OOM with the ledger's report) nothing stays allocated. */
zl_status zl_adamw_init(zl_adamw *opt, zl_device *dev, size_t numel, const zl_optimizer_params *p);

/* One optimizer step over `params` and `grads` (numel elements each, device memory).
 * ranges: where to step (offset + numel <= opt->numel); elements outside every range are
 * left alone, moments included. lr and beta1 are this step's (from the schedule; pass
 * opt->p.lr / opt->p.beta1 for constant ones). grad_scale multiplies every gradient
 * before use: 1/loss_scale times the clipping coefficient. */
void zl_adamw_step(zl_adamw *opt, float *params, const float *grads, const zl_param_range *ranges,
                   int nranges, double lr, double beta1, float grad_scale);

/* The same step with gradients stored as grad_type (ZL_F32, ZL_F16 or ZL_BF16): mixed
 * precision's fp32 master weights (`params`) and moments stepped with 16-bit gradients,
 * read as such by the kernel. When param_out is not NULL (numel elements of param_type,
 * indexed as params), each stepped element is also rounded into it in the same pass:
 * the 16-bit parameters. Elements outside every range are left alone there too. */
void zl_adamw_step_lp(zl_adamw *opt, float *params, const void *grads, zl_dtype grad_type,
                      void *param_out, zl_dtype param_type, const zl_param_range *ranges,
                      int nranges, double lr, double beta1, float grad_scale);

/* Free the moments through the device; safe on a zeroed or already destroyed struct. */
void zl_adamw_destroy(zl_adamw *opt);

/* State for checkpoints (torch's names: step, exp_avg, exp_avg_sq). */
static inline int64_t zl_adamw_step_count(const zl_adamw *opt) { return opt->step; }
static inline void zl_adamw_set_step_count(zl_adamw *opt, int64_t step) { opt->step = step; }
static inline float *zl_adamw_exp_avg(const zl_adamw *opt) { return zl_tensor_f32(&opt->m); }
static inline float *zl_adamw_exp_avg_sq(const zl_adamw *opt) { return zl_tensor_f32(&opt->v); }

#endif
