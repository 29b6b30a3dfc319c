/* dtype conversions against bit-pattern tables: exact values, ties (to even), overflow to
 * infinity, subnormals, signed zero, NaN. Every expected pattern is worked out from the
 * IEEE 754 formats, not from the code under test. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "base/dtype.h"

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

typedef struct { uint32_t f32; uint16_t half; const char *what; } case16;

/* f32 -> f16, round to nearest even. */
static const case16 to_f16[] = {
    {0x00000000, 0x0000, "+0"},
    {0x80000000, 0x8000, "-0"},
    {0x3f800000, 0x3c00, "1.0"},
    {0xbf800000, 0xbc00, "-1.0"},
    {0x40490fdb, 0x4248, "pi -> 3.140625"},
    {0x477fe000, 0x7bff, "65504, largest finite"},
    {0x477fefff, 0x7bff, "65519.99: below the midpoint, stays 65504"},
    {0x477ff000, 0x7c00, "65520: tie between 65504 and 65536 rounds to even = inf"},
    {0x47800000, 0x7c00, "65536 -> inf"},
    {0x7f7fffff, 0x7c00, "FLT_MAX -> inf"},
    {0xff7fffff, 0xfc00, "-FLT_MAX -> -inf"},
    {0x7f800000, 0x7c00, "+inf"},
    {0xff800000, 0xfc00, "-inf"},
    {0x3f801000, 0x3c00, "1 + 2^-11: tie, even neighbour is 1.0"},
    {0x3f803000, 0x3c02, "1 + 3*2^-11: tie, even neighbour is 1 + 2^-9"},
    {0x3f801001, 0x3c01, "just above the tie rounds up"},
    {0x38800000, 0x0400, "2^-14, smallest normal"},
    {0x33800000, 0x0001, "2^-24, smallest subnormal"},
    {0x387fc000, 0x03ff, "largest subnormal (1023 * 2^-24)"},
    {0x33000000, 0x0000, "2^-25: tie between 0 and 2^-24 rounds to even = 0"},
    {0x33000001, 0x0001, "just above 2^-25 rounds up to 2^-24"},
    {0x33c00000, 0x0002, "1.5 * 2^-24: tie, rounds to even = 2 * 2^-24"},
    {0x32ffffff, 0x0000, "below half the smallest subnormal -> 0"},
    {0xb3800000, 0x8001, "-2^-24"},
    {0x387fe000, 0x0400, "1023.5 * 2^-24 rounds up into the smallest normal"},
};

/* f32 -> bf16, round to nearest even. */
static const case16 to_bf16[] = {
    {0x00000000, 0x0000, "+0"},
    {0x80000000, 0x8000, "-0"},
    {0x3f800000, 0x3f80, "1.0"},
    {0x40490fdb, 0x4049, "pi -> 3.140625"},
    {0x3f808000, 0x3f80, "1 + 2^-8: tie, even neighbour is 1.0"},
    {0x3f818000, 0x3f82, "1 + 3*2^-8: tie, rounds up to even"},
    {0x3f808001, 0x3f81, "just above the tie rounds up"},
    {0x7f7fffff, 0x7f80, "FLT_MAX rounds to inf"},
    {0x7f7f7fff, 0x7f7f, "below the midpoint stays the largest finite bf16"},
    {0x7f800000, 0x7f80, "+inf"},
    {0xff800000, 0xff80, "-inf"},
    {0x00000001, 0x0000, "smallest f32 subnormal rounds to 0"},
    {0x00008000, 0x0000, "tie at subnormal rounds to even 0"},
    {0x00018000, 0x0002, "tie at subnormal rounds to even 2"},
};

START_TEST(test_dtype_f32_to_f16_table)
{
    for (size_t i = 0; i < sizeof to_f16 / sizeof to_f16[0]; i++) {
        uint16_t got = zl_f32_to_f16(f32_from_bits(to_f16[i].f32));
        ck_assert_msg(got == to_f16[i].half, "f16(%s): got 0x%04x want 0x%04x", to_f16[i].what,
                      got, to_f16[i].half);
    }
}
END_TEST

START_TEST(test_dtype_f32_to_bf16_table)
{
    for (size_t i = 0; i < sizeof to_bf16 / sizeof to_bf16[0]; i++) {
        uint16_t got = zl_f32_to_bf16(f32_from_bits(to_bf16[i].f32));
        ck_assert_msg(got == to_bf16[i].half, "bf16(%s): got 0x%04x want 0x%04x", to_bf16[i].what,
                      got, to_bf16[i].half);
    }
}
END_TEST

START_TEST(test_dtype_nan_stays_nan)
{
    /* A NaN whose payload sits only in the low bits must not become inf when truncated. */
    float nan_low = f32_from_bits(0x7f800001);
    float nan_neg = f32_from_bits(0xffc00000);
    ck_assert(isnan(zl_f16_to_f32(zl_f32_to_f16(nan_low))));
    ck_assert(isnan(zl_bf16_to_f32(zl_f32_to_bf16(nan_low))));
    ck_assert(isnan(zl_bf16_to_f32(zl_f32_to_bf16(nan_neg))));
    ck_assert_uint_eq(zl_f32_to_bf16(nan_neg) & 0x8000u, 0x8000u);
    ck_assert_uint_eq(zl_f32_to_f16(nan_neg) & 0x8000u, 0x8000u);
    ck_assert(isnan(zl_f16_to_f32(0x7e00)));
    ck_assert(isnan(zl_bf16_to_f32(0x7fc1)));
}
END_TEST

START_TEST(test_dtype_f16_decode_all_exact)
{
    /* Every finite f16 decodes to a float that encodes back to the same pattern, and the
     * decoded value matches the format's definition (sign * 2^(e-15) * 1.m, or m * 2^-24). */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0x1f) continue;
        double want = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp((double)m, -24);
        if (h & 0x8000) want = -want;
        float got = zl_f16_to_f32((uint16_t)h);
        ck_assert_msg((double)got == want, "decode 0x%04x: got %.9g want %.9g", h, got, want);
        ck_assert_msg(zl_f32_to_f16(got) == h, "round trip 0x%04x", h);
    }
}
END_TEST

START_TEST(test_dtype_bf16_round_trip_all)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = zl_bf16_to_f32((uint16_t)h);
        ck_assert_uint_eq(bits_of(f), h << 16);
        if (!isnan(f)) ck_assert_uint_eq(zl_f32_to_bf16(f), h);
    }
}
END_TEST

START_TEST(test_dtype_f16_matches_double_rounding)
{
    /* Against an independent oracle: for many f32 values, the f16 result must be the
     * nearest f16 (ties to even) as found by searching neighbours in double precision. */
    for (uint32_t k = 0; k < 200000; k++) {
        uint32_t u = 0x33000000u + k * 0x1234u; /* sweeps 2^-25 .. past 65504 */
        if (u >= 0x47800000u) break;
        float x = f32_from_bits(u);
        uint16_t h = zl_f32_to_f16(x);
        if (h == 0x7c00) { /* IEEE overflow: everything from 65520 (the midpoint) up */
            ck_assert_msg(x >= 65520.0f, "x=%.9g overflowed early", x);
            continue;
        }
        double got = zl_f16_to_f32(h), err = fabs(got - x);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((n & 0x7c00) == 0x7c00) continue;
            double alt = zl_f16_to_f32(n), alt_err = fabs(alt - x);
            ck_assert_msg(err < alt_err || (err == alt_err && (h & 1) == 0),
                          "x=%.9g -> 0x%04x is not the nearest even", x, h);
        }
    }
}
END_TEST

START_TEST(test_dtype_convert_arrays)
{
    float src[5] = {1.0f, -2.5f, 65520.0f, 1e-8f, 3.0f};
    uint16_t h[5], b[5];
    float back[5];
    zl_convert(h, ZL_F16, src, ZL_F32, 5);
    zl_convert(b, ZL_BF16, h, ZL_F16, 5);
    zl_convert(back, ZL_F32, b, ZL_BF16, 5);
    ck_assert_uint_eq(h[2], 0x7c00);
    ck_assert(isinf(back[2]));
    ck_assert(back[0] == 1.0f && back[1] == -2.5f && back[4] == 3.0f);
    ck_assert_float_eq(back[3], zl_round_bf16(zl_round_f16(1e-8f)));
}
END_TEST

START_TEST(test_dtype_names_and_parse)
{
    zl_dtype dt;
    ck_assert_int_eq(zl_dtype_parse("bfloat16", &dt), ZL_OK);
    ck_assert_int_eq(dt, ZL_BF16);
    ck_assert_int_eq(zl_dtype_parse("fp16", &dt), ZL_OK);
    ck_assert_int_eq(dt, ZL_F16);
    ck_assert_int_eq(zl_dtype_parse("fp8", &dt), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "fp8"));
    ck_assert_str_eq(zl_dtype_name(ZL_BF16), "bf16");
    ck_assert_uint_eq(zl_dtype_nbytes(ZL_F16), 2);
    ck_assert_uint_eq(zl_dtype_nbytes(ZL_I32), 4);
}
END_TEST

static Suite *dtype_suite(void)
{
    Suite *s = suite_create("dtype");
    TCase *tc = tcase_create("conversions");
    tcase_add_test(tc, test_dtype_f32_to_f16_table);
    tcase_add_test(tc, test_dtype_f32_to_bf16_table);
    tcase_add_test(tc, test_dtype_nan_stays_nan);
    tcase_add_test(tc, test_dtype_f16_decode_all_exact);
    tcase_add_test(tc, test_dtype_bf16_round_trip_all);
    tcase_add_test(tc, test_dtype_f16_matches_double_rounding);
    tcase_add_test(tc, test_dtype_convert_arrays);
    tcase_add_test(tc, test_dtype_names_and_parse);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(dtype_suite)
