/* Internal to src/engine, and to the tests that look inside an engine: the engine's
 * fields (engine/engine.h has the opaque handle and the accessors). Where gradients,
 * parameters and optimizer state live is the ZeRO strategy's business (zero/zero.h);
 * dtype-specific work is the precision policy's (zero/precision.h). */
#ifndef ZL_ENGINE_ENGINE_INTERNAL_H
#define ZL_ENGINE_ENGINE_INTERNAL_H

#include "engine/engine.h"
#include "core/tensor.h"
#include "optim/adamw.h"
#include "zero/zero.h"

struct zl_engine {
    zl_engine_options opt;
    zl_device *device;   /* the accelerator */
    zl_device *host;     /* the host device: opt.host, or own_host */
    zl_device own_host;
    zl_ledger nvme_ledger; /* the swap files of offload_nvme (placement NVMe, no budget) */
    zl_model model;
    int first_layer, last_layer; /* the layers this rank runs: [first, last) of the model
                                  * (all of them, or its pipeline stage's) */
    /* Pipeline parallelism (engine_pipe.c; opt.pipe). */
    int stage, num_stages;  /* this rank's stage, of num_stages (1: no pipeline) */
    int *bounds;            /* [num_stages + 1]: stage s runs layers [bounds[s], bounds[s+1]) */
    zl_tensor pipe_grad;    /* (B,T,C) f32, "pipe.grad": the gradient RecvGrad received (not
                             * on the last stage) */
    zl_tensor pipe_wire;    /* (B,T,C) in the model's 16-bit dtype, "pipe.buffer": gradients
                             * as they travel (16 bits only) */
    const float *pipe_grad_out; /* the input gradient of the last backward, for SendGrad */
    int pipe_grad_buffer;   /* ... and the buffer it belongs to (-1: none) */
    int32_t *pipe_batches;  /* (GAS, 2, B, T): the step's micro-batches, read before it */
    int pipe_loaded;        /* micro-batches loaded into slots so far in this step */
    bool pipe_shapes_sent;  /* the activations' shape went to the next stage (once) */
    bool pipe_shapes_checked; /* ... and came from the previous one, and matched */
    zl_tensor params; /* prec.dtype, tag "param": the whole padded vector; stage 3: this rank's shard */
    zl_tensor grads;  /* prec.grad_dtype, tag "grad": (padded numel) for stages 0-1, (partition)
                       * for 2, (shard) for 3 */
    zl_partition part; /* this rank's share of the flat vector (stage >= 1; whole for 0) */
    zl_tensor master; /* stage >= 1, or 16 bits: (partition) f32 master weights, "master" */
    zl_precision prec;   /* the precision policy: types, the CPU's f32 "cast" buffers, the
                          * loss scaler and the last boundary's overflow */
    zl_zero_ctx zero;    /* the ZeRO stage's strategy and its buffers (zero/zero.h) */
    zl_tensor stream; /* (2, B, T, C) f32, tag "act.stream": ping-pong residual gradients */
    zl_adamw adam;
    zl_tensor tie_values[ZL_MAX_TIES][ZL_TIE_MAX_MEMBERS]; /* opt.tie_copies: the members' copies */
    zl_tensor tie_grads[ZL_MAX_TIES][ZL_TIE_MAX_MEMBERS];
    zl_lr_schedule lr_schedule;
    zl_param_range *ranges; /* weight-decay ranges over the flat buffer */
    int num_ranges;

    int64_t micro_steps;    /* step() calls */
    int64_t global_steps;   /* optimizer steps (boundaries) */
    int64_t global_samples; /* += train_batch_size at each boundary */
    int64_t skipped_steps;  /* optimizer steps skipped (inf/nan gradients: fp16, bf16 checked) */
    float loss;             /* loss of the last forward */
    double grad_norm;       /* global gradient norm at the last boundary (unscaled, before
                             * clipping; -1 if it was skipped) */
    double lr;              /* lr used by the last optimizer step */

    /* zl_engine_train_batch: the host buffers LoadMicroBatch fills (the loader's pinned
     * memory, copied to the accelerator's slot), the step's schedule (made with the
     * engine), and an observer that sees each instruction as it runs (NULL: none). */
    int32_t *batch; /* (2, B, T): inputs, then targets */
    zl_instr *schedule;
    int schedule_len;
    void (*instr_observer)(void *ctx, const zl_instr *in);
    bool failed_here; /* the last train_batch failed on this rank (not only agreed to) */
    void *instr_observer_ctx;
};

static inline int zl__engine_dp_size(const zl_engine *e) { return e->opt.dp ? e->opt.dp->size : 1; }
static inline int zl__engine_dp_rank(const zl_engine *e) { return e->opt.dp ? e->opt.dp->rank : 0; }

/* This rank's share of the reduced gradient: pointer and elements (for norms and checks). */
static inline void *zl__engine_own_grads(zl_engine *e, size_t *n)
{
    return e->zero.strategy->own_grads(&e->zero, n);
}
static inline double zl__vec_sumsq(zl_engine *e, const void *x, zl_dtype t, size_t n)
{
    return zl_precision_sumsq(&e->prec, x, t, n);
}
static inline bool zl__vec_nonfinite(zl_engine *e, const void *x, zl_dtype t, size_t n)
{
    return zl_precision_nonfinite(&e->prec, x, t, n);
}

/* Make layer l's parameters available to it (engine.c): the strategy's, in f32. */
zl_status zl__engine_use_layer(zl_engine *e, int l, bool backward);

/* Pipeline stages (engine_pipe.c). */
static inline bool zl__engine_piped(const zl_engine *e) { return e->num_stages > 1; }
/* The stage that runs layer l. */
int zl__engine_stage_of(const zl_engine *e, int l);
/* Cut the model into stages (after zl_model_create, on the whole model: every
 * tensor-parallel rank makes the same cut, whatever its share of the vocabulary); refuses
 * ZeRO 2-3. Then, after the tensor-parallel split, make the model this rank's stage. */
zl_status zl__engine_pipe_setup(zl_engine *e);
zl_status zl__engine_pipe_take_stage(zl_engine *e);
zl_status zl__engine_pipe_alloc(zl_engine *e);
void zl__engine_pipe_free(zl_engine *e);
/* Every rank of the grid reads the step's micro-batches before any instruction runs and
 * checks them, and all agree: a bad batch fails the step everywhere, before a stage waits
 * for another. */
zl_status zl__engine_pipe_read_batches(zl_engine *e, zl_batch_source next, void *ctx);
/* LoadMicroBatch on a stage: the next of the step's micro-batches into `buffer`. */
zl_status zl__engine_pipe_load(zl_engine *e, int buffer);
/* SendActivation, RecvActivation, SendGrad, RecvGrad. */
zl_status zl__engine_pipe_p2p(zl_engine *e, const zl_instr *in);
/* The mean loss of the step, as the last stage computed it, on every stage. */
zl_status zl__engine_pipe_loss(zl_engine *e, double *loss);
/* The model-parallel group of o (engine.h, options.mp): mp, else the pipe group, else
 * the tensor-parallel group; NULL when there is none larger than one rank. */
static inline zl_comm *zl__engine_mp(const zl_engine_options *o)
{
    return o->mp && o->mp->size > 1         ? o->mp
           : o->pipe && o->pipe->size > 1 ? o->pipe
           : o->tp && o->tp->size > 1     ? o->tp
                                          : NULL;
}
/* zl_engine_gather_params across the stages. */
zl_status zl__engine_pipe_gather_params(zl_engine *e, float *out);
/* st agreed over the data-parallel group, then over the stages: every rank of the grid. */
zl_status zl__engine_agree(zl_engine *e, zl_status st);

/* Ties whose members keep copies of their own (engine_ties.c; opt.tie_copies, or a
 * pipeline stage that holds a member without its owner). */
zl_status zl__engine_ties_alloc(zl_engine *e);
void zl__engine_ties_free(zl_engine *e);
zl_status zl__engine_ties_sync_values(zl_engine *e);
zl_status zl__engine_reduce_tied_grads(zl_engine *e);
void zl__engine_ties_zero_grads(zl_engine *e);

#endif
