/* Pipeline parallelism: the engine's half of DeepSpeed's PipelineEngine.
 *
 * The layer list is cut into stages (pipe/partition.h) and each rank of the pipeline
 * group holds one stage: its layers' parameters, gradients, optimizer state and
 * activations only (zl_model_set_stage). The step is DeepSpeed's TrainSchedule, or GPipe's
 * (engine/schedule.h), run by the same executor as one stage's: what this file adds are
 * the instructions that cross stages.
 *
 *   stage s                                   stage s + 1
 *   ForwardPass(b): layers, output kept        RecvActivation(b) -> act.pipe_in of slot b
 *   SendActivation(b): the output  ------->    ForwardPass(b): from act.pipe_in
 *   RecvGrad(b) -> pipe.grad        <-------   SendGrad(b): dL/d(act.pipe_in)
 *   BackwardPass(b): from pipe.grad            (its BackwardPass(b) produced it)
 *
 * Activations travel in the model's dtype, as the stored bits (exact: every value a layer
 * writes is already rounded to it), gradients too (backward rounds them as it writes
 * them). The activations' shape and dtype go once, before the first activation, and the
 * receiver checks them against its own (DeepSpeed sends its tensors' metadata once).
 *
 * The micro-batches are read before the step's first instruction, by every rank of the
 * grid, and the ranks agree on the outcome: a stage blocked in a receive cannot learn that
 * its neighbour's data failed, so nothing may fail once the instructions run, short of a
 * broken link (which the communicator's watchdog turns into an error). */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "engine/engine_internal.h"
#include "pipe/partition.h"

/* Message tags of the pipeline group (engine_ties.c uses the tie's). */
enum { TAG_ACTIVATION = 1, TAG_GRAD = 2, TAG_SHAPE = 3 };

int zl__engine_stage_of(const zl_engine *e, int l)
{
    for (int s = 0; s < e->num_stages; s++)
        if (l < e->bounds[s + 1]) return s;
    return e->num_stages - 1;
}

zl_status zl__engine_agree(zl_engine *e, zl_status st)
{
    if (e->opt.dp) st = zl_comm_agree(e->opt.dp, st);
    zl_comm *mp = zl__engine_mp(&e->opt); /* the other stages and tp ranks */
    if (mp) st = zl_comm_agree(mp, st);
    return st;
}

zl_status zl__engine_pipe_setup(zl_engine *e)
{
    zl_model *m = &e->model;
    e->num_stages = e->opt.pipe ? e->opt.pipe->size : 1;
    e->stage = e->opt.pipe ? e->opt.pipe->rank : 0;
    e->pipe_grad_buffer = -1;
    e->bounds = malloc((size_t)(e->num_stages + 1) * sizeof *e->bounds);
    if (!e->bounds) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    e->bounds[0] = 0;
    e->bounds[e->num_stages] = m->num_layers;
    if (!zl__engine_piped(e)) return ZL_OK;
    if (e->opt.zero_stage >= 2)
        return zl_errorf(ZL_ERR_CONFIG,
                         "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism (got "
                         "zero_optimization.stage %d with %d pipeline stages)\n  hint: use "
                         "zero_optimization.stage 0 or 1, or run without pipeline stages",
                         e->opt.zero_stage, e->num_stages);
    if (e->opt.pipe_bounds) { /* the caller's cut: checked, not recomputed */
        memcpy(e->bounds, e->opt.pipe_bounds, (size_t)(e->num_stages + 1) * sizeof *e->bounds);
        bool cut = e->bounds[0] == 0 && e->bounds[e->num_stages] == m->num_layers;
        for (int s = 0; s < e->num_stages && cut; s++) cut = e->bounds[s] < e->bounds[s + 1];
        if (!cut)
            return zl_errorf(ZL_ERR_INVALID, "options.pipe_bounds is not a cut of %d layers into "
                             "%d stages", m->num_layers, e->num_stages);
    } else {
        const char *method = e->opt.pipe_partition[0] ? e->opt.pipe_partition : "parameters";
        zl_status st = zl_pipe_partition_model(m, method, e->num_stages, e->bounds);
        if (st != ZL_OK) return st;
    }
    e->opt.pipe_bounds = NULL; /* borrowed for create only */
    e->first_layer = e->bounds[e->stage];
    e->last_layer = e->bounds[e->stage + 1];
    return ZL_OK;
}

zl_status zl__engine_pipe_take_stage(zl_engine *e)
{
    if (!zl__engine_piped(e)) return ZL_OK;
    zl_model_set_stage(&e->model, e->first_layer, e->last_layer);
    e->opt.overlap_comm = false; /* DeepSpeed's pipeline engine turns it off */
    /* Across stages: GPipe when asked (for teaching: every forward, then every backward,
     * a slot per micro-batch), else DeepSpeed's TrainSchedule (1F1B), which the
     * data-parallel default means here. Both send a stage's output in the step after its
     * forward, before any other pass (check_schedule's invariants hold them to it): what
     * activation checkpointing needs (see ZL_SEND_ACTIVATION below), so GPipe needs no
     * refusal with it. */
    if (e->opt.schedule != ZL_SCHEDULE_GPIPE) e->opt.schedule = ZL_SCHEDULE_TRAIN;
    return ZL_OK;
}

zl_status zl__engine_pipe_alloc(zl_engine *e)
{
    if (!zl__engine_piped(e)) return ZL_OK;
    zl_model *m = &e->model;
    int64_t shape[2] = {m->stream_rows, m->cfg.channels}; /* the stream's rows here */
    zl_status st;
    if (e->stage < e->num_stages - 1 &&
        (st = zl_tensor_alloc(&e->pipe_grad, e->device, "pipe.grad", ZL_F32, 2, shape)) != ZL_OK)
        return st;
    if (m->dtype != ZL_F32 &&
        (st = zl_tensor_alloc(&e->pipe_wire, e->device, "pipe.buffer", m->dtype, 2, shape)) != ZL_OK)
        return st;
    size_t n = (size_t)e->opt.gradient_accumulation_steps * 2 * (size_t)m->B * (size_t)m->T;
    e->pipe_batches = malloc(n * sizeof *e->pipe_batches);
    if (!e->pipe_batches)
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory for %d micro-batches",
                         e->opt.gradient_accumulation_steps);
    return ZL_OK;
}

void zl__engine_pipe_free(zl_engine *e)
{
    zl_tensor_free(&e->pipe_wire);
    zl_tensor_free(&e->pipe_grad);
    free(e->pipe_batches);
    free(e->bounds);
    e->pipe_batches = NULL;
    e->bounds = NULL;
}

static size_t micro_batch_tokens(const zl_engine *e) { return (size_t)e->model.B * e->model.T; }

zl_status zl__engine_pipe_read_batches(zl_engine *e, zl_batch_source next, void *ctx)
{
    size_t ntok = micro_batch_tokens(e);
    zl_status st = ZL_OK;
    /* Every stage reads them (the middle ones only to keep their loaders in step, as the
     * data's position is the run's), and checks them against the vocabulary. */
    for (int i = 0; i < e->opt.gradient_accumulation_steps && st == ZL_OK; i++) {
        int32_t *b = e->pipe_batches + (size_t)i * 2 * ntok;
        if ((st = next(ctx, b, b + ntok)) == ZL_OK) st = zl_model_check_batch(&e->model, b, NULL);
    }
    e->failed_here = st != ZL_OK;
    e->pipe_loaded = 0;
    return zl__engine_agree(e, st);
}

zl_status zl__engine_pipe_load(zl_engine *e, int buffer)
{
    ZL_ASSERT(e->pipe_loaded < e->opt.gradient_accumulation_steps);
    zl_model_use_slot(&e->model, buffer);
    const int32_t *b = e->pipe_batches + (size_t)e->pipe_loaded++ * 2 * micro_batch_tokens(e);
    return zl_model_set_batch(&e->model, e->host, b);
}

/* The activations' shape, once per engine, before the first activation: a stage that runs
 * with another micro-batch, sequence or width than its neighbour (a config that differs
 * between ranks) is named instead of receiving garbage. */
static zl_status exchange_shape(zl_engine *e, bool sender)
{
    const zl_model *m = &e->model;
    if (zl_device_backend(e->device)->meta) return ZL_OK; /* shapes only: nothing travels */
    double mine[4] = {m->stream_rows, m->T, m->cfg.channels, (double)m->dtype}, theirs[4];
    if (sender) return zl_comm_send(e->opt.pipe, mine, 4, ZL_F64, e->stage + 1, TAG_SHAPE);
    zl_status st = zl_comm_recv(e->opt.pipe, theirs, 4, ZL_F64, e->stage - 1, TAG_SHAPE);
    if (st != ZL_OK) return st;
    if (memcmp(mine, theirs, sizeof mine))
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline stage %d sends activations of %g rows of %g tokens x %g "
                         "channels in %s, but stage %d expects %d rows of %d x %d in %s\n  hint: "
                         "every rank must run with the same config, model and --seq-len",
                         e->stage - 1, theirs[0], theirs[1], theirs[2],
                         zl_dtype_name((zl_dtype)theirs[3]), e->stage, m->stream_rows, m->T,
                         m->cfg.channels, zl_dtype_name(m->dtype));
    return ZL_OK;
}

zl_status zl__engine_pipe_p2p(zl_engine *e, const zl_instr *in)
{
    zl_model *m = &e->model;
    zl_comm *pipe = e->opt.pipe;
    const zl_ops *cpu = zl_device_backend(e->device); /* the CPU's conversions: not simulated */
    size_t n = zl_model_stream_numel(m); /* with sequence parallelism: this rank's rows */
    zl_dtype dt = m->dtype;
    zl_status st;
    if (!zl__engine_piped(e)) {
        char name[64];
        zl_instr_format(in, name, sizeof name);
        return zl_errorf(ZL_ERR_INVALID, "%s in the schedule of an engine without pipeline "
                         "stages: there is no stage to exchange with", name);
    }
    zl_model_use_slot(m, in->buffer);
    switch (in->kind) {
    case ZL_SEND_ACTIVATION:
        if (!e->pipe_shapes_sent) {
            if ((st = exchange_shape(e, true)) != ZL_OK) return st;
            e->pipe_shapes_sent = true;
        }
        /* With activation checkpointing the output lives in the shared segment area until
         * the next pass: the schedule sends it first (TrainSchedule and GPipe do,
         * tests/unit/check_schedule.c). */
        return zl_comm_send(pipe, zl_model_stage_output(m), n, dt, e->stage + 1, TAG_ACTIVATION);
    case ZL_RECV_ACTIVATION:
        if (!e->pipe_shapes_checked) {
            if ((st = exchange_shape(e, false)) != ZL_OK) return st;
            e->pipe_shapes_checked = true;
        }
        return zl_comm_recv(pipe, zl_model_slot(m)->pipe_in.data, n, dt, e->stage - 1, TAG_ACTIVATION);
    case ZL_SEND_GRAD:
        ZL_ASSERT(e->pipe_grad_buffer == in->buffer && "SendGrad follows its BackwardPass");
        e->pipe_grad_buffer = -1;
        if (dt == ZL_F32)
            return zl_comm_send(pipe, e->pipe_grad_out, n, dt, e->stage - 1, TAG_GRAD);
        cpu->cast(cpu, e->pipe_wire.data, dt, e->pipe_grad_out, ZL_F32, n);
        return zl_comm_send(pipe, e->pipe_wire.data, n, dt, e->stage - 1, TAG_GRAD);
    case ZL_RECV_GRAD:
        if (dt == ZL_F32) return zl_comm_recv(pipe, e->pipe_grad.data, n, dt, e->stage + 1, TAG_GRAD);
        if ((st = zl_comm_recv(pipe, e->pipe_wire.data, n, dt, e->stage + 1, TAG_GRAD)) != ZL_OK)
            return st;
        cpu->cast(cpu, e->pipe_grad.data, ZL_F32, e->pipe_wire.data, dt, n);
        return ZL_OK;
    default: break;
    }
    ZL_ASSERT(!"not a pipeline send or receive");
    return ZL_ERR_INVALID;
}

zl_status zl__engine_pipe_loss(zl_engine *e, double *loss)
{
    if (!zl__engine_piped(e)) return ZL_OK;
    /* DeepSpeed broadcasts the last stage's loss to the others. It is the step's report,
     * not its work: untimed on a simulated card. */
    zl_sim *clock = zl_comm_set_sim(e->opt.pipe, NULL);
    zl_status st = zl_comm_broadcast(e->opt.pipe, loss, 1, ZL_F64, e->num_stages - 1);
    zl_comm_set_sim(e->opt.pipe, clock);
    return st;
}

/* The whole flat vector from the stages' slices: each stage's is one contiguous range of
 * it (its layers' parameters are consecutive in the model's order), gathered over its
 * data-parallel group first, then broadcast by its stage to the others. */
zl_status zl__engine_pipe_gather_params(zl_engine *e, float *out)
{
    const zl_model *m = &e->model;
    double mine[2] = {(double)m->params[0].model_offset, (double)m->params_numel};
    double *all = malloc((size_t)e->num_stages * sizeof mine);
    zl_status st = zl__engine_agree(e, all ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "out of host memory"));
    if (st == ZL_OK) st = zl_comm_allgather(e->opt.pipe, all, mine, 2, ZL_F64);
    if (st == ZL_OK) st = e->zero.strategy->gather_all(&e->zero, out + m->params[0].model_offset);
    for (int s = 0; s < e->num_stages && st == ZL_OK; s++)
        st = zl_comm_broadcast(e->opt.pipe, out + (size_t)all[2 * s], (size_t)all[2 * s + 1], ZL_F32, s);
    free(all);
    return st;
}
