/* The cpu backend's gemm where it cuts C into row blocks, one per thread (cpu_gemm.c):
 * shapes that take the split with blocks of odd sizes, every transpose, padded leading
 * dimensions, alpha/beta including beta = 1 (accumulate) and beta = 0 over NaN, team sizes
 * 1, 2 and 3, and calls made inside a parallel region. These pin ZL_GEMM_F32=openblas.
 *
 * Then the per-shape choice between OpenBLAS and oneDNN's sgemm (cpu_gemm_f32.c,
 * cpu_gemm_choice.c): oneDNN's results on the same cases, also against zl_ops_ref.gemm;
 * the choice with injected timings (both outcomes whatever the CPU), the fixed paths, and
 * one real measurement.
 *
 * Expected values come from a double-precision loop here, with the standard error bound of
 * a float dot product: |got - want| <= gamma * (|alpha| sum_l |a_il b_lj| + |beta c_ij|),
 * gamma = 2 (k + 2) FLT_EPSILON (k products and sums, alpha and beta, in any order).
 *
 * This program also defines cblas_sgemm, forwarding to OpenBLAS's (dlsym RTLD_NEXT): the
 * executable's definition is the one the library's objects link to, so the tests can see
 * which sgemm calls a gemm made (how many rows, from which thread, in a parallel region
 * or not), and so check that the split is taken, or not, where cpu_gemm.c says. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <cblas.h>
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/ops.h"
#include "check_util.h"
#include "zl_build.h"

/* ---- the sgemm call log ----------------------------------------------------------- */

enum { MAX_CALLS = 16 };
typedef struct sgemm_call {
    int m, n, k, tid;
    bool in_parallel;
    const float *c;
} sgemm_call;
static sgemm_call g_calls[MAX_CALLS];
static atomic_int g_ncalls;

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
                         const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
                         const float, const float *, const blasint, const float *,
                         const blasint, const float, float *, const blasint);

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                 const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n, const blasint k,
                 const float alpha, const float *a, const blasint lda, const float *b,
                 const blasint ldb, const float beta, float *c, const blasint ldc)
{
    static sgemm_fn real;
    if (!real) {
        sgemm_fn f;
        *(void **)&f = dlsym(RTLD_NEXT, "cblas_sgemm");
        real = f;
    }
    ck_assert_ptr_nonnull((void *)real);
    int i = atomic_fetch_add(&g_ncalls, 1);
    if (i < MAX_CALLS)
        g_calls[i] = (sgemm_call){m, n, k, omp_get_thread_num(), omp_in_parallel(), c};
    real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- helpers ---------------------------------------------------------------------- */

static const zl_ops *cpu;

/* the fp32 path pinned (ZL_GEMM_F32) and read again, choices forgotten, no fake timer */
static void pin_f32_path(const char *path)
{
    setenv("ZL_GEMM_F32", path, 1);
    zl__cpu_gemm_choice_forget();
    zl__cpu_gemm_choice_set_timer(NULL);
}

static void setup(void)
{
    cpu = zl_ops_find("cpu");
    ck_assert_ptr_nonnull(cpu);
    pin_f32_path("openblas"); /* the row-split tests count OpenBLAS's calls */
}

static float *frand(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    zl_test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static void set_threads(int nthreads)
{
    omp_set_num_threads(nthreads);
    int team = 0;
#pragma omp parallel
#pragma omp single
    team = omp_get_num_threads();
    ck_assert_int_eq(team, nthreads); /* or the test would not test what it says */
}

typedef struct gemm_case {
    int m, n, k;
    bool ta, tb;
    float alpha, beta;
} gemm_case;

/* A case's padded operands (fixed by the seed) and its result. */
typedef struct gemm_run {
    gemm_case g;
    int lda, ldb, ldc;
    float *a, *b, *c, *c0;
} gemm_run;

static void run_prepare(gemm_run *r, const gemm_case *g, uint64_t seed)
{
    int m = g->m, n = g->n, k = g->k;
    r->g = *g;
    r->lda = (g->ta ? m : k) + 3, r->ldb = (g->tb ? k : n) + 5, r->ldc = n + 7;
    size_t na = (size_t)(g->ta ? k : m) * r->lda, nb = (size_t)(g->tb ? n : k) * r->ldb;
    size_t nc = (size_t)m * r->ldc;
    r->a = frand(na, seed + 1, -1, 1), r->b = frand(nb, seed + 2, -1, 1);
    r->c = frand(nc, seed + 3, -1, 1);
    if (g->beta == 0.0f) /* beta = 0 must ignore what C held, NaN included */
        for (size_t i = 0; i < nc; i++)
            if (i % r->ldc < (size_t)n) r->c[i] = NAN;
    r->c0 = malloc(nc * sizeof(float));
    memcpy(r->c0, r->c, nc * sizeof(float));
}

static void run_gemm(gemm_run *r)
{
    const gemm_case *g = &r->g;
    cpu->gemm(cpu, r->c, r->a, r->b, g->m, g->n, g->k, r->lda, r->ldb, r->ldc, g->ta, g->tb,
              g->alpha, g->beta);
}

/* Every element of C against the double-precision product, and the padding of C for
 * untouched. */
static void run_verify(const gemm_run *r)
{
    const gemm_case *g = &r->g;
    int m = g->m, n = g->n, k = g->k, lda = r->lda, ldb = r->ldb, ldc = r->ldc;
    const float *a = r->a, *b = r->b, *c = r->c, *c0 = r->c0;
    double gamma = 2.0 * (k + 2) * FLT_EPSILON;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < ldc; j++) {
            size_t ij = (size_t)i * ldc + j;
            if (j >= n) {
                if (memcmp(&c[ij], &c0[ij], sizeof(float)))
                    ck_abort_msg("gemm %dx%dx%d ta=%d tb=%d wrote the padding at (%d,%d)", m, n,
                                 k, g->ta, g->tb, i, j);
                continue;
            }
            double sum = 0, mag = 0;
            for (int l = 0; l < k; l++) {
                double x = g->ta ? a[(size_t)l * lda + i] : a[(size_t)i * lda + l];
                double y = g->tb ? b[(size_t)j * ldb + l] : b[(size_t)l * ldb + j];
                sum += x * y;
                mag += fabs(x * y);
            }
            double want = g->alpha * sum, bound = fabs(g->alpha) * mag;
            if (g->beta != 0.0f) {
                want += (double)g->beta * c0[ij];
                bound += fabs((double)g->beta * c0[ij]);
            }
            if (!(fabs(c[ij] - want) <= gamma * bound + 1e-30))
                ck_abort_msg("gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g: C(%d,%d) = %.9g, "
                             "want %.9g (bound %.3g)",
                             m, n, k, g->ta, g->tb, g->alpha, g->beta, i, j, c[ij], want,
                             gamma * bound);
        }
    }
}

static void run_free(gemm_run *r)
{
    free(r->a);
    free(r->b);
    free(r->c);
    free(r->c0);
}

/* prepare, gemm, verify; returns C (m x ldc, ldc = n + 7), the caller frees it */
static float *run_case(const gemm_case *g, uint64_t seed)
{
    gemm_run r;
    run_prepare(&r, g, seed);
    run_gemm(&r);
    run_verify(&r);
    float *c = r.c;
    r.c = NULL;
    run_free(&r);
    return c;
}

/* The sgemm calls the last gemm made must be `blocks` calls, from threads 0..blocks-1 of a
 * parallel region, on consecutive row blocks covering m rows (a block boundary at a
 * multiple of 32), each over all n columns and k; or one plain call if blocks == 1. */
static void expect_row_blocks(int blocks, int m, int n, int k, const char *what)
{
    int ncalls = atomic_load(&g_ncalls);
    ck_assert_msg(ncalls == blocks, "%s: %d sgemm calls, want %d", what, ncalls, blocks);
    if (blocks == 1) {
        ck_assert_msg(g_calls[0].m == m && g_calls[0].n == n && g_calls[0].k == k &&
                          !g_calls[0].in_parallel,
                      "%s: one sgemm %dx%dx%d outside a parallel region", what, m, n, k);
        return;
    }
    int rows[MAX_CALLS] = {0};
    const float *c_first[MAX_CALLS] = {0};
    for (int i = 0; i < ncalls; i++) {
        const sgemm_call *s = &g_calls[i];
        ck_assert_msg(s->in_parallel, "%s: call %d not in a parallel region", what, i);
        ck_assert_msg(s->tid >= 0 && s->tid < blocks && rows[s->tid] == 0,
                      "%s: thread %d made more than one call", what, s->tid);
        ck_assert_msg(s->n == n && s->k == k, "%s: block %d is %dx%dx%d", what, s->tid, s->m,
                      s->n, s->k);
        rows[s->tid] = s->m;
        c_first[s->tid] = s->c;
    }
    int total = 0;
    for (int t = 0; t < blocks; t++) {
        ck_assert_msg(rows[t] > 0, "%s: thread %d got no rows", what, t);
        if (t < blocks - 1) ck_assert_msg(rows[t] % 32 == 0, "%s: block %d has %d rows", what,
                                          t, rows[t]);
        if (t > 0) /* block t starts right where block t-1 ends (ldc = n + 7) */
            ck_assert(c_first[t] == c_first[t - 1] + (size_t)rows[t - 1] * (n + 7));
        total += rows[t];
    }
    ck_assert_msg(total == m, "%s: blocks cover %d of %d rows", what, total, m);
}

/* ---- tests ------------------------------------------------------------------------ */

/* The split relies on OpenBLAS's OpenMP build, which runs an sgemm called inside a
 * parallel region on the calling thread alone (a pthreads build would start its own
 * threads for each block). This also makes the program link OpenBLAS, where the
 * forwarding cblas_sgemm above finds the real one. */
START_TEST(test_cpu_gemm_openblas_is_the_openmp_build)
{
    ck_assert_int_eq(openblas_get_parallel(), 2);
}
END_TEST

/* Which products split at 2 threads, and the results of those that do: every transpose,
 * odd m, n and k (no block or panel a multiple of any register tile), alpha and beta. */
START_TEST(test_cpu_gemm_two_threads_row_blocks_every_transpose)
{
    set_threads(2);
    const struct {
        int m, n, k;
        int blocks[2]; /* [trans_b] */
    } shapes[] = {
        {203, 77, 91, {2, 2}},      /* split: 128 + 75 rows */
        {97, 211, 93, {1, 1}},      /* fewer than 64 rows per thread */
        {150, 40, 100, {1, 1}},     /* 600k multiply-adds: too small */
        {203, 1031, 7, {2, 1}},     /* op(B) = B^T on a wide C: left to OpenBLAS... */
        {1061, 1031, 3, {2, 2}},    /* ...unless there are 512 rows per thread */
    };
    const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 0.75f}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t p = 0; p < sizeof ab / sizeof ab[0]; p++) {
                    gemm_case g = {shapes[s].m, shapes[s].n, shapes[s].k, ta, tb, ab[p][0],
                                   ab[p][1]};
                    atomic_store(&g_ncalls, 0);
                    free(run_case(&g, 100 + 10 * s + p));
                    char what[64];
                    snprintf(what, sizeof what, "%dx%dx%d ta=%d tb=%d", g.m, g.n, g.k, ta, tb);
                    expect_row_blocks(shapes[s].blocks[tb], g.m, g.n, g.k, what);
                }
}
END_TEST

/* Three threads: 203 rows give blocks of 96, 96 and 11; 131 rows are two blocks' worth
 * (at least 64 rows each), so only two threads get work. */
START_TEST(test_cpu_gemm_three_threads_uneven_blocks)
{
    set_threads(3);
    gemm_case g = {203, 45, 130, false, false, 1.0f, 1.0f};
    atomic_store(&g_ncalls, 0);
    free(run_case(&g, 200));
    expect_row_blocks(3, 203, 45, 130, "203 rows, 3 threads");
    gemm_case h = {131, 50, 170, true, false, 2.0f, 0.0f};
    atomic_store(&g_ncalls, 0);
    free(run_case(&h, 210));
    expect_row_blocks(2, 131, 50, 170, "131 rows, 3 threads");
}
END_TEST

/* One thread: one plain sgemm, as before the split existed; and the same products with 1,
 * 2 and 3 threads agree (each also checked against the double-precision reference). */
START_TEST(test_cpu_gemm_one_thread_unsplit_and_agrees)
{
    gemm_case cases[] = {
        {203, 77, 91, false, false, 1.0f, 1.0f},
        {203, 77, 91, true, false, 0.5f, 0.0f},
        {1061, 37, 29, false, true, 1.0f, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gemm_case *g = &cases[i];
        set_threads(1);
        atomic_store(&g_ncalls, 0);
        float *one = run_case(g, 300 + i);
        expect_row_blocks(1, g->m, g->n, g->k, "1 thread");
        for (int t = 2; t <= 3; t++) {
            set_threads(t);
            float *many = run_case(g, 300 + i); /* same seed: same operands */
            size_t nc = (size_t)g->m * (g->n + 7);
            char label[64];
            snprintf(label, sizeof label, "gemm %dx%dx%d, 1 vs %d threads", g->m, g->n, g->k,
                     t);
            /* each result is within the bound of the exact product; as a cross-check of
             * the two runs, they may differ by twice a loose version of it */
            ck_assert(zl_test_close(label, many, one, nc, 1e-5, 2e-5 * g->k));
            free(many);
        }
        free(one);
    }
}
END_TEST

/* Called inside a parallel region (as the attention kernels do), a gemm that would split
 * runs as one single-threaded sgemm on the calling thread, and each thread's product is
 * right. */
START_TEST(test_cpu_gemm_inside_parallel_region_not_split)
{
    set_threads(2);
    gemm_run r[2];
    for (int t = 0; t < 2; t++) {
        gemm_case g = {203 + t, 77, 91, t == 1, false, 1.0f, 1.0f};
        run_prepare(&r[t], &g, 400 + t);
    }
    atomic_store(&g_ncalls, 0);
#pragma omp parallel num_threads(2)
    run_gemm(&r[omp_get_thread_num()]);
    for (int t = 0; t < 2; t++) {
        run_verify(&r[t]);
        run_free(&r[t]);
    }
    ck_assert_int_eq(atomic_load(&g_ncalls), 2);
    for (int i = 0; i < 2; i++) {
        ck_assert(g_calls[i].in_parallel);
        ck_assert_int_eq(g_calls[i].m, 203 + g_calls[i].tid);
    }
}
END_TEST

/* ---- fp32 on oneDNN, and the per-shape choice ------------------------------------- */

static bool onednn_built(void)
{
#ifdef ZL_HAVE_ONEDNN
    return true;
#else
    return false;
#endif
}

/* set while a product may be measured for real: both paths then run */
static bool g_both_may_run;

/* run_case, and C also within twice the bound of zl_ops_ref.gemm's result (two results
 * each within the bound of the exact product). Returns whether oneDNN ran it; when it did,
 * OpenBLAS was not called. */
static bool run_case_vs_ref(const gemm_case *g, uint64_t seed)
{
    gemm_run r;
    run_prepare(&r, g, seed);
    int m = g->m, n = g->n, k = g->k;
    size_t nc = (size_t)m * r.ldc;
    float *cr = malloc(nc * sizeof(float));
    memcpy(cr, r.c0, nc * sizeof(float));
    zl_ops_ref.gemm(&zl_ops_ref, cr, r.a, r.b, m, n, k, r.lda, r.ldb, r.ldc, g->ta, g->tb,
                    g->alpha, g->beta);
    long before = zl__cpu_gemm_f32_onednn_calls();
    atomic_store(&g_ncalls, 0);
    run_gemm(&r);
    bool onednn = zl__cpu_gemm_f32_onednn_calls() > before;
    ck_assert_msg(!onednn || g_both_may_run || atomic_load(&g_ncalls) == 0,
                  "oneDNN ran, and OpenBLAS too");
    ck_assert_msg(onednn || atomic_load(&g_ncalls) > 0, "neither oneDNN nor OpenBLAS ran");
    run_verify(&r);
    double gamma = 2.0 * (k + 2) * FLT_EPSILON;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            size_t ij = (size_t)i * r.ldc + j;
            double mag = 0;
            for (int l = 0; l < k; l++) {
                double x = g->ta ? r.a[(size_t)l * r.lda + i] : r.a[(size_t)i * r.lda + l];
                double y = g->tb ? r.b[(size_t)j * r.ldb + l] : r.b[(size_t)l * r.ldb + j];
                mag += fabs(x * y);
            }
            double bound = fabs(g->alpha) * mag + (g->beta != 0.0f ? fabs(g->beta * r.c0[ij]) : 0);
            if (!(fabs((double)r.c[ij] - cr[ij]) <= 2 * gamma * bound + 1e-30))
                ck_abort_msg("gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g (%s): C(%d,%d) = %.9g, "
                             "ref %.9g", m, n, k, g->ta, g->tb, g->alpha, g->beta,
                             onednn ? "oneDNN" : "OpenBLAS", i, j, r.c[ij], cr[ij]);
        }
    free(cr);
    run_free(&r);
    return onednn;
}

/* ZL_GEMM_F32=onednn: products of 2^19 multiply-adds or more run on oneDNN's sgemm (where it
 * is built in), right for every transpose, odd sizes, padded leading dimensions (the
 * padding of C untouched), alpha, beta = 1 and beta = 0 over NaN, at 1 and 2 threads;
 * smaller ones stay on OpenBLAS. And the small and odd shapes straight on oneDNN. */
START_TEST(test_cpu_gemm_f32_onednn_every_transpose)
{
    pin_f32_path("onednn");
    const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 0.75f}};
    for (int nth = 1; nth <= 2; nth++) {
        set_threads(nth);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t p = 0; p < sizeof ab / sizeof ab[0]; p++) {
                    gemm_case big = {261, 131, 129, ta, tb, ab[p][0], ab[p][1]}; /* 4.4M */
                    ck_assert_int_eq(run_case_vs_ref(&big, 500 + p), onednn_built());
                    gemm_case small = {61, 67, 59, ta, tb, ab[p][0], ab[p][1]}; /* 0.24M */
                    ck_assert(261.0 * 131 * 129 >= ZL_CPU_GEMM_F32_MIN_MACS &&
                              61.0 * 67 * 59 < ZL_CPU_GEMM_F32_MIN_MACS);
                    ck_assert(!run_case_vs_ref(&small, 510 + p));
                }
    }
    /* below the size rule, straight on oneDNN: odd shapes, k = 1 */
    const int shapes[][3] = {{1, 1, 1}, {3, 17, 5}, {17, 1, 3}, {64, 33, 1}, {203, 77, 91}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tr = 0; tr < 4; tr++)
            for (size_t p = 0; p < sizeof ab / sizeof ab[0]; p++) {
                gemm_case g = {shapes[s][0], shapes[s][1], shapes[s][2], tr & 1, tr & 2,
                               ab[p][0], ab[p][1]};
                gemm_run r;
                run_prepare(&r, &g, 600 + s);
                bool ran = zl__cpu_gemm_f32_onednn(r.c, r.a, r.b, g.m, g.n, g.k, r.lda, r.ldb,
                                                   r.ldc, g.ta, g.tb, g.alpha, g.beta);
                ck_assert_int_eq(ran, onednn_built());
                if (ran) run_verify(&r);
                else /* declined: C untouched */
                    ck_assert(!memcmp(r.c, r.c0, (size_t)g.m * r.ldc * sizeof(float)));
                run_free(&r);
            }
}
END_TEST

/* Called inside a parallel region, a product that would go to oneDNN runs on OpenBLAS. */
START_TEST(test_cpu_gemm_f32_inside_parallel_region_openblas)
{
    pin_f32_path("onednn");
    set_threads(2);
    gemm_run r[2];
    for (int t = 0; t < 2; t++) {
        gemm_case g = {261, 131, 129, t == 1, false, 1.0f, 1.0f};
        run_prepare(&r[t], &g, 700 + t);
    }
    long before = zl__cpu_gemm_f32_onednn_calls();
    atomic_store(&g_ncalls, 0);
#pragma omp parallel num_threads(2)
    run_gemm(&r[omp_get_thread_num()]);
    ck_assert_int_eq(zl__cpu_gemm_f32_onednn_calls(), before);
    ck_assert_int_eq(atomic_load(&g_ncalls), 2);
    for (int t = 0; t < 2; t++) {
        run_verify(&r[t]);
        run_free(&r[t]);
    }
}
END_TEST

static int timer_calls;

/* oneDNN takes 1 ms on fp32 shapes with m == 256, OpenBLAS 1 ms on the others, the other
 * path 2 ms: both outcomes, whatever CPU runs the test. bf16 decisions are not this
 * test's: they would count, and take sgemm. */
static double fake_timer(zl_gemm_choice_kind kind, bool onednn, int m, int n, int k, bool ta,
                         bool tb)
{
    (void)n, (void)k, (void)ta, (void)tb;
    if (kind != ZL_GEMM_CHOICE_F32) return onednn ? 2e-3 : 1e-3;
    timer_calls++;
    bool onednn_wins = m == 256;
    return onednn == onednn_wins ? 1e-3 : 2e-3;
}

START_TEST(test_cpu_gemm_f32_choice_by_injected_timings)
{
    ck_assert(zl_gemm_prefer_onednn(1e-3, 2e-3));
    ck_assert(!zl_gemm_prefer_onednn(2e-3, 1e-3));
    ck_assert(!zl_gemm_prefer_onednn(1e-3, 1e-3)); /* a tie: the path every build has */
    set_threads(2);
    pin_f32_path("measure");
    zl__cpu_gemm_choice_set_timer(fake_timer);
    timer_calls = 0;
    /* oneDNN measured faster for 256 x 130 x 129: chosen, and (where built in) it runs;
     * without oneDNN the product falls back to OpenBLAS, still right */
    gemm_case fast = {256, 130, 129, false, true, 1.0f, 1.0f};
    ck_assert_int_eq(run_case_vs_ref(&fast, 800), onednn_built());
    ck_assert_int_eq(timer_calls, 2);
    double to, tob;
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 256, 130, 129, false, true, 2, &to,
                                         &tob), 1);
    ck_assert(to == 1e-3 && tob == 2e-3);
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_BF16, 256, 130, 129, false, true, 2, NULL,
                                         NULL), -1); /* the kinds are apart */
    /* OpenBLAS measured faster for 257 x 130 x 129: chosen */
    gemm_case slow = {257, 130, 129, false, true, 1.0f, 0.0f};
    ck_assert(!run_case_vs_ref(&slow, 810));
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 257, 130, 129, false, true, 2, NULL,
                                         NULL), 0);
    ck_assert_int_eq(timer_calls, 4);
    /* stable within the run: the same shapes (other alpha, beta) are not measured again */
    gemm_case fast2 = {256, 130, 129, false, true, -0.5f, 0.0f};
    ck_assert_int_eq(run_case_vs_ref(&fast2, 820), onednn_built());
    ck_assert(!run_case_vs_ref(&slow, 830));
    ck_assert_int_eq(timer_calls, 4);
    /* another transpose or thread count is another shape */
    gemm_case fast_ta = {256, 130, 129, true, false, 1.0f, 1.0f};
    run_case_vs_ref(&fast_ta, 840);
    ck_assert_int_eq(timer_calls, 6);
    set_threads(1);
    ck_assert_int_eq(run_case_vs_ref(&fast, 850), onednn_built());
    ck_assert_int_eq(timer_calls, 8);
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 256, 130, 129, false, true, 1, NULL,
                                         NULL), 1);
    set_threads(2);
    /* small products, and products inside a parallel region, are never measured */
    gemm_case small = {256, 40, 50, false, false, 1.0f, 0.0f};
    ck_assert(256.0 * 40 * 50 < ZL_CPU_GEMM_F32_MIN_MACS);
    ck_assert(!run_case_vs_ref(&small, 860));
    ck_assert_int_eq(timer_calls, 8);
    gemm_run r;
    gemm_case inner = {256, 140, 140, false, false, 1.0f, 0.0f};
    run_prepare(&r, &inner, 870);
#pragma omp parallel num_threads(2)
#pragma omp single
    run_gemm(&r);
    run_verify(&r);
    run_free(&r);
    ck_assert_int_eq(timer_calls, 8);
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 256, 140, 140, false, false, 2, NULL,
                                         NULL), -1);
    zl__cpu_gemm_choice_set_timer(NULL);
}
END_TEST

/* The choices as text (what a checkpoint keeps): saved, forgotten, loaded back, they are
 * taken without measuring again; a resumed run computes as the run it resumes. */
START_TEST(test_cpu_gemm_choices_survive_as_text)
{
    set_threads(2);
    pin_f32_path("measure");
    zl__cpu_gemm_choice_set_timer(fake_timer);
    timer_calls = 0;
    gemm_case fast = {256, 130, 129, false, true, 1.0f, 1.0f}, slow = {257, 130, 129, false, true, 1.0f, 0.0f};
    run_case_vs_ref(&fast, 1000);
    run_case_vs_ref(&slow, 1010);
    ck_assert_int_eq(timer_calls, 4);
    size_t need = zl__cpu_gemm_choices_save(NULL, 0);
    char *text = malloc(need);
    ck_assert_uint_eq(zl__cpu_gemm_choices_save(text, need), need);
    ck_assert_uint_eq(strlen(text) + 1, need);
    ck_assert_ptr_nonnull(strstr(text, "fp32 256 130 129 0 1 2 onednn\n"));
    ck_assert_ptr_nonnull(strstr(text, "fp32 257 130 129 0 1 2 openblas\n"));
    /* A truncated buffer stays a string and says how much it needs. */
    char small[8];
    ck_assert_uint_eq(zl__cpu_gemm_choices_save(small, sizeof small), need);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    /* A new process (forget), the timings now the other way round: the loaded choices win. */
    zl__cpu_gemm_choice_forget();
    pin_f32_path("measure");
    ck_assert_int_eq(zl__cpu_gemm_choices_load(text), 2);
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 256, 130, 129, false, true, 2, NULL,
                                         NULL), 1);
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 257, 130, 129, false, true, 2, NULL,
                                         NULL), 0);
    run_case_vs_ref(&fast, 1020);
    run_case_vs_ref(&slow, 1030);
    ck_assert_int_eq(timer_calls, 4); /* nothing measured again */
    /* Lines it does not understand are skipped, the rest taken. */
    zl__cpu_gemm_choice_forget();
    ck_assert_int_eq(zl__cpu_gemm_choices_load("garbage\nfp32 1 2\nfp64 8 8 8 0 0 1 onednn\n"
                                               "fp32 8 8 8 0 0 1 maybe\nfp32 9 9 9 0 0 1 onednn"), 1);
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 9, 9, 9, false, false, 1, NULL, NULL), 1);
    ck_assert_int_eq(zl__cpu_gemm_choices_load(NULL), 0);
    free(text);
    zl__cpu_gemm_choice_forget();
    zl__cpu_gemm_choice_set_timer(NULL);
}
END_TEST

/* The fixed paths: ZL_GEMM_F32=openblas never runs oneDNN, =onednn runs it wherever it is
 * built in; neither measures. */
START_TEST(test_cpu_gemm_f32_fixed_paths)
{
    set_threads(2);
    gemm_case g = {300, 160, 128, false, false, 1.0f, 0.0f};
    pin_f32_path("openblas");
    ck_assert(!run_case_vs_ref(&g, 900));
    pin_f32_path("onednn");
    ck_assert_int_eq(run_case_vs_ref(&g, 910), onednn_built());
    ck_assert_int_eq(zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 300, 160, 128, false, false, 2, NULL,
                                         NULL), -1);
    pin_f32_path("bogus"); /* warned about, then measured (where there is a choice) */
    g_both_may_run = true;
    run_case_vs_ref(&g, 920);
    g_both_may_run = false;
    int choice = zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, 300, 160, 128, false, false, 2, NULL,
                                     NULL);
    ck_assert(onednn_built() ? choice == 0 || choice == 1 : choice == -1);
}
END_TEST

/* The real measurement on this CPU: both paths timed, the faster kept, the product right
 * whichever it is, and the next product of that shape runs only the chosen path. Without
 * oneDNN (configure --without-onednn) there is nothing to measure: OpenBLAS always. beta
 * = 1: the timed runs go to a scratch, and C is accumulated into once. */
START_TEST(test_cpu_gemm_f32_measured_here)
{
    set_threads(2);
    pin_f32_path("measure");
    for (int beta = 0; beta < 2; beta++) {
        int m = 512, n = 384 + beta, k = 256;
        gemm_case g = {m, n, k, false, true, 1.0f, (float)beta};
        g_both_may_run = true;
        bool ran = run_case_vs_ref(&g, 950 + beta);
        g_both_may_run = false;
        double to, tob;
        int choice = zl__cpu_gemm_choice(ZL_GEMM_CHOICE_F32, m, n, k, false, true, 2, &to, &tob);
        if (!onednn_built()) {
            ck_assert(!ran);
            ck_assert_int_eq(choice, -1);
            continue;
        }
        printf("fp32 %d x %d x %d (B^T) at 2 threads: oneDNN %.3f ms, OpenBLAS %.3f ms -> %s\n",
               m, n, k, 1e3 * to, 1e3 * tob, choice ? "oneDNN" : "OpenBLAS");
        ck_assert(isfinite(to) && isfinite(tob) && to > 0 && tob > 0);
        ck_assert_int_eq(choice, to < tob);
        ck_assert(ran); /* the measurement itself ran oneDNN (and OpenBLAS) */
        /* the next product runs only the chosen path (asserted inside) */
        ck_assert_int_eq(run_case_vs_ref(&g, 960 + beta), choice == 1);
    }
}
END_TEST

static Suite *cpu_gemm_suite(void)
{
    Suite *s = suite_create("cpu_gemm");
    TCase *tc = tcase_create("cpu_gemm");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_cpu_gemm_openblas_is_the_openmp_build);
    tcase_add_test(tc, test_cpu_gemm_two_threads_row_blocks_every_transpose);
    tcase_add_test(tc, test_cpu_gemm_three_threads_uneven_blocks);
    tcase_add_test(tc, test_cpu_gemm_one_thread_unsplit_and_agrees);
    tcase_add_test(tc, test_cpu_gemm_inside_parallel_region_not_split);
    tcase_add_test(tc, test_cpu_gemm_f32_onednn_every_transpose);
    tcase_add_test(tc, test_cpu_gemm_f32_inside_parallel_region_openblas);
    tcase_add_test(tc, test_cpu_gemm_f32_choice_by_injected_timings);
    tcase_add_test(tc, test_cpu_gemm_choices_survive_as_text);
    tcase_add_test(tc, test_cpu_gemm_f32_fixed_paths);
    tcase_add_test(tc, test_cpu_gemm_f32_measured_here);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(cpu_gemm_suite)
