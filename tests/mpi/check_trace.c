/* A traced 2-rank ZeRO-2 run on simulated V100s (tests/run-mpi.sh, np = 2): with
 * overlap_comm the trace shows gradient reductions on the comm stream running while the
 * compute stream does backward; without it, no reduction overlaps any compute. The
 * engine trains for real on the cpu backend; each rank's simulator (sim/sim.h with
 * sim/cost.h's V100 figures) gives the clock, and the trace is read back as JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "backends/ops.h"
#include "sim/cost.h"

static zl_comm *world;
static const zl_gpt_config model = {"trace-test", 512, 64, 4, 4, 128};

/* Seconds during which a comm span and a compute span of the trace run at once. */
static double overlap_in_trace(const char *json, double *comm_total)
{
    json_error_t err;
    json_t *root = json_loads(json, 0, &err);
    ck_assert_msg(root, "the trace is not JSON: %s", err.text);
    json_t *ev = json_object_get(root, "traceEvents");
    size_t n = json_array_size(ev);
    double overlap = 0;
    *comm_total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(ev, i);
        if (strcmp(json_string_value(json_object_get(c, "ph")), "X") ||
            json_integer_value(json_object_get(c, "tid")) != ZL_STREAM_COMM)
            continue;
        double c0 = json_number_value(json_object_get(c, "ts"));
        double c1 = c0 + json_number_value(json_object_get(c, "dur"));
        *comm_total += c1 - c0;
        for (size_t j = 0; j < n; j++) {
            json_t *k = json_array_get(ev, j);
            if (strcmp(json_string_value(json_object_get(k, "ph")), "X") ||
                json_integer_value(json_object_get(k, "tid")) != ZL_STREAM_COMPUTE)
                continue;
            double k0 = json_number_value(json_object_get(k, "ts"));
            double k1 = k0 + json_number_value(json_object_get(k, "dur"));
            double lo = c0 > k0 ? c0 : k0, hi = c1 < k1 ? c1 : k1;
            if (hi > lo) overlap += hi - lo;
        }
    }
    json_decref(root);
    return overlap;
}

/* Two optimizer steps; the trace of the second. */
static char *traced_run(bool overlap_comm)
{
    zl_cluster cluster;
    char spec[32];
    snprintf(spec, sizeof spec, "%dxv100-16gb", world->size);
    ck_assert_int_eq(zl_cluster_parse(spec, &cluster), ZL_OK);
    zl_device dev;
    zl_sim sim;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "traced", 0), ZL_OK);
    zl_sim_init(&sim, NULL, NULL, NULL, true);
    zl_cost_attach(&sim, &cluster);
    zl_device_attach_sim(&dev, &sim);
    zl_comm_set_sim(world, &sim); /* the engine's collectives on the cluster's links */
    zl_engine_options o = zl_test_engine_options(4, 1, 64);
    o.dp = world;
    o.zero_stage = 2;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true;
    o.overlap_comm = overlap_comm;
    o.precision.dtype = ZL_BF16;
    zl_engine e;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    int32_t tokens[4 * 64];
    for (int i = 0; i < 4 * 64; i++) tokens[i] = (i * 5 + world->rank) % model.vocab_size;
    for (int s = 0; s < 2; s++) {
        sim.timeline.num_spans = 0;
        float loss;
        ck_assert_int_eq(zl_engine_forward(&e, tokens, tokens, &loss), ZL_OK);
        ck_assert_int_eq(zl_engine_backward(&e), ZL_OK);
        ck_assert_int_eq(zl_engine_step(&e), ZL_OK);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(zl_timeline_write_trace(&sim.timeline, f, world->rank, true, true), ZL_OK);
    fclose(f);
    zl_engine_destroy(&e);
    zl_comm_set_sim(world, NULL);
    zl_sim_free(&sim);
    return buf;
}

START_TEST(test_trace_shows_overlap_comm)
{
    double comm_on, comm_off;
    char *on = traced_run(true), *off = traced_run(false);
    double ov_on = overlap_in_trace(on, &comm_on), ov_off = overlap_in_trace(off, &comm_off);
    if (world->rank == 0)
        printf("  ZeRO-2 on 2 x V100 (simulated): reductions %.1f us, overlapping backward %.1f us "
               "with overlap_comm, %.1f us without\n", comm_on, ov_on, ov_off);
    ck_assert_double_gt(comm_off, 0);
    /* blocking: compute waits, nothing overlaps (up to the trace's rounding of times) */
    ck_assert_double_lt(ov_off, 1e-3 * comm_off);
    /* overlapping: the layers' reductions run under the next layers' backward; what stays
     * exposed is the embedding's reduction (the last) and the step's parameter allgather */
    ck_assert_double_gt(ov_on, 0.4 * comm_on);
    free(on);
    free(off);
}
END_TEST

/* A collective ends when its last member arrives: rank 1 computes a second longer, and
 * rank 0's allreduce waits for it on the simulated clock (exposed), both ending together. */
START_TEST(test_collective_waits_for_the_last_rank)
{
    zl_cluster cluster;
    char spec[32];
    snprintf(spec, sizeof spec, "%dxa100-80gb", world->size);
    ck_assert_int_eq(zl_cluster_parse(spec, &cluster), ZL_OK);
    zl_sim sim;
    zl_sim_init(&sim, &zl_ops_cpu, NULL, NULL, false);
    zl_cost_attach(&sim, &cluster);
    zl_comm_set_sim(world, &sim);
    if (world->rank == 1) zl_timeline_kernel(&sim.timeline, "late", 1.0);
    double x = 1, ends[8];
    ck_assert_int_eq(zl_comm_allreduce(world, &x, 1, ZL_F64, ZL_REDUCE_SUM), ZL_OK);
    double end = sim.timeline.clock[ZL_STREAM_COMM], exposed = sim.timeline.exposed_comm;
    zl_comm_set_sim(world, NULL);
    ck_assert_int_eq(zl_comm_allgather(world, ends, &end, 1, ZL_F64), ZL_OK);
    for (int r = 0; r < world->size; r++) ck_assert_double_eq(ends[r], ends[0]);
    ck_assert_double_gt(end, 1.0);
    if (world->rank == 0) ck_assert_double_gt(exposed, 1.0); /* waited for rank 1 */
    zl_sim_free(&sim);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");
    tcase_add_test(tc, test_trace_shows_overlap_comm);
    tcase_add_test(tc, test_collective_waits_for_the_last_rank);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(trace_suite, &world); }
