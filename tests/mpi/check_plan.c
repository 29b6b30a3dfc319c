/* zerolab plan against real runs: for small configurations (1-3 ranks, ZeRO stages 0-3,
 * fp32 and bf16), the meta backend's ledger (zl_plan_run) records, tag by tag, the same
 * current and peak bytes as the ledger of this rank in a real training run (built by
 * zl_run_init from config text, as `zerolab train` builds it; the plan gets the options
 * that run's engine got). The plan runs
 * rank 0 of a virtual group; every rank compares its own real ledger with it, which
 * checks too that ranks hold equal bytes.
 *
 * Run under mpiexec at np = 2 and 3 (tests/run-mpi.sh); np = 1 is the plain case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "plan/plan.h"
#include "run/run.h"

static zl_comm *world;
static const zl_gpt_config model = {"plan-test", 96, 16, 2, 4, 32};
enum { B = 2, T = 8 };

static zl_engine_options options(int stage, zl_dtype dtype, int gas)
{
    zl_engine_options o = zl_test_engine_options(B, gas, T);
    o.gradient_clipping = 1.0;
    o.seed = 3;
    o.zero_stage = stage;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true;
    o.reduce_bucket_size = 3000; /* several buckets */
    o.param_persistence_threshold = 2000; /* stage 3: some layers persistent */
    o.overlap_comm = stage == 2;
    o.precision.dtype = dtype;
    return o;
}

/* The real run, as `zerolab train` builds one (run/run.h), with options() as config text:
 * tokens below the model's vocabulary of 96 (the built-in corpus has 256). */
static const char *const precision_block[] = {
    [ZL_F32] = "", [ZL_F16] = ", \"fp16\": {\"enabled\": true}",
    [ZL_BF16] = ", \"bf16\": {\"enabled\": true, \"check_grad_overflow\": false}"};

static void real_run(zl_run *run, zl_dataset *data, int stage, zl_dtype dtype, int gas,
                     bool offload)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"train_micro_batch_size_per_gpu\": %d, \"gradient_accumulation_steps\": %d,"
             " \"gradient_clipping\": 1.0, \"optimizer\": {\"type\": \"AdamW\"},"
             " \"zero_optimization\": {\"stage\": %d, \"reduce_scatter\": true,"
             "   \"use_multi_rank_bucket_allreduce\": true, \"reduce_bucket_size\": 3000,"
             "   \"stage3_param_persistence_threshold\": 2000, \"overlap_comm\": %s%s}%s}",
             B, gas, stage, stage == 2 ? "true" : "false",
             offload ? ", \"offload_optimizer\": {\"device\": \"cpu\", \"pin_memory\": true}" : "",
             precision_block[dtype]);
    memset(data, 0, sizeof *data);
    data->ntokens = 1024;
    data->vocab_size = model.vocab_size;
    snprintf(data->desc, sizeof data->desc, "plan-test tokens");
    data->tokens = malloc(data->ntokens * sizeof *data->tokens);
    ck_assert_ptr_nonnull(data->tokens);
    for (size_t i = 0; i < data->ntokens; i++) data->tokens[i] = (int32_t)(i * 7 % 96);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = json;
    o.config_name = "<plan-test>";
    o.model_config = &model;
    o.dataset = data;
    o.seq_len = T;
    o.seed = 3;
    o.backend = "cpu";
    o.comm = world;
    ck_assert_msg(zl_run_init(run, &o) == ZL_OK, "%s", zl_last_error());
    /* the config says what options() says */
    zl_engine_options want = options(stage, dtype, gas);
    const zl_engine_options *got = &run->options;
    ck_assert_int_eq(got->zero_stage, want.zero_stage);
    ck_assert_int_eq(got->reduce_bucket_size, want.reduce_bucket_size);
    ck_assert_int_eq(got->param_persistence_threshold, want.param_persistence_threshold);
    ck_assert(got->overlap_comm == want.overlap_comm && got->reduce_scatter &&
              got->use_multi_rank_bucket_allreduce);
    ck_assert_int_eq(got->precision.dtype, want.precision.dtype);
    ck_assert_double_eq(got->gradient_clipping, want.gradient_clipping);
}

/* Tag by tag, current and peak: the plan's ledger against the real one. */
static void same_ledger(const zl_ledger *plan, const zl_ledger *real, const char *what, int stage,
                        zl_dtype dtype)
{
    ck_assert_int_eq(real->num_tags, plan->num_tags);
    for (int i = 0; i < real->num_tags; i++) {
        const zl_ledger_entry *r = &real->entries[i];
        ck_assert_msg(zl_ledger_peak(plan, r->tag) == r->peak_nbytes,
                      "%s, stage %d %s np=%d rank %d: tag '%s' peak %zu (plan) vs %zu (real)", what,
                      stage, zl_dtype_name(dtype), world->size, world->rank, r->tag,
                      zl_ledger_peak(plan, r->tag), r->peak_nbytes);
        ck_assert_msg(zl_ledger_current(plan, r->tag) == r->cur_nbytes,
                      "%s, stage %d %s: tag '%s' current %zu (plan) vs %zu (real)", what, stage,
                      zl_dtype_name(dtype), r->tag, zl_ledger_current(plan, r->tag), r->cur_nbytes);
    }
    ck_assert_uint_eq(plan->peak_nbytes, real->peak_nbytes);
}

/* ZeRO-Offload: the host device's ledger of the plan (master, offload.grad, adam.m,
 * adam.v, offload.param) is the real run's host ledger, byte for byte, and the card holds
 * none of it. The real run's host device also stages the micro-batches ("batch"), which
 * the plan's does too. */
static void offload_same_as_real(int stage, zl_dtype dtype)
{
    int W = world->size;
    zl_run run;
    zl_dataset data;
    real_run(&run, &data, stage, dtype, 2, true);
    ck_assert(run.options.offload_optimizer);
    for (int s = 0; s < 2; s++) {
        float loss;
        ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    }
    zl_plan_request req = {.model = model, .options = run.options, .world_size = W, .steps = 2};
    zl_plan_result *res = malloc(sizeof *res);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(zl_plan_run(&req, res), ZL_OK);
    same_ledger(&res->ledger, &run.device.ledger, "device", stage, dtype);
    same_ledger(&res->host, &run.host.ledger, "host", stage, dtype);
    ck_assert_uint_gt(zl_ledger_peak(&res->host, "adam.m"), 0);
    ck_assert_uint_eq(zl_ledger_peak(&res->ledger, "adam.m") + zl_ledger_peak(&res->ledger, "master"), 0);
    ck_assert(res->device_fits && res->host_fits && res->nvme_fits);
    zl_run_free(&run);
    free(data.tokens);
    free(res);
}

START_TEST(test_plan_offload_stage1_fp32) { offload_same_as_real(1, ZL_F32); }
END_TEST
START_TEST(test_plan_offload_stage2_bf16) { offload_same_as_real(2, ZL_BF16); }
END_TEST
START_TEST(test_plan_offload_stage3_fp16) { offload_same_as_real(3, ZL_F16); }
END_TEST

static void same_as_real(int stage, zl_dtype dtype)
{
    int W = world->size;
    /* the real run: two optimizer steps on this rank's device */
    zl_run run;
    zl_dataset data;
    real_run(&run, &data, stage, dtype, 2, false);
    for (int s = 0; s < 2; s++) {
        float loss;
        ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    }
    zl_engine_options o = run.options;
    /* the plan */
    zl_plan_request req = {.model = model, .options = o, .world_size = W, .steps = 2};
    zl_plan_result res;
    ck_assert_int_eq(zl_plan_run(&req, &res), ZL_OK);
    const zl_ledger *real = &run.device.ledger, *plan = &res.ledger;
    ck_assert_int_eq(real->num_tags, plan->num_tags);
    ck_assert_int_gt(real->num_tags, 8);
    for (int i = 0; i < real->num_tags; i++) {
        const zl_ledger_entry *r = &real->entries[i];
        ck_assert_msg(zl_ledger_peak(plan, r->tag) == r->peak_nbytes,
                      "stage %d %s np=%d rank %d: tag '%s' peak %zu (plan) vs %zu (real)", stage,
                      zl_dtype_name(dtype), W, world->rank, r->tag, zl_ledger_peak(plan, r->tag),
                      r->peak_nbytes);
        ck_assert_msg(zl_ledger_current(plan, r->tag) == r->cur_nbytes,
                      "stage %d %s: tag '%s' current %zu (plan) vs %zu (real)", stage,
                      zl_dtype_name(dtype), r->tag, zl_ledger_current(plan, r->tag), r->cur_nbytes);
    }
    ck_assert_uint_eq(plan->peak_nbytes, real->peak_nbytes);
    ck_assert_uint_eq(res.params, zl_gpt_config_num_params(&run.model));
    zl_run_free(&run);
    free(data.tokens);
}

START_TEST(test_plan_stage0_fp32) { same_as_real(0, ZL_F32); }
END_TEST
START_TEST(test_plan_stage1_fp32) { same_as_real(1, ZL_F32); }
END_TEST
START_TEST(test_plan_stage2_fp32) { same_as_real(2, ZL_F32); }
END_TEST
START_TEST(test_plan_stage3_fp32) { same_as_real(3, ZL_F32); }
END_TEST
START_TEST(test_plan_stage0_bf16) { same_as_real(0, ZL_BF16); }
END_TEST
START_TEST(test_plan_stage1_bf16) { same_as_real(1, ZL_BF16); }
END_TEST
START_TEST(test_plan_stage2_fp16) { same_as_real(2, ZL_F16); }
END_TEST
START_TEST(test_plan_stage3_bf16) { same_as_real(3, ZL_BF16); }
END_TEST

/* An over-budget plan is a result: the OOM status, the ledger's message naming the
 * device, and what was live; the same budget fails the real engine the same way. */
START_TEST(test_plan_oom_is_reported)
{
    zl_engine_options o = options(0, ZL_F32, 1);
    zl_plan_request req = {.model = model, .options = o, .world_size = world->size,
                           .device_memory = 200000, .device_name = "tiny-gpu"};
    zl_plan_result res;
    ck_assert_int_eq(zl_plan_run(&req, &res), ZL_ERR_OOM);
    ck_assert_int_eq(res.status, ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "tiny-gpu"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "hint:"));
    ck_assert_uint_le(res.ledger.peak_nbytes, 200000);
    /* the full requirement: the same plan without a limit, tag by tag */
    ck_assert(res.has_need);
    ck_assert_str_eq(res.reason, zl_last_error());
    zl_plan_request unlimited = req;
    unlimited.device_memory = 0;
    zl_plan_result full;
    ck_assert_int_eq(zl_plan_run(&unlimited, &full), ZL_OK);
    ck_assert(!full.has_need);
    ck_assert_uint_gt(res.need.budgeted_peak_nbytes, 200000);
    ck_assert_uint_eq(res.need.budgeted_peak_nbytes, full.ledger.budgeted_peak_nbytes);
    ck_assert_int_eq(res.need.num_tags, full.ledger.num_tags);
    for (int i = 0; i < full.ledger.num_tags; i++)
        ck_assert_uint_eq(zl_ledger_peak(&res.need, full.ledger.entries[i].tag),
                          full.ledger.entries[i].peak_nbytes);
    ck_assert_uint_gt(zl_ledger_peak(&res.need, "adam.v"), 0); /* never allocated under the budget */
    /* the hint suggests a ZeRO stage only where there are ranks to partition over */
    if (world->size == 1) ck_assert_ptr_null(strstr(res.reason, "partitions them across"));
    ck_assert_ptr_null(strstr(res.reason, "offload_param"));
    ck_assert_ptr_null(strstr(res.reason, "checkpointing"));
}
END_TEST

static Suite *plan_suite(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_plan_stage0_fp32);
    tcase_add_test(tc, test_plan_stage1_fp32);
    tcase_add_test(tc, test_plan_stage2_fp32);
    tcase_add_test(tc, test_plan_stage3_fp32);
    tcase_add_test(tc, test_plan_stage0_bf16);
    tcase_add_test(tc, test_plan_stage1_bf16);
    tcase_add_test(tc, test_plan_stage2_fp16);
    tcase_add_test(tc, test_plan_stage3_bf16);
    tcase_add_test(tc, test_plan_oom_is_reported);
    tcase_add_test(tc, test_plan_offload_stage1_fp32);
    tcase_add_test(tc, test_plan_offload_stage2_bf16);
    tcase_add_test(tc, test_plan_offload_stage3_fp16);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(plan_suite, &world); }
