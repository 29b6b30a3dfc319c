/* The vector helpers over f32/f16/bf16 buffers (core/vec.h): on 16-bit buffers longer
 * than one scratch piece (so the piecewise widening crosses a piece boundary), each
 * helper gives what the same operation gives elementwise in f32 with the 16-bit roundings
 * of the stored values; on f32 buffers they need no scratch. */
#include <math.h>
#include <stdlib.h>

#include "check_util.h"
#include "core/device.h"
#include "core/vec.h"

#define N (ZL_VEC_PIECE + 1000) /* two pieces, the second partial */

typedef struct fixture {
    zl_device dev;
    zl_vec_ctx v;
    float *scratch;
} fixture;

static void open_fixture(fixture *f)
{
    ck_assert_int_eq(zl_device_init(&f->dev, ZL_DEVICE_ACCEL, "cpu", "vec", 0), ZL_OK);
    f->scratch = malloc(ZL_VEC_SCRATCH_NUMEL * sizeof(float));
    ck_assert_ptr_nonnull(f->scratch);
    f->v = (zl_vec_ctx){.device = &f->dev, .scratch = f->scratch};
}

static void close_fixture(fixture *f) { free(f->scratch); }

/* x[i] as a 16-bit buffer of type t, and its values widened back into ref */
static void *half_of(zl_dtype t, float *ref, float base)
{
    uint16_t *h = malloc(N * sizeof *h);
    ck_assert_ptr_nonnull(h);
    for (size_t i = 0; i < N; i++) ref[i] = base + 0.001f * (float)(i % 977) - 0.3f;
    zl_convert(h, t, ref, ZL_F32, N);
    zl_convert(ref, ZL_F32, h, t, N);
    return h;
}

static void check_type(zl_dtype t)
{
    fixture f;
    open_fixture(&f);
    float *rx = malloc(N * sizeof *rx), *ry = malloc(N * sizeof *ry), *got = malloc(N * sizeof *got);
    ck_assert(rx && ry && got);
    void *x = half_of(t, rx, 0.5f), *y = half_of(t, ry, -1.25f);

    /* sum of squares, in double over the widened values */
    double want = 0;
    for (size_t i = 0; i < N; i++) want += (double)rx[i] * rx[i];
    ck_assert_double_eq_tol(zl_vec_sumsq(&f.v, x, t, N), want, 1e-6 * want);

    /* y += x, each sum rounded to t */
    zl_vec_add(&f.v, y, t, x, t, N);
    zl_convert(got, ZL_F32, y, t, N);
    for (size_t i = 0; i < N; i++) {
        float s = ry[i] + rx[i];
        float r = t == ZL_F16 ? zl_round_f16(s) : zl_round_bf16(s);
        ck_assert_msg(got[i] == r, "add [%zu]: %g, want %g", i, got[i], r);
    }

    /* x *= 2: exact in binary */
    zl_vec_scale(&f.v, x, t, 2.0f, N);
    zl_convert(got, ZL_F32, x, t, N);
    for (size_t i = 0; i < N; i++) ck_assert_msg(got[i] == 2 * rx[i], "scale [%zu]", i);

    /* inf/nan in the second piece only, then none */
    ck_assert(!zl_vec_nonfinite(&f.v, x, t, N));
    float inf = INFINITY;
    zl_convert(zl__at(x, t, N - 1), t, &inf, ZL_F32, 1);
    ck_assert(zl_vec_nonfinite(&f.v, x, t, N));
    ck_assert(!zl_vec_nonfinite(&f.v, x, t, N - 1));

    free(x);
    free(y);
    free(rx);
    free(ry);
    free(got);
    close_fixture(&f);
}

START_TEST(test_vec_f16) { check_type(ZL_F16); }
END_TEST

START_TEST(test_vec_bf16) { check_type(ZL_BF16); }
END_TEST

/* f32 buffers run the kernels in place: no scratch needed, and f32 + f16 mixes widen
 * only the 16-bit side. */
START_TEST(test_vec_f32_needs_no_scratch)
{
    fixture f;
    open_fixture(&f);
    zl_vec_ctx bare = {.device = &f.dev, .scratch = NULL};
    float x[5] = {1, -2, 3, -4, 0.5f}, y[5] = {1, 1, 1, 1, 1};
    ck_assert_double_eq(zl_vec_sumsq(&bare, x, ZL_F32, 5), 1 + 4 + 9 + 16 + 0.25);
    zl_vec_add(&bare, y, ZL_F32, x, ZL_F32, 5);
    ck_assert(y[1] == -1 && y[4] == 1.5f);
    zl_vec_scale(&bare, y, ZL_F32, -2, 5);
    ck_assert(y[0] == -4 && y[4] == -3);
    ck_assert(!zl_vec_nonfinite(&bare, y, ZL_F32, 5));
    y[2] = NAN;
    ck_assert(zl_vec_nonfinite(&bare, y, ZL_F32, 5));

    uint16_t h[5];
    zl_convert(h, ZL_F16, x, ZL_F32, 5);
    float acc[5] = {0};
    zl_vec_add(&f.v, acc, ZL_F32, h, ZL_F16, 5);
    for (int i = 0; i < 5; i++) ck_assert(acc[i] == x[i]);
    close_fixture(&f);
}
END_TEST

static Suite *vec_suite(void)
{
    Suite *s = suite_create("vec");
    TCase *tc = tcase_create("vec");
    tcase_add_test(tc, test_vec_f16);
    tcase_add_test(tc, test_vec_bf16);
    tcase_add_test(tc, test_vec_f32_needs_no_scratch);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(vec_suite)
