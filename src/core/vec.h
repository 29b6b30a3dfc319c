/* Element-wise vector helpers over buffers of any of the three float types (f32, f16,
 * bf16): scale, add, sum of squares, the inf/nan scan. The kernels (backends/ops.h)
 * compute in f32 only, so a 16-bit buffer is widened piecewise into an f32 scratch,
 * worked on there and, where written, rounded back: the CPU's stand-in for a 16-bit
 * kernel. Below ZeRO and the precision policy (zero/precision.h), which call them with
 * their device and scratch; nothing here knows a model or a stage. */
#ifndef ZL_CORE_VEC_H
#define ZL_CORE_VEC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/dtype.h"
#include "core/device.h"

/* Elements per piece when a 16-bit buffer is widened into the f32 scratch: large enough
 * that the cpu backend's element-wise kernels go parallel, small enough to stay in L2. */
#define ZL_VEC_PIECE ((size_t)65536)
/* f32 elements of scratch the helpers need (two pieces: add widens both operands). */
#define ZL_VEC_SCRATCH_NUMEL (2 * ZL_VEC_PIECE)

/* Where the helpers run: the device whose kernels (device->ops, timed when simulated)
 * they call, and ZL_VEC_SCRATCH_NUMEL f32 elements of scratch on it; scratch may be NULL
 * when every buffer passed is f32. */
typedef struct zl_vec_ctx {
    zl_device *device;
    float *scratch;
} zl_vec_ctx;

/* &base[i] for elements of type t. */
static inline void *zl__at(void *base, zl_dtype t, size_t i)
{
    return (char *)base + i * zl_dtype_nbytes(t);
}

/* x (n, type t) *= s */
void zl_vec_scale(const zl_vec_ctx *v, void *x, zl_dtype t, float s, size_t n);
/* y (n, type yt) += x (n, type xt), each sum rounded to yt */
void zl_vec_add(const zl_vec_ctx *v, void *y, zl_dtype yt, const void *x, zl_dtype xt, size_t n);
/* sum of x[i]^2 over x (n, type t), accumulated in double */
double zl_vec_sumsq(const zl_vec_ctx *v, const void *x, zl_dtype t, size_t n);
/* whether x (n, type t) holds an inf or a NaN */
bool zl_vec_nonfinite(const zl_vec_ctx *v, const void *x, zl_dtype t, size_t n);

#endif
