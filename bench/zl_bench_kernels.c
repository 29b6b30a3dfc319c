/* Micro-benchmark of the cpu backend's kernels: the machine's sgemm peak, the GEMM shapes of
 * a GPT-2 small (124M) training step, attention, and the memory-bound kernels, each with 1
 * and 2 OpenMP threads. Not part of `make check`; figures are best-of-n wall times, so other
 * processes on the cores make them lower, never higher.
 *
 * Build (from a configured build directory BUILD holding libzerolab.a):
 *   gcc -std=c11 -O2 -fopenmp -I/work/main/src -I/work/main -IBUILD \
 *       /work/main/bench/zl_bench_kernels.c BUILD/libzerolab.a \
 *       $(pkg-config --libs openblas) -ljansson -lm -o zl_bench_kernels
 * Run: ./zl_bench_kernels [--quick]   (--quick: skips the GPT-2 GEMM table) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"

static const zl_ops *ops;

static float *buf(size_t n, float lo, float hi, unsigned seed)
{
    float *x = ops->alloc(n * sizeof(float));
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
    BEST_OF(3, best, ops->gemm(c, a, b, n, n, n, n, n, n, false, false, 1.0f, 0.0f));
    printf("  sgemm %d^3 (NN)                     %2d thr  %8.2f ms  %7.1f GFLOP/s\n", n, nth,
           best * 1e3, 2.0 * n * n * n / best * 1e-9);
    ops->free(a);
    ops->free(b);
    ops->free(c);
}

/* The three GEMMs of a linear layer out (N,OC) = inp (N,IC) W^T, as the model calls them:
 * forward, dinp += dout W, dW += dout^T inp. */
static void bench_linear(const char *name, int N, int IC, int OC, int nth)
{
    float *inp = buf((size_t)N * IC, -1, 1, 4), *w = buf((size_t)OC * IC, -0.1f, 0.1f, 5);
    float *out = buf((size_t)N * OC, -1, 1, 6), *dinp = buf((size_t)N * IC, 0, 0, 7);
    float *dw = buf((size_t)OC * IC, 0, 0, 8);
    double flops = 2.0 * N * IC * OC, t_fwd, t_dinp, t_dw;
    BEST_OF(3, t_fwd, ops->gemm(out, inp, w, N, OC, IC, IC, IC, OC, false, true, 1.0f, 0.0f));
    BEST_OF(3, t_dinp, ops->gemm(dinp, out, w, N, IC, OC, OC, IC, IC, false, false, 1.0f, 1.0f));
    BEST_OF(3, t_dw, ops->gemm(dw, out, inp, OC, IC, N, OC, IC, IC, true, false, 1.0f, 1.0f));
    printf("  %-12s N=%d %4d->%-5d      %2d thr  fwd %6.1f  dinp %6.1f  dW %6.1f GFLOP/s\n",
           name, N, IC, OC, nth, flops / t_fwd * 1e-9, flops / t_dinp * 1e-9,
           flops / t_dw * 1e-9);
    ops->free(inp);
    ops->free(w);
    ops->free(out);
    ops->free(dinp);
    ops->free(dw);
}

static void bench_attention(int B, int T, int C, int NH, int nth)
{
    size_t nqkv = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T;
    float *qkv = buf(nqkv, -1, 1, 9), *dqkv = buf(nqkv, 0, 0, 10);
    float *out = buf((size_t)B * T * C, 0, 0, 11), *att = buf(natt, 0, 0, 12);
    float *scratch = buf(2 * natt, 0, 0, 13);
    double t_fwd, t_bwd;
    BEST_OF(10, t_fwd, ops->attention_forward(out, att, qkv, B, T, C, NH));
    BEST_OF(10, t_bwd, ops->attention_backward(dqkv, scratch, out, qkv, att, B, T, C, NH));
    /* nominal flops: the full T x T products (4 B T^2 C forward, 8 B T^2 C backward), as
     * flop counters usually count them; the kernel skips the masked third */
    double f_fwd = 4.0 * B * T * T * C, f_bwd = 8.0 * B * T * T * C;
    printf("  attention B=%d T=%d C=%d NH=%d   %2d thr  fwd %6.3f ms  bwd %6.3f ms  "
           "fwd+bwd %6.1f GFLOP/s (nominal)\n",
           B, T, C, NH, nth, t_fwd * 1e3, t_bwd * 1e3, (f_fwd + f_bwd) / (t_fwd + t_bwd) * 1e-9);
    ops->free(qkv);
    ops->free(dqkv);
    ops->free(out);
    ops->free(att);
    ops->free(scratch);
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
        BEST_OF(20, t, ops->layernorm_forward(out, mean, rstd, x, w, w, N, C));
        report_bw("layernorm fwd 512x768", t, 2.0 * N * C * 4, nth);
        BEST_OF(20, t, ops->layernorm_backward(dx, dw, db, out, x, w, mean, rstd, N, C));
        report_bw("layernorm bwd 512x768", t, 4.0 * N * C * 4, nth);
        ops->free(x), ops->free(w), ops->free(out), ops->free(mean), ops->free(rstd);
        ops->free(dx), ops->free(dw), ops->free(db);
    }
    {
        size_t n = (size_t)N * 4 * C;
        float *x = buf(n, -4, 4, 22), *y = buf(n, 0, 0, 23), *dx = buf(n, 0, 0, 24);
        BEST_OF(20, t, ops->gelu_forward(y, x, n));
        report_bw("gelu fwd 512x3072", t, 2.0 * n * 4, nth);
        BEST_OF(20, t, ops->gelu_backward(dx, x, y, n));
        report_bw("gelu bwd 512x3072", t, 4.0 * n * 4, nth);
        ops->free(x), ops->free(y), ops->free(dx);
    }
    {
        size_t n = (size_t)N * V;
        float *logits = buf(n, -5, 5, 25), *probs = buf(n, 0, 0, 26), *losses = buf(N, 0, 0, 27);
        float *dlogits = buf(n, 0, 0, 28);
        int32_t *targets = malloc(N * sizeof(int32_t));
        for (int i = 0; i < N; i++) targets[i] = (i * 7919) % V;
        BEST_OF(3, t, ops->crossentropy_forward(losses, probs, logits, targets, N, V));
        report_bw("crossentropy fwd 512x50257", t, 2.0 * n * 4, nth);
        BEST_OF(3, t, ops->crossentropy_backward(dlogits, probs, targets, 1.0f / N, N, V));
        report_bw("crossentropy bwd 512x50257", t, 3.0 * n * 4, nth);
        ops->free(logits), ops->free(probs), ops->free(losses), ops->free(dlogits);
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
        BEST_OF(3, t, ops->adamw(p, m, v, g, n, &args));
        report_bw("adamw 32M params", t, 28.0 * n, nth);
        double s = 0;
        BEST_OF(3, t, s += ops->sumsq(g, n));
        report_bw("sumsq 32M", t, 4.0 * n, nth);
        uint16_t *h = ops->alloc(n * 2);
        BEST_OF(3, t, ops->cast(h, ZL_F16, p, ZL_F32, n));
        report_bw("cast f32->f16 32M", t, 6.0 * n, nth);
        BEST_OF(3, t, ops->cast(h, ZL_BF16, p, ZL_F32, n));
        report_bw("cast f32->bf16 32M", t, 6.0 * n, nth);
        ops->free(p), ops->free(m), ops->free(v), ops->free(g), ops->free(h);
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
