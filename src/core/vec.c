/* Element-wise helpers over f32/f16/bf16 buffers (core/vec.h). */
#include "core/vec.h"

#define PIECE ZL_VEC_PIECE

/* The elements converted at a time through the scratch buffer: ZL_VEC_PIECE, or all of
 * them on the meta backend, whose pointers are never read (a plan of 175B parameters
 * would otherwise spend seconds walking a vector that is not there; a simulated clock
 * charges consecutive pieces as one kernel either way). */
static size_t piece(const zl_ops *ops, size_t n) { return ops->meta && n ? n : PIECE; }

void zl_vec_scale(const zl_vec_ctx *v, void *x, zl_dtype t, float s, size_t n)
{
    const zl_ops *ops = v->device->ops;
    if (t == ZL_F32) {
        ops->scale(ops, x, s, n);
        return;
    }
    float *w = v->scratch;
    size_t step = piece(ops, n);
    for (size_t i = 0; i < n; i += step) {
        size_t len = n - i < step ? n - i : step;
        ops->cast(ops, w, ZL_F32, zl__at(x, t, i), t, len);
        ops->scale(ops, w, s, len);
        ops->cast(ops, zl__at(x, t, i), t, w, ZL_F32, len);
    }
}

void zl_vec_add(const zl_vec_ctx *v, void *y, zl_dtype yt, const void *x, zl_dtype xt, size_t n)
{
    const zl_ops *ops = v->device->ops;
    if (yt == ZL_F32 && xt == ZL_F32) {
        ops->axpy(ops, y, 1.0f, x, n);
        return;
    }
    float *wy = v->scratch, *wx = wy + PIECE;
    size_t step = piece(ops, n);
    for (size_t i = 0; i < n; i += step) {
        size_t len = n - i < step ? n - i : step;
        float *dst = yt == ZL_F32 ? (float *)y + i : wy;
        const float *src = xt == ZL_F32 ? (const float *)x + i : wx;
        if (yt != ZL_F32) ops->cast(ops, wy, ZL_F32, zl__at(y, yt, i), yt, len);
        if (xt != ZL_F32) ops->cast(ops, wx, ZL_F32, zl__at((void *)x, xt, i), xt, len);
        ops->axpy(ops, dst, 1.0f, src, len);
        if (yt != ZL_F32) ops->cast(ops, zl__at(y, yt, i), yt, wy, ZL_F32, len);
    }
}

double zl_vec_sumsq(const zl_vec_ctx *v, const void *x, zl_dtype t, size_t n)
{
    const zl_ops *ops = v->device->ops;
    if (t == ZL_F32) return ops->sumsq(ops, x, n);
    float *w = v->scratch;
    double sum = 0;
    size_t step = piece(ops, n);
    for (size_t i = 0; i < n; i += step) {
        size_t len = n - i < step ? n - i : step;
        ops->cast(ops, w, ZL_F32, zl__at((void *)x, t, i), t, len);
        sum += ops->sumsq(ops, w, len);
    }
    return sum;
}

bool zl_vec_nonfinite(const zl_vec_ctx *v, const void *x, zl_dtype t, size_t n)
{
    const zl_ops *ops = v->device->ops;
    if (t == ZL_F32) return ops->nonfinite(ops, x, n);
    float *w = v->scratch;
    size_t step = piece(ops, n);
    for (size_t i = 0; i < n; i += step) { /* inf and NaN widen to inf and NaN */
        size_t len = n - i < step ? n - i : step;
        ops->cast(ops, w, ZL_F32, zl__at((void *)x, t, i), t, len);
        if (ops->nonfinite(ops, w, len)) return true;
    }
    return false;
}
