/* From a resolved DeepSpeed config to the engine's options: the one place that knows
 * which config keys drive the engine, shared by the CLI and library users. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "engine/engine.h"

/* Options whose DeepSpeed value 0 means "none", where the engine's 0 means "default". */
static int64_t zero_means_none(int64_t v) { return v > 0 ? v : -1; }

void zl_engine_options_from_config(zl_engine_options *o, const zl_config *cfg, int seq_len,
                                   uint64_t seed, zl_comm *dp)
{
    memset(o, 0, sizeof *o);
    o->micro_batch_size = (int)cfg->train_micro_batch_size_per_gpu;
    o->gradient_accumulation_steps = (int)cfg->gradient_accumulation_steps;
    o->seq_len = seq_len;
    o->gradient_clipping = cfg->gradient_clipping;
    o->optimizer = cfg->optimizer;
    o->scheduler = cfg->scheduler;
    o->seed = seed;
    o->dp = dp;
    o->zero_stage = (int)cfg->zero.stage;
    o->reduce_bucket_size = cfg->zero.reduce_bucket_size;
    o->reduce_scatter = cfg->zero.reduce_scatter;
    o->use_multi_rank_bucket_allreduce = cfg->zero.use_multi_rank_bucket_allreduce;
    o->overlap_comm = cfg->zero.overlap_comm;
    o->param_persistence_threshold = zero_means_none(cfg->zero.param_persistence_threshold);
    o->prefetch_bucket_size = zero_means_none(cfg->zero.prefetch_bucket_size);
    o->max_live_parameters = zero_means_none(cfg->zero.max_live_parameters);
    o->max_reuse_distance = zero_means_none(cfg->zero.max_reuse_distance);
    /* stage 3 only, as in DeepSpeed (stages 0-2 partition no parameters and ignore it) */
    o->offload_param = cfg->zero.stage == 3 && cfg->zero.offload_param.device == ZL_OFFLOAD_CPU;
    o->offload_param_pin_memory = cfg->zero.offload_param.pin_memory;
    const zl_config_offload_param *op = &cfg->zero.offload_param;
    o->offload_param_nvme = cfg->zero.stage == 3 && op->device == ZL_OFFLOAD_NVME;
    if (op->nvme_path) snprintf(o->param_nvme_path, sizeof o->param_nvme_path, "%s", op->nvme_path);
    o->param_buffer_count = op->buffer_count > 0 && op->buffer_count < 1 << 20 ? (int)op->buffer_count : 0;
    o->param_buffer_size = op->buffer_size > 0 ? op->buffer_size : 0;
    o->param_max_in_cpu = zero_means_none(op->max_in_cpu); /* 0: nothing kept on the host */
    o->prescale_gradients = cfg->prescale_gradients;
    /* DeepSpeed's stages 1-2 offload to the CPU for any device but "none" ("nvme"
     * included: NVMe optimizer swapping exists only at stage 3). */
    const zl_config_offload_optimizer *oo = &cfg->zero.offload_optimizer;
    o->offload_optimizer = oo->device != ZL_OFFLOAD_NONE;
    o->offload_pin_memory = oo->pin_memory;
    o->offload_nvme = oo->device == ZL_OFFLOAD_NVME && cfg->zero.stage >= 3;
    if (oo->nvme_path) snprintf(o->nvme_path, sizeof o->nvme_path, "%s", oo->nvme_path);
    o->nvme_buffer_count = oo->buffer_count > 0 && oo->buffer_count < 1 << 20 ? (int)oo->buffer_count : 0;
    o->nvme_pipeline_read = oo->pipeline_read;
    o->nvme_pipeline_write = oo->pipeline_write;
    o->sub_group_size = cfg->zero.sub_group_size;
    /* The top-level aio block (zl_aio_config_check judges it when NVMe uses it). */
    o->aio = (zl_aio_config){.block_size = (size_t)cfg->aio.block_size,
                             .queue_depth = (int)cfg->aio.queue_depth,
                             .intra_op_parallelism = (int)cfg->aio.intra_op_parallelism,
                             .single_submit = cfg->aio.single_submit,
                             .overlap_events = cfg->aio.overlap_events,
                             .use_gds = cfg->aio.use_gds};
    o->gradient_predivide_factor = cfg->gradient_predivide_factor;
    /* Activation checkpointing: on with DeepSpeed's pipeline knob (segments of k layers);
     * the activation_checkpointing block says how. partition_activations (needs model
     * parallelism: nothing to partition at mp 1), contiguous_memory_optimization and
     * number_checkpoints (the segment inputs are one buffer each anyway) and
     * synchronize_checkpoint_boundary (a CUDA synchronize; no-op on the CPU) are accepted
     * and change nothing. */
    const zl_config_activation_checkpointing *ac = &cfg->activation_checkpointing;
    o->checkpoint_interval = cfg->pipeline.activation_checkpoint_interval > 0 &&
                                     cfg->pipeline.activation_checkpoint_interval < 1 << 20
                                 ? (int)cfg->pipeline.activation_checkpoint_interval
                                 : 0;
    o->cpu_checkpointing = ac->cpu_checkpointing;
    o->checkpoint_profile = ac->profile;

    /* Mixed precision: fp16 or bf16 storage; communication and gradient accumulation in
     * the model's type unless "fp32" is asked for (zerolab supports those two choices). */
    zl_engine_precision *p = &o->precision;
    p->dtype = cfg->fp16.enabled ? ZL_F16 : cfg->bf16.enabled ? ZL_BF16 : ZL_F32;
    p->comm_fp32 = cfg->communication_data_type == ZL_CFG_FP32;
    p->grad_accum_fp32 = cfg->grad_accum_dtype == ZL_CFG_FP32;
    p->check_grad_overflow = cfg->bf16.check_grad_overflow;
    p->loss_scale = cfg->fp16.loss_scale;
    p->initial_scale_power = cfg->fp16.initial_scale_power;
    p->loss_scale_window = cfg->fp16.loss_scale_window;
    p->hysteresis = cfg->fp16.hysteresis;
    p->consecutive_hysteresis = cfg->fp16.consecutive_hysteresis;
    p->min_loss_scale = (double)cfg->fp16.min_loss_scale;
}

zl_status zl_engine_check_config(const zl_config *cfg)
{
    /* DeepSpeed's pipeline engine asserts ZeRO stage < 2 (the engine checks it again for
     * stages given on the command line). */
    if (cfg->pipeline.stages > 1 && cfg->zero.stage >= 2) {
        const zl_config_origin *o = zl_config_origin_of(cfg, "pipeline.stages");
        char at[16] = "";
        if (o && o->line > 0) snprintf(at, sizeof at, ":%d", o->line);
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s%s: ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism "
                         "(pipeline.stages %lld, zero_optimization.stage %d)\n  hint: use "
                         "zero_optimization.stage 0 or 1 with pipeline stages",
                         cfg->name, at, (long long)cfg->pipeline.stages, (int)cfg->zero.stage);
    }
    const char *model_type = cfg->fp16.enabled ? "fp16" : cfg->bf16.enabled ? "bf16" : "fp32";
    const char *names[] = {"fp32", "fp16", "bf16"};
    int own = cfg->fp16.enabled ? ZL_CFG_FP16 : cfg->bf16.enabled ? ZL_CFG_BF16 : ZL_CFG_FP32;
    if (cfg->communication_data_type != own && cfg->communication_data_type != ZL_CFG_FP32)
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "%s: communication_data_type \"%s\" with %s training is not supported\n"
                         "  hint: use \"%s\" (the default) or \"fp32\"",
                         cfg->name, names[cfg->communication_data_type], model_type, model_type);
    if (cfg->grad_accum_dtype >= 0 && cfg->grad_accum_dtype != own &&
        cfg->grad_accum_dtype != ZL_CFG_FP32)
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "%s: data_types.grad_accum_dtype \"%s\" with %s training is not supported\n"
                         "  hint: use \"%s\" (the default) or \"fp32\"",
                         cfg->name, names[cfg->grad_accum_dtype], model_type, model_type);
    /* DeepSpeed's "sum" leaves the data-parallel gradients unaveraged; zerolab's stages
     * always average (zero/reduce.c's scales), so a config asking for sums is refused
     * rather than trained with gradients W times smaller than it expects. */
    if (cfg->gradient_allreduce_op == ZL_ALLREDUCE_SUM)
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "%s: gradient_allreduce_op \"sum\" (summed, not averaged, data-parallel "
                         "gradients) is not implemented yet\n  hint: remove it or use \"mean\" "
                         "(the default); with summed gradients the learning rate must be W times "
                         "smaller for the same training", cfg->name);
    if (cfg->fp16.fp16_master_weights_and_grads || cfg->bf16.bf16_master_weights_and_grads)
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "%s: %s_master_weights_and_grads (16-bit master weights) is not "
                         "implemented yet\n  hint: remove it; master weights stay fp32",
                         cfg->name, cfg->fp16.enabled ? "fp16.fp16" : "bf16.bf16");
    /* ZeRO-Offload of the optimizer is built for "cpu" at stages 1-3, for "nvme" at
     * stages 1-2 (where DeepSpeed means the CPU by it) and at stage 3 (ZeRO-Infinity's
     * optimizer swapping, zero/offload_nvme.c). Stage 0 has no ZeRO optimizer to offload
     * (DeepSpeed would build its CPU Adam over GPU parameters and fail on them). */
    const zl_config_offload_optimizer *oo = &cfg->zero.offload_optimizer;
    if (oo->device != ZL_OFFLOAD_NONE && cfg->zero.stage == 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s: zero_optimization.offload_optimizer needs ZeRO stage 1, 2 or 3 "
                         "(stage is 0)\n  hint: set zero_optimization.stage to 1, 2 or 3, or "
                         "\"device\": \"none\"", cfg->name);
    const zl_config_offload_param *op = &cfg->zero.offload_param;
    bool param_nvme = op->device == ZL_OFFLOAD_NVME && cfg->zero.stage >= 3;
    if (oo->device == ZL_OFFLOAD_NVME && cfg->zero.stage >= 3 && (!oo->nvme_path || !oo->nvme_path[0]))
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s: zero_optimization.offload_optimizer.device \"nvme\" needs "
                         "nvme_path: the directory the optimizer state is swapped to\n"
                         "  hint: add \"nvme_path\": \"/local_nvme\" (an existing directory "
                         "on a fast local drive) to offload_optimizer", cfg->name);
    /* offload_param applies to stage 3 only (the config warns that it is ignored below):
     * "cpu" keeps the shard on the host, "nvme" in swap files (ZeRO-Infinity). */
    if (param_nvme && (!op->nvme_path || !op->nvme_path[0]))
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s: zero_optimization.offload_param.device \"nvme\" needs nvme_path: "
                         "the directory the parameters are swapped to\n"
                         "  hint: add \"nvme_path\": \"/local_nvme\" (an existing directory "
                         "on a fast local drive) to offload_param", cfg->name);
    if ((oo->device == ZL_OFFLOAD_NVME && cfg->zero.stage >= 3) || param_nvme) {
        zl_aio_config a = {.block_size = (size_t)cfg->aio.block_size,
                           .queue_depth = (int)cfg->aio.queue_depth,
                           .intra_op_parallelism = (int)cfg->aio.intra_op_parallelism,
                           .single_submit = cfg->aio.single_submit,
                           .overlap_events = cfg->aio.overlap_events,
                           .use_gds = cfg->aio.use_gds};
        zl_status st = zl_aio_config_check(&a);
        if (st != ZL_OK) return zl_error_wrap(st, "%s: ", cfg->name);
    }
    return ZL_OK;
}
