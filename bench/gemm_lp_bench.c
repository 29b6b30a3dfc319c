/* sgemm vs bf16 gemm_lp on the GEMMs of a GPT-2 small (124M) training step: `make
 * bench-gemm`. For each shape, sgemm (zl_ops_cpu.gemm) and the bf16 product on oneDNN
 * (zl__cpu_gemm_lp_onednn: the conversion of A and B to bf16 included, the size rules of
 * gemm_lp bypassed) are timed in turn, rep after rep, so that a slow spell of the machine
 * hits both; the table gives the median GFLOP/s of each, their ratio, and which of the two
 * gemm_lp(ZL_BF16) picks for that shape (its rules in backends/cpu/cpu_gemm_lp.c), and
 * "others": the share of the machine's CPU time (all CPUs, /proc/stat, hypervisor steal
 * included) that went to anything but this process while the shape was timed. Above a few
 * percent the row is not a measurement: on this VM a busy neighbour halves sgemm's rate
 * even at one thread, with this process still getting 100% of its CPU.
 *
 * The shapes are those of src/model (linear.c, block.c, head.c) with N = B*T rows, C = 768
 * and V = 50257: forward out = inp W^T (NT), input gradient dinp = dout W (NN), weight
 * gradient dW += dout^T inp (TN), beta as the model passes it. The operands hold
 * bf16-exact values, as in bf16 training.
 *
 * Usage: gemm_lp_bench [--quick] [--threads 1,2] [--rows 1024,4096] [--reps 5] [--only S]
 *   --quick: N = 256 only, 2 reps, no lm-head (checks the harness).
 *   --only S: the shapes whose name contains S ("dW", "lm-head", ...).
 * Threads are set in-process with omp_set_num_threads, as `zerolab train --threads` does. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/cpu/cpu.h"
#include "zl_build.h"

#ifdef ZL_HAVE_ONEDNN
#include <dnnl.h>
#endif

#define C_ 768
#define V_ 50257
#define MAX_LIST 8

typedef struct shape {
    const char *name;
    int m, n, k;
    bool ta, tb;
    float beta;
} shape;

static const zl_ops *ops = &zl_ops_cpu;

static float *buf(size_t n, unsigned seed)
{
    float *x = ops->alloc(ops, n * sizeof(float));
    if (!x) {
        fprintf(stderr, "gemm_lp_bench: out of memory (%zu floats)\n", n);
        exit(1);
    }
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
    ops->round(ops, x, ZL_BF16, n); /* bf16-exact, as gemm_lp requires */
    return x;
}

/* CPU time used by this process (all its threads) */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* busy CPU time of the whole machine, all CPUs (/proc/stat: user nice system idle iowait
 * irq softirq steal), steal included: time the hypervisor gave to someone else */
static double machine_busy_seconds(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got != 8) return 0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One shape: returns false if oneDNN could not run it. */
static long ncpu = 1;

static bool bench_shape(const shape *s, int N, int nth, int reps)
{
    int m = s->m, n = s->n, k = s->k;
    int lda = s->ta ? m : k, ldb = s->tb ? k : n, ldc = n;
    float *a = buf((size_t)m * k, 1), *b = buf((size_t)k * n, 2), *c = buf((size_t)m * n, 3);
    double t_s[64], t_b[64];
    /* warm-up: pages touched, the primitive built and cached, the workspace grown */
    ops->gemm(ops, c, a, b, m, n, k, lda, ldb, ldc, s->ta, s->tb, 1.0f, s->beta);
    bool ok = zl__cpu_gemm_lp_onednn(c, a, b, ZL_F32, m, n, k, lda, ldb, ldc, s->ta, s->tb, 1.0f,
                                     s->beta);
    double w0 = omp_get_wtime(), c0 = cpu_seconds(), m0 = machine_busy_seconds();
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        ops->gemm(ops, c, a, b, m, n, k, lda, ldb, ldc, s->ta, s->tb, 1.0f, s->beta);
        double t1 = omp_get_wtime();
        if (ok)
            zl__cpu_gemm_lp_onednn(c, a, b, ZL_F32, m, n, k, lda, ldb, ldc, s->ta, s->tb, 1.0f, s->beta);
        double t2 = omp_get_wtime();
        t_s[r] = t1 - t0;
        t_b[r] = t2 - t1;
    }
    /* the share of the machine's CPU time others had (other processes, steal) */
    double others = (machine_busy_seconds() - m0 - (cpu_seconds() - c0)) /
                    ((omp_get_wtime() - w0) * ncpu);
    long before = zl__cpu_gemm_lp_onednn_calls();
    ops->gemm_lp(ops, c, a, b, ZL_F32, ZL_BF16, m, n, k, lda, ldb, ldc, s->ta, s->tb, 1.0f, s->beta);
    bool policy_bf16 = zl__cpu_gemm_lp_onednn_calls() > before;
    double gf = 2.0 * m * n * k * 1e-9;
    double gs = gf / median(t_s, reps), gb = ok ? gf / median(t_b, reps) : 0;
    char dims[48];
    snprintf(dims, sizeof dims, "%d x %d x %d", m, n, k);
    printf("%3d %5d  %-14s %-22s %7.1f  %7.1f  %5.2fx  %-7s %4.0f%%\n", nth, N, s->name, dims, gs,
           gb, ok ? gb / gs : 0.0, policy_bf16 ? "bf16" : "sgemm", others > 0 ? 100 * others : 0.0);
    fflush(stdout);
    ops->free(ops, a);
    ops->free(ops, b);
    ops->free(ops, c);
    return ok;
}

static int parse_list(const char *arg, int *out)
{
    int n = 0;
    for (char *end; *arg && n < MAX_LIST; arg = *end ? end + 1 : end) {
        out[n] = (int)strtol(arg, &end, 10);
        if (end == arg || out[n] <= 0) {
            fprintf(stderr, "gemm_lp_bench: bad list element in '%s'\n", arg);
            exit(2);
        }
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    int threads[MAX_LIST] = {1, 2}, nthreads = 2, rows[MAX_LIST] = {1024, 4096}, nrows = 2;
    int reps = 5;
    bool quick = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
            rows[0] = 256, nrows = 1, reps = 2;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = parse_list(argv[++i], threads);
        } else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            nrows = parse_list(argv[++i], rows);
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1 || reps > 64) reps = 5;
        } else {
            fprintf(stderr, "usage: %s [--quick] [--threads 1,2] [--rows 1024,4096] [--reps 5] [--only S]\n",
                    argv[0]);
            return 2;
        }
    }
#ifdef ZL_HAVE_ONEDNN
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d, effective ISA 0x%x (avx512_core_bf16 = 0x%x)\n", v->major, v->minor,
           v->patch, (unsigned)dnnl_get_effective_cpu_isa(), (unsigned)dnnl_cpu_isa_avx512_core_bf16);
#else
    printf("built without oneDNN: the bf16 column is empty\n");
#endif
    printf("GFLOP/s, median of %d; bf16 = oneDNN matmul including the conversion of A and B;\n"
           "gemm_lp: what gemm_lp(ZL_BF16) runs for the shape; others: CPU time of other processes\n\n",
           reps);
    printf("thr     N  op             m x n x k                sgemm     bf16  ratio  gemm_lp  others\n");
    ncpu = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    bool all_ok = true;
    for (int ti = 0; ti < nthreads; ti++) {
        omp_set_num_threads(threads[ti]);
        int nth = omp_get_max_threads();
        for (int ri = 0; ri < nrows; ri++) {
            int N = rows[ri], C = C_;
            shape shapes[] = {
                {"fwd qkv", N, 3 * C, C, false, true, 0.0f},
                {"fwd attproj", N, C, C, false, true, 1.0f},
                {"fwd fc", N, 4 * C, C, false, true, 0.0f},
                {"fwd fcproj", N, C, 4 * C, false, true, 1.0f},
                {"fwd lm-head", N, V_, C, false, true, 0.0f},
                {"dinp qkv", N, C, 3 * C, false, false, 0.0f},
                {"dinp attproj", N, C, C, false, false, 0.0f},
                {"dinp fc", N, C, 4 * C, false, false, 0.0f},
                {"dinp fcproj", N, 4 * C, C, false, false, 0.0f},
                {"dinp lm-head", N, C, V_, false, false, 0.0f},
                {"dW qkv", 3 * C, C, N, true, false, 1.0f},
                {"dW attproj", C, C, N, true, false, 1.0f},
                {"dW fc", 4 * C, C, N, true, false, 1.0f},
                {"dW fcproj", C, 4 * C, N, true, false, 1.0f},
                {"dW lm-head", V_, C, N, true, false, 1.0f},
            };
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
                if (quick && strstr(shapes[i].name, "lm-head")) continue;
                if (only && !strstr(shapes[i].name, only)) continue;
                all_ok &= bench_shape(&shapes[i], N, nth, reps);
            }
        }
    }
    if (!all_ok) printf("\n(oneDNN's bf16 matmul unavailable here: bf16 column 0)\n");
    return 0;
}
