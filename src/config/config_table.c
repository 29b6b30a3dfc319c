/* Every setting zerolab reads from a DeepSpeed config: block, key, type, default, range.
 *
 * Defaults are DeepSpeed 0.19.6's code defaults (runtime/constants.py, zero/config.py,
 * zero/offload_config.py, precision_config.py, the plain-dict block readers, monitor and
 * comm configs, lr_schedules.py), with the changes the reference notes: gradient_clipping
 * 1.0 (PR #8068), bf16.check_grad_overflow true (PR #8035), offload pin_memory true (PR
 * #8207), aio intra_op_parallelism (PR #7056). Table order is print order. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config_internal.h"

#define OFF(m) offsetof(zl_config, m)
#define ROW(blk, k, al, t, m, d, ...) \
    {.block = blk, .key = k, .alias = al, .type = t, .off = OFF(m), .def = d, __VA_ARGS__}
#define BOOL(blk, k, m, d, ...) ROW(blk, k, NULL, ZL__CT_BOOL, m, d, __VA_ARGS__)
#define INT(blk, k, m, d, ...) ROW(blk, k, NULL, ZL__CT_INT, m, d, __VA_ARGS__)
#define UINT(blk, k, m, d, ...) \
    ROW(blk, k, NULL, ZL__CT_INT, m, d, .lo = 0, .flags = ZL__CF_LO, __VA_ARGS__)
#define FLT(blk, k, m, d, ...) ROW(blk, k, NULL, ZL__CT_FLOAT, m, d, __VA_ARGS__)
#define STR(blk, k, m, s, ...) \
    ROW(blk, k, NULL, ZL__CT_STR, m, 0, .def_str = s, .flags = ZL__CF_NULLABLE, __VA_ARGS__)
/* Every row ends with DOC(HONOURED, "meaning"): what `zerolab config --reference` prints
 * (docs/config-reference.md), so the reference is this table and cannot drift from it.
 * HONOURED: YES (zerolab does what DeepSpeed does), NO_EFFECT (read and checked, training
 * unchanged), REFUSED (a value other than the default is an error), PARTLY (some values
 * are built, the others refused; the meaning says which). */
#define DOC(h, text) .honour = ZL__HON_##h, .doc = text
#define ENUM(blk, k, m, d, ch, ...) ROW(blk, k, NULL, ZL__CT_ENUM, m, d, .choices = ch, __VA_ARGS__)
/* stage-3 keys: DeepSpeed documents "stage3_x"; the pydantic field name "x" is accepted. */
#define S3(k, t, m, d, ...) ROW("zero_optimization", "stage3_" k, k, t, m, d, __VA_ARGS__)
#define ZB(k, d, ...) BOOL("zero_optimization", #k, zero.k, d, __VA_ARGS__)
#define OO "zero_optimization.offload_optimizer"
#define OP "zero_optimization.offload_param"
/* scheduler.params rows: which schedules accept them. */
#define SM(t) (1u << (t))
#define W_ALL (SM(ZL_LR_WARMUP) | SM(ZL_LR_WARMUP_DECAY) | SM(ZL_LR_WARMUP_COSINE))
#define SP "scheduler.params"
/* Step counts of the schedules: the schedules add and subtract them and compute in double,
 * where integers up to 2^53 are exact; no run has more steps. */
#define STEPS_MAX 9007199254740992.0
#define TRIAD_RANGE "%s is out of range: the allowed range is [1, 2147483647] (a C int)"

static const char *const dtypes[] = {"fp32", "fp16", "bf16", NULL};
static const char *const devices[] = {"none", "cpu", "nvme", NULL};
static const char *const reduce_ops[] = {"mean", "sum", NULL};
static const char *const tag_modes[] = {"WARN", "IGNORE", "FAIL", NULL};
static const char *const backends[] = {"ref", "cpu", "cuda", "discrete", NULL};
static const char *const warmup_types[] = {"log", "linear", NULL};

const zl__cfg_entry zl__cfg_table[] = {
    /* Batch triad: null and "auto" mean "not given" (then inferred). */
    /* Batch triad: null and "auto" mean "not given" (then inferred). The micro batch and the
     * accumulation steps land in the engine's int; values <= 0 get DeepSpeed's own
     * "has to be greater than 0" once the triad is resolved. */
    ROW("", "train_batch_size", NULL, ZL__CT_INT, train_batch_size, 0, .flags = ZL__CF_NULL_UNSET,
        DOC(YES, "samples per optimizer step over all data-parallel ranks: micro batch x "
                 "accumulation steps x data-parallel size; inferred from the other two when not "
                 "given")),
    ROW("", "train_micro_batch_size_per_gpu", NULL, ZL__CT_INT, train_micro_batch_size_per_gpu, 0,
        .hi = INT_MAX, .flags = ZL__CF_NULL_UNSET | ZL__CF_HI, .bad_msg = TRIAD_RANGE,
        DOC(YES, "samples each rank runs forward and backward at once (one micro-batch)")),
    ROW("", "gradient_accumulation_steps", NULL, ZL__CT_INT, gradient_accumulation_steps, 0,
        .hi = INT_MAX, .flags = ZL__CF_NULL_UNSET | ZL__CF_HI, .bad_msg = TRIAD_RANGE,
        DOC(YES, "micro-batches whose gradients are summed before each optimizer step")),
    /* DeepSpeed never checks steps_per_print; 0 would divide by zero in its engine. */
    ROW("", "steps_per_print", NULL, ZL__CT_INT, steps_per_print, 0, .lo = 1,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE,
        .bad_msg = "steps_per_print must be a positive number of steps, got %s (use null or "
                   "omit it to never print)",
        DOC(YES, "print the loss and learning rate every N steps (None: never; zerolab train "
                 "prints every 10 unless the file says)")),
    ROW("", "gradient_clipping", NULL, ZL__CT_FLOAT, gradient_clipping, 1.0, .lo = 0,
        .flags = ZL__CF_LO,
        DOC(YES, "clip the global gradient norm to this value before the step (0: off)")),
    BOOL("", "prescale_gradients", prescale_gradients, 0,
        DOC(YES, "divide gradients by the predivide factor before the allreduce instead of after")),
    FLT("", "gradient_predivide_factor", gradient_predivide_factor, 1.0,
        DOC(YES, "divide gradients by this before the reduction and by world/factor after it "
                 "(fp16 range)")),
    ENUM("", "communication_data_type", communication_data_type, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE,
         .bad_msg = "Invalid communication_data_type. Supported data types: ['fp16', 'bf16', "
                    "'fp32']. Got: %s",
        DOC(PARTLY, "type of gradient reductions: the model's type (None) or \"fp32\"; another "
                    "type is refused")),
    ENUM("", "seq_parallel_comm_data_type", seq_parallel_comm_data_type, 0, dtypes,
         .flags = ZL__CF_NOCASE,
        DOC(NO_EFFECT, "type of Ulysses sequence-parallel collectives; Ulysses is not built")),
    ENUM("", "gradient_allreduce_op", gradient_allreduce_op, 0, reduce_ops, .flags = ZL__CF_NOCASE,
         .bad_msg = "Invalid gradient_allreduce_op. Supported operations: ['mean', 'sum']. Got: "
                    "'%s'",
        DOC(PARTLY, "whether data-parallel gradients are averaged (\"mean\", built) or "
                    "summed (\"sum\", refused: zerolab always averages)")),
    BOOL("", "wall_clock_breakdown", wall_clock_breakdown, 0,
        DOC(NO_EFFECT, "DeepSpeed's forward/backward/step timers; train warns it is not "
                       "implemented (use --trace)")),
    BOOL("", "memory_breakdown", memory_breakdown, 0,
        DOC(NO_EFFECT, "DeepSpeed's memory printout per step; zerolab's is --memory-report")),
    BOOL("", "dump_state", dump_state, 0,
        DOC(NO_EFFECT, "print the engine's state at start-up")),
    BOOL("", "disable_allgather", disable_allgather, 0,
        DOC(NO_EFFECT, "legacy ZeRO-1 switch")),
    BOOL("", "managed_gradient_accumulation", managed_gradient_accumulation, 1,
        DOC(NO_EFFECT, "whether the engine or the caller manages accumulation; zerolab's engine "
                       "always does")),
    BOOL("", "dataloader_drop_last", dataloader_drop_last, 0,
        DOC(NO_EFFECT, "drop the last partial batch of DeepSpeed's data loader; zerolab samples "
                       "windows")),
    BOOL("", "zero_allow_untested_optimizer", zero_allow_untested_optimizer, 0,
        DOC(NO_EFFECT, "allow ZeRO with a client optimizer; zerolab builds Adam/AdamW only")),
    BOOL("", "zero_force_ds_cpu_optimizer", zero_force_ds_cpu_optimizer, 1,
        DOC(NO_EFFECT, "insist on DeepSpeedCPUAdam with offload; zerolab's host step is that "
                       "arithmetic")),
    ROW("", "vocabulary_size", NULL, ZL__CT_INT, vocabulary_size, 0, .flags = ZL__CF_NULLABLE,
        DOC(NO_EFFECT, "checked for alignment to 8 (a warning), as DeepSpeed does")),
    ROW("", "sequence_parallel_size", NULL, ZL__CT_INT, sequence_parallel_size, 1, .lo = 1,
        .flags = ZL__CF_LO,
        DOC(REFUSED, "Ulysses sequence parallelism degree; above 1 is refused (use "
                     "--sequence-parallel with tensor parallelism)")),

    /* optimizer (type is read by config_blocks.c) */
    BOOL("optimizer", "legacy_fusion", optimizer_legacy_fusion, 0,
        DOC(NO_EFFECT, "legacy fp16 optimizer fusion switch")),
    ROW("optimizer.params", "lr", NULL, ZL__CT_FLOAT, optimizer.lr, 1e-3, .lo = 0,
        .flags = ZL__CF_LO,
        DOC(YES, "learning rate (a schedule overrides it per step)")),
    {.block = "optimizer.params", .key = "betas", .type = ZL__CT_BETAS,
     .off = OFF(optimizer.beta1), .off2 = OFF(optimizer.beta2), .def = 0.9, .def2 = 0.999,
        DOC(YES, "Adam's moment decay rates")},
    ROW("optimizer.params", "eps", NULL, ZL__CT_FLOAT, optimizer.eps, 1e-8, .lo = 0,
        .flags = ZL__CF_LO,
        DOC(YES, "Adam's denominator epsilon")),
    ROW("optimizer.params", "weight_decay", NULL, ZL__CT_FLOAT, optimizer.weight_decay, 0,
        .lo = 0, .flags = ZL__CF_LO,
        DOC(YES, "weight decay, applied to 2-D weights only")),
    BOOL("optimizer.params", "bias_correction", optimizer.bias_correction, 1,
        DOC(YES, "Adam's bias correction of the moments")),
    BOOL("optimizer.params", "adam_w_mode", optimizer.adam_w_mode, 1,
        DOC(YES, "decoupled weight decay (AdamW) rather than L2 in the gradient")),
    BOOL("optimizer.params", "torch_adam", optimizer_torch_adam, 0,
        DOC(YES, "torch.optim's Adam: AdamW's default weight decay becomes 0.01")),

    /* scheduler (type is read by config_blocks.c); defaults as lr_schedules.py's signatures */
    ROW(SP, "warmup_min_lr", NULL, ZL__CT_FLOAT, scheduler.warmup_min_lr, 0,
        .sched_mask = SM(ZL_LR_WARMUP) | SM(ZL_LR_WARMUP_DECAY),
        DOC(YES, "learning rate at the start of warmup")),
    ROW(SP, "warmup_max_lr", NULL, ZL__CT_FLOAT, scheduler.warmup_max_lr, 0.001,
        .sched_mask = SM(ZL_LR_WARMUP) | SM(ZL_LR_WARMUP_DECAY),
        DOC(YES, "learning rate at the end of warmup (default: optimizer lr)")),
    /* Any integer: DeepSpeed's WarmupLR takes max(2, warmup_num_steps). */
    ROW(SP, "warmup_num_steps", NULL, ZL__CT_INT, scheduler.warmup_num_steps, 1000,
        .hi = STEPS_MAX, .flags = ZL__CF_HI, .sched_mask = W_ALL,
        DOC(YES, "steps of warmup (at least 2, as DeepSpeed)")),
    ROW(SP, "warmup_type", NULL, ZL__CT_ENUM, scheduler.warmup_type, 0, .choices = warmup_types,
        .flags = ZL__CF_WARN_FALLBACK, .sched_mask = W_ALL,
        .bad_msg = "Using unknown warmup_type: %s. The increasing function is set to default "
                   "(log)",
        DOC(YES, "warmup curve: \"log\" or \"linear\"; another value warns and uses log")),
    ROW(SP, "total_num_steps", NULL, ZL__CT_INT, scheduler.total_num_steps, -1,
        .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_NULLABLE,
        .sched_mask = SM(ZL_LR_WARMUP_DECAY) | SM(ZL_LR_WARMUP_COSINE),
        DOC(YES, "steps of the whole schedule (decay ends there)")),
    ROW(SP, "warmup_min_ratio", NULL, ZL__CT_FLOAT, scheduler.warmup_min_ratio, 0,
        .sched_mask = SM(ZL_LR_WARMUP_COSINE),
        DOC(YES, "warmup start as a fraction of the optimizer lr")),
    ROW(SP, "cos_min_ratio", NULL, ZL__CT_FLOAT, scheduler.cos_min_ratio, 1e-4,
        .sched_mask = SM(ZL_LR_WARMUP_COSINE),
        DOC(YES, "cosine floor as a fraction of the optimizer lr")),
    ROW(SP, "cycle_min_lr", NULL, ZL__CT_FLOAT, scheduler.cycle_min_lr, NAN,
        .flags = ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "lowest learning rate of the cycle")),
    ROW(SP, "cycle_max_lr", NULL, ZL__CT_FLOAT, scheduler.cycle_max_lr, NAN,
        .flags = ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "highest learning rate of the cycle")),
    ROW(SP, "decay_lr_rate", NULL, ZL__CT_FLOAT, scheduler.decay_lr_rate, 0,
        .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "learning-rate decay after the cycle")),
    ROW(SP, "cycle_first_step_size", NULL, ZL__CT_INT, scheduler.cycle_first_step_size, 2000,
        .lo = 1, .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_LO, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "steps of the rising half of the cycle")),
    ROW(SP, "cycle_second_step_size", NULL, ZL__CT_INT, scheduler.cycle_second_step_size, -1,
        .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "steps of the falling half (None: as the first)")),
    ROW(SP, "cycle_first_stair_count", NULL, ZL__CT_INT, scheduler.cycle_first_stair_count, 0, .hi = STEPS_MAX, .flags = ZL__CF_HI, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "stairs in the rising half (0: continuous)")),
    ROW(SP, "cycle_second_stair_count", NULL, ZL__CT_INT, scheduler.cycle_second_stair_count, -1,
        .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "stairs in the falling half")),
    ROW(SP, "decay_step_size", NULL, ZL__CT_INT, scheduler.decay_step_size, 0, .hi = STEPS_MAX, .flags = ZL__CF_HI, .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "steps between decays after the cycle")),
    ROW(SP, "cycle_momentum", NULL, ZL__CT_BOOL, scheduler.cycle_momentum, 1,
        .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "cycle Adam's beta1 opposite to the learning rate")),
    ROW(SP, "cycle_min_mom", NULL, ZL__CT_FLOAT, scheduler.cycle_min_mom, 0.8,
        .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "lowest momentum of the cycle")),
    ROW(SP, "cycle_max_mom", NULL, ZL__CT_FLOAT, scheduler.cycle_max_mom, 0.9,
        .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "highest momentum of the cycle")),
    ROW(SP, "decay_mom_rate", NULL, ZL__CT_FLOAT, scheduler.decay_mom_rate, 0,
        .sched_mask = SM(ZL_LR_ONE_CYCLE),
        DOC(YES, "momentum decay after the cycle")),
    ROW(SP, "lr_range_test_min_lr", NULL, ZL__CT_FLOAT, scheduler.lr_range_test_min_lr, 1e-3,
        .sched_mask = SM(ZL_LR_RANGE_TEST),
        DOC(YES, "starting learning rate of the range test")),
    ROW(SP, "lr_range_test_step_size", NULL, ZL__CT_INT, scheduler.lr_range_test_step_size, 2000,
        .lo = 1, .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_LO, .sched_mask = SM(ZL_LR_RANGE_TEST),
        DOC(YES, "steps per increase")),
    ROW(SP, "lr_range_test_step_rate", NULL, ZL__CT_FLOAT, scheduler.lr_range_test_step_rate, 1.0,
        .sched_mask = SM(ZL_LR_RANGE_TEST),
        DOC(YES, "increase per step interval")),
    ROW(SP, "lr_range_test_staircase", NULL, ZL__CT_BOOL, scheduler.lr_range_test_staircase, 0,
        .sched_mask = SM(ZL_LR_RANGE_TEST),
        DOC(YES, "increase in stairs rather than continuously")),
    ROW(SP, "last_batch_iteration", NULL, ZL__CT_INT, scheduler_last_batch_iteration, -1,
        .lo = -1, .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_LO, .sched_mask = W_ALL | SM(ZL_LR_ONE_CYCLE) |
                                                    SM(ZL_LR_RANGE_TEST),
        DOC(YES, "the schedule's step before the first (-1: a fresh run)")),

    /* fp16 / bf16 (pydantic) */
    BOOL("fp16", "enabled", fp16.enabled, 0,
        DOC(YES, "train in fp16 with fp32 master weights and loss scaling")),
    BOOL("fp16", "auto_cast", fp16.auto_cast, 0,
        DOC(NO_EFFECT, "cast the model's inputs to fp16; zerolab's inputs are token ids")),
    ROW("fp16", "loss_scale", NULL, ZL__CT_FLOAT, fp16.loss_scale, 0, .lo = 0, .flags = ZL__CF_LO,
        .bad_msg = "fp16.loss_scale must be >= 0 (0 enables dynamic loss scaling), got %s",
        DOC(YES, "static loss scale; 0 means dynamic loss scaling")),
    INT("fp16", "initial_scale_power", fp16.initial_scale_power, 16,
        DOC(YES, "dynamic scaling starts at 2^N")),
    INT("fp16", "loss_scale_window", fp16.loss_scale_window, 1000,
        DOC(YES, "steps without overflow before the scale doubles")),
    INT("fp16", "hysteresis", fp16.hysteresis, 2,
        DOC(YES, "overflows tolerated before the scale halves")),
    BOOL("fp16", "consecutive_hysteresis", fp16.consecutive_hysteresis, 0,
        DOC(YES, "refill the hysteresis on every step without overflow")),
    INT("fp16", "min_loss_scale", fp16.min_loss_scale, 1,
        DOC(YES, "the scale never drops below this")),
    BOOL("fp16", "fp16_master_weights_and_grads", fp16.fp16_master_weights_and_grads, 0,
        DOC(REFUSED, "16-bit master weights and gradients: not built (train and plan refuse it)")),
    BOOL("bf16", "enabled", bf16.enabled, 0,
        DOC(YES, "train in bf16 with fp32 master weights (no loss scaling)")),
    BOOL("bf16", "immediate_grad_update", bf16.immediate_grad_update, 0,
        DOC(NO_EFFECT, "apply each gradient as it arrives (a CUDA memory optimization)")),
    BOOL("bf16", "check_grad_overflow", bf16.check_grad_overflow, 1,
        DOC(YES, "skip the step when a bf16 gradient is inf or NaN")),
    BOOL("bf16", "bf16_master_weights_and_grads", bf16.bf16_master_weights_and_grads, 0,
        DOC(REFUSED, "16-bit master weights and gradients: not built (train and plan refuse it)")),
    BOOL("bf16", "bf16_optimizer_states", bf16.bf16_optimizer_states, 0,
        DOC(REFUSED, "bf16 Adam moments; needs bf16_master_weights_and_grads, which is refused")),

    /* zero_optimization (pydantic; deprecated keys are handled by config_blocks.c) */
    ROW("zero_optimization", "stage", NULL, ZL__CT_INT, zero.stage, 0, .lo = 0, .hi = 3,
        .flags = ZL__CF_LO | ZL__CF_HI,
        .bad_msg = "%s is not a ZeRO stage: DeepSpeed's stages are 0, 1, 2 and 3",
        DOC(YES, "ZeRO stage: 0 none, 1 optimizer states, 2 and gradients, 3 and parameters "
                 "partitioned over the data-parallel ranks")),
    ZB(contiguous_gradients, 1,
        DOC(NO_EFFECT, "copy gradients into one buffer as produced; zerolab's gradients are one "
                       "flat buffer anyway")),
    ZB(reduce_scatter, 1,
        DOC(YES, "reduce gradients with reduce-scatter (stage 1-2) rather than allreduce")),
    UINT("zero_optimization", "reduce_bucket_size", zero.reduce_bucket_size, 5e8,
        DOC(YES, "elements reduced at once (gradient bucket size)")),
    ZB(use_multi_rank_bucket_allreduce, 1,
        DOC(YES, "reduce a bucket in one collective for all ranks' partitions")),
    ZB(allgather_partitions, 1,
        DOC(NO_EFFECT, "allgather the updated partitions (true) or broadcast them; zerolab "
                       "allgathers")),
    UINT("zero_optimization", "allgather_bucket_size", zero.allgather_bucket_size, 5e8,
        DOC(NO_EFFECT, "elements allgathered at once after the step (checked, not used for "
                       "bucketing)")),
    ROW("zero_optimization", "overlap_comm", NULL, ZL__CT_OPTBOOL, zero.overlap_comm, -1,
        DOC(YES, "overlap gradient reduction with backward on the simulated timeline (None: true "
                 "at stage 3 only)")),
    ZB(load_from_fp32_weights, 1,
        DOC(NO_EFFECT, "reload fp32 masters from the checkpoint; zerolab always does")),
    ZB(elastic_checkpoint, 0,
        DOC(NO_EFFECT, "deprecated; warns at stage 3")),
    UINT("zero_optimization", "sub_group_size", zero.sub_group_size, 1e9,
        DOC(YES, "elements per optimizer-step tile (NVMe swapping at stage 3)")),
    S3("prefetch_bucket_size", ZL__CT_INT, zero.prefetch_bucket_size, 5e7, .lo = 0,
       .flags = ZL__CF_LO,
        DOC(YES, "stage 3: elements prefetched ahead of use")),
    S3("param_persistence_threshold", ZL__CT_INT, zero.param_persistence_threshold, 1e5,
       .lo = 0, .flags = ZL__CF_LO,
        DOC(YES, "stage 3: parameters smaller than this stay gathered")),
    /* sys.maxsize: set_defaults maps this to INT64_MAX exactly. */
    S3("model_persistence_threshold", ZL__CT_INT, zero.model_persistence_threshold, 9.3e18,
       .lo = 0, .flags = ZL__CF_LO,
        DOC(NO_EFFECT, "stage 3: cap on persistent parameters in total")),
    S3("max_live_parameters", ZL__CT_INT, zero.max_live_parameters, 1e9, .lo = 0,
       .flags = ZL__CF_LO,
        DOC(YES, "stage 3: most gathered elements at once")),
    S3("max_reuse_distance", ZL__CT_INT, zero.max_reuse_distance, 1e9, .lo = 0,
       .flags = ZL__CF_LO,
        DOC(YES, "stage 3: keep a gathered parameter if reused within this many elements")),
    S3("gather_16bit_weights_on_model_save", ZL__CT_BOOL, zero.gather_16bit_weights_on_model_save,
       0,
        DOC(NO_EFFECT, "stage 3: gather 16-bit weights on save_16bit_model; use zerolab ckpt to "
                       "consolidate")),
    S3("module_granularity_threshold", ZL__CT_INT, zero.module_granularity_threshold, 0,
        DOC(NO_EFFECT, "stage 3: fetch small modules as one")),
    S3("use_all_reduce_for_fetch_params", ZL__CT_BOOL, zero.use_all_reduce_for_fetch_params, 0,
        DOC(NO_EFFECT, "stage 3: fetch with allreduce instead of allgather")),
    S3("allgather_sequential", ZL__CT_BOOL, zero.allgather_sequential, 0,
        DOC(NO_EFFECT, "stage 3: one allgather per parameter, in order")),
    S3("partition_stream_chunk_size", ZL__CT_INT, zero.partition_stream_chunk_size, 0, .lo = 0,
       .flags = ZL__CF_LO,
        DOC(NO_EFFECT, "stage 3: chunking of partitioning on a side stream")),
    ZB(ignore_unused_parameters, 1,
        DOC(NO_EFFECT, "tolerate parameters without gradients; every zerolab parameter has one")),
    ZB(round_robin_gradients, 0,
        DOC(NO_EFFECT, "stage 1-2 offload: round-robin gradient copies to the host")),
    UINT("zero_optimization", "zero_hpz_partition_size", zero.zero_hpz_partition_size, 1,
        DOC(REFUSED, "ZeRO++ hierarchical partitioning; above 1 is refused")),
    ZB(zero_quantized_weights, 0,
        DOC(REFUSED, "ZeRO++ quantized weights; true is refused")),
    ZB(zero_quantized_nontrainable_weights, 0,
        DOC(REFUSED, "ZeRO++ quantized frozen weights; true is refused")),
    ZB(zero_quantized_gradients, 0,
        DOC(REFUSED, "ZeRO++ quantized gradients; true is refused")),
    INT("zero_optimization", "mics_shard_size", zero.mics_shard_size, -1,
        DOC(REFUSED, "MiCS shard group size; a positive value is refused")),
    ZB(mics_hierarchical_params_gather, 0,
        DOC(REFUSED, "MiCS hierarchical gather; true is refused")),
    ZB(memory_efficient_linear, 1,
        DOC(NO_EFFECT, "stage 3: memory-efficient linear layer autograd function")),
    ZB(pipeline_loading_checkpoint, 0,
        DOC(NO_EFFECT, "stage 3: load checkpoints through the pipeline")),
    ZB(override_module_apply, 1,
        DOC(NO_EFFECT, "stage 3: wrap nn.Module.apply to gather parameters")),
    ZB(log_trace_cache_warnings, 0,
        DOC(NO_EFFECT, "stage 3: log trace-cache invalidations")),
    ZB(enable_sanity_checks, 0,
        DOC(NO_EFFECT, "stage 3: extra runtime assertions")),
    ZB(save_muon_momentum_buffer_in_memory, 0,
        DOC(NO_EFFECT, "Muon optimizer buffers; Muon is not built")),
    ENUM(OO, "device", zero.offload_optimizer.device, 0, devices,
        DOC(YES, "where the optimizer state and step live: \"none\", \"cpu\", or \"nvme\" (swap "
                 "files at stage 3; the CPU at stages 1-2)")),
    STR(OO, "nvme_path", zero.offload_optimizer.nvme_path, NULL,
        DOC(YES, "directory of the optimizer swap files (needed with nvme at stage 3)")),
    UINT(OO, "buffer_count", zero.offload_optimizer.buffer_count, 4,
        DOC(YES, "NVMe: floor of the swap buffer pool")),
    BOOL(OO, "pin_memory", zero.offload_optimizer.pin_memory, 1,
        DOC(YES, "lock the host buffers in memory")),
    BOOL(OO, "pipeline_read", zero.offload_optimizer.pipeline_read, 0,
        DOC(YES, "NVMe: read the next sub-group during the step")),
    BOOL(OO, "pipeline_write", zero.offload_optimizer.pipeline_write, 0,
        DOC(YES, "NVMe: write the previous sub-group during the step")),
    BOOL(OO, "fast_init", zero.offload_optimizer.fast_init, 0,
        DOC(NO_EFFECT, "faster NVMe swap-file initialization")),
    ROW(OO, "ratio", NULL, ZL__CT_FLOAT, zero.offload_optimizer.ratio, 1.0, .lo = 0, .hi = 1,
        .flags = ZL__CF_LO | ZL__CF_HI,
        DOC(PARTLY, "fraction of the optimizer offloaded; only 1.0 (all) is built, below 1 is "
                    "refused")),
    BOOL(OO, "super_offload", zero.offload_optimizer.super_offload, 0,
        DOC(REFUSED, "SuperOffload; true is refused")),
    BOOL(OO, "convert_grad_on_cpu", zero.offload_optimizer.convert_grad_on_cpu, 1,
        DOC(NO_EFFECT, "convert gradients to fp32 on the host rather than the device")),
    ROW(OO, "cpuadam_cores_perc", NULL, ZL__CT_FLOAT, zero.offload_optimizer.cpuadam_cores_perc,
        0.8, .lo = 0, .hi = 1, .flags = ZL__CF_LO | ZL__CF_HI,
        DOC(NO_EFFECT, "share of cores for CPU Adam; zerolab uses its --threads")),
    ENUM(OP, "device", zero.offload_param.device, 0, devices,
        DOC(YES, "stage 3: where parameter shards live: \"none\", \"cpu\" or \"nvme\" (ignored "
                 "below stage 3, with a warning)")),
    STR(OP, "nvme_path", zero.offload_param.nvme_path, NULL,
        DOC(YES, "directory of the parameter swap files (needed with nvme)")),
    UINT(OP, "buffer_count", zero.offload_param.buffer_count, 5,
        DOC(YES, "NVMe: parameter swap buffers")),
    UINT(OP, "buffer_size", zero.offload_param.buffer_size, 1e8,
        DOC(YES, "NVMe: elements per parameter swap buffer")),
    UINT(OP, "max_in_cpu", zero.offload_param.max_in_cpu, 1e9,
        DOC(YES, "NVMe: elements of the shard kept in host memory instead of files")),
    BOOL(OP, "pin_memory", zero.offload_param.pin_memory, 1,
        DOC(YES, "lock the host buffers in memory")),

    /* aio (plain dict) */
    UINT("aio", "block_size", aio.block_size, 1048576,
        DOC(YES, "bytes per asynchronous I/O request (a multiple of 4096)")),
    UINT("aio", "queue_depth", aio.queue_depth, 8,
        DOC(YES, "I/O requests in flight")),
    ROW("aio", "intra_op_parallelism", NULL, ZL__CT_INT, aio.intra_op_parallelism, 1, .lo = 1,
        .flags = ZL__CF_LO,
        DOC(YES, "I/O threads per operation")),
    BOOL("aio", "single_submit", aio.single_submit, 0,
        DOC(YES, "submit requests one at a time")),
    BOOL("aio", "overlap_events", aio.overlap_events, 1,
        DOC(YES, "overlap submission with completion")),
    BOOL("aio", "use_gds", aio.use_gds, 0,
        DOC(REFUSED, "GPUDirect Storage; true is refused")),

    /* activation_checkpointing (plain dict) */
    BOOL("activation_checkpointing", "partition_activations",
         activation_checkpointing.partition_activations, 0,
        DOC(NO_EFFECT, "partition checkpoints across model-parallel ranks (warns: nothing to "
                       "partition)")),
    BOOL("activation_checkpointing", "contiguous_memory_optimization",
         activation_checkpointing.contiguous_memory_optimization, 0,
        DOC(NO_EFFECT, "one buffer for the checkpoints, which zerolab's already are")),
    BOOL("activation_checkpointing", "cpu_checkpointing",
         activation_checkpointing.cpu_checkpointing, 0,
        DOC(YES, "keep the checkpointed segment inputs in host memory")),
    ROW("activation_checkpointing", "number_checkpoints", NULL, ZL__CT_INT,
        activation_checkpointing.number_checkpoints, 0, .lo = 1,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE,
        DOC(NO_EFFECT, "number of checkpoints; follows from the interval")),
    BOOL("activation_checkpointing", "synchronize_checkpoint_boundary",
         activation_checkpointing.synchronize_checkpoint_boundary, 0,
        DOC(NO_EFFECT, "a CUDA synchronize at each boundary")),
    BOOL("activation_checkpointing", "profile", activation_checkpointing.profile, 0,
        DOC(YES, "log each segment's forward, recompute and backward time (--verbose)")),

    /* pipeline (plain dict) */
    /* tensor_parallel (pydantic): AutoTP's size; its other keys tune AutoTP's injection */
    ROW("tensor_parallel", "autotp_size", NULL, ZL__CT_INT, tensor_parallel.autotp_size, 0, .lo = 0,
        .flags = ZL__CF_LO,
        DOC(YES, "tensor-parallel degree: every block split over T neighbouring ranks (as "
                 "--tensor-parallel)")),
    ROW("pipeline", "stages", NULL, ZL__CT_INT, pipeline.stages, 0, .lo = 1,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE | ZL__CF_AUTO_NONE,
        DOC(YES, "pipeline stages, one rank each, 1F1B schedule (as --pipeline-stages); refused "
                 "with ZeRO 2-3")),
    ROW("pipeline", "partition", NULL, ZL__CT_STR, pipeline.partition, 0, .def_str = "best",
        DOC(PARTLY, "how layers are cut into stages: \"parameters\"/\"best\", \"uniform\", "
                    "\"type:REGEX\" or boundaries; \"profile\" is refused")),
    BOOL("pipeline", "seed_layers", pipeline.seed_layers, 0,
        DOC(NO_EFFECT, "per-layer seeds; zerolab has no dropout")),
    UINT("pipeline", "activation_checkpoint_interval", pipeline.activation_checkpoint_interval, 0,
        DOC(YES, "checkpoint activations in segments of N layers (0: off; as "
                 "--checkpoint-activations)")),
    BOOL("pipeline", "pipe_partitioned", pipeline.pipe_partitioned, 1,
        DOC(NO_EFFECT, "partition activations sent between stages over tensor-parallel ranks")),
    BOOL("pipeline", "grad_partitioned", pipeline.grad_partitioned, 1,
        DOC(NO_EFFECT, "partition gradients sent between stages over tensor-parallel ranks")),
    BOOL("pipeline", "use_reentrant", pipeline.use_reentrant, 1,
        DOC(NO_EFFECT, "reentrant checkpointing in PyTorch")),

    /* checkpoint (plain dict) */
    ENUM("checkpoint", "tag_validation", checkpoint.tag_validation, 0, tag_modes,
         .flags = ZL__CF_NOCASE,
         .bad_msg = "Checkpoint config contains invalid tag_validation value of %s, expecting one "
                    "of ['WARN', 'IGNORE', 'FAIL']",
        DOC(YES, "compare the checkpoint tag across ranks: \"WARN\", \"IGNORE\" or \"FAIL\"")),
    BOOL("checkpoint", "load_universal", checkpoint.load_universal, 0,
        DOC(YES, "load a universal checkpoint")),
    BOOL("checkpoint", "use_node_local_storage", checkpoint.use_node_local_storage, 0,
        DOC(YES, "each node saves its own copy of the shared files")),
    BOOL("checkpoint", "checkpoint_serialization", checkpoint.checkpoint_serialization, 1,
        DOC(NO_EFFECT, "torch serialization format")),
    BOOL("checkpoint.parallel_write", "pipeline_stage", checkpoint.parallel_write_pipeline_stage,
         0,
        DOC(NO_EFFECT, "write pipeline stages in parallel")),
    STR("checkpoint.writer", "type", checkpoint.writer_type, NULL,
        DOC(NO_EFFECT, "DeepSpeed's checkpoint writer engine")),

    /* flops_profiler (plain dict) */
    BOOL("flops_profiler", "enabled", flops_profiler.enabled, 0,
        DOC(NO_EFFECT, "the flops profiler; train warns it is not implemented (zerolab plan "
                       "counts FLOPs)")),
    FLT("flops_profiler", "recompute_fwd_factor", flops_profiler.recompute_fwd_factor, 0,
        DOC(NO_EFFECT, "forward FLOPs counted again for recomputation")),
    INT("flops_profiler", "profile_step", flops_profiler.profile_step, 1,
        DOC(NO_EFFECT, "step the profiler runs at")),
    INT("flops_profiler", "module_depth", flops_profiler.module_depth, -1,
        DOC(NO_EFFECT, "module depth of the report (-1: all)")),
    INT("flops_profiler", "top_modules", flops_profiler.top_modules, 1,
        DOC(NO_EFFECT, "modules listed per depth")),
    BOOL("flops_profiler", "detailed", flops_profiler.detailed, 1,
        DOC(NO_EFFECT, "per-module detail")),
    STR("flops_profiler", "output_file", flops_profiler.output_file, NULL,
        DOC(NO_EFFECT, "file for the report (None: stdout)")),

    /* comms_logger and monitors (pydantic) */
    BOOL("comms_logger", "enabled", comms_logger.enabled, 0,
        DOC(YES, "print a summary of every collective (count, size, time) at the end of train")),
    BOOL("comms_logger", "verbose", comms_logger.verbose, 0,
        DOC(YES, "print each collective as it happens (rank 0)")),
    BOOL("comms_logger", "prof_all", comms_logger.prof_all, 1,
        DOC(YES, "log every collective (false: only prof_ops)")),
    BOOL("comms_logger", "debug", comms_logger.debug, 0,
        DOC(NO_EFFECT, "add the caller's name to each entry")),
    ROW("comms_logger", "prof_ops", NULL, ZL__CT_STRLIST, comms_logger.prof_ops, 0,
        DOC(YES, "collectives to log when prof_all is false")),
    BOOL("tensorboard", "enabled", tensorboard.enabled, 0,
        DOC(NO_EFFECT, "TensorBoard monitor; train warns it is not implemented")),
    ROW("tensorboard", "output_path", NULL, ZL__CT_STR, tensorboard.output_path, 0, .def_str = "",
        DOC(NO_EFFECT, "TensorBoard log directory")),
    ROW("tensorboard", "job_name", NULL, ZL__CT_STR, tensorboard.job_name, 0,
        .def_str = "DeepSpeedJobName",
        DOC(NO_EFFECT, "TensorBoard run name")),
    BOOL("csv_monitor", "enabled", csv_monitor.enabled, 0,
        DOC(NO_EFFECT, "CSV monitor; train warns it is not implemented")),
    ROW("csv_monitor", "output_path", NULL, ZL__CT_STR, csv_monitor.output_path, 0, .def_str = "",
        DOC(NO_EFFECT, "CSV monitor directory")),
    ROW("csv_monitor", "job_name", NULL, ZL__CT_STR, csv_monitor.job_name, 0,
        .def_str = "DeepSpeedJobName",
        DOC(NO_EFFECT, "CSV monitor run name")),
    BOOL("wandb", "enabled", wandb.enabled, 0,
        DOC(NO_EFFECT, "Weights & Biases monitor; train warns it is not implemented")),
    STR("wandb", "group", wandb.group, NULL,
        DOC(NO_EFFECT, "W&B group")),
    STR("wandb", "team", wandb.team, NULL,
        DOC(NO_EFFECT, "W&B team")),
    ROW("wandb", "project", NULL, ZL__CT_STR, wandb.project, 0, .def_str = "deepspeed",
        DOC(NO_EFFECT, "W&B project")),
    BOOL("comet", "enabled", comet.enabled, 0,
        DOC(NO_EFFECT, "Comet monitor; train warns it is not implemented")),
    INT("comet", "samples_log_interval", comet.samples_log_interval, 100,
        DOC(NO_EFFECT, "samples between Comet logs")),
    STR("comet", "project", comet.project, NULL,
        DOC(NO_EFFECT, "Comet project")),
    STR("comet", "workspace", comet.workspace, NULL,
        DOC(NO_EFFECT, "Comet workspace")),
    ROW("comet", "api_key", NULL, ZL__CT_STR, comet.api_key, 0,
        .flags = ZL__CF_NULLABLE | ZL__CF_SECRET,
        DOC(NO_EFFECT, "Comet API key (never printed)")),
    STR("comet", "experiment_name", comet.experiment_name, NULL,
        DOC(NO_EFFECT, "Comet experiment name")),
    STR("comet", "experiment_key", comet.experiment_key, NULL,
        DOC(NO_EFFECT, "Comet experiment key")),
    ROW("comet", "online", NULL, ZL__CT_OPTBOOL, comet.online, -1,
        DOC(NO_EFFECT, "Comet online mode")),
    STR("comet", "mode", comet.mode, NULL,
        DOC(NO_EFFECT, "Comet mode")),

    /* timers, data_types */
    BOOL("timers.throughput", "enabled", throughput_timer_enabled, 1,
        DOC(NO_EFFECT, "DeepSpeed's throughput timer")),
    BOOL("timers.throughput", "synchronized", throughput_timer_synchronized, 1,
        DOC(NO_EFFECT, "synchronize the device around the timer")),
    ENUM("data_types", "grad_accum_dtype", grad_accum_dtype, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE,
        DOC(PARTLY, "type gradients accumulate in: the model's type (None) or \"fp32\"; another "
                    "type is refused")),
    ENUM("data_types", "param_dtype", param_dtype, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE,
        DOC(NO_EFFECT, "parameter type for DeepCompile")),
    ENUM("data_types", "buffer_dtype", buffer_dtype, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE,
        DOC(NO_EFFECT, "buffer type for DeepCompile")),

    /* zerolab's own block: unset unless given, so the CLI can fill in its defaults. */
    STR("zerolab", "model", zerolab.model, NULL,
        DOC(YES, "model preset or model JSON (as --model)")),
    ENUM("zerolab", "backend", zerolab.backend, -1, backends, .flags = ZL__CF_NULLABLE,
        DOC(YES, "kernels: \"ref\" (naive loops), \"cpu\" (BLAS, OpenMP), \"cuda\", or \"discrete\" (ref's kernels with a GPU's memory rules, a test backend) (as --backend)")),
    ROW("zerolab", "seed", NULL, ZL__CT_INT, zerolab.seed, -1, .lo = 0,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE,
        DOC(YES, "parameter initialisation seed (as --seed)")),
    STR("zerolab", "data", zerolab.data, NULL,
        DOC(YES, "training text or llm.c token shard (as --data)")),
    ROW("zerolab", "steps", NULL, ZL__CT_INT, zerolab.steps, 0, .lo = 1, .hi = INT_MAX,
        .flags = ZL__CF_LO | ZL__CF_HI | ZL__CF_NULLABLE,
        DOC(YES, "optimizer steps (as --steps)")), /* as --steps */
    STR("zerolab", "device", zerolab.device, NULL,
        DOC(YES, "the GPU preset every rank impersonates (as --device)")),
    STR("zerolab", "cluster", zerolab.cluster, NULL,
        DOC(YES, "nodes x GPUs x preset the ranks form (as --cluster)")),
    ROW("zerolab", "checkpoint_activations", NULL, ZL__CT_INT, zerolab.checkpoint_activations, 0,
        .lo = 1, .hi = INT_MAX, .flags = ZL__CF_LO | ZL__CF_HI | ZL__CF_NULLABLE,
        DOC(YES, "activation checkpointing's layers per segment (as --checkpoint-activations)")),
};

const int zl__cfg_ntable = (int)(sizeof zl__cfg_table / sizeof zl__cfg_table[0]);
_Static_assert(sizeof zl__cfg_table / sizeof zl__cfg_table[0] <= ZL_CONFIG_MAX_SETTINGS,
               "raise ZL_CONFIG_MAX_SETTINGS");

/* allgather_size is only read by the legacy "zero_optimization": true form. */
static const char *const top_extra[] = {"zero_optimization", "optimizer", "scheduler", "bfloat16",
                                        "allgather_size", NULL};
static const char *const zero_extra[] = {
    "cpu_offload", "cpu_offload_param", "cpu_offload_use_pin_memory",
    "stage3_gather_fp16_weights_on_model_save", "legacy_stage1", "zeropp_loco_param", "zenflow",
    "leaf_module", NULL};
static const char *const aio_extra[] = {"thread_count", NULL};
static const char *const optimizer_extra[] = {"type", "params", NULL};
static const char *const params_extra[] = {"max_grad_norm", "amsgrad", "set_grad_none",
                                           "fp32_optimizer_states", NULL};
static const char *const scheduler_extra[] = {"type", "params", NULL};
/* I/O tuning of DeepSpeed's checkpoint writers: no effect on what zerolab writes. */
static const char *const writer_extra[] = {"decoupled", "io_buffer_size", "io_buffer_double",
                                           "show_statistics", "data_parallel", NULL};

/* AutoTP's other fields (runtime/tensor_parallel/config.py): how it finds and shards a
 * Hugging Face model's layers, which zerolab's own layers make moot. */
static const char *const tp_extra[] = {"dtype", "tp_overlap_comm", "tensor_parallel",
                                       "injection_policy_tuple", "keep_module_on_host",
                                       "replace_with_kernel_inject", "partition_config",
                                       "preset_model", NULL};

/* strict = DeepSpeed validates the block with pydantic (extra="forbid") or passes it to a
 * constructor as keyword arguments (optimizer and scheduler params). */
const zl__cfg_block zl__cfg_blocks[] = {
    {"", false, top_extra},
    {"fp16", true, NULL},
    {"bf16", true, NULL},
    {"zero_optimization", true, zero_extra},
    {OO, true, NULL},
    {OP, true, NULL},
    {"aio", false, aio_extra},
    {"activation_checkpointing", false, NULL},
    {"pipeline", false, NULL},
    {"tensor_parallel", true, tp_extra},
    {"checkpoint", false, NULL},
    {"checkpoint.parallel_write", false, NULL},
    {"checkpoint.writer", false, writer_extra},
    {"flops_profiler", false, NULL},
    {"comms_logger", true, NULL},
    {"tensorboard", true, NULL},
    {"csv_monitor", true, NULL},
    {"wandb", true, NULL},
    {"comet", true, NULL},
    {"timers", false, NULL},
    {"timers.throughput", true, NULL},
    {"data_types", false, NULL},
    {"zerolab", true, NULL},
    {"optimizer", false, optimizer_extra},
    {"optimizer.params", true, params_extra},
    {"scheduler", false, scheduler_extra},
    {"scheduler.params", true, NULL},
};
const int zl__cfg_nblocks = (int)(sizeof zl__cfg_blocks / sizeof zl__cfg_blocks[0]);

/* DeepSpeed features zerolab does not implement. Present-but-off is fine; on is an error. */
const zl__cfg_unsupported zl__cfg_unsupported_keys[] = {
    {"elasticity", ZL__UNSUP_ENABLED, "elastic training"},
    {"compression_training", ZL__UNSUP_ENABLED, "compression training"},
    {"quantize_training", ZL__UNSUP_ENABLED, "MoQ quantized training"},
    {"weight_quantization", ZL__UNSUP_NONEMPTY, "weight quantization"},
    {"sparse_attention", ZL__UNSUP_NONEMPTY, "sparse attention"},
    {"curriculum_learning", ZL__UNSUP_ENABLED, "curriculum learning"},
    {"data_efficiency", ZL__UNSUP_ENABLED, "data efficiency (data sampling / routing)"},
    {"autotuning", ZL__UNSUP_ENABLED, "autotuning"},
    {"hybrid_engine", ZL__UNSUP_ENABLED, "the hybrid engine (RLHF)"},
    {"compile", ZL__UNSUP_ENABLED, "torch.compile / DeepCompile"},
    {"expert_parallel", ZL__UNSUP_NONEMPTY, "expert parallelism (AutoEP / MoE)"},
    {"amp", ZL__UNSUP_ENABLED, "Apex AMP"},
    {"torch_autocast", ZL__UNSUP_ENABLED, "torch.autocast mixed precision"},
    {"eigenvalue", ZL__UNSUP_ENABLED, "eigenvalue computation"},
    {"progressive_layer_drop", ZL__UNSUP_ENABLED, "progressive layer drop"},
    {"nebula", ZL__UNSUP_ENABLED, "Nebula checkpointing"},
    {"datastates", ZL__UNSUP_ENABLED, "DataStates checkpointing"},
    {"trackio", ZL__UNSUP_ENABLED, "the Trackio monitor"},
    {"sparse_gradients", ZL__UNSUP_TRUE, "sparse (CSR) embedding gradients"},
    {"graph_harvesting", ZL__UNSUP_TRUE, "CUDA graph harvesting"},
};
const int zl__cfg_nunsupported =
    (int)(sizeof zl__cfg_unsupported_keys / sizeof zl__cfg_unsupported_keys[0]);

/* Read by DeepSpeed, no effect on training in zerolab (logging verbosity, MoE group order). */
const char *const zl__cfg_other_top_keys[] = {"log_level", "use_data_before_expert_parallelism",
                                              NULL};
