/* Element-wise vector ops over n values.
 *
 *   residual   out = a + b                (out may alias a or b: each element is read first)
 *   sumsq      sum x^2, accumulated in double, so a global gradient norm over billions of
 *              elements does not stop growing when the f32 sum dwarfs each term
 *   nonfinite  any x is inf or NaN (the fp16 overflow check of the loss scaler)
 *   scale      x *= s
 *   axpy       y += a * x
 *   cast       f32 <-> f16 <-> bf16, round to nearest even (base/dtype.h does the rounding) */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/ref/ref.h"
#include "base/log.h"

void zl__ref_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

double zl__ref_sumsq(const zl_ops *self, const float *x, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

bool zl__ref_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return true;
    return false;
}

void zl__ref_scale(const zl_ops *self, float *x, float s, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void zl__ref_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void zl__ref_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                  zl_dtype src_type, size_t n)
{
    zl_convert(dst, dst_type, src, src_type, n);
}

void zl__ref_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    ZL_ASSERT(t == ZL_F32 || t == ZL_F16 || t == ZL_BF16);
    for (size_t i = 0; i < n; i++)
        x[i] = t == ZL_F16 ? zl_round_f16(x[i]) : t == ZL_BF16 ? zl_round_bf16(x[i]) : x[i];
}

/* y + g where a NaN is chosen explicitly: y's NaN if y is one, else g's, quieted (quiet
 * bit set, sign and payload kept). IEEE 754 leaves the choice between two NaN operands
 * open, x86 keeps the first operand's, and the compiler may swap an addition's operands:
 * the kernels must not inherit that, and cpu (cpu_cast.c) selects the same way. */
static float drain_add(float y, float g)
{
    uint32_t u;
    if (isnan(y) || isnan(g)) {
        float v = isnan(y) ? y : g;
        memcpy(&u, &v, sizeof u);
        u |= 0x00400000u;
        memcpy(&v, &u, sizeof v);
        return v;
    }
    return y + g; /* inf + -inf: the CPU's default NaN, as in cpu */
}

void zl__ref_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float g = x[i], cur;
        zl__ref_round(self, &g, xt, 1);
        zl_convert(&cur, ZL_F32, (char *)y + i * zl_dtype_nbytes(yt), yt, 1);
        cur = drain_add(cur, g);
        zl_convert((char *)y + i * zl_dtype_nbytes(yt), yt, &cur, ZL_F32, 1);
        x[i] = 0.0f;
    }
}
