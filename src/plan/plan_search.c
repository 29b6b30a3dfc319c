/* The plan search: which setup of a model fits a cluster and trains fastest, at the
 * config's global batch. Every setup is one zl_plan_run (the engine on the meta backend,
 * the step on the simulated clock); the search only chooses the setups, prunes the
 * micro-batches that cannot fit, and ranks. `zerolab plan --search` prints it; lab 11
 * grades a student's search against it. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "plan/plan.h"
#include "sim/cost.h"

/* Fitting first, then tokens/s descending; equals in the order tried (a total order: the
 * ranking does not depend on the sort's stability). */
static int by_throughput(const void *x, const void *y)
{
    const zl_plan_candidate *a = x, *b = y;
    if (a->fits != b->fits) return a->fits ? -1 : 1;
    int c = (a->tokens_per_second < b->tokens_per_second) - (a->tokens_per_second > b->tokens_per_second);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

/* The offload choices of a stage: 0 none everywhere; 1 the optimizer on the host at stages
 * 1-3 (ZeRO-Offload); 2 the parameters too, at stage 3. */
static int offload_choices(int stage) { return stage >= 3 ? 3 : stage >= 1 ? 2 : 1; }

/* The pipeline sizes a search tries: 1 and the powers of two that divide the GPUs, up to
 * the model's layers and ZL_PLAN_MAX_STAGES (a stage needs a layer). */
static int pipeline_sizes(const zl_plan_request *base, int W, int max_pp, int *out)
{
    int n = 0, layers = base->model.num_layers + 2;
    for (int pp = 1; pp <= W && pp <= layers && pp <= ZL_PLAN_MAX_STAGES && n < 16; pp *= 2)
        if (W % pp == 0 && (max_pp <= 0 || pp <= max_pp)) out[n++] = pp;
    return n;
}

/* The tensor-parallel sizes a search tries: 1 and the powers of two within one node (a
 * tensor-parallel group allreduces twice per block: it stays on NVLink) that divide the
 * heads. */
static int tensor_parallel_sizes(const zl_plan_request *base, int max_tp, int *out)
{
    int n = 0;
    for (int tp = 1; tp <= base->cluster->gpus_per_node && n < 8; tp *= 2)
        if (base->model.num_heads % tp == 0 && base->model.channels % tp == 0 &&
            (max_tp <= 0 || tp <= max_tp))
            out[n++] = tp;
    return n;
}

void zl_plan_search_free(zl_plan_search_result *out)
{
    if (!out) return;
    free(out->candidates);
    memset(out, 0, sizeof *out);
}

zl_status zl_plan_search(const zl_plan_request *base, const zl_plan_search_space *space,
                         zl_plan_search_visit visit, void *ctx, zl_plan_search_result *out)
{
    static const zl_plan_search_space all = {0};
    if (!space) space = &all;
    if (!out) return zl_errorf(ZL_ERR_INVALID, "zl_plan_search: no result to fill");
    memset(out, 0, sizeof *out);
    if (!base || !base->cluster)
        return zl_errorf(ZL_ERR_INVALID, "zl_plan_search: the request has no cluster\n"
                         "  hint: set the request's cluster (zl_cluster_parse) to the GPUs to search");
    int W = zl_cluster_size(base->cluster);
    const zl_engine_options *bo = &base->options;
    int base_dp = base->world_size, base_pp = base->pipe_stages > 1 ? base->pipe_stages : 1;
    int base_tp = base->tp_size > 1 ? base->tp_size : 1;
    /* the global batch stays: micro x accumulation x data-parallel ranks */
    int global = bo->micro_batch_size * bo->gradient_accumulation_steps * base_dp;
    int pps[16], npp = pipeline_sizes(base, W, space->max_pp, pps);
    int tps[8], ntp = tensor_parallel_sizes(base, space->max_tp, tps);
    enum { MAX_CANDIDATES = 8 * 16 * 2 * 4 * 3 * 32 };
    /* activation checkpointing: off, and on (the config's interval, else every layer) */
    int ckpt_on = bo->checkpoint_interval > 0 ? bo->checkpoint_interval : 1;
    zl_plan_candidate *cands = calloc(MAX_CANDIDATES, sizeof *cands);
    zl_plan_result *r = malloc(sizeof *r);
    zl_plan_request *q = malloc(sizeof *q);
    if (!cands || !r || !q) {
        free(cands);
        free(r);
        free(q);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    }
    *q = *base;
    int n = 0, refused = 0;
    zl_status rc = ZL_OK;
    for (int ti = 0; ti < ntp && rc == ZL_OK; ti++)
    for (int pi = 0; pi < npp && rc == ZL_OK; pi++)
    for (int stage = 0; stage <= 3 && rc == ZL_OK; stage++)
        for (int off = 0; off < offload_choices(stage) && rc == ZL_OK; off++) {
            int tp = tps[ti];
            /* offload is tried without tensor parallelism only: a search of a large
             * cluster must stay quick (issue 15: 175B on 1024 GPUs under 10 s), and a model
             * split over a node rarely needs its optimizer on the host too */
            if (W % (pps[pi] * tp) || (tp > 1 && off > 0) || (space->no_offload && off > 0)) continue;
            /* Activations grow with the micro-batch: past the smallest one that did not fit
             * the card (checkpointing off, on), larger ones are not tried. */
            int too_big[2] = {INT_MAX, INT_MAX};
            for (int ci = 0; ci < 2 * 32 && n < MAX_CANDIDATES; ci++) {
                int pp = pps[pi], dp = W / (pp * tp);
                if (pp > 1 && stage >= 2) break; /* DeepSpeed's pipelines: ZeRO 0-1 */
                if (global % dp) break;
                int per_replica = global / dp; /* micro x accumulation */
                int micro = 1 << (ci / 2), ckpt = ci % 2 ? ckpt_on : 0;
                if (micro > per_replica || (space->max_micro > 0 && micro > space->max_micro)) break;
                if (per_replica % micro || micro > too_big[ci % 2]) continue;
                if (space->checkpoint_only && !ckpt) continue;
                q->world_size = dp;
                q->tp_size = tp;
                q->pipe_stages = pp;
                q->pipe_stage = -1;
                q->options = *bo;
                q->options.checkpoint_interval = ckpt;
                q->options.zero_stage = stage;
                q->options.micro_batch_size = micro;
                q->options.gradient_accumulation_steps = per_replica / micro;
                q->options.offload_optimizer = off >= 1;
                q->options.offload_param = off == 2;
                if (!off) q->options.offload_pin_memory = false;
                else if (!bo->offload_optimizer) q->options.offload_pin_memory = true;
                if (off == 2 && !bo->offload_param) q->options.offload_param_pin_memory = true;
                zl_status st = zl_plan_run(q, r);
                if (st != ZL_OK && st != ZL_ERR_OOM) {
                    /* a choice the engine refuses is skipped; the config's own (its stage,
                     * offload and grid) is an error: e.g. its NVMe offload at another stage
                     * is another setup, skipped */
                    if (off != (bo->offload_param ? 2 : (int)bo->offload_optimizer) ||
                        pp != base_pp || tp != base_tp || stage != bo->zero_stage) {
                        refused++;
                        continue;
                    }
                    rc = st;
                    break;
                }
                zl_plan_candidate *c = &cands[n];
                c->order = n++;
                c->pp = pp;
                c->tp = tp;
                c->dp = dp;
                c->stage = stage;
                c->micro = micro;
                c->gas = per_replica / micro;
                c->offload_optimizer = off >= 1;
                c->offload_param = off == 2;
                c->checkpoint = ckpt;
                c->fits = st == ZL_OK;
                c->device_fits = r->device_fits;
                if (!r->device_fits && micro < too_big[ci % 2] && !space->no_pruning)
                    too_big[ci % 2] = micro;
                c->host_fits = r->host_fits;
                c->tokens_per_second = r->tokens_per_second;
                c->step_seconds = r->step_seconds;
                c->exposed_seconds = r->exposed_comm_seconds + r->exposed_copy_seconds;
                c->mfu = r->mfu;
                c->device_peak = zl_plan_device_ledger(r)->budgeted_peak_nbytes;
                c->host_peak = zl_plan_host_ledger(r)->peak_nbytes;
                if (visit && (rc = visit(ctx, q, r, c)) != ZL_OK) break;
            }
        }
    free(r);
    free(q);
    if (rc != ZL_OK) {
        free(cands);
        return rc;
    }
    qsort(cands, (size_t)n, sizeof *cands, by_throughput);
    out->candidates = cands;
    out->num_candidates = n;
    out->num_refused = refused;
    out->global_batch = global;
    return ZL_OK;
}
