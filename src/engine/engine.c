#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "engine/engine_internal.h"

/* One weight-decay range per maximal run of parameters with the same flag. */
static zl_status build_ranges(zl_engine *e)
{
    const zl_model *m = &e->model;
    e->ranges = calloc((size_t)m->num_params, sizeof *e->ranges);
    if (!e->ranges) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    e->num_ranges = 0;
    for (int i = 0; i < m->num_params; i++) {
        const zl_param_info *p = &m->params[i];
        zl_param_range *last = e->num_ranges ? &e->ranges[e->num_ranges - 1] : NULL;
        if (last && last->decay == p->weight_decay && last->offset + last->numel == p->offset)
            last->numel += p->numel;
        else
            e->ranges[e->num_ranges++] = (zl_param_range){p->offset, p->numel, p->weight_decay};
    }
    return ZL_OK;
}

#define dp_size(e) zl__engine_dp_size(e)

static zl_status check_options(const zl_engine_options *o)
{
    if (o->reduce_bucket_size <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.reduce_bucket_size must be positive, got %lld",
                         (long long)o->reduce_bucket_size);
    if (o->offload_optimizer && o->zero_stage < 1)
        return zl_errorf(ZL_ERR_CONFIG,
                         "zero_optimization.offload_optimizer needs ZeRO stage 1, 2 or 3 (got "
                         "stage %d): the offloaded optimizer is a ZeRO optimizer's partition\n"
                         "  hint: set zero_optimization.stage to 1, 2 or 3, or remove "
                         "offload_optimizer", o->zero_stage);
    if (o->offload_nvme && (!o->offload_optimizer || o->zero_stage != 3))
        return zl_errorf(ZL_ERR_CONFIG,
                         "zero_optimization.offload_optimizer.device \"nvme\" swaps ZeRO stage "
                         "3's optimizer partition (got stage %d)\n  hint: set "
                         "zero_optimization.stage to 3, or use \"device\": \"cpu\"", o->zero_stage);
    if (o->offload_nvme && !o->nvme_path[0])
        return zl_errorf(ZL_ERR_CONFIG,
                         "zero_optimization.offload_optimizer.nvme_path is not set: device "
                         "\"nvme\" swaps the optimizer state to files under it\n  hint: set "
                         "\"nvme_path\" to an existing directory on a fast local drive");
    if (o->offload_param_nvme && o->zero_stage != 3)
        return zl_errorf(ZL_ERR_CONFIG,
                         "zero_optimization.offload_param.device \"nvme\" swaps ZeRO stage 3's "
                         "parameter partitions (got stage %d)\n  hint: set zero_optimization.stage "
                         "to 3, or remove offload_param", o->zero_stage);
    if (o->offload_param_nvme && !o->param_nvme_path[0])
        return zl_errorf(ZL_ERR_CONFIG,
                         "zero_optimization.offload_param.nvme_path is not set: device \"nvme\" "
                         "swaps the parameters to files under it\n  hint: set \"nvme_path\" to an "
                         "existing directory on a fast local drive");
    if (o->offload_nvme || o->offload_param_nvme) {
        zl_status st = zl_aio_config_check(&o->aio);
        if (st != ZL_OK) return st;
    }
    if (o->checkpoint_interval < 0)
        return zl_errorf(ZL_ERR_CONFIG, "pipeline.activation_checkpoint_interval must be 0 (off) "
                         "or a number of layers per segment, got %d", o->checkpoint_interval);
    if (o->schedule == ZL_SCHEDULE_INFERENCE)
        return zl_errorf(ZL_ERR_INVALID, "the inference schedule runs forward passes only: an "
                         "engine trains with the data-parallel, GPipe or 1F1B schedule");
    bool piped = o->pipe && o->pipe->size > 1, split = o->tp && o->tp->size > 1;
    if (piped && split && (!o->mp || o->mp->size != o->pipe->size * o->tp->size))
        return zl_errorf(ZL_ERR_INVALID, "pipeline and tensor parallelism together need the "
                         "model-parallel group (options.mp) of the %d x %d ranks that share a "
                         "data-parallel index", o->pipe->size, o->tp->size);
    if (o->sequence_parallel && !split)
        return zl_errorf(ZL_ERR_CONFIG, "sequence parallelism splits the stream over the "
                         "tensor-parallel ranks: it needs tensor parallelism (a tp group of 2 or "
                         "more)\n  hint: add --tensor-parallel T, or drop --sequence-parallel");
    if (o->sequence_parallel && o->zero_stage > 1)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "sequence parallelism with ZeRO stage %d is not built "
                         "yet\n  hint: use ZeRO stage 0 or 1 with sequence parallelism",
                         o->zero_stage);
    if (split && (o->offload_nvme || o->offload_param_nvme))
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "tensor parallelism with ZeRO-Infinity's NVMe offload is not built yet\n"
                         "  hint: offload to \"cpu\", or run without tensor parallelism");
    if (o->gradient_predivide_factor <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "gradient_predivide_factor must be positive, got %g",
                         o->gradient_predivide_factor);
    return ZL_OK;
}

/* The narrow view of the engine that the ZeRO strategy works on. */
static void zero_ctx_init(zl_engine *e, const zl_zero_strategy *strategy)
{
    const zl_engine_options *o = &e->opt;
    e->zero = (zl_zero_ctx){
        .strategy = strategy,
        .device = e->device,
        .dp = o->dp,
        .mp = zl__engine_mp(o),
        .dp_size = zl__engine_dp_size(e),
        .dp_rank = zl__engine_dp_rank(e),
        .model = &e->model,
        .prec = &e->prec,
        .adam = &e->adam,
        .opt = {.reduce_bucket_size = o->reduce_bucket_size,
                .reduce_scatter = o->reduce_scatter,
                .use_multi_rank_bucket_allreduce = o->use_multi_rank_bucket_allreduce,
                .param_persistence_threshold = o->param_persistence_threshold,
                .overlap_comm = o->overlap_comm,
                .prefetch_bucket_size = o->prefetch_bucket_size,
                .max_live_parameters = o->max_live_parameters,
                .max_reuse_distance = o->max_reuse_distance,
                .offload_param = o->offload_param,
                .offload_param_pin = o->offload_param_pin_memory,
                .prescale_gradients = o->prescale_gradients,
                .gradient_predivide_factor = o->gradient_predivide_factor},
        .params = &e->params,
        .grads = &e->grads,
        .master = &e->master,
        .part = &e->part,
        .host = e->host,
        .offload = o->offload_optimizer,
        .pin_memory = o->offload_pin_memory,
        .nvme = o->offload_optimizer && o->offload_nvme,
        .nvme_opt = {.nvme_path = o->nvme_path,
                     .buffer_count = o->nvme_buffer_count,
                     .pipeline_read = o->nvme_pipeline_read,
                     .pipeline_write = o->nvme_pipeline_write,
                     .sub_group_size = o->sub_group_size,
                     .aio = o->aio,
                     .rank = zl__engine_dp_rank(e)},
        .nvme_ledger = &e->nvme_ledger,
        .nvme_param = o->offload_param_nvme && o->zero_stage == 3,
        .pnvme_opt = {.nvme_path = o->param_nvme_path,
                      .buffer_count = o->param_buffer_count,
                      .buffer_size = o->param_buffer_size,
                      .max_in_cpu = o->param_max_in_cpu,
                      .pin_memory = o->offload_param_pin_memory,
                      .aio = o->aio,
                      .rank = zl__engine_dp_rank(e)},
    };
    e->zero.pending[0].layer = e->zero.pending[1].layer = -1;
}

/* The host device: the caller's, or the engine's own (unlimited, on the accelerator's
 * backend: the meta backend's holds shapes only). */
static zl_status host_init(zl_engine *e)
{
    if (e->opt.host) {
        e->host = e->opt.host;
        return ZL_OK;
    }
    char name[sizeof e->device->ledger.device_name + 8];
    snprintf(name, sizeof name, "%s host", e->device->ledger.device_name);
    zl_status st = zl_device_init(&e->own_host, ZL_DEVICE_HOST, zl_device_backend(e->device)->name,
                                  name, 0);
    if (st == ZL_OK) e->host = &e->own_host;
    return st;
}

/* Allocation and initialisation; the caller agrees on the status across ranks. */
static zl_status create_local(zl_engine *e, const zl_gpt_config *model_cfg)
{
    const zl_engine_options *opt = &e->opt;
    zl_device *dev = e->device;
    const zl_zero_strategy *strategy;
    zl_status st = zl_zero_choose(opt->zero_stage, &strategy);
    if (st != ZL_OK) return st;
    if ((st = host_init(e)) != ZL_OK) return st;
    zero_ctx_init(e, strategy);
    /* An out-of-memory hint suggests only what would help this run (no ZeRO on one rank,
     * not the stage it already uses). */
    zl_zero_hint_memory(&e->zero, opt->checkpoint_interval);
    if ((st = check_options(opt)) != ZL_OK) return st;
    if ((st = zl_model_create(&e->model, model_cfg, dev)) != ZL_OK) return st;
    zl_model *m = &e->model;
    e->first_layer = 0; /* every layer, unless pipeline stages split the list */
    e->last_layer = m->num_layers;
    if ((st = zl__engine_pipe_setup(e)) != ZL_OK) return st; /* the cut: the whole model's */
    if ((st = zl_model_set_tensor_parallel(m, opt->tp)) != ZL_OK) return st;
    if (opt->sequence_parallel) zl_model_set_sequence_parallel(m);
    if ((st = zl__engine_pipe_take_stage(e)) != ZL_OK) return st;
    e->zero.opt.overlap_comm = opt->overlap_comm; /* a pipeline turns it off */
    if ((st = build_ranges(e)) != ZL_OK) return st;
    e->zero.ranges = e->ranges;
    e->zero.num_ranges = e->num_ranges;
    /* The precision policy: types, the loss scaler (of the ZeRO optimizers' kind under a
     * ZeRO optimizer), then its "cast" buffers. */
    if ((st = zl_precision_init(&e->prec, dev, m, opt->seed, &opt->precision,
                                strategy->zero_optimizer)) != ZL_OK ||
        (st = zl_precision_alloc(&e->prec)) != ZL_OK)
        return st;
    /* Parameters (with their initial values), master weights, gradients and buckets, where
     * the stage keeps them; values agree across ranks in zl_engine_create. */
    if ((st = e->zero.strategy->alloc(&e->zero)) != ZL_OK) return st;
    /* Adam's moments beside the master weights: on the host under ZeRO-Offload; in swap
     * files with NVMe (the engine's optimizer keeps only its settings and step count). */
    if ((st = zl_adamw_init(&e->adam, e->zero.offload ? e->host : dev,
                            e->zero.nvme ? 0 : e->zero.opt_numel,
                            &opt->optimizer)) != ZL_OK)
        return st;
    if ((st = zl_lr_schedule_init(&e->lr_schedule, &opt->scheduler, opt->optimizer.lr,
                                  opt->optimizer.beta1)) != ZL_OK)
        return st;
    /* The step's instructions, and a slot for every micro-batch they hold in flight. */
    int gas = opt->gradient_accumulation_steps;
    e->schedule_len = zl_schedule_make_stage(opt->schedule, gas, e->num_stages, e->stage, NULL, 0);
    size_t ntok = (size_t)opt->micro_batch_size * (size_t)opt->seq_len;
    e->schedule = malloc((size_t)e->schedule_len * sizeof *e->schedule);
    e->batch = malloc(2 * ntok * sizeof *e->batch);
    if (!e->schedule || !e->batch)
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory for a micro-batch of %zu tokens", ntok);
    zl_schedule_make_stage(opt->schedule, gas, e->num_stages, e->stage, e->schedule, e->schedule_len);
    int slots = zl_schedule_stage_buffers(opt->schedule, gas, e->num_stages, e->stage);
    if (opt->checkpoint_interval > 0)
        zl_model_set_checkpointing(m, opt->checkpoint_interval, e->first_layer, e->last_layer,
                                   opt->cpu_checkpointing ? e->host : dev);
    if ((st = zl_model_alloc_activations(m, opt->micro_batch_size, opt->seq_len, slots)) != ZL_OK)
        return st;
    if ((st = zl__engine_pipe_alloc(e)) != ZL_OK) return st;
    if ((st = zl__engine_ties_alloc(e)) != ZL_OK) return st;
    /* (2, rows, C): the stream's rows here (B*T, or a share with sequence parallelism) */
    int64_t stream_shape[3] = {2, m->stream_rows, model_cfg->channels};
    return zl_tensor_alloc(&e->stream, dev, "act.stream", ZL_F32, 3, stream_shape);
}

/* Everything the engine holds, whatever create_local got to. */
static void release(zl_engine *e)
{
    zl_tensor_free(&e->stream);
    zl__engine_pipe_free(e);
    free(e->batch);
    free(e->schedule);
    zl_adamw_destroy(&e->adam);
    zl__engine_ties_free(e);
    if (e->zero.strategy) e->zero.strategy->free(&e->zero);
    zl_precision_free(&e->prec);
    if (e->model.layers) zl_model_destroy(&e->model);
    free(e->ranges);
}

zl_status zl_engine_create(zl_engine **out, const zl_gpt_config *model_cfg,
                           const zl_engine_options *opt, zl_device *dev)
{
    *out = NULL;
    zl_engine *e = calloc(1, sizeof *e);
    if (!e) { /* agreed as create_local's failures are, so that no rank waits for this one */
        zl_status st = zl_errorf(ZL_ERR_NOMEM, "out of host memory for the engine");
        if (opt->dp) st = zl_comm_agree(opt->dp, st);
        return zl__engine_mp(opt) ? zl_comm_agree(zl__engine_mp(opt), st) : st;
    }
    e->opt = *opt;
    e->device = dev;
    {
        char name[sizeof dev->ledger.device_name + 8];
        snprintf(name, sizeof name, "%s NVMe", dev->ledger.device_name);
        name[sizeof e->nvme_ledger.device_name - 1] = 0; /* the ledger's room */
        zl_ledger_init(&e->nvme_ledger, name, 0);
        zl_ledger_set_placement(&e->nvme_ledger, ZL_PLACE_NVME);
    }
    /* Zero means "DeepSpeed's default", so a zeroed options struct trains as one rank. */
    if (e->opt.reduce_bucket_size == 0) e->opt.reduce_bucket_size = 500000000;
    if (e->opt.gradient_predivide_factor == 0) e->opt.gradient_predivide_factor = 1.0;
    if (e->opt.param_persistence_threshold == 0) e->opt.param_persistence_threshold = 100000;
    if (e->opt.prefetch_bucket_size == 0) e->opt.prefetch_bucket_size = 50000000;
    if (e->opt.max_live_parameters == 0) e->opt.max_live_parameters = 1000000000;
    if (e->opt.max_reuse_distance == 0) e->opt.max_reuse_distance = 1000000000;
    if (e->opt.sub_group_size == 0) e->opt.sub_group_size = 1000000000;
    if (e->opt.nvme_buffer_count == 0) e->opt.nvme_buffer_count = 4;
    if (e->opt.param_buffer_count == 0) e->opt.param_buffer_count = 5;
    if (e->opt.param_buffer_size == 0) e->opt.param_buffer_size = 100000000;
    if (e->opt.param_max_in_cpu == 0) e->opt.param_max_in_cpu = 1000000000;
    if (e->opt.aio.block_size == 0) zl_aio_config_default(&e->opt.aio);
    zl_status st = create_local(e, model_cfg);
    /* Every rank must learn that one rank ran out of memory, or the others would wait for
     * it in the initialisation below. */
    st = zl__engine_agree(e, st);
    /* Every replica starts from rank 0's values. */
    if (st == ZL_OK) st = e->zero.strategy->init_params(&e->zero);
    /* NVMe: the initial master weights were written to their swap files (collectively
     * agreed, so that a rank whose disk filled up does not leave the others waiting). */
    if (st == ZL_OK) {
        st = zl_zero_init_status(&e->zero);
        st = zl__engine_agree(e, st);
    }
    if (st == ZL_OK) st = zl__engine_ties_sync_values(e);
    if (st != ZL_OK) {
        zl_engine_destroy(e);
        return st;
    }
    *out = e;
    return ZL_OK;
}

void zl_engine_destroy(zl_engine *e)
{
    if (!e) return;
    release(e);
    free(e);
}


/* Make layer l's parameters available to it: where the stage keeps them (gathered at
 * stage 3), in the type the kernels compute in (the precision policy). */
zl_status zl__engine_use_layer(zl_engine *e, int l, bool backward)
{
    void *values;
    zl_status st = e->zero.strategy->use_params(&e->zero, l, backward, &values);
    if (st != ZL_OK) return st;
    return zl_precision_bind_layer(&e->prec, l, values, backward);
}

/* LoadMicroBatch: the micro-batch staged in e->batch (2, B, T) into slot `buffer` on the
 * accelerator, one host-to-device copy (charged to the host link on a simulated card). */
static zl_status load_micro_batch(zl_engine *e, int buffer)
{
    zl_model_use_slot(&e->model, buffer);
    return zl_model_set_batch(&e->model, e->host, e->batch);
}

/* Layer l's forward on input *x: its parameters, the call (which advances the RNG
 * position: a layer's random draws, once a layer makes any, start at the position it was
 * called at), and its activations kept; *x becomes the next layer's input. */
static zl_status forward_layer(zl_engine *e, int l, const float **x)
{
    zl_model *m = &e->model;
    zl_status st = zl__engine_use_layer(e, l, false);
    if (st != ZL_OK) return st;
    const float *out = m->layers[l].vt->forward(m, l, *x);
    if (m->comm_status != ZL_OK) return m->comm_status; /* a tensor-parallel allreduce */
    m->rng_pos++;
    *x = zl_model_after_forward(m, l, out);
    return ZL_OK;
}

/* Activation checkpointing: the segment that holds layer l. */
static int segment_begin(const zl_model *m, int l)
{
    int begin, end;
    zl_model_ckpt_segment(m, zl_model_ckpt_segment_of(m, l), &begin, &end);
    return begin;
}
static int segment_end(const zl_model *m, int l)
{
    int begin, end;
    zl_model_ckpt_segment(m, zl_model_ckpt_segment_of(m, l), &begin, &end);
    return end;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* activation_checkpointing.profile: each segment's forward, recompute and backward wall
 * time, at debug level (DeepSpeed logs them with its timers). */
static void profile_segment(zl_engine *e, const char *what, int l, double *t0)
{
    if (!e->opt.checkpoint_profile) return;
    double t = wall_seconds();
    int begin = segment_begin(&e->model, l);
    zl_log_debug("activation checkpointing: segment %d (layers %d-%d) %s %.3f ms",
                 zl_model_ckpt_segment_of(&e->model, l), begin, segment_end(&e->model, l) - 1,
                 what, 1e3 * (t - *t0));
    *t0 = t;
}

/* The forward of the segment whose last layer is l, recomputed from its saved input at
 * the RNG position its first forward started at; the position is restored after it, so
 * that recompute draws nothing from the stream the forward passes use. Under ZeRO-3 each
 * layer's parameters are gathered again (model->ckpt.recomputing tells the prefetch that
 * the segment's backward, not the next layer's forward, comes next). */
static zl_status recompute_segment(zl_engine *e, int l)
{
    zl_model *m = &e->model;
    int begin = segment_begin(m, l), end = segment_end(m, l);
    uint64_t rng = m->rng_pos;
    const float *x = zl_model_ckpt_restore(m, begin);
    zl_status st = ZL_OK;
    m->ckpt.recomputing = true;
    for (int k = begin; k < end && st == ZL_OK; k++) st = forward_layer(e, k, &x);
    m->ckpt.recomputing = false;
    m->rng_pos = rng;
    return st;
}

/* ForwardPass: the rank's layers [first, last) on slot `buffer`. */
static zl_status forward_pass(zl_engine *e, int buffer, float *loss)
{
    zl_model *m = &e->model;
    zl_model_use_slot(m, buffer);
    zl_device_copy_wait(e->device); /* the embedding reads the tokens just copied */
    /* The first layer reads the tokens, or on a later pipeline stage what it received. */
    const float *x = e->first_layer > 0 ? zl_model_stage_input(m) : NULL;
    bool ckpt = m->ckpt.interval > 0;
    double t0 = wall_seconds();
    for (int l = e->first_layer; l < e->last_layer; l++) {
        /* Checkpointing: keep the segment's input; its activations are recomputed. */
        if (ckpt && l == segment_begin(m, l)) {
            if (l > e->first_layer) profile_segment(e, "forward", l - 1, &t0);
            x = zl_model_ckpt_save(m, l, x);
        }
        zl_status st = forward_layer(e, l, &x);
        if (st != ZL_OK) return st;
    }
    if (ckpt) profile_segment(e, "forward", e->last_layer - 1, &t0);
    e->loss = e->last_layer == m->num_layers ? zl_model_mean_loss(m) : NAN; /* the head's */
    if (loss) *loss = e->loss;
    return ZL_OK;
}

/* BackwardPass: the rank's layers in reverse on slot `buffer`; gradients accumulate, and
 * the strategy reduces them as they complete (stages 2-3). */
static zl_status backward_pass(zl_engine *e, int buffer)
{
    zl_model *m = &e->model;
    zl_zero_ctx *z = &e->zero;
    zl_model_use_slot(m, buffer);
    /* DeepSpeed divides each micro-batch's loss by the accumulation steps, so the summed
     * gradient is that of the mean over the global batch; fp16 multiplies by the scale. */
    int targets = zl_model_slot(m)->num_targets;
    m->loss_grad = targets ? (float)(zl_precision_loss_scale(&e->prec) /
                                     ((double)targets * e->opt.gradient_accumulation_steps))
                           : 0.0f;
    size_t BTC = zl_model_stream_numel(m); /* the stream's elements here */
    /* The head starts from the loss; a stage before it from the gradient it received.
     * Each layer's input gradient goes to one half of the stream buffer, in turn, and is
     * the next (earlier) layer's output gradient. */
    const float *dout = e->last_layer < m->num_layers ? zl_tensor_f32(&e->pipe_grad) : NULL;
    float *halves[2] = {zl_tensor_f32(&e->stream), zl_tensor_f32(&e->stream) + BTC};
    int half = 0;
    bool ckpt = m->ckpt.interval > 0;
    double t0 = wall_seconds();
    for (int l = e->last_layer - 1; l >= e->first_layer; l--) {
        zl_status st;
        /* Checkpointing: the segment's forward again, from its saved input and RNG
         * position, into the shared area, just before its backward. */
        if (ckpt && l == segment_end(m, l) - 1) {
            if ((st = recompute_segment(e, l)) != ZL_OK) return st;
            profile_segment(e, "recompute", l, &t0);
        }
        st = zl__engine_use_layer(e, l, true);
        if (st != ZL_OK) return st;
        if ((st = z->strategy->begin_grads(z, l)) != ZL_OK) return st;
        const float *inp = zl_model_before_backward(m, l);
        float *dinp = l ? halves[half] : NULL;
        m->layers[l].vt->backward(m, l, inp, dout, dinp);
        if (m->comm_status != ZL_OK) return m->comm_status; /* a tensor-parallel allreduce */
        if ((st = z->strategy->end_grads(z, l)) != ZL_OK) return st; /* stages 2-3 reduce */
        dout = dinp;
        half ^= 1;
        if (ckpt && l == segment_begin(m, l)) profile_segment(e, "backward", l, &t0);
    }
    /* A later pipeline stage: its input's gradient, for SendGrad (in the stream buffer,
     * which nothing writes before the next backward). */
    e->pipe_grad_out = dout;
    e->pipe_grad_buffer = e->first_layer > 0 ? buffer : -1;
    return z->strategy->end_backward(z);
}

/* DeepSpeed: "Only train_batch() is accessible in pipeline mode." */
static zl_status refuse_piped(const zl_engine *e, const char *call)
{
    if (!zl__engine_piped(e)) return ZL_OK;
    return zl_errorf(ZL_ERR_INVALID, "%s is not available with %d pipeline stages: a pipeline "
                     "engine trains with zl_engine_train_batch, which runs the stages' schedule",
                     call, e->num_stages);
}

/* DeepSpeed's engine(batch) and engine.backward(): one micro-batch through slot 0. */
zl_status zl_engine_forward(zl_engine *e, const int32_t *inputs, const int32_t *targets,
                            float *loss)
{
    zl_status st = refuse_piped(e, "zl_engine_forward");
    if (st != ZL_OK) return st;
    size_t ntok = (size_t)e->model.B * e->model.T;
    memcpy(e->batch, inputs, ntok * sizeof *e->batch); /* staged as the loader would */
    memcpy(e->batch + ntok, targets, ntok * sizeof *e->batch);
    st = load_micro_batch(e, 0);
    return st != ZL_OK ? st : forward_pass(e, 0, loss);
}

zl_status zl_engine_backward(zl_engine *e)
{
    zl_status st = refuse_piped(e, "zl_engine_backward");
    return st != ZL_OK ? st : backward_pass(e, 0);
}

bool zl_engine_is_gradient_accumulation_boundary(const zl_engine *e)
{
    return (e->micro_steps + 1) % e->opt.gradient_accumulation_steps == 0;
}

double zl_engine_get_lr(const zl_engine *e) { return e->lr_schedule.lr; }

/* ReduceTiedGrads: each tie's gradient summed once over its members (engine_ties.c). */
static zl_status reduce_tied_grads(zl_engine *e) { return zl__engine_reduce_tied_grads(e); }

/* Sequence parallelism: the parameters the tensor-parallel group holds whole got each
 * rank's rows' share of their gradient (the LayerNorms, the projections' biases, the
 * position embedding): summed over the group, one allreduce per run of them in the flat
 * vector. The strategy keeps gradients whole here (ZeRO 0-1). */
static zl_status reduce_sequence_parallel(zl_engine *e)
{
    zl_model *m = &e->model;
    if (!m->seq_parallel) return ZL_OK;
    zl_status st = ZL_OK;
    for (int i = 0; i < m->num_params && st == ZL_OK;) {
        if (m->params[i].split != ZL_SPLIT_NONE) {
            i++;
            continue;
        }
        int j = i;
        size_t n = 0;
        void *first = NULL;
        for (; j < m->num_params && m->params[j].split == ZL_SPLIT_NONE &&
               m->params[j].offset == m->params[i].offset + n;
             j++) {
            /* each settled (a fresh gradient is zeroed, not stale); the run starts at i's */
            void *g = zl_zero_param_grads(&e->zero, j);
            if (j == i) first = g;
            n += m->params[j].numel;
        }
        st = zl_comm_allreduce(e->opt.tp, first, n, e->prec.grad_dtype, ZL_REDUCE_SUM);
        i = j;
    }
    return st;
}

/* ReduceGrads: the data-parallel reduction of the ZeRO strategy (after sequence
 * parallelism's sum over the tensor-parallel group). */
static zl_status reduce_grads(zl_engine *e)
{
    zl_status st = reduce_sequence_parallel(e);
    return st != ZL_OK ? st : e->zero.strategy->reduce(&e->zero);
}

/* OptimizerStep: overflow check, norm, unscale and clip, the optimizer on this rank's
 * partition, the LR schedule; a step with inf/nan gradients is skipped as DeepSpeed skips
 * it. The micro-step is counted by the caller. */
static zl_status optimizer_step(zl_engine *e)
{
    zl_status st;
    zl_zero_ctx *z = &e->zero;
    /* The scale the gradients carry: the update below may change it for the next step. */
    double scale = zl_precision_loss_scale(&e->prec);
    size_t own_n;
    void *own = z->strategy->own_grads(z, &own_n);
    bool skip;
    if ((st = zl_precision_check_overflow(&e->prec, e->opt.dp, z->mp, own, own_n, &skip)) != ZL_OK)
        return st;
    if (skip) {
        /* DeepSpeed: zero the gradients, count the skip, leave the schedule; the step and
         * its samples still count. */
        zl_zero_zero_grads(z);
        zl__engine_ties_zero_grads(e);
        e->skipped_steps++;
        e->grad_norm = -1;
        e->global_steps++;
        e->global_samples += (int64_t)e->opt.micro_batch_size * e->opt.gradient_accumulation_steps *
                             dp_size(e);
        return ZL_OK;
    }
    /* The norm before the step when clipping needs it; else from the step's own pass over
     * the gradients (zl_adamw.sumsq), which saves reading them twice (gpt2-124m fp32:
     * 500 MB, 17 ms a step). The step then uses g / scale, so that sum is the unscaled
     * norm's square. */
    bool clip = e->opt.gradient_clipping > 0;
    /* With tensor parallelism the norm counts the group's whole parameters once
     * (zero.c), which the step's own pass over the gradients cannot: computed first. */
    bool norm_first = clip || e->model.tp_size > 1;
    if (norm_first) {
        if ((st = zl_zero_grad_norm(z, &e->grad_norm)) != ZL_OK) return st;
        e->grad_norm /= scale;
    }
    /* Unscale and clip in one factor: 1 / (scale * max(1, (norm + 1e-6) / clip)), the
     * formula of DeepSpeed's ZeRO and FP16 optimizers, and in fp32 (scale 1) torch's
     * clip_grad_norm_ coefficient min(1, clip / (norm + 1e-6)). */
    float grad_scale = (float)(1.0 / scale);
    if (clip) {
        double coef = e->opt.gradient_clipping / (e->grad_norm + 1e-6);
        if (coef < 1.0) grad_scale = (float)(coef / scale);
    }
    e->lr = e->lr_schedule.lr;
    double beta1 = e->opt.optimizer.beta1;
    if (e->lr_schedule.has_momentum) { /* OneCycle cycles beta1 and pins beta2 */
        beta1 = e->lr_schedule.momentum;
        e->adam.p.beta2 = e->lr_schedule.momentum_beta2;
    }
    double sumsq = 0.0;
    e->adam.sumsq = norm_first ? NULL : &sumsq;
    st = z->strategy->step(z, e->lr, beta1, grad_scale);
    e->adam.sumsq = NULL;
    if (st == ZL_OK && !norm_first) st = zl_zero_grad_norm_from(z, sumsq, &e->grad_norm);
    if (st != ZL_OK) return st;
    zl_zero_zero_grads(z);
    zl__engine_ties_zero_grads(e);
    if ((st = zl__engine_ties_sync_values(e)) != ZL_OK) return st;
    zl_lr_schedule_step(&e->lr_schedule);
    e->global_steps++;
    e->global_samples += (int64_t)e->opt.micro_batch_size * e->opt.gradient_accumulation_steps *
                         dp_size(e);
    return ZL_OK;
}

zl_status zl_engine_step(zl_engine *e)
{
    zl_status st = refuse_piped(e, "zl_engine_step");
    if (st != ZL_OK) return st;
    if (zl_engine_is_gradient_accumulation_boundary(e)) {
        if ((st = reduce_tied_grads(e)) != ZL_OK) return st;
        if ((st = reduce_grads(e)) != ZL_OK) return st;
        if ((st = optimizer_step(e)) != ZL_OK) return st;
    }
    e->micro_steps++;
    return ZL_OK;
}

zl_status zl_engine_train_batch(zl_engine *e, zl_batch_source next, void *ctx, float *loss)
{
    int gas = e->opt.gradient_accumulation_steps;
    if (e->micro_steps % gas != 0)
        return zl_errorf(ZL_ERR_INVALID, "train_batch at micro-step %lld, inside an accumulation "
                         "of %d: finish it with forward/backward/step first",
                         (long long)e->micro_steps, gas);
    zl_status st = ZL_OK;
    double loss_sum = 0;
    bool agreed = false; /* the step failed at a loading's agreement */
    bool piped = zl__engine_piped(e);
    /* Pipeline stages read the whole step's data first (engine_pipe.c says why). */
    if (piped && (st = zl__engine_pipe_read_batches(e, next, ctx)) != ZL_OK) agreed = true;
    for (int i = 0; i < e->schedule_len && st == ZL_OK; i++) {
        const zl_instr *in = &e->schedule[i];
        if (e->instr_observer) e->instr_observer(e->instr_observer_ctx, in);
        switch (in->kind) {
        case ZL_LOAD_MICRO_BATCH:
            if (piped) {
                st = zl__engine_pipe_load(e, in->buffer);
                break;
            }
            if ((st = next(ctx, e->batch, e->batch + (size_t)e->model.B * e->model.T)) == ZL_OK)
                st = load_micro_batch(e, in->buffer);
            /* Where a rank fails alone (its data, a signal its source reports): the ranks
             * agree here, so that none goes on into a collective another will not join. */
            e->failed_here = st != ZL_OK;
            st = zl__engine_agree(e, st); /* the data-parallel and tensor-parallel ranks */
            if (st != ZL_OK) agreed = true;
            break;
        case ZL_FORWARD_PASS: {
            float l;
            st = forward_pass(e, in->buffer, &l);
            loss_sum += l;
            break;
        }
        case ZL_BACKWARD_PASS:
            st = backward_pass(e, in->buffer);
            /* Every micro-step but the last is counted here; OptimizerStep counts its own. */
            if (st == ZL_OK && !zl_engine_is_gradient_accumulation_boundary(e)) e->micro_steps++;
            break;
        case ZL_REDUCE_TIED_GRADS: st = reduce_tied_grads(e); break;
        case ZL_REDUCE_GRADS: st = reduce_grads(e); break;
        case ZL_OPTIMIZER_STEP:
            if ((st = optimizer_step(e)) == ZL_OK) e->micro_steps++;
            break;
        case ZL_SEND_ACTIVATION:
        case ZL_RECV_ACTIVATION:
        case ZL_SEND_GRAD:
        case ZL_RECV_GRAD: st = zl__engine_pipe_p2p(e, in); break;
        }
    }
    if (!agreed) e->failed_here = st != ZL_OK; /* any other failure is this rank's own */
    double mean = loss_sum / gas; /* the last stage's; DeepSpeed broadcasts it to the others */
    if (st == ZL_OK && piped) st = zl__engine_pipe_loss(e, &mean);
    if (e->instr_observer) e->instr_observer(e->instr_observer_ctx, NULL); /* the end */
    if (loss) *loss = (float)mean;
    return st;
}

zl_status zl_engine_gather_params(zl_engine *e, float *out)
{
    if (zl__engine_piped(e)) return zl__engine_pipe_gather_params(e, out);
    return e->zero.strategy->gather_all(&e->zero, out);
}

float zl_engine_dp_mean(zl_engine *e, float value)
{
    if (dp_size(e) == 1) return value;
    double v = value;
    zl_sim *clock = zl_comm_set_sim(e->opt.dp, NULL); /* logging, not training: untimed */
    zl_status st = zl_comm_allreduce(e->opt.dp, &v, 1, ZL_F64, ZL_REDUCE_SUM);
    zl_comm_set_sim(e->opt.dp, clock);
    if (st != ZL_OK) return NAN;
    return (float)(v / dp_size(e));
}
