/* The CUDA path end to end: a kernel runs on device 0 and its result comes back.
 * Exits 77 (skip) on a machine without a CUDA device, as every GPU test does. */
#include <stdio.h>

#include "backends/cuda/cuda_probe.h"
#include "check_util.h"

START_TEST(test_cuda_selftest)
{
    zl_status st = zl_cuda_selftest(1000);
    ck_assert_msg(st == ZL_OK, "%s", zl_last_error());
}
END_TEST

static Suite *cuda_suite(void)
{
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("probe");
    tcase_add_test(tc, test_cuda_selftest);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (zl_cuda_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    return zl_test_run(cuda_suite());
}
