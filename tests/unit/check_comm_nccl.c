/* The NCCL communicator's host-side decisions (comm/comm_nccl.h), which need no GPU: where
 * a call goes for each kind of memory, NCCL's types and reductions for zerolab's, and
 * the set-up's refusals. The collectives themselves: tests/gpu/check_nccl.c. Built with
 * the CUDA toolkit only (it links libcudart and libnccl, which load without a device). */
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_ops.h"
#include "check_util.h"
#include "comm/comm.h"
#include "comm/comm_nccl.h"

#define NONE ZL__NCCL_MEM_NONE
#define HOST ZL__NCCL_MEM_HOST
#define DEV ZL__NCCL_MEM_DEVICE
#define OTHER ZL__NCCL_MEM_OTHER_DEVICE

START_TEST(test_nccl_route)
{
    /* count 0: nothing moves, whatever the pointers (every rank agrees on the count) */
    ck_assert_int_eq(zl__nccl_route_of(0, DEV, HOST, true), ZL__NCCL_NOTHING);
    ck_assert_int_eq(zl__nccl_route_of(0, NONE, NONE, true), ZL__NCCL_NOTHING);
    /* host memory, alone or with an absent buffer: MPI */
    ck_assert_int_eq(zl__nccl_route_of(5, HOST, NONE, true), ZL__NCCL_HOST);
    ck_assert_int_eq(zl__nccl_route_of(5, NONE, HOST, true), ZL__NCCL_HOST);
    ck_assert_int_eq(zl__nccl_route_of(5, HOST, HOST, true), ZL__NCCL_HOST);
    ck_assert_int_eq(zl__nccl_route_of(5, HOST, HOST, false), ZL__NCCL_HOST);
    /* device memory: NCCL, if there is an NCCL side */
    ck_assert_int_eq(zl__nccl_route_of(5, DEV, NONE, true), ZL__NCCL_DEVICE);
    ck_assert_int_eq(zl__nccl_route_of(5, NONE, DEV, true), ZL__NCCL_DEVICE);
    ck_assert_int_eq(zl__nccl_route_of(5, DEV, DEV, true), ZL__NCCL_DEVICE);
    ck_assert_int_eq(zl__nccl_route_of(5, DEV, DEV, false), ZL__NCCL_HOST_ONLY);
    /* mixes and strangers are refused */
    ck_assert_int_eq(zl__nccl_route_of(5, DEV, HOST, true), ZL__NCCL_MIXED);
    ck_assert_int_eq(zl__nccl_route_of(5, HOST, DEV, true), ZL__NCCL_MIXED);
    ck_assert_int_eq(zl__nccl_route_of(5, OTHER, DEV, true), ZL__NCCL_WRONG_DEVICE);
    ck_assert_int_eq(zl__nccl_route_of(5, HOST, OTHER, true), ZL__NCCL_WRONG_DEVICE);
}
END_TEST

/* Host memory is host memory with or without a device: the heap, the stack, static
 * storage. NULL is no buffer. */
START_TEST(test_nccl_mem_of_host)
{
    static int global[4];
    int local[4] = {0};
    void *heap = malloc(64);
    ck_assert_int_eq(zl__nccl_mem_of(NULL, 0), ZL__NCCL_MEM_NONE);
    ck_assert_int_eq(zl__nccl_mem_of(heap, 0), ZL__NCCL_MEM_HOST);
    ck_assert_int_eq(zl__nccl_mem_of(local, 0), ZL__NCCL_MEM_HOST);
    ck_assert_int_eq(zl__nccl_mem_of(global, 0), ZL__NCCL_MEM_HOST);
    free(heap);
    /* The query leaves no error behind for a kernel's check to find. (Without a driver
     * every runtime call fails again, so only a machine with a device can tell.) */
    int n = 0;
    if (cudaGetDeviceCount(&n) == cudaSuccess && n > 0)
        ck_assert_int_eq(cudaGetLastError(), cudaSuccess);
    (void)cudaGetLastError();
}
END_TEST

START_TEST(test_nccl_dtype)
{
    int t;
    size_t per;
    static const struct { zl_dtype dt; int nccl; } map[] = {
        {ZL_F32, ncclFloat32}, {ZL_F16, ncclFloat16}, {ZL_BF16, ncclBfloat16},
        {ZL_I32, ncclInt32},   {ZL_F64, ncclFloat64},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        for (int reduces = 0; reduces < 2; reduces++) {
            ck_assert(zl__nccl_dtype(map[i].dt, reduces, &t, &per));
            ck_assert_int_eq(t, map[i].nccl);
            ck_assert_uint_eq(per, 1);
        }
    /* u16 moves as two bytes an element, and cannot be reduced */
    ck_assert(zl__nccl_dtype(ZL_U16, false, &t, &per));
    ck_assert_int_eq(t, ncclUint8);
    ck_assert_uint_eq(per, 2);
    ck_assert(!zl__nccl_dtype(ZL_U16, true, &t, &per));
    /* every type's NCCL size times per_elem is zerolab's element size */
    for (int dt = 0; dt < ZL_DTYPE_COUNT; dt++) {
        ck_assert(zl__nccl_dtype((zl_dtype)dt, false, &t, &per));
        size_t nccl_size = t == ncclFloat64 ? 8 : t == ncclFloat32 || t == ncclInt32 ? 4
                         : t == ncclUint8 ? 1 : 2;
        ck_assert_uint_eq(nccl_size * per, zl_dtype_nbytes((zl_dtype)dt));
    }
    ck_assert_int_eq(zl__nccl_redop(ZL_REDUCE_SUM), ncclSum);
    ck_assert_int_eq(zl__nccl_redop(ZL_REDUCE_MAX), ncclMax);
    ck_assert_int_eq(zl__nccl_redop(ZL_REDUCE_MIN), ncclMin);
}
END_TEST

/* A CUDA table without its context (setup not run): one clear refusal, nothing made. */
START_TEST(test_nccl_needs_context)
{
    zl_comm *host, *c = (zl_comm *)&c;
    ck_assert_int_eq(zl_comm_self(&host, NULL), ZL_OK);
    zl_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.name = "cuda";
    ck_assert_int_eq(zl_comm_nccl(&c, host, false, &ops, "world"), ZL_ERR_INVALID);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "NCCL communicator 'world'"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "no context"));
    zl_comm_destroy(host);
}
END_TEST

/* Without a device (this machine, CI): ZL_ERR_DEVICE saying so, not a crash in NCCL. */
START_TEST(test_nccl_without_device)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) == cudaSuccess && n > 0) return; /* a GPU: check_nccl's job */
    (void)cudaGetLastError();
    zl_comm *host, *c = (zl_comm *)&c;
    ck_assert_int_eq(zl_comm_self(&host, NULL), ZL_OK);
    zl_cuda_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    zl_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.name = "cuda";
    ops.ctx = &ctx;
    ck_assert_int_eq(zl_comm_nccl(&c, host, false, &ops, NULL), ZL_ERR_DEVICE);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "no CUDA device"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "'self'")); /* named after host */
    zl_comm_destroy(host);
}
END_TEST

static Suite *nccl_suite(void)
{
    Suite *s = suite_create("comm_nccl");
    TCase *tc = tcase_create("host");
    tcase_add_test(tc, test_nccl_route);
    tcase_add_test(tc, test_nccl_mem_of_host);
    tcase_add_test(tc, test_nccl_dtype);
    tcase_add_test(tc, test_nccl_needs_context);
    tcase_add_test(tc, test_nccl_without_device);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run(nccl_suite()); }
