/* The OpenBLAS kernel chosen by the CPU's features (backends/cpu/cpu_blas.h): the
 * decision with injected inputs, so every outcome is covered whatever CPU runs the tests,
 * and the switch itself on this machine's library: a library that fell back to Prescott
 * (standing in for one that does not know the CPU) is switched to the kernel of this CPU's
 * level, and sgemm still computes what ref does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_blas.h"
#include "backends/ops.h"
#include "check_util.h"
#include "core/device.h"

START_TEST(test_blas_kernel_levels)
{
    ck_assert_int_eq(zl_blas_kernel_level("Prescott"), ZL_ISA_SSE);
    ck_assert_int_eq(zl_blas_kernel_level("Nehalem"), ZL_ISA_SSE);
    ck_assert_int_eq(zl_blas_kernel_level("Sandybridge"), ZL_ISA_AVX);
    ck_assert_int_eq(zl_blas_kernel_level("Haswell"), ZL_ISA_AVX2);
    ck_assert_int_eq(zl_blas_kernel_level("Zen"), ZL_ISA_AVX2);
    ck_assert_int_eq(zl_blas_kernel_level("SkylakeX"), ZL_ISA_AVX512);
    ck_assert_int_eq(zl_blas_kernel_level("COOPERLAKE"), ZL_ISA_AVX512); /* any case */
    ck_assert_int_eq(zl_blas_kernel_level("unknown"), ZL_ISA_SSE);
    ck_assert_int_eq(zl_blas_kernel_level(NULL), ZL_ISA_SSE);
}
END_TEST

/* Every outcome of the rule. */
START_TEST(test_blas_choice_by_features)
{
    const char *why;
    /* the machine: 0.3.21 does not know an Emerald Rapids Xeon */
    ck_assert_str_eq(zl_blas_better_kernel("Prescott", ZL_ISA_AVX512, NULL, &why), "SkylakeX");
    ck_assert_ptr_nonnull(strstr(why, "switched"));
    ck_assert_str_eq(zl_blas_better_kernel("Prescott", ZL_ISA_AVX2, NULL, &why), "Haswell");
    ck_assert_str_eq(zl_blas_better_kernel("Core2", ZL_ISA_AVX, NULL, &why), "Sandybridge");
    /* an AVX2 kernel on an AVX-512 CPU (a Zen 4 that 0.3.21 takes for a Zen) */
    ck_assert_str_eq(zl_blas_better_kernel("Zen", ZL_ISA_AVX512, NULL, &why), "SkylakeX");
    /* kept: chosen for this CPU's level, or above it (the library knows better) */
    ck_assert_ptr_null(zl_blas_better_kernel("SkylakeX", ZL_ISA_AVX512, NULL, &why));
    ck_assert_ptr_nonnull(strstr(why, "library's choice"));
    ck_assert_ptr_null(zl_blas_better_kernel("Cooperlake", ZL_ISA_AVX512, NULL, &why));
    ck_assert_ptr_null(zl_blas_better_kernel("Zen", ZL_ISA_AVX2, NULL, &why));
    ck_assert_ptr_null(zl_blas_better_kernel("Prescott", ZL_ISA_SSE, NULL, &why));
    /* the user's OPENBLAS_CORETYPE wins, even over a fallback */
    ck_assert_ptr_null(zl_blas_better_kernel("Prescott", ZL_ISA_AVX512, "Prescott", &why));
    ck_assert_ptr_nonnull(strstr(why, "OPENBLAS_CORETYPE"));
    /* an empty OPENBLAS_CORETYPE is unset, as OpenBLAS reads it */
    ck_assert_str_eq(zl_blas_better_kernel("Prescott", ZL_ISA_AVX512, "", &why), "SkylakeX");
}
END_TEST

/* C (m,n) = A (m,k) B (k,n) through a table, into c. */
static void gemm(const zl_ops *ops, float *c, const float *a, const float *b, int m, int n, int k)
{
    ops->gemm(ops, c, a, b, m, n, k, k, n, n, false, false, 1.0f, 0.0f);
}

static void check_sgemm_matches_ref(const char *when)
{
    enum { M = 67, N = 45, K = 129 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c = malloc(sizeof(float) * M * N), *r = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (int i = 0; i < K * N; i++) b[i] = (float)((i * 53) % 97) / 97.0f - 0.5f;
    gemm(&zl_ops_cpu, c, a, b, M, N, K);
    gemm(&zl_ops_ref, r, a, b, M, N, K);
    for (int i = 0; i < M * N; i++)
        ck_assert_msg(fabsf(c[i] - r[i]) <= 1e-5f * (1 + fabsf(r[i])), "%s: c[%d] %g, ref %g", when,
                      i, c[i], r[i]);
    free(a);
    free(b);
    free(c);
    free(r);
}

/* The switch on this machine's OpenBLAS: to Prescott (a library that fell back), then
 * the setup brings the kernel of this CPU's level; sgemm agrees with ref throughout. */
START_TEST(test_blas_switch_and_setup)
{
    if (getenv("OPENBLAS_CORETYPE")) {
        printf("OPENBLAS_CORETYPE is set: the setup keeps it; nothing to switch\n");
        return;
    }
    if (!zl__cpu_blas_switch("Prescott")) {
        /* not a DYNAMIC_ARCH OpenBLAS: the setup must say it kept the library's kernel */
        zl_cpu_blas_setup();
        printf("no kernel switch in this BLAS: %s\n", zl_cpu_blas_report());
        ck_assert_ptr_null(strstr(zl_cpu_blas_report(), "the library chose"));
        return;
    }
    ck_assert_str_eq(zl_cpu_blas_kernel(), "Prescott");
    ck_assert(getenv("OPENBLAS_CORETYPE") == NULL); /* put back as it was */
    check_sgemm_matches_ref("Prescott");
    zl_device dev; /* the cpu backend's setup runs with its first device */
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "test", 0), ZL_OK);
    const char *report = zl_cpu_blas_report();
    printf("%s\n", report);
    zl_isa_level cpu = zl_cpu_isa_level();
    if (cpu == ZL_ISA_SSE) {
        ck_assert_str_eq(zl_cpu_blas_kernel(), "Prescott");
    } else {
        ck_assert_int_eq(zl_blas_kernel_level(zl_cpu_blas_kernel()), cpu);
        ck_assert_ptr_nonnull(strstr(report, "the library chose Prescott (SSE)"));
        ck_assert_ptr_nonnull(strstr(report, zl_isa_name(cpu)));
    }
    check_sgemm_matches_ref(zl_cpu_blas_kernel());
    /* once per process: a second device changes nothing */
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "test", 0), ZL_OK);
    ck_assert_str_eq(zl_cpu_blas_report(), report);
}
END_TEST

static Suite *blas_suite(void)
{
    Suite *s = suite_create("cpu_blas");
    TCase *tc = tcase_create("cpu_blas");
    tcase_add_test(tc, test_blas_kernel_levels);
    tcase_add_test(tc, test_blas_choice_by_features);
    tcase_add_test(tc, test_blas_switch_and_setup);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(blas_suite)
