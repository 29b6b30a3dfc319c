/* Which path runs a product, per shape, measured on this CPU. Two decisions share this
 * file's cache, clock and test hooks (zl_gemm_choice_kind):
 *  - bf16 (ZL_GEMM_LP): oneDNN's bf16 matmul, or sgemm on the f32 values;
 *  - fp32 (ZL_GEMM_F32): oneDNN's sgemm, or OpenBLAS's (cpu_gemm.c, with its row split).
 *
 * Neither path wins everywhere, and which one wins depends on the CPU and on the shape. On
 * the AMD Zen 5 machine the project had, oneDNN's avx512_core_bf16 matmul ran at 1.4-2.0x
 * sgemm's rate on GPT-2's shapes; on an Emerald Rapids Xeon, whose bf16 dot products are
 * slower than its f32 FMAs, at 0.50-0.74x: a rule keyed on "the ISA has AVX512-BF16" is
 * right on one and wrong on the other. In fp32 on that Xeon, oneDNN's sgemm beat
 * OpenBLAS's SkylakeX kernel by 1.2-2x on gpt2-124m's lm_head and forward products and
 * lost by 1.7-2.8x on others (docs/benchmarks.md, "GEMM paths"). So the first time a
 * product of a given shape (kind, m, n, k, transposes, thread count) comes, both paths
 * run it, in turn, each timed as the best of 2 to 16 runs after one warm-up (which also
 * builds oneDNN's primitive or JIT kernels), and the faster one is kept for the rest of
 * the process: the choice is stable within a run, and a training step has a dozen
 * shapes, so the measurement is a one-time cost of a few products each. Both paths
 * compute the same sums in f32; only the summation order differs. With --verbose (debug
 * logging) each choice is printed with its timings.
 *
 * The timed runs write a scratch C (beta 0: C is not read), or for an fp32 product with
 * beta = 0 the caller's C itself, which the chosen path then overwrites: gpt2's forward
 * lm_head product is a 100 MiB C that needs no second copy. Nested measurements (the bf16
 * decision times sgemm through the fp32 gemm, which may measure its own first use) thus
 * never touch the scratch that the outer one is writing.
 *
 * Each process decides by its own clock, so two ranks may choose differently for a shape
 * whose paths are close; replicas stay equal regardless (they apply one reduced gradient),
 * but a test that compares the ranks' arithmetic bit for bit pins the paths
 * (ZL_GEMM_LP=onednn and ZL_GEMM_F32=openblas in make check; the measurement is tested
 * with injected timings). Not thread-safe: the callers decide outside parallel regions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "base/log.h"

#define CHOICES 256 /* shapes remembered; past that the oldest are measured again */
#define CHOICE_TRIALS 2
#define CHOICE_MAX_TRIALS 16
#define CHOICE_MIN_SECONDS 0.02

typedef struct gemm_choice {
    zl_gemm_choice_kind kind;
    int m, n, k, nthr;
    bool ta, tb;
    bool onednn;
    double t_onednn, t_other;
} gemm_choice;

typedef enum { MODE_UNREAD, MODE_MEASURE, MODE_ONEDNN, MODE_OTHER } choice_mode;

/* per kind: the environment variable, the name of the path that is not oneDNN's */
static const struct {
    const char *env, *other, *what;
} kinds[ZL_GEMM_CHOICE_KINDS] = {
    [ZL_GEMM_CHOICE_BF16] = {"ZL_GEMM_LP", "sgemm", "bf16"},
    [ZL_GEMM_CHOICE_F32] = {"ZL_GEMM_F32", "openblas", "fp32"},
};

static struct {
    choice_mode mode[ZL_GEMM_CHOICE_KINDS];
    gemm_choice c[CHOICES];
    int n, next;
    zl_gemm_timer timer;
    float *scratch;
    size_t cap;
} s;

bool zl_gemm_prefer_onednn(double t_onednn, double t_other) { return t_onednn < t_other; }

const char *zl__cpu_gemm_choice_other_name(zl_gemm_choice_kind kind) { return kinds[kind].other; }

void zl__cpu_gemm_choice_set_timer(zl_gemm_timer timer) { s.timer = timer; }

void zl__cpu_gemm_choice_forget(void)
{
    s.n = s.next = 0;
    for (int i = 0; i < ZL_GEMM_CHOICE_KINDS; i++)
        s.mode[i] = MODE_UNREAD; /* the environment is read again */
}

static choice_mode mode(zl_gemm_choice_kind kind)
{
    if (s.mode[kind] != MODE_UNREAD) return s.mode[kind];
    const char *e = getenv(kinds[kind].env);
    s.mode[kind] = MODE_MEASURE;
    if (e && !strcmp(e, "onednn")) s.mode[kind] = MODE_ONEDNN;
    else if (e && !strcmp(e, kinds[kind].other)) s.mode[kind] = MODE_OTHER;
    else if (e && *e && strcmp(e, "measure"))
        zl_log_warn("%s=%s is not one of measure, onednn, %s: measuring", kinds[kind].env, e,
                    kinds[kind].other);
    return s.mode[kind];
}

static gemm_choice *find(zl_gemm_choice_kind kind, int m, int n, int k, bool ta, bool tb, int nthr)
{
    for (int i = 0; i < s.n; i++) {
        gemm_choice *c = &s.c[i];
        if (c->kind == kind && c->m == m && c->n == n && c->k == k && c->ta == ta &&
            c->tb == tb && c->nthr == nthr)
            return c;
    }
    return NULL;
}

/* Room for one more choice: a free entry, or, once full, the oldest in turn. */
static gemm_choice *new_slot(void)
{
    if (s.n < CHOICES) return &s.c[s.n++];
    gemm_choice *c = &s.c[s.next];
    s.next = (s.next + 1) % CHOICES;
    return c;
}

int zl__cpu_gemm_choice(zl_gemm_choice_kind kind, int m, int n, int k, bool trans_a, bool trans_b,
                        int nthr, double *t_onednn, double *t_other)
{
    const gemm_choice *c = find(kind, m, n, k, trans_a, trans_b, nthr);
    if (!c) return -1;
    if (t_onednn) *t_onednn = c->t_onednn;
    if (t_other) *t_other = c->t_other;
    return c->onednn;
}

/* ---- the choices as text, kept in checkpoints ----------------------------------------
 *
 * One line per choice: "<kind> <m> <n> <k> <ta> <tb> <threads> <onednn|other>". A resumed
 * run seeds its table with the choices of the run it resumes, so that its products take
 * the same paths, and resuming stays bit for bit whatever the new measurement would
 * have said (engine_ckpt.c). */

size_t zl__cpu_gemm_choices_save(char *buf, size_t len)
{
    size_t need = 0;
    for (int i = 0; i < s.n; i++) {
        const gemm_choice *c = &s.c[i];
        char line[128];
        int k = snprintf(line, sizeof line, "%s %d %d %d %d %d %d %s\n", kinds[c->kind].what,
                         c->m, c->n, c->k, c->ta, c->tb, c->nthr,
                         c->onednn ? "onednn" : kinds[c->kind].other);
        if (buf && need + 1 < len) /* as snprintf: as much as fits, then the NUL */
            memcpy(buf + need, line, (size_t)k < len - 1 - need ? (size_t)k : len - 1 - need);
        need += (size_t)k;
    }
    if (buf && len) buf[need < len ? need : len - 1] = '\0';
    return need + 1;
}

int zl__cpu_gemm_choices_load(const char *text)
{
    int loaded = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        char line[128], what[16], path[16];
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p += len + (nl != NULL);
        int m, n, k, ta, tb, nthr;
        if (sscanf(line, "%15s %d %d %d %d %d %d %15s", what, &m, &n, &k, &ta, &tb, &nthr, path) != 8 ||
            m <= 0 || n <= 0 || k <= 0 || nthr <= 0 || (ta != 0 && ta != 1) || (tb != 0 && tb != 1))
            continue; /* not a choice this build understands: it is measured again */
        for (int kind = 0; kind < ZL_GEMM_CHOICE_KINDS; kind++) {
            if (strcmp(what, kinds[kind].what)) continue;
            bool onednn = !strcmp(path, "onednn");
            if (!onednn && strcmp(path, kinds[kind].other)) break;
            gemm_choice *c = find((zl_gemm_choice_kind)kind, m, n, k, ta, tb, nthr);
            if (!c) c = new_slot();
            *c = (gemm_choice){(zl_gemm_choice_kind)kind, m, n, k, nthr, ta, tb, onednn, NAN, NAN};
            loaded++;
        }
    }
    return loaded;
}

/* The product as the measurement runs it: into c (rows ldc apart), beta 0. */
typedef struct timed_product {
    zl_gemm_choice_kind kind;
    const zl_ops *self;
    float *c;
    const float *a;
    const void *b;
    zl_dtype bt;
    int m, n, k, lda, ldb, ldc;
    bool ta, tb;
    float alpha;
} timed_product;

/* One run of the product on a path; false if oneDNN declines. */
static bool run_path(const timed_product *p, bool onednn)
{
    if (p->kind == ZL_GEMM_CHOICE_F32) {
        if (onednn)
            return zl__cpu_gemm_f32_onednn(p->c, p->a, p->b, p->m, p->n, p->k, p->lda, p->ldb,
                                           p->ldc, p->ta, p->tb, p->alpha, 0.0f);
        zl__cpu_gemm_openblas(p->self, p->c, p->a, p->b, p->m, p->n, p->k, p->lda, p->ldb, p->ldc,
                              p->ta, p->tb, p->alpha, 0.0f);
        return true;
    }
    if (onednn)
        return zl__cpu_gemm_lp_onednn(p->c, p->a, p->b, p->bt, p->m, p->n, p->k, p->lda, p->ldb,
                                      p->ldc, p->ta, p->tb, p->alpha, 0.0f);
    /* with the widening of a 16-bit B: part of what this path costs */
    zl__cpu_gemm_lp_sgemm(p->self, p->c, p->a, p->b, p->bt, p->m, p->n, p->k, p->lda, p->ldb,
                          p->ldc, p->ta, p->tb, p->alpha, 0.0f);
    return true;
}

/* Seconds for one product on each path (t[1]: oneDNN, INFINITY if it declines): a warm-up
 * each, then rounds of one timed run per path in turn, so that a slow spell of a shared
 * machine hits both; the best of each. CHOICE_TRIALS rounds at least, more (up to
 * CHOICE_MAX_TRIALS) while the measurement has taken under CHOICE_MIN_SECONDS: a small
 * product's microseconds are easily swamped by one preemption. */
static void time_paths(const timed_product *p, double t[2])
{
    t[0] = t[1] = INFINITY;
    bool onednn_ok = run_path(p, true);
    run_path(p, false);
    double start = omp_get_wtime();
    for (int r = 0; r < CHOICE_MAX_TRIALS; r++) {
        if (r >= CHOICE_TRIALS && omp_get_wtime() - start >= CHOICE_MIN_SECONDS) break;
        for (int path = 1; path >= 0; path--) {
            if (path == 1 && !onednn_ok) continue;
            double t0 = omp_get_wtime();
            if (!run_path(p, path == 1)) { /* declined now: not a candidate */
                onednn_ok = false;
                t[1] = INFINITY;
                continue;
            }
            double dt = omp_get_wtime() - t0;
            if (dt < t[path]) t[path] = dt;
        }
    }
}

/* The decision for one product: fixed by the environment, remembered, or measured now.
 * c/ldc/beta: the caller's C, used for the timed runs when beta is 0 (fp32 only). */
static bool choose(zl_gemm_choice_kind kind, const zl_ops *self, float *c, const float *a,
                   const void *b, zl_dtype b_type, int m, int n, int k, int lda, int ldb, int ldc,
                   bool trans_a, bool trans_b, float alpha, float beta)
{
    switch (mode(kind)) {
    case MODE_ONEDNN: return true;
    case MODE_OTHER: return false;
    default: break;
    }
    bool usable = kind == ZL_GEMM_CHOICE_F32 ? zl__cpu_gemm_f32_onednn_usable()
                                              : zl__cpu_gemm_lp_onednn_usable();
    if (!s.timer && !usable) return false; /* nothing to compare */
    int nthr = omp_get_max_threads();
    const gemm_choice *known = find(kind, m, n, k, trans_a, trans_b, nthr);
    if (known) return known->onednn;

    double t_onednn, t_other;
    if (s.timer) {
        t_onednn = s.timer(kind, true, m, n, k, trans_a, trans_b);
        t_other = s.timer(kind, false, m, n, k, trans_a, trans_b);
    } else {
        timed_product p = {kind, self, c, a, b, b_type, m, n, k, lda, ldb, ldc,
                           trans_a, trans_b, alpha};
        if (kind != ZL_GEMM_CHOICE_F32 || beta != 0.0f) { /* C is read: time into scratch */
            size_t need = (size_t)m * n;
            if (need > s.cap) {
                float *q = NULL;
                if (posix_memalign((void **)&q, 64, need * sizeof *q)) return false; /* other */
                free(s.scratch);
                s.scratch = q;
                s.cap = need;
            }
            p.c = s.scratch;
            p.ldc = n;
        }
        double t[2];
        time_paths(&p, t);
        t_onednn = t[1];
        t_other = t[0];
    }
    gemm_choice *ch = new_slot();
    *ch = (gemm_choice){kind, m, n, k, nthr, trans_a, trans_b,
                        zl_gemm_prefer_onednn(t_onednn, t_other), t_onednn, t_other};
    zl_log_debug("%s gemm %d x %d x %d%s%s at %d thread%s: oneDNN %.3f ms, %s %.3f ms: %s",
                 kinds[kind].what, m, n, k, trans_a ? " (A^T)" : "", trans_b ? " (B^T)" : "",
                 nthr, nthr == 1 ? "" : "s", 1e3 * t_onednn, kinds[kind].other, 1e3 * t_other,
                 ch->onednn ? "oneDNN" : kinds[kind].other);
    return ch->onednn;
}

bool zl__cpu_gemm_lp_use_onednn(const zl_ops *self, const float *a, const void *b, zl_dtype b_type,
                                int m, int n, int k, int lda, int ldb, bool trans_a, bool trans_b,
                                float alpha)
{
    return choose(ZL_GEMM_CHOICE_BF16, self, NULL, a, b, b_type, m, n, k, lda, ldb, n, trans_a,
                  trans_b, alpha, 1.0f);
}

bool zl__cpu_gemm_f32_use_onednn(const zl_ops *self, float *c, const float *a, const float *b,
                                 int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                                 bool trans_b, float alpha, float beta)
{
    return choose(ZL_GEMM_CHOICE_F32, self, c, a, b, ZL_F32, m, n, k, lda, ldb, ldc, trans_a,
                  trans_b, alpha, beta);
}
