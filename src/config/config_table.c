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
#define BOOL(blk, k, m, d) ROW(blk, k, NULL, ZL__CT_BOOL, m, d)
#define INT(blk, k, m, d) ROW(blk, k, NULL, ZL__CT_INT, m, d)
#define UINT(blk, k, m, d) ROW(blk, k, NULL, ZL__CT_INT, m, d, .lo = 0, .flags = ZL__CF_LO)
#define FLT(blk, k, m, d) ROW(blk, k, NULL, ZL__CT_FLOAT, m, d)
#define STR(blk, k, m, s) \
    ROW(blk, k, NULL, ZL__CT_STR, m, 0, .def_str = s, .flags = ZL__CF_NULLABLE)
#define ENUM(blk, k, m, d, ch, ...) ROW(blk, k, NULL, ZL__CT_ENUM, m, d, .choices = ch, __VA_ARGS__)
/* stage-3 keys: DeepSpeed documents "stage3_x"; the pydantic field name "x" is accepted. */
#define S3(k, t, m, d, ...) ROW("zero_optimization", "stage3_" k, k, t, m, d, __VA_ARGS__)
#define ZB(k, d) BOOL("zero_optimization", #k, zero.k, d)
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
static const char *const backends[] = {"ref", "cpu", "cuda", NULL};
static const char *const warmup_types[] = {"log", "linear", NULL};

const zl__cfg_entry zl__cfg_table[] = {
    /* Batch triad: null and "auto" mean "not given" (then inferred). */
    /* Batch triad: null and "auto" mean "not given" (then inferred). The micro batch and the
     * accumulation steps land in the engine's int; values <= 0 get DeepSpeed's own
     * "has to be greater than 0" once the triad is resolved. */
    ROW("", "train_batch_size", NULL, ZL__CT_INT, train_batch_size, 0, .flags = ZL__CF_NULL_UNSET),
    ROW("", "train_micro_batch_size_per_gpu", NULL, ZL__CT_INT, train_micro_batch_size_per_gpu, 0,
        .hi = INT_MAX, .flags = ZL__CF_NULL_UNSET | ZL__CF_HI, .bad_msg = TRIAD_RANGE),
    ROW("", "gradient_accumulation_steps", NULL, ZL__CT_INT, gradient_accumulation_steps, 0,
        .hi = INT_MAX, .flags = ZL__CF_NULL_UNSET | ZL__CF_HI, .bad_msg = TRIAD_RANGE),
    /* DeepSpeed never checks steps_per_print; 0 would divide by zero in its engine. */
    ROW("", "steps_per_print", NULL, ZL__CT_INT, steps_per_print, 0, .lo = 1,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE,
        .bad_msg = "steps_per_print must be a positive number of steps, got %s (use null or "
                   "omit it to never print)"),
    ROW("", "gradient_clipping", NULL, ZL__CT_FLOAT, gradient_clipping, 1.0, .lo = 0,
        .flags = ZL__CF_LO),
    BOOL("", "prescale_gradients", prescale_gradients, 0),
    FLT("", "gradient_predivide_factor", gradient_predivide_factor, 1.0),
    ENUM("", "communication_data_type", communication_data_type, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE,
         .bad_msg = "Invalid communication_data_type. Supported data types: ['fp16', 'bf16', "
                    "'fp32']. Got: %s"),
    ENUM("", "seq_parallel_comm_data_type", seq_parallel_comm_data_type, 0, dtypes,
         .flags = ZL__CF_NOCASE),
    ENUM("", "gradient_allreduce_op", gradient_allreduce_op, 0, reduce_ops, .flags = ZL__CF_NOCASE,
         .bad_msg = "Invalid gradient_allreduce_op. Supported operations: ['mean', 'sum']. Got: "
                    "'%s'"),
    BOOL("", "wall_clock_breakdown", wall_clock_breakdown, 0),
    BOOL("", "memory_breakdown", memory_breakdown, 0),
    BOOL("", "dump_state", dump_state, 0),
    BOOL("", "disable_allgather", disable_allgather, 0),
    BOOL("", "managed_gradient_accumulation", managed_gradient_accumulation, 1),
    BOOL("", "dataloader_drop_last", dataloader_drop_last, 0),
    BOOL("", "zero_allow_untested_optimizer", zero_allow_untested_optimizer, 0),
    BOOL("", "zero_force_ds_cpu_optimizer", zero_force_ds_cpu_optimizer, 1),
    ROW("", "vocabulary_size", NULL, ZL__CT_INT, vocabulary_size, 0, .flags = ZL__CF_NULLABLE),
    ROW("", "sequence_parallel_size", NULL, ZL__CT_INT, sequence_parallel_size, 1, .lo = 1,
        .flags = ZL__CF_LO),

    /* optimizer (type is read by config_blocks.c) */
    BOOL("optimizer", "legacy_fusion", optimizer_legacy_fusion, 0),
    ROW("optimizer.params", "lr", NULL, ZL__CT_FLOAT, optimizer.lr, 1e-3, .lo = 0,
        .flags = ZL__CF_LO),
    {.block = "optimizer.params", .key = "betas", .type = ZL__CT_BETAS,
     .off = OFF(optimizer.beta1), .off2 = OFF(optimizer.beta2), .def = 0.9, .def2 = 0.999},
    ROW("optimizer.params", "eps", NULL, ZL__CT_FLOAT, optimizer.eps, 1e-8, .lo = 0,
        .flags = ZL__CF_LO),
    ROW("optimizer.params", "weight_decay", NULL, ZL__CT_FLOAT, optimizer.weight_decay, 0,
        .lo = 0, .flags = ZL__CF_LO),
    BOOL("optimizer.params", "bias_correction", optimizer.bias_correction, 1),
    BOOL("optimizer.params", "adam_w_mode", optimizer.adam_w_mode, 1),
    BOOL("optimizer.params", "torch_adam", optimizer_torch_adam, 0),

    /* scheduler (type is read by config_blocks.c); defaults as lr_schedules.py's signatures */
    ROW(SP, "warmup_min_lr", NULL, ZL__CT_FLOAT, scheduler.warmup_min_lr, 0,
        .sched_mask = SM(ZL_LR_WARMUP) | SM(ZL_LR_WARMUP_DECAY)),
    ROW(SP, "warmup_max_lr", NULL, ZL__CT_FLOAT, scheduler.warmup_max_lr, 0.001,
        .sched_mask = SM(ZL_LR_WARMUP) | SM(ZL_LR_WARMUP_DECAY)),
    /* Any integer: DeepSpeed's WarmupLR takes max(2, warmup_num_steps). */
    ROW(SP, "warmup_num_steps", NULL, ZL__CT_INT, scheduler.warmup_num_steps, 1000,
        .hi = STEPS_MAX, .flags = ZL__CF_HI, .sched_mask = W_ALL),
    ROW(SP, "warmup_type", NULL, ZL__CT_ENUM, scheduler.warmup_type, 0, .choices = warmup_types,
        .flags = ZL__CF_WARN_FALLBACK, .sched_mask = W_ALL,
        .bad_msg = "Using unknown warmup_type: %s. The increasing function is set to default "
                   "(log)"),
    ROW(SP, "total_num_steps", NULL, ZL__CT_INT, scheduler.total_num_steps, -1,
        .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_NULLABLE,
        .sched_mask = SM(ZL_LR_WARMUP_DECAY) | SM(ZL_LR_WARMUP_COSINE)),
    ROW(SP, "warmup_min_ratio", NULL, ZL__CT_FLOAT, scheduler.warmup_min_ratio, 0,
        .sched_mask = SM(ZL_LR_WARMUP_COSINE)),
    ROW(SP, "cos_min_ratio", NULL, ZL__CT_FLOAT, scheduler.cos_min_ratio, 1e-4,
        .sched_mask = SM(ZL_LR_WARMUP_COSINE)),
    ROW(SP, "cycle_min_lr", NULL, ZL__CT_FLOAT, scheduler.cycle_min_lr, NAN,
        .flags = ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_max_lr", NULL, ZL__CT_FLOAT, scheduler.cycle_max_lr, NAN,
        .flags = ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "decay_lr_rate", NULL, ZL__CT_FLOAT, scheduler.decay_lr_rate, 0,
        .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_first_step_size", NULL, ZL__CT_INT, scheduler.cycle_first_step_size, 2000,
        .lo = 1, .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_LO, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_second_step_size", NULL, ZL__CT_INT, scheduler.cycle_second_step_size, -1,
        .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_first_stair_count", NULL, ZL__CT_INT, scheduler.cycle_first_stair_count, 0, .hi = STEPS_MAX, .flags = ZL__CF_HI, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_second_stair_count", NULL, ZL__CT_INT, scheduler.cycle_second_stair_count, -1,
        .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_NULLABLE, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "decay_step_size", NULL, ZL__CT_INT, scheduler.decay_step_size, 0, .hi = STEPS_MAX, .flags = ZL__CF_HI, .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_momentum", NULL, ZL__CT_BOOL, scheduler.cycle_momentum, 1,
        .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_min_mom", NULL, ZL__CT_FLOAT, scheduler.cycle_min_mom, 0.8,
        .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "cycle_max_mom", NULL, ZL__CT_FLOAT, scheduler.cycle_max_mom, 0.9,
        .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "decay_mom_rate", NULL, ZL__CT_FLOAT, scheduler.decay_mom_rate, 0,
        .sched_mask = SM(ZL_LR_ONE_CYCLE)),
    ROW(SP, "lr_range_test_min_lr", NULL, ZL__CT_FLOAT, scheduler.lr_range_test_min_lr, 1e-3,
        .sched_mask = SM(ZL_LR_RANGE_TEST)),
    ROW(SP, "lr_range_test_step_size", NULL, ZL__CT_INT, scheduler.lr_range_test_step_size, 2000,
        .lo = 1, .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_LO, .sched_mask = SM(ZL_LR_RANGE_TEST)),
    ROW(SP, "lr_range_test_step_rate", NULL, ZL__CT_FLOAT, scheduler.lr_range_test_step_rate, 1.0,
        .sched_mask = SM(ZL_LR_RANGE_TEST)),
    ROW(SP, "lr_range_test_staircase", NULL, ZL__CT_BOOL, scheduler.lr_range_test_staircase, 0,
        .sched_mask = SM(ZL_LR_RANGE_TEST)),
    ROW(SP, "last_batch_iteration", NULL, ZL__CT_INT, scheduler_last_batch_iteration, -1,
        .lo = -1, .hi = STEPS_MAX, .flags = ZL__CF_HI | ZL__CF_LO, .sched_mask = W_ALL | SM(ZL_LR_ONE_CYCLE) |
                                                    SM(ZL_LR_RANGE_TEST)),

    /* fp16 / bf16 (pydantic) */
    BOOL("fp16", "enabled", fp16.enabled, 0),
    BOOL("fp16", "auto_cast", fp16.auto_cast, 0),
    ROW("fp16", "loss_scale", NULL, ZL__CT_FLOAT, fp16.loss_scale, 0, .lo = 0, .flags = ZL__CF_LO,
        .bad_msg = "fp16.loss_scale must be >= 0 (0 enables dynamic loss scaling), got %s"),
    INT("fp16", "initial_scale_power", fp16.initial_scale_power, 16),
    INT("fp16", "loss_scale_window", fp16.loss_scale_window, 1000),
    INT("fp16", "hysteresis", fp16.hysteresis, 2),
    BOOL("fp16", "consecutive_hysteresis", fp16.consecutive_hysteresis, 0),
    INT("fp16", "min_loss_scale", fp16.min_loss_scale, 1),
    BOOL("fp16", "fp16_master_weights_and_grads", fp16.fp16_master_weights_and_grads, 0),
    BOOL("bf16", "enabled", bf16.enabled, 0),
    BOOL("bf16", "immediate_grad_update", bf16.immediate_grad_update, 0),
    BOOL("bf16", "check_grad_overflow", bf16.check_grad_overflow, 1),
    BOOL("bf16", "bf16_master_weights_and_grads", bf16.bf16_master_weights_and_grads, 0),
    BOOL("bf16", "bf16_optimizer_states", bf16.bf16_optimizer_states, 0),

    /* zero_optimization (pydantic; deprecated keys are handled by config_blocks.c) */
    ROW("zero_optimization", "stage", NULL, ZL__CT_INT, zero.stage, 0, .lo = 0, .hi = 3,
        .flags = ZL__CF_LO | ZL__CF_HI,
        .bad_msg = "%s is not a ZeRO stage: DeepSpeed's stages are 0, 1, 2 and 3"),
    ZB(contiguous_gradients, 1),
    ZB(reduce_scatter, 1),
    UINT("zero_optimization", "reduce_bucket_size", zero.reduce_bucket_size, 5e8),
    ZB(use_multi_rank_bucket_allreduce, 1),
    ZB(allgather_partitions, 1),
    UINT("zero_optimization", "allgather_bucket_size", zero.allgather_bucket_size, 5e8),
    ROW("zero_optimization", "overlap_comm", NULL, ZL__CT_OPTBOOL, zero.overlap_comm, -1),
    ZB(load_from_fp32_weights, 1),
    ZB(elastic_checkpoint, 0),
    UINT("zero_optimization", "sub_group_size", zero.sub_group_size, 1e9),
    S3("prefetch_bucket_size", ZL__CT_INT, zero.prefetch_bucket_size, 5e7, .lo = 0,
       .flags = ZL__CF_LO),
    S3("param_persistence_threshold", ZL__CT_INT, zero.param_persistence_threshold, 1e5,
       .lo = 0, .flags = ZL__CF_LO),
    /* sys.maxsize: set_defaults maps this to INT64_MAX exactly. */
    S3("model_persistence_threshold", ZL__CT_INT, zero.model_persistence_threshold, 9.3e18,
       .lo = 0, .flags = ZL__CF_LO),
    S3("max_live_parameters", ZL__CT_INT, zero.max_live_parameters, 1e9, .lo = 0,
       .flags = ZL__CF_LO),
    S3("max_reuse_distance", ZL__CT_INT, zero.max_reuse_distance, 1e9, .lo = 0,
       .flags = ZL__CF_LO),
    S3("gather_16bit_weights_on_model_save", ZL__CT_BOOL, zero.gather_16bit_weights_on_model_save,
       0),
    S3("module_granularity_threshold", ZL__CT_INT, zero.module_granularity_threshold, 0),
    S3("use_all_reduce_for_fetch_params", ZL__CT_BOOL, zero.use_all_reduce_for_fetch_params, 0),
    S3("allgather_sequential", ZL__CT_BOOL, zero.allgather_sequential, 0),
    S3("partition_stream_chunk_size", ZL__CT_INT, zero.partition_stream_chunk_size, 0, .lo = 0,
       .flags = ZL__CF_LO),
    ZB(ignore_unused_parameters, 1),
    ZB(round_robin_gradients, 0),
    UINT("zero_optimization", "zero_hpz_partition_size", zero.zero_hpz_partition_size, 1),
    ZB(zero_quantized_weights, 0),
    ZB(zero_quantized_nontrainable_weights, 0),
    ZB(zero_quantized_gradients, 0),
    INT("zero_optimization", "mics_shard_size", zero.mics_shard_size, -1),
    ZB(mics_hierarchical_params_gather, 0),
    ZB(memory_efficient_linear, 1),
    ZB(pipeline_loading_checkpoint, 0),
    ZB(override_module_apply, 1),
    ZB(log_trace_cache_warnings, 0),
    ZB(enable_sanity_checks, 0),
    ZB(save_muon_momentum_buffer_in_memory, 0),
    ENUM(OO, "device", zero.offload_optimizer.device, 0, devices),
    STR(OO, "nvme_path", zero.offload_optimizer.nvme_path, NULL),
    UINT(OO, "buffer_count", zero.offload_optimizer.buffer_count, 4),
    BOOL(OO, "pin_memory", zero.offload_optimizer.pin_memory, 1),
    BOOL(OO, "pipeline_read", zero.offload_optimizer.pipeline_read, 0),
    BOOL(OO, "pipeline_write", zero.offload_optimizer.pipeline_write, 0),
    BOOL(OO, "fast_init", zero.offload_optimizer.fast_init, 0),
    ROW(OO, "ratio", NULL, ZL__CT_FLOAT, zero.offload_optimizer.ratio, 1.0, .lo = 0, .hi = 1,
        .flags = ZL__CF_LO | ZL__CF_HI),
    BOOL(OO, "super_offload", zero.offload_optimizer.super_offload, 0),
    BOOL(OO, "convert_grad_on_cpu", zero.offload_optimizer.convert_grad_on_cpu, 1),
    ROW(OO, "cpuadam_cores_perc", NULL, ZL__CT_FLOAT, zero.offload_optimizer.cpuadam_cores_perc,
        0.8, .lo = 0, .hi = 1, .flags = ZL__CF_LO | ZL__CF_HI),
    ENUM(OP, "device", zero.offload_param.device, 0, devices),
    STR(OP, "nvme_path", zero.offload_param.nvme_path, NULL),
    UINT(OP, "buffer_count", zero.offload_param.buffer_count, 5),
    UINT(OP, "buffer_size", zero.offload_param.buffer_size, 1e8),
    UINT(OP, "max_in_cpu", zero.offload_param.max_in_cpu, 1e9),
    BOOL(OP, "pin_memory", zero.offload_param.pin_memory, 1),

    /* aio (plain dict) */
    UINT("aio", "block_size", aio.block_size, 1048576),
    UINT("aio", "queue_depth", aio.queue_depth, 8),
    ROW("aio", "intra_op_parallelism", NULL, ZL__CT_INT, aio.intra_op_parallelism, 1, .lo = 1,
        .flags = ZL__CF_LO),
    BOOL("aio", "single_submit", aio.single_submit, 0),
    BOOL("aio", "overlap_events", aio.overlap_events, 1),
    BOOL("aio", "use_gds", aio.use_gds, 0),

    /* activation_checkpointing (plain dict) */
    BOOL("activation_checkpointing", "partition_activations",
         activation_checkpointing.partition_activations, 0),
    BOOL("activation_checkpointing", "contiguous_memory_optimization",
         activation_checkpointing.contiguous_memory_optimization, 0),
    BOOL("activation_checkpointing", "cpu_checkpointing",
         activation_checkpointing.cpu_checkpointing, 0),
    ROW("activation_checkpointing", "number_checkpoints", NULL, ZL__CT_INT,
        activation_checkpointing.number_checkpoints, 0, .lo = 1,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE),
    BOOL("activation_checkpointing", "synchronize_checkpoint_boundary",
         activation_checkpointing.synchronize_checkpoint_boundary, 0),
    BOOL("activation_checkpointing", "profile", activation_checkpointing.profile, 0),

    /* pipeline (plain dict) */
    /* tensor_parallel (pydantic): AutoTP's size; its other keys tune AutoTP's injection */
    ROW("tensor_parallel", "autotp_size", NULL, ZL__CT_INT, tensor_parallel.autotp_size, 0, .lo = 0,
        .flags = ZL__CF_LO),
    ROW("pipeline", "stages", NULL, ZL__CT_INT, pipeline.stages, 0, .lo = 1,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE | ZL__CF_AUTO_NONE),
    ROW("pipeline", "partition", NULL, ZL__CT_STR, pipeline.partition, 0, .def_str = "best"),
    BOOL("pipeline", "seed_layers", pipeline.seed_layers, 0),
    UINT("pipeline", "activation_checkpoint_interval", pipeline.activation_checkpoint_interval, 0),
    BOOL("pipeline", "pipe_partitioned", pipeline.pipe_partitioned, 1),
    BOOL("pipeline", "grad_partitioned", pipeline.grad_partitioned, 1),
    BOOL("pipeline", "use_reentrant", pipeline.use_reentrant, 1),

    /* checkpoint (plain dict) */
    ENUM("checkpoint", "tag_validation", checkpoint.tag_validation, 0, tag_modes,
         .flags = ZL__CF_NOCASE,
         .bad_msg = "Checkpoint config contains invalid tag_validation value of %s, expecting one "
                    "of ['WARN', 'IGNORE', 'FAIL']"),
    BOOL("checkpoint", "load_universal", checkpoint.load_universal, 0),
    BOOL("checkpoint", "use_node_local_storage", checkpoint.use_node_local_storage, 0),
    BOOL("checkpoint", "checkpoint_serialization", checkpoint.checkpoint_serialization, 1),
    BOOL("checkpoint.parallel_write", "pipeline_stage", checkpoint.parallel_write_pipeline_stage,
         0),
    STR("checkpoint.writer", "type", checkpoint.writer_type, NULL),

    /* flops_profiler (plain dict) */
    BOOL("flops_profiler", "enabled", flops_profiler.enabled, 0),
    FLT("flops_profiler", "recompute_fwd_factor", flops_profiler.recompute_fwd_factor, 0),
    INT("flops_profiler", "profile_step", flops_profiler.profile_step, 1),
    INT("flops_profiler", "module_depth", flops_profiler.module_depth, -1),
    INT("flops_profiler", "top_modules", flops_profiler.top_modules, 1),
    BOOL("flops_profiler", "detailed", flops_profiler.detailed, 1),
    STR("flops_profiler", "output_file", flops_profiler.output_file, NULL),

    /* comms_logger and monitors (pydantic) */
    BOOL("comms_logger", "enabled", comms_logger.enabled, 0),
    BOOL("comms_logger", "verbose", comms_logger.verbose, 0),
    BOOL("comms_logger", "prof_all", comms_logger.prof_all, 1),
    BOOL("comms_logger", "debug", comms_logger.debug, 0),
    ROW("comms_logger", "prof_ops", NULL, ZL__CT_STRLIST, comms_logger.prof_ops, 0),
    BOOL("tensorboard", "enabled", tensorboard.enabled, 0),
    ROW("tensorboard", "output_path", NULL, ZL__CT_STR, tensorboard.output_path, 0, .def_str = ""),
    ROW("tensorboard", "job_name", NULL, ZL__CT_STR, tensorboard.job_name, 0,
        .def_str = "DeepSpeedJobName"),
    BOOL("csv_monitor", "enabled", csv_monitor.enabled, 0),
    ROW("csv_monitor", "output_path", NULL, ZL__CT_STR, csv_monitor.output_path, 0, .def_str = ""),
    ROW("csv_monitor", "job_name", NULL, ZL__CT_STR, csv_monitor.job_name, 0,
        .def_str = "DeepSpeedJobName"),
    BOOL("wandb", "enabled", wandb.enabled, 0),
    STR("wandb", "group", wandb.group, NULL),
    STR("wandb", "team", wandb.team, NULL),
    ROW("wandb", "project", NULL, ZL__CT_STR, wandb.project, 0, .def_str = "deepspeed"),
    BOOL("comet", "enabled", comet.enabled, 0),
    INT("comet", "samples_log_interval", comet.samples_log_interval, 100),
    STR("comet", "project", comet.project, NULL),
    STR("comet", "workspace", comet.workspace, NULL),
    ROW("comet", "api_key", NULL, ZL__CT_STR, comet.api_key, 0,
        .flags = ZL__CF_NULLABLE | ZL__CF_SECRET),
    STR("comet", "experiment_name", comet.experiment_name, NULL),
    STR("comet", "experiment_key", comet.experiment_key, NULL),
    ROW("comet", "online", NULL, ZL__CT_OPTBOOL, comet.online, -1),
    STR("comet", "mode", comet.mode, NULL),

    /* timers, data_types */
    BOOL("timers.throughput", "enabled", throughput_timer_enabled, 1),
    BOOL("timers.throughput", "synchronized", throughput_timer_synchronized, 1),
    ENUM("data_types", "grad_accum_dtype", grad_accum_dtype, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE),
    ENUM("data_types", "param_dtype", param_dtype, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE),
    ENUM("data_types", "buffer_dtype", buffer_dtype, -1, dtypes,
         .flags = ZL__CF_NULLABLE | ZL__CF_NOCASE),

    /* zerolab's own block: unset unless given, so the CLI can fill in its defaults. */
    STR("zerolab", "model", zerolab.model, NULL),
    ENUM("zerolab", "backend", zerolab.backend, -1, backends, .flags = ZL__CF_NULLABLE),
    ROW("zerolab", "seed", NULL, ZL__CT_INT, zerolab.seed, -1, .lo = 0,
        .flags = ZL__CF_LO | ZL__CF_NULLABLE),
    STR("zerolab", "data", zerolab.data, NULL),
    ROW("zerolab", "steps", NULL, ZL__CT_INT, zerolab.steps, 0, .lo = 1, .hi = INT_MAX,
        .flags = ZL__CF_LO | ZL__CF_HI | ZL__CF_NULLABLE), /* as --steps */
    STR("zerolab", "device", zerolab.device, NULL),
    STR("zerolab", "cluster", zerolab.cluster, NULL),
    ROW("zerolab", "checkpoint_activations", NULL, ZL__CT_INT, zerolab.checkpoint_activations, 0,
        .lo = 1, .hi = INT_MAX, .flags = ZL__CF_LO | ZL__CF_HI | ZL__CF_NULLABLE),
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
