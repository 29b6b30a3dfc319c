/* Which path runs a bf16 product: oneDNN's bf16 matmul, or sgemm on the f32 values, per
 * shape, measured on this CPU.
 *
 * Whether the CPU's bf16 hardware beats sgemm depends on the CPU and on the shape. On the
 * AMD Zen 5 machine the project had, oneDNN's avx512_core_bf16 matmul ran at 1.4-2.0x
 * sgemm's rate on GPT-2's shapes; on an Emerald Rapids Xeon, whose bf16 dot products are
 * slower than its f32 FMAs, at 0.50-0.74x; a rule keyed on "the ISA has AVX512-BF16"
 * is right on one and wrong on the other. So the first time a product of a given shape
 * (m, n, k, transposes, thread count) comes, both paths run it into a scratch C, each
 * timed as the best of LP_TRIALS runs after one warm-up (which also builds oneDNN's
 * primitive), and the faster one is kept for the rest of the process: the choice is
 * stable within a run, and a training step has a dozen shapes, so the measurement is a
 * one-time cost of a few products each. Either path multiplies the same bf16 values
 * exactly and sums in f32; only the summation order differs, far inside the
 * mixed-precision tolerance. With --verbose (debug logging) each choice is printed.
 *
 * Products below LP_MIN_MACS (cpu_gemm_lp.c) take sgemm without a measurement, and fp16
 * always does: these CPUs have no fp16 dot products that oneDNN would use.
 *
 * Each process decides by its own clock, so two ranks may choose differently for a shape
 * whose paths are close; replicas stay equal regardless (they apply one reduced gradient),
 * but a test that compares the ranks' arithmetic bit for bit pins the path
 * (ZL_GEMM_LP=onednn in make check; the measurement is tested with injected timings). */
#include <math.h>
#include <stdlib.h>

#include "backends/cpu/cpu.h"
#include "base/log.h"

#define LP_CHOICES 256 /* shapes remembered; past that the oldest are measured again */
#define LP_TRIALS 2

typedef struct lp_choice {
    int m, n, k, nthr;
    bool ta, tb;
    bool onednn;
    double t_onednn, t_sgemm;
} lp_choice;

typedef enum { MODE_UNREAD, MODE_MEASURE, MODE_ONEDNN, MODE_SGEMM } lp_mode;

static struct {
    lp_mode mode;
    lp_choice c[LP_CHOICES];
    int n, next;
    zl_gemm_lp_timer timer;
    float *scratch;
    size_t cap;
} s;

bool zl_gemm_lp_prefer_onednn(double t_onednn, double t_sgemm) { return t_onednn < t_sgemm; }

void zl__cpu_gemm_lp_set_timer(zl_gemm_lp_timer timer) { s.timer = timer; }

void zl__cpu_gemm_lp_forget(void)
{
    s.n = s.next = 0;
    s.mode = MODE_UNREAD; /* ZL_GEMM_LP is read again */
}

static lp_mode mode(void)
{
    if (s.mode != MODE_UNREAD) return s.mode;
    const char *e = getenv("ZL_GEMM_LP");
    s.mode = MODE_MEASURE;
    if (e && !strcmp(e, "onednn")) s.mode = MODE_ONEDNN;
    else if (e && !strcmp(e, "sgemm")) s.mode = MODE_SGEMM;
    else if (e && *e && strcmp(e, "measure"))
        zl_log_warn("ZL_GEMM_LP=%s is not one of measure, onednn, sgemm: measuring", e);
    return s.mode;
}

static lp_choice *find(int m, int n, int k, bool ta, bool tb, int nthr)
{
    for (int i = 0; i < s.n; i++) {
        lp_choice *c = &s.c[i];
        if (c->m == m && c->n == n && c->k == k && c->ta == ta && c->tb == tb && c->nthr == nthr)
            return c;
    }
    return NULL;
}

int zl__cpu_gemm_lp_choice(int m, int n, int k, bool trans_a, bool trans_b, int nthr,
                           double *t_onednn, double *t_sgemm)
{
    const lp_choice *c = find(m, n, k, trans_a, trans_b, nthr);
    if (!c) return -1;
    if (t_onednn) *t_onednn = c->t_onednn;
    if (t_sgemm) *t_sgemm = c->t_sgemm;
    return c->onednn;
}

/* Seconds for one product on a path: the best of LP_TRIALS after a warm-up, into the
 * scratch (beta 0: C is not read). INFINITY if oneDNN declines. */
static double time_path(const zl_ops *self, bool onednn, const float *a, const void *b,
                        zl_dtype bt, int m, int n, int k, int lda, int ldb, bool ta, bool tb,
                        float alpha)
{
    double best = INFINITY;
    for (int t = 0; t <= LP_TRIALS; t++) {
        double t0 = omp_get_wtime();
        if (onednn) {
            if (!zl__cpu_gemm_lp_onednn(s.scratch, a, b, bt, m, n, k, lda, ldb, n, ta, tb, alpha,
                                        0.0f))
                return INFINITY;
        } else { /* with the widening of a 16-bit B: part of what this path costs */
            zl__cpu_gemm_lp_sgemm(self, s.scratch, a, b, bt, m, n, k, lda, ldb, n, ta, tb, alpha,
                                  0.0f);
        }
        double dt = omp_get_wtime() - t0;
        if (t > 0 && dt < best) best = dt;
    }
    return best;
}

bool zl__cpu_gemm_lp_use_onednn(const zl_ops *self, const float *a, const void *b, zl_dtype b_type,
                                int m, int n, int k, int lda, int ldb, bool trans_a, bool trans_b,
                                float alpha)
{
    switch (mode()) {
    case MODE_ONEDNN: return true;
    case MODE_SGEMM: return false;
    default: break;
    }
    if (!s.timer && !zl__cpu_gemm_lp_onednn_usable()) return false; /* nothing to compare */
    int nthr = omp_get_max_threads();
    const lp_choice *known = find(m, n, k, trans_a, trans_b, nthr);
    if (known) return known->onednn;

    double t_onednn, t_sgemm;
    if (s.timer) {
        t_onednn = s.timer(true, m, n, k, trans_a, trans_b);
        t_sgemm = s.timer(false, m, n, k, trans_a, trans_b);
    } else {
        size_t need = (size_t)m * n;
        if (need > s.cap) {
            float *p = NULL;
            if (posix_memalign((void **)&p, 64, need * sizeof *p)) return false; /* sgemm */
            free(s.scratch);
            s.scratch = p;
            s.cap = need;
        }
        t_onednn = time_path(self, true, a, b, b_type, m, n, k, lda, ldb, trans_a, trans_b, alpha);
        t_sgemm = time_path(self, false, a, b, b_type, m, n, k, lda, ldb, trans_a, trans_b, alpha);
    }
    lp_choice *c;
    if (s.n < LP_CHOICES) {
        c = &s.c[s.n++];
    } else { /* full: replace in turn */
        c = &s.c[s.next];
        s.next = (s.next + 1) % LP_CHOICES;
    }
    *c = (lp_choice){m, n, k, nthr, trans_a, trans_b,
                     zl_gemm_lp_prefer_onednn(t_onednn, t_sgemm), t_onednn, t_sgemm};
    zl_log_debug("bf16 gemm %d x %d x %d%s%s at %d thread%s: oneDNN %.3f ms, sgemm %.3f ms: %s",
                 m, n, k, trans_a ? " (A^T)" : "", trans_b ? " (B^T)" : "", nthr,
                 nthr == 1 ? "" : "s", 1e3 * t_onednn, 1e3 * t_sgemm,
                 c->onednn ? "oneDNN" : "sgemm");
    return c->onednn;
}
