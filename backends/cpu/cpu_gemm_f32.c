/* The fp32 product on oneDNN: dnnl_sgemm, the other candidate for each fp32 shape beside
 * OpenBLAS's (cpu_gemm.c decides per shape through cpu_gemm_choice.c).
 *
 * dnnl_sgemm is row-major with BLAS's arguments (transposes, leading dimensions, alpha,
 * beta), so ops.h's gemm maps onto it one to one: no copies, no primitive to build or
 * cache (its JIT kernels are generated once, inside oneDNN). Against oneDNN's f32 matmul
 * primitive (cached per shape, as cpu_gemm_lp.c does for bf16) on gpt2-124m's shapes at
 * 2 threads it was as fast or faster on most shapes (docs/benchmarks.md, "GEMM paths"),
 * hence the simpler one. It threads itself over omp_get_max_threads() OpenMP threads,
 * the shared pool; callers only use it outside parallel regions. With beta = 0 it writes
 * C without reading it (NaN in C ignored, as ops.h requires: tested).
 *
 * Without oneDNN (configure --without-onednn) it declines, and OpenBLAS runs everything. */
#include "backends/cpu/cpu.h"
#include "zl_build.h"

#ifdef ZL_HAVE_ONEDNN
#include <dnnl.h>

static long calls; /* products run by oneDNN (the tests check the path is taken) */

long zl__cpu_gemm_f32_onednn_calls(void) { return calls; }
bool zl__cpu_gemm_f32_onednn_usable(void) { return true; }

bool zl__cpu_gemm_f32_onednn(float *c, const float *a, const float *b, int m, int n, int k,
                             int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha,
                             float beta)
{
    if (m <= 0 || n <= 0 || k <= 0) return false;
    if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta,
                   c, ldc) != dnnl_success)
        return false;
    calls++;
    return true;
}
#else
long zl__cpu_gemm_f32_onednn_calls(void) { return 0; }
bool zl__cpu_gemm_f32_onednn_usable(void) { return false; }

bool zl__cpu_gemm_f32_onednn(float *c, const float *a, const float *b, int m, int n, int k,
                             int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha,
                             float beta)
{
    return false;
}
#endif
