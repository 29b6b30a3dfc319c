/* The NCCL communicator (src/comm/comm_nccl.c) against the MPI communicator, on the same
 * data: every collective, every dtype, every reduction, in place and out of place,
 * blocking and non-blocking; host buffers through the same handle; the log; split and
 * split_node; the refusals; the watchdog.
 *
 * Run (one GPU per rank; the ranks of one node take devices 0, 1, ...):
 *   tests/run-mpi.sh tests/gpu/nccl-np1.mpi      1 rank, 1 GPU (NCCL's one-rank paths)
 *   tests/run-mpi.sh tests/gpu/nccl-np2.mpi      2 ranks, 2 GPUs
 * or by hand: mpiexec -n 2 tests/gpu/check_nccl. Exits 77 (skip) without a device, or
 * with fewer GPUs on a node than ranks on it (NCCL needs a GPU per rank).
 *
 * Expected results: the MPI communicator's on host copies of the same data. At up to 2
 * ranks every reduction is a single operation on two values, correctly rounded whatever
 * the order, so NCCL must match MPI bit for bit, on random data (f16 and bf16 included:
 * NCCL rounds each partial sum to 16 bits, as MPI's 16-bit reductions do). Beyond 2
 * ranks the data are small multiples of 1/2, exact in every order. The ranks agree on
 * every check (zl_test_all_ok) before asserting it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "backends/cuda/cuda_ops.h"
#include "check_util.h"
#include "comm/comm.h"
#include "comm/comm_log.h"

static zl_comm *world; /* MPI: the expected results, and host of the NCCL one */
static zl_comm *nc;    /* NCCL, over world */
static zl_cuda_ctx ctx;
static zl_ops ops;
static zl_comm_log *nlog;

#define ALL_OK(cond) ck_assert(zl_test_all_ok(cond))
#define CU(call) ck_assert_msg((call) == cudaSuccess, "%s: %s", #call, cudaGetErrorString(cudaGetLastError()))

static const zl_dtype dtypes[] = {ZL_F32, ZL_F16, ZL_BF16, ZL_I32, ZL_F64};
enum { NDT = sizeof dtypes / sizeof dtypes[0] };
static const char *op_names[] = {"sum", "max", "min"};

static int ok_status(zl_status st, const char *what)
{
    if (st != ZL_OK) fprintf(stderr, "[rank %d] %s: %s\n", world->rank, what, zl_last_error());
    return st == ZL_OK;
}

/* ------------------------------------------------------------------ data */

static uint32_t hash(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352d;
    x ^= x >> 15;
    x *= 0x846ca68b;
    return x ^ (x >> 16);
}

/* Element i of rank r's data for call `seed`, in dt: random in [-4, 4) at up to 2 ranks,
 * else a multiple of 1/2 (exact sums in every order). Element 0 of a 16-bit type is the
 * largest f16 on every rank: its sum overflows to inf in f16 (and rounds in bf16). */
static void *make_data(zl_dtype dt, size_t n, int r, unsigned seed)
{
    size_t es = zl_dtype_nbytes(dt);
    unsigned char *p = malloc(n * es + 1);
    ck_assert_ptr_nonnull(p);
    bool exact = world->size > 2;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = hash((uint32_t)i * 2654435761u ^ (uint32_t)r * 40503u ^ seed * 97u);
        double x = exact ? ((int)(h % 41) - 20) * 0.5 : (h / 4294967296.0) * 8 - 4;
        void *dst = p + i * es;
        switch (dt) {
        case ZL_F32: { float f = (float)x; memcpy(dst, &f, 4); break; }
        case ZL_F64: memcpy(dst, &x, 8); break;
        case ZL_I32: { int32_t k = (int32_t)(h % 2001) - 1000; memcpy(dst, &k, 4); break; }
        case ZL_U16: { uint16_t u = (uint16_t)h; memcpy(dst, &u, 2); break; }
        case ZL_F16:
        case ZL_BF16: {
            float f = i == 0 ? 65504.0f : (float)x;
            uint16_t u = dt == ZL_F16 ? zl_f32_to_f16(f) : zl_f32_to_bf16(f);
            memcpy(dst, &u, 2);
            break;
        }
        default: ck_abort();
        }
    }
    return p;
}

static void *to_dev(const void *host, size_t nbytes)
{
    void *d = NULL;
    CU(cudaMalloc(&d, nbytes ? nbytes : 1));
    if (nbytes) CU(cudaMemcpy(d, host, nbytes, cudaMemcpyHostToDevice));
    return d;
}

static void *dev_alloc(size_t nbytes)
{
    void *d = NULL;
    CU(cudaMalloc(&d, nbytes ? nbytes : 1));
    return d;
}

static void *from_dev(const void *dev, size_t nbytes)
{
    void *h = malloc(nbytes + 1);
    ck_assert_ptr_nonnull(h);
    if (nbytes) CU(cudaMemcpy(h, dev, nbytes, cudaMemcpyDeviceToHost));
    return h;
}

/* 1 if got equals want bit for bit; else prints the first difference. */
static int same(const char *what, const void *got, const void *want, size_t n, zl_dtype dt)
{
    size_t es = zl_dtype_nbytes(dt);
    for (size_t i = 0; i < n; i++)
        if (memcmp((const char *)got + i * es, (const char *)want + i * es, es)) {
            uint64_t g = 0, w = 0;
            memcpy(&g, (const char *)got + i * es, es);
            memcpy(&w, (const char *)want + i * es, es);
            fprintf(stderr, "[rank %d] %s (%s): element %zu of %zu is 0x%llx, want 0x%llx\n",
                    world->rank, what, zl_dtype_name(dt), i, n, (unsigned long long)g,
                    (unsigned long long)w);
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------------ fixture */

static void setup(void)
{
    memset(&ctx, 0, sizeof ctx);
    zl_comm *node = NULL;
    ck_assert_int_eq(zl_comm_split_node(world, &node), ZL_OK);
    ctx.device = node->rank;
    zl_comm_destroy(node);
    CU(cudaSetDevice(ctx.device));
    CU(cudaStreamCreateWithFlags(&ctx.compute, cudaStreamNonBlocking));
    CU(cudaStreamCreateWithFlags(&ctx.comm, cudaStreamNonBlocking));
    CU(cudaStreamCreateWithFlags(&ctx.copy, cudaStreamNonBlocking));
    memset(&ops, 0, sizeof ops);
    ops.name = "cuda";
    ops.ctx = &ctx;
    ck_assert_int_eq(zl_comm_log_create(&nlog), ZL_OK);
    zl_status st = zl_comm_nccl(&nc, world, false, &ops, "world");
    ck_assert_msg(st == ZL_OK, "%s", zl_last_error());
    ck_assert_str_eq(nc->vt->name, "nccl");
    ck_assert_int_eq(nc->rank, world->rank);
    ck_assert_int_eq(nc->size, world->size);
    nc->log = nlog;
}

static void teardown(void)
{
    zl_comm_destroy(nc);
    nc = NULL;
    zl_comm_log_destroy(nlog);
    cudaStreamDestroy(ctx.compute);
    cudaStreamDestroy(ctx.comm);
    cudaStreamDestroy(ctx.copy);
}

/* ------------------------------------------------------------------ collectives */

static zl_status nccl_allreduce(void *buf, size_t n, zl_dtype dt, zl_reduce_op op, bool nb)
{
    if (!nb) return zl_comm_allreduce(nc, buf, n, dt, op);
    zl_comm_request req = {0};
    zl_status st = zl_comm_iallreduce(nc, buf, n, dt, op, &req);
    return st == ZL_OK ? zl_comm_wait(nc, &req) : st;
}

START_TEST(test_nccl_allreduce)
{
    enum { N = 1031 };
    unsigned seed = 1;
    for (int d = 0; d < NDT; d++)
        for (int op = ZL_REDUCE_SUM; op <= ZL_REDUCE_MIN; op++)
            for (int nb = 0; nb < 2; nb++, seed++) {
                zl_dtype dt = dtypes[d];
                size_t bytes = N * zl_dtype_nbytes(dt);
                void *want = make_data(dt, N, world->rank, seed);
                void *dev = to_dev(want, bytes);
                ALL_OK(ok_status(zl_comm_allreduce(world, want, N, dt, (zl_reduce_op)op), "mpi"));
                ALL_OK(ok_status(nccl_allreduce(dev, N, dt, (zl_reduce_op)op, nb), "nccl allreduce"));
                void *got = from_dev(dev, bytes);
                char what[64];
                snprintf(what, sizeof what, "allreduce %s%s", op_names[op], nb ? " (non-blocking)" : "");
                ALL_OK(same(what, got, want, N, dt));
                free(got);
                free(want);
                cudaFree(dev);
            }
}
END_TEST

/* 16 MiB of f32: more than one of NCCL's chunks and channels. */
START_TEST(test_nccl_allreduce_large)
{
    size_t n = (4u << 20) + 3;
    float *want = make_data(ZL_F32, n, world->rank, 777);
    float *dev = to_dev(want, n * 4);
    ALL_OK(ok_status(zl_comm_allreduce(world, want, n, ZL_F32, ZL_REDUCE_SUM), "mpi"));
    ALL_OK(ok_status(zl_comm_allreduce(nc, dev, n, ZL_F32, ZL_REDUCE_SUM), "nccl"));
    float *got = from_dev(dev, n * 4);
    ALL_OK(same("allreduce 16 MiB", got, want, n, ZL_F32));
    free(got);
    free(want);
    cudaFree(dev);
}
END_TEST

/* The collective sees what the compute stream wrote just before it: a copy queued on
 * ctx.compute (from pinned memory, so it is asynchronous) and not waited for. */
START_TEST(test_nccl_after_compute)
{
    size_t n = (8u << 20) + 1;
    float *data = make_data(ZL_F32, n, world->rank, 4242), *pinned;
    CU(cudaMallocHost((void **)&pinned, n * 4));
    memcpy(pinned, data, n * 4);
    float *dev;
    CU(cudaMalloc((void **)&dev, n * 4));
    CU(cudaMemset(dev, 0, n * 4));
    for (int nb = 0; nb < 2; nb++) {
        CU(cudaMemcpyAsync(dev, pinned, n * 4, cudaMemcpyHostToDevice, ctx.compute));
        ALL_OK(ok_status(nccl_allreduce(dev, n, ZL_F32, ZL_REDUCE_MAX, nb), "nccl"));
        float *got = from_dev(dev, n * 4);
        float *want = malloc(n * 4);
        memcpy(want, data, n * 4);
        ALL_OK(ok_status(zl_comm_allreduce(world, want, n, ZL_F32, ZL_REDUCE_MAX), "mpi"));
        ALL_OK(same(nb ? "after compute (non-blocking)" : "after compute", got, want, n, ZL_F32));
        free(got);
        free(want);
    }
    cudaFreeHost(pinned);
    cudaFree(dev);
    free(data);
}
END_TEST

START_TEST(test_nccl_reduce_scatter)
{
    enum { N = 517 };
    int W = world->size, r = world->rank;
    unsigned seed = 100;
    for (int d = 0; d < NDT; d++)
        for (int op = ZL_REDUCE_SUM; op <= ZL_REDUCE_MIN; op++)
            for (int form = 0; form < 4; form++, seed++) { /* in place? non-blocking? */
                bool in_place = form & 1, nb = form & 2;
                zl_dtype dt = dtypes[d];
                size_t es = zl_dtype_nbytes(dt), chunk = N * es;
                unsigned char *send = make_data(dt, (size_t)W * N, r, seed);
                unsigned char *want = malloc(chunk);
                ALL_OK(ok_status(zl_comm_reduce_scatter(world, want, send, N, dt, (zl_reduce_op)op), "mpi"));
                unsigned char *dsend = to_dev(send, W * chunk);
                unsigned char *drecv = in_place ? dsend + (size_t)r * chunk : to_dev(send, chunk);
                zl_status st;
                if (nb) {
                    zl_comm_request req = {0};
                    st = zl_comm_ireduce_scatter(nc, drecv, dsend, N, dt, (zl_reduce_op)op, &req);
                    if (st == ZL_OK) st = zl_comm_wait(nc, &req);
                } else {
                    st = zl_comm_reduce_scatter(nc, drecv, dsend, N, dt, (zl_reduce_op)op);
                }
                ALL_OK(ok_status(st, "nccl reduce_scatter"));
                void *got = from_dev(drecv, chunk);
                char what[80];
                snprintf(what, sizeof what, "reduce_scatter %s%s%s", op_names[op],
                         in_place ? " in place" : "", nb ? " (non-blocking)" : "");
                ALL_OK(same(what, got, want, N, dt));
                free(got);
                free(want);
                free(send);
                cudaFree(dsend);
                if (!in_place) cudaFree(drecv);
            }
}
END_TEST

START_TEST(test_nccl_allgather)
{
    enum { N = 333 };
    int W = world->size, r = world->rank;
    static const zl_dtype all[] = {ZL_F32, ZL_F16, ZL_BF16, ZL_I32, ZL_U16, ZL_F64};
    unsigned seed = 200;
    for (size_t d = 0; d < sizeof all / sizeof all[0]; d++)
        for (int form = 0; form < 4; form++, seed++) {
            bool in_place = form & 1, nb = form & 2;
            zl_dtype dt = all[d];
            size_t es = zl_dtype_nbytes(dt), chunk = N * es;
            unsigned char *mine = make_data(dt, N, r, seed);
            unsigned char *want = malloc(W * chunk);
            ALL_OK(ok_status(zl_comm_allgather(world, want, mine, N, dt), "mpi"));
            unsigned char *drecv = dev_alloc(W * chunk);
            CU(cudaMemset(drecv, 0xAB, W * chunk));
            unsigned char *dsend = drecv + (size_t)r * chunk;
            if (in_place) CU(cudaMemcpy(dsend, mine, chunk, cudaMemcpyHostToDevice));
            else dsend = to_dev(mine, chunk);
            zl_status st;
            if (nb) {
                zl_comm_request req = {0};
                st = zl_comm_iallgather(nc, drecv, dsend, N, dt, &req);
                if (st == ZL_OK) st = zl_comm_wait(nc, &req);
            } else {
                st = zl_comm_allgather(nc, drecv, dsend, N, dt);
            }
            ALL_OK(ok_status(st, "nccl allgather"));
            void *got = from_dev(drecv, W * chunk);
            char what[64];
            snprintf(what, sizeof what, "allgather%s%s", in_place ? " in place" : "",
                     nb ? " (non-blocking)" : "");
            ALL_OK(same(what, got, want, (size_t)W * N, dt));
            free(got);
            free(want);
            free(mine);
            cudaFree(drecv);
            if (!in_place) cudaFree(dsend);
        }
}
END_TEST

START_TEST(test_nccl_broadcast)
{
    enum { N = 1001 };
    int W = world->size;
    unsigned seed = 300;
    for (int d = 0; d < NDT; d++)
        for (int root = 0; root < W; root += W > 1 ? W - 1 : 1, seed++) {
            zl_dtype dt = dtypes[d];
            size_t bytes = N * zl_dtype_nbytes(dt);
            void *want = make_data(dt, N, world->rank, seed);
            void *dev = to_dev(want, bytes);
            ALL_OK(ok_status(zl_comm_broadcast(world, want, N, dt, root), "mpi"));
            ALL_OK(ok_status(zl_comm_broadcast(nc, dev, N, dt, root), "nccl broadcast"));
            void *got = from_dev(dev, bytes);
            ALL_OK(same("broadcast", got, want, N, dt));
            free(got);
            free(want);
            cudaFree(dev);
        }
}
END_TEST

START_TEST(test_nccl_reduce)
{
    enum { N = 777 };
    int W = world->size, r = world->rank;
    unsigned seed = 400;
    for (int d = 0; d < NDT; d++)
        for (int op = ZL_REDUCE_SUM; op <= ZL_REDUCE_MIN; op++)
            for (int root = 0; root < W; root += W > 1 ? W - 1 : 1)
                for (int in_place = 0; in_place < 2; in_place++, seed++) {
                    zl_dtype dt = dtypes[d];
                    size_t bytes = N * zl_dtype_nbytes(dt);
                    void *send = make_data(dt, N, r, seed);
                    void *want = malloc(bytes);
                    ALL_OK(ok_status(zl_comm_reduce(world, r == root ? want : NULL, send, N, dt,
                                                    (zl_reduce_op)op, root), "mpi"));
                    void *dsend = to_dev(send, bytes);
                    void *drecv = r != root ? NULL : in_place ? dsend : dev_alloc(bytes);
                    ALL_OK(ok_status(zl_comm_reduce(nc, drecv, dsend, N, dt, (zl_reduce_op)op, root),
                                     "nccl reduce"));
                    int ok = 1;
                    if (r == root) {
                        void *got = from_dev(drecv, bytes);
                        ok = same(in_place ? "reduce in place" : "reduce", got, want, N, dt);
                        free(got);
                    } else { /* a non-root's send buffer is left as it was */
                        void *got = from_dev(dsend, bytes);
                        ok = same("reduce: a non-root's input", got, send, N, dt);
                        free(got);
                    }
                    ALL_OK(ok);
                    free(send);
                    free(want);
                    cudaFree(dsend);
                    if (r == root && !in_place) cudaFree(drecv);
                }
}
END_TEST

/* Rank 0 sends to rank 1, which sends it back doubled in count order: both directions,
 * every dtype (u16 included, moved as bytes). Tags are MPI's only (comm_nccl.c). */
START_TEST(test_nccl_send_recv)
{
    if (world->size < 2) {
        /* one rank: no peer, refused as the MPI communicator refuses */
        float *d = to_dev(&(float){1}, 4);
        ALL_OK(zl_comm_send(nc, d, 1, ZL_F32, 0, 0) == ZL_ERR_COMM);
        cudaFree(d);
        return;
    }
    enum { N = 2049 };
    static const zl_dtype all[] = {ZL_F32, ZL_F16, ZL_BF16, ZL_I32, ZL_U16, ZL_F64};
    int r = world->rank;
    for (size_t d = 0; d < sizeof all / sizeof all[0]; d++) {
        zl_dtype dt = all[d];
        size_t bytes = N * zl_dtype_nbytes(dt);
        void *data = make_data(dt, N, 0, 500 + (unsigned)d); /* rank 0's, known to all */
        void *dev = to_dev(data, bytes);
        if (r != 0) CU(cudaMemset(dev, 0, bytes));
        int ok = 1;
        if (r == 0) {
            ok &= ok_status(zl_comm_send(nc, dev, N, dt, 1, 7), "send");
            CU(cudaMemset(dev, 0, bytes));
            ok &= ok_status(zl_comm_recv(nc, dev, N, dt, 1, 8), "recv back");
        } else if (r == 1) {
            ok &= ok_status(zl_comm_recv(nc, dev, N, dt, 0, 7), "recv");
            ok &= ok_status(zl_comm_send(nc, dev, N, dt, 0, 8), "send back");
        }
        if (r <= 1) {
            void *got = from_dev(dev, bytes);
            ok &= same("send/recv", got, data, N, dt);
            free(got);
        }
        ALL_OK(ok);
        free(data);
        cudaFree(dev);
    }
}
END_TEST

/* ------------------------------------------------------------------ host buffers, the log */

/* Host memory through the NCCL handle goes to MPI: the same results, blocking and not,
 * zl_comm_agree included; the log records each call once. */
START_TEST(test_nccl_host_buffers)
{
    enum { N = 65 };
    int r = world->rank;
    zl_comm_log_reset(nlog);
    double *want = make_data(ZL_F64, N, r, 600), *got = make_data(ZL_F64, N, r, 600);
    ALL_OK(ok_status(zl_comm_allreduce(world, want, N, ZL_F64, ZL_REDUCE_SUM), "mpi"));
    ALL_OK(ok_status(zl_comm_allreduce(nc, got, N, ZL_F64, ZL_REDUCE_SUM), "host allreduce"));
    ALL_OK(same("host allreduce", got, want, N, ZL_F64));
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_ALLREDUCE), 1);

    free(got);
    got = make_data(ZL_F64, N, r, 600);
    zl_comm_request req = {0};
    ALL_OK(ok_status(zl_comm_iallreduce(nc, got, N, ZL_F64, ZL_REDUCE_SUM, &req), "host iallreduce"));
    ALL_OK(ok_status(zl_comm_wait(nc, &req), "host wait"));
    ALL_OK(same("host iallreduce", got, want, N, ZL_F64));
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_ALLREDUCE), 2);

    /* agreement is control traffic: not logged */
    zl_status st = zl_comm_agree(nc, r == world->size - 1 ? ZL_ERR_IO : ZL_OK);
    ALL_OK(st == ZL_ERR_IO);
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_ALLREDUCE), 2);
    free(want);
    free(got);

    /* a device call is logged once too, with its bytes */
    float *dev = to_dev(&(float[3]){1, 2, 3}, 12);
    ALL_OK(ok_status(zl_comm_allreduce(nc, dev, 3, ZL_F32, ZL_REDUCE_SUM), "device allreduce"));
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_ALLREDUCE), 3);
    ck_assert_uint_eq(zl_comm_log_nbytes(nlog, ZL_COMM_ALLREDUCE), 2 * N * 8 + 12);
    req = (zl_comm_request){0};
    ALL_OK(ok_status(zl_comm_iallreduce(nc, dev, 3, ZL_F32, ZL_REDUCE_SUM, &req), "device iallreduce"));
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_ALLREDUCE), 3); /* at the wait */
    ALL_OK(ok_status(zl_comm_wait(nc, &req), "device wait"));
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_ALLREDUCE), 4);
    ALL_OK(ok_status(zl_comm_barrier(nc), "barrier"));
    ck_assert_uint_eq(zl_comm_log_count(nlog, ZL_COMM_BARRIER), 1);
    cudaFree(dev);
}
END_TEST

/* Refused before any communication, on every rank alike: a mix of host and device
 * memory; a reduction of u16. */
START_TEST(test_nccl_refusals)
{
    enum { N = 8 };
    int W = world->size;
    float host[N * 4] = {0};
    float *dev = to_dev(host, sizeof host);
    ALL_OK(zl_comm_allgather(nc, dev, host + 0, N, ZL_F32) == ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "host memory"));
    ALL_OK(zl_comm_reduce_scatter(nc, host, dev, N / W, ZL_F32, ZL_REDUCE_SUM) == ZL_ERR_INVALID);
    ALL_OK(zl_comm_allreduce(nc, dev, N, ZL_U16, ZL_REDUCE_SUM) == ZL_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "u16"));
    cudaFree(dev);
}
END_TEST

/* ------------------------------------------------------------------ groups */

/* Split into one group with the ranks reversed (key = -rank), and into one group per
 * rank: the new ranks are MPI's, and the collectives run on the new NCCL group. */
START_TEST(test_nccl_split)
{
    int W = world->size, r = world->rank;
    for (int kind = 0; kind < 2; kind++) {
        zl_comm *sub = NULL;
        zl_status st = kind == 0 ? zl_comm_split(nc, 0, -r, "rev", &sub)
                                 : zl_comm_split(nc, r, 0, "solo", &sub);
        ALL_OK(ok_status(st, "split"));
        ck_assert_str_eq(sub->vt->name, "nccl");
        ck_assert_int_eq(sub->size, kind == 0 ? W : 1);
        ck_assert_int_eq(sub->rank, kind == 0 ? W - 1 - r : 0);
        ck_assert_ptr_eq(sub->log, nc->log);
        /* allgather of each rank's world rank: the order says who is who */
        int32_t *dev = dev_alloc((size_t)sub->size * 4);
        CU(cudaMemcpy(dev + sub->rank, &r, 4, cudaMemcpyHostToDevice));
        ALL_OK(ok_status(zl_comm_allgather(sub, dev, dev + sub->rank, 1, ZL_I32), "sub allgather"));
        int32_t *got = from_dev(dev, (size_t)sub->size * 4);
        int ok = 1;
        for (int i = 0; i < sub->size; i++)
            ok &= got[i] == (kind == 0 ? W - 1 - i : r);
        if (!ok) fprintf(stderr, "[rank %d] split %d: wrong order\n", r, kind);
        ALL_OK(ok);
        /* a host buffer goes to the split MPI group */
        int32_t one = 1;
        ALL_OK(ok_status(zl_comm_allreduce(sub, &one, 1, ZL_I32, ZL_REDUCE_SUM), "sub host"));
        ALL_OK(one == sub->size);
        free(got);
        cudaFree(dev);
        zl_comm_destroy(sub);
    }
}
END_TEST

/* The node group is for host-side work: host buffers move, device buffers are refused. */
START_TEST(test_nccl_split_node)
{
    zl_comm *node = NULL;
    ALL_OK(ok_status(zl_comm_split_node(nc, &node), "split_node"));
    int32_t one = 1;
    ALL_OK(ok_status(zl_comm_allreduce(node, &one, 1, ZL_I32, ZL_REDUCE_SUM), "node host"));
    ALL_OK(one == node->size);
    float *dev = to_dev(&(float){1}, 4);
    ALL_OK(zl_comm_allreduce(node, dev, 1, ZL_F32, ZL_REDUCE_SUM) == ZL_ERR_UNSUPPORTED);
    cudaFree(dev);
    zl_comm_destroy(node);
}
END_TEST

/* ------------------------------------------------------------------ the watchdog */

/* Both ranks send 64 MiB to each other and nobody receives: NCCL's send waits for a
 * receiver, so both time out (1 s), abort their NCCL communicators, and break the guard
 * they share with their own MPI world handle (a fresh one: the fixture's stays whole).
 * At 2 ranks only: a third rank's healthy communicator would wait for the aborted ones
 * when destroyed. */
START_TEST(test_nccl_watchdog)
{
    if (world->size != 2) return;
    zl_comm *host = NULL, *c = NULL;
    ALL_OK(ok_status(zl_comm_world(&host, NULL), "world"));
    ALL_OK(ok_status(zl_comm_nccl(&c, host, false, &ops, "stalled"), "nccl"));
    ck_assert_int_eq(zl_comm_set_timeout(c, 1.0), ZL_OK);
    ck_assert(zl_comm_timeout(host) == 1.0); /* one guard */
    size_t n = 16u << 20;
    float *dev = dev_alloc(n * 4);
    zl_comm_set_phase(c, "the watchdog test");
    zl_status st = zl_comm_send(c, dev, n, ZL_F32, 1 - world->rank, 0);
    const char *msg = zl_last_error();
    int ok = st == ZL_ERR_TIMEOUT && strstr(msg, "timed out") && strstr(msg, "aborted") &&
             strstr(msg, "the watchdog test") && strstr(msg, "'stalled'");
    if (!ok) fprintf(stderr, "[rank %d] watchdog: status %d: %s\n", world->rank, st, msg);
    ALL_OK(ok);
    ALL_OK(zl_comm_health(host) == ZL_ERR_TIMEOUT); /* the shared guard */
    ALL_OK(zl_comm_allreduce(c, dev, 1, ZL_F32, ZL_REDUCE_SUM) == ZL_ERR_TIMEOUT); /* at once */
    cudaFree(dev);
    zl_comm_destroy(c);    /* aborted: nothing waits for the peer */
    zl_comm_destroy(host); /* a broken world handle: MPI_Comm_free only */
}
END_TEST

/* ------------------------------------------------------------------ suite */

static Suite *nccl_suite(void)
{
    Suite *s = suite_create("comm_nccl");
    /* One GPU per rank of a node; every rank must agree, or all skip (77). */
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess) ndev = 0;
    zl_comm *node = NULL;
    int local = 0, per_node = 1;
    if (zl_comm_split_node(world, &node) == ZL_OK) {
        local = node->rank;
        per_node = node->size;
        zl_comm_destroy(node);
    }
    (void)local;
    if (!zl_test_all_ok(ndev >= per_node)) {
        if (world->rank == 0)
            printf("skipped: %d CUDA device(s) for %d rank(s) on this node\n", ndev, per_node);
        return s; /* no test: 77 */
    }
    TCase *tc = tcase_create("nccl");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_nccl_allreduce);
    tcase_add_test(tc, test_nccl_allreduce_large);
    tcase_add_test(tc, test_nccl_after_compute);
    tcase_add_test(tc, test_nccl_reduce_scatter);
    tcase_add_test(tc, test_nccl_allgather);
    tcase_add_test(tc, test_nccl_broadcast);
    tcase_add_test(tc, test_nccl_reduce);
    tcase_add_test(tc, test_nccl_send_recv);
    tcase_add_test(tc, test_nccl_host_buffers);
    tcase_add_test(tc, test_nccl_refusals);
    tcase_add_test(tc, test_nccl_split);
    tcase_add_test(tc, test_nccl_split_node);
    tcase_add_test(tc, test_nccl_watchdog); /* last: it breaks a world handle of its own */
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(nccl_suite, &world); }
