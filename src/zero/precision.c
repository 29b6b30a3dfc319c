/* The precision policy (zero/precision.h): the types, the "cast" buffers and the
 * dtype-generic vector helpers. What is stored where, per rank (Ψ parameters, N
 * data-parallel ranks, ZeRO's 2+2+12):
 *   "param"  dtype       2 bytes x (Ψ, or Ψ/N at stage 3)
 *   "grad"   grad_dtype  2 bytes x (Ψ at stages 0-1, Ψ/N at 2-3); 4 with grad_accum fp32
 *   "master" f32         4 bytes x (Ψ at stage 0, Ψ/N at 1-3)   } the 12 bytes of the
 *   "adam.m", "adam.v"   4 + 4 bytes, the same partition         } optimizer partition
 *
 * A layer about to run gets f32 copies of its 16-bit parameters (exact), and its backward
 * writes f32 parameter gradients; when the backward is done they are rounded to dtype
 * (the gradient as a 16-bit GPU kernel would have written it) and added into the gradient
 * store, rounding again to grad_dtype (as param.grad += grad does). Inside the layers
 * every activation and activation gradient is rounded as it is written (model.h). So
 * fp16's 5-bit exponent bites where it would on a GPU: large values overflow to inf, and
 * gradients below 2^-24 flush to zero unless the loss scale lifts them. */
#include "zero/precision.h"

#include "base/log.h"

/* Pieces of the f32 scratch (core/vec.h's, which the policy also uses to widen). */
#define PIECE ZL_VEC_PIECE

static bool half(const zl_precision *p) { return p->dtype != ZL_F32; }

static zl_status alloc_f32(zl_precision *p, zl_tensor *t, const char *tag, size_t numel)
{
    int64_t n = (int64_t)numel;
    return zl_tensor_alloc(t, p->device, tag, ZL_F32, 1, &n);
}

static size_t layer_numel(const zl_precision *p, int l)
{
    size_t b, end;
    zl_model_layer_range(p->model, l, &b, &end);
    return end - b;
}

/* Layer l owns the model's tie (zl_model_tie_*): its work buffers live from its forward to
 * its backward. */
static bool owns_tie(const zl_precision *p, int l) { return zl_model_tie_owned_by(p->model, l) != NULL; }

/* Which of the two work buffers layer l uses: [0] the tie's owner, [1] any other layer. */
static int work_of(const zl_precision *p, int l) { return owns_tie(p, l) ? 0 : 1; }

zl_status zl_precision_init(zl_precision *p, zl_device *dev, zl_model *m, uint64_t seed,
                            const zl_precision_options *o, bool zero_optimizer)
{
    zl_dtype dtype = o->dtype;
    if (dtype != ZL_F32 && dtype != ZL_F16 && dtype != ZL_BF16)
        return zl_errorf(ZL_ERR_CONFIG, "the model's precision must be fp32, fp16 or bf16");
    p->device = dev;
    p->model = m;
    p->seed = seed;
    p->dtype = dtype;
    p->grad_dtype = half(p) && !o->grad_accum_fp32 ? dtype : ZL_F32;
    p->comm_dtype = half(p) && !o->comm_fp32 ? dtype : ZL_F32;
    p->check_grad_overflow = o->check_grad_overflow;
    p->vec = (zl_vec_ctx){.device = dev, .scratch = NULL};
    p->overflow = false;
    p->own_host = NULL;
    m->dtype = dtype;
    if (dev->sim) dev->sim->act_dtype = dtype; /* what the GPU would move */

    /* The loss scale: fp16's scaler (its ZeRO optimizer's, or FP16_Optimizer's without
     * ZeRO), a constant 1 for the others. */
    if (dtype != ZL_F16) return zl_loss_scaler_init(&p->scaler, ZL_SCALER_ZERO, 1.0, 0, 0, 0, false, 0);
    bool defaults = o->loss_scale == 0 && o->initial_scale_power == 0 && o->loss_scale_window == 0 &&
                    o->hysteresis == 0 && o->min_loss_scale == 0;
    zl_scaler_kind kind = zero_optimizer ? ZL_SCALER_ZERO : ZL_SCALER_FP16_OPTIMIZER;
    return defaults ? zl_loss_scaler_init(&p->scaler, kind, 0, 16, 1000, 2, false, 1)
                    : zl_loss_scaler_init(&p->scaler, kind, o->loss_scale, o->initial_scale_power,
                                          o->loss_scale_window, o->hysteresis,
                                          o->consecutive_hysteresis, o->min_loss_scale);
}

zl_status zl_precision_alloc(zl_precision *p)
{
    zl_model *m = p->model;
    if (!half(p)) return ZL_OK;

    /* [0]: the tie's owner (live from its forward to its backward: its members use the
     * tied parameter in between); [1]: every other layer, one at a time. */
    const zl_tie_group *tie = m->num_ties ? &m->ties[0] : NULL;
    size_t largest = 0, tied = tie ? layer_numel(p, tie->owner) : 0;
    for (int l = 0; l < m->num_layers; l++)
        if (!owns_tie(p, l) && layer_numel(p, l) > largest) largest = layer_numel(p, l);
    zl_status st;
    if ((st = alloc_f32(p, &p->work_params[0], "cast", tied)) != ZL_OK ||
        (st = alloc_f32(p, &p->work_params[1], "cast", largest)) != ZL_OK ||
        (st = alloc_f32(p, &p->work_grads[0], "cast", tied)) != ZL_OK ||
        (st = alloc_f32(p, &p->work_grads[1], "cast", largest)) != ZL_OK ||
        (st = alloc_f32(p, &p->scratch, "cast", ZL_VEC_SCRATCH_NUMEL)) != ZL_OK)
        return st;
    p->vec.scratch = zl_tensor_f32(&p->scratch);
    for (int l = 0; l < m->num_layers; l++)
        zl_model_bind_layer_grads(m, l, zl_tensor_f32(&p->work_grads[work_of(p, l)]));
    return ZL_OK;
}

void zl_precision_free(zl_precision *p)
{
    p->vec.scratch = NULL;
    zl_tensor_free(&p->scratch);
    for (int i = 1; i >= 0; i--) {
        zl_tensor_free(&p->work_grads[i]);
        zl_tensor_free(&p->work_params[i]);
    }
}

void zl_precision_init_values(zl_precision *p, void *dst, zl_dtype t, size_t begin, size_t end)
{
    const zl_ops *ops = p->device->ops;
    if (ops->meta) return; /* shapes only */
    /* The values are drawn on the host, in pieces, and sent to the device (whose memory
     * the host cannot write: a GPU's); 16-bit values are rounded there, by its cast. Not
     * training: the transfer is not charged to a simulated link. */
    enum { HOST_PIECE = 4096 };
    float host[HOST_PIECE];
    float *w = t == ZL_F32 ? NULL : zl_tensor_f32(&p->scratch);
    for (size_t i = begin; i < end; i += HOST_PIECE) {
        size_t len = end - i < HOST_PIECE ? end - i : HOST_PIECE;
        zl_model_init_params(p->model, host, i, i + len, p->seed);
        if (t == ZL_F32) {
            zl_device_write(ops, zl__at(dst, t, i - begin), host, len * sizeof(float));
            continue;
        }
        zl_device_write(ops, w, host, len * sizeof(float));
        ops->cast(ops, zl__at(dst, t, i - begin), t, w, ZL_F32, len);
    }
}

/* ---- layers ---------------------------------------------------------------------------- */

zl_status zl_precision_bind_layer(zl_precision *p, int l, void *values, bool backward)
{
    if (!half(p)) {
        zl_model_bind_layer_params(p->model, l, values);
        return ZL_OK;
    }
    /* The tie owner's f32 copy, made at its forward, serves its members (the head) and
     * its own backward (parameters do not change within a micro-step). */
    if (owns_tie(p, l) && backward) return ZL_OK;
    /* The GEMMs read the weights as stored; the other kernels compute in f32, so the
     * layer's other parameters (LayerNorm, biases, the embeddings: 1% of a block) get an
     * exact f32 copy. The CPU's widening (a GPU reads the 16-bit values): past a simulated
     * clock. */
    zl_model *m = p->model;
    zl_model_bind_layer_params16(m, l, values);
    float *work = zl_tensor_f32(&p->work_params[work_of(p, l)]);
    const zl_ops *cpu = zl_device_backend(p->device);
    const zl_layer *lay = &m->layers[l];
    size_t begin = m->params[lay->first_param].offset;
    for (int k = lay->first_param; k < lay->first_param + lay->num_params; k++) {
        const zl_param_info *pi = &m->params[k];
        if (pi->gemm_only) continue;
        size_t off = pi->offset - begin;
        cpu->cast(cpu, work + off, ZL_F32, zl__at(values, p->dtype, off), p->dtype, pi->numel);
    }
    zl_model_bind_layer_params(m, l, work);
    return ZL_OK;
}

/* The work gradient is left zero for the next layer (ops->drain): the work gradients are
 * zero whenever no backward is running (they start zeroed). A tie member's turn (the
 * head's) drains the owner's work gradient too (its share of the tied wte), so that the
 * two contributions are rounded separately, as two 16-bit gradients are added on a GPU
 * (the strategies call this for the owner after each member, zl__zero_flush_grads). */
void zl_precision_flush_grads(zl_precision *p, int l, void *dst, zl_dtype dt)
{
    if (!half(p)) return;
    p->device->ops->drain(p->device->ops, dst, dt, zl_tensor_f32(&p->work_grads[work_of(p, l)]),
                          p->dtype, layer_numel(p, l));
}

void zl_precision_adam_step(zl_precision *p, zl_adamw *adam, float *weights, void *params,
                            void *grads, const zl_param_range *r, int nr, double lr,
                            double beta1, float grad_scale)
{
    zl_adamw_step_lp(adam, weights, grads, p->grad_dtype, params, p->dtype, r, nr, lr, beta1,
                     grad_scale);
}

/* ---- the boundary ------------------------------------------------------------------- */

double zl_precision_own_sumsq(zl_precision *p, const void *own, size_t n)
{
    if (!p->own_host) return zl_precision_sumsq(p, own, p->grad_dtype, n);
    const zl_ops *ops = p->own_host->ops;
    if (p->grad_dtype == ZL_F32) return ops->sumsq(ops, own, n);
    /* The 16-bit values, widened: summed in the pieces zl_vec_sumsq widens a 16-bit
     * buffer in, so that the doubles add in the same order (the same norm, bit for bit). */
    double sum = 0;
    for (size_t i = 0; i < n; i += PIECE)
        sum += ops->sumsq(ops, (const float *)own + i, n - i < PIECE ? n - i : PIECE);
    return sum;
}

/* Whether this rank's share holds an inf or a NaN (widening keeps both). */
static bool own_nonfinite(zl_precision *p, const void *own, size_t n)
{
    if (!p->own_host) return zl_precision_nonfinite(p, own, p->grad_dtype, n);
    return p->own_host->ops->nonfinite(p->own_host->ops, own, n);
}

zl_status zl_precision_check_overflow(zl_precision *p, zl_comm *dp, zl_comm *mp, const void *own,
                                      size_t n, bool *skip)
{
    *skip = false;
    p->overflow = false;
    bool check = p->dtype == ZL_F16 || (p->dtype == ZL_BF16 && p->check_grad_overflow);
    if (!check) return ZL_OK;
    int dp_rank = dp ? dp->rank : 0;
    /* MAX over the data-parallel group: one rank's inf skips everybody's step. */
    double flag = own_nonfinite(p, own, n) ? 1.0 : 0.0;
    if (dp && dp->size > 1) {
        zl_status st = zl_comm_allreduce(dp, &flag, 1, ZL_F64, ZL_REDUCE_MAX);
        if (st != ZL_OK) return st;
    }
    if (mp && mp->size > 1) { /* and over the other pipeline stages */
        zl_status st = zl_comm_allreduce(mp, &flag, 1, ZL_F64, ZL_REDUCE_MAX);
        if (st != ZL_OK) return st;
    }
    p->overflow = flag != 0.0;
    if (p->dtype == ZL_BF16) {
        *skip = p->overflow;
        if (*skip && dp_rank == 0)
            zl_log_info("[zerolab] OVERFLOW! Rank 0 Skipping step: inf/nan gradients under bf16 "
                        "(bf16.check_grad_overflow); no loss scale to reduce");
        return ZL_OK;
    }
    char event[256];
    zl_status st = zl_loss_scaler_update(&p->scaler, p->overflow, skip, event, sizeof event);
    if (event[0] && dp_rank == 0) zl_log_info("[zerolab] %s", event);
    return st;
}
