/* Planning a pipeline: every stage on the meta backend, then the step across the stages.
 *
 * Each stage holds other layers, so each is planned alone (zl__plan_stage with a virtual
 * pipeline group, whose neighbours are as ready as the stage is): its ledgers, and on a
 * clock its last step's instructions with their simulated durations. What a stage alone
 * cannot show is the waiting: the first stage's first backward waits for the gradient to
 * come back from the last stage, the last stage waits for the first activation. So the
 * stages' instruction streams are then replayed against each other, with DeepSpeed's
 * pairing rules:
 *
 *   SendActivation on s  meets  RecvActivation on s + 1   (a rendezvous: the transfer
 *   SendGrad on s        meets  RecvGrad on s - 1          starts when both are there)
 *   ReduceTiedGrads      meets  itself on the tie's stages (GPT-2: the first and the last)
 *   OptimizerStep        waits for every stage (the gradient norm and the overflow check
 *                        are reduced over the stages)
 *   anything else        runs as soon as the stage before it is done
 *
 * The result: the step's time, each stage's idle time (the bubble: (S - 1) / (M + S - 1)
 * of the time up to the last backward with uniform stages, DeepSpeed's TrainSchedule), and
 * with a trace, one row per stage showing the instructions where they ran. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "model/model.h"
#include "pipe/partition.h"
#include "plan/plan_internal.h"
#include "sim/cost.h"

static bool p2p(zl_instr_kind k)
{
    return k == ZL_SEND_ACTIVATION || k == ZL_RECV_ACTIVATION || k == ZL_SEND_GRAD || k == ZL_RECV_GRAD;
}

/* One stage's replay. */
typedef struct lane {
    const zl__plan_timing *t;
    int i;          /* the next instruction */
    double clock;   /* when the stage is free for it */
    double work;    /* time in the micro-batches' loads, forwards and backwards */
    double busy;    /* time in every instruction but sends and receives (the boundary's too) */
    double p2p;     /* time in sends and receives (the transfers, not the waits) */
    double *start, *end; /* [t->n]: where each instruction ran in the replay */
} lane;


static double duration(const lane *l, int i) { return l->t->end[i] - l->t->start[i]; }

static const zl_instr *current(const lane *l) { return l->i < l->t->n ? &l->t->instrs[l->i] : NULL; }

static void finish(lane *l, double start, double dur, bool work)
{
    l->start[l->i] = start;
    l->end[l->i] = start + dur;
    l->clock = start + dur;
    if (work) l->work += dur;
    if (p2p(l->t->instrs[l->i].kind)) l->p2p += dur;
    else l->busy += dur;
    l->i++;
}

/* The instruction a p2p instruction meets on its peer stage, and that stage. */
static void counterpart(zl_instr_kind k, int s, zl_instr_kind *peer_kind, int *peer)
{
    switch (k) {
    case ZL_SEND_ACTIVATION: *peer_kind = ZL_RECV_ACTIVATION; *peer = s + 1; return;
    case ZL_RECV_ACTIVATION: *peer_kind = ZL_SEND_ACTIVATION; *peer = s - 1; return;
    case ZL_SEND_GRAD: *peer_kind = ZL_RECV_GRAD; *peer = s - 1; return;
    default: *peer_kind = ZL_SEND_GRAD; *peer = s + 1; return; /* ZL_RECV_GRAD */
    }
}

/* Are all stages in `group` (NULL: every stage) at an instruction of kind k? */
static bool all_at(const lane *lanes, int S, const bool *group, zl_instr_kind k)
{
    for (int s = 0; s < S; s++) {
        if (group && !group[s]) continue;
        const zl_instr *in = current(&lanes[s]);
        if (!in || in->kind != k) return false;
    }
    return true;
}

/* Run the group's instruction k together: from the latest arrival, each its own time. */
static void together(lane *lanes, int S, const bool *group)
{
    double start = 0;
    for (int s = 0; s < S; s++)
        if (!group || group[s]) start = fmax(start, lanes[s].clock);
    for (int s = 0; s < S; s++)
        if (!group || group[s]) finish(&lanes[s], start, duration(&lanes[s], lanes[s].i), false);
}

/* Advance stage s as far as it can go; true if it moved. */
static bool advance(lane *lanes, int S, int s, const bool *tie_group)
{
    lane *l = &lanes[s];
    bool moved = false;
    for (const zl_instr *in; (in = current(l));) {
        if (p2p(in->kind)) {
            zl_instr_kind want;
            int peer;
            counterpart(in->kind, s, &want, &peer);
            const zl_instr *other = peer >= 0 && peer < S ? current(&lanes[peer]) : NULL;
            if (!other || other->kind != want) return moved; /* wait for the peer */
            lane *p = &lanes[peer];
            double start = fmax(l->clock, p->clock);
            double dur = fmax(duration(l, l->i), duration(p, p->i));
            finish(l, start, dur, true);
            finish(p, start, dur, true);
        } else if (in->kind == ZL_REDUCE_TIED_GRADS && tie_group[s]) {
            if (!all_at(lanes, S, tie_group, ZL_REDUCE_TIED_GRADS)) return moved;
            together(lanes, S, tie_group);
        } else if (in->kind == ZL_OPTIMIZER_STEP) {
            if (!all_at(lanes, S, NULL, ZL_OPTIMIZER_STEP)) return moved;
            together(lanes, S, NULL);
        } else {
            bool work = in->kind == ZL_LOAD_MICRO_BATCH || in->kind == ZL_FORWARD_PASS ||
                        in->kind == ZL_BACKWARD_PASS;
            finish(l, l->clock, duration(l, l->i), work);
        }
        moved = true;
    }
    return moved;
}

/* One row per stage: the instructions where the replay ran them (Chrome's trace format). */
static zl_status write_trace(FILE *f, const lane *lanes, int S)
{
    fprintf(f, "{\"traceEvents\": [\n");
    for (int s = 0; s < S; s++) {
        fprintf(f, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": "
                   "{\"name\": \"stage %d\"}},\n", s, s);
        for (int i = 0; i < lanes[s].t->n; i++) {
            char name[64];
            zl_instr_format(&lanes[s].t->instrs[i], name, sizeof name);
            fprintf(f, "{\"name\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": 0, \"ts\": %.3f, "
                       "\"dur\": %.3f},\n", name, s, 1e6 * lanes[s].start[i],
                    1e6 * (lanes[s].end[i] - lanes[s].start[i]));
        }
    }
    fprintf(f, "{\"name\": \"pipeline\", \"ph\": \"M\", \"pid\": 0, \"args\": {}}\n]}\n");
    return ferror(f) ? zl_errorf(ZL_ERR_IO, "cannot write the pipeline's trace") : ZL_OK;
}

/* The step across the stages from their timings: res->step_seconds and bubble_fraction;
 * the trace when asked. */
static zl_status replay(const zl_plan_request *req, const zl__plan_timing *t, int S,
                        zl_plan_result *res)
{
    lane *lanes = calloc((size_t)S, sizeof *lanes);
    bool *tie_group = calloc((size_t)S, sizeof *tie_group);
    zl_status st = lanes && tie_group ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    for (int s = 0; s < S && st == ZL_OK; s++) {
        lanes[s] = (lane){.t = &t[s]};
        lanes[s].start = calloc((size_t)t[s].n + 1, sizeof(double));
        lanes[s].end = calloc((size_t)t[s].n + 1, sizeof(double));
        if (!lanes[s].start || !lanes[s].end) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    }
    if (st == ZL_OK) {
        /* GPT-2's tie: the embedding on the first stage, the head on the last. */
        tie_group[0] = tie_group[S - 1] = true;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int s = 0; s < S; s++) moved |= advance(lanes, S, s, tie_group);
        }
        for (int s = 0; s < S && st == ZL_OK; s++)
            if (lanes[s].i < t[s].n) {
                char name[64];
                zl_instr_format(&t[s].instrs[lanes[s].i], name, sizeof name);
                st = zl_errorf(ZL_ERR_INVALID, "plan: the stages' schedules do not pair up: stage "
                               "%d waits at %s (instruction %d of %d)", s, name, lanes[s].i, t[s].n);
            }
    }
    if (st == ZL_OK) {
        /* The pipelined part ends with the last backward on any stage; the bubble is the
         * stages' idle share of it. */
        double pipe_end = 0, step = 0, idle = 0;
        for (int s = 0; s < S; s++) {
            for (int i = 0; i < t[s].n; i++)
                if (t[s].instrs[i].kind == ZL_BACKWARD_PASS) pipe_end = fmax(pipe_end, lanes[s].end[i]);
            step = fmax(step, lanes[s].clock);
        }
        for (int s = 0; s < S; s++) idle += pipe_end > 0 ? 1.0 - lanes[s].work / pipe_end : 0;
        res->step_seconds = step;
        res->bubble_fraction = idle / S;
        /* the busiest stage: its own work and transfers; the rest of its step is waiting */
        int b = 0;
        for (int s = 1; s < S; s++)
            if (lanes[s].busy > lanes[b].busy) b = s;
        res->compute_seconds = lanes[b].busy;
        res->exposed_comm_seconds = lanes[b].p2p;
        res->exposed_copy_seconds = 0;
        if (req->trace) {
            st = write_trace(req->trace, lanes, S);
            for (int s = 0; s < S; s++) res->trace_spans += (size_t)t[s].n;
        }
    }
    for (int s = 0; lanes && s < S; s++) {
        free(lanes[s].start);
        free(lanes[s].end);
    }
    free(lanes);
    free(tie_group);
    return st;
}

/* A stage's timing for `micro_batches` from one measured with fewer: the instructions of
 * the engine's schedule for the whole step (GPipe when the plan asks for it, else
 * TrainSchedule, as zl__engine_pipe_setup chooses), each micro-batch instruction taking
 * the mean time its kind took (every micro-batch has the same shapes, so the same
 * kernels), the boundary's (ReduceTiedGrads, ReduceGrads, OptimizerStep) the time it took.
 * A plan of 1024 micro-batches then runs S of them per stage on the meta backend, not
 * 1024. */
static zl_status stretch(zl__plan_timing *t, zl_schedule_kind kind, int micro_batches, int S, int s)
{
    if (kind != ZL_SCHEDULE_GPIPE) kind = ZL_SCHEDULE_TRAIN;
    double sum[ZL_RECV_GRAD + 1] = {0};
    int count[ZL_RECV_GRAD + 1] = {0};
    for (int i = 0; i < t->n; i++) {
        sum[t->instrs[i].kind] += t->end[i] - t->start[i];
        count[t->instrs[i].kind]++;
    }
    int n = zl_schedule_make_stage(kind, micro_batches, S, s, NULL, 0);
    zl__plan_timing out = {0};
    out.instrs = malloc((size_t)n * sizeof *out.instrs);
    out.start = malloc((size_t)n * sizeof *out.start);
    out.end = malloc((size_t)n * sizeof *out.end);
    if (!out.instrs || !out.start || !out.end) {
        zl__plan_timing_free(&out);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory laying out %d micro-batches", micro_batches);
    }
    zl_schedule_make_stage(kind, micro_batches, S, s, out.instrs, n);
    double at = 0;
    for (int i = 0; i < n; i++) {
        zl_instr_kind k = out.instrs[i].kind;
        double d = count[k] ? sum[k] / count[k] : 0;
        out.start[i] = at;
        out.end[i] = at += d;
    }
    out.n = out.cap = n;
    zl__plan_timing_free(t);
    *t = out;
    return ZL_OK;
}

/* A stage's figures that the pipeline's result keeps (the stage results are large). */
typedef struct stage_figures {
    double comm, hardware_flops;
} stage_figures;

zl_status zl__plan_pipeline(const zl_plan_request *req, zl_plan_result *res)
{
    int S = req->pipe_stages;
    memset(res, 0, sizeof *res);
    if (S > ZL_PLAN_MAX_STAGES)
        return res->status = zl_errorf(ZL_ERR_INVALID, "plan: %d pipeline stages, more than the "
                                       "%d a plan lays out", S, ZL_PLAN_MAX_STAGES);
    bool clocked = req->cluster != NULL;
    zl_plan_result *one = malloc(sizeof *one);
    zl__plan_timing *t = calloc((size_t)S, sizeof *t);
    stage_figures *fig = calloc((size_t)S, sizeof *fig);
    size_t peaks[ZL_PLAN_MAX_STAGES] = {0};
    zl_status st = one && t && fig ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    zl_status worst_st = ZL_OK;
    int worst = -1;
    double seconds = 0;
    /* The cut, once: every stage's engine takes it instead of computing it again (the
     * balanced partition is quadratic in the layers, and a search plans many pipelines). */
    int bounds[ZL_PLAN_MAX_STAGES + 1];
    if (st == ZL_OK) {
        zl_device meta;
        zl_model m;
        const char *method = req->options.pipe_partition[0] ? req->options.pipe_partition : "parameters";
        if ((st = zl_device_init(&meta, ZL_DEVICE_ACCEL, "meta", "cut", 0)) == ZL_OK &&
            (st = zl_model_create(&m, &req->model, &meta)) == ZL_OK) {
            st = zl_pipe_partition_model(&m, method, S, bounds); /* the whole model's, as the engine cuts */
            zl_model_destroy(&m);
        }
    }
    /* A stage holds max(2, min(S - s, M)) micro-batches' activations: with M >= S, a run of
     * S micro-batches allocates what a run of M does, and its timing is stretched to M.
     * GPipe holds all M: it runs them all. */
    int M = req->options.gradient_accumulation_steps;
    int M_run = M < S || req->options.schedule == ZL_SCHEDULE_GPIPE ? M : S;
    for (int s = 0; s < S && st == ZL_OK; s++) {
        zl_plan_request r = *req;
        r.pipe_stage = s;
        r.options.gradient_accumulation_steps = M_run;
        r.options.pipe_bounds = bounds;
        r.trace = NULL; /* the pipeline's trace is the replay's */
        zl_status ss = zl__plan_stage(&r, one, clocked ? &t[s] : NULL);
        if (ss != ZL_OK && ss != ZL_ERR_OOM) {
            st = zl_error_wrap(ss, "pipeline stage %d of %d: ", s, S);
            break;
        }
        seconds += one->seconds;
        if (clocked && ss == ZL_OK && M_run < M &&
            (st = stretch(&t[s], req->options.schedule, M, S, s)) != ZL_OK)
            break;
        peaks[s] = zl_plan_device_ledger(one)->peak_nbytes;
        fig[s] = (stage_figures){one->comm_seconds, one->hardware_flops};
        /* The stage the figures show: the first that does not fit, else the largest. */
        bool take = worst < 0 || (ss == ZL_ERR_OOM && worst_st == ZL_OK) ||
                    (ss == worst_st && ss == ZL_OK && peaks[s] > peaks[worst]);
        if (take) {
            *res = *one;
            worst = s;
            worst_st = ss;
            if (ss == ZL_ERR_OOM) {
                char reason[sizeof res->reason];
                snprintf(reason, sizeof reason, "pipeline stage %d of %d: %.1900s", s, S, one->reason);
                snprintf(res->reason, sizeof res->reason, "%s", reason);
            }
        }
    }
    if (st == ZL_OK) {
        res->pipe_stages = S;
        res->pipe_worst_stage = worst;
        memcpy(res->stage_peak_nbytes, peaks, sizeof peaks);
        res->seconds = seconds;
        res->device_fits = res->host_fits = res->nvme_fits = worst_st == ZL_OK;
        if (worst_st == ZL_ERR_OOM) {
            const zl_ledger *d = zl_plan_device_ledger(res), *h = zl_plan_host_ledger(res);
            res->device_fits = !req->device_memory || d->budgeted_peak_nbytes <= req->device_memory;
            res->host_fits = !req->host_memory || h->peak_nbytes <= req->host_memory;
            res->nvme_fits = !req->nvme_capacity ||
                             zl_plan_nvme_ledger(res)->peak_nbytes <= req->nvme_capacity;
            st = zl_errorf(ZL_ERR_OOM, "%s", res->reason);
        }
    }
    if (st == ZL_OK && clocked) {
        /* The step across the stages (the replay sets the busiest stage's figures). */
        double hw = 0, comm = 0;
        for (int s = 0; s < S; s++) {
            hw += fig[s].hardware_flops * M / M_run; /* each micro-batch's kernels again */
            if (fig[s].comm > comm) comm = fig[s].comm;
        }
        if ((st = replay(req, t, S, res)) == ZL_OK) {
            res->comm_seconds = comm; /* a stage's collectives in M_run micro-batches */
            const zl_engine_options *o = &req->options;
            double tokens = (double)o->micro_batch_size * o->seq_len * o->gradient_accumulation_steps;
            zl_model m;
            zl_device meta;
            double fwd = 0;
            if (zl_device_init(&meta, ZL_DEVICE_ACCEL, "meta", "flops", 0) == ZL_OK &&
                zl_model_create(&m, &req->model, &meta) == ZL_OK) {
                fwd = zl_model_forward_flops(&m, o->micro_batch_size, o->seq_len);
                zl_model_destroy(&m);
            }
            /* per GPU: each stage runs 1/S of the model's FLOPs, on average, shared by its
             * tensor-parallel ranks */
            res->model_flops = 3.0 * fwd * o->gradient_accumulation_steps / S /
                               (req->tp_size > 1 ? req->tp_size : 1);
            res->hardware_flops = hw / S;
            if (res->step_seconds > 0) {
                res->tokens_per_second = tokens * req->world_size / res->step_seconds;
                res->mfu = res->model_flops /
                           (res->step_seconds * zl_device_peak_flops(req->cluster->device,
                                                                     o->precision.dtype));
            }
        }
    }
    for (int s = 0; t && s < S; s++) zl__plan_timing_free(&t[s]);
    free(t);
    free(fig);
    free(one);
    return res->status = st;
}
