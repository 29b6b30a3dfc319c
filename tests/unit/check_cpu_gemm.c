/* The cpu backend's gemm where it cuts C into row blocks, one per thread (cpu_gemm.c):
 * shapes that take the split with blocks of odd sizes, every transpose, padded leading
 * dimensions, alpha/beta including beta = 1 (accumulate) and beta = 0 over NaN, team sizes
 * 1, 2 and 3, and calls made inside a parallel region.
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

#include "backends/ops.h"
#include "check_util.h"

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

static void setup(void)
{
    cpu = zl_ops_find("cpu");
    ck_assert_ptr_nonnull(cpu);
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
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(cpu_gemm_suite)
