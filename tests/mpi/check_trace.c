/* A traced 2-rank ZeRO-2 run on simulated V100s (tests/run-mpi.sh, np = 2): with
 * overlap_comm the trace shows gradient reductions on the comm stream running while the
 * compute stream does backward; without it, no reduction overlaps any compute. The
 * engine trains for real on the cpu backend; each rank's simulator (sim/sim.h with
 * sim/cost.h's V100 figures) gives the clock, and the trace is read back as JSON. The run
 * is assembled by the library (run/run.h), as `zerolab train --trace` assembles one. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "comm/comm.h"
#include "backends/ops.h"
#include "run/run.h"
#include "sim/cost.h"

static zl_comm *world;
static const zl_gpt_config model = {"trace-test", 512, 64, 4, 4, 128};

/* Seconds during which a comm span and a compute span of this rank (pid) in the trace run
 * at once. */
static double overlap_in_trace(const char *json, int pid, double *comm_total)
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
            json_integer_value(json_object_get(c, "pid")) != pid ||
            json_integer_value(json_object_get(c, "tid")) != ZL_STREAM_COMM)
            continue;
        double c0 = json_number_value(json_object_get(c, "ts"));
        double c1 = c0 + json_number_value(json_object_get(c, "dur"));
        *comm_total += c1 - c0;
        for (size_t j = 0; j < n; j++) {
            json_t *k = json_array_get(ev, j);
            if (strcmp(json_string_value(json_object_get(k, "ph")), "X") ||
                json_integer_value(json_object_get(k, "pid")) != pid ||
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

/* Two optimizer steps of a run on 2 simulated V100s, built as `zerolab train --device
 * v100-16gb --trace FILE` builds it (run/run.h): ZeRO-2 in bf16 with bucket allreduces
 * (bf16's overflow scan off: its allreduce would be one more reduction in the trace); the
 * trace of the second step (zl_run_step keeps only the last step's spans), every rank's,
 * as zl_run_write_trace writes it. */
static char *traced_run(bool overlap_comm)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 1,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}},"
             " \"zero_optimization\": {\"stage\": 2, \"reduce_scatter\": true,"
             "   \"use_multi_rank_bucket_allreduce\": true, \"overlap_comm\": %s},"
             " \"bf16\": {\"enabled\": true, \"check_grad_overflow\": false}}",
             overlap_comm ? "true" : "false");
    /* One file for all ranks: named after rank 0's process. */
    int32_t pid = (int32_t)getpid();
    ck_assert_int_eq(zl_comm_broadcast(world, &pid, 1, ZL_I32, 0), ZL_OK);
    char path[96];
    snprintf(path, sizeof path, "/tmp/zl-check-trace-%d.json", (int)pid);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = json;
    o.config_name = "<trace-test>";
    o.model_config = &model;
    o.seq_len = 64;
    o.device = "v100-16gb";
    o.trace = path;
    o.comm = world;
    zl_run run;
    ck_assert_msg(zl_run_init(&run, &o) == ZL_OK, "%s", zl_last_error());
    ck_assert_ptr_nonnull(run.card);
    ck_assert_int_eq(run.options.zero_stage, 2);
    ck_assert(run.options.overlap_comm == overlap_comm);
    ck_assert_int_eq(run.options.precision.dtype, ZL_BF16);
    for (int s = 0; s < 2; s++) {
        float loss;
        ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    }
    ck_assert_int_eq(zl_run_write_trace(&run, path), ZL_OK);
    zl_run_free(&run);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)len + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    zl_comm_barrier(world); /* every rank has read it */
    if (world->rank == 0) remove(path);
    return buf;
}

START_TEST(test_trace_shows_overlap_comm)
{
    double comm_on, comm_off;
    char *on = traced_run(true), *off = traced_run(false);
    double ov_on = overlap_in_trace(on, world->rank, &comm_on),
           ov_off = overlap_in_trace(off, world->rank, &comm_off);
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
