/* One optimizer step as data: a list of DeepSpeed's pipeline instructions
 * (runtime/pipe/schedule.py), produced by a pure schedule function and run by one executor
 * (zl_engine_train_batch). DeepSpeed's data-parallel schedule, its pipeline schedules
 * (TrainSchedule, i.e. 1F1B, and InferenceSchedule) and GPipe are generated here per
 * stage, with SendActivation/RecvActivation/SendGrad/RecvGrad between stages; the
 * executor runs the training ones (engine/engine_pipe.c for the p2p), inference is
 * instructions only.
 *
 * DeepSpeed's DataParallelSchedule, for gradient accumulation 2:
 *   LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0) BackwardPass(buffer_id=0)
 *   LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0) BackwardPass(buffer_id=0)
 *   ReduceTiedGrads() ReduceGrads() OptimizerStep()
 * (DeepSpeed's own data-parallel schedule leaves ReduceTiedGrads out, since a tie is
 * whole on every rank; zerolab lists it in every schedule, where it does nothing while the
 * tie's members live on one rank, so that pipeline schedules differ only where they must.) */
#ifndef ZL_ENGINE_SCHEDULE_H
#define ZL_ENGINE_SCHEDULE_H

#include <stddef.h>
#include <stdio.h>

typedef enum zl_instr_kind {
    ZL_LOAD_MICRO_BATCH, /* the next micro-batch's tokens into buffer `buffer` */
    ZL_FORWARD_PASS,     /* forward over the stage's layers, activations into `buffer` */
    ZL_BACKWARD_PASS,    /* backward from `buffer`'s activations; gradients accumulate */
    ZL_REDUCE_TIED_GRADS, /* sum each tie's gradient over the ranks holding a member */
    ZL_REDUCE_GRADS,     /* the data-parallel reduction of the ZeRO strategy */
    ZL_OPTIMIZER_STEP,   /* unscale, clip, the optimizer and the LR schedule */
    /* Pipeline p2p, blocking, each paired with its peer on the neighbouring stage in the
     * same step (a send on stage s at step t meets the receive on s +- 1 at step t): */
    ZL_SEND_ACTIVATION,  /* `buffer`'s forward output to stage + 1 */
    ZL_RECV_ACTIVATION,  /* stage - 1's output into `buffer`'s input */
    ZL_SEND_GRAD,        /* the gradient of `buffer`'s input to stage - 1 */
    ZL_RECV_GRAD,        /* stage + 1's gradient of `buffer`'s output */
} zl_instr_kind;

typedef struct zl_instr {
    zl_instr_kind kind;
    int buffer; /* micro-batch buffer (slot) of a buffer op (load, passes, p2p); -1 otherwise */
    /* The step the instruction belongs to (0, 1, ...): DeepSpeed's schedules yield one list
     * of instructions per step, and a barrier between two steps cannot deadlock. Steps are
     * in order and may be empty (a stage idle in the bubble), so the count comes from
     * zl_schedule_steps, not from the last instruction. An executor that runs the stream
     * in order may ignore it. */
    int step;
} zl_instr;

/* DeepSpeed's instruction name: "LoadMicroBatch", "ForwardPass", "SendActivation", ... */
const char *zl_instr_name(zl_instr_kind kind);

/* The data-parallel schedule of one optimizer step over `micro_batches` micro-batches, all
 * through buffer 0, one step per micro-batch. Writes at most `cap` instructions to out and
 * returns how many the schedule has (3 * micro_batches + 3), so a caller can size the
 * array first. */
int zl_schedule_data_parallel(int micro_batches, zl_instr *out, int cap);

/* GPipe's order on one stage: every micro-batch's forward, each into its own buffer, then
 * every backward, in the same order; then the reductions and the step (one step per pass,
 * 2 * micro_batches steps). It needs `micro_batches` buffers and gives the data-parallel
 * schedule's gradients bit for bit (the backwards accumulate in the same order). It is
 * zl_schedule_gpipe_stage(micro_batches, 1, 0, ...). Same contract as
 * zl_schedule_data_parallel. */
int zl_schedule_gpipe(int micro_batches, zl_instr *out, int cap);

/* GPipe (Huang et al., 2019) for stage `stage_id` of `stages`, for teaching beside 1F1B:
 * all M forwards, then all M backwards, 2 * (M + S - 1) steps. Stage s forwards
 * micro-batch m at step m + s and backwards it at step (M + S - 1) + m + (S - 1 - s): the
 * last stage turns around right after its last forward, and the backwards run in the
 * forwards' order (as on one stage, whose gradients they then equal bit for bit).
 * Micro-batch m lives in buffer m, so a stage holds all M micro-batches' activations at
 * the turn (1F1B: at most S). A step passes on the result of the stage's pass in the step
 * before: SendActivation of the micro-batch forwarded then (to s + 1, which receives it
 * for its forward in this step), SendGrad of the one backwarded then (to s - 1, which
 * receives it for its backward in this step). The blocking pairs meet by parity, as in
 * InferenceSchedule: forward, even stages send before they receive and odd stages
 * receive first; backward, even stages receive the gradient before they send theirs and
 * odd stages send first. The first and the last stage load a micro-batch right before its
 * forward (the last one for its labels); the last step ends with ReduceTiedGrads,
 * ReduceGrads, OptimizerStep. With one stage it is zl_schedule_gpipe. (S=2, M=2):
 *   stage 0: [Load(0) Fwd(0)] [SendAct(0) Load(1) Fwd(1)] [SendAct(1)] []
 *            [RecvGrad(0) Bwd(0)] [RecvGrad(1) Bwd(1) + step]
 *   stage 1: [] [RecvAct(0) Load(0) Fwd(0)] [RecvAct(1) Load(1) Fwd(1)] [Bwd(0)]
 *            [SendGrad(0) Bwd(1)] [SendGrad(1) + step]
 * Same contract as zl_schedule_data_parallel. */
int zl_schedule_gpipe_stage(int micro_batches, int stages, int stage_id, zl_instr *out, int cap);

/* DeepSpeed's TrainSchedule (synchronous 1F1B, PipeDream-Flush) for stage `stage_id` of
 * `stages`: 2 * (micro_batches + stages - 1) steps. Stage s runs the forward of
 * micro-batch m at step 2m + s and its backward at step 2m + 2S - 1 - s, so even stages
 * forward on even steps and odd stages on odd steps, and in between a stage alternates
 * one forward, one backward. Micro-batch m lives in buffer m % zl_schedule_stage_buffers.
 * In a forward step a stage first sends the gradient of the micro-batch it backwarded in
 * the previous step (SendGrad) and then receives the activation it forwards (RecvActivation);
 * in a backward step it first receives the gradient (RecvGrad), then sends the activation
 * of the micro-batch it forwarded in the previous step (SendActivation); the first and the
 * last stage load the micro-batch they forward (the last one for its labels). The last
 * step ends with ReduceTiedGrads, ReduceGrads, OptimizerStep. For (S=2, M=3):
 *   stage 0: [Load(0) Fwd(0)] [SendAct(0)] [Load(1) Fwd(1)] [RecvGrad(0) SendAct(1) Bwd(0)]
 *            [Load(0) Fwd(0)] [RecvGrad(1) SendAct(0) Bwd(1)] [] [RecvGrad(0) Bwd(0) + step]
 *   stage 1: [] [RecvAct(0) Load(0) Fwd(0)] [Bwd(0)] [SendGrad(0) RecvAct(1) Load(1) Fwd(1)]
 *            [Bwd(1)] [SendGrad(1) RecvAct(0) Load(0) Fwd(0)] [Bwd(0)] [SendGrad(0) + step]
 * Same contract as zl_schedule_data_parallel. */
int zl_schedule_train(int micro_batches, int stages, int stage_id, zl_instr *out, int cap);

/* DeepSpeed's InferenceSchedule: forward only, micro_batches + stages - 1 steps; stage s
 * forwards micro-batch m at step m + s, in buffer m % 2. The first and last stage load it
 * first; then even stages send the previous micro-batch's activation before receiving this
 * one's and odd stages receive before they send, so the blocking pairs meet. (S=2, M=2):
 *   stage 0: [Load(0) Fwd(0)] [Load(1) SendAct(0) Fwd(1)] [SendAct(1)]
 *   stage 1: [] [Load(0) RecvAct(0) Fwd(0)] [Load(1) RecvAct(1) Fwd(1)] */
int zl_schedule_inference(int micro_batches, int stages, int stage_id, zl_instr *out, int cap);

typedef enum zl_schedule_kind {
    ZL_SCHEDULE_DATA_PARALLEL = 0, /* DeepSpeed's DataParallelSchedule */
    ZL_SCHEDULE_GPIPE,             /* GPipe: zl_schedule_gpipe_stage */
    ZL_SCHEDULE_TRAIN,             /* DeepSpeed's TrainSchedule (1F1B), zl_schedule_train */
    ZL_SCHEDULE_INFERENCE,         /* DeepSpeed's InferenceSchedule: no backward, no step */
} zl_schedule_kind;

/* The schedule of `kind` for stage `stage_id` of `stages` (same contract as the functions
 * above). The data-parallel schedule exists on one stage only (stages == 1). */
int zl_schedule_make_stage(zl_schedule_kind kind, int micro_batches, int stages, int stage_id,
                           zl_instr *out, int cap);
/* How many micro-batch buffers (activation slots) stage `stage_id` uses: DeepSpeed's
 * num_pipe_buffers(). 1F1B: max(2, min(stages - stage_id, micro_batches)), the most
 * micro-batches a stage holds between their forward and their backward (at least 2);
 * inference: 2; GPipe: micro_batches on every stage; data parallel: 1. */
int zl_schedule_stage_buffers(zl_schedule_kind kind, int micro_batches, int stages,
                              int stage_id);
/* How many steps the schedule has (some may be empty): micro_batches (data parallel),
 * 2 * (micro_batches + stages - 1) (GPipe and 1F1B alike: the same bubble, S - 1 steps of
 * each phase), micro_batches + stages - 1 (inference). */
int zl_schedule_steps(zl_schedule_kind kind, int micro_batches, int stages);

/* One stage: zl_schedule_make_stage(kind, micro_batches, 1, 0, ...), and its buffers. */
int zl_schedule_make(zl_schedule_kind kind, int micro_batches, zl_instr *out, int cap);
int zl_schedule_buffers(zl_schedule_kind kind, int micro_batches);

/* "LoadMicroBatch(buffer_id=0)" or "ReduceGrads()", as DeepSpeed prints an instruction. */
void zl_instr_format(const zl_instr *in, char *buf, size_t len);

#endif
