/* The CUDA backend's runtime on a real GPU (backends/cuda/cuda.cu): the device layer's
 * budget becomes one arena, allocations come back zeroed and 256-byte aligned, transfers
 * round-trip, a double free is reported at the next check, and a cuda run's host device
 * is the cpu kernels on pinned memory. Exits 77 (skip) without a CUDA device. */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_probe.h"
#include "check_util.h"
#include "core/device.h"

START_TEST(test_arena_alloc_transfer)
{
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cuda", "gpu", (size_t)64 << 20), ZL_OK);
    ck_assert_uint_eq(dev.ledger.budget_nbytes, (size_t)64 << 20);
    float *a, *b;
    ck_assert_int_eq(zl_device_alloc(&dev, "a", 1000 * sizeof(float), (void **)&a), ZL_OK);
    ck_assert_int_eq(zl_device_alloc(&dev, "b", 1000 * sizeof(float), (void **)&b), ZL_OK);
    ck_assert_uint_eq((uintptr_t)a % 256, 0);
    ck_assert_uint_eq((uintptr_t)b % 256, 0);
    struct cudaPointerAttributes attr;
    ck_assert_int_eq(cudaPointerGetAttributes(&attr, a), cudaSuccess);
    ck_assert_int_eq(attr.type, cudaMemoryTypeDevice);
    static float host[1000], back[1000];
    for (int i = 0; i < 1000; i++) host[i] = (float)i;
    zl_device hostdev;
    ck_assert_int_eq(zl_device_init(&hostdev, ZL_DEVICE_HOST, "cuda", "host", 0), ZL_OK);
    ck_assert_str_eq(hostdev.ops->name, "cpu-pinned");
    float *pinned;
    ck_assert_int_eq(zl_device_alloc(&hostdev, "h", sizeof host, (void **)&pinned), ZL_OK);
    ck_assert_int_eq(cudaPointerGetAttributes(&attr, pinned), cudaSuccess);
    ck_assert_int_eq(attr.type, cudaMemoryTypeHost);
    for (int i = 0; i < 1000; i++) ck_assert(pinned[i] == 0.0f); /* zeroed */
    /* fresh device memory is zeroed */
    ck_assert_int_eq(zl_device_copy(&hostdev, pinned, &dev, a, sizeof host), ZL_OK);
    zl_device_copy_wait(&dev);
    for (int i = 0; i < 1000; i++) ck_assert(pinned[i] == 0.0f);
    /* host -> a -> b (ops->copy) -> host */
    memcpy(pinned, host, sizeof host);
    ck_assert_int_eq(zl_device_copy(&dev, a, &hostdev, pinned, sizeof host), ZL_OK);
    zl_device_copy_wait(&dev); /* the copy below reads a on compute */
    dev.ops->copy(dev.ops, b, a, sizeof host);
    zl_device_read(dev.ops, back, b, sizeof back);
    ck_assert_mem_eq(back, host, sizeof host);
    dev.ops->zero(dev.ops, b, sizeof host);
    zl_device_read(dev.ops, back, b, sizeof back);
    for (int i = 0; i < 1000; i++) ck_assert(back[i] == 0.0f);
    /* a freed block is taken again, zeroed */
    zl_device_free(&dev, "a", a, sizeof host);
    float *c;
    ck_assert_int_eq(zl_device_alloc(&dev, "c", sizeof host, (void **)&c), ZL_OK);
    ck_assert_ptr_eq(c, a);
    zl_device_read(dev.ops, back, c, sizeof back);
    for (int i = 0; i < 1000; i++) ck_assert(back[i] == 0.0f);
    /* the ledger refuses past the budget, with its report */
    void *big;
    ck_assert_int_eq(zl_device_alloc(&dev, "big", (size_t)65 << 20, &big), ZL_ERR_OOM);
    /* a double free shows at the next check */
    dev.ops->free(dev.ops, b);
    dev.ops->free(dev.ops, b);
    ck_assert_int_eq(dev.ops->check(dev.ops), ZL_ERR_DEVICE);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "freed twice"));
    ck_assert_int_eq(dev.ops->check(dev.ops), ZL_OK); /* reported once */
    zl_device_free(&hostdev, "h", pinned, sizeof host);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("cuda_runtime");
    TCase *tc = tcase_create("runtime");
    tcase_add_test(tc, test_arena_alloc_transfer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (zl_cuda_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    return zl_test_run(runtime_suite());
}
