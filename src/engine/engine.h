/* The training engine: DeepSpeed's step semantics on one rank.
 *
 *   forward(batch)  -> loss of this micro-batch
 *   backward()      -> gradients accumulate, scaled by 1/gradient_accumulation_steps
 *   step()          -> at the accumulation boundary: global-norm clipping, the optimizer
 *                      step, zeroed gradients, the LR schedule; otherwise nothing
 *
 * as deepspeed.initialize's engine does: micro_steps counts every step() call,
 * global_steps and global_samples count boundaries, and the boundary is
 * (micro_steps + 1) % gradient_accumulation_steps == 0.
 *
 * The engine owns the flat buffers (tags "param" and "grad"), the optimizer state
 * (inside zl_adamw) and, through the model, the activations: every byte on the device's
 * ledger. Where they live and how they move under each ZeRO stage is the stage's
 * strategy (zero/zero.h); dtype-specific work and the loss scale are the precision
 * policy's (zero/precision.h). */
#ifndef ZL_ENGINE_ENGINE_H
#define ZL_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "comm/comm.h"
#include "config/optim_settings.h"
#include "core/device.h"
#include "io/aio.h"
#include "engine/schedule.h"
#include "model/model.h"
#include "optim/lr_schedule.h"
#include "zero/precision.h"

/* Mixed precision ("fp16", "bf16", "communication_data_type", "data_types"): the
 * precision policy's keys (zero/precision.h: dtype, fp32 accumulation and communication,
 * bf16's overflow check, fp16's loss scaler). A zeroed struct is fp32 training. */
typedef zl_precision_options zl_engine_precision;

/* What the engine needs from a resolved DeepSpeed config (config/config.h fills it). */
typedef struct zl_engine_options {
    int micro_batch_size;            /* train_micro_batch_size_per_gpu */
    int gradient_accumulation_steps;
    int seq_len;                     /* T of each sequence (zerolab's, not DeepSpeed's) */
    double gradient_clipping;        /* max global L2 norm; 0 disables */
    zl_optimizer_params optimizer;
    zl_lr_schedule_params scheduler;
    uint64_t seed;                   /* parameter initialisation */

    /* Data parallelism and ZeRO ("zero_optimization"). dp NULL: one rank. A zero
     * reduce_bucket_size or gradient_predivide_factor selects DeepSpeed's default. */
    zl_comm *dp;                     /* the data-parallel group (not owned) */
    /* Pipeline parallelism (DeepSpeed's PipelineEngine; engine_pipe.c). pipe: this
     * replica's stages, ordered by stage (not owned; NULL or one rank: no pipeline). The
     * layer list is cut into pipe->size stages by pipe_partition (DeepSpeed's
     * partition_method, pipe/partition.h; "": "parameters"), this rank holds and runs
     * stage pipe->rank's layers, and zl_engine_train_batch runs DeepSpeed's TrainSchedule
     * (1F1B) with activations and gradients sent between neighbouring stages. The tie's
     * members on a stage without its owner (GPT-2's head on the last stage) keep a copy
     * of the tied parameter, whose gradient the owner's stage adds to its own and whose
     * values it sends back after each step. ZeRO 0-1 only (DeepSpeed's rule); the
     * gradient norm and the overflow check span the stages. */
    zl_comm *pipe;
    char pipe_partition[128];
    /* The cut itself, pipe->size + 1 boundaries (pipe/partition.h), when the caller has it
     * already (a plan creates an engine per stage of one cut); NULL: from pipe_partition.
     * Borrowed for zl_engine_create only. */
    const int *pipe_bounds;
    /* Tensor parallelism (Megatron-LM's layers, model/block.c): tp is the group that
     * splits each block's heads and MLP units and the vocabulary (not owned; NULL or one
     * rank: none). Any ZeRO stage, offload to the host (not NVMe). mp: every rank that
     * holds the same data-parallel index (the
     * pipeline's stages x the tensor-parallel ranks, DeepSpeed's model-parallel group),
     * over which the gradient norm, the overflow check and the engine's agreements span;
     * NULL: the pipe group, else the tp group (one of them alone). */
    zl_comm *tp;
    zl_comm *mp;
    /* Sequence parallelism with tp (Korthikanti et al.; model/model.h seq_parallel): the
     * stream between the blocks split over the tp group by token rows. ZeRO 0-1. */
    bool sequence_parallel;
    /* The rank's host device (pinned host memory: core/device.h, ZL_DEVICE_HOST), where
     * the engine stages each micro-batch before copying it to the accelerator, and where
     * offload will keep optimizer state. NULL: the engine makes its own, unlimited. */
    zl_device *host;
    int zero_stage;                  /* 0 replicated; 1 optimizer state, 2 also gradients,
                                      * 3 also parameters partitioned (src/zero) */
    int64_t reduce_bucket_size;      /* elements per gradient reduction (5e8) */
    bool reduce_scatter;             /* stage 1/2: pre-divide, then reduce per bucket (true) */
    bool use_multi_rank_bucket_allreduce; /* stage 1/2: allreduce each bucket (DeepSpeed's
                                      * default, true) rather than reduce to each owner */
    int64_t param_persistence_threshold; /* stage 3: layers of at most this many elements
                                      * stay gathered (0: DeepSpeed's 1e5; < 0: none) */
    bool overlap_comm;               /* stage 2: reduce a layer's gradient while the next
                                      * layer's backward runs (two buckets) */
    int64_t prefetch_bucket_size;    /* stage 3: largest prefetch, elements (0: 5e7) */
    int64_t max_live_parameters;     /* stage 3: cap on gathered elements (0: 1e9) */
    int64_t max_reuse_distance;      /* stage 3: keep a layer used again within this many
                                      * elements (0: 1e9; < 0: none) */
    bool offload_param;              /* stage 3: parameter partitions on the host device */
    bool offload_param_pin_memory;   /* ... pinned (offload_param.pin_memory) */
    /* ZeRO-Infinity's parameters (offload_param.device "nvme", stage 3;
     * zero/offload_nvme_param.c): the shard in swap files under param_nvme_path (which
     * must exist), read through param_buffer_count pinned buffers of param_buffer_size
     * elements (0: DeepSpeed's 5 and 1e8); the first units in the model's order, up to
     * param_max_in_cpu elements (0: DeepSpeed's 1e9; < 0: none), stay in host memory
     * instead. pin_memory: offload_param_pin_memory. */
    bool offload_param_nvme;
    char param_nvme_path[1024];
    int param_buffer_count;
    int64_t param_buffer_size, param_max_in_cpu;
    bool prescale_gradients;         /* divide by the DP size before the reduction (false) */
    /* ZeRO-Offload (zero_optimization.offload_optimizer.device "cpu"; "nvme" at stages
     * 1-2): the fp32 master partition, Adam's moments and the step on the host device
     * (zero/offload.c). Needs zero_stage 1-3. pin_memory: the config's, recorded. */
    bool offload_optimizer;
    bool offload_pin_memory;
    /* ZeRO-Infinity (offload_optimizer.device "nvme" at stage 3; zero/offload_nvme.c):
     * with offload_optimizer, the master weights and Adam's moments live in swap files
     * under nvme_path (which must exist), stepped sub_group_size elements at a time
     * (0: DeepSpeed's 1e9) through a pool of at least buffer_count buffers, reading ahead
     * and writing behind as pipeline_read / pipeline_write say; I/O as `aio` says (zeroed:
     * DeepSpeed's defaults). */
    bool offload_nvme;
    char nvme_path[1024];
    int nvme_buffer_count;           /* 0: DeepSpeed's 4 */
    bool nvme_pipeline_read, nvme_pipeline_write;
    int64_t sub_group_size;
    zl_aio_config aio;
    double gradient_predivide_factor; /* 1.0 */
    zl_engine_precision precision;
    /* The order of zl_engine_train_batch's instructions (engine/schedule.h); it sets how
     * many micro-batches are in flight, and so how many activation slots the engine
     * allocates. Zero: DeepSpeed's data-parallel schedule, one slot. With pipeline
     * stages: ZL_SCHEDULE_GPIPE runs GPipe across them, anything else DeepSpeed's 1F1B. */
    zl_schedule_kind schedule;
    /* Each tie member (GPT-2's head) keeps its own copy of the tied parameter and its
     * gradient, summed with the owner's once per step (ReduceTiedGrads), as pipeline
     * stages holding different members do (engine_ties.c). On one rank: the same training
     * up to the order of one sum. Needs ZeRO 0-1. */
    bool tie_copies;
    /* Activation checkpointing (DeepSpeed's activation_checkpointing block with
     * pipeline.activation_checkpoint_interval, or zerolab train --checkpoint-activations):
     * forward keeps only the input of each segment of checkpoint_interval layers (0: off,
     * every activation kept), and backward recomputes each segment's forward just before
     * its backward (model/model.h, zl_model_ckpt). cpu_checkpointing: the inputs live on
     * the host device. checkpoint_profile: each segment's forward, recompute and backward
     * wall time at debug level. */
    int checkpoint_interval;
    bool cpu_checkpointing;
    bool checkpoint_profile;
} zl_engine_options;

/* The engine, an opaque handle (zl_engine_create/zl_engine_destroy); tools and tests read
 * it through the accessors below. Its fields are engine/engine_internal.h's, for
 * src/engine and the tests that look inside an engine. */
typedef struct zl_engine zl_engine;

struct zl_config;
/* Fill options from a resolved DeepSpeed config (config/config.h): batch, clipping,
 * optimizer, scheduler and zero_optimization; seq_len, seed and the data-parallel group
 * are zerolab's own (command line or the "zerolab" block). */
void zl_engine_options_from_config(zl_engine_options *o, const struct zl_config *cfg, int seq_len,
                                   uint64_t seed, zl_comm *dp);

/* Refuse, by name and with a hint, what a config asks of the engine that it does not do
 * yet (offload, 16-bit master weights, a communication or accumulation type other than the
 * model's or fp32), rather than train or plan without it. train and plan both call it. */
zl_status zl_engine_check_config(const struct zl_config *cfg);

/* Allocate an engine into *out: build the model on dev, allocate parameters (initialised
 * from opt->seed, then broadcast from data-parallel rank 0 so that every replica starts
 * equal), gradients, optimizer state and activations. On any failure everything allocated
 * is released, *out is NULL and the status (e.g. ZL_ERR_OOM with the ledger's report) is
 * returned. Collective over opt->dp: every rank gets the same status. */
zl_status zl_engine_create(zl_engine **out, const zl_gpt_config *model_cfg,
                           const zl_engine_options *opt, zl_device *dev);
/* Release everything the engine holds, and the engine; NULL is a no-op. */
void zl_engine_destroy(zl_engine *e);

/* Forward one micro-batch of host token ids, inputs and targets (B, T); *loss is the
 * mean loss over tokens with a target. */
zl_status zl_engine_forward(zl_engine *e, const int32_t *inputs, const int32_t *targets,
                            float *loss);
/* Backward of the last forward; gradients accumulate. Stage 2 reduces each layer's
 * gradient as it is produced, so this is collective over opt->dp. */
zl_status zl_engine_backward(zl_engine *e);
/* Count a micro-step; at the boundary, reduce the gradients across data-parallel ranks,
 * clip, update, zero the gradients and advance the LR schedule. Collective over opt->dp. */
zl_status zl_engine_step(zl_engine *e);

/* Where zl_engine_train_batch gets micro-batches: fill inputs and targets (B, T). A
 * failure (the data, a signal to stop) ends the step on every rank alike. */
typedef zl_status (*zl_batch_source)(void *ctx, int32_t *inputs, int32_t *targets);

/* One optimizer step (DeepSpeed's PipelineEngine.train_batch): the engine's schedule
 * (engine/schedule.h: LoadMicroBatch, ForwardPass, BackwardPass per micro-batch, then
 * ReduceTiedGrads, ReduceGrads, OptimizerStep) run by one executor. *loss: the mean of the
 * micro-batches' losses on this rank. The same arithmetic as gradient_accumulation_steps
 * rounds of forward/backward/step; the engine must be at an accumulation boundary
 * (ZL_ERR_INVALID otherwise). Collective over opt->dp; the ranks agree on each
 * LoadMicroBatch's status, where one rank can fail alone (zl_engine_failed_here). */
zl_status zl_engine_train_batch(zl_engine *e, zl_batch_source next, void *ctx, float *loss);

/* The whole flat parameter vector (params_numel floats, host-addressable `out`), on every
 * rank: a copy for stages 0-2, gathered from the shards for stage 3 (DeepSpeed's
 * GatheredParameters; what a consolidated checkpoint holds). Collective over opt->dp. */
zl_status zl_engine_gather_params(zl_engine *e, float *out);

/* Mean of a value over the data-parallel ranks (for logging the loss). Collective. */
float zl_engine_dp_mean(zl_engine *e, float value);

bool zl_engine_is_gradient_accumulation_boundary(const zl_engine *e);
/* The lr the next optimizer step will use. */
double zl_engine_get_lr(const zl_engine *e);
/* The loss scale the next backward uses (fp16; 1 otherwise). */
double zl_engine_loss_scale(const zl_engine *e);

/* ---- accessors (engine_access.c) ----------------------------------------------------- */

/* The options the engine runs with (DeepSpeed's defaults filled in where zero). */
const zl_engine_options *zl_engine_get_options(const zl_engine *e);
/* The model (layers, parameter table, activations of the last forward). */
const zl_model *zl_engine_model(const zl_engine *e);
/* The device the engine computes on (not owned). */
zl_device *zl_engine_device(const zl_engine *e);
/* The rank's NVMe ledger: the bytes of its swap files (offload_nvme), by tag
 * ("nvme.master", "nvme.adam.m", "nvme.adam.v", "nvme.grad", "nvme.param"); empty
 * without NVMe. */
const zl_ledger *zl_engine_nvme_ledger(const zl_engine *e);
/* The type of parameters and activations (f32, f16 or bf16). */
zl_dtype zl_engine_dtype(const zl_engine *e);
/* step() calls so far (DeepSpeed's micro_steps). */
int64_t zl_engine_micro_steps(const zl_engine *e);
/* Optimizer steps (boundaries) so far, skipped ones included (DeepSpeed's global_steps). */
int64_t zl_engine_global_steps(const zl_engine *e);
/* Samples so far: train_batch_size per boundary (DeepSpeed's global_samples). */
int64_t zl_engine_global_samples(const zl_engine *e);
/* Optimizer steps skipped for inf/nan gradients (fp16; bf16 when checked). */
int64_t zl_engine_skipped_steps(const zl_engine *e);
/* Global gradient norm at the last boundary (unscaled, before clipping; -1 if skipped). */
double zl_engine_grad_norm(const zl_engine *e);
/* The lr the last optimizer step used. */
double zl_engine_last_lr(const zl_engine *e);
/* The loss of the last forward on this rank. */
float zl_engine_loss(const zl_engine *e);
/* Have train_batch call observe(ctx, instruction) before each instruction it runs, and
 * observe(ctx, NULL) when it returns (NULL: no observer). */
void zl_engine_set_instr_observer(zl_engine *e, void (*observe)(void *ctx, const zl_instr *in),
                                  void *ctx);
/* Pipeline stages (opt.pipe): how many, and the cut, bounds[stages + 1] (stage s runs
 * layers [bounds[s], bounds[s+1]); pipe/partition.h), which a caller prints as DeepSpeed
 * does on rank 0 (zl_pipe_partition_format). One stage: 1, {0, layers}. */
int zl_engine_pipe_stages(const zl_engine *e, const int **bounds);
/* After a failed zl_engine_train_batch: whether this rank failed itself (its message is
 * zl_last_error()) rather than agreed to another rank's failure. */
bool zl_engine_failed_here(const zl_engine *e);

/* ---- checkpoints (engine_ckpt.c; layout and files: ckpt/ckpt_layout.h, docs/checkpoints.md)
 *
 * DeepSpeed's save_checkpoint and load_checkpoint. Both are collective over opt.dp: every
 * rank calls them (a rank that calls alone fails at the collective timeout with a message
 * naming the call, instead of hanging), at an accumulation boundary, and every rank gets
 * the same status. */

/* ZL_OK if this engine can save and load checkpoints; else ZL_ERR_UNSUPPORTED with the
 * reason (pipeline stages, tensor-parallel parts, NVMe offload, the meta backend): what
 * zl_engine_save_checkpoint and zl_engine_load_checkpoint would refuse, asked before a
 * run rather than after it. Local: no communication. */
zl_status zl_engine_checkpointable(const zl_engine *e);

typedef struct zl_engine_save_args {
    const char *dir;          /* save_dir: created if missing */
    const char *tag;          /* NULL: "global_step<global_steps>" */
    const char *client_state; /* a JSON object's text, kept and returned by the load (NULL: none) */
    const char *ds_config;    /* the DeepSpeed config as a JSON object's text (NULL: none) */
    int tag_validation;       /* checkpoint.tag_validation: 0 WARN, 1 IGNORE, 2 FAIL */
    bool node_local;          /* checkpoint.use_node_local_storage: each node's first rank
                               * writes the shared files into its own dir */
    bool no_latest;           /* leave `latest` as it is (DeepSpeed's save_latest=False) */
} zl_engine_save_args;

/* Write the engine's state: the tag's files into a staging directory, then the tag made
 * whole at once and `latest` pointed at it, so that a save killed at any point leaves the
 * previous checkpoint loadable. ZL_ERR_IO names the file that could not be written (a full
 * disk); ZL_ERR_UNSUPPORTED for state zerolab cannot save yet (NVMe offload). */
zl_status zl_engine_save_checkpoint(zl_engine *e, const zl_engine_save_args *a);

typedef struct zl_engine_load_args {
    const char *dir;       /* load_dir */
    const char *tag;       /* NULL: the tag `latest` names */
    bool universal_latest; /* checkpoint.load_universal: `latest_universal` first */
    bool module_only;      /* the weights only: a fresh optimizer, schedule and counters
                            * (DeepSpeed's load_module_only; also what a checkpoint without
                            * optimizer shards gives, e.g. one imported from llm.c) */
} zl_engine_load_args;

typedef struct zl_engine_loaded {
    char tag[160];            /* the tag loaded */
    int saved_dp_world_size;  /* the layout it was saved with */
    int saved_zero_stage;
    bool optimizer_loaded;    /* optimizer state, schedule and counters restored */
    char *client_state;       /* the saved client state's JSON text (malloc'd; NULL: none) */
} zl_engine_loaded;

/* Load a checkpoint saved by any data-parallel size and ZeRO stage, in any precision, into
 * this engine (the same model): the fp32 master weights, Adam's moments and step, the LR
 * schedule, fp16's loss scaler (when both runs use fp16), the counters; the parameters
 * from the master weights. Every file is checked (format, sizes, shapes, checksums, that
 * the shards cover the model) and a bad one is refused with a message naming it. On
 * failure the engine's values are unspecified: destroy it. out may be NULL. */
zl_status zl_engine_load_checkpoint(zl_engine *e, const zl_engine_load_args *a,
                                    zl_engine_loaded *out);

#endif
