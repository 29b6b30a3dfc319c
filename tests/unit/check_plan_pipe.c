/* Planning pipelines (plan/plan_pipe.c): every stage on the meta backend, and the step
 * replayed across the stages.
 *
 *  - The bubble: with uniform stages, DeepSpeed's TrainSchedule leaves (S - 1) / (M + S - 1)
 *    of the time up to the last backward idle. A model whose embedding and head are
 *    negligible beside its blocks (vocabulary 64, 32 blocks of width 2048), cut by
 *    "type:block", gives the formula within 2% at S=4, M=8 and S=8, M=32; with M=1 the
 *    stages run one after another, (S - 1) / S.
 *  - Memory: each stage's figures are those of that stage planned alone, and its
 *    parameters are exactly its layers' (plus the tied embedding's copy on the last
 *    stage); the pipeline reports the largest stage.
 *  - A stage that does not fit is named; the replay's trace has one row per stage with
 *    every micro-batch's forward and backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_util.h"
#include "model/model.h"
#include "pipe/partition.h"
#include "plan/plan.h"

static const zl_gpt_config even = {"even", 64, 1024, 32, 16, 2048};

static void request(zl_plan_request *req, zl_cluster *c, const zl_gpt_config *model, int stages,
                    int micro_batches, const char *spec)
{
    memset(req, 0, sizeof *req);
    ck_assert_int_eq(zl_cluster_parse(spec, c), ZL_OK);
    req->model = *model;
    req->world_size = zl_cluster_size(c) / stages;
    req->pipe_stages = stages;
    req->pipe_stage = -1;
    req->cluster = c;
    req->device_memory = c->device->memory;
    req->device_name = c->device->display;
    req->gpu = true;
    zl_engine_options *o = &req->options;
    o->micro_batch_size = 1;
    o->gradient_accumulation_steps = micro_batches;
    o->seq_len = 1024;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->precision.dtype = ZL_BF16;
    snprintf(o->pipe_partition, sizeof o->pipe_partition, "type:block");
}

static void expect_bubble(int S, int M)
{
    zl_plan_request req;
    zl_cluster c;
    char spec[32];
    snprintf(spec, sizeof spec, "%dxa100-80gb", S);
    request(&req, &c, &even, S, M, spec);
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    double want = (double)(S - 1) / (M + S - 1);
    printf("  S=%d M=%d: bubble %.4f, (S-1)/(M+S-1) = %.4f, step %.3f s\n", S, M, r->bubble_fraction,
           want, r->step_seconds);
    ck_assert_int_eq(r->pipe_stages, S);
    ck_assert_msg(fabs(r->bubble_fraction - want) <= 0.02 * want,
                  "S=%d M=%d: bubble %.4f, formula %.4f", S, M, r->bubble_fraction, want);
    /* the step is the pipelined part's (M + S - 1) slots of one stage's micro-batch, plus
     * the boundary: more than M slots, and the stages together faster than one GPU */
    ck_assert(r->step_seconds > r->compute_seconds);
    ck_assert(r->mfu > 0 && r->tokens_per_second > 0);
    free(r);
}

START_TEST(test_plan_pipe_bubble_s4_m8) { expect_bubble(4, 8); }
END_TEST
START_TEST(test_plan_pipe_bubble_s8_m32) { expect_bubble(8, 32); }
END_TEST
START_TEST(test_plan_pipe_bubble_one_micro_batch) { expect_bubble(4, 1); }
END_TEST

/* Each stage's memory is its own plan's, and its parameters are its layers'. */
START_TEST(test_plan_pipe_stage_memory)
{
    const zl_gpt_config small = {"small", 512, 256, 6, 4, 128};
    zl_plan_request req;
    zl_cluster c;
    request(&req, &c, &small, 3, 4, "6xa100-80gb");
    req.options.precision.dtype = ZL_F32;
    req.options.seq_len = 256;
    req.options.pipe_partition[0] = 0; /* "parameters" */
    zl_plan_result *all = malloc(sizeof *all), *one = malloc(sizeof *one);
    ck_assert_int_eq(zl_plan_run(&req, all), ZL_OK);
    /* the cut the engine makes, to count each stage's parameters */
    zl_device dev;
    zl_model m;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", "m", 0), ZL_OK);
    ck_assert_int_eq(zl_model_create(&m, &small, &dev), ZL_OK);
    int bounds[4];
    ck_assert_int_eq(zl_pipe_partition_model(&m, "parameters", 3, bounds), ZL_OK);
    size_t largest = 0, total = 0;
    for (int s = 0; s < 3; s++) {
        zl_plan_request rs = req;
        rs.pipe_stage = s;
        ck_assert_int_eq(zl_plan_run(&rs, one), ZL_OK);
        ck_assert_uint_eq(one->ledger.peak_nbytes, all->stage_peak_nbytes[s]);
        size_t numel = 0;
        for (int p = 0; p < m.num_params; p++)
            if (m.params[p].layer >= bounds[s] && m.params[p].layer < bounds[s + 1]) numel += m.params[p].numel;
        total += numel;
        /* fp32, ZeRO 0: the stage's flat vector (padded for the buckets) and, on the
         * head's stage, the tied embedding's copy */
        size_t copy = s == 2 ? m.params[m.ties[0].param].numel * sizeof(float) : 0;
        size_t param = zl_ledger_peak(&one->ledger, "param");
        ck_assert_msg(param >= numel * sizeof(float) + copy &&
                          param < (numel + 4096) * sizeof(float) + copy,
                      "stage %d: param %zu bytes for %zu parameters (+%zu copy)", s, param, numel, copy);
        if (one->ledger.peak_nbytes > largest) largest = one->ledger.peak_nbytes;
    }
    ck_assert_uint_eq(total, m.params_numel);
    ck_assert_uint_eq(all->ledger.peak_nbytes, largest);
    ck_assert_uint_eq(all->stage_peak_nbytes[all->pipe_worst_stage], largest);
    zl_model_destroy(&m);
    free(all);
    free(one);
}
END_TEST

/* A stage that does not fit is named; the others' figures are still there. */
START_TEST(test_plan_pipe_oom_names_the_stage)
{
    zl_plan_request req;
    zl_cluster c;
    request(&req, &c, &even, 4, 8, "4xa100-80gb");
    req.device_memory = 3ull << 30;
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_ERR_OOM);
    ck_assert_msg(strstr(zl_last_error(), "pipeline stage 0 of 4: "), "%s", zl_last_error());
    ck_assert(!r->device_fits);
    ck_assert_int_eq(r->pipe_worst_stage, 0);
    free(r);
}
END_TEST

/* The replay's trace: one row per stage, each micro-batch's forward and backward once. */
START_TEST(test_plan_pipe_trace)
{
    zl_plan_request req;
    zl_cluster c;
    request(&req, &c, &even, 4, 6, "4xa100-80gb");
    char *text = NULL;
    size_t len = 0;
    req.trace = open_memstream(&text, &len);
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    fclose(req.trace);
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    ck_assert_msg(root != NULL, "trace is not JSON: %s", err.text);
    int fwd[4] = {0}, bwd[4] = {0};
    double last_end[4] = {0};
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(root, "traceEvents"), i, ev) {
        const char *name = json_string_value(json_object_get(ev, "name"));
        if (strcmp(json_string_value(json_object_get(ev, "ph")), "X")) continue;
        int pid = (int)json_integer_value(json_object_get(ev, "pid"));
        ck_assert(pid >= 0 && pid < 4);
        double ts = json_number_value(json_object_get(ev, "ts")), dur = json_number_value(json_object_get(ev, "dur"));
        ck_assert_msg(ts >= last_end[pid] - 1e-3, "stage %d: %s starts before the last ends", pid, name);
        last_end[pid] = ts + dur;
        fwd[pid] += !strncmp(name, "ForwardPass", 11);
        bwd[pid] += !strncmp(name, "BackwardPass", 12);
    }
    for (int s = 0; s < 4; s++) {
        ck_assert_int_eq(fwd[s], 6);
        ck_assert_int_eq(bwd[s], 6);
    }
    ck_assert_uint_gt(r->trace_spans, 0);
    json_decref(root);
    free(text);
    free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plan_pipe");
    TCase *tc = tcase_create("pipe");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_plan_pipe_bubble_s4_m8);
    tcase_add_test(tc, test_plan_pipe_bubble_s8_m32);
    tcase_add_test(tc, test_plan_pipe_bubble_one_micro_batch);
    tcase_add_test(tc, test_plan_pipe_stage_memory);
    tcase_add_test(tc, test_plan_pipe_oom_names_the_stage);
    tcase_add_test(tc, test_plan_pipe_trace);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run(suite()); }
