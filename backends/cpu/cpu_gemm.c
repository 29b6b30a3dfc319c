/* Dense algebra: gemm is OpenBLAS's sgemm (row-major, the leading dimensions passed
 * through); the bias of a linear layer is a broadcast add and a column sum.
 *
 * sgemm threads itself over the shared OpenMP pool when called outside a parallel region,
 * and runs single-threaded inside one (the OpenMP build of OpenBLAS checks
 * omp_in_parallel), which is what the attention kernels rely on. With beta == 0 sgemm
 * writes C without reading it, so NaN in a fresh output is ignored as ops.h requires.
 *
 * Threads: GEMMs with op(B) = B (NN, TN: the backward dinp and dweight products) are cut
 * here into one block of C rows per thread, each thread calling sgemm single-threaded on
 * its block; the others (NT: every forward linear) go to OpenBLAS's own threading. Why:
 * OpenBLAS's threads share packed panels and synchronize on flags inside the call, so its
 * speed depends on how fast the two cores see each other's writes, and on this VM that
 * flips over seconds between ~55 ns and ~320 ns a cache-line round trip (the host moving
 * the vCPUs between cores that share a cache and cores that do not). Row blocks share
 * nothing but the read-only inputs and meet once, at the end.
 * Measured at 2 threads (bench/zl_bench_kernels.c --gemm; the shapes of a training step,
 * 4-7 runs; GFLOP/s, median of runs; 2-thread peak 205-212, 1-thread 104-107):
 *                                        near cores           far cores
 *                                      blas  rows  cols     blas  rows  cols
 *   NN dinp   1024x256 k=768..8192      ...
 * so: rows for NN and TN ... ; NT stays with OpenBLAS, which is as fast or up to 5% faster
 * there (its threads share the packing of B, which rows would each redo).
 * Blocks start at multiples of SPLIT_ALIGN rows or columns (whole cache lines of C, and
 * aligned panels of A or B for sgemm's packing), and only when each thread gets at least
 * SPLIT_MIN of them and the product is large enough to pay for waking the team. */
#include <cblas.h>

#include "backends/cpu/cpu.h"
#include "core/log.h"

#define SPLIT_ALIGN 32
#define SPLIT_MIN_ROWS 64
#define WIDE_N 1024
#define WIDE_MIN_ROWS 512
#define SPLIT_MIN_MACS (1 << 20)

/* the product restricted to rows [m0, m1) and columns [n0, n1) of C */
static void sgemm_block(float *c, const float *a, const float *b, int m0, int m1, int n0, int n1,
                        int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b,
                        float alpha, float beta)
{
    const float *ab = trans_a ? a + m0 : a + (size_t)m0 * lda;
    const float *bb = trans_b ? b + (size_t)n0 * ldb : b + n0;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m1 - m0, n1 - n0, k, alpha, ab, lda, bb, ldb,
                beta, c + (size_t)m0 * ldc + n0, ldc);
}

/* How many row blocks to cut C into: 1 (leave it to sgemm) unless the split pays. */
static int row_blocks(int m, int n, int k, bool trans_b)
{
    if (omp_in_parallel()) return 1;
    int nth = omp_get_max_threads();
    if (nth < 2 || (double)m * n * k < SPLIT_MIN_MACS) return 1;
    if (trans_b && n > WIDE_N && m < WIDE_MIN_ROWS * nth) return 1;
    int fit = m / SPLIT_MIN_ROWS;
    return fit < nth ? (fit < 2 ? 1 : fit) : nth;
}

void zl__cpu_gemm(float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb,
                  int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    if (m <= 0 || n <= 0) return;
    /* cblas would print to stderr and return on these; they are caller bugs */
    ZL_ASSERT(k >= 0);
    ZL_ASSERT(lda >= (trans_a ? m : (k > 1 ? k : 1)));
    ZL_ASSERT(ldb >= (trans_b ? (k > 1 ? k : 1) : n));
    ZL_ASSERT(ldc >= n);
    int blocks = row_blocks(m, n, k, trans_b);
    if (blocks == 1) {
        sgemm_block(c, a, b, 0, m, 0, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
        return;
    }
#pragma omp parallel num_threads(blocks)
    {
        /* the team may be smaller than asked for: cut by the threads there are */
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        int per = ((m + nth - 1) / nth + SPLIT_ALIGN - 1) / SPLIT_ALIGN * SPLIT_ALIGN;
        int m0 = tid * per < m ? tid * per : m, m1 = m0 + per < m ? m0 + per : m;
        if (m0 < m1)
            sgemm_block(c, a, b, m0, m1, 0, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    }
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
