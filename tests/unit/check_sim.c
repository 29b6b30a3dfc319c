/* The simulated clock: kernels charged by their FLOPs and bytes, collectives on their own
 * stream, and ZeRO-2's overlap_comm visible in the timeline: with it, gradient reductions
 * run while backward computes; without it, backward waits for each one. The engine runs
 * on the meta backend as rank 0 of two virtual ranks, so only the clock is tested. */
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "sim/sim.h"

/* A toy card: 1 TFLOP/s, 100 GB/s, and a 10 GB/s link (only the ratio matters here). */
static double op_cost(const zl_sim *s, zl_sim_op_kind kind, double flops, double bytes, zl_dtype dt)
{
    double a = flops / 1e12, b = bytes / 100e9;
    return a > b ? a : b;
}

static double coll_cost(const zl_sim *s, zl_sim_coll op, double bytes, int p)
{
    return 2.0 * (p - 1) / p * bytes / 10e9; /* ring allreduce's bandwidth term */
}

START_TEST(test_gemm_is_charged_by_its_flops)
{
    zl_device dev;
    zl_sim sim;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", "sim", 0), ZL_OK);
    zl_sim_init(&sim, NULL, op_cost, NULL, true);
    zl_device_attach_sim(&dev, &sim);
    ck_assert(dev.ops->meta); /* the timed table keeps the meta flag */
    zl_sim_enter(&sim);
    dev.ops->gemm(NULL, NULL, NULL, 1024, 1024, 1024, 1024, 1024, 1024, false, false, 1, 0);
    double f, b;
    zl_sim_gemm_counts(1024, 1024, 1024, false, ZL_F32, &f, &b);
    ck_assert_double_eq(f, 2.0 * 1024 * 1024 * 1024);
    ck_assert_double_eq(b, 4.0 * 3 * 1024 * 1024);
    ck_assert_double_eq_tol(zl_timeline_now(&sim.timeline), f / 1e12, 1e-15);
    ck_assert_double_eq(sim.flops, f);
    ck_assert_uint_eq(sim.timeline.num_spans, 1);
    zl_sim_enter(NULL);
    zl_sim_free(&sim);
}
END_TEST

/* One ZeRO-2 step of a small GPT on two virtual ranks; returns the timeline's exposed
 * communication and its total communication time. */
static void zero2_step(bool overlap, double *exposed, double *comm, double *step)
{
    static const zl_gpt_config model = {"sim-test", 512, 64, 4, 4, 128};
    zl_device dev;
    zl_sim sim;
    zl_comm *dp;
    zl_engine e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", "sim", 0), ZL_OK);
    zl_sim_init(&sim, NULL, op_cost, NULL, true);
    sim.coll_cost = coll_cost;
    zl_device_attach_sim(&dev, &sim);
    ck_assert_int_eq(zl_comm_virtual(&dp, 2, 0, "data", NULL), ZL_OK);
    zl_engine_options o = zl_test_engine_options(4, 1, 64);
    o.dp = dp;
    o.zero_stage = 2;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true;
    o.overlap_comm = overlap;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    int32_t tokens[4 * 64] = {0};
    double t0 = zl_timeline_now(&sim.timeline), x0 = sim.timeline.exposed_comm;
    double c0 = sim.timeline.busy[ZL_STREAM_COMM];
    ck_assert_int_eq(zl_engine_forward(&e, tokens, tokens, NULL), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(&e), ZL_OK);
    ck_assert_int_eq(zl_engine_step(&e), ZL_OK);
    *step = zl_timeline_now(&sim.timeline) - t0;
    *exposed = sim.timeline.exposed_comm - x0;
    *comm = sim.timeline.busy[ZL_STREAM_COMM] - c0;
    zl_engine_destroy(&e);
    zl_comm_destroy(dp);
    zl_sim_free(&sim);
}

START_TEST(test_overlap_comm_hides_gradient_reduction)
{
    double x_on, c_on, s_on, x_off, c_off, s_off;
    zero2_step(true, &x_on, &c_on, &s_on);
    zero2_step(false, &x_off, &c_off, &s_off);
    printf("  overlap_comm on: step %.3f ms, comm %.3f ms, exposed %.3f ms; off: step %.3f ms, exposed %.3f ms\n", 1e3 * s_on, 1e3 * c_on, 1e3 * x_on, 1e3 * s_off, 1e3 * x_off);
    ck_assert_double_gt(c_off, 0);
    ck_assert_double_eq_tol(c_on, c_off, 1e-12 * c_off); /* the same messages */
    /* off: every reduction is waited for, in full */
    ck_assert_double_eq_tol(x_off, c_off, 1e-12 * c_off);
    /* on: the layers' reductions run behind the next layer's backward; what is exposed is
     * the tail (the embedding's reduction, the last in flight) and the step's allgather */
    ck_assert_double_lt(x_on, 0.7 * x_off);
    ck_assert_double_lt(s_on, s_off);
}
END_TEST

static Suite *sim_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("sim");
    tcase_add_test(tc, test_gemm_is_charged_by_its_flops);
    tcase_add_test(tc, test_overlap_comm_hides_gradient_reduction);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(sim_suite)
