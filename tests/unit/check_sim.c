/* The simulated clock: kernels charged by their FLOPs and bytes, collectives on their own
 * stream, and ZeRO-2's overlap_comm visible in the timeline: with it, gradient reductions
 * run while backward computes; without it, backward waits for each one. The engine runs
 * on the meta backend as rank 0 of two virtual ranks, so only the clock is tested. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "sim/cost.h"
#include "sim/sim.h"

/* A toy card: 1 TFLOP/s, 100 GB/s, and a 10 GB/s link (only the ratio matters here). */
static double op_cost(const zl_sim *s, zl_sim_op_kind kind, double flops, double bytes, zl_dtype dt)
{
    double a = flops / 1e12, b = bytes / 100e9;
    return a > b ? a : b;
}

static double coll_cost(const zl_sim *s, zl_sim_coll op, double bytes, int p, int stride,
                        const char **link)
{
    (void)stride;
    if (link) *link = "test-link";
    return 2.0 * (p - 1) / p * bytes / 10e9; /* ring allreduce's bandwidth term */
}

#define CK_EQ_REL(got, want) ck_assert_double_eq_tol(got, want, 1e-12 * (want))

START_TEST(test_gemm_is_charged_by_its_flops)
{
    zl_device dev;
    zl_sim sim;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", "sim", 0), ZL_OK);
    zl_sim_init(&sim, NULL, op_cost, NULL, true);
    zl_device_attach_sim(&dev, &sim);
    ck_assert(dev.ops->meta); /* the timed table keeps the meta flag */
    dev.ops->gemm(dev.ops, NULL, NULL, NULL, 1024, 1024, 1024, 1024, 1024, 1024, false, false, 1,
                  0);
    double f, b;
    zl_sim_gemm_counts(1024, 1024, 1024, false, ZL_F32, &f, &b);
    ck_assert_double_eq(f, 2.0 * 1024 * 1024 * 1024);
    ck_assert_double_eq(b, 4.0 * 3 * 1024 * 1024);
    ck_assert_double_eq_tol(zl_timeline_now(&sim.timeline), f / 1e12, 1e-15);
    ck_assert_double_eq(sim.flops, f);
    ck_assert_uint_eq(sim.timeline.num_spans, 1);
    zl_sim_free(&sim);
}
END_TEST

/* Two devices, each with its own simulator, used in turn with nothing in between (no
 * "current" simulator to switch): each kernel is charged to the clock of the device it
 * ran on, because the simulator travels in the device's op table (self->ctx). */
START_TEST(test_interleaved_devices_charge_their_own_clocks)
{
    zl_device a, b;
    zl_sim sa, sb;
    ck_assert_int_eq(zl_device_init(&a, ZL_DEVICE_ACCEL, "meta", "A", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&b, ZL_DEVICE_ACCEL, "meta", "B", 0), ZL_OK);
    zl_sim_init(&sa, NULL, op_cost, NULL, true);
    zl_sim_init(&sb, NULL, op_cost, NULL, true);
    zl_device_attach_sim(&a, &sa);
    zl_device_attach_sim(&b, &sb);
    ck_assert_ptr_ne(a.ops, b.ops); /* one timed table per simulator */
    ck_assert_ptr_eq(a.ops->ctx, &sa);
    double f, by;
    zl_sim_gemm_counts(1024, 1024, 1024, false, ZL_F32, &f, &by);
    a.ops->gemm(a.ops, NULL, NULL, NULL, 1024, 1024, 1024, 1024, 1024, 1024, false, false, 1, 0);
    b.ops->gemm(b.ops, NULL, NULL, NULL, 1024, 1024, 1024, 1024, 1024, 1024, false, false, 1, 0);
    a.ops->gemm(a.ops, NULL, NULL, NULL, 1024, 1024, 1024, 1024, 1024, 1024, false, false, 1, 0);
    ck_assert_double_eq_tol(zl_timeline_now(&sa.timeline), 2 * f / 1e12, 1e-15);
    ck_assert_double_eq_tol(zl_timeline_now(&sb.timeline), f / 1e12, 1e-15);
    ck_assert_double_eq(sa.flops, 2 * f);
    ck_assert_double_eq(sb.flops, f);
    /* A's two gemms ran back to back on its clock: one span of two runs */
    ck_assert_uint_eq(sa.timeline.num_spans, 1);
    ck_assert_uint_eq(sa.timeline.spans[0].count, 2);
    ck_assert_uint_eq(sb.timeline.num_spans, 1);
    ck_assert_uint_eq(sb.timeline.spans[0].count, 1);
    zl_sim_free(&sa);
    zl_sim_free(&sb);
}
END_TEST

/* A communicator charges its collectives to the simulator it carries (zl_comm_set_sim),
 * none without one, and never the agreement on errors (zerolab's control traffic). */
START_TEST(test_communicator_charges_its_own_simulator)
{
    zl_sim s;
    zl_comm *dp;
    zl_sim_init(&s, NULL, op_cost, NULL, true);
    s.coll_cost = coll_cost;
    ck_assert_int_eq(zl_comm_virtual(&dp, 2, 0, "data", NULL), ZL_OK);
    float x[1000] = {0};
    ck_assert_int_eq(zl_comm_allreduce(dp, x, 1000, ZL_F32, ZL_REDUCE_SUM), ZL_OK);
    ck_assert_double_eq(zl_timeline_now(&s.timeline), 0); /* no simulator set: untimed */
    ck_assert_ptr_null(zl_comm_set_sim(dp, &s));
    ck_assert_int_eq(zl_comm_agree(dp, ZL_OK), ZL_OK);
    ck_assert_double_eq(zl_timeline_now(&s.timeline), 0);
    ck_assert_int_eq(zl_comm_allreduce(dp, x, 1000, ZL_F32, ZL_REDUCE_SUM), ZL_OK);
    CK_EQ_REL(zl_timeline_now(&s.timeline), coll_cost(&s, ZL_SIM_ALLREDUCE, 4000, 2, 1, NULL));
    ck_assert_ptr_eq(zl_comm_set_sim(dp, NULL), &s);
    zl_comm_destroy(dp);
    zl_sim_free(&s);
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
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", "sim", 0), ZL_OK);
    zl_sim_init(&sim, NULL, op_cost, NULL, true);
    sim.coll_cost = coll_cost;
    zl_device_attach_sim(&dev, &sim);
    ck_assert_int_eq(zl_comm_virtual(&dp, 2, 0, "data", NULL), ZL_OK);
    zl_comm_set_sim(dp, &sim);
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
    ck_assert_int_eq(zl_engine_forward(e, tokens, tokens, NULL), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
    ck_assert_int_eq(zl_engine_step(e), ZL_OK);
    *step = zl_timeline_now(&sim.timeline) - t0;
    *exposed = sim.timeline.exposed_comm - x0;
    *comm = sim.timeline.busy[ZL_STREAM_COMM] - c0;
    zl_engine_destroy(e);
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

/* A meta device with a simulated A100 (zl_cost_attach: roofline, launch floor). */
static void a100_device(zl_device *dev, zl_sim *sim, zl_cluster *c)
{
    ck_assert_int_eq(zl_cluster_parse("a100-80gb", c), ZL_OK);
    ck_assert_int_eq(zl_device_init(dev, ZL_DEVICE_ACCEL, "meta", "sim", 0), ZL_OK);
    zl_sim_init(sim, NULL, NULL, NULL, true);
    zl_cost_attach(sim, c);
    zl_device_attach_sim(dev, sim);
}

static double compute_busy(const zl_sim *s) { return s->timeline.busy[ZL_STREAM_COMPUTE]; }

#define CK_REL(got, want, what) \
    ck_assert_msg(fabs((got) - (want)) <= 1e-9 * (want), "%s: %.9g s, want %.9g s", what, got, want)

/* The engine runs a 16-bit vector op as the CPU must (widen a piece into an f32 scratch,
 * the f32 op, narrow it back: 20 bytes per element for a scale), but the simulated GPU is
 * charged its one kernel at 16 bits (4 bytes per element), however many pieces, with one
 * span in the trace. A widening nobody consumes stays charged. */
START_TEST(test_16bit_vector_ops_are_charged_as_the_gpu_runs_them)
{
    zl_device dev;
    zl_sim sim;
    zl_cluster c;
    a100_device(&dev, &sim, &c);
    const zl_ops *ops = dev.ops;
    const size_t n = (size_t)1 << 24, piece = n / 4;
    const double hbm = 2039e9 * ZL_COST_EFF_MEMORY;
    uint16_t *x = ops->alloc(ops, 2 * n), *y = ops->alloc(ops, 2 * n);
    float *w = ops->alloc(ops, 4 * n), *w2 = ops->alloc(ops, 4 * n), *p = ops->alloc(ops, 4 * n);

    /* scale, in four pieces as zl__vec_scale does: read and write 2 bytes each */
    double t0 = compute_busy(&sim);
    size_t s0 = sim.timeline.num_spans;
    for (size_t i = 0; i < n; i += piece) {
        ops->cast(ops, w, ZL_F32, x + i, ZL_BF16, piece);
        ops->scale(ops, w, 0.5f, piece);
        ops->cast(ops, x + i, ZL_BF16, w, ZL_F32, piece);
    }
    CK_REL(compute_busy(&sim) - t0, 4.0 * n / hbm, "bf16 scale");
    ck_assert_uint_eq(sim.timeline.num_spans - s0, 1);
    ck_assert_str_eq(sim.timeline.spans[sim.timeline.num_spans - 1].name, "scale");

    /* y += x, both 16-bit: read 2 + 2, write 2 */
    t0 = compute_busy(&sim);
    ops->cast(ops, w, ZL_F32, y, ZL_F16, n);
    ops->cast(ops, w2, ZL_F32, x, ZL_F16, n);
    ops->axpy(ops, w, 1.0f, w2, n);
    ops->cast(ops, y, ZL_F16, w, ZL_F32, n);
    CK_REL(compute_busy(&sim) - t0, 6.0 * n / hbm, "f16 add");
    /* f32 y += 16-bit x: 4 + 4 + 2 */
    t0 = compute_busy(&sim);
    ops->cast(ops, w2, ZL_F32, x, ZL_BF16, n);
    ops->axpy(ops, p, 1.0f, w2, n);
    CK_REL(compute_busy(&sim) - t0, 10.0 * n / hbm, "mixed add");
    /* norm and overflow check read 2 bytes; Adam reads a 16-bit gradient as such */
    t0 = compute_busy(&sim);
    ops->cast(ops, w, ZL_F32, x, ZL_BF16, n);
    ops->sumsq(ops, w, n);
    CK_REL(compute_busy(&sim) - t0, 2.0 * n / hbm, "bf16 norm");
    t0 = compute_busy(&sim);
    ops->cast(ops, w, ZL_F32, x, ZL_BF16, n);
    ops->nonfinite(ops, w, n);
    CK_REL(compute_busy(&sim) - t0, 2.0 * n / hbm, "bf16 overflow check");
    t0 = compute_busy(&sim);
    zl_adamw_args args = {0};
    ops->cast(ops, w2, ZL_F32, x, ZL_BF16, n);
    ops->adamw(ops, p, p, p, w2, ZL_F32, NULL, ZL_F32, n, &args);
    CK_REL(compute_busy(&sim) - t0, 26.0 * n / hbm, "adamw, bf16 gradient widened before");
    /* the fused step: bf16 gradient read, fp32 state read and written, bf16 copy-out
     * written: 2 + 24 + 2 */
    t0 = compute_busy(&sim);
    ops->adamw(ops, p, p, p, x, ZL_BF16, w, ZL_BF16, n, &args);
    CK_REL(compute_busy(&sim) - t0, 28.0 * n / hbm, "adamw, bf16 gradient and copy-out");
    /* fp32 training: 4 + 24, no copy-out */
    t0 = compute_busy(&sim);
    ops->adamw(ops, p, p, p, p, ZL_F32, NULL, ZL_F32, n, &args);
    CK_REL(compute_busy(&sim) - t0, 28.0 * n / hbm, "adamw, fp32");

    /* a widening followed by another kernel is a real conversion: charged, 2 + 4 bytes */
    t0 = compute_busy(&sim);
    ops->cast(ops, w, ZL_F32, x, ZL_BF16, n);
    ops->gelu_forward(ops, w2, p,
                      n); /* an f32 activation op: 8 bytes per element at act_dtype f32 */
    CK_REL(compute_busy(&sim) - t0, 6.0 * n / hbm + 8.0 * n / hbm, "unconsumed widening");
    zl_sim_free(&sim);
}
END_TEST

/* One training step of `model` in bf16 on a simulated A100 (meta backend): MFU, with or
 * without the launch floor. */
static double step_mfu(const zl_gpt_config *model, int B, int T, bool launch)
{
    zl_device dev;
    zl_sim sim;
    zl_cluster c;
    zl_engine *e;
    a100_device(&dev, &sim, &c);
    if (!launch) sim.launch = 0;
    zl_engine_options o = zl_test_engine_options(B, 1, T);
    o.precision.dtype = ZL_BF16;
    ck_assert_int_eq(zl_engine_create(&e, model, &o, &dev), ZL_OK);
    int32_t *tokens = calloc((size_t)B * T, sizeof *tokens);
    double t0 = zl_timeline_now(&sim.timeline);
    ck_assert_int_eq(zl_engine_forward(e, tokens, tokens, NULL), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
    ck_assert_int_eq(zl_engine_step(e), ZL_OK);
    double step = zl_timeline_now(&sim.timeline) - t0;
    double mfu = 3.0 * zl_model_forward_flops(zl_engine_model(e), B, T) / (step * 312e12);
    free(tokens);
    zl_engine_destroy(e);
    zl_sim_free(&sim);
    return mfu;
}

/* Kernel launches: a tiny model's kernels take well under the 4 us launch floor by their
 * roofline, so it is launch-bound and its MFU is a few percent, not the roofline's; a
 * large model's kernels hide their launches, and its MFU barely moves. */
START_TEST(test_launch_overhead_bounds_tiny_models)
{
    static const zl_gpt_config lab = {"lab", 256, 64, 2, 4, 64};
    static const zl_gpt_config small = {"small", 8192, 128, 4, 4, 256};
    static const zl_gpt_config big = {"gpt2-1.5b", 50257, 1024, 48, 25, 1600};
    double tiny_on = step_mfu(&lab, 16, 64, true), tiny_off = step_mfu(&lab, 16, 64, false);
    double small_on = step_mfu(&small, 16, 128, true), small_off = step_mfu(&small, 16, 128, false);
    printf("  MFU small %.1f%% (roofline alone %.1f%%)\n", 100 * small_on, 100 * small_off);
    ck_assert_double_lt(small_on, 0.9 * small_off); /* 25% by the roofline alone */
    double big_on = step_mfu(&big, 8, 1024, true), big_off = step_mfu(&big, 8, 1024, false);
    printf("  MFU lab %.1f%% (roofline alone %.1f%%), gpt2-1.5b %.2f%% (%.2f%%)\n", 100 * tiny_on,
           100 * tiny_off, 100 * big_on, 100 * big_off);
    ck_assert_double_gt(tiny_off, 0.05); /* what the roofline alone said */
    ck_assert_double_lt(tiny_on, 0.05);  /* launch-bound: a few percent at most */
    ck_assert_double_lt(tiny_on, 0.2 * tiny_off);
    ck_assert_double_gt(big_on, 0.98 * big_off); /* barely changes */
    /* never faster with launches; equal here, up to the rounding of the clocks' sums */
    ck_assert_double_le(big_on, big_off * (1 + 1e-12));
}
END_TEST

static Suite *sim_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("sim");
    tcase_add_test(tc, test_gemm_is_charged_by_its_flops);
    tcase_add_test(tc, test_interleaved_devices_charge_their_own_clocks);
    tcase_add_test(tc, test_communicator_charges_its_own_simulator);
    tcase_add_test(tc, test_overlap_comm_hides_gradient_reduction);
    tcase_add_test(tc, test_16bit_vector_ops_are_charged_as_the_gpu_runs_them);
    tcase_add_test(tc, test_launch_overhead_bounds_tiny_models);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(sim_suite)
