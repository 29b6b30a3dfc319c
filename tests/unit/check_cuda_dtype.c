/* The CUDA kernels' 16-bit conversions (backends/cuda/cuda_dtype.cuh), compiled here for
 * the host, against base/dtype.c bit for bit: every f16 and bf16 pattern widened, and f32
 * values narrowed around every rounding boundary (each upper half with the lower bits
 * that decide ties, plus a stride through all 2^32 patterns). The GPU runs the same
 * source, so this is the test of its rounding that a machine without a GPU can run. */
#include <stdio.h>

#include "backends/cuda/cuda_dtype.cuh"
#include "base/dtype.h"
#include "check_util.h"

START_TEST(test_widen_every_pattern)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float a = zl__hd_f16_to_f32((uint16_t)h), b = zl_f16_to_f32((uint16_t)h);
        if (zl__hd_f32_bits(a) != zl__hd_f32_bits(b))
            ck_abort_msg("f16 0x%04x: 0x%08x, host 0x%08x", h, zl__hd_f32_bits(a),
                         zl__hd_f32_bits(b));
        a = zl__hd_bf16_to_f32((uint16_t)h), b = zl_bf16_to_f32((uint16_t)h);
        if (zl__hd_f32_bits(a) != zl__hd_f32_bits(b)) ck_abort_msg("bf16 0x%04x", h);
    }
}
END_TEST

/* Mismatches are tested with plain ifs (a Check assertion per value would be most of the
 * test's time) and reported by the first one. */
static void check_narrow(uint32_t u)
{
    float x = zl__hd_bits_f32(u);
    uint16_t h = zl__hd_f32_to_f16(x), hh = zl_f32_to_f16(x);
    if (h != hh) ck_abort_msg("f32 0x%08x -> f16 0x%04x, host 0x%04x", u, h, hh);
    uint16_t b = zl__hd_f32_to_bf16(x), bh = zl_f32_to_bf16(x);
    if (b != bh) ck_abort_msg("f32 0x%08x -> bf16 0x%04x, host 0x%04x", u, b, bh);
    if (zl__hd_f32_bits(zl__hd_round(x, ZL_F16)) != zl__hd_f32_bits(zl_round_f16(x)))
        ck_abort_msg("round f16 0x%08x", u);
    if (zl__hd_f32_bits(zl__hd_round(x, ZL_BF16)) != zl__hd_f32_bits(zl_round_bf16(x)))
        ck_abort_msg("round bf16 0x%08x", u);
}

START_TEST(test_narrow_boundaries)
{
    /* Low halves that sit on or beside bf16's tie (0x8000) and f16's (0x1000 within the
     * 13 dropped bits), and subnormal f16 ties, whose boundaries are higher bits. */
    static const uint32_t low[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000,
                                   0x3000, 0x7fff, 0x8000, 0x8001, 0x9000, 0xc000, 0xffff};
    for (uint32_t hi = 0; hi < 0x10000u; hi++)
        for (size_t k = 0; k < sizeof low / sizeof low[0]; k++) check_narrow(hi << 16 | low[k]);
    for (uint64_t u = 0; u < 0x100000000ull; u += 65537) check_narrow((uint32_t)u);
}
END_TEST

START_TEST(test_load_store)
{
    uint16_t h16[3];
    float f[3] = {1.0f / 3.0f, 65520.0f, -0x1p-25f};
    for (int t = ZL_F16; t <= ZL_BF16; t++) {
        uint16_t want[3];
        zl_convert(want, (zl_dtype)t, f, ZL_F32, 3);
        for (size_t i = 0; i < 3; i++) zl__hd_store(h16, t, i, f[i]);
        ck_assert_mem_eq(h16, want, sizeof want);
        for (size_t i = 0; i < 3; i++) {
            float w;
            zl_convert(&w, ZL_F32, &want[i], (zl_dtype)t, 1);
            ck_assert_uint_eq(zl__hd_f32_bits(zl__hd_load(h16, t, i)), zl__hd_f32_bits(w));
        }
    }
    float g[1];
    zl__hd_store(g, ZL_F32, 0, f[0]);
    ck_assert_float_eq(zl__hd_load(g, ZL_F32, 0), f[0]);
}
END_TEST

static Suite *cuda_dtype_suite(void)
{
    Suite *s = suite_create("cuda_dtype");
    TCase *tc = tcase_create("host");
    tcase_add_test(tc, test_widen_every_pattern);
    tcase_add_test(tc, test_narrow_boundaries);
    tcase_add_test(tc, test_load_store);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run(cuda_dtype_suite()); }
