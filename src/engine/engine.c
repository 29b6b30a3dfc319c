#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
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

#define dp_size zl__engine_dp_size
#define dp_rank zl__engine_dp_rank

static zl_status check_options(const zl_engine_options *o)
{
    if (o->zero_stage < 0 || o->zero_stage > 3)
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.stage must be 0, 1, 2 or 3, got %d",
                         o->zero_stage);
    if (o->reduce_bucket_size <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.reduce_bucket_size must be positive, got %lld",
                         (long long)o->reduce_bucket_size);
    if (o->gradient_predivide_factor <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "gradient_predivide_factor must be positive, got %g",
                         o->gradient_predivide_factor);
    return ZL_OK;
}

/* Allocation and initialisation; the caller agrees on the status across ranks. */
static zl_status create_local(zl_engine *e, const zl_gpt_config *model_cfg)
{
    const zl_engine_options *opt = &e->opt;
    zl_device *dev = e->device;
    zl_status st = check_options(opt);
    if (st != ZL_OK) return st;
    if ((st = zl_model_create(&e->model, model_cfg, dev)) != ZL_OK) return st;
    zl_model *m = &e->model;

    /* Stage 0 keeps everything whole; stages 1-2 pad the flat vector so it splits evenly
     * and step only this rank's partition (engine_zero.c). */
    zl_partition_init(&e->part, m->params_numel, opt->zero_stage ? dp_size(e) : 1,
                      opt->zero_stage ? dp_rank(e) : 0);
    int64_t numel = (int64_t)e->part.padded_numel;
    int64_t stream_shape[4] = {2, opt->micro_batch_size, opt->seq_len, model_cfg->channels};
    if ((st = build_ranges(e)) != ZL_OK) return st;
    if ((st = zl__engine_precision_init(e)) != ZL_OK) return st;
    size_t opt_numel = m->params_numel;
    if (opt->zero_stage == 3) {
        /* Parameters, master weights and gradients are shards; values arrive in
         * zl_engine_create, once every rank has allocated. */
        if ((st = zl__zero3_alloc(e)) != ZL_OK) return st;
        opt_numel = zl__zero3_shard_numel(e);
    } else {
        if ((st = zl_tensor_alloc(&e->params, dev, "param", e->dtype, 1, &numel)) != ZL_OK) return st;
        zl__engine_init_values(e, e->params.data, e->dtype, 0, m->params_numel);
        /* fp32 master weights: the partition's (stages 1-2), or all of them under 16 bits */
        if (opt->zero_stage >= 1 || e->dtype != ZL_F32) {
            int64_t pn = (int64_t)e->part.partition_numel;
            if ((st = zl_tensor_alloc(&e->master, dev, "master", ZL_F32, 1, &pn)) != ZL_OK) return st;
            opt_numel = e->part.partition_numel;
        }
    }
    if ((st = zl__engine_alloc_grads(e)) != ZL_OK) return st;
    if ((st = zl_adamw_init(&e->adam, dev, opt_numel, &opt->optimizer)) != ZL_OK) return st;
    if ((st = zl_lr_schedule_init(&e->lr_schedule, &opt->scheduler, opt->optimizer.lr,
                                  opt->optimizer.beta1)) != ZL_OK)
        return st;
    if ((st = zl_model_alloc_activations(m, opt->micro_batch_size, opt->seq_len)) != ZL_OK) return st;
    return zl_tensor_alloc(&e->stream, dev, "act.stream", ZL_F32, 4, stream_shape);
}

zl_status zl_engine_create(zl_engine *e, const zl_gpt_config *model_cfg,
                           const zl_engine_options *opt, zl_device *dev)
{
    memset(e, 0, sizeof *e);
    e->opt = *opt;
    e->device = dev;
    zl_sim_enter(dev->sim); /* the simulated clock, if any */
    e->pending[0].layer = e->pending[1].layer = -1;
    /* Zero means "DeepSpeed's default", so a zeroed options struct trains as one rank. */
    if (e->opt.reduce_bucket_size == 0) e->opt.reduce_bucket_size = 500000000;
    if (e->opt.gradient_predivide_factor == 0) e->opt.gradient_predivide_factor = 1.0;
    if (e->opt.param_persistence_threshold == 0) e->opt.param_persistence_threshold = 100000;
    if (e->opt.prefetch_bucket_size == 0) e->opt.prefetch_bucket_size = 50000000;
    if (e->opt.max_live_parameters == 0) e->opt.max_live_parameters = 1000000000;
    /* An out-of-memory hint suggests only what would help this run (no ZeRO on one rank,
     * not the stage it already uses). */
    zl_ledger_set_hint_context(&dev->ledger, opt->dp ? opt->dp->size : 1, opt->zero_stage);
    zl_status st = create_local(e, model_cfg);
    /* Every rank must learn that one rank ran out of memory, or the others would wait for
     * it in the broadcast below. */
    if (opt->dp) st = zl_comm_agree(opt->dp, st);
    if (st == ZL_OK && e->opt.zero_stage == 3)
        st = zl__zero3_init_params(e);
    else if (st == ZL_OK && opt->dp && opt->dp->size > 1)
        st = zl_comm_broadcast(opt->dp, e->params.data, e->model.params_numel, e->dtype, 0);
    /* The master weights start as the (rounded) parameters, as DeepSpeed's fp32 copies of
     * the 16-bit weights do. */
    if (st == ZL_OK && e->opt.zero_stage < 3 && e->master.data)
        e->device->ops->cast(e->master.data, ZL_F32, zl__at(e->params.data, e->dtype, e->part.begin),
                             e->dtype, zl_partition_real_numel(&e->part));
    if (st != ZL_OK) zl_engine_destroy(e);
    return st;
}

void zl_engine_destroy(zl_engine *e)
{
    zl_sim_enter(e->device ? e->device->sim : NULL); /* the simulated clock, if any */
    zl_tensor_free(&e->stream);
    zl_adamw_destroy(&e->adam);
    zl_tensor_free(&e->master);
    zl__engine_free_grads(e);
    zl__zero3_free(e);
    zl_tensor_free(&e->params);
    zl__engine_precision_free(e);
    if (e->model.layers) zl_model_destroy(&e->model);
    free(e->ranges);
    memset(e, 0, sizeof *e);
}

/* Make layer l's parameters available to it: gathered (stage 3), and as f32 (16 bits). */
static zl_status use_layer(zl_engine *e, int l, bool backward)
{
    void *values;
    if (e->opt.zero_stage == 3) {
        zl_status st = zl__zero3_use_layer(e, l, backward, &values);
        if (st != ZL_OK) return st;
    } else {
        size_t b, end;
        zl_model_layer_range(&e->model, l, &b, &end);
        values = zl__at(e->params.data, e->dtype, b);
    }
    return zl__engine_bind_layer(e, l, values, backward);
}

zl_status zl_engine_forward(zl_engine *e, const int32_t *inputs, const int32_t *targets,
                            float *loss)
{
    zl_sim_enter(e->device ? e->device->sim : NULL); /* the simulated clock, if any */
    zl_model *m = &e->model;
    zl_status st = zl_model_set_batch(m, inputs, targets);
    if (st != ZL_OK) return st;
    const float *x = NULL;
    for (int l = 0; l < m->num_layers; l++) {
        if ((st = use_layer(e, l, false)) != ZL_OK) return st;
        x = zl_model_after_forward(m, l, m->layers[l].vt->forward(m, l, x));
    }
    e->loss = zl_model_mean_loss(m);
    if (loss) *loss = e->loss;
    return ZL_OK;
}

zl_status zl_engine_backward(zl_engine *e)
{
    zl_sim_enter(e->device ? e->device->sim : NULL); /* the simulated clock, if any */
    zl_model *m = &e->model;
    /* DeepSpeed divides each micro-batch's loss by the accumulation steps, so the summed
     * gradient is that of the mean over the global batch; fp16 multiplies by the scale. */
    m->loss_grad = m->num_targets ? (float)(e->scaler.cur_scale /
                                            ((double)m->num_targets * e->opt.gradient_accumulation_steps))
                                  : 0.0f;
    size_t BTC = (size_t)m->B * m->T * m->cfg.channels;
    float *dout = NULL, *dinp = zl_tensor_f32(&e->stream);
    for (int l = m->num_layers - 1; l >= 0; l--) {
        zl_status st = use_layer(e, l, true);
        if (st != ZL_OK) return st;
        if ((st = zl__engine_layer_grads_begin(e, l)) != ZL_OK) return st;
        const float *inp = zl_model_before_backward(m, l);
        m->layers[l].vt->backward(m, l, inp, dout, l ? dinp : NULL);
        if ((st = zl__engine_layer_grads_end(e, l)) != ZL_OK) return st; /* stages 2-3 reduce */
        /* This layer's input gradient is the next (earlier) layer's output gradient. */
        float *freed = dout ? dout : dinp + BTC;
        dout = dinp;
        dinp = freed;
    }
    return zl__engine_flush_grads(e);
}

bool zl_engine_is_gradient_accumulation_boundary(const zl_engine *e)
{
    return (e->micro_steps + 1) % e->opt.gradient_accumulation_steps == 0;
}

double zl_engine_get_lr(const zl_engine *e) { return e->lr_schedule.lr; }

zl_status zl_engine_step(zl_engine *e)
{
    zl_sim_enter(e->device ? e->device->sim : NULL); /* the simulated clock, if any */
    zl_status st = ZL_OK;
    if (zl_engine_is_gradient_accumulation_boundary(e)) {
        if ((st = zl__engine_boundary_reduce(e)) != ZL_OK) return st;
        /* The scale the gradients carry: the update below may change it for the next step. */
        double scale = e->scaler.cur_scale;
        size_t own_n;
        void *own = zl__engine_own_grads(e, &own_n);
        bool skip;
        if ((st = zl__engine_check_overflow(e, own, own_n, &skip)) != ZL_OK) return st;
        if (skip) {
            /* DeepSpeed: zero the gradients, count the skip, leave the schedule; the step
             * and its samples still count. */
            zl__engine_zero_grads(e);
            e->skipped_steps++;
            e->grad_norm = -1;
            e->global_steps++;
            e->global_samples += (int64_t)e->opt.micro_batch_size * e->opt.gradient_accumulation_steps *
                                 dp_size(e);
            e->micro_steps++;
            return ZL_OK;
        }
        if ((st = zl__engine_grad_norm(e, &e->grad_norm)) != ZL_OK) return st;
        e->grad_norm /= scale;
        /* Unscale and clip in one factor: 1 / (scale * max(1, (norm + 1e-6) / clip)), the
         * formula of DeepSpeed's ZeRO and FP16 optimizers, and in fp32 (scale 1) torch's
         * clip_grad_norm_ coefficient min(1, clip / (norm + 1e-6)). */
        float grad_scale = (float)(1.0 / scale);
        if (e->opt.gradient_clipping > 0) {
            double coef = e->opt.gradient_clipping / (e->grad_norm + 1e-6);
            if (coef < 1.0) grad_scale = (float)(coef / scale);
        }
        e->lr = e->lr_schedule.lr;
        double beta1 = e->opt.optimizer.beta1;
        if (e->lr_schedule.has_momentum) { /* OneCycle cycles beta1 and pins beta2 */
            beta1 = e->lr_schedule.momentum;
            e->adam.p.beta2 = e->lr_schedule.momentum_beta2;
        }
        if ((st = zl__engine_optimizer_step(e, beta1, grad_scale)) != ZL_OK) return st;
        zl__engine_zero_grads(e);
        zl_lr_schedule_step(&e->lr_schedule);
        e->global_steps++;
        e->global_samples += (int64_t)e->opt.micro_batch_size * e->opt.gradient_accumulation_steps *
                             dp_size(e);
    }
    e->micro_steps++;
    return ZL_OK;
}

zl_status zl_engine_gather_params(zl_engine *e, float *out)
{
    zl_sim_enter(e->device ? e->device->sim : NULL); /* the simulated clock, if any */
    if (e->opt.zero_stage == 3) return zl__zero3_gather_all(e, out);
    if (e->device->ops->meta)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "the meta backend holds shapes, not parameter values");
    zl_convert(out, ZL_F32, e->params.data, e->dtype, e->model.params_numel);
    return ZL_OK;
}

float zl_engine_dp_mean(zl_engine *e, float value)
{
    zl_sim_enter(NULL); /* logging, not training: no simulated time */
    if (dp_size(e) == 1) return value;
    double v = value;
    if (zl_comm_allreduce(e->opt.dp, &v, 1, ZL_F64, ZL_REDUCE_SUM) != ZL_OK) return NAN;
    return (float)(v / dp_size(e));
}
