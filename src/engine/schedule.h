/* One optimizer step as data: a list of DeepSpeed's pipeline instructions
 * (runtime/pipe/schedule.py), produced by a pure schedule function and run by one executor
 * (zl_engine_train_batch). Data parallelism is the first schedule; pipeline parallelism adds
 * SendActivation/RecvActivation/SendGrad/RecvGrad and a schedule that interleaves
 * micro-batches (1F1B), over the same executor.
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
} zl_instr_kind;

typedef struct zl_instr {
    zl_instr_kind kind;
    int buffer; /* micro-batch buffer (slot) of the first three kinds; -1 otherwise */
} zl_instr;

/* DeepSpeed's instruction name: "LoadMicroBatch", "ForwardPass", ... */
const char *zl_instr_name(zl_instr_kind kind);

/* The data-parallel schedule of one optimizer step over `micro_batches` micro-batches, all
 * through buffer 0. Writes at most `cap` instructions to out and returns how many the
 * schedule has (3 * micro_batches + 3), so a caller can size the array first. */
int zl_schedule_data_parallel(int micro_batches, zl_instr *out, int cap);

/* GPipe's order on one stage: every micro-batch's forward, each into its own buffer, then
 * every backward, in the same order; then the reductions and the step. It needs
 * `micro_batches` buffers and gives the data-parallel schedule's gradients bit for bit
 * (the backwards accumulate in the same order). Pipeline parallelism will run it across
 * stages; on one stage it is what shows that micro-batches in flight keep their own
 * activations. Same contract as zl_schedule_data_parallel. */
int zl_schedule_gpipe(int micro_batches, zl_instr *out, int cap);

typedef enum zl_schedule_kind {
    ZL_SCHEDULE_DATA_PARALLEL = 0, /* DeepSpeed's DataParallelSchedule */
    ZL_SCHEDULE_GPIPE,             /* zl_schedule_gpipe */
} zl_schedule_kind;

/* The schedule of `kind` (same contract as the functions above). */
int zl_schedule_make(zl_schedule_kind kind, int micro_batches, zl_instr *out, int cap);
/* How many micro-batch buffers (activation slots) the schedule uses: DeepSpeed's
 * num_pipe_buffers(). */
int zl_schedule_buffers(zl_schedule_kind kind, int micro_batches);

/* "LoadMicroBatch(buffer_id=0)" or "ReduceGrads()", as DeepSpeed prints an instruction. */
void zl_instr_format(const zl_instr *in, char *buf, size_t len);

#endif
