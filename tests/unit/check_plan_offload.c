/* ZeRO-Offload in plans against DeepSpeed's estimators and the ZeRO-Offload paper.
 *
 * DeepSpeed's estimators (sim/estimate.h, `zerolab estimate`) give the host memory a node
 * needs ("per CPU"); zl_plan_run gives the host ledger of one rank. Where they count the
 * same things the node's figure is the rank's times the GPUs of the node, byte for byte:
 *
 *   ZeRO-2, offload_optimizer=cpu:  P * max(4 * total_gpus, 16) * abf
 *   ZeRO-3, offload_optimizer=cpu, zero_init=1:  P * 16 / nodes * abf
 *
 * 16 bytes per parameter = fp32 master 4 + fp32 gradient 4 + Adam's moments 8, the host
 * tags master, offload.grad, adam.m and adam.v. DeepSpeed counts differently in three
 * places, each asserted here as an exact relation:
 *   - abf, the additional buffer factor (1.5 by default), multiplies the count;
 *   - the staging copy of the stepped partition in the model's type (offload.param, 2
 *     bytes per element in 16 bits; DeepSpeed's pinned 16-bit buffer) is not counted;
 *   - ZeRO-2's 4 * total_gpus term (more than 16 from 5 GPUs up) is every process's fp32
 *     copy of the whole model while it is built on the host, not training state: the plan
 *     builds nothing on the host, so there the estimator is 4 * total_gpus * P and the
 *     plan 16 P per node.
 * The GPU column of ZeRO-2 with offload, 2P, is the plan's 16-bit parameters.
 *
 * The ZeRO-Offload paper (Ren et al. 2021) trains a 13B-parameter GPT on one V100-32GB,
 * ZeRO-2 with the optimizer on the host; without offload it does not fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "plan/plan.h"
#include "sim/estimate.h"
#include "sim/presets.h"

static const zl_gpt_config gpt2_124m = {"gpt2-124m", 50257, 1024, 12, 12, 768};
#define P_124M 124439808u

static zl_plan_request request(const zl_gpt_config *m, int stage, int world, bool offload)
{
    zl_plan_request req;
    memset(&req, 0, sizeof req);
    req.model = *m;
    req.world_size = world;
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
    o->offload_optimizer = offload;
    o->offload_pin_memory = offload;
    return req;
}

/* The optimizer's state on the host: what DeepSpeed's estimator counts, per rank. */
static size_t host_state(const zl_ledger *h)
{
    return zl_ledger_peak(h, "master") + zl_ledger_peak(h, "offload.grad") +
           zl_ledger_peak(h, "adam.m") + zl_ledger_peak(h, "adam.v");
}

static zl_plan_result *plan(const zl_plan_request *req, zl_status want)
{
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_ptr_nonnull(r);
    zl_status st = zl_plan_run(req, r);
    ck_assert_msg(st == want, "plan: status %d, want %d: %s", st, want, zl_last_error());
    return r;
}

/* ZeRO-2 on one node of 1, 2 and 4 GPUs: the node's host state is the estimator's count. */
START_TEST(test_zero2_host_equals_estimator)
{
    const int gpus[] = {1, 2, 4};
    for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++) {
        int g = gpus[i];
        zl_plan_request req = request(&gpt2_124m, 2, g, true);
        zl_plan_result *r = plan(&req, ZL_OK);
        ck_assert_uint_eq(r->params, P_124M);
        size_t node = host_state(&r->host) * (size_t)g;
        int64_t cpu, gpu, cpu15, gpu15;
        zl_estimate_zero2(P_124M, g, 1, true, 1.0, false, &cpu, &gpu);
        zl_estimate_zero2(P_124M, g, 1, true, 1.5, false, &cpu15, &gpu15);
        printf("  ZeRO-2 offload, %d GPU(s): plan %zu bytes per node, estimator %lld (abf 1), "
               "%lld (abf 1.5)\n", g, node, (long long)cpu, (long long)cpu15);
        ck_assert_uint_eq(node, 16u * P_124M);
        ck_assert_int_eq(cpu, (int64_t)node);         /* the same count */
        ck_assert_int_eq(cpu15, (int64_t)(node / 2 * 3)); /* x abf, exactly */
        /* the staging copy DeepSpeed leaves out: 2 bytes per element of the partition */
        ck_assert_uint_eq(zl_ledger_peak(&r->host, "offload.param") * (size_t)g, 2u * P_124M);
        ck_assert_uint_eq(r->host.peak_nbytes * (size_t)g, 18u * P_124M);
        /* the GPU column: the 16-bit parameters; nothing of the optimizer on the card */
        ck_assert_int_eq(gpu, (int64_t)zl_ledger_peak(&r->ledger, "param"));
        ck_assert_uint_eq(zl_ledger_peak(&r->ledger, "master") + zl_ledger_peak(&r->ledger, "adam.m") +
                          zl_ledger_peak(&r->ledger, "adam.v"), 0);
        free(r);
    }
}
END_TEST

/* 8 GPUs: DeepSpeed's max(4 * total_gpus, 16) counts 4 bytes per parameter per process
 * (the fp32 model each builds on the host), twice the 16 P of training state. */
START_TEST(test_zero2_estimator_counts_the_host_built_models)
{
    zl_plan_request req = request(&gpt2_124m, 2, 8, true);
    zl_plan_result *r = plan(&req, ZL_OK);
    size_t node = host_state(&r->host) * 8;
    int64_t cpu, gpu;
    zl_estimate_zero2(P_124M, 8, 1, true, 1.0, false, &cpu, &gpu);
    ck_assert_uint_eq(node, 16u * P_124M);
    ck_assert_int_eq(cpu, (int64_t)(4u * 8u * P_124M));
    ck_assert_int_eq(cpu, 2 * (int64_t)node);
    free(r);
}
END_TEST

/* ZeRO-3 with the optimizer offloaded on 2 nodes of 2 GPUs (zero_init=1): 16 P / nodes
 * per node, the node's two ranks' host state. */
START_TEST(test_zero3_host_equals_estimator)
{
    zl_plan_request req = request(&gpt2_124m, 3, 4, true);
    zl_plan_result *r = plan(&req, ZL_OK);
    size_t node = host_state(&r->host) * 2;
    int64_t cpu, gpu, cpu15, gpu15;
    zl_estimate_zero3(P_124M, 50257 * 768, 2, 2, true, false, true, 1.0, &cpu, &gpu, NULL);
    zl_estimate_zero3(P_124M, 50257 * 768, 2, 2, true, false, true, 1.5, &cpu15, &gpu15, NULL);
    printf("  ZeRO-3 offload, 2 x 2 GPUs: plan %zu bytes per node, estimator %lld (abf 1)\n", node,
           (long long)cpu);
    ck_assert_uint_eq(node, 8u * P_124M);
    ck_assert_int_eq(cpu, (int64_t)node);
    ck_assert_int_eq(cpu15, (int64_t)(node / 2 * 3));
    free(r);
}
END_TEST

/* A host budget the offloaded state passes: the plan is refused on the host side (the
 * card fits), with the full requirement and a message naming host memory. */
START_TEST(test_host_budget_refuses)
{
    zl_plan_request req = request(&gpt2_124m, 2, 1, true);
    req.device_memory = (size_t)16 << 30;
    req.host_memory = (size_t)1 << 30;
    zl_plan_result *r = plan(&req, ZL_ERR_OOM);
    ck_assert(r->device_fits);
    ck_assert(!r->host_fits);
    ck_assert(r->nvme_fits);
    ck_assert(r->has_need);
    ck_assert_uint_eq(zl_plan_host_ledger(r)->peak_nbytes, 18u * P_124M);
    ck_assert_ptr_nonnull(strstr(r->reason, "host memory"));
    ck_assert_ptr_nonnull(strstr(r->reason, "hint:"));
    /* within its budget: fits, and the host ledger is the same */
    req.host_memory = 18u * P_124M;
    zl_plan_result *ok = plan(&req, ZL_OK);
    ck_assert(ok->device_fits && ok->host_fits && ok->nvme_fits);
    ck_assert_uint_eq(ok->host.peak_nbytes, 18u * P_124M);
    free(ok);
    free(r);
}
END_TEST

/* GPT-3 13B (Brown et al. 2020, table 2.1: 40 layers, d_model 5120, 40 heads) on one
 * V100-32GB of a DGX-2, ZeRO-2, fp16, one sequence of 128 tokens: without offload the card
 * cannot hold its 20 bytes per parameter; with the optimizer offloaded the host (1.5 TB)
 * holds 18 bytes per parameter. */
static const zl_gpt_config gpt3_13b = {"gpt3-13b", 50257, 2048, 40, 40, 5120};

static zl_plan_request request_13b(bool offload)
{
    static zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("v100-32gb", &c), ZL_OK);
    zl_plan_request req = request(&gpt3_13b, 2, 1, offload);
    req.options.seq_len = 128;
    req.device_memory = c.device->memory;
    req.host_memory = zl_cluster_host_memory_per_rank(&c);
    req.nvme_capacity = zl_cluster_nvme_capacity_per_rank(&c);
    req.gpu = true;
    return req;
}

START_TEST(test_13b_on_one_v100_needs_offload)
{
    zl_plan_request req = request_13b(false);
    zl_plan_result *r = plan(&req, ZL_ERR_OOM);
    ck_assert(!r->device_fits);
    ck_assert_uint_gt(r->params, 12800000000u);
    ck_assert_uint_lt(r->params, 13000000000u);
    free(r);
    /* with offload, the host side holds the optimizer: 18 bytes per parameter in 1.5 TiB */
    req = request_13b(true);
    zl_plan_result *o = malloc(sizeof *o);
    ck_assert_ptr_nonnull(o);
    zl_plan_run(&req, o);
    ck_assert(o->host_fits);
    ck_assert_uint_eq(zl_plan_host_ledger(o)->peak_nbytes, 18 * o->params);
    ck_assert_uint_eq(zl_ledger_peak(zl_plan_device_ledger(o), "adam.m"), 0);
    free(o);
}
END_TEST

static Suite *plan_offload_suite(void)
{
    Suite *s = suite_create("plan_offload");
    TCase *tc = tcase_create("estimator");
    tcase_add_test(tc, test_zero2_host_equals_estimator);
    tcase_add_test(tc, test_zero2_estimator_counts_the_host_built_models);
    tcase_add_test(tc, test_zero3_host_equals_estimator);
    tcase_add_test(tc, test_host_budget_refuses);
    tcase_add_test(tc, test_13b_on_one_v100_needs_offload);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(plan_offload_suite)
