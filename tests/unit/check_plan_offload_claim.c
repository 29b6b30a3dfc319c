/* The ZeRO-Offload paper's claim (Ren et al. 2021, "ZeRO-Offload: Democratizing
 * Billion-Scale Model Training", abstract and section 6): a 13B-parameter model trains on
 * one V100-32GB with ZeRO-2 and the optimizer on the host. DeepSpeed's estimator puts the
 * card's share at 2 bytes per parameter (estimate_zero2_model_states_mem_needs,
 * offload_optimizer=cpu: the 16-bit parameters; the reduced gradients go to the host
 * bucket by bucket and no gradient partition stays on the card).
 *
 * GPT-3 13B (Brown et al. 2020, table 2.1: 40 layers, d_model 5120, 40 heads), fp16, one
 * sequence of 128 tokens, on a v100-32gb (a DGX-2's, 1.5 TiB of host memory): the plan
 * must fit on the card and on the host. The card holds no gradient partition: each
 * layer's reduced share goes to the host during backward (zero/offload.c,
 * zl__zero_offload_add_share); kept on the card it would be 2 more bytes per parameter
 * (24 GiB at 13B), and the plan would not fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "plan/plan.h"
#include "sim/presets.h"

static const zl_gpt_config gpt3_13b = {"gpt3-13b", 50257, 2048, 40, 40, 5120};

START_TEST(test_13b_trains_on_one_v100_with_offload)
{
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("v100-32gb", &c), ZL_OK);
    zl_plan_request req;
    memset(&req, 0, sizeof req);
    req.model = gpt3_13b;
    req.world_size = 1;
    req.device_memory = c.device->memory;
    req.host_memory = zl_cluster_host_memory_per_rank(&c);
    req.nvme_capacity = zl_cluster_nvme_capacity_per_rank(&c);
    req.gpu = true;
    zl_engine_options *o = &req.options;
    o->micro_batch_size = 1;
    o->gradient_accumulation_steps = 1;
    o->seq_len = 128;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->zero_stage = 2;
    o->reduce_scatter = true;
    o->use_multi_rank_bucket_allreduce = true;
    o->precision.dtype = ZL_F16;
    o->offload_optimizer = true;
    o->offload_pin_memory = true;
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_ptr_nonnull(r);
    zl_status st = zl_plan_run(&req, r);
    const zl_ledger *d = zl_plan_device_ledger(r);
    printf("  13B, ZeRO-2 + offload on one V100-32GB: card %.2f GiB (param %.2f, grad %.2f), "
           "host %.2f GiB\n", d->budgeted_peak_nbytes / 1073741824.0,
           zl_ledger_peak(d, "param") / 1073741824.0, zl_ledger_peak(d, "grad") / 1073741824.0,
           zl_plan_host_ledger(r)->peak_nbytes / 1073741824.0);
    ck_assert_uint_eq(zl_ledger_peak(d, "grad"), 0);
    ck_assert(r->host_fits);
    ck_assert_msg(st == ZL_OK && r->device_fits, "does not fit the card: %s", r->reason);
    free(r);
}
END_TEST

static Suite *claim_suite(void)
{
    Suite *s = suite_create("plan_offload_claim");
    TCase *tc = tcase_create("zero_offload_paper");
    tcase_add_test(tc, test_13b_trains_on_one_v100_with_offload);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(claim_suite)
