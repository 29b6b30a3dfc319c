/* One optimizer step as data: the data-parallel schedule's instruction stream, and the
 * executor (zl_engine_train_batch) against DeepSpeed's forward/backward/step API, bit for
 * bit; DeepSpeed's pipeline schedules (TrainSchedule, InferenceSchedule) against the
 * reference's vectors, against a literal transcription of DeepSpeed's step logic, and
 * against the invariants that make them correct. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* the parameters, bit for bit */
#include "engine/schedule.h"
#include "model/gpt_config.h"
#include "plan/plan.h"

/* The stream of one step at gradient accumulation 4, as DeepSpeed prints instructions. */
START_TEST(test_schedule_data_parallel_stream)
{
    zl_instr prog[32];
    int n = zl_schedule_data_parallel(4, prog, 32);
    ck_assert_int_eq(n, 15);
    ck_assert_int_eq(zl_schedule_data_parallel(4, NULL, 0), 15); /* sizing call */
    char text[1024] = "", one[64];
    for (int i = 0; i < n; i++) {
        zl_instr_format(&prog[i], one, sizeof one);
        strcat(text, one);
        strcat(text, i + 1 < n ? " " : "");
    }
    const char *mb = "LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0) BackwardPass(buffer_id=0) ";
    char want[1024] = "";
    for (int i = 0; i < 4; i++) strcat(want, mb);
    strcat(want, "ReduceTiedGrads() ReduceGrads() OptimizerStep()");
    printf("gradient_accumulation_steps 4: %s\n", text);
    ck_assert_str_eq(text, want);
}
END_TEST

/* A data source: micro-batch k of a fixed random sequence. */
typedef struct source {
    int k, ntok, V;
} source;

static zl_status next_batch(void *ctx, int32_t *in, int32_t *tg)
{
    source *s = ctx;
    for (int i = 0; i < s->ntok; i++) {
        in[i] = (int32_t)(zl_rng_bits(77, 2 * (uint64_t)s->k, (uint64_t)i) % (uint64_t)s->V);
        tg[i] = (int32_t)(zl_rng_bits(77, 2 * (uint64_t)s->k + 1, (uint64_t)i) % (uint64_t)s->V);
    }
    s->k++;
    return ZL_OK;
}

typedef struct seen {
    int n;
    zl_instr ins[64];
} seen;

static void observe(void *ctx, const zl_instr *in)
{
    seen *s = ctx;
    if (!in) return; /* the end of the step */
    if (s->n < 64) s->ins[s->n] = *in;
    s->n++;
}

/* The lab model on two cpu devices, one engine on each (options oa and ob). */
static void two_lab_engines(zl_gpt_config *cfg, zl_device *d1, zl_device *d2,
                            const zl_engine_options *oa, const zl_engine_options *ob, zl_engine **a,
                            zl_engine **b)
{
    ck_assert_int_eq(zl_gpt_config_preset("lab", cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(d1, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(d2, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
    ck_assert_int_eq(zl_engine_create(a, cfg, oa, d1), ZL_OK);
    ck_assert_int_eq(zl_engine_create(b, cfg, ob, d2), ZL_OK);
}

/* train_batch runs the same arithmetic as forward/backward/step: the same weights, loss,
 * norm and counters after three steps at gradient accumulation 4, bit for bit; the executor
 * ran exactly the schedule. */
START_TEST(test_train_batch_equals_forward_backward_step)
{
    zl_gpt_config cfg;
    zl_device d1, d2;
    zl_engine_options o = zl_test_engine_options(2, 4, 16);
    o.gradient_clipping = 0.5;
    zl_engine *a, *b;
    two_lab_engines(&cfg, &d1, &d2, &o, &o, &a, &b);
    seen s = {0};
    zl_engine_set_instr_observer(b, observe, &s);
    source sa = {0, 32, cfg.vocab_size}, sb = sa;
    int32_t in[32], tg[32];
    for (int step = 0; step < 3; step++) {
        double sum = 0;
        for (int micro = 0; micro < 4; micro++) {
            float l;
            next_batch(&sa, in, tg);
            ck_assert_int_eq(zl_engine_forward(a, in, tg, &l), ZL_OK);
            ck_assert_int_eq(zl_engine_backward(a), ZL_OK);
            ck_assert_int_eq(zl_engine_step(a), ZL_OK);
            sum += l;
        }
        float loss;
        ck_assert_int_eq(zl_engine_train_batch(b, next_batch, &sb, &loss), ZL_OK);
        ck_assert_float_eq(loss, (float)(sum / 4));
        ck_assert(a->grad_norm == b->grad_norm);
    }
    ck_assert_int_eq(memcmp(a->params.data, b->params.data, zl_tensor_nbytes(&a->params)), 0);
    ck_assert_int_eq(a->micro_steps, b->micro_steps);
    ck_assert_int_eq(a->global_steps, b->global_steps);
    ck_assert_int_eq(a->global_samples, b->global_samples);
    ck_assert_int_eq(s.n, 3 * 15);
    zl_instr prog[15];
    zl_schedule_data_parallel(4, prog, 15);
    for (int i = 0; i < s.n; i++) {
        ck_assert_int_eq(s.ins[i].kind, prog[i % 15].kind);
        ck_assert_int_eq(s.ins[i].buffer, prog[i % 15].buffer);
    }
    /* Inside an accumulation, train_batch refuses rather than mix two batches. */
    next_batch(&sa, in, tg);
    ck_assert_int_eq(zl_engine_forward(a, in, tg, NULL), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(a), ZL_OK);
    ck_assert_int_eq(zl_engine_step(a), ZL_OK);
    ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, NULL), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "inside an accumulation of 4"));
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}
END_TEST

/* GPipe's order on one stage: every forward, each micro-batch into its own buffer, then
 * every backward. */
START_TEST(test_schedule_gpipe_stream)
{
    zl_instr prog[32];
    int n = zl_schedule_gpipe(3, prog, 32);
    ck_assert_int_eq(n, 12);
    ck_assert_int_eq(zl_schedule_buffers(ZL_SCHEDULE_GPIPE, 3), 3);
    ck_assert_int_eq(zl_schedule_buffers(ZL_SCHEDULE_DATA_PARALLEL, 3), 1);
    char text[1024] = "", one[64];
    for (int i = 0; i < n; i++) {
        zl_instr_format(&prog[i], one, sizeof one);
        strcat(text, one);
        strcat(text, i + 1 < n ? " " : "");
    }
    ck_assert_str_eq(text, "LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0) "
                           "LoadMicroBatch(buffer_id=1) ForwardPass(buffer_id=1) "
                           "LoadMicroBatch(buffer_id=2) ForwardPass(buffer_id=2) "
                           "BackwardPass(buffer_id=0) BackwardPass(buffer_id=1) "
                           "BackwardPass(buffer_id=2) ReduceTiedGrads() ReduceGrads() OptimizerStep()");
}
END_TEST

/* Micro-batches in flight keep their own activations: with every forward before any
 * backward (GPipe, 4 slots), the weights after three steps are those of the data-parallel
 * schedule (one slot) bit for bit, in f32 and in bf16 (whose layers share f32 work
 * buffers between the slots), and the ledger holds 4 slots of activations. A slot that
 * leaked into another (a stale input, the last forward's statistics) would change them. */
static void gpipe_matches_data_parallel(zl_dtype dtype)
{
    zl_gpt_config cfg;
    zl_device d1, d2;
    zl_engine_options o = zl_test_engine_options(2, 4, 16), og;
    o.precision.dtype = dtype;
    og = o;
    og.schedule = ZL_SCHEDULE_GPIPE;
    zl_engine *a, *b;
    two_lab_engines(&cfg, &d1, &d2, &o, &og, &a, &b);
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "act.h.0"), 4 * zl_ledger_current(&d1.ledger, "act.h.0"));
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "input"), 4 * zl_ledger_current(&d1.ledger, "input"));
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "act.grad"), zl_ledger_current(&d1.ledger, "act.grad"));
    source sa = {0, 32, cfg.vocab_size}, sb = sa;
    seen s = {0};
    zl_engine_set_instr_observer(b, observe, &s);
    for (int step = 0; step < 3; step++) {
        float la, lb;
        ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, &la), ZL_OK);
        ck_assert_int_eq(zl_engine_train_batch(b, next_batch, &sb, &lb), ZL_OK);
        ck_assert_float_eq(la, lb);
        ck_assert(a->grad_norm == b->grad_norm);
    }
    ck_assert_int_eq(s.ins[4].kind, ZL_LOAD_MICRO_BATCH); /* the GPipe order ran */
    ck_assert_int_eq(s.ins[4].buffer, 2);
    ck_assert_int_eq(memcmp(a->params.data, b->params.data, zl_tensor_nbytes(&a->params)), 0);
    if (dtype != ZL_F32)
        ck_assert_int_eq(memcmp(a->master.data, b->master.data, zl_tensor_nbytes(&a->master)), 0);
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}

START_TEST(test_gpipe_slots_match_data_parallel_f32) { gpipe_matches_data_parallel(ZL_F32); }
END_TEST
START_TEST(test_gpipe_slots_match_data_parallel_bf16) { gpipe_matches_data_parallel(ZL_BF16); }
END_TEST

/* ---- Pipeline schedules ---------------------------------------------------------------- */

/* The reference's short names: [Load(0),Fwd(0)] [SendAct(0)] ... */
static const char *short_name(zl_instr_kind k)
{
    switch (k) {
    case ZL_LOAD_MICRO_BATCH: return "Load";
    case ZL_FORWARD_PASS: return "Fwd";
    case ZL_BACKWARD_PASS: return "Bwd";
    case ZL_REDUCE_TIED_GRADS: return "ReduceTied";
    case ZL_REDUCE_GRADS: return "ReduceGrads";
    case ZL_OPTIMIZER_STEP: return "OptStep";
    case ZL_SEND_ACTIVATION: return "SendAct";
    case ZL_RECV_ACTIVATION: return "RecvAct";
    case ZL_SEND_GRAD: return "SendGrad";
    case ZL_RECV_GRAD: return "RecvGrad";
    }
    return "?";
}

#define MAX_PROG 256

/* One stage's schedule, generated and checked for its step structure: the steps are in
 * order and inside [0, steps). */
static int stage_prog(zl_schedule_kind kind, int M, int S, int stage, zl_instr *prog)
{
    int n = zl_schedule_make_stage(kind, M, S, stage, NULL, 0);
    ck_assert_int_le(n, MAX_PROG);
    ck_assert_int_eq(zl_schedule_make_stage(kind, M, S, stage, prog, MAX_PROG), n);
    int steps = zl_schedule_steps(kind, M, S);
    for (int i = 0; i < n; i++) {
        ck_assert_int_ge(prog[i].step, i ? prog[i - 1].step : 0);
        ck_assert_int_lt(prog[i].step, steps);
    }
    return n;
}

/* The schedule as the reference writes it: one bracketed list per step, empty steps too. */
static void render(const zl_instr *prog, int n, int steps, char *text, size_t len)
{
    size_t at = 0;
    text[0] = 0;
    for (int t = 0, i = 0; t < steps; t++) {
        at += (size_t)snprintf(text + at, len - at, "%s[", t ? " " : "");
        for (bool firstin = true; i < n && prog[i].step == t; i++, firstin = false) {
            if (prog[i].buffer >= 0)
                at += (size_t)snprintf(text + at, len - at, "%s%s(%d)", firstin ? "" : ",",
                                       short_name(prog[i].kind), prog[i].buffer);
            else
                at += (size_t)snprintf(text + at, len - at, "%s%s", firstin ? "" : ",",
                                       short_name(prog[i].kind));
        }
        at += (size_t)snprintf(text + at, len - at, "]");
        ck_assert_uint_lt(at, len);
    }
}

static void check_rendered(zl_schedule_kind kind, int M, int S, int stage, const char *want)
{
    zl_instr prog[MAX_PROG];
    int n = stage_prog(kind, M, S, stage, prog);
    char text[4096];
    render(prog, n, zl_schedule_steps(kind, M, S), text, sizeof text);
    static const char *names[] = {"data-parallel", "gpipe", "train", "inference"};
    printf("%s S=%d M=%d stage %d: %s\n", names[kind], S, M, stage, text);
    ck_assert_str_eq(text, want);
}

/* DeepSpeed's names for the p2p instructions, as its call_to_str prints them, and as the
 * executor's error names them. */
START_TEST(test_p2p_instruction_names)
{
    char one[64];
    const struct {
        zl_instr_kind kind;
        const char *want;
    } cases[] = {{ZL_SEND_ACTIVATION, "SendActivation(buffer_id=1)"},
                 {ZL_RECV_ACTIVATION, "RecvActivation(buffer_id=1)"},
                 {ZL_SEND_GRAD, "SendGrad(buffer_id=1)"},
                 {ZL_RECV_GRAD, "RecvGrad(buffer_id=1)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zl_instr_format(&(zl_instr){.kind = cases[i].kind, .buffer = 1}, one, sizeof one);
        ck_assert_str_eq(one, cases[i].want);
    }
}
END_TEST

/* The step structure of the one-stage schedules: DeepSpeed's DataParallelSchedule yields
 * one step per micro-batch with the reductions and the step in the last one; GPipe one
 * step per pass. */
START_TEST(test_one_stage_steps)
{
    check_rendered(ZL_SCHEDULE_DATA_PARALLEL, 3, 1, 0,
                   "[Load(0),Fwd(0),Bwd(0)] [Load(0),Fwd(0),Bwd(0)] "
                   "[Load(0),Fwd(0),Bwd(0),ReduceTied,ReduceGrads,OptStep]");
    check_rendered(ZL_SCHEDULE_GPIPE, 2, 1, 0,
                   "[Load(0),Fwd(0)] [Load(1),Fwd(1)] [Bwd(0)] [Bwd(1),ReduceTied,ReduceGrads,OptStep]");
}
END_TEST

/* The reference's vectors (deepspeed-behaviour.md 3.2), step by step. */
START_TEST(test_train_schedule_reference_vector)
{
    check_rendered(ZL_SCHEDULE_TRAIN, 3, 2, 0,
                   "[Load(0),Fwd(0)] [SendAct(0)] [Load(1),Fwd(1)] [RecvGrad(0),SendAct(1),Bwd(0)] "
                   "[Load(0),Fwd(0)] [RecvGrad(1),SendAct(0),Bwd(1)] [] "
                   "[RecvGrad(0),Bwd(0),ReduceTied,ReduceGrads,OptStep]");
    check_rendered(ZL_SCHEDULE_TRAIN, 3, 2, 1,
                   "[] [RecvAct(0),Load(0),Fwd(0)] [Bwd(0)] [SendGrad(0),RecvAct(1),Load(1),Fwd(1)] "
                   "[Bwd(1)] [SendGrad(1),RecvAct(0),Load(0),Fwd(0)] [Bwd(0)] "
                   "[SendGrad(0),ReduceTied,ReduceGrads,OptStep]");
    ck_assert_int_eq(zl_schedule_steps(ZL_SCHEDULE_TRAIN, 3, 2), 8);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, 3, 2, 0), 2);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, 3, 2, 1), 2);
    /* The buffer rule max(2, min(S - stage, M)) where it is not 2. */
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, 8, 4, 0), 4);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, 8, 4, 1), 3);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, 3, 4, 0), 3);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_TRAIN, 1, 4, 0), 2);
    /* And in DeepSpeed's full names. */
    zl_instr prog[MAX_PROG];
    int n = stage_prog(ZL_SCHEDULE_TRAIN, 3, 2, 0, prog);
    char one[64];
    zl_instr_format(&prog[5], one, sizeof one);
    ck_assert_int_eq(prog[5].step, 3);
    ck_assert_str_eq(one, "RecvGrad(buffer_id=0)");
    zl_instr_format(&prog[n - 1], one, sizeof one);
    ck_assert_str_eq(one, "OptimizerStep()");
}
END_TEST

START_TEST(test_inference_schedule_reference_vector)
{
    check_rendered(ZL_SCHEDULE_INFERENCE, 2, 2, 0,
                   "[Load(0),Fwd(0)] [Load(1),SendAct(0),Fwd(1)] [SendAct(1)]");
    check_rendered(ZL_SCHEDULE_INFERENCE, 2, 2, 1,
                   "[] [Load(0),RecvAct(0),Fwd(0)] [Load(1),RecvAct(1),Fwd(1)]");
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_INFERENCE, 2, 2, 0), 2);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_INFERENCE, 8, 4, 3), 2);
}
END_TEST

/* GPipe across two stages, written out by hand from its timetable (schedule.h): stage s
 * forwards micro-batch m at step m + s, backwards it at step (M + S - 1) + m + (S - 1 - s),
 * every micro-batch in its own buffer; the send of a step's result goes in the next step,
 * where the neighbour receives it. */
START_TEST(test_gpipe_two_stages_vector)
{
    check_rendered(ZL_SCHEDULE_GPIPE, 2, 2, 0,
                   "[Load(0),Fwd(0)] [SendAct(0),Load(1),Fwd(1)] [SendAct(1)] [] "
                   "[RecvGrad(0),Bwd(0)] [RecvGrad(1),Bwd(1),ReduceTied,ReduceGrads,OptStep]");
    check_rendered(ZL_SCHEDULE_GPIPE, 2, 2, 1,
                   "[] [RecvAct(0),Load(0),Fwd(0)] [RecvAct(1),Load(1),Fwd(1)] [Bwd(0)] "
                   "[SendGrad(0),Bwd(1)] [SendGrad(1),ReduceTied,ReduceGrads,OptStep]");
    ck_assert_int_eq(zl_schedule_steps(ZL_SCHEDULE_GPIPE, 2, 2), 6);
    ck_assert_int_eq(zl_schedule_steps(ZL_SCHEDULE_GPIPE, 8, 4), 22);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_GPIPE, 2, 2, 0), 2);
    ck_assert_int_eq(zl_schedule_stage_buffers(ZL_SCHEDULE_GPIPE, 8, 4, 3), 8);
    /* A middle stage of three: odd, so it receives before it sends (forward) and sends
     * before it receives (backward), the opposite of its even neighbours. */
    check_rendered(ZL_SCHEDULE_GPIPE, 2, 3, 1,
                   "[] [RecvAct(0),Fwd(0)] [RecvAct(1),SendAct(0),Fwd(1)] [SendAct(1)] [] "
                   "[RecvGrad(0),Bwd(0)] [SendGrad(0),RecvGrad(1),Bwd(1)] "
                   "[SendGrad(1),ReduceTied,ReduceGrads,OptStep]");
    /* The dispatcher and the named function agree; S = 1 is the one-stage GPipe. */
    zl_instr a[MAX_PROG], b[MAX_PROG];
    int n = zl_schedule_gpipe_stage(3, 2, 1, a, MAX_PROG);
    ck_assert_int_eq(zl_schedule_make_stage(ZL_SCHEDULE_GPIPE, 3, 2, 1, b, MAX_PROG), n);
    ck_assert_int_eq(memcmp(a, b, (size_t)n * sizeof *a), 0);
    for (int M = 1; M <= 8; M++) {
        n = zl_schedule_gpipe(M, a, MAX_PROG);
        ck_assert_int_eq(zl_schedule_gpipe_stage(M, 1, 0, b, MAX_PROG), n);
        ck_assert_int_eq(memcmp(a, b, (size_t)n * sizeof *a), 0);
        ck_assert_int_eq(zl_schedule_steps(ZL_SCHEDULE_GPIPE, M, 1), 2 * M);
    }
}
END_TEST

/* An independent generator: DeepSpeed's schedule.py (TrainSchedule.steps,
 * _step_to_micro_batch and its four helpers, InferenceSchedule.steps, num_pipe_buffers)
 * transcribed literally, branch by branch, into per-step lists; floor division as Python's
 * (its operands are never negative where it matters). The library's generator is written
 * from a closed form instead (forward of m at step 2m + s, backward at 2m + 2S - 1 - s). */
typedef struct ds_sched {
    int steps;
    int len[64];        /* instructions per step */
    zl_instr ins[64][8]; /* [step][i], .step unset */
} ds_sched;

static int pyfloordiv2(int x) { return x >= 0 ? x / 2 : -((-x + 1) / 2); }

static void ds_add(ds_sched *d, int step, zl_instr_kind kind, int buffer)
{
    ck_assert_int_lt(d->len[step], 8);
    d->ins[step][d->len[step]++] = (zl_instr){.kind = kind, .buffer = buffer};
}

static int ds_train_buffers(int M, int S, int stage)
{
    int buffers = S - stage < M ? S - stage : M;
    return buffers > 2 ? buffers : 2;
}

static void ds_train(int M, int S, int stage_id, ds_sched *d)
{
    memset(d, 0, sizeof *d);
    int prev_stage = stage_id - 1, next_stage = stage_id + 1;
#define VALID_MB(m) (0 <= (m) && (m) < M)
#define VALID_STAGE(s) (0 <= (s) && (s) < S)
#define EVEN(x) ((x) % 2 == 0)
    int prev_micro_batch_id = -1;
    int total_steps = 2 * (M + S - 1);
    d->steps = total_steps;
    int prev_buffer = -99, curr_buffer = -99;
    int nbuf = ds_train_buffers(M, S, stage_id);
    for (int step_id = 0; step_id < total_steps; step_id++) {
        int micro_batch_id;
        bool is_forward;
        if (EVEN(step_id) && EVEN(stage_id)) { /* _even_step_forward_id */
            micro_batch_id = pyfloordiv2(step_id) - pyfloordiv2(stage_id);
            is_forward = true;
        } else if (!EVEN(step_id) && !EVEN(stage_id)) { /* _odd_step_forward_id */
            micro_batch_id = pyfloordiv2(step_id - 1) - pyfloordiv2(stage_id);
            is_forward = true;
        } else if (EVEN(step_id) && !EVEN(stage_id)) { /* _even_step_backward_id */
            micro_batch_id = pyfloordiv2(step_id) - S + pyfloordiv2(stage_id + 1);
            is_forward = false;
        } else { /* _odd_step_backward_id */
            micro_batch_id = pyfloordiv2(step_id - 1) - S + 1 + pyfloordiv2(stage_id);
            is_forward = false;
        }
        if (VALID_MB(prev_micro_batch_id)) prev_buffer = prev_micro_batch_id % nbuf;
        if (VALID_MB(micro_batch_id)) curr_buffer = micro_batch_id % nbuf;
        if (is_forward) {
            if (VALID_MB(prev_micro_batch_id) && VALID_STAGE(prev_stage))
                ds_add(d, step_id, ZL_SEND_GRAD, prev_buffer);
            if (VALID_MB(micro_batch_id) && VALID_STAGE(prev_stage))
                ds_add(d, step_id, ZL_RECV_ACTIVATION, curr_buffer);
        } else {
            if (VALID_MB(micro_batch_id) && VALID_STAGE(next_stage))
                ds_add(d, step_id, ZL_RECV_GRAD, curr_buffer);
            if (VALID_MB(prev_micro_batch_id) && VALID_STAGE(next_stage))
                ds_add(d, step_id, ZL_SEND_ACTIVATION, prev_buffer);
        }
        if (stage_id == 0 || stage_id == S - 1)
            if (is_forward && VALID_MB(micro_batch_id))
                ds_add(d, step_id, ZL_LOAD_MICRO_BATCH, curr_buffer);
        if (VALID_MB(micro_batch_id))
            ds_add(d, step_id, is_forward ? ZL_FORWARD_PASS : ZL_BACKWARD_PASS, curr_buffer);
        if (step_id == total_steps - 1) {
            ds_add(d, step_id, ZL_REDUCE_TIED_GRADS, -1);
            ds_add(d, step_id, ZL_REDUCE_GRADS, -1);
            ds_add(d, step_id, ZL_OPTIMIZER_STEP, -1);
        }
        prev_micro_batch_id = micro_batch_id;
    }
}

static void ds_inference(int M, int S, int stage_id, ds_sched *d)
{
    memset(d, 0, sizeof *d);
    int prev_stage = stage_id - 1, next_stage = stage_id + 1;
    int total_steps = M + S - 1;
    d->steps = total_steps;
    for (int step_id = 0; step_id < total_steps; step_id++) {
        int micro_batch_id = step_id - stage_id;
        int recv_buf, send_buf;
        if (EVEN(stage_id)) {
            recv_buf = step_id % 2;
            send_buf = (step_id + 1) % 2;
        } else {
            recv_buf = (step_id + 1) % 2;
            send_buf = step_id % 2;
        }
        if (stage_id == 0 || stage_id == S - 1)
            if (VALID_MB(micro_batch_id)) ds_add(d, step_id, ZL_LOAD_MICRO_BATCH, recv_buf);
        if (EVEN(stage_id)) {
            if (VALID_STAGE(next_stage) && VALID_MB(micro_batch_id - 1))
                ds_add(d, step_id, ZL_SEND_ACTIVATION, send_buf);
            if (VALID_STAGE(prev_stage) && VALID_MB(micro_batch_id))
                ds_add(d, step_id, ZL_RECV_ACTIVATION, recv_buf);
        } else {
            if (VALID_STAGE(prev_stage) && VALID_MB(micro_batch_id))
                ds_add(d, step_id, ZL_RECV_ACTIVATION, recv_buf);
            if (VALID_STAGE(next_stage) && VALID_MB(micro_batch_id - 1))
                ds_add(d, step_id, ZL_SEND_ACTIVATION, send_buf);
        }
        if (VALID_MB(micro_batch_id)) ds_add(d, step_id, ZL_FORWARD_PASS, recv_buf);
    }
#undef VALID_MB
#undef VALID_STAGE
#undef EVEN
}

/* Every (S in 1..4, M in 1..8, stage): the library's schedules equal the transcription,
 * step by step, and so do the buffer counts. */
START_TEST(test_schedules_equal_transcription)
{
    int compared = 0;
    for (int kind = 0; kind < 2; kind++) {
        zl_schedule_kind k = kind ? ZL_SCHEDULE_INFERENCE : ZL_SCHEDULE_TRAIN;
        for (int S = 1; S <= 4; S++)
            for (int M = 1; M <= 8; M++)
                for (int s = 0; s < S; s++) {
                    ds_sched d;
                    if (kind) ds_inference(M, S, s, &d);
                    else ds_train(M, S, s, &d);
                    zl_instr prog[MAX_PROG];
                    int n = stage_prog(k, M, S, s, prog);
                    ck_assert_int_eq(zl_schedule_steps(k, M, S), d.steps);
                    ck_assert_int_eq(zl_schedule_stage_buffers(k, M, S, s),
                                     kind ? 2 : ds_train_buffers(M, S, s));
                    int i = 0;
                    for (int t = 0; t < d.steps; t++)
                        for (int j = 0; j < d.len[t]; j++, i++) {
                            ck_assert_msg(i < n && prog[i].step == t && prog[i].kind == d.ins[t][j].kind &&
                                              prog[i].buffer == d.ins[t][j].buffer,
                                          "%s S=%d M=%d stage %d step %d: instruction %d differs",
                                          kind ? "inference" : "train", S, M, s, t, j);
                            compared++;
                        }
                    ck_assert_int_eq(i, n);
                }
    }
    ck_assert_int_gt(compared, 1000);
}
END_TEST

/* What a stage's stream says happened, micro-batch by micro-batch: the p2p operations of
 * each step with the micro-batch they carry, and the checks made on the way. Micro-batches
 * enter a stage in order (loads and receives are FIFO), so the k-th forward is of
 * micro-batch k; a buffer op's micro-batch is then read from the buffer's occupant. */
typedef struct p2p_op {
    zl_instr_kind kind;
    int mb;
} p2p_op;

typedef struct stage_trace {
    int nops[64];
    p2p_op ops[64][4]; /* [step][i]: the step's p2p operations in order */
    int forwards[8], backwards[8];
    int max_in_flight;
} stage_trace;

static void trace_stage(zl_schedule_kind kind, int M, int S, int s, stage_trace *tr)
{
    memset(tr, 0, sizeof *tr);
    zl_instr prog[MAX_PROG];
    int n = stage_prog(kind, M, S, s, prog);
    int nbuf = zl_schedule_stage_buffers(kind, M, S, s);
    bool train = kind != ZL_SCHEDULE_INFERENCE, last = s == S - 1;
    int occ[8], done[8]; /* the micro-batch a buffer holds / last released (-1: none) */
    for (int b = 0; b < 8; b++) occ[b] = done[b] = -1;
    int next_fwd = 0, in_flight = 0, last_bwd = -1, boundary = 0;
    zl_instr_kind last_pass = ZL_BACKWARD_PASS; /* the latest forward or backward */
    for (int i = 0; i < n; i++) {
        const zl_instr *in = &prog[i];
        int b = in->buffer, t = in->step;
        if (in->kind >= ZL_REDUCE_TIED_GRADS && in->kind <= ZL_OPTIMIZER_STEP) {
            /* the reductions and the step, in this order, at the end of the last step */
            ck_assert(train);
            ck_assert_int_eq(in->kind, ZL_REDUCE_TIED_GRADS + boundary++);
            ck_assert_int_eq(t, zl_schedule_steps(kind, M, S) - 1);
            ck_assert_int_ge(i, n - 3);
            continue;
        }
        ck_assert_int_ge(b, 0);
        ck_assert_int_lt(b, nbuf);
        int mb = -1;
        switch (in->kind) {
        case ZL_LOAD_MICRO_BATCH:
        case ZL_RECV_ACTIVATION:
            /* input for the next forward, in this step, into a buffer no one holds */
            ck_assert_msg(occ[b] < 0, "stage %d step %d: buffer %d reused before its %s", s, t,
                          b, train ? "backward" : "send");
            ck_assert(s == 0 || s == S - 1 || in->kind == ZL_RECV_ACTIVATION);
            ck_assert(in->kind == ZL_LOAD_MICRO_BATCH || s > 0);
            ck_assert(i + 1 < n && prog[i + 1].step == t); /* the forward follows, same step */
            mb = next_fwd;
            break;
        case ZL_FORWARD_PASS:
            ck_assert_msg(occ[b] < 0, "stage %d step %d: buffer %d reused", s, t, b);
            ck_assert_int_lt(next_fwd, M);
            mb = occ[b] = next_fwd++;
            tr->forwards[mb]++;
            /* where nothing will release it (inference on the last stage), it is free */
            if (!train && last) occ[b] = -1;
            if (++in_flight > tr->max_in_flight) tr->max_in_flight = in_flight;
            if (!train && last) in_flight--;
            break;
        case ZL_SEND_ACTIVATION: /* the output of the forward of the step before */
            ck_assert(!last);
            ck_assert_int_ge(occ[b], 0);
            mb = occ[b];
            ck_assert_int_eq(mb, next_fwd - 1);
            /* and no pass ran since that forward: with activation checkpointing the
             * output lives in an area the next pass overwrites (engine_pipe.c) */
            ck_assert_msg(last_pass == ZL_FORWARD_PASS, "stage %d step %d: SendActivation(%d) "
                          "after a backward", s, t, b);
            if (!train) occ[b] = -1, in_flight--; /* inference: sent is done */
            break;
        case ZL_RECV_GRAD: /* the gradient of a held micro-batch, about to be backwarded */
            ck_assert(train && !last);
            ck_assert_int_ge(occ[b], 0);
            mb = occ[b];
            break;
        case ZL_BACKWARD_PASS:
            ck_assert(train);
            ck_assert_msg(occ[b] >= 0, "stage %d step %d: backward of empty buffer %d", s, t, b);
            mb = occ[b];
            ck_assert_int_eq(mb, last_bwd + 1); /* backwards in order too */
            last_bwd = mb;
            tr->backwards[mb]++;
            done[b] = mb;
            occ[b] = -1;
            in_flight--;
            break;
        case ZL_SEND_GRAD: /* the input gradient of the backward of the step before */
            ck_assert(train && s > 0);
            ck_assert_int_eq(done[b], last_bwd);
            /* 1F1B sends it first in its step; GPipe's even stages receive the next
             * gradient first (schedule.h); either way before the next backward */
            if (kind == ZL_SCHEDULE_TRAIN) ck_assert(i == 0 || prog[i - 1].step < t);
            mb = done[b];
            break;
        default: ck_abort();
        }
        if (in->kind == ZL_FORWARD_PASS || in->kind == ZL_BACKWARD_PASS) last_pass = in->kind;
        if (in->kind == ZL_SEND_ACTIVATION || in->kind == ZL_RECV_ACTIVATION ||
            in->kind == ZL_SEND_GRAD || in->kind == ZL_RECV_GRAD) {
            ck_assert_int_lt(tr->nops[t], 4);
            tr->ops[t][tr->nops[t]++] = (p2p_op){in->kind, mb};
        }
    }
    ck_assert_int_eq(boundary, train ? 3 : 0);
    ck_assert_int_eq(in_flight, 0);
    for (int b = 0; b < nbuf; b++) ck_assert_int_lt(occ[b], 0);
    for (int m = 0; m < M; m++) {
        ck_assert_int_eq(tr->forwards[m], 1);
        ck_assert_int_eq(tr->backwards[m], train ? 1 : 0);
    }
}

/* The p2p operations stage s issues toward `peer`, in order. */
static int toward(const stage_trace *tr, int t, int s, int peer, p2p_op *out)
{
    int k = 0;
    for (int i = 0; i < tr->nops[t]; i++) {
        zl_instr_kind kd = tr->ops[t][i].kind;
        bool next = kd == ZL_SEND_ACTIVATION || kd == ZL_RECV_GRAD;
        if ((peer == s + 1) == next) out[k++] = tr->ops[t][i];
    }
    return k;
}

/* Blocking p2p within step t: every stage works through its p2p operations in order, and
 * an operation completes in a round where the peer's current operation is its
 * counterpart (a rendezvous). Returns the rounds the step takes; a deadlock (a round in
 * which nothing completes) fails the test. DeepSpeed's parity orders make every pair of
 * neighbours meet in at most two rounds; an order that ignored it would chain the stages
 * one after another (S - 1 rounds for a step that moves an activation on every link). */
static int p2p_rounds(const stage_trace *tr, int S, int t, const char *what, int M)
{
    int at[4] = {0}, rounds = 0;
    for (;;) {
        bool left = false, go[4] = {false};
        for (int s = 0; s < S; s++) {
            if (at[s] >= tr[s].nops[t]) continue;
            left = true;
            zl_instr_kind k = tr[s].ops[t][at[s]].kind;
            int peer = k == ZL_SEND_ACTIVATION || k == ZL_RECV_GRAD ? s + 1 : s - 1;
            ck_assert(peer >= 0 && peer < S);
            if (at[peer] >= tr[peer].nops[t]) continue;
            zl_instr_kind pk = tr[peer].ops[t][at[peer]].kind;
            int back = pk == ZL_SEND_ACTIVATION || pk == ZL_RECV_GRAD ? peer + 1 : peer - 1;
            go[s] = back == s;
        }
        if (!left) return rounds;
        bool moved = false;
        for (int s = 0; s < S; s++)
            if (go[s]) at[s]++, moved = true;
        ck_assert_msg(moved, "%s S=%d M=%d step %d: the stages' blocking p2p deadlocks", what, S, M, t);
        rounds++;
    }
}

/* For S in 1..4, M in 1..8, for 1F1B, GPipe and inference: every micro-batch is forwarded
 * (and, training, backwarded) exactly once per stage, in order; a buffer is never
 * refilled while it holds a micro-batch waiting for its backward (inference: for its
 * send); an activation is sent before the stage's next pass; 1F1B holds at most
 * min(S - stage, M) micro-batches at once, which is what its buffer count allows for,
 * GPipe all M; between neighbours s and s + 1, in every step, s's sends and receives
 * toward s + 1 meet s + 1's receives and sends toward s one for one, in the same order,
 * carrying the same micro-batch; and the step's blocking operations complete in at most
 * two rounds (p2p_rounds), so they cannot deadlock. */
START_TEST(test_schedule_invariants)
{
    static stage_trace tr[4];
    static const zl_schedule_kind kinds[] = {ZL_SCHEDULE_TRAIN, ZL_SCHEDULE_INFERENCE,
                                             ZL_SCHEDULE_GPIPE};
    static const char *names[] = {"train", "inference", "gpipe"};
    int pairs[3] = {0};
    for (int kind = 0; kind < 3; kind++) {
        zl_schedule_kind k = kinds[kind];
        for (int S = 1; S <= 4; S++)
            for (int M = 1; M <= 8; M++) {
                for (int s = 0; s < S; s++) {
                    trace_stage(k, M, S, s, &tr[s]);
                    if (k == ZL_SCHEDULE_TRAIN) {
                        int want = S - s < M ? S - s : M;
                        ck_assert_int_eq(tr[s].max_in_flight, want);
                    }
                    if (k == ZL_SCHEDULE_GPIPE) ck_assert_int_eq(tr[s].max_in_flight, M);
                }
                for (int t = 0; t < zl_schedule_steps(k, M, S); t++) {
                    for (int s = 0; s < S; s++) {
                        p2p_op a[4], b[4];
                        if (s == 0) ck_assert_int_eq(toward(&tr[s], t, s, -1, a), 0);
                        if (s == S - 1) ck_assert_int_eq(toward(&tr[s], t, s, S, a), 0);
                        if (s == S - 1) continue;
                        int na = toward(&tr[s], t, s, s + 1, a);
                        int nb = toward(&tr[s + 1], t, s + 1, s, b);
                        ck_assert_msg(na == nb, "%s S=%d M=%d step %d: stages %d and %d issue %d and %d p2p ops",
                                      names[kind], S, M, t, s, s + 1, na, nb);
                        for (int i = 0; i < na; i++) {
                            zl_instr_kind partner = a[i].kind == ZL_SEND_ACTIVATION ? ZL_RECV_ACTIVATION
                                                                                    : ZL_SEND_GRAD;
                            ck_assert_int_eq(b[i].kind, partner);
                            ck_assert_int_eq(a[i].mb, b[i].mb);
                            pairs[kind]++;
                        }
                    }
                    int rounds = p2p_rounds(tr, S, t, names[kind], M);
                    ck_assert_msg(rounds <= 2, "%s S=%d M=%d step %d: the p2p takes %d rounds",
                                  names[kind], S, M, t, rounds);
                }
            }
    }
    printf("p2p pairs checked: train %d, inference %d, gpipe %d\n", pairs[0], pairs[1], pairs[2]);
    ck_assert_int_gt(pairs[0], 400);
    ck_assert_int_gt(pairs[1], 100);
    ck_assert_int_gt(pairs[2], 400);
}
END_TEST

/* One stage: 1F1B is forward, backward per micro-batch (buffers alternating between 2),
 * then the step; inference is load and forward. */
START_TEST(test_one_stage_pipeline_schedules)
{
    for (int M = 1; M <= 8; M++) {
        zl_instr prog[MAX_PROG];
        int n = stage_prog(ZL_SCHEDULE_TRAIN, M, 1, 0, prog);
        ck_assert_int_eq(n, 3 * M + 3);
        ck_assert_int_eq(zl_schedule_steps(ZL_SCHEDULE_TRAIN, M, 1), 2 * M);
        for (int m = 0; m < M; m++) {
            const zl_instr *p = &prog[3 * m];
            ck_assert(p[0].kind == ZL_LOAD_MICRO_BATCH && p[0].buffer == m % 2 && p[0].step == 2 * m);
            ck_assert(p[1].kind == ZL_FORWARD_PASS && p[1].buffer == m % 2 && p[1].step == 2 * m);
            ck_assert(p[2].kind == ZL_BACKWARD_PASS && p[2].buffer == m % 2 && p[2].step == 2 * m + 1);
        }
        ck_assert_int_eq(prog[3 * M].kind, ZL_REDUCE_TIED_GRADS);
        n = stage_prog(ZL_SCHEDULE_INFERENCE, M, 1, 0, prog);
        ck_assert_int_eq(n, 2 * M);
        for (int m = 0; m < M; m++) {
            ck_assert(prog[2 * m].kind == ZL_LOAD_MICRO_BATCH && prog[2 * m].buffer == m % 2);
            ck_assert(prog[2 * m + 1].kind == ZL_FORWARD_PASS && prog[2 * m + 1].step == m);
        }
    }
}
END_TEST

/* The executor runs 1F1B on one stage unchanged (two slots, alternating), and it gives the
 * data-parallel schedule's weights bit for bit: the backwards accumulate in the same
 * order. */
START_TEST(test_train_schedule_one_stage_runs)
{
    zl_gpt_config cfg;
    zl_device d1, d2;
    zl_engine_options o = zl_test_engine_options(2, 4, 16), ot = o;
    ot.schedule = ZL_SCHEDULE_TRAIN;
    zl_engine *a, *b;
    two_lab_engines(&cfg, &d1, &d2, &o, &ot, &a, &b);
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "act.h.0"), 2 * zl_ledger_current(&d1.ledger, "act.h.0"));
    source sa = {0, 32, cfg.vocab_size}, sb = sa;
    seen s = {0};
    zl_engine_set_instr_observer(b, observe, &s);
    for (int step = 0; step < 2; step++) {
        float la, lb;
        ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, &la), ZL_OK);
        ck_assert_int_eq(zl_engine_train_batch(b, next_batch, &sb, &lb), ZL_OK);
        ck_assert_float_eq(la, lb);
    }
    ck_assert_int_eq(s.ins[3].buffer, 1); /* the second micro-batch, in the second slot */
    ck_assert_int_eq(memcmp(a->params.data, b->params.data, zl_tensor_nbytes(&a->params)), 0);
    ck_assert_int_eq(a->global_steps, b->global_steps);
    zl_engine_destroy(a);
    zl_engine_destroy(b);
    /* The inference schedule has no backward and no step: an engine refuses it. */
    zl_engine_options oi = o;
    oi.schedule = ZL_SCHEDULE_INFERENCE;
    zl_engine *c = NULL;
    ck_assert_int_eq(zl_engine_create(&c, &cfg, &oi, &d1), ZL_ERR_INVALID);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "inference schedule"));
}
END_TEST

/* A p2p instruction in the schedule of an engine without pipeline stages fails the step,
 * by name, instead of being skipped (which would train on a pipeline that never exchanged
 * anything). */
START_TEST(test_executor_refuses_p2p)
{
    zl_gpt_config cfg;
    zl_device d1, d2;
    zl_engine_options o = zl_test_engine_options(2, 2, 16);
    zl_engine *a, *b;
    two_lab_engines(&cfg, &d1, &d2, &o, &o, &a, &b);
    source sa = {0, 32, cfg.vocab_size};
    ck_assert_int_eq(a->schedule[1].kind, ZL_FORWARD_PASS);
    a->schedule[1] = (zl_instr){.kind = ZL_SEND_ACTIVATION, .buffer = 0};
    ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, NULL), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "SendActivation(buffer_id=0)"));
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}
END_TEST

/* GPipe in a plan (plan/plan_pipe.c replays the stages' schedules against each other):
 * its bubble with uniform stages is 1F1B's fraction, (S - 1) / (M + S - 1), S - 1 slots
 * of forward fill and S - 1 of backward drain; what it costs is memory: stage 0 holds M
 * micro-batches' activations at the turn, 1F1B's at most S. A model whose embedding and
 * head are negligible beside its blocks (vocabulary 64, 32 blocks of width 2048, cut by
 * "type:block"; check_plan_pipe.c's), S = 4, M = 8. */
static void gpipe_plan(zl_schedule_kind kind, int stage, char **trace, zl_plan_result *r)
{
    static const zl_gpt_config even = {"even", 64, 1024, 32, 16, 2048};
    static zl_cluster c;
    zl_plan_request req;
    memset(&req, 0, sizeof req);
    ck_assert_int_eq(zl_cluster_parse("4xa100-80gb", &c), ZL_OK);
    req.model = even;
    req.world_size = 1;
    req.pipe_stages = 4;
    req.pipe_stage = stage;
    req.cluster = &c;
    req.device_memory = c.device->memory;
    req.device_name = c.device->display;
    req.gpu = true;
    zl_engine_options *o = &req.options;
    o->micro_batch_size = 1;
    o->gradient_accumulation_steps = 8;
    o->seq_len = 1024;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->precision.dtype = ZL_BF16;
    o->schedule = kind;
    snprintf(o->pipe_partition, sizeof o->pipe_partition, "type:block");
    size_t len = 0;
    if (trace) req.trace = open_memstream(trace, &len);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    if (trace) fclose(req.trace);
}

START_TEST(test_gpipe_plan_bubble_and_memory)
{
    enum { S = 4, M = 8 };
    zl_plan_result *gp = malloc(sizeof *gp), *tr = malloc(sizeof *tr), *one = malloc(sizeof *one);
    char *text = NULL;
    gpipe_plan(ZL_SCHEDULE_GPIPE, -1, &text, gp);
    gpipe_plan(ZL_SCHEDULE_TRAIN, -1, NULL, tr);
    double want = (double)(S - 1) / (M + S - 1);
    printf("plan S=%d M=%d: GPipe bubble %.4f, 1F1B %.4f, (S-1)/(M+S-1) = %.4f; step %.4f s vs %.4f s\n",
           S, M, gp->bubble_fraction, tr->bubble_fraction, want, gp->step_seconds, tr->step_seconds);
    ck_assert_msg(fabs(gp->bubble_fraction - want) <= 0.02 * want, "GPipe's bubble %.4f, formula %.4f",
                  gp->bubble_fraction, want);
    /* the replay ran GPipe's order: on stage 0 every forward before the first backward */
    const char *first_bwd = strstr(text, "\"BackwardPass(buffer_id=0)\", \"ph\": \"X\", \"pid\": 0,");
    const char *last_fwd = strstr(text, "\"ForwardPass(buffer_id=7)\", \"ph\": \"X\", \"pid\": 0,");
    ck_assert(first_bwd && last_fwd && last_fwd < first_bwd);
    /* Memory: stage 0 of the pipeline is stage 0 planned alone with all M micro-batches
     * (a plan may not run fewer for GPipe: it holds them all), M slots of activations
     * against 1F1B's S. */
    gpipe_plan(ZL_SCHEDULE_GPIPE, 0, NULL, one);
    ck_assert_uint_eq(gp->stage_peak_nbytes[0], one->ledger.peak_nbytes);
    size_t act_gp = zl_ledger_peak(&one->ledger, "act.h.0");
    gpipe_plan(ZL_SCHEDULE_TRAIN, 0, NULL, one);
    ck_assert_uint_eq(tr->stage_peak_nbytes[0], one->ledger.peak_nbytes);
    size_t act_tr = zl_ledger_peak(&one->ledger, "act.h.0");
    printf("plan S=%d M=%d stage 0: act.h.0 %zu bytes (GPipe) vs %zu (1F1B); stage peak %.2f GiB vs %.2f GiB\n",
           S, M, act_gp, act_tr, gp->stage_peak_nbytes[0] / 1073741824.0,
           tr->stage_peak_nbytes[0] / 1073741824.0);
    ck_assert_uint_gt(act_tr, 0);
    ck_assert_uint_eq(act_gp * S, act_tr * M);
    ck_assert_uint_gt(gp->stage_peak_nbytes[0], tr->stage_peak_nbytes[0]);
    free(text);
    free(one);
    free(tr);
    free(gp);
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("data_parallel");
    tcase_add_test(tc, test_schedule_data_parallel_stream);
    tcase_add_test(tc, test_train_batch_equals_forward_backward_step);
    tcase_add_test(tc, test_schedule_gpipe_stream);
    tcase_add_test(tc, test_gpipe_slots_match_data_parallel_f32);
    tcase_add_test(tc, test_gpipe_slots_match_data_parallel_bf16);
    suite_add_tcase(s, tc);
    TCase *pipe = tcase_create("pipeline");
    tcase_add_test(pipe, test_p2p_instruction_names);
    tcase_add_test(pipe, test_one_stage_steps);
    tcase_add_test(pipe, test_train_schedule_reference_vector);
    tcase_add_test(pipe, test_inference_schedule_reference_vector);
    tcase_add_test(pipe, test_gpipe_two_stages_vector);
    tcase_add_test(pipe, test_schedules_equal_transcription);
    tcase_add_test(pipe, test_schedule_invariants);
    tcase_add_test(pipe, test_one_stage_pipeline_schedules);
    tcase_add_test(pipe, test_train_schedule_one_stage_runs);
    tcase_add_test(pipe, test_executor_refuses_p2p);
    tcase_add_test(pipe, test_gpipe_plan_bubble_and_memory);
    suite_add_tcase(s, pipe);
    return s;
}

ZL_TEST_MAIN(schedule_suite)
