/* Micro-benchmark of the cpu backend's kernels: the machine's sgemm peak, the GEMM shapes of
 * a GPT-2 small (124M) training step, attention, and the memory-bound kernels, each with 1
 * and 2 OpenMP threads. Not part of `make check`; figures are best-of-n wall times, so other
 * processes on the cores make them lower, never higher.
 *
 * Build (from a configured build directory BUILD holding libzerolab.a):
 *   gcc -std=c11 -O2 -fopenmp -I/work/main/src -I/work/main -IBUILD \
 *       /work/main/bench/zl_bench_kernels.c BUILD/libzerolab.a \
 *       $(pkg-config --libs openblas) -ljansson -lm -o zl_bench_kernels
 * Run: ./zl_bench_kernels [--quick]   (--quick: skips the GPT-2 GEMM table)
 *      ./zl_bench_kernels --gemm [small|gpt2-124m]   (the GEMM policy table, see below)
 *      ./zl_bench_kernels --zero-copy                 (zero and copy policies, see below) */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"

static const zl_ops *ops;

static float *buf(size_t n, float lo, float hi, unsigned seed)
{
    float *x = ops->alloc(ops, n * sizeof(float));
    if (!x) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    /* a cheap deterministic fill: the values only need to be ordinary numbers */
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
    }
    return x;
}

/* best of `reps` timings of `body`, after one warm-up run */
#define BEST_OF(reps, best, body)                                                             \
    do {                                                                                      \
        body;                                                                                 \
        best = 1e30;                                                                          \
        for (int r_ = 0; r_ < (reps); r_++) {                                                 \
            double t_ = omp_get_wtime();                                                      \
            body;                                                                             \
            t_ = omp_get_wtime() - t_;                                                        \
            if (t_ < best) best = t_;                                                         \
        }                                                                                     \
    } while (0)

static void bench_sgemm_peak(int nth)
{
    int n = 2048;
    float *a = buf((size_t)n * n, -1, 1, 1), *b = buf((size_t)n * n, -1, 1, 2);
    float *c = buf((size_t)n * n, -1, 1, 3);
    double best;
    BEST_OF(3, best, ops->gemm(ops, c, a, b, n, n, n, n, n, n, false, false, 1.0f, 0.0f));
    printf("  sgemm %d^3 (NN)                     %2d thr  %8.2f ms  %7.1f GFLOP/s\n", n, nth,
           best * 1e3, 2.0 * n * n * n / best * 1e-9);
    ops->free(ops, a);
    ops->free(ops, b);
    ops->free(ops, c);
}

/* The three GEMMs of a linear layer out (N,OC) = inp (N,IC) W^T, as the model calls them:
 * forward, dinp += dout W, dW += dout^T inp. */
static void bench_linear(const char *name, int N, int IC, int OC, int nth)
{
    float *inp = buf((size_t)N * IC, -1, 1, 4), *w = buf((size_t)OC * IC, -0.1f, 0.1f, 5);
    float *out = buf((size_t)N * OC, -1, 1, 6), *dinp = buf((size_t)N * IC, 0, 0, 7);
    float *dw = buf((size_t)OC * IC, 0, 0, 8);
    double flops = 2.0 * N * IC * OC, t_fwd, t_dinp, t_dw;
    BEST_OF(3, t_fwd, ops->gemm(ops, out, inp, w, N, OC, IC, IC, IC, OC, false, true, 1.0f, 0.0f));
    BEST_OF(3, t_dinp,
            ops->gemm(ops, dinp, out, w, N, IC, OC, OC, IC, IC, false, false, 1.0f, 1.0f));
    BEST_OF(3, t_dw, ops->gemm(ops, dw, out, inp, OC, IC, N, OC, IC, IC, true, false, 1.0f, 1.0f));
    printf("  %-12s N=%d %4d->%-5d      %2d thr  fwd %6.1f  dinp %6.1f  dW %6.1f GFLOP/s\n",
           name, N, IC, OC, nth, flops / t_fwd * 1e-9, flops / t_dinp * 1e-9,
           flops / t_dw * 1e-9);
    ops->free(ops, inp);
    ops->free(ops, w);
    ops->free(ops, out);
    ops->free(ops, dinp);
    ops->free(ops, dw);
}

/* ---- GEMM policy table (--gemm) -----------------------------------------------------
 * Every GEMM of a training step of the bench configs (three per linear layer: forward NT,
 * dinp NN, dweight TN), timed at 2 threads under competing policies:
 *   blas   cblas_sgemm called outside a parallel region: OpenBLAS threads it itself
 *   m/2    C cut into two row blocks (at a multiple of 32), one per thread, each thread
 *          calling cblas_sgemm inside an omp parallel region (so single-threaded)
 *   n/2    the same with two column blocks
 *   ops    ops->gemm, i.e. whatever policy the cpu backend uses
 * plus blas at 1 thread for reference. The policies are timed interleaved (one run of each
 * in turn) so that a slow spell of the machine hits all of them; best and median GFLOP/s. */
enum { POL_BLAS, POL_SPLIT_M, POL_SPLIT_N, POL_OPS, POL_BLAS1, NPOL };
static const char *const k_pol_names[NPOL] = {"blas", "m/2", "n/2", "ops", "blas1"};

typedef struct gemm_shape {
    int m, n, k, lda, ldb, ldc;
    bool ta, tb;
    float beta;
} gemm_shape;

static void sgemm_block(const gemm_shape *s, float *c, const float *a, const float *b, int m0,
                        int m1, int n0, int n1)
{
    const float *ab = s->ta ? a + m0 : a + (size_t)m0 * s->lda;
    const float *bb = s->tb ? b + (size_t)n0 * s->ldb : b + n0;
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                s->tb ? CblasTrans : CblasNoTrans, m1 - m0, n1 - n0, s->k, 1.0f, ab, s->lda, bb,
                s->ldb, s->beta, c + (size_t)m0 * s->ldc + n0, s->ldc);
}

static void run_policy(int pol, const gemm_shape *s, float *c, const float *a, const float *b)
{
    switch (pol) {
    case POL_BLAS:
    case POL_BLAS1:
        sgemm_block(s, c, a, b, 0, s->m, 0, s->n);
        break;
    case POL_SPLIT_M:
    case POL_SPLIT_N:
#pragma omp parallel num_threads(2)
        {
            int tid = omp_get_thread_num();
            int len = pol == POL_SPLIT_M ? s->m : s->n;
            int half = (len / 2 + 31) / 32 * 32;
            half = half < len ? half : len;
            int lo = tid == 0 ? 0 : half, hi = tid == 0 ? half : len;
            if (lo < hi) {
                if (pol == POL_SPLIT_M)
                    sgemm_block(s, c, a, b, lo, hi, 0, s->n);
                else
                    sgemm_block(s, c, a, b, 0, s->m, lo, hi);
            }
        }
        break;
    case POL_OPS:
        ops->gemm(ops, c, a, b, s->m, s->n, s->k, s->lda, s->ldb, s->ldc, s->ta, s->tb, 1.0f,
                  s->beta);
        break;
    }
}

/* Round trip of a cache line between the two threads of a team, in ns. On this VM it flips
 * between ~60 ns and ~350 ns over seconds (the host moving the two vCPUs between cores that
 * share a cache and cores that do not), and OpenBLAS's threaded sgemm, whose threads
 * exchange packed panels and flags, slows down by up to half in the far state. The GEMM
 * table prints it before and after each row so that the rows can be told apart. */
static double core_round_trip_ns(void)
{
    enum { TRIPS = 20000 };
    static _Atomic int flag __attribute__((aligned(64)));
    double t = 0;
    atomic_store(&flag, 0);
#pragma omp parallel num_threads(2)
    {
        int tid = omp_get_thread_num();
#pragma omp barrier
        double t0 = omp_get_wtime();
        for (int i = 0; i < TRIPS; i++) {
            if (tid == 0) {
                atomic_store(&flag, 2 * i + 1);
                while (atomic_load(&flag) != 2 * i + 2) {}
            } else {
                while (atomic_load(&flag) != 2 * i + 1) {}
                atomic_store(&flag, 2 * i + 2);
            }
        }
        if (tid == 0) t = (omp_get_wtime() - t0) / TRIPS * 1e9;
    }
    return t;
}

static double median_of(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void bench_gemm_shape(const char *label, const gemm_shape *s)
{
    size_t na = s->ta ? (size_t)s->k * s->lda : (size_t)s->m * s->lda;
    size_t nb = s->tb ? (size_t)s->n * s->ldb : (size_t)s->k * s->ldb;
    float *a = buf(na, -1, 1, 40), *b = buf(nb, -1, 1, 41);
    float *c = buf((size_t)s->m * s->ldc, -1, 1, 42);
    double flops = 2.0 * s->m * s->n * s->k;
    /* about 0.6 s per policy at ~200 GFLOP/s, 3 to 41 runs */
    int reps = (int)(0.6 * 200e9 / flops);
    reps = reps < 3 ? 3 : reps > 41 ? 41 : reps;
    double times[NPOL][41] = {{0}};
    const char *pols = getenv("ZL_GEMM_POLICIES"); /* e.g. "0,3": a subset, for experiments */
    bool use[NPOL];
    for (int pol = 0; pol < NPOL; pol++) use[pol] = !pols || strchr(pols, '0' + pol);
    /* The 2-thread policies interleaved, then blas1 on its own: changing the OpenMP thread
     * count between calls makes OpenBLAS resize its buffers on the next call, which
     * measured 25% off the threaded calls when alternated with 1-thread ones. */
    omp_set_num_threads(2);
    double rt_before = core_round_trip_ns();
    for (int pol = 0; pol < POL_BLAS1; pol++) /* warm-up: pages, thread pool, packing */
        if (use[pol]) run_policy(pol, s, c, a, b);
    for (int r = 0; r < reps; r++)
        for (int pol = 0; pol < POL_BLAS1; pol++) {
            if (!use[pol]) continue;
            double t = omp_get_wtime();
            run_policy(pol, s, c, a, b);
            times[pol][r] = omp_get_wtime() - t;
        }
    double rt_after = core_round_trip_ns();
    if (use[POL_BLAS1]) {
        omp_set_num_threads(1);
        run_policy(POL_BLAS1, s, c, a, b);
        for (int r = 0; r < reps; r++) {
            double t = omp_get_wtime();
            run_policy(POL_BLAS1, s, c, a, b);
            times[POL_BLAS1][r] = omp_get_wtime() - t;
        }
    }
    omp_set_num_threads(2);
    printf("  %-16s m=%-5d n=%-5d k=%-5d %c%c", label, s->m, s->n, s->k, s->ta ? 'T' : 'N',
           s->tb ? 'T' : 'N');
    for (int pol = 0; pol < NPOL; pol++) {
        if (!use[pol]) {
            printf("  %13s", "-");
            continue;
        }
        double best = 1e30;
        for (int r = 0; r < reps; r++) best = times[pol][r] < best ? times[pol][r] : best;
        double med = median_of(times[pol], reps);
        printf("  %6.1f/%6.1f", flops / best * 1e-9, flops / med * 1e-9);
    }
    printf("  %4.0f/%4.0f\n", rt_before, rt_after);
    ops->free(ops, a);
    ops->free(ops, b);
    ops->free(ops, c);
}

static void bench_gemm_config(const char *config, int N, int C, int V)
{
    struct {
        const char *name;
        int IC, OC;
        float fwd_beta; /* attn.proj and mlp.proj add into the residual stream */
    } layers[] = {
        {"attn.qkv", C, 3 * C, 0}, {"attn.proj", C, C, 1},     {"mlp.fc", C, 4 * C, 0},
        {"mlp.proj", 4 * C, C, 1}, {"lm_head", C, V, 0},
    };
    printf("%s (N=%d, C=%d, V=%d): GFLOP/s best/median, 2 threads except blas1\n", config, N, C,
           V);
    printf("  %-16s %-25s", "layer", "shape");
    for (int pol = 0; pol < NPOL; pol++) printf("  %13s", k_pol_names[pol]);
    printf("  rtrip ns\n");
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        int IC = layers[i].IC, OC = layers[i].OC;
        char label[32];
        gemm_shape fwd = {N, OC, IC, IC, IC, OC, false, true, layers[i].fwd_beta};
        gemm_shape dinp = {N, IC, OC, OC, IC, IC, false, false, 0.0f};
        gemm_shape dw = {OC, IC, N, OC, IC, IC, true, false, 1.0f};
        snprintf(label, sizeof label, "%s fwd", layers[i].name);
        bench_gemm_shape(label, &fwd);
        snprintf(label, sizeof label, "%s dinp", layers[i].name);
        bench_gemm_shape(label, &dinp);
        snprintf(label, sizeof label, "%s dW", layers[i].name);
        bench_gemm_shape(label, &dw);
    }
}

/* ---- zero and copy (--zero-copy) ---------------------------------------------------
 * ops->zero and ops->copy at 2 threads against one memset/memcpy and against two halves
 * (one per thread), on the sizes a training step zeroes and copies (small: 1 MiB residual
 * copies, dqkv 3 MiB, dbig 4 MiB, grads 20 MiB, dlogits 32 MiB; gpt2-124m: 1.5, 4.5, 6,
 * 98 and 474 MiB). Before every timed run the buffers are written by both threads, half
 * each, as the kernels of a step leave them ("warm"), and for "cold" a 64 MiB scratch
 * buffer is written the same way after that, as other kernels run between two zeroes of
 * the same buffer. (Without that preparation, the order of the policies decides the
 * result: a line last written by the other core costs a transfer between the cores, which
 * on this VM is slow when the vCPUs sit on cores that do not share a cache.)
 * GB/s of bytes written (zero) or copied. */
enum { MEM_OPS, MEM_OLD, MEM_ONE, MEM_HALVES, NMEM };
static const char *const k_mem_names[NMEM] = {"ops", "old ops", "1 call", "halves"};

/* what ops->zero and ops->copy did up to 2026-11: 1 MiB slices, schedule(static), parallel
 * from 4 MiB, serial memmove below */
static void mem_old(bool copy, char *dst, const char *src, size_t nbytes)
{
    const size_t slice = (size_t)1 << 20, par = (size_t)4 << 20;
    if (copy && nbytes < par) {
        memmove(dst, src, nbytes);
        return;
    }
    size_t nslices = (nbytes + slice - 1) / slice;
#pragma omp parallel for schedule(static) if (nbytes >= par)
    for (size_t i = 0; i < nslices; i++) {
        size_t off = i * slice, len = nbytes - off < slice ? nbytes - off : slice;
        if (copy)
            memcpy(dst + off, src + off, len);
        else
            memset(dst + off, 0, len);
    }
}

static void mem_run(int pol, bool copy, char *dst, const char *src, size_t nbytes)
{
    if (pol == MEM_OPS) {
        if (copy)
            ops->copy(ops, dst, src, nbytes);
        else
            ops->zero(ops, dst, nbytes);
    } else if (pol == MEM_OLD) {
        mem_old(copy, dst, src, nbytes);
    } else if (pol == MEM_ONE) {
        if (copy)
            memcpy(dst, src, nbytes);
        else
            memset(dst, 0, nbytes);
    } else {
#pragma omp parallel num_threads(2)
        {
            size_t half = (nbytes / 2 + 4095) & ~(size_t)4095;
            half = half < nbytes ? half : nbytes;
            size_t lo = omp_get_thread_num() ? half : 0;
            size_t hi = omp_get_thread_num() ? nbytes : half;
            if (copy)
                memcpy(dst + lo, src + lo, hi - lo);
            else
                memset(dst + lo, 0, hi - lo);
        }
    }
}

static void write_halves(char *p, size_t nbytes, int value)
{
    mem_run(MEM_HALVES, false, p, NULL, nbytes); /* zero, then the value: both by halves */
    if (value) {
#pragma omp parallel num_threads(2)
        {
            size_t half = (nbytes / 2 + 4095) & ~(size_t)4095;
            half = half < nbytes ? half : nbytes;
            size_t lo = omp_get_thread_num() ? half : 0;
            size_t hi = omp_get_thread_num() ? nbytes : half;
            memset(p + lo, value, hi - lo);
        }
    }
}

static void bench_zero_copy_size(bool copy, double mib, char *scratch, size_t nscratch)
{
    size_t nbytes = (size_t)(mib * 1048576.0) / 64 * 64;
    char *dst = ops->alloc(ops, nbytes), *src = copy ? ops->alloc(ops, nbytes) : NULL;
    int reps = mib <= 8 ? 41 : mib <= 40 ? 15 : 5;
    printf("  %-5s %6.1f MiB", copy ? "copy" : "zero", mib);
    for (int cold = 0; cold < 2; cold++) {
        double times[NMEM][41];
        for (int pol = 0; pol < NMEM; pol++) mem_run(pol, copy, dst, src, nbytes);
        for (int r = 0; r < reps; r++)
            for (int pol = 0; pol < NMEM; pol++) {
                write_halves(dst, nbytes, 1);
                if (src) write_halves(src, nbytes, 2);
                if (cold) write_halves(scratch, nscratch, r & 0xff);
                double t = omp_get_wtime();
                mem_run(pol, copy, dst, src, nbytes);
                times[pol][r] = omp_get_wtime() - t;
            }
        for (int pol = 0; pol < NMEM; pol++) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) best = times[pol][r] < best ? times[pol][r] : best;
            double med = median_of(times[pol], reps);
            printf("  %5.1f/%5.1f", nbytes / best * 1e-9, nbytes / med * 1e-9);
        }
        printf(cold ? "\n" : "   |");
    }
    ops->free(ops, dst);
    if (src) ops->free(ops, src);
}

static void bench_zero_copy(void)
{
    size_t nscratch = (size_t)64 << 20;
    char *scratch = ops->alloc(ops, nscratch);
    omp_set_num_threads(2);
    printf("zero and copy at 2 threads, GB/s best/median; warm | cold (see the source)\n");
    printf("  %-16s", "");
    for (int cold = 0; cold < 2; cold++) {
        for (int pol = 0; pol < NMEM; pol++) printf("  %11s", k_mem_names[pol]);
        printf(cold ? "\n" : "   |");
    }
    const double zero_mib[] = {0.25, 0.5, 1, 1.5, 3, 4, 4.5, 6, 20, 32, 98, 474};
    const double copy_mib[] = {0.25, 0.5, 1, 1.5, 4, 32, 98};
    for (size_t i = 0; i < sizeof zero_mib / sizeof zero_mib[0]; i++)
        bench_zero_copy_size(false, zero_mib[i], scratch, nscratch);
    for (size_t i = 0; i < sizeof copy_mib / sizeof copy_mib[0]; i++)
        bench_zero_copy_size(true, copy_mib[i], scratch, nscratch);
    ops->free(ops, scratch);
}

static void bench_attention(int B, int T, int C, int NH, int nth)
{
    size_t nqkv = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T;
    float *qkv = buf(nqkv, -1, 1, 9), *dqkv = buf(nqkv, 0, 0, 10);
    float *out = buf((size_t)B * T * C, 0, 0, 11), *att = buf(natt, 0, 0, 12);
    float *scratch = buf(2 * natt, 0, 0, 13);
    double t_fwd, t_bwd;
    BEST_OF(10, t_fwd, ops->attention_forward(ops, out, att, qkv, B, T, C, NH));
    BEST_OF(10, t_bwd, ops->attention_backward(ops, dqkv, scratch, out, qkv, att, B, T, C, NH));
    /* nominal flops: the full T x T products (4 B T^2 C forward, 8 B T^2 C backward), as
     * flop counters usually count them; the kernel skips the masked third */
    double f_fwd = 4.0 * B * T * T * C, f_bwd = 8.0 * B * T * T * C;
    printf("  attention B=%d T=%d C=%d NH=%d   %2d thr  fwd %6.3f ms  bwd %6.3f ms  "
           "fwd+bwd %6.1f GFLOP/s (nominal)\n",
           B, T, C, NH, nth, t_fwd * 1e3, t_bwd * 1e3, (f_fwd + f_bwd) / (t_fwd + t_bwd) * 1e-9);
    ops->free(ops, qkv);
    ops->free(ops, dqkv);
    ops->free(ops, out);
    ops->free(ops, att);
    ops->free(ops, scratch);
}

static void report_bw(const char *name, double seconds, double bytes, int nth)
{
    printf("  %-36s %2d thr  %8.3f ms  %6.1f GB/s\n", name, nth, seconds * 1e3,
           bytes / seconds * 1e-9);
}

static void bench_memory_bound(int nth)
{
    int N = 512, C = 768, V = 50257;
    double t;
    {
        float *x = buf((size_t)N * C, -2, 2, 14), *w = buf(C, 0.5f, 1.5f, 15);
        float *out = buf((size_t)N * C, 0, 0, 16), *mean = buf(N, 0, 0, 17),
              *rstd = buf(N, 0, 0, 18);
        float *dx = buf((size_t)N * C, 0, 0, 19), *dw = buf(C, 0, 0, 20), *db = buf(C, 0, 0, 21);
        BEST_OF(20, t, ops->layernorm_forward(ops, out, mean, rstd, x, w, w, N, C));
        report_bw("layernorm fwd 512x768", t, 2.0 * N * C * 4, nth);
        BEST_OF(20, t, ops->layernorm_backward(ops, dx, dw, db, out, x, w, mean, rstd, N, C));
        report_bw("layernorm bwd 512x768", t, 4.0 * N * C * 4, nth);
        ops->free(ops, x), ops->free(ops, w), ops->free(ops, out), ops->free(ops, mean),
            ops->free(ops, rstd);
        ops->free(ops, dx), ops->free(ops, dw), ops->free(ops, db);
    }
    {
        size_t n = (size_t)N * 4 * C;
        float *x = buf(n, -4, 4, 22), *y = buf(n, 0, 0, 23), *dx = buf(n, 0, 0, 24);
        BEST_OF(20, t, ops->gelu_forward(ops, y, x, n));
        report_bw("gelu fwd 512x3072", t, 2.0 * n * 4, nth);
        BEST_OF(20, t, ops->gelu_backward(ops, dx, x, y, n));
        report_bw("gelu bwd 512x3072", t, 4.0 * n * 4, nth);
        ops->free(ops, x), ops->free(ops, y), ops->free(ops, dx);
    }
    {
        size_t n = (size_t)N * V;
        float *logits = buf(n, -5, 5, 25), *probs = buf(n, 0, 0, 26), *losses = buf(N, 0, 0, 27);
        float *dlogits = buf(n, 0, 0, 28);
        int32_t *targets = malloc(N * sizeof(int32_t));
        for (int i = 0; i < N; i++) targets[i] = (i * 7919) % V;
        BEST_OF(3, t, ops->crossentropy_forward(ops, losses, probs, logits, targets, N, V));
        report_bw("crossentropy fwd 512x50257", t, 2.0 * n * 4, nth);
        BEST_OF(3, t, ops->crossentropy_backward(ops, dlogits, probs, targets, 1.0f / N, N, V));
        report_bw("crossentropy bwd 512x50257", t, 3.0 * n * 4, nth);
        ops->free(ops, logits), ops->free(ops, probs), ops->free(ops, losses),
            ops->free(ops, dlogits);
        free(targets);
    }
    {
        size_t n = (size_t)32 << 20;
        float *p = buf(n, -1, 1, 29), *m = buf(n, 0, 0, 30), *v = buf(n, 0, 0, 31);
        float *g = buf(n, -1, 1, 32);
        zl_adamw_args args = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                              .weight_decay = 0.1f, .bias_correction1 = 0.1f,
                              .bias_correction2 = 0.001f, .grad_scale = 1.0f,
                              .adamw_mode = true};
        BEST_OF(3, t, ops->adamw(ops, p, m, v, g, ZL_F32, NULL, ZL_F32, n, &args));
        report_bw("adamw 32M params", t, 28.0 * n, nth);
        uint16_t *h = ops->alloc(ops, n * 2), *gh = ops->alloc(ops, n * 2);
        ops->cast(ops, gh, ZL_BF16, g, ZL_F32, n);
        /* mixed precision's fused step: bf16 gradient in, bf16 parameter copy out */
        BEST_OF(3, t, ops->adamw(ops, p, m, v, gh, ZL_BF16, h, ZL_BF16, n, &args));
        report_bw("adamw 32M params, bf16 grad + copy-out", t, 28.0 * n, nth);
        ops->free(ops, gh);
        double s = 0;
        BEST_OF(3, t, s += ops->sumsq(ops, g, n));
        report_bw("sumsq 32M", t, 4.0 * n, nth);
        BEST_OF(3, t, ops->cast(ops, h, ZL_F16, p, ZL_F32, n));
        report_bw("cast f32->f16 32M", t, 6.0 * n, nth);
        BEST_OF(3, t, ops->cast(ops, h, ZL_BF16, p, ZL_F32, n));
        report_bw("cast f32->bf16 32M", t, 6.0 * n, nth);
        ops->free(ops, p), ops->free(ops, m), ops->free(ops, v), ops->free(ops, g),
            ops->free(ops, h);
        if (s < 0) printf("impossible\n"); /* keeps the sums alive */
    }
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    ops = zl_ops_find("cpu");
    if (!ops) {
        fprintf(stderr, "the cpu backend is not built\n");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "--zero-copy")) {
        bench_zero_copy();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--gemm")) {
        const char *only = argc > 2 ? argv[2] : "";
        omp_set_num_threads(2);
        bench_sgemm_peak(2);
        omp_set_num_threads(1);
        bench_sgemm_peak(1);
        if (!*only || !strcmp(only, "small")) bench_gemm_config("small", 1024, 256, 8192);
        if (!*only || !strcmp(only, "gpt2-124m")) bench_gemm_config("gpt2-124m", 512, 768, 50257);
        return 0;
    }
    int threads[] = {1, 2};
    printf("sgemm peak\n");
    for (int i = 0; i < 2; i++) {
        omp_set_num_threads(threads[i]);
        bench_sgemm_peak(threads[i]);
    }
    if (!quick) {
        printf("GPT-2 small linear layers, B*T = 512 rows\n");
        for (int i = 0; i < 2; i++) {
            omp_set_num_threads(threads[i]);
            bench_linear("attn.qkv", 512, 768, 2304, threads[i]);
            bench_linear("attn.proj", 512, 768, 768, threads[i]);
            bench_linear("mlp.fc", 512, 768, 3072, threads[i]);
            bench_linear("mlp.proj", 512, 3072, 768, threads[i]);
            bench_linear("lm_head", 512, 768, 50257, threads[i]);
        }
    }
    printf("attention\n");
    for (int i = 0; i < 2; i++) {
        omp_set_num_threads(threads[i]);
        bench_attention(4, 128, 768, 12, threads[i]);
    }
    printf("memory-bound kernels\n");
    for (int i = 0; i < 2; i++) {
        omp_set_num_threads(threads[i]);
        bench_memory_bound(threads[i]);
    }
    return 0;
}
