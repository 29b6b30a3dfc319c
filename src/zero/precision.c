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

/* Elements per piece when a 16-bit buffer is widened into the f32 scratch: large enough
 * that the cpu backend's element-wise kernels go parallel, small enough to stay in L2. */
#define PIECE ((size_t)65536)

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
                            zl_dtype dtype, bool grad_accum_fp32, bool comm_fp32)
{
    if (dtype != ZL_F32 && dtype != ZL_F16 && dtype != ZL_BF16)
        return zl_errorf(ZL_ERR_CONFIG, "the model's precision must be fp32, fp16 or bf16");
    p->device = dev;
    p->model = m;
    p->seed = seed;
    p->dtype = dtype;
    p->grad_dtype = half(p) && !grad_accum_fp32 ? dtype : ZL_F32;
    p->comm_dtype = half(p) && !comm_fp32 ? dtype : ZL_F32;
    m->dtype = dtype;
    if (dev->sim) dev->sim->act_dtype = dtype; /* what the GPU would move */
    return ZL_OK;
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
        (st = alloc_f32(p, &p->scratch, "cast", 2 * PIECE)) != ZL_OK)
        return st;
    for (int l = 0; l < m->num_layers; l++)
        zl_model_bind_layer_grads(m, l, zl_tensor_f32(&p->work_grads[work_of(p, l)]));
    return ZL_OK;
}

void zl_precision_free(zl_precision *p)
{
    zl_tensor_free(&p->scratch);
    for (int i = 1; i >= 0; i--) {
        zl_tensor_free(&p->work_grads[i]);
        zl_tensor_free(&p->work_params[i]);
    }
}

/* ---- vector ops on buffers of any of the three float types -------------------------- */

void zl_precision_scale(zl_precision *p, void *x, zl_dtype t, float s, size_t n)
{
    const zl_ops *ops = p->device->ops;
    if (t == ZL_F32) {
        ops->scale(ops, x, s, n);
        return;
    }
    float *w = zl_tensor_f32(&p->scratch);
    for (size_t i = 0; i < n; i += PIECE) {
        size_t len = n - i < PIECE ? n - i : PIECE;
        ops->cast(ops, w, ZL_F32, zl__at(x, t, i), t, len);
        ops->scale(ops, w, s, len);
        ops->cast(ops, zl__at(x, t, i), t, w, ZL_F32, len);
    }
}

void zl_precision_add(zl_precision *p, void *y, zl_dtype yt, const void *x, zl_dtype xt, size_t n)
{
    const zl_ops *ops = p->device->ops;
    if (yt == ZL_F32 && xt == ZL_F32) {
        ops->axpy(ops, y, 1.0f, x, n);
        return;
    }
    float *wy = zl_tensor_f32(&p->scratch), *wx = wy + PIECE;
    for (size_t i = 0; i < n; i += PIECE) {
        size_t len = n - i < PIECE ? n - i : PIECE;
        float *dst = yt == ZL_F32 ? (float *)y + i : wy;
        const float *src = xt == ZL_F32 ? (const float *)x + i : wx;
        if (yt != ZL_F32) ops->cast(ops, wy, ZL_F32, zl__at(y, yt, i), yt, len);
        if (xt != ZL_F32) ops->cast(ops, wx, ZL_F32, zl__at((void *)x, xt, i), xt, len);
        ops->axpy(ops, dst, 1.0f, src, len);
        if (yt != ZL_F32) ops->cast(ops, zl__at(y, yt, i), yt, wy, ZL_F32, len);
    }
}

double zl_precision_sumsq(zl_precision *p, const void *x, zl_dtype t, size_t n)
{
    const zl_ops *ops = p->device->ops;
    if (t == ZL_F32) return ops->sumsq(ops, x, n);
    float *w = zl_tensor_f32(&p->scratch);
    double sum = 0;
    for (size_t i = 0; i < n; i += PIECE) {
        size_t len = n - i < PIECE ? n - i : PIECE;
        ops->cast(ops, w, ZL_F32, zl__at((void *)x, t, i), t, len);
        sum += ops->sumsq(ops, w, len);
    }
    return sum;
}

bool zl_precision_nonfinite(zl_precision *p, const void *x, zl_dtype t, size_t n)
{
    const zl_ops *ops = p->device->ops;
    if (t == ZL_F32) return ops->nonfinite(ops, x, n);
    float *w = zl_tensor_f32(&p->scratch);
    for (size_t i = 0; i < n; i += PIECE) { /* inf and NaN widen to inf and NaN */
        size_t len = n - i < PIECE ? n - i : PIECE;
        ops->cast(ops, w, ZL_F32, zl__at((void *)x, t, i), t, len);
        if (ops->nonfinite(ops, w, len)) return true;
    }
    return false;
}

void zl_precision_init_values(zl_precision *p, void *dst, zl_dtype t, size_t begin, size_t end)
{
    if (p->device->ops->meta) return; /* shapes only */
    if (t == ZL_F32) {
        zl_model_init_params(p->model, dst, begin, end, p->seed);
        return;
    }
    float *w = zl_tensor_f32(&p->scratch);
    for (size_t i = begin; i < end; i += PIECE) {
        size_t len = end - i < PIECE ? end - i : PIECE;
        zl_model_init_params(p->model, w, i, i + len, p->seed);
        p->device->ops->cast(p->device->ops, zl__at(dst, t, i - begin), t, w, ZL_F32, len);
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
    /* the CPU's widening (a GPU reads the 16-bit values): past a simulated clock */
    float *work = zl_tensor_f32(&p->work_params[work_of(p, l)]);
    zl_device_backend(p->device)->cast(zl_device_backend(p->device), work, ZL_F32, values, p->dtype,
                                       layer_numel(p, l));
    zl_model_bind_layer_params(p->model, l, work);
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

void zl_precision_adam_step(zl_precision *p, zl_adamw *adam, float *weights, void *grads,
                            const zl_param_range *r, int nr, double lr, double beta1,
                            float grad_scale)
{
    zl_adamw_step_lp(adam, weights, grads, p->grad_dtype, r, nr, lr, beta1, grad_scale,
                     p->scratch.data, p->scratch.numel);
}
