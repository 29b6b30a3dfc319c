/* Dense algebra: gemm is OpenBLAS's sgemm (row-major, the leading dimensions passed
 * through); the bias of a linear layer is a broadcast add and a column sum.
 *
 * sgemm threads itself over the shared OpenMP pool when called outside a parallel region,
 * and runs single-threaded inside one (the OpenMP build of OpenBLAS checks
 * omp_in_parallel), which is what the attention kernels rely on. With beta == 0 sgemm
 * writes C without reading it, so NaN in a fresh output is ignored as ops.h requires. */
#include <cblas.h>

#include "backends/cpu/cpu.h"
#include "core/log.h"

void zl__cpu_gemm(float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb,
                  int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    if (m <= 0 || n <= 0) return;
    /* cblas would print to stderr and return on these; they are caller bugs */
    ZL_ASSERT(k >= 0);
    ZL_ASSERT(lda >= (trans_a ? m : (k > 1 ? k : 1)));
    ZL_ASSERT(ldb >= (trans_b ? (k > 1 ? k : 1) : n));
    ZL_ASSERT(ldc >= n);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

ZL_CPU_VECTOR static void add_row(float *out, const float *bias, int OC)
{
#pragma omp simd
    for (int o = 0; o < OC; o++) out[o] += bias[o];
}

void zl__cpu_bias_forward(float *out, const float *bias, int N, int OC)
{
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= ZL_CPU_PAR_MIN)
    for (int i = 0; i < N; i++) add_row(out + (size_t)i * OC, bias, OC);
}

/* dbias[o0..o1) += column sums over all N rows: one thread owns the columns, and the
 * running sums of a 64-column block stay in registers while the rows stream by. */
ZL_CPU_VECTOR static void colsum_block(float *dbias, const float *dout, int N, int OC, int o0,
                                       int o1)
{
    float acc[64];
    int w = o1 - o0;
    for (int o = 0; o < w; o++) acc[o] = 0.0f;
    for (int i = 0; i < N; i++) {
        const float *row = dout + (size_t)i * OC + o0;
#pragma omp simd
        for (int o = 0; o < w; o++) acc[o] += row[o];
    }
    for (int o = 0; o < w; o++) dbias[o0 + o] += acc[o];
}

void zl__cpu_bias_backward(float *dbias, const float *dout, int N, int OC)
{
    int nblocks = (OC + 63) / 64;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= ZL_CPU_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * 64, o1 = o0 + 64 < OC ? o0 + 64 : OC;
        colsum_block(dbias, dout, N, OC, o0, o1);
    }
}
