/* Dense algebra: gemm is OpenBLAS's sgemm (row-major, the leading dimensions passed
 * through) or, per shape, oneDNN's (cpu_gemm_f32.c) where that was measured faster at the
 * shape's first use (cpu_gemm_choice.c, ZL_GEMM_F32); the bias of a linear layer is a
 * broadcast add and a column sum.
 *
 * oneDNN is a candidate only for products of ZL_CPU_GEMM_F32_MIN_MACS (cpu.h) multiply-adds
 * or more, called outside a parallel region (the attention kernels' per-head products stay
 * on OpenBLAS, single-threaded on the calling thread; the choice cache is not thread-safe).
 *
 * sgemm threads itself over the shared OpenMP pool when called outside a parallel region,
 * and runs single-threaded inside one (the OpenMP build of OpenBLAS checks
 * omp_in_parallel), which is what the attention kernels rely on. With beta == 0 sgemm
 * writes C without reading it, so NaN in a fresh output is ignored as ops.h requires.
 *
 * Threads: with more than one, gemm cuts C into one block of rows per thread (at a
 * multiple of SPLIT_ALIGN rows), and each thread calls sgemm on its block inside a
 * parallel region, i.e. single-threaded. Why: OpenBLAS's own threads exchange packed
 * panels and synchronize on flags inside the call, so their speed depends on how fast
 * the two cores see each other's writes, and on this VM that flips over seconds between
 * ~55 ns and ~350 ns a cache-line round trip (the host moving the vCPUs between cores that
 * share a cache and cores that do not). Row blocks share only the read-only inputs and
 * meet once, at the end; the price is that every thread packs all of op(B) itself.
 * Measured at 2 threads, the GEMMs of a training step (bench/zl_bench_kernels.c --gemm,
 * 13 runs, GFLOP/s median; 2-thread peak 205-212, 1 thread 104-107):
 *                                                 near cores          far cores
 *                                               OpenBLAS   rows    OpenBLAS   rows
 *   small, N=1024 C=256: NN dinp (k 256-8192)   201-208  198-207   140-159  184-200
 *                        TN dW                  189-202  195-205   148-171  174-198
 *                        NT fwd                 193-211  196-209   155-176  178-200
 *   gpt2-124m, N=512 C=768: NN dinp             202-208  200-207   173-191  191-195
 *                        TN dW                  206-213  206-211   178-207  193-208
 *                        NT fwd, C 768 wide     199-211  190-206       176  186-194
 *                        NT fwd, C >= 2304 wide 200-205  196-203   191-198  192-194
 * Rows win big on the far cores and lose at most 2-3% on the near ones, except for NT
 * products on a wide C with few rows (gpt2's forward qkv, fc and lm_head: B^T of 1.8-39M
 * floats, which every thread would pack whole), left to OpenBLAS. In a small training step
 * at 2 threads this took the far-core figure from 4216-4303 to 5117-5194 tokens/s (gemm
 * 207-215 -> 169-172 ms per step, profiled); near cores: the same within noise (fastest
 * step 188-190 ms both ways).
 * Small products (below SPLIT_MIN_MACS, or fewer than SPLIT_MIN_ROWS rows per thread)
 * are left to sgemm too, which decides itself whether to thread them. */
#include <cblas.h>

#include "backends/cpu/cpu.h"
#include "base/log.h"

/* block boundaries: whole cache lines of C, and aligned panels of A for sgemm's packing */
#define SPLIT_ALIGN 32
#define SPLIT_MIN_ROWS 64
#define SPLIT_MIN_MACS (1 << 20)
/* NT with C wider than WIDE_N and fewer than WIDE_MIN_ROWS rows per thread: OpenBLAS */
#define WIDE_N 1024
#define WIDE_MIN_ROWS 512

/* rows [m0, m1) of C = alpha op(A) op(B) + beta C: rows of A, or columns if trans_a */
static void sgemm_rows(float *c, const float *a, const float *b, int m0, int m1, int n, int k,
                       int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha,
                       float beta)
{
    const float *a0 = trans_a ? a + m0 : a + (size_t)m0 * lda;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m1 - m0, n, k, alpha, a0, lda, b, ldb, beta,
                c + (size_t)m0 * ldc, ldc);
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

void zl__cpu_gemm_openblas(const zl_ops *self, float *c, const float *a, const float *b, int m,
                           int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b,
                           float alpha, float beta)
{
    if (m <= 0 || n <= 0) return;
    int blocks = row_blocks(m, n, k, trans_b);
    if (blocks == 1) {
        sgemm_rows(c, a, b, 0, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
        return;
    }
#pragma omp parallel num_threads(blocks)
    {
        /* the team may be smaller than asked for: cut by the threads there are */
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        int per = ((m + nth - 1) / nth + SPLIT_ALIGN - 1) / SPLIT_ALIGN * SPLIT_ALIGN;
        int m0 = tid * per < m ? tid * per : m, m1 = m0 + per < m ? m0 + per : m;
        if (m0 < m1)
            sgemm_rows(c, a, b, m0, m1, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    }
}

void zl__cpu_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                  int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    if (m <= 0 || n <= 0) return;
    /* cblas would print to stderr and return on these; they are caller bugs */
    ZL_ASSERT(k >= 0);
    ZL_ASSERT(lda >= (trans_a ? m : (k > 1 ? k : 1)));
    ZL_ASSERT(ldb >= (trans_b ? (k > 1 ? k : 1) : n));
    ZL_ASSERT(ldc >= n);
    if ((double)m * n * k >= ZL_CPU_GEMM_F32_MIN_MACS && !omp_in_parallel() &&
        zl__cpu_gemm_f32_use_onednn(self, c, a, b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha,
                                    beta)) {
        if (zl__cpu_gemm_f32_onednn(c, a, b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha,
                                    beta))
            return;
        static bool warned; /* declined: not built in (an injected choice), or it failed */
        if (zl__cpu_gemm_f32_onednn_usable() && !warned) {
            warned = true;
            zl_log_warn("oneDNN's sgemm failed for a (%d x %d x %d) product; "
                        "falling back to OpenBLAS", m, n, k);
        }
    }
    zl__cpu_gemm_openblas(self, c, a, b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
}

ZL_CPU_VECTOR static void add_row(float *out, const float *bias, int OC)
{
#pragma omp simd
    for (int o = 0; o < OC; o++) out[o] += bias[o];
}

void zl__cpu_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
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

void zl__cpu_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    int nblocks = (OC + 63) / 64;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= ZL_CPU_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * 64, o1 = o0 + 64 < OC ? o0 + 64 : OC;
        colsum_block(dbias, dout, N, OC, o0, o1);
    }
}
