/* The ZeRO paper's model-state figures (Rajbhandari et al. 2020, Figure 1 and Table 1):
 * a 7.5B-parameter model with mixed-precision Adam on 64 GPUs holds, per GPU, 120 GB
 * (data parallelism: 16 bytes per parameter), 31.4 GB (stage 1: 4Ψ + 12Ψ/N), 16.6 GB
 * (stage 2: 2Ψ + 14Ψ/N) and 1.9 GB (stage 3: 16Ψ/N). zl_plan_run runs the engine on the
 * meta backend as one of 64 virtual ranks; its ledger's param + grad + master + adam
 * bytes, in GB of 1e9 bytes as the paper counts, round to the paper's figures. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <stdlib.h>

#include "check_util.h"
#include "plan/plan.h"
#include "sim/timeline.h" /* ZL_STREAM_COUNT */

/* A GPT with Ψ = 7,498,670,080 (C 4096, 36 layers, 32 heads, 2048 positions, and a
 * vocabulary chosen to land on 7.5B). */
static const zl_gpt_config gpt_7b5 = {"gpt-7.5b", 58740, 2048, 36, 32, 4096};

static double model_states_gb(int stage)
{
    zl_plan_request req;
    memset(&req, 0, sizeof req);
    req.model = gpt_7b5;
    req.world_size = 64;
    zl_engine_options *o = &req.options;
    o->micro_batch_size = 1;
    o->gradient_accumulation_steps = 1;
    o->seq_len = 16;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->zero_stage = stage;
    o->reduce_scatter = true;
    o->use_multi_rank_bucket_allreduce = true;
    o->precision.dtype = ZL_F16;
    zl_plan_result res;
    ck_assert_int_eq(zl_plan_run(&req, &res), ZL_OK);
    ck_assert_uint_eq(res.params, 7498670080u);
    ck_assert_msg(res.seconds < 5.0, "plan took %.2f s", res.seconds);
    return (double)zl_plan_model_states(&res.ledger) / 1e9;
}

/* The paper prints three significant figures (two for stage 3's 1.9). */
static void expect_gb(int stage, double paper)
{
    double gb = model_states_gb(stage);
    printf("  stage %d: %.3f GB per GPU (paper %.1f)\n", stage, gb, paper);
    double rounded = round(gb * 10.0) / 10.0;
    ck_assert_msg(fabs(rounded - paper) < 1e-9, "stage %d: %.3f GB per GPU, paper %.1f", stage, gb,
                  paper);
}

START_TEST(test_zero_paper_dp) { expect_gb(0, 120.0); }
END_TEST
START_TEST(test_zero_paper_stage1) { expect_gb(1, 31.4); }
END_TEST
START_TEST(test_zero_paper_stage2) { expect_gb(2, 16.6); }
END_TEST
START_TEST(test_zero_paper_stage3) { expect_gb(3, 1.9); }
END_TEST

/* A full-scale plan's trace stays small: GPT-3 175B, ZeRO-3 in bf16 on 128 x 8 A100s,
 * wrote 829 MB (8M spans, mostly the CPU's pieces of 16-bit vector ops) before; now the
 * pieces are one kernel and back-to-back runs one span, under a few MB of valid JSON. */
START_TEST(test_full_scale_trace_is_small)
{
    zl_cluster c;
    zl_plan_request req;
    zl_test_gpt3_zero3_request(&req, &c);
    char *buf = NULL;
    size_t len = 0;
    req.trace = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(req.trace);
    zl_plan_result *res = malloc(sizeof *res);
    ck_assert_int_eq(zl_plan_run(&req, res), ZL_OK);
    fclose(req.trace);
    printf("  175B trace: %zu bytes, %zu spans, %zu runs merged, %zu dropped\n", len,
           res->trace_spans, res->trace_merged, res->trace_dropped);
    ck_assert_uint_lt(len, 4u << 20);
    ck_assert_uint_gt(res->trace_spans, 1000); /* the layers' kernels are all there */
    ck_assert_uint_eq(res->trace_dropped, 0);
    json_error_t err;
    json_t *root = json_loads(buf, 0, &err);
    ck_assert_msg(root, "trace is not JSON: %s (line %d)", err.text, err.line);
    /* + the process name, a thread name per stream, the process labels */
    ck_assert_uint_eq(json_array_size(json_object_get(root, "traceEvents")),
                      res->trace_spans + 2 + ZL_STREAM_COUNT);
    json_decref(root);
    free(buf);
    free(res);
}
END_TEST

static Suite *plan_zero_suite(void)
{
    Suite *s = suite_create("plan_zero");
    TCase *tc = tcase_create("paper");
    tcase_add_test(tc, test_zero_paper_dp);
    tcase_add_test(tc, test_zero_paper_stage1);
    tcase_add_test(tc, test_zero_paper_stage2);
    tcase_add_test(tc, test_zero_paper_stage3);
    tcase_add_test(tc, test_full_scale_trace_is_small);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(plan_zero_suite)
