/* Element-wise vector ops (semantics in backends/ref/ref_vector.c): residual add, sum of
 * squares in double, the inf/NaN scan, scale and axpy. All are one streaming pass, cut into
 * chunks that the threads share.
 *
 * The two reductions are deterministic for a given thread count: each thread reduces its
 * static share of the chunks into its own slot and the slots are combined in thread order
 * (an OpenMP reduction clause may combine them in any order). */
#include <math.h>

#include "backends/cpu/cpu.h"

#define NCHUNKS(n) (((n) + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK)
#define CHUNK_LEN(n, i) ((n) - (i) < ZL_CPU_CHUNK ? (n) - (i) : ZL_CPU_CHUNK)

ZL_CPU_VECTOR static void residual_chunk(float *out, const float *a, const float *b, size_t n)
{
    /* out may alias a or b: element i is read before it is written, in any vector width */
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void zl__cpu_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                              size_t n)
{
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < NCHUNKS(n); c++) {
        size_t i = c * ZL_CPU_CHUNK;
        residual_chunk(out + i, a + i, b + i, CHUNK_LEN(n, i));
    }
}

ZL_CPU_VECTOR static double sumsq_chunk(const float *x, size_t n)
{
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

double zl__cpu_sumsq(const zl_ops *self, const float *x, size_t n)
{
    double partial[ZL_CPU_MAX_THREADS];
    int maxth = omp_get_max_threads(), nth = 1;
    if (maxth > ZL_CPU_MAX_THREADS) maxth = ZL_CPU_MAX_THREADS;
#pragma omp parallel num_threads(maxth) if (n >= ZL_CPU_PAR_MIN)
    {
        int tid = omp_get_thread_num();
        double sum = 0.0;
#pragma omp for schedule(static)
        for (size_t c = 0; c < NCHUNKS(n); c++) {
            size_t i = c * ZL_CPU_CHUNK;
            sum += sumsq_chunk(x + i, CHUNK_LEN(n, i));
        }
        partial[tid] = sum;
        if (tid == 0) nth = omp_get_num_threads();
    }
    double total = 0.0;
    for (int t = 0; t < nth; t++) total += partial[t];
    return total;
}

/* inf and NaN are the floats whose exponent bits are all ones */
ZL_CPU_VECTOR static int nonfinite_chunk(const float *x, size_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad;
}

bool zl__cpu_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    int bad = 0;
    /* (an or-reduction is exact in any order) */
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < NCHUNKS(n); c++) {
        size_t i = c * ZL_CPU_CHUNK;
        bad |= nonfinite_chunk(x + i, CHUNK_LEN(n, i));
    }
    return bad != 0;
}

ZL_CPU_VECTOR static void scale_chunk(float *x, float s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void zl__cpu_scale(const zl_ops *self, float *x, float s, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < NCHUNKS(n); c++) {
        size_t i = c * ZL_CPU_CHUNK;
        scale_chunk(x + i, s, CHUNK_LEN(n, i));
    }
}

ZL_CPU_VECTOR static void axpy_chunk(float *y, float a, const float *x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void zl__cpu_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < NCHUNKS(n); c++) {
        size_t i = c * ZL_CPU_CHUNK;
        axpy_chunk(y + i, a, x + i, CHUNK_LEN(n, i));
    }
}
