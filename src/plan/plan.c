#include "plan/plan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>

#include "comm/comm.h"
#include "core/device.h"
#include "plan/plan_internal.h"
#include "model/gpt_config.h"
#include "sim/cost.h"
#include "zero/zero.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Optimizer steps: gradient_accumulation_steps micro-steps of token id 0 (values do
 * not matter on the meta backend; ids must be valid for the model's checks). */
/* A meta run's micro-batches: token 0 everywhere (the values are never read). */
static zl_status zero_tokens(void *ctx, int32_t *inputs, int32_t *targets)
{
    size_t n = *(const size_t *)ctx;
    memset(inputs, 0, n * sizeof *inputs);
    memset(targets, 0, n * sizeof *targets);
    return ZL_OK;
}

/* `steps` optimizer steps through the engine's schedule, as a run takes them. */
static zl_status train_steps(zl_engine *e, int steps)
{
    const zl_engine_options *o = zl_engine_get_options(e);
    size_t n = (size_t)o->micro_batch_size * o->seq_len;
    zl_status st = ZL_OK;
    for (int s = 0; s < steps && st == ZL_OK; s++) st = zl_engine_train_batch(e, zero_tokens, &n, NULL);
    return st;
}

/* The last step's figures from the timeline: `mark` is the timeline before it. */
static void step_figures(const zl_plan_request *req, const zl_engine *e, const zl_timeline *mark,
                         const zl_timeline *tl, zl_plan_result *res)
{
    res->step_seconds = zl_timeline_now(tl) - zl_timeline_now(mark);
    res->compute_seconds = tl->busy[ZL_STREAM_COMPUTE] - mark->busy[ZL_STREAM_COMPUTE];
    res->comm_seconds = tl->busy[ZL_STREAM_COMM] - mark->busy[ZL_STREAM_COMM];
    res->exposed_comm_seconds = tl->exposed_comm - mark->exposed_comm;
    res->exposed_copy_seconds = tl->exposed_copy - mark->exposed_copy;
    const zl_engine_options *o = zl_engine_get_options(e);
    double tokens = (double)o->micro_batch_size * o->seq_len * o->gradient_accumulation_steps;
    /* per GPU: the whole model's, over the tensor-parallel ranks that share it */
    double flops = 3.0 * zl_model_whole_forward_flops(zl_engine_model(e), o->micro_batch_size, o->seq_len) *
                   o->gradient_accumulation_steps / (req->tp_size > 1 ? req->tp_size : 1);
    res->model_flops = flops;
    if (res->step_seconds > 0) {
        res->tokens_per_second = tokens * req->world_size / res->step_seconds;
        double peak = zl_device_peak_flops(req->cluster->device, zl_engine_dtype(e));
        res->mfu = flops / (res->step_seconds * peak);
    }
}

static zl_status run_once(const zl_plan_request *req, zl_plan_result *res, zl__plan_timing *timing);

/* Whether each place holds its full requirement (the run's own ledgers when it fit). */
static void set_fits(const zl_plan_request *req, zl_plan_result *res)
{
    const zl_ledger *d = zl_plan_device_ledger(res), *h = zl_plan_host_ledger(res),
                    *n = zl_plan_nvme_ledger(res);
    res->device_fits = !req->device_memory || d->budgeted_peak_nbytes <= req->device_memory;
    res->host_fits = !req->host_memory || h->peak_nbytes <= req->host_memory;
    res->nvme_fits = !req->nvme_capacity || n->peak_nbytes <= req->nvme_capacity;
}

zl_status zl_plan_run(const zl_plan_request *req, zl_plan_result *res)
{
    if (req->pipe_stages > 1 && req->pipe_stage < 0) return zl__plan_pipeline(req, res);
    return zl__plan_stage(req, res, NULL);
}

zl_status zl__plan_stage(const zl_plan_request *req, zl_plan_result *res, zl__plan_timing *timing)
{
    double t0 = now();
    memset(res, 0, sizeof *res);
    zl_status st = run_once(req, res, timing);
    /* The swap files have no allocator to refuse them: past the node's NVMe share, the
     * plan refuses them itself, as the filesystem would. */
    if (st == ZL_OK && req->nvme_capacity && res->nvme.peak_nbytes > req->nvme_capacity) {
        char need[32], cap[32];
        st = zl_errorf(ZL_ERR_OOM,
                       "rank 0 NVMe: the swap files need %s, more than the %s of NVMe this rank "
                       "has (its node's drives shared by the node's GPUs)\n  hint: more nodes "
                       "divide ZeRO-Infinity's partitions, or offload less to NVMe "
                       "(offload_param \"cpu\" keeps parameters in host memory)",
                       zl_format_bytes(need, sizeof need, res->nvme.peak_nbytes),
                       zl_format_bytes(cap, sizeof cap, req->nvme_capacity));
        snprintf(res->reason, sizeof res->reason, "%s", zl_last_error());
    } else if (st == ZL_ERR_OOM && (req->device_memory || req->host_memory || req->nvme_capacity)) {
        /* The run stopped at the first allocation past a budget, so its ledgers lack
         * whatever came after (the optimizer, typically). Plan it again without limits
         * (and without a clock: only memory is wanted) for the full requirement. */
        snprintf(res->reason, sizeof res->reason, "%s", zl_last_error());
        zl_plan_request unlimited = *req;
        unlimited.device_memory = unlimited.host_memory = unlimited.nvme_capacity = 0;
        unlimited.cluster = NULL;
        unlimited.trace = NULL;
        zl_plan_result *full = malloc(sizeof *full);
        if (!full) return res->status = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        memset(full, 0, sizeof *full);
        zl_status fst = run_once(&unlimited, full, NULL);
        if (fst == ZL_OK) {
            res->need = full->ledger;
            res->need_host = full->host;
            res->need_nvme = full->nvme;
            res->has_need = true;
        }
        free(full);
        if (fst != ZL_OK && fst != ZL_ERR_OOM) return res->status = fst;
        zl_errorf(ZL_ERR_OOM, "%s", res->reason); /* the message callers read */
    }
    if (st == ZL_OK || st == ZL_ERR_OOM) set_fits(req, res);
    if (st == ZL_ERR_OOM && res->device_fits && res->host_fits && res->nvme_fits)
        res->device_fits = res->host_fits = res->nvme_fits = false; /* no full requirement */
    res->seconds = now() - t0;
    return res->status = st;
}

/* The executor's observer during the last step: each instruction and the simulated time
 * it starts at (the end: the call with NULL). */
static void record_instr(void *ctx, const zl_instr *in)
{
    zl__plan_timing *t = ctx;
    double at = zl_timeline_now(&t->sim->timeline);
    if (t->n > 0) t->end[t->n - 1] = at;
    if (!in) return;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        zl_instr *ins = realloc(t->instrs, (size_t)cap * sizeof *ins);
        double *start = ins ? realloc(t->start, (size_t)cap * sizeof *start) : NULL;
        double *end = start ? realloc(t->end, (size_t)cap * sizeof *end) : NULL;
        if (ins) t->instrs = ins;
        if (start) t->start = start;
        if (end) t->end = end;
        if (!end) { /* out of host memory: the timing is incomplete, and says so */
            t->failed = true;
            return;
        }
        t->cap = cap;
    }
    t->instrs[t->n] = *in;
    t->start[t->n] = t->end[t->n] = at;
    t->n++;
}

void zl__plan_timing_free(zl__plan_timing *t)
{
    free(t->instrs);
    free(t->start);
    free(t->end);
    memset(t, 0, sizeof *t);
}

static zl_status run_once(const zl_plan_request *req, zl_plan_result *res, zl__plan_timing *timing)
{
    if (req->world_size < 1)
        return res->status = zl_errorf(ZL_ERR_INVALID, "plan: world size must be >= 1, got %d",
                                       req->world_size);
    res->params = zl_gpt_config_num_params(&req->model);
    char name[64];
    if (req->device_name) snprintf(name, sizeof name, "rank 0 (%s)", req->device_name);
    else snprintf(name, sizeof name, "rank 0"); /* as a real run's rank 0 without a card */
    zl_device dev;
    zl_status st = zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", name, req->device_memory);
    if (st != ZL_OK) return res->status = st;
    if (req->gpu) zl_ledger_exempt(&dev.ledger, "cast");
    /* The rank's host device, as a real run has one (run/run.h), on meta too: shapes
     * only, its budget the rank's share of the node's host memory (a real run's is
     * unlimited by default). Always the plan's own, whatever options.host says: a plan
     * never touches a real run's host memory. */
    zl_device host;
    snprintf(name, sizeof name, "rank 0 host");
    if ((st = zl_device_init(&host, ZL_DEVICE_HOST, "meta", name, req->host_memory)) != ZL_OK)
        return res->status = st;
    zl_zero_set_memory_hint(&dev.ledger, req->world_size, req->options.zero_stage,
                            req->options.checkpoint_interval, req->pipe_stages);
    zl_sim sim;
    bool clocked = req->cluster != NULL;
    if (clocked) {
        zl_sim_init(&sim, NULL, NULL, NULL, req->trace != NULL);
        zl_cost_attach(&sim, req->cluster);
        zl_device_attach_sim(&dev, &sim);
    }
    zl_comm *dp = NULL, *pipe = NULL, *tp = NULL, *mp = NULL;
    if (req->world_size > 1 && (st = zl_comm_virtual(&dp, req->world_size, 0, "data", NULL)) != ZL_OK)
        goto out;
    if (dp && clocked) zl_comm_set_sim(dp, &sim); /* rank 0's collectives on the cluster's links */
    int tp_size = req->tp_size > 1 ? req->tp_size : 1;
    if (dp) zl_comm_set_stride(dp, tp_size); /* the grid's data axis (model innermost) */
    if (req->pipe_stages > 1 &&
        (st = zl_comm_virtual(&pipe, req->pipe_stages, req->pipe_stage, "pipe", NULL)) != ZL_OK)
        goto out;
    if (pipe && clocked) zl_comm_set_sim(pipe, &sim);
    if (pipe) zl_comm_set_stride(pipe, tp_size * req->world_size);
    if (req->tp_size > 1 && (st = zl_comm_virtual(&tp, req->tp_size, 0, "model", NULL)) != ZL_OK)
        goto out;
    if (tp && clocked) zl_comm_set_sim(tp, &sim); /* tensor-parallel allreduces: on the links */
    int mp_size = (req->pipe_stages > 1 ? req->pipe_stages : 1) * (req->tp_size > 1 ? req->tp_size : 1);
    if (mp_size > 1 && (st = zl_comm_virtual(&mp, mp_size, 0, "model-parallel", NULL)) != ZL_OK)
        goto out;
    zl_engine_options o = req->options;
    o.dp = dp;
    o.pipe = pipe;
    o.tp = tp;
    o.mp = mp;
    o.host = &host;
    zl_engine *e;
    st = zl_engine_create(&e, &req->model, &o, &dev);
    if (st == ZL_OK) {
        int steps = req->steps > 0 ? req->steps : 1;
        if (steps > 1) st = train_steps(e, steps - 1);
        zl_timeline mark;
        double flops0 = clocked ? sim.flops : 0;
        if (clocked) {
            mark = sim.timeline; /* the clocks before the last step (spans not copied) */
            mark.spans = NULL;
            sim.timeline.num_spans = 0; /* the trace shows the last step only */
            sim.timeline.merged_spans = sim.timeline.dropped_spans = 0;
        }
        if (timing && clocked) {
            timing->sim = &sim;
            zl_engine_set_instr_observer(e, record_instr, timing);
        }
        if (st == ZL_OK) st = train_steps(e, 1);
        zl_engine_set_instr_observer(e, NULL, NULL);
        if (timing) timing->sim = NULL;
        if (timing && timing->failed && st == ZL_OK)
            st = zl_errorf(ZL_ERR_NOMEM, "out of host memory recording the step's instructions");
        if (clocked && st == ZL_OK) {
            step_figures(req, e, &mark, &sim.timeline, res);
            res->hardware_flops = sim.flops - flops0;
            if (req->trace) {
                st = zl_timeline_write_trace(&sim.timeline, req->trace, 0, true, true);
                res->trace_spans = sim.timeline.num_spans;
                res->trace_merged = sim.timeline.merged_spans; /* counted from the last step */
                res->trace_dropped = sim.timeline.dropped_spans;
            }
        }
        res->ledger = dev.ledger; /* before destroy releases everything */
        res->host = host.ledger;
        res->nvme = *zl_engine_nvme_ledger(e);
        zl_engine_destroy(e);
    } else {
        res->ledger = dev.ledger; /* the peaks show what was live when it failed */
        res->host = host.ledger;
    }
out:
    zl_comm_destroy(mp);
    zl_comm_destroy(tp);
    zl_comm_destroy(pipe);
    zl_comm_destroy(dp);
    if (clocked) zl_sim_free(&sim);
    return st;
}

const zl_ledger *zl_plan_device_ledger(const zl_plan_result *r)
{
    return r->has_need ? &r->need : &r->ledger;
}

const zl_ledger *zl_plan_host_ledger(const zl_plan_result *r)
{
    return r->has_need ? &r->need_host : &r->host;
}

const zl_ledger *zl_plan_nvme_ledger(const zl_plan_result *r)
{
    return r->has_need ? &r->need_nvme : &r->nvme;
}

size_t zl_plan_model_states_peak(const zl_ledger *l)
{
    return zl_ledger_peak(l, "param") + zl_ledger_peak(l, "grad") + zl_ledger_peak(l, "master") +
           zl_ledger_peak(l, "adam.m") + zl_ledger_peak(l, "adam.v");
}

size_t zl_plan_model_states(const zl_ledger *l)
{
    return zl_ledger_current(l, "param") + zl_ledger_current(l, "grad") +
           zl_ledger_current(l, "master") + zl_ledger_current(l, "adam.m") +
           zl_ledger_current(l, "adam.v");
}
