/* CPU Adam against the machine's memory bandwidth: `make bench-adam` (bench/adam.sh runs
 * this, then torch.optim.AdamW on the same problem, and prints the ratios).
 *
 * Adam on N fp32 parameters (default 100M) moves 28 bytes per parameter: master, m, v
 * read and written (24) and the gradient read (4). The yardstick is an in-place
 * read-modify-write pass over the same four arrays that moves the same 28 bytes and does
 * almost no arithmetic (m = m*s + g, v = v*s + g, p = p*s + m): what the memory system
 * gives a streaming update, measured in this process, on these pages, right before the
 * kernel. Rows:
 *   bandwidth        the read-modify-write pass, GB/s at 28 B/param
 *   adamw fp32       ops->adamw, f32 gradient, no copy-out (fp32 training)
 *   adamw bf16 fused bf16 gradient in, bf16 parameter copy-out: mixed precision's step,
 *                    24 + 2 + 2 = 28 B/param as well
 * each the best of --reps runs, at every thread count of --threads. The machine is shared:
 * the figures are as noisy as its neighbours make them; best-of keeps the quiet runs.
 *
 * Usage: adam_bench [--numel N] [--reps R] [--threads 1,2] [--isa scalar|sse|avx|avx512]
 *                   [--quick]
 * Output: one line per row and thread count, and lines "RESULT <row> <threads> <ms>" for
 * bench/adam.sh. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cpu/cpu.h"

static const zl_ops *ops = &zl_ops_cpu;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xalloc(size_t nbytes)
{
    void *p = ops->alloc(ops, nbytes);
    if (!p) {
        fprintf(stderr, "adam_bench: out of memory (%zu bytes); try --numel with less\n", nbytes);
        exit(1);
    }
    return p;
}

/* First touch with the kernels' static schedule, so each thread's pages are its own. */
static void fill(float *x, size_t n, float lo, float hi, unsigned seed)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        unsigned s = (unsigned)i * 2654435761u + seed * 40503u + 1u;
        s ^= s >> 13, s *= 1664525u, s ^= s >> 16;
        x[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
    }
}

/* The yardstick: 16 bytes read, 12 written per element, in place. */
ZL_CPU_VECTOR static void rmw_chunk(float *p, float *m, float *v, const float *g, size_t n,
                                    float s)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float mi = m[i] * s + g[i];
        float vi = v[i] * s + g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * s + mi;
    }
}

static void rmw(float *p, float *m, float *v, const float *g, size_t n, float s)
{
    size_t nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i = c * ZL_CPU_CHUNK;
        rmw_chunk(p + i, m + i, v + i, g + i, n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK, s);
    }
}

static int parse_list(const char *s, int *out, int max)
{
    int k = 0;
    while (*s && k < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0) return 0;
        out[k++] = (int)v;
        s = *end == ',' ? end + 1 : end;
    }
    return k;
}

int main(int argc, char **argv)
{
    size_t n = 100u * 1000 * 1000;
    int reps = 5, threads[8] = {1, 2}, nthreads = 2, isa = -1;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--numel") && a + 1 < argc) n = (size_t)strtod(argv[++a], NULL);
        else if (!strcmp(argv[a], "--reps") && a + 1 < argc) reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--threads") && a + 1 < argc) {
            if (!(nthreads = parse_list(argv[++a], threads, 8))) {
                fprintf(stderr, "adam_bench: --threads wants a list like 1,2\n");
                return 2;
            }
        } else if (!strcmp(argv[a], "--isa") && a + 1 < argc) {
            const char *name = argv[++a];
            static const char *const names[] = {"scalar", "sse", "avx", "avx512"};
            for (int l = 0; l < 4; l++)
                if (!strcmp(name, names[l])) isa = l;
            if (isa < 0 || !zl__cpu_adamw_force_isa(isa)) {
                fprintf(stderr, "adam_bench: --isa %s: unknown, or this CPU lacks it "
                                "(scalar, sse, avx, avx512)\n", name);
                return 2;
            }
        } else if (!strcmp(argv[a], "--quick")) {
            n = 4u * 1000 * 1000, reps = 2;
        } else {
            fprintf(stderr, "usage: adam_bench [--numel N] [--reps R] [--threads 1,2] "
                            "[--isa scalar|sse|avx|avx512] [--quick]\n");
            return 2;
        }
    }
    if (reps < 1 || n < 1) {
        fprintf(stderr, "adam_bench: --reps and --numel must be positive\n");
        return 2;
    }

    float *p = xalloc(n * 4), *m = xalloc(n * 4), *v = xalloc(n * 4), *g = xalloc(n * 4);
    uint16_t *g16 = xalloc(n * 2), *out16 = xalloc(n * 2);
    fill(p, n, -1, 1, 1), fill(m, n, -0.01f, 0.01f, 2), fill(v, n, 0, 1e-4f, 3);
    fill(g, n, -1, 1, 4);
    ops->cast(ops, g16, ZL_BF16, g, ZL_F32, n);
    ops->cast(ops, out16, ZL_BF16, p, ZL_F32, n);
    zl_adamw_args args = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                          .weight_decay = 0.01f, .bias_correction1 = 0.1f,
                          .bias_correction2 = 0.001f, .grad_scale = 1.0f, .adamw_mode = true};

    const double bytes = 28.0 * (double)n;
    printf("CPU Adam, %zu fp32 parameters (%.0f MB moved per step at 28 B/param), kernel path "
           "%s, best of %d\n", n, bytes / 1e6, zl__cpu_adamw_isa_name(zl__cpu_adamw_isa()), reps);
    printf("%-18s %7s %10s %8s %12s\n", "", "threads", "ms", "GB/s", "of bandwidth");
    for (int t = 0; t < nthreads; t++) {
        omp_set_num_threads(threads[t]);
        double best[3] = {1e30, 1e30, 1e30};
        /* interleaved, rep after rep, so that a slow spell of the machine hits all three */
        for (int r = 0; r < reps + 1; r++) {
            double t0 = now();
            rmw(p, m, v, g, n, 0.5f); /* s = 0.5 keeps the values bounded */
            double t1 = now();
            ops->adamw(ops, p, m, v, g, ZL_F32, NULL, ZL_F32, n, &args);
            double t2 = now();
            ops->adamw(ops, p, m, v, g16, ZL_BF16, out16, ZL_BF16, n, &args);
            double t3 = now();
            if (r == 0) continue; /* warm-up: page faults, thread start */
            double d[3] = {t1 - t0, t2 - t1, t3 - t2};
            for (int k = 0; k < 3; k++)
                if (d[k] < best[k]) best[k] = d[k];
        }
        static const char *const rows[3] = {"bandwidth", "adamw fp32", "adamw bf16 fused"};
        static const char *const keys[3] = {"bandwidth", "adamw_fp32", "adamw_bf16"};
        for (int k = 0; k < 3; k++) {
            printf("%-18s %7d %10.1f %8.2f", rows[k], threads[t], best[k] * 1e3, bytes / best[k] / 1e9);
            if (k) printf(" %11.0f%%", 100.0 * best[0] / best[k]);
            printf("\n");
        }
        for (int k = 0; k < 3; k++) printf("RESULT %s %d %.3f\n", keys[k], threads[t], best[k] * 1e3);
    }
    volatile float sink = p[n / 2] + out16[n / 3]; /* keeps the results alive */
    (void)sink;
    ops->free(ops, p), ops->free(ops, m), ops->free(ops, v), ops->free(ops, g);
    ops->free(ops, g16), ops->free(ops, out16);
    return 0;
}
