/* Schedules as data: see schedule.h. */
#include "engine/schedule.h"

#include <stdbool.h>

#include "base/log.h"

const char *zl_instr_name(zl_instr_kind kind)
{
    switch (kind) {
    case ZL_LOAD_MICRO_BATCH: return "LoadMicroBatch";
    case ZL_FORWARD_PASS: return "ForwardPass";
    case ZL_BACKWARD_PASS: return "BackwardPass";
    case ZL_REDUCE_TIED_GRADS: return "ReduceTiedGrads";
    case ZL_REDUCE_GRADS: return "ReduceGrads";
    case ZL_OPTIMIZER_STEP: return "OptimizerStep";
    case ZL_SEND_ACTIVATION: return "SendActivation";
    case ZL_RECV_ACTIVATION: return "RecvActivation";
    case ZL_SEND_GRAD: return "SendGrad";
    case ZL_RECV_GRAD: return "RecvGrad";
    }
    return "?";
}

/* The stream being written: instructions go to out while there is room and are counted
 * always (so a call with cap 0 sizes the array); `step` is the step they belong to. */
typedef struct emitter {
    zl_instr *out;
    int cap, n, step;
} emitter;

static void emit(emitter *em, zl_instr_kind kind, int buffer)
{
    if (em->n < em->cap) em->out[em->n] = (zl_instr){.kind = kind, .buffer = buffer, .step = em->step};
    em->n++;
}

/* The end of every schedule: the tie, the data-parallel reduction, the update. */
static void emit_boundary(emitter *em)
{
    emit(em, ZL_REDUCE_TIED_GRADS, -1);
    emit(em, ZL_REDUCE_GRADS, -1);
    emit(em, ZL_OPTIMIZER_STEP, -1);
}

int zl_schedule_data_parallel(int micro_batches, zl_instr *out, int cap)
{
    ZL_ASSERT(micro_batches >= 1);
    emitter em = {out, cap, 0, 0};
    for (int mb = 0; mb < micro_batches; mb++) {
        em.step = mb;
        emit(&em, ZL_LOAD_MICRO_BATCH, 0);
        emit(&em, ZL_FORWARD_PASS, 0);
        emit(&em, ZL_BACKWARD_PASS, 0);
    }
    emit_boundary(&em);
    return em.n;
}

int zl_schedule_gpipe(int micro_batches, zl_instr *out, int cap)
{
    return zl_schedule_gpipe_stage(micro_batches, 1, 0, out, cap);
}

/* GPipe's timetable. Forward phase: stage s forwards micro-batch m at step m + s (the
 * activation moves on one stage per step). Backward phase, from step M + S - 1 (the step
 * after the last stage's last forward): stage s backwards m at (M + S - 1) + m + (S - 1 - s),
 * the last stage first, the gradient moving back one stage per step, and micro-batches in
 * the forward's order (the one-stage GPipe's accumulation order, so one stage gives the
 * data-parallel gradients bit for bit). The micro-batch of a step, or -1. */
static int gpipe_forward_mb(int step, int stage, int micro_batches)
{
    int m = step - stage;
    return m >= 0 && m < micro_batches ? m : -1;
}

static int gpipe_backward_mb(int step, int stages, int stage, int micro_batches)
{
    int m = step - (micro_batches + stages - 1) - (stages - 1 - stage);
    return m >= 0 && m < micro_batches ? m : -1;
}

int zl_schedule_gpipe_stage(int micro_batches, int stages, int stage_id, zl_instr *out, int cap)
{
    ZL_ASSERT(micro_batches >= 1 && stages >= 1 && stage_id >= 0 && stage_id < stages);
    bool first = stage_id == 0, last = stage_id == stages - 1, even = stage_id % 2 == 0;
    int nsteps = zl_schedule_steps(ZL_SCHEDULE_GPIPE, micro_batches, stages);
    emitter em = {out, cap, 0, 0};
    for (int t = 0; t < nsteps; t++) {
        em.step = t;
        /* This step's passes, and the ones of the step before, whose results this step
         * passes on (micro-batch m lives in buffer m). A stage's two phases never share a
         * step, nor do its links' (the last forward's send, M + s, comes before the first
         * gradient arrives, M + 2S - 2 - s, on every stage but the last, which sends no
         * activation). */
        int fwd = gpipe_forward_mb(t, stage_id, micro_batches);
        int sent = gpipe_forward_mb(t - 1, stage_id, micro_batches);
        int bwd = gpipe_backward_mb(t, stages, stage_id, micro_batches);
        int done = gpipe_backward_mb(t - 1, stages, stage_id, micro_batches);
        bool send_act = !last && sent >= 0, recv_act = !first && fwd >= 0;
        bool recv_grad = !last && bwd >= 0, send_grad = !first && done >= 0;
        /* Blocking pairs, ordered by parity as InferenceSchedule does: the link between s
         * and s + 1 goes first when s is even, second when s is odd, on both its ends, so
         * every link completes in one of two rounds instead of the stages waiting on one
         * another down the chain. Forward: the link to s + 1 carries the send, the one to
         * s - 1 the receive, so even stages send first. Backward: the link to s + 1
         * carries the gradient's receive, so even stages receive first. */
        if (even) {
            if (send_act) emit(&em, ZL_SEND_ACTIVATION, sent);
            if (recv_act) emit(&em, ZL_RECV_ACTIVATION, fwd);
            if (recv_grad) emit(&em, ZL_RECV_GRAD, bwd);
            if (send_grad) emit(&em, ZL_SEND_GRAD, done);
        } else {
            if (recv_act) emit(&em, ZL_RECV_ACTIVATION, fwd);
            if (send_act) emit(&em, ZL_SEND_ACTIVATION, sent);
            if (send_grad) emit(&em, ZL_SEND_GRAD, done);
            if (recv_grad) emit(&em, ZL_RECV_GRAD, bwd);
        }
        /* The first and the last stage load the micro-batch right before its forward (the
         * last one for its labels). */
        if ((first || last) && fwd >= 0) emit(&em, ZL_LOAD_MICRO_BATCH, fwd);
        if (fwd >= 0) emit(&em, ZL_FORWARD_PASS, fwd);
        if (bwd >= 0) emit(&em, ZL_BACKWARD_PASS, bwd);
        if (t == nsteps - 1) emit_boundary(&em);
    }
    return em.n;
}

/* 1F1B's timetable. Stage s forwards micro-batch m at step 2m + s: the activation moves on
 * one stage per step. Its backward of m is at step 2m + 2S - 1 - s: the last stage
 * backwards right after its forward (2m + S is the step after 2m + S - 1), and the
 * gradient moves back one stage per step. The two never collide, since (step - s) is even
 * for forwards and odd for backwards. Inverted: the micro-batch a stage forwards or
 * backwards at `step`, or -1 where that step is of the other kind or outside
 * [0, micro_batches) (the fill and drain of the pipeline). */
static int train_forward_mb(int step, int stage, int micro_batches)
{
    int d = step - stage;
    if (d < 0 || d % 2 != 0) return -1;
    return d / 2 < micro_batches ? d / 2 : -1;
}

static int train_backward_mb(int step, int stages, int stage, int micro_batches)
{
    int d = step - (2 * stages - 1 - stage);
    if (d < 0 || d % 2 != 0) return -1;
    return d / 2 < micro_batches ? d / 2 : -1;
}

int zl_schedule_train(int micro_batches, int stages, int stage_id, zl_instr *out, int cap)
{
    ZL_ASSERT(micro_batches >= 1 && stages >= 1 && stage_id >= 0 && stage_id < stages);
    int nbuf = zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, micro_batches, stages, stage_id);
    bool first = stage_id == 0, last = stage_id == stages - 1;
    int nsteps = zl_schedule_steps(ZL_SCHEDULE_TRAIN, micro_batches, stages);
    emitter em = {out, cap, 0, 0};
    for (int t = 0; t < nsteps; t++) {
        em.step = t;
        /* A step is a forward step or a backward step of this stage (by parity), and the
         * previous step was of the other kind: its micro-batch is the one whose result
         * this step passes on. Either may be -1 (nothing to do) in the fill or the drain. */
        bool forward = (t - stage_id) % 2 == 0;
        if (forward) {
            int fwd = train_forward_mb(t, stage_id, micro_batches);
            int done = train_backward_mb(t - 1, stages, stage_id, micro_batches);
            /* The previous stage backwards `done` in this very step: its gradient first, so
             * that the previous stage, which sends before it receives, is not blocked. */
            if (!first && done >= 0) emit(&em, ZL_SEND_GRAD, done % nbuf);
            if (!first && fwd >= 0) emit(&em, ZL_RECV_ACTIVATION, fwd % nbuf);
            if ((first || last) && fwd >= 0) emit(&em, ZL_LOAD_MICRO_BATCH, fwd % nbuf);
            if (fwd >= 0) emit(&em, ZL_FORWARD_PASS, fwd % nbuf);
        } else {
            int bwd = train_backward_mb(t, stages, stage_id, micro_batches);
            int sent = train_forward_mb(t - 1, stage_id, micro_batches);
            /* The next stage is in a forward step: it sends a gradient, then receives. */
            if (!last && bwd >= 0) emit(&em, ZL_RECV_GRAD, bwd % nbuf);
            if (!last && sent >= 0) emit(&em, ZL_SEND_ACTIVATION, sent % nbuf);
            if (bwd >= 0) emit(&em, ZL_BACKWARD_PASS, bwd % nbuf);
        }
        if (t == nsteps - 1) emit_boundary(&em);
    }
    return em.n;
}

int zl_schedule_inference(int micro_batches, int stages, int stage_id, zl_instr *out, int cap)
{
    ZL_ASSERT(micro_batches >= 1 && stages >= 1 && stage_id >= 0 && stage_id < stages);
    bool first = stage_id == 0, last = stage_id == stages - 1;
    int nsteps = zl_schedule_steps(ZL_SCHEDULE_INFERENCE, micro_batches, stages);
    emitter em = {out, cap, 0, 0};
    for (int t = 0; t < nsteps; t++) {
        em.step = t;
        /* This step forwards micro-batch `fwd` and passes on `prev`, forwarded in the step
         * before; two buffers alternate between them. */
        int fwd = t - stage_id, prev = fwd - 1;
        bool has_fwd = fwd >= 0 && fwd < micro_batches;
        bool has_prev = prev >= 0 && prev < micro_batches;
        bool send = !last && has_prev, recv = !first && has_fwd;
        if ((first || last) && has_fwd) emit(&em, ZL_LOAD_MICRO_BATCH, fwd % 2);
        /* Blocking pairs: stage s sends while s + 1 receives. Even stages send first and
         * odd stages receive first, so every pair of neighbours has one of each order. */
        if (stage_id % 2 == 0) {
            if (send) emit(&em, ZL_SEND_ACTIVATION, prev % 2);
            if (recv) emit(&em, ZL_RECV_ACTIVATION, fwd % 2);
        } else {
            if (recv) emit(&em, ZL_RECV_ACTIVATION, fwd % 2);
            if (send) emit(&em, ZL_SEND_ACTIVATION, prev % 2);
        }
        if (has_fwd) emit(&em, ZL_FORWARD_PASS, fwd % 2);
    }
    return em.n;
}

int zl_schedule_make_stage(zl_schedule_kind kind, int micro_batches, int stages, int stage_id,
                           zl_instr *out, int cap)
{
    switch (kind) {
    case ZL_SCHEDULE_TRAIN: return zl_schedule_train(micro_batches, stages, stage_id, out, cap);
    case ZL_SCHEDULE_INFERENCE:
        return zl_schedule_inference(micro_batches, stages, stage_id, out, cap);
    case ZL_SCHEDULE_GPIPE:
        return zl_schedule_gpipe_stage(micro_batches, stages, stage_id, out, cap);
    case ZL_SCHEDULE_DATA_PARALLEL: break;
    }
    ZL_ASSERT(stages == 1 && stage_id == 0);
    return zl_schedule_data_parallel(micro_batches, out, cap);
}

int zl_schedule_stage_buffers(zl_schedule_kind kind, int micro_batches, int stages, int stage_id)
{
    switch (kind) {
    case ZL_SCHEDULE_TRAIN: {
        /* Stage s holds a micro-batch from its forward (2m + s) to its backward
         * (2m + 2S - 1 - s): S - s micro-batches at most, fewer if the batch has fewer. */
        int in_flight = stages - stage_id < micro_batches ? stages - stage_id : micro_batches;
        return in_flight > 2 ? in_flight : 2;
    }
    case ZL_SCHEDULE_INFERENCE: return 2;
    case ZL_SCHEDULE_GPIPE: return micro_batches;
    case ZL_SCHEDULE_DATA_PARALLEL: break;
    }
    return 1;
}

int zl_schedule_steps(zl_schedule_kind kind, int micro_batches, int stages)
{
    switch (kind) {
    case ZL_SCHEDULE_TRAIN: return 2 * (micro_batches + stages - 1);
    case ZL_SCHEDULE_INFERENCE: return micro_batches + stages - 1;
    case ZL_SCHEDULE_GPIPE: return 2 * (micro_batches + stages - 1);
    case ZL_SCHEDULE_DATA_PARALLEL: break;
    }
    return micro_batches;
}

int zl_schedule_make(zl_schedule_kind kind, int micro_batches, zl_instr *out, int cap)
{
    return zl_schedule_make_stage(kind, micro_batches, 1, 0, out, cap);
}

int zl_schedule_buffers(zl_schedule_kind kind, int micro_batches)
{
    return zl_schedule_stage_buffers(kind, micro_batches, 1, 0);
}

void zl_instr_format(const zl_instr *in, char *buf, size_t len)
{
    if (in->buffer >= 0)
        snprintf(buf, len, "%s(buffer_id=%d)", zl_instr_name(in->kind), in->buffer);
    else
        snprintf(buf, len, "%s()", zl_instr_name(in->kind));
}
