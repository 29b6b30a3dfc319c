/* The plan search (zl_plan_search) against plans made one by one with zl_plan_run.
 *
 *  - A whole default search (what `zerolab plan --search` runs) of GPT-2 124M on one node
 *    of 8 T4s at a global batch of 256 x 1024 tokens: the setups the documented rules
 *    name (tp and pp 1, 2, 4, 8; ZeRO 0-3, 0-1 with a pipeline; offload at tp 1; micro 1,
 *    2, 4... of the per-replica batch, checkpointing off and on) are enumerated here and
 *    planned independently, the micro-batches past the first that did not fit the card
 *    dropped: the search lists exactly those, with the same figures, counts the same
 *    refusals, ranks fitting first by tokens/s descending, and its first is the fastest
 *    independent plan that fits. The pruning rule's premise holds too: the micro-batch
 *    after the first that did not fit does not fit either.
 *  - A narrowed space (tp 1, pp 1, no offload, checkpointing only, no pruning, micro up to
 *    8): exactly ZeRO 0-3 x micro 1, 2, 4, 8.
 *  - Errors: a request without a cluster is refused by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "model/gpt_config.h"
#include "plan/plan.h"

static zl_cluster cluster;

/* GPT-2 124M, bf16, AdamW, on one node of 8 T4s, data-parallel 8, micro 4 x accumulation
 * 8 x 8 ranks = 256 sequences of 1024 tokens. */
static void base_request(zl_plan_request *req)
{
    memset(req, 0, sizeof *req);
    ck_assert_int_eq(zl_cluster_parse("8xt4", &cluster), ZL_OK);
    ck_assert_int_eq(zl_gpt_config_preset("gpt2-124m", &req->model), ZL_OK);
    req->world_size = 8;
    req->pipe_stages = 1;
    req->pipe_stage = -1;
    req->tp_size = 1;
    req->device_memory = cluster.device->memory;
    req->host_memory = zl_cluster_host_memory_per_rank(&cluster);
    req->nvme_capacity = zl_cluster_nvme_capacity_per_rank(&cluster);
    req->device_name = cluster.device->display;
    req->gpu = true;
    req->cluster = &cluster;
    zl_engine_options *o = &req->options;
    o->micro_batch_size = 4;
    o->gradient_accumulation_steps = 8;
    o->seq_len = 1024;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->precision.dtype = ZL_BF16;
}

/* One setup as the documented rules make it, planned alone. */
typedef struct expect {
    int tp, pp, stage, off, micro, ckpt;
    zl_status st;
    bool device_fits, host_fits;
    double tokens_per_second;
    size_t device_peak;
} expect;

static zl_status plan_one(const zl_plan_request *base, expect *e, zl_plan_result *r)
{
    zl_plan_request q = *base;
    int W = zl_cluster_size(base->cluster), dp = W / (e->tp * e->pp);
    int global = base->options.micro_batch_size * base->options.gradient_accumulation_steps *
                 base->world_size;
    q.world_size = dp;
    q.tp_size = e->tp;
    q.pipe_stages = e->pp;
    q.options.zero_stage = e->stage;
    q.options.micro_batch_size = e->micro;
    q.options.gradient_accumulation_steps = global / dp / e->micro;
    q.options.checkpoint_interval = e->ckpt;
    q.options.offload_optimizer = e->off >= 1;
    q.options.offload_param = e->off == 2;
    q.options.offload_pin_memory = e->off >= 1; /* the search pins what it offloads */
    q.options.offload_param_pin_memory = e->off == 2;
    e->st = zl_plan_run(&q, r);
    e->device_fits = r->device_fits;
    e->host_fits = r->host_fits;
    e->tokens_per_second = r->tokens_per_second;
    e->device_peak = zl_plan_device_ledger(r)->budgeted_peak_nbytes;
    return e->st;
}

static bool same(const expect *e, const zl_plan_candidate *c)
{
    return c->tp == e->tp && c->pp == e->pp && c->stage == e->stage &&
           c->offload_optimizer == (e->off >= 1) && c->offload_param == (e->off == 2) &&
           c->micro == e->micro && c->checkpoint == e->ckpt;
}

START_TEST(test_default_search_against_single_plans)
{
    zl_plan_request base;
    base_request(&base);
    zl_plan_search_result res;
    ck_assert_int_eq(zl_plan_search(&base, NULL, NULL, NULL, &res), ZL_OK);
    ck_assert_int_eq(res.global_batch, 256);

    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_ptr_nonnull(r);
    int n = 0, refused = 0, fitting = 0, pruned_checked = 0, best = -1;
    static expect ex[2048];
    for (int tp = 1; tp <= 8; tp *= 2)
        for (int pp = 1; pp <= 8; pp *= 2)
            for (int stage = 0; stage <= (pp > 1 ? 1 : 3); stage++)
                for (int off = 0; off <= (tp > 1 ? 0 : stage == 3 ? 2 : stage >= 1 ? 1 : 0); off++)
                    for (int ckpt = 0; ckpt <= 1; ckpt++) {
                        /* the grid is the 8 GPUs; tp divides the heads (12: tp 8 is not tried) */
                        if (tp * pp > 8 || base.model.num_heads % tp) continue;
                        int per_replica = 256 / (8 / (tp * pp));
                        bool past = false; /* past the first micro-batch that did not fit */
                        for (int micro = 1; micro <= per_replica; micro *= 2) {
                            expect e = {tp, pp, stage, off, micro, ckpt, 0, 0, 0, 0, 0};
                            zl_status st = plan_one(&base, &e, r);
                            if (past) {
                                /* the rule's premise: larger micro-batches do not fit either */
                                ck_assert_msg(!e.device_fits, "tp%d pp%d z%d off%d ckpt%d micro %d "
                                              "fits past a smaller one that did not", tp, pp,
                                              stage, off, ckpt, micro);
                                pruned_checked++;
                                continue;
                            }
                            if (st != ZL_OK && st != ZL_ERR_OOM) {
                                refused++;
                                continue;
                            }
                            if (!e.device_fits) past = true;
                            ck_assert_int_lt(n, 2048);
                            ex[n] = e;
                            if (st == ZL_OK) {
                                fitting++;
                                if (best < 0 || e.tokens_per_second > ex[best].tokens_per_second)
                                    best = n;
                            }
                            n++;
                        }
                    }
    free(r);
    printf("  gpt2-124m on 8 x T4: %d setups planned (%d fit), %d refused, %d pruned "
           "(checked not to fit)\n", res.num_candidates, fitting, res.num_refused, pruned_checked);
    ck_assert_int_eq(res.num_candidates, n);
    ck_assert_int_eq(res.num_refused, refused);
    ck_assert_msg(pruned_checked > 0, "the pruning never applied: a larger global batch?");
    ck_assert_msg(fitting > 0 && fitting < n, "%d of %d fit: no contrast", fitting, n);

    /* every setup the rules name, once, with the single plan's figures */
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < res.num_candidates; j++) {
            const zl_plan_candidate *c = &res.candidates[j];
            if (!same(&ex[i], c)) continue;
            found++;
            ck_assert_int_eq(c->fits, ex[i].st == ZL_OK);
            ck_assert_int_eq(c->device_fits, ex[i].device_fits);
            ck_assert_int_eq(c->host_fits, ex[i].host_fits);
            ck_assert(c->tokens_per_second == ex[i].tokens_per_second);
            ck_assert_uint_eq(c->device_peak, ex[i].device_peak);
            ck_assert_int_eq(c->tp * c->pp * c->dp, 8);
            ck_assert_int_eq(c->micro * c->gas * c->dp, 256);
        }
        ck_assert_msg(found == 1, "tp%d pp%d z%d off%d micro %d ckpt%d listed %d times", ex[i].tp,
                      ex[i].pp, ex[i].stage, ex[i].off, ex[i].micro, ex[i].ckpt, found);
    }
    /* ranked: fitting first, then tokens/s descending */
    for (int j = 1; j < res.num_candidates; j++) {
        const zl_plan_candidate *a = &res.candidates[j - 1], *b = &res.candidates[j];
        ck_assert_msg(a->fits >= b->fits, "a setup that does not fit ranks before one that does");
        if (a->fits == b->fits)
            ck_assert_msg(a->tokens_per_second >= b->tokens_per_second, "rank %d slower than %d",
                          j - 1, j);
    }
    /* the winner: the fastest single plan that fits */
    ck_assert(res.candidates[0].fits);
    ck_assert(res.candidates[0].tokens_per_second == ex[best].tokens_per_second);
    printf("  winner: tp %d pp %d dp %d, ZeRO-%d, micro %d, ckpt %d: %.0f tokens/s\n",
           res.candidates[0].tp, res.candidates[0].pp, res.candidates[0].dp,
           res.candidates[0].stage, res.candidates[0].micro, res.candidates[0].checkpoint,
           res.candidates[0].tokens_per_second);
    zl_plan_search_free(&res);
    ck_assert_ptr_null(res.candidates);
}
END_TEST

/* The visit callback sees every setup, in the order tried, before the ranking. */
static zl_status count_visits(void *ctx, const zl_plan_request *req, const zl_plan_result *r,
                              const zl_plan_candidate *c)
{
    int *seen = ctx;
    ck_assert_int_eq(c->order, *seen);
    ck_assert_int_eq(req->options.micro_batch_size, c->micro);
    ck_assert(r->tokens_per_second == c->tokens_per_second);
    (*seen)++;
    return ZL_OK;
}

START_TEST(test_narrow_space)
{
    zl_plan_request base;
    base_request(&base);
    zl_plan_search_space space = {.max_tp = 1, .max_pp = 1, .max_micro = 8, .no_offload = true,
                                  .checkpoint_only = true, .no_pruning = true};
    zl_plan_search_result res;
    int seen = 0;
    ck_assert_int_eq(zl_plan_search(&base, &space, count_visits, &seen, &res), ZL_OK);
    ck_assert_int_eq(res.num_candidates, 4 * 4); /* ZeRO 0-3 x micro 1, 2, 4, 8 */
    ck_assert_int_eq(seen, res.num_candidates);
    int cells[4][4] = {{0}};
    for (int j = 0; j < res.num_candidates; j++) {
        const zl_plan_candidate *c = &res.candidates[j];
        ck_assert(c->tp == 1 && c->pp == 1 && c->dp == 8 && c->checkpoint == 1);
        ck_assert(!c->offload_optimizer && !c->offload_param);
        int m = c->micro == 1 ? 0 : c->micro == 2 ? 1 : c->micro == 4 ? 2 : 3;
        ck_assert_int_eq(1 << m, c->micro);
        cells[c->stage][m]++;
    }
    for (int s = 0; s < 4; s++)
        for (int m = 0; m < 4; m++) ck_assert_int_eq(cells[s][m], 1);
    zl_plan_search_free(&res);
}
END_TEST

START_TEST(test_no_cluster_refused)
{
    zl_plan_request base;
    base_request(&base);
    base.cluster = NULL;
    zl_plan_search_result res;
    ck_assert_int_eq(zl_plan_search(&base, NULL, NULL, NULL, &res), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "cluster"));
    ck_assert_ptr_null(res.candidates);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plan_search");
    TCase *tc = tcase_create("search");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_default_search_against_single_plans);
    tcase_add_test(tc, test_narrow_space);
    tcase_add_test(tc, test_no_cluster_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run(suite()); }
