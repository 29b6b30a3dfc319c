/* The cpu backend's gemm_lp (cpu_gemm_lp.c): bf16 operands through oneDNN's bf16 matmul
 * where the CPU has AVX512-BF16, sgemm otherwise. Every transpose, odd shapes, padded
 * leading dimensions, alpha, beta = 0 over NaN and beta = 1 (accumulate), the columns of C
 * past n untouched, shapes on both sides of the size rule, tall products in row blocks,
 * primitives built at 1 and at 2 threads; fp16 and fp32 operands take sgemm. Each product runs twice: through gemm_lp
 * (its size rules) and straight on oneDNN (zl__cpu_gemm_lp_onednn), so that the small and
 * odd shapes the rules keep on sgemm are checked on oneDNN too.
 *
 * Expected values: a double-precision loop over the same (bf16-exact) operands. Products
 * of two bf16 values are exact in f32, so the only error is the f32 summation in whatever
 * order the library chooses: |got - want| <= 2 (k + 2) FLT_EPSILON (|alpha| sum |a b| +
 * |beta c|), the standard bound (k - 1 additions, the alpha and beta terms, with a factor
 * 2 of slack). zl_ops_ref.gemm, the project's oracle, obeys the same bound, so the two
 * f32 results agree within twice of it. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/ops.h"
#include "check_util.h"
#include "zl_build.h"
#include "base/dtype.h"
#include "base/rng.h"

#ifdef ZL_HAVE_ONEDNN
#include <dnnl.h>
#endif

static void fill(float *x, size_t n, uint64_t seed, zl_dtype t)
{
    for (size_t i = 0; i < n; i++) {
        float v = (float)(zl_rng_bits(seed, 0, i) % 2001) / 1000.0f - 1.0f;
        x[i] = t == ZL_BF16 ? zl_round_bf16(v) : t == ZL_F16 ? zl_round_f16(v) : v;
    }
}

/* The library can run bf16 products on oneDNN here: the CPU has AVX512-BF16, and oneDNN
 * may use it (ONEDNN_MAX_CPU_ISA=AVX512_CORE forbids it: the fallback with oneDNN built in). */
static bool onednn_expected(void)
{
#ifdef ZL_HAVE_ONEDNN
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return __builtin_cpu_supports("avx512bf16") &&
           (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
#else
    return false;
#endif
}

/* One product checked against the double loop and zl_ops_ref.gemm; returns whether oneDNN
 * ran it. direct: call zl__cpu_gemm_lp_onednn (t must be bf16), and when it declines
 * (returns false, C untouched), check nothing more than that it was expected to. */
static bool check_one_how(bool direct, zl_dtype t, int m, int n, int k, bool ta, bool tb,
                          float alpha, float beta)
{
    int pad = 3;
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int ar = ta ? k : m, br = tb ? n : k;
    float *a = malloc((size_t)ar * lda * 4), *b = malloc((size_t)br * ldb * 4);
    float *c = malloc((size_t)m * ldc * 4), *c0 = malloc((size_t)m * ldc * 4);
    fill(a, (size_t)ar * lda, 1, t);
    fill(b, (size_t)br * ldb, 2, t);
    fill(c0, (size_t)m * ldc, 3, ZL_F32);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            if (beta == 0.0f) c0[(size_t)i * ldc + j] = NAN; /* must not be read */
    memcpy(c, c0, (size_t)m * ldc * 4);
    float *cr = malloc((size_t)m * ldc * 4);
    memcpy(cr, c0, (size_t)m * ldc * 4);
    zl_ops_ref.gemm(&zl_ops_ref, cr, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    long before = zl__cpu_gemm_lp_onednn_calls();
    bool ran = true;
    if (direct)
        ran = zl__cpu_gemm_lp_onednn(c, a, b, ZL_F32, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    else
        zl_ops_cpu.gemm_lp(&zl_ops_cpu, c, a, b, ZL_F32, t, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    bool onednn = zl__cpu_gemm_lp_onednn_calls() > before;
    /* B stored as t itself (a model's 16-bit weights, ops.h): bit for bit the product with
     * B held in f32, on the same path, and in ref */
    if (t != ZL_F32 && (ran || !direct)) {
        uint16_t *b16 = malloc((size_t)br * ldb * 2);
        float *c16 = malloc((size_t)m * ldc * 4), *cr16 = malloc((size_t)m * ldc * 4);
        zl_convert(b16, t, b, ZL_F32, (size_t)br * ldb);
        memcpy(c16, c0, (size_t)m * ldc * 4);
        memcpy(cr16, c0, (size_t)m * ldc * 4);
        long before16 = zl__cpu_gemm_lp_onednn_calls();
        if (direct)
            ck_assert(zl__cpu_gemm_lp_onednn(c16, a, b16, t, m, n, k, lda, ldb, ldc, ta, tb, alpha,
                                             beta));
        else
            zl_ops_cpu.gemm_lp(&zl_ops_cpu, c16, a, b16, t, t, m, n, k, lda, ldb, ldc, ta, tb,
                               alpha, beta);
        /* (a first use's measurement runs oneDNN whichever path it then chooses) */
        ck_assert_msg(zl__cpu_gemm_lp_onednn_calls() == before16 || onednn,
                      "a 16-bit B took oneDNN where an f32 one did not");
        ck_assert_msg(memcmp(c16, c, (size_t)m * ldc * 4) == 0,
                      "%s m=%d n=%d k=%d ta=%d tb=%d: 16-bit B differs from f32 B", zl_dtype_name(t),
                      m, n, k, ta, tb);
        zl_ops_ref.gemm_lp(&zl_ops_ref, cr16, a, b16, t, t, m, n, k, lda, ldb, ldc, ta, tb, alpha,
                           beta);
        ck_assert_msg(memcmp(cr16, cr, (size_t)m * ldc * 4) == 0, "ref: 16-bit B differs");
        free(b16), free(c16), free(cr16);
    }
    if (direct) {
        ck_assert(onednn == ran);
        ck_assert_msg(ran == onednn_expected(), "oneDNN ran: %d, expected: %d", ran,
                      onednn_expected());
    }
    if (!ran) { /* declined: C untouched */
        ck_assert(memcmp(c, c0, (size_t)m * ldc * 4) == 0);
        free(a), free(b), free(c), free(c0), free(cr);
        return false;
    }
    double gamma = 2.0 * (k + 2) * FLT_EPSILON;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double x = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double y = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += x * y;
                mag += fabs(x * y);
            }
            double c_in = beta == 0.0f ? 0.0 : c0[(size_t)i * ldc + j];
            double want = alpha * sum + beta * c_in;
            double tol = gamma * (fabs(alpha) * mag + fabs(beta * c_in)) + 1e-30;
            float got = c[(size_t)i * ldc + j], ref = cr[(size_t)i * ldc + j];
            ck_assert_msg(fabs(got - want) <= tol,
                          "%s%s m=%d n=%d k=%d ta=%d tb=%d alpha=%g beta=%g: C[%d,%d] = %.9g, want %.9g (tol %.3g)",
                          zl_dtype_name(t), direct ? " (oneDNN)" : "", m, n, k, ta, tb, alpha,
                          beta, i, j, got, want, tol);
            ck_assert_msg(fabs(got - ref) <= 2 * tol,
                          "%s m=%d n=%d k=%d: C[%d,%d] = %.9g, zl_ops_ref.gemm %.9g (tol %.3g)",
                          zl_dtype_name(t), m, n, k, i, j, got, ref, 2 * tol);
        }
        for (int j = n; j < ldc; j++) /* padding columns untouched */
            ck_assert(memcmp(&c[(size_t)i * ldc + j], &c0[(size_t)i * ldc + j], 4) == 0);
    }
    free(a);
    free(b);
    free(c);
    free(c0);
    free(cr);
    return onednn;
}

static bool check_one(zl_dtype t, int m, int n, int k, bool ta, bool tb, float alpha, float beta)
{
    return check_one_how(false, t, m, n, k, ta, tb, alpha, beta);
}

START_TEST(test_gemm_lp_bf16_every_transpose)
{
    int shapes[][3] = {{1, 1, 1},    {3, 17, 5},     {17, 1, 3},      {1, 64, 255},
                       {64, 64, 64}, {255, 130, 97}, {96, 256, 160}, {300, 17, 255}};
    int big = 0, taken = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tr = 0; tr < 4; tr++) {
            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            bool ta = tr & 1, tb = tr & 2;
            bool large = (double)m * n * k >= (double)(1 << 20);
            bool on = check_one(ZL_BF16, m, n, k, ta, tb, 1.0f, 0.0f);
            on |= check_one(ZL_BF16, m, n, k, ta, tb, 1.0f, 1.0f);
            on |= check_one(ZL_BF16, m, n, k, ta, tb, 0.5f, 0.25f);
            if (large) big++, taken += on;
            else ck_assert_msg(!on, "a small product (%d x %d x %d) went to oneDNN", m, n, k);
            /* every shape straight on oneDNN (where it runs: asserted inside) */
            check_one_how(true, ZL_BF16, m, n, k, ta, tb, 1.0f, 0.0f);
            check_one_how(true, ZL_BF16, m, n, k, ta, tb, -1.5f, 1.0f);
        }
    if (onednn_expected()) {
        /* where the CPU has bf16 dot products, the large ones must run on them */
        ck_assert_int_gt(big, 0);
        ck_assert_int_eq(taken, big);
    } else {
        ck_assert_int_eq(taken, 0);
        printf("  (oneDNN not built in, or no AVX512-BF16: bf16 products checked on sgemm)\n");
    }
}
END_TEST

/* A transposed A taller than 8192 rows of C runs in row blocks (cpu_gemm_lp.c,
 * LP_BLOCK_M): blocks of C over column slices of A, the last one shorter. */
START_TEST(test_gemm_lp_bf16_tall_blocks)
{
    for (int tb = 0; tb < 2; tb++) {
        check_one_how(true, ZL_BF16, 8192 + 300, 17, 33, true, tb, 1.0f, 0.0f);
        check_one_how(true, ZL_BF16, 2 * 8192 + 5, 9, 20, true, tb, 0.5f, 1.0f);
    }
    ck_assert(check_one(ZL_BF16, 8192 + 300, 64, 64, true, false, 1.0f, 1.0f) ==
              onednn_expected());
}
END_TEST

/* The primitives are built for a thread count (oneDNN sizes its loops then): a product
 * run at 1 thread, then 2, then 1 again is right each time, and on oneDNN each time. */
START_TEST(test_gemm_lp_bf16_thread_counts)
{
    int saved = omp_get_max_threads();
    for (int rep = 0; rep < 3; rep++) {
        omp_set_num_threads(rep == 1 ? 2 : 1);
        bool on = check_one(ZL_BF16, 192, 320, 96, false, true, 1.0f, 1.0f);
        ck_assert(on == onednn_expected());
    }
    omp_set_num_threads(saved);
}
END_TEST

START_TEST(test_gemm_lp_fp16_and_fp32_use_sgemm)
{
    ck_assert(!check_one(ZL_F16, 128, 256, 512, false, true, 1.0f, 1.0f));
    ck_assert(!check_one(ZL_F32, 128, 256, 512, true, false, 1.0f, 0.0f));
}
END_TEST

/* ---- the measured choice (cpu_gemm_choice.c), with injected timings ----------------- */

static int timer_calls;

/* oneDNN takes 1 ms on shapes with m == 256 and sgemm 1 ms on the others; the other path
 * 2 ms: both outcomes, whatever CPU runs the test. fp32 decisions (the sgemm path's own,
 * cpu_gemm.c) are not this test's: they would count, and take OpenBLAS. */
static double fake_timer(zl_gemm_choice_kind kind, bool onednn, int m, int n, int k, bool ta,
                         bool tb)
{
    (void)n, (void)k, (void)ta, (void)tb;
    if (kind != ZL_GEMM_CHOICE_BF16) return onednn ? 2e-3 : 1e-3;
    timer_calls++;
    bool onednn_wins = m == 256;
    return onednn == onednn_wins ? 1e-3 : 2e-3;
}

static int lp_choice(int m, int n, int k, bool ta, bool tb, int nthr, double *to, double *ts)
{
    return zl__cpu_gemm_choice(ZL_GEMM_CHOICE_BF16, m, n, k, ta, tb, nthr, to, ts);
}

static void measure_mode(zl_gemm_timer timer)
{
    setenv("ZL_GEMM_LP", "measure", 1);
    zl__cpu_gemm_choice_forget(); /* also reads ZL_GEMM_LP again */
    zl__cpu_gemm_choice_set_timer(timer);
}

START_TEST(test_gemm_lp_choice_by_injected_timings)
{
    ck_assert(zl_gemm_prefer_onednn(1e-3, 2e-3));
    ck_assert(!zl_gemm_prefer_onednn(2e-3, 1e-3));
    ck_assert(!zl_gemm_prefer_onednn(1e-3, 1e-3)); /* a tie: the path every CPU has */
    measure_mode(fake_timer);
    int nthr = omp_get_max_threads();
    /* oneDNN measured faster for 256 x 96 x 128: chosen, and (where it can run) it runs */
    timer_calls = 0;
    bool ran = check_one(ZL_BF16, 256, 96, 128, false, true, 1.0f, 1.0f);
    ck_assert_int_eq(timer_calls, 2);
    double to, ts;
    ck_assert_int_eq(lp_choice(256, 96, 128, false, true, nthr, &to, &ts), 1);
    ck_assert(to == 1e-3 && ts == 2e-3);
    ck_assert(ran == onednn_expected());
    /* sgemm measured faster for 192 x 96 x 128: chosen, oneDNN does not run */
    ck_assert(!check_one(ZL_BF16, 192, 96, 128, false, true, 1.0f, 1.0f));
    ck_assert_int_eq(lp_choice(192, 96, 128, false, true, nthr, NULL, NULL), 0);
    ck_assert_int_eq(timer_calls, 4);
    /* stable within the run: the same shapes again are not measured again */
    ck_assert(check_one(ZL_BF16, 256, 96, 128, false, true, 0.5f, 0.0f) == onednn_expected());
    ck_assert(!check_one(ZL_BF16, 192, 96, 128, false, true, 1.0f, 0.0f));
    ck_assert_int_eq(timer_calls, 4);
    /* another transpose or thread count is another shape */
    check_one(ZL_BF16, 256, 96, 128, true, false, 1.0f, 1.0f);
    ck_assert_int_eq(timer_calls, 6);
    ck_assert_int_eq(lp_choice(256, 96, 128, false, true, nthr + 1, NULL, NULL), -1);
    /* fp16 and small products are never measured */
    check_one(ZL_F16, 256, 96, 128, false, false, 1.0f, 0.0f);
    check_one(ZL_BF16, 256, 8, 8, false, false, 1.0f, 0.0f);
    ck_assert_int_eq(timer_calls, 6);
    zl__cpu_gemm_choice_set_timer(NULL);
}
END_TEST

/* The fixed paths: ZL_GEMM_LP=sgemm never runs oneDNN, =onednn runs it wherever it can. */
START_TEST(test_gemm_lp_fixed_paths)
{
    setenv("ZL_GEMM_LP", "sgemm", 1);
    zl__cpu_gemm_choice_forget();
    ck_assert(!check_one(ZL_BF16, 256, 96, 128, false, false, 1.0f, 0.0f));
    setenv("ZL_GEMM_LP", "onednn", 1);
    zl__cpu_gemm_choice_forget();
    ck_assert(check_one(ZL_BF16, 256, 96, 128, false, false, 1.0f, 0.0f) == onednn_expected());
    ck_assert_int_eq(lp_choice(256, 96, 128, false, false, omp_get_max_threads(),
                                            NULL, NULL), -1); /* nothing measured */
}
END_TEST

/* The real measurement on this CPU: both paths timed (oneDNN's only where it can run),
 * the faster kept, and the product right whichever it is. */
START_TEST(test_gemm_lp_measured_here)
{
    measure_mode(NULL);
    int m = 512, n = 384, k = 256, nthr = omp_get_max_threads();
    bool ran = check_one(ZL_BF16, m, n, k, false, true, 1.0f, 0.0f);
    double to, ts;
    int choice = lp_choice(m, n, k, false, true, nthr, &to, &ts);
    if (!onednn_expected()) {
        ck_assert(!ran);
        ck_assert_int_eq(choice, -1); /* oneDNN cannot run: nothing to measure */
        return;
    }
    printf("bf16 %d x %d x %d at %d threads: oneDNN %.3f ms, sgemm %.3f ms -> %s\n", m, n, k,
           nthr, 1e3 * to, 1e3 * ts, choice ? "oneDNN" : "sgemm");
    ck_assert(isfinite(to) && isfinite(ts) && to > 0 && ts > 0);
    ck_assert_int_eq(choice, to < ts);
    /* the measurement itself ran oneDNN; the next product runs only the chosen path */
    ck_assert(ran);
    ck_assert(check_one(ZL_BF16, m, n, k, false, true, 1.0f, 1.0f) == (choice == 1));
}
END_TEST

static Suite *gemm_lp_suite(void)
{
    Suite *s = suite_create("cpu_gemm_lp");
    TCase *tc = tcase_create("gemm_lp");
    tcase_add_test(tc, test_gemm_lp_bf16_every_transpose);
    tcase_add_test(tc, test_gemm_lp_bf16_thread_counts);
    tcase_add_test(tc, test_gemm_lp_bf16_tall_blocks);
    tcase_add_test(tc, test_gemm_lp_fp16_and_fp32_use_sgemm);
    tcase_add_test(tc, test_gemm_lp_choice_by_injected_timings);
    tcase_add_test(tc, test_gemm_lp_fixed_paths);
    tcase_add_test(tc, test_gemm_lp_measured_here);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(gemm_lp_suite)
