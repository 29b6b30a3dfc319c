/* The DeepSpeed configuration, read as DeepSpeed 0.19.6 reads it, resolved into one struct.
 *
 * The file is DeepSpeed's JSON (hjson-lite: //, # and block comments and trailing commas are
 * accepted, as DeepSpeed's hjson reader accepts them). Every key keeps DeepSpeed's name,
 * default and meaning; "auto" (the Hugging Face placeholder) is filled by the caller
 * (zl_config_fill) in the keys the HF Trainer fills; elsewhere it means "not given", so the
 * setting falls back to its default or, for the batch triad, is inferred.
 *
 * zerolab is stricter than DeepSpeed in one way, on purpose: a key that is not understood
 * never changes nothing silently.
 *   - Blocks DeepSpeed validates with pydantic (fp16, bf16, zero_optimization, offload_*,
 *     comms_logger, monitors, optimizer/scheduler params): an unknown key is an error, as
 *     in DeepSpeed, with the file, line and the nearest valid key ("did you mean").
 *   - Top level and DeepSpeed's plain-dict blocks (activation_checkpointing, aio, pipeline,
 *     checkpoint, flops_profiler), which DeepSpeed silently ignores: an unknown key is an
 *     error when it is close to a valid key (a typo) or is a valid key of another block
 *     (misplaced); otherwise a warning naming it.
 *   - Features zerolab does not implement (elasticity, sparse_attention, ZeRO++ flags, ...)
 *     are an error (ZL_ERR_UNSUPPORTED) naming the feature whenever they would change
 *     training (enabled / non-default); disabled or default blocks are accepted.
 *
 * Errors are recorded with zl_errorf() as "FILE:LINE: key.path: message" (plus an optional
 * "\nhint: ..." line); warnings are collected in cfg->warnings (see zl_config_log_warnings).
 *
 * Defaults follow DeepSpeed's current code where it disagrees with its docs:
 * gradient_clipping 1.0 (v0.19.5; it was 0.0 = off up to v0.19.0), steps_per_print None
 * (never print; the CLI may set its own default when !zl_config_given()), overlap_comm
 * None -> true for stage 3 only, stage3_prefetch_bucket_size 5e7, offload device "none",
 * offload pin_memory true, bf16.check_grad_overflow true, bf16.immediate_grad_update false. */
#ifndef ZL_CONFIG_CONFIG_H
#define ZL_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "config/optim_settings.h"

/* Where a resolved value came from (printed next to it). */
typedef enum zl_config_source {
    ZL_CFG_DEFAULT = 0, /* DeepSpeed's default */
    ZL_CFG_FILE,        /* the file, under the documented key */
    ZL_CFG_AUTO,        /* the file said "auto": default (or inferred, for the batch triad) */
    ZL_CFG_ALIAS,       /* the file, under an alternative or deprecated key (origin.alias) */
    ZL_CFG_INFERRED,    /* computed from other settings (batch triad, overlap_comm, ...) */
    ZL_CFG_CLI,         /* zl_config_set() (command line) */
} zl_config_source;

typedef struct zl_config_origin {
    zl_config_source source;
    int line;          /* line in the file (1-based), 0 if not from the file */
    const char *alias; /* ZL_CFG_ALIAS: the key the file used; ZL_CFG_INFERRED: from what */
    bool was_auto;     /* the file said "auto" (then inferred, for the batch triad) */
} zl_config_origin;

/* Room for one origin per setting of the table in config_table.c (checked at compile time). */
#define ZL_CONFIG_MAX_SETTINGS 320

typedef enum zl_offload_device {
    ZL_OFFLOAD_NONE,
    ZL_OFFLOAD_CPU,
    ZL_OFFLOAD_NVME,
} zl_offload_device;
/* Data types as DeepSpeed spells them in communication_data_type and data_types. */
typedef enum zl_config_dtype { ZL_CFG_FP32, ZL_CFG_FP16, ZL_CFG_BF16 } zl_config_dtype;
typedef enum zl_allreduce_op { ZL_ALLREDUCE_MEAN, ZL_ALLREDUCE_SUM } zl_allreduce_op;
typedef enum zl_tag_validation { ZL_TAG_WARN, ZL_TAG_IGNORE, ZL_TAG_FAIL } zl_tag_validation;
typedef enum zl_config_backend {
    ZL_BACKEND_REF,
    ZL_BACKEND_CPU,
    ZL_BACKEND_CUDA,
    ZL_BACKEND_DISCRETE, /* a test backend: ref's kernels with a GPU's memory rules */
} zl_config_backend;

/* Strings are owned by the config (freed by zl_config_free); NULL is DeepSpeed's None. */

typedef struct zl_config_fp16 {
    bool enabled, auto_cast;
    double loss_scale;             /* 0 = dynamic */
    int64_t initial_scale_power;   /* 16 */
    int64_t loss_scale_window;     /* 1000 */
    int64_t hysteresis;            /* 2 */
    bool consecutive_hysteresis;
    int64_t min_loss_scale;        /* 1 */
    bool fp16_master_weights_and_grads;
} zl_config_fp16;

typedef struct zl_config_bf16 {
    bool enabled, immediate_grad_update, check_grad_overflow;
    bool bf16_master_weights_and_grads, bf16_optimizer_states;
} zl_config_bf16;

typedef struct zl_config_offload_optimizer {
    int device; /* zl_offload_device */
    char *nvme_path;
    int64_t buffer_count; /* 4 */
    bool pin_memory, pipeline_read, pipeline_write, fast_init;
    double ratio;         /* 1.0 */
    bool super_offload, convert_grad_on_cpu;
    double cpuadam_cores_perc; /* 0.8 */
} zl_config_offload_optimizer;

typedef struct zl_config_offload_param {
    int device; /* zl_offload_device */
    char *nvme_path;
    int64_t buffer_count, buffer_size, max_in_cpu; /* 5, 1e8, 1e9 */
    bool pin_memory;
} zl_config_offload_param;

/* Field names are DeepSpeed's pydantic field names; the JSON keys of the stage-3 ones carry
 * a "stage3_" prefix (both spellings are accepted). */
typedef struct zl_config_zero {
    int64_t stage;
    bool contiguous_gradients, reduce_scatter;
    int64_t reduce_bucket_size;
    bool use_multi_rank_bucket_allreduce, allgather_partitions;
    int64_t allgather_bucket_size;
    int overlap_comm; /* 0/1 once resolved; None (-1) resolves to stage == 3 */
    bool load_from_fp32_weights, elastic_checkpoint;
    zl_config_offload_optimizer offload_optimizer; /* device NONE unless given */
    zl_config_offload_param offload_param;         /* stage 3 only */
    int64_t sub_group_size;
    int64_t prefetch_bucket_size, param_persistence_threshold, model_persistence_threshold;
    int64_t max_live_parameters, max_reuse_distance;
    bool gather_16bit_weights_on_model_save;
    int64_t module_granularity_threshold;
    bool use_all_reduce_for_fetch_params, allgather_sequential;
    int64_t partition_stream_chunk_size;
    bool ignore_unused_parameters, round_robin_gradients;
    int64_t zero_hpz_partition_size; /* ZeRO++: accepted only at defaults */
    bool zero_quantized_weights, zero_quantized_nontrainable_weights, zero_quantized_gradients;
    int64_t mics_shard_size;
    bool mics_hierarchical_params_gather, memory_efficient_linear, pipeline_loading_checkpoint;
    bool override_module_apply, log_trace_cache_warnings, enable_sanity_checks;
    bool save_muon_momentum_buffer_in_memory;
} zl_config_zero;

typedef struct zl_config_aio {
    int64_t block_size, queue_depth, intra_op_parallelism;
    bool single_submit, overlap_events, use_gds;
} zl_config_aio;

typedef struct zl_config_activation_checkpointing {
    bool partition_activations, contiguous_memory_optimization, cpu_checkpointing;
    int64_t number_checkpoints; /* 0 = None */
    bool synchronize_checkpoint_boundary, profile;
} zl_config_activation_checkpointing;

/* DeepSpeed's AutoTP training block: autotp_size ranks split each block (zerolab splits
 * its GPT-2 blocks as Megatron-LM does, model/block.c); 0 or 1: off. */
typedef struct zl_config_tensor_parallel {
    int64_t autotp_size;
} zl_config_tensor_parallel;

typedef struct zl_config_pipeline {
    int64_t stages; /* 0 = "auto" */
    char *partition; /* "best" */
    bool seed_layers;
    int64_t activation_checkpoint_interval;
    bool pipe_partitioned, grad_partitioned, use_reentrant;
} zl_config_pipeline;

typedef struct zl_config_checkpoint {
    int tag_validation; /* zl_tag_validation */
    bool load_universal, use_node_local_storage, parallel_write_pipeline_stage;
    bool checkpoint_serialization;
    char *writer_type; /* None: DeepSpeed's default torch writer */
} zl_config_checkpoint;

typedef struct zl_config_flops_profiler {
    bool enabled;
    double recompute_fwd_factor;
    int64_t profile_step, module_depth, top_modules;
    bool detailed;
    char *output_file; /* None: stdout */
} zl_config_flops_profiler;

typedef struct zl_config_comms_logger {
    bool enabled, verbose, prof_all, debug;
    char *prof_ops; /* comma-separated op names; NULL = [] */
} zl_config_comms_logger;

typedef struct zl_config_monitor {
    bool enabled;
    char *output_path, *job_name;
} zl_config_monitor;

typedef struct zl_config_wandb {
    bool enabled;
    char *group, *team, *project;
} zl_config_wandb;

typedef struct zl_config_comet {
    bool enabled;
    int64_t samples_log_interval;
    char *project, *workspace, *api_key, *experiment_name, *experiment_key, *mode;
    int online; /* -1 None, 0 false, 1 true */
} zl_config_comet;

/* zerolab's own block ("zerolab": {...}); every value is None/unset unless given, so the
 * CLI can apply its flags and defaults. */
typedef struct zl_config_zerolab {
    char *model;
    int backend;      /* zl_config_backend, -1 = not given */
    int64_t seed;     /* -1 = not given */
    char *data;
    int64_t steps;    /* 0 = not given */
    char *device;     /* simulated GPU preset name */
    char *cluster;    /* simulated cluster spec (sim/presets.h), NODESxGPUSxDEVICE */
    int64_t checkpoint_activations; /* activation checkpointing, layers per segment, as
                                     * --checkpoint-activations (0 = not given) */
} zl_config_zerolab;

typedef struct zl_config {
    char *name;       /* file name used in messages ("<string>" for zl_config_parse) */
    int dp_world_size; /* the world size the batch triad was resolved with; 0 = not yet */

    /* Batch triad (section 0.1); 0 = not given until resolved. */
    int64_t train_batch_size, train_micro_batch_size_per_gpu, gradient_accumulation_steps;

    int64_t steps_per_print;   /* 0 = None (never) */
    double gradient_clipping;  /* 1.0; 0 disables */
    bool prescale_gradients;
    double gradient_predivide_factor;
    int communication_data_type; /* zl_config_dtype, resolved (None -> fp16/bf16/fp32) */
    int seq_parallel_comm_data_type;
    int gradient_allreduce_op;   /* zl_allreduce_op */
    bool wall_clock_breakdown, memory_breakdown, dump_state, disable_allgather;
    bool managed_gradient_accumulation, dataloader_drop_last;
    bool zero_allow_untested_optimizer, zero_force_ds_cpu_optimizer;
    int64_t vocabulary_size;     /* 0 = None */
    int64_t sequence_parallel_size;
    int grad_accum_dtype, param_dtype, buffer_dtype; /* data_types.*: zl_config_dtype, -1 None */
    bool throughput_timer_enabled, throughput_timer_synchronized; /* timers.throughput */

    /* optimizer: DeepSpeed lower-cases its own names ("Adam" -> "adam"). */
    bool optimizer_given;
    char *optimizer_name;          /* as DeepSpeed resolves it; NULL = no optimizer block */
    zl_optimizer_params optimizer; /* adam_w_mode is the effective mode */
    bool optimizer_torch_adam, optimizer_legacy_fusion;

    bool scheduler_given;
    zl_lr_schedule_params scheduler; /* type ZL_LR_CONSTANT without a scheduler block */
    int64_t scheduler_last_batch_iteration; /* -1; otherwise resume the schedule there */

    zl_config_fp16 fp16;
    zl_config_bf16 bf16;
    zl_config_zero zero;
    zl_config_aio aio;
    zl_config_activation_checkpointing activation_checkpointing;
    zl_config_pipeline pipeline;
    zl_config_tensor_parallel tensor_parallel;
    zl_config_checkpoint checkpoint;
    zl_config_flops_profiler flops_profiler;
    zl_config_comms_logger comms_logger;
    zl_config_monitor tensorboard, csv_monitor;
    zl_config_wandb wandb;
    zl_config_comet comet;
    zl_config_zerolab zerolab;

    /* Non-fatal findings (deprecations, ignored keys), one line each, "FILE:LINE: ...". */
    char **warnings;
    int nwarnings;

    zl_config_origin origin[ZL_CONFIG_MAX_SETTINGS]; /* by setting; see zl_config_origin_of */
} zl_config;

/* DeepSpeed's defaults for an empty config; the batch triad is left unset (0) for the caller
 * to set (zl_config_set) and resolve (zl_config_resolve_batch). */
void zl_config_default(zl_config *cfg);

/* Parse a config from text. `name` is used in messages. dp_world_size >= 1 resolves the
 * batch triad now; 0 leaves it for zl_config_resolve_batch (after command-line overrides).
 * On failure cfg still holds what was read and must be freed with zl_config_free. */
zl_status zl_config_parse(zl_config *cfg, const char *json_text, const char *name,
                          int dp_world_size);

/* Largest config file zl_config_load reads (real ones are a few KiB). */
#define ZL_CONFIG_MAX_BYTES (64 << 20)

/* Read and parse a file: ZL_ERR_IO if it cannot be read, is not a regular file (a FIFO, a
 * device, a directory: refused before anything is read, without blocking) or is larger than
 * ZL_CONFIG_MAX_BYTES. */
zl_status zl_config_load(zl_config *cfg, const char *path, int dp_world_size);

/* Values a caller fills "auto" with, as the Hugging Face Trainer fills them from its
 * TrainingArguments (transformers' HfTrainerDeepSpeedConfig: trainer_config_process and
 * trainer_config_finalize); the CLI's flags in brackets:
 *   micro_batch       -> train_micro_batch_size_per_gpu    (--micro-batch; HF: per_device_train_batch_size)
 *   grad_accum        -> gradient_accumulation_steps       (--grad-accum)
 *   train_batch_size  -> train_batch_size                  (--train-batch-size; HF computes it)
 *   lr                -> optimizer.params.lr and the warmup schedules' warmup_max_lr (--lr)
 *   total_steps       -> scheduler.params.total_num_steps  (--total-steps; HF: num_training_steps)
 *   warmup_steps      -> scheduler.params.warmup_num_steps (--warmup-steps)
 * and "auto" in scheduler.params.warmup_min_lr is 0, as HF's fill_only.
 * A given value fills the key when the file says "auto" or leaves it out; a concrete value in
 * the file that differs is a mismatch (HF's fill_match), and all mismatches are reported in
 * one error. With override_file (the CLI's built-in config) the values simply replace the
 * file's; a triad value given replaces the file's whole triad, keeping its micro batch only
 * if neither micro_batch nor train_batch_size is given.
 * "auto" left unfilled in one of these keys is an error naming the key's line and the flag,
 * except in the batch triad, where it is inferred as DeepSpeed infers a missing value (the
 * value HF would fill: train_batch_size = world x micro x accumulation), and in
 * warmup_max_lr, which takes optimizer.params.lr (HF fills both from learning_rate). */
typedef struct zl_config_fill {
    int64_t micro_batch, grad_accum, train_batch_size; /* 0: not given */
    int64_t total_steps;                               /* 0: not given */
    bool has_lr, has_warmup_steps;
    double lr;
    int64_t warmup_steps;
    bool override_file;
} zl_config_fill;

/* zl_config_parse / zl_config_load, with "auto" filled from `fill` (NULL: nothing given). */
zl_status zl_config_parse_filled(zl_config *cfg, const char *json_text, const char *name,
                                 int dp_world_size, const zl_config_fill *fill);
zl_status zl_config_load_filled(zl_config *cfg, const char *path, int dp_world_size,
                                const zl_config_fill *fill);

/* Override one setting by its dotted name ("zero_optimization.stage", "fp16.enabled",
 * "train_micro_batch_size_per_gpu"); `value` is JSON ("2", "true", "\"cpu\"") or a bare
 * string. Marks it ZL_CFG_CLI. Re-run zl_config_resolve_batch afterwards for batch keys. */
zl_status zl_config_set(zl_config *cfg, const char *name, const char *value);

/* DeepSpeed's batch-size inference and assertions (section 0.1) for a data-parallel world
 * size; values given in the file or by zl_config_set are kept, the rest inferred. */
zl_status zl_config_resolve_batch(zl_config *cfg, int dp_world_size);

/* Origin of a setting by dotted name (NULL if there is no such setting). */
const zl_config_origin *zl_config_origin_of(const zl_config *cfg, const char *name);
/* True if the file or zl_config_set gave the setting (not default, auto or inferred). */
bool zl_config_given(const zl_config *cfg, const char *name);

/* "DeepSpeedEngine configuration:" then one line per resolved setting:
 *   "  name ........ value (source)". Warnings follow, if any. */
void zl_config_print(const zl_config *cfg, FILE *out);

/* The same resolved settings as one DeepSpeed JSON config (None as null, blocks nested,
 * only the scheduler's own params), which zl_config_parse reads back to the same settings:
 * `zerolab config ds.json --json > resolved.json` round-trips. Secrets print as "***".
 * ZL_ERR_IO if `out` cannot be written. */
zl_status zl_config_print_json(const zl_config *cfg, FILE *out);

/* Every setting the reader knows as Markdown (docs/config-reference.md): block, key, type,
 * default, whether zerolab honours it and its meaning, from the settings table. ZL_ERR_CONFIG
 * if a row lacks its meaning (the reference is printed anyway). */
zl_status zl_config_print_reference(FILE *out);

/* Print the collected warnings with zl_log_warn (rank 0 logs them once). */
void zl_config_log_warnings(const zl_config *cfg);

void zl_config_free(zl_config *cfg);

#endif
