/* The host device and copies between devices: a host -> device -> host round trip returns
 * the bytes; each device's ledger holds its own allocations against its own budget; on a
 * simulated card the copies are charged to the host-copy stream at the card's host link
 * (PCIe) rate, overlap compute until something waits for them, and show on that stream in
 * the Chrome trace; on the meta backend they are charged and move nothing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "core/device.h"
#include "sim/cost.h"
#include "sim/sim.h"

/* a recognisable pattern: byte i is i*7+3 (mod 256) */
static void fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + 3);
}

static size_t first_mismatch(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 7 + 3)) return i;
    return n;
}

START_TEST(test_round_trip_returns_the_bytes)
{
    enum { N = 10000 };
    zl_device host, gpu;
    ck_assert_int_eq(zl_device_init(&host, ZL_DEVICE_HOST, "cpu", "rank 0 host", 1 << 20), ZL_OK);
    ck_assert_int_eq(zl_device_init(&gpu, ZL_DEVICE_ACCEL, "cpu", "rank 0", 1 << 20), ZL_OK);
    unsigned char *h, *d;
    ck_assert_int_eq(zl_device_alloc(&host, "offload", N, (void **)&h), ZL_OK);
    ck_assert_int_eq(zl_device_alloc(&gpu, "param", N, (void **)&d), ZL_OK);
    fill(h, N);
    ck_assert_int_eq(zl_device_copy(&gpu, d, &host, h, N), ZL_OK); /* host -> device */
    ck_assert_uint_eq(first_mismatch(d, N), N);
    memset(h, 0, N);
    ck_assert_int_eq(zl_device_copy(&host, h, &gpu, d, N), ZL_OK); /* device -> host */
    ck_assert_uint_eq(first_mismatch(h, N), N);
    /* each ledger holds its own allocation, and only it */
    ck_assert_uint_eq(zl_ledger_current(&host.ledger, "offload"), N);
    ck_assert_uint_eq(zl_ledger_current(&host.ledger, "param"), 0);
    ck_assert_uint_eq(zl_ledger_current(&gpu.ledger, "param"), N);
    ck_assert_uint_eq(zl_ledger_current(&gpu.ledger, "offload"), 0);
    ck_assert_uint_eq(host.ledger.cur_nbytes, N);
    ck_assert_uint_eq(gpu.ledger.cur_nbytes, N);
    ck_assert_int_eq(host.ledger.placement, ZL_PLACE_HOST);
    ck_assert_int_eq(gpu.ledger.placement, ZL_PLACE_DEVICE);
    zl_device_free(&host, "offload", h, N);
    zl_device_free(&gpu, "param", d, N);
    ck_assert_uint_eq(host.ledger.cur_nbytes + gpu.ledger.cur_nbytes, 0);
}
END_TEST

/* The host has its own budget: a request past it fails with the ledger's message naming
 * the host device as host memory, while the accelerator's budget is untouched. */
START_TEST(test_host_budget_is_its_own)
{
    zl_device host, gpu;
    ck_assert_int_eq(zl_device_init(&host, ZL_DEVICE_HOST, "cpu", "node 0 host", 4096), ZL_OK);
    ck_assert_int_eq(zl_device_init(&gpu, ZL_DEVICE_ACCEL, "cpu", "rank 0 (A100)", 1 << 20), ZL_OK);
    void *a, *b, *c;
    ck_assert_int_eq(zl_device_alloc(&host, "adam.m", 3000, &a), ZL_OK);
    ck_assert_int_eq(zl_device_alloc(&host, "adam.v", 3000, &b), ZL_ERR_OOM);
    ck_assert_ptr_null(b);
    const char *msg = zl_last_error();
    ck_assert_msg(strstr(msg, "node 0 host") && strstr(msg, "host memory"), "message: %s", msg);
    ck_assert_ptr_nonnull(strstr(msg, "budget 4.00 KiB"));
    ck_assert_ptr_null(strstr(msg, "ZeRO stage")); /* partitioning is the card's remedy */
    /* the same request fits the card: its ledger is another one */
    ck_assert_int_eq(zl_device_alloc(&gpu, "adam.v", 3000, &c), ZL_OK);
    ck_assert_uint_eq(gpu.ledger.cur_nbytes, 3000);
    ck_assert_uint_eq(host.ledger.cur_nbytes, 3000);
    /* the printout says where the bytes are */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    zl_ledger_print(&host.ledger, f);
    fclose(f);
    ck_assert_msg(strstr(buf, "memory ledger of node 0 host (host memory"), "printout: %s", buf);
    free(buf);
    zl_device_free(&host, "adam.m", a, 3000);
    zl_device_free(&gpu, "adam.v", c, 3000);
}
END_TEST

/* Copies go between the host and an accelerator; one accelerator to another is a
 * communicator's send/recv, refused here with a message that says so. */
START_TEST(test_copy_needs_a_host_and_an_accelerator)
{
    zl_device a, b;
    ck_assert_int_eq(zl_device_init(&a, ZL_DEVICE_ACCEL, "cpu", "rank 0", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&b, ZL_DEVICE_ACCEL, "cpu", "rank 1", 0), ZL_OK);
    char x[8] = "abcdefg", y[8] = {0};
    ck_assert_int_eq(zl_device_copy(&b, y, &a, x, sizeof x), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "rank 0"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "rank 1"));
    ck_assert_int_eq(y[0], 0);
}
END_TEST

/* A card whose host link comes from its preset (a100-80gb: PCIe Gen4, sim/presets.c). */
typedef struct simulated {
    zl_cluster cluster;
    zl_sim sim;
    zl_device host, gpu;
} simulated;

static void simulated_init(simulated *s, const char *backend)
{
    ck_assert_int_eq(zl_cluster_parse("a100-80gb", &s->cluster), ZL_OK);
    ck_assert_str_eq(s->cluster.host->name, "pcie4");
    ck_assert_int_eq(zl_device_init(&s->host, ZL_DEVICE_HOST, "cpu", "rank 0 host", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&s->gpu, ZL_DEVICE_ACCEL, backend, "rank 0", 0), ZL_OK);
    zl_sim_init(&s->sim, NULL, NULL, NULL, true);
    zl_cost_attach(&s->sim, &s->cluster);
    zl_device_attach_sim(&s->gpu, &s->sim);
}

/* latency + nbytes / rate of the card's host link: one copy's time */
static double one_copy(const simulated *s, size_t nbytes)
{
    return s->cluster.host->latency + (double)nbytes / s->cluster.host->bandwidth;
}

/* Tolerance: the times are sums of two doubles; 1e-12 relative is far below any term. */
#define TOL(x) (1e-12 * (x))

START_TEST(test_sim_round_trip_is_charged_to_the_host_stream)
{
    enum { N = 1 << 20 };
    simulated s;
    simulated_init(&s, "cpu");
    unsigned char *h, *d;
    ck_assert_int_eq(zl_device_alloc(&s.host, "offload", N, (void **)&h), ZL_OK);
    ck_assert_int_eq(zl_device_alloc(&s.gpu, "param", N, (void **)&d), ZL_OK);
    fill(h, N);
    ck_assert_int_eq(zl_device_copy(&s.gpu, d, &s.host, h, N), ZL_OK);
    memset(h, 0, N);
    ck_assert_int_eq(zl_device_copy(&s.host, h, &s.gpu, d, N), ZL_OK);
    ck_assert_uint_eq(first_mismatch(h, N), N); /* the simulator moves the bytes too */

    const zl_timeline *tl = &s.sim.timeline;
    double want = 2 * one_copy(&s, N); /* 2 x (10 us + 1 MiB / 32 GB/s) = 85.5 us */
    ck_assert_double_eq_tol(tl->busy[ZL_STREAM_HOST], want, TOL(want));
    ck_assert_double_eq_tol(tl->clock[ZL_STREAM_HOST], want, TOL(want));
    /* asynchronous: compute did not wait, nothing else was charged */
    ck_assert_double_eq(tl->clock[ZL_STREAM_COMPUTE], 0);
    ck_assert_double_eq(tl->busy[ZL_STREAM_COMPUTE], 0);
    ck_assert_double_eq(tl->busy[ZL_STREAM_COMM], 0);
    /* a wait makes compute catch up, and the wait is counted as exposed copy time */
    zl_device_copy_wait(&s.gpu);
    ck_assert_double_eq_tol(tl->clock[ZL_STREAM_COMPUTE], want, TOL(want));
    ck_assert_double_eq_tol(tl->exposed_copy, want, TOL(want));
    ck_assert_double_eq(tl->exposed_comm, 0);

    /* the trace: both copies on the host-copy track, back to back */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(zl_timeline_write_trace(tl, f, 0, true, true), ZL_OK);
    fclose(f);
    json_error_t err;
    json_t *root = json_loads(buf, 0, &err);
    ck_assert_msg(root, "trace is not JSON: %s\n%s", err.text, buf);
    json_t *ev = json_object_get(root, "traceEvents");
    int on_host = 0, elsewhere = 0;
    double dur_us = 0;
    bool named = false;
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        const char *ph = json_string_value(json_object_get(e, "ph"));
        int tid = (int)json_integer_value(json_object_get(e, "tid"));
        if (!strcmp(ph, "M") && tid == ZL_STREAM_HOST &&
            !strcmp(json_string_value(json_object_get(e, "name")), "thread_name"))
            named = !strcmp(json_string_value(json_object_get(json_object_get(e, "args"), "name")),
                            "host copy");
        if (strcmp(ph, "X")) continue;
        if (tid != ZL_STREAM_HOST) {
            elsewhere++;
            continue;
        }
        ck_assert_str_eq(json_string_value(json_object_get(e, "cat")), "host copy");
        const char *name = json_string_value(json_object_get(e, "name"));
        ck_assert_str_eq(name, on_host == 0 ? "memcpy HtoD" : "memcpy DtoH");
        dur_us += json_number_value(json_object_get(e, "dur"));
        on_host++;
    }
    ck_assert(named);
    ck_assert_int_eq(on_host, 2);
    ck_assert_int_eq(elsewhere, 0);
    ck_assert_double_eq_tol(dur_us, 1e6 * want, 2e-3); /* the trace prints 3 decimals of us */
    json_decref(root);
    free(buf);

    zl_device_free(&s.host, "offload", h, N);
    zl_device_free(&s.gpu, "param", d, N);
    zl_sim_free(&s.sim);
}
END_TEST

/* A copy is charged after the compute that precedes it (its data exists then) and runs
 * beside the compute that follows it. */
START_TEST(test_sim_copy_overlaps_compute)
{
    simulated s;
    simulated_init(&s, "meta");
    zl_timeline *tl = &s.sim.timeline;
    zl_timeline_kernel(tl, "bwd", 1e-3);
    void *d, *h;
    ck_assert_int_eq(zl_device_alloc(&s.gpu, "grad", 1 << 20, &d), ZL_OK);
    ck_assert_int_eq(zl_device_alloc(&s.host, "grad", 1 << 20, &h), ZL_OK);
    ck_assert_int_eq(zl_device_copy(&s.host, h, &s.gpu, d, 1 << 20), ZL_OK);
    double c = one_copy(&s, 1 << 20);
    zl_timeline_kernel(tl, "fwd", 2e-3); /* longer than the copy: hides it */
    ck_assert_double_eq_tol(tl->clock[ZL_STREAM_HOST], 1e-3 + c, TOL(1e-3));
    zl_device_copy_wait(&s.gpu);
    ck_assert_double_eq_tol(tl->clock[ZL_STREAM_COMPUTE], 3e-3, TOL(3e-3));
    ck_assert_double_eq(tl->exposed_copy, 0);
    zl_device_free(&s.gpu, "grad", d, 1 << 20);
    zl_device_free(&s.host, "grad", h, 1 << 20);
    zl_sim_free(&s.sim);
}
END_TEST

/* On the meta backend a copy moves nothing (its pointers are not memory) and is charged
 * all the same: a plan's timeline has its offload traffic. */
START_TEST(test_meta_copy_is_charged_and_moves_nothing)
{
    enum { N = 4096 };
    simulated s;
    simulated_init(&s, "meta");
    ck_assert(s.gpu.ops->meta);
    void *d;
    ck_assert_int_eq(zl_device_alloc(&s.gpu, "param", N, &d), ZL_OK); /* not dereferenceable */
    unsigned char *h;
    ck_assert_int_eq(zl_device_alloc(&s.host, "offload", N, (void **)&h), ZL_OK);
    fill(h, N);
    ck_assert_int_eq(zl_device_copy(&s.gpu, d, &s.host, h, N), ZL_OK); /* a write would fault */
    ck_assert_int_eq(zl_device_copy(&s.host, h, &s.gpu, d, N), ZL_OK); /* a read would fault */
    ck_assert_uint_eq(first_mismatch(h, N), N);                        /* h untouched */
    double want = 2 * one_copy(&s, N);
    ck_assert_double_eq_tol(s.sim.timeline.busy[ZL_STREAM_HOST], want, TOL(want));
    ck_assert_uint_eq(s.sim.timeline.num_spans, 2);

    /* a plan's host device is meta too: shapes only, still charged */
    zl_device mhost;
    ck_assert_int_eq(zl_device_init(&mhost, ZL_DEVICE_HOST, "meta", "host", 0), ZL_OK);
    void *mh;
    ck_assert_int_eq(zl_device_alloc(&mhost, "offload", N, &mh), ZL_OK);
    ck_assert_uint_eq(zl_ledger_current(&mhost.ledger, "offload"), N);
    ck_assert_int_eq(zl_device_copy(&mhost, mh, &s.gpu, d, N), ZL_OK);
    ck_assert_double_eq_tol(s.sim.timeline.busy[ZL_STREAM_HOST], 3 * one_copy(&s, N), TOL(want));
    zl_device_free(&s.host, "offload", h, N);
    zl_sim_free(&s.sim);
}
END_TEST

static Suite *device_copy_suite(void)
{
    Suite *s = suite_create("device_copy");
    TCase *tc = tcase_create("device_copy");
    tcase_add_test(tc, test_round_trip_returns_the_bytes);
    tcase_add_test(tc, test_host_budget_is_its_own);
    tcase_add_test(tc, test_copy_needs_a_host_and_an_accelerator);
    tcase_add_test(tc, test_sim_round_trip_is_charged_to_the_host_stream);
    tcase_add_test(tc, test_sim_copy_overlaps_compute);
    tcase_add_test(tc, test_meta_copy_is_charged_and_moves_nothing);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(device_copy_suite)
