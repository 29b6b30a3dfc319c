#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

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

zl_status zl_engine_create(zl_engine *e, const zl_gpt_config *model_cfg,
                           const zl_engine_options *opt, zl_device *dev)
{
    memset(e, 0, sizeof *e);
    e->opt = *opt;
    e->device = dev;
    zl_status st = zl_model_create(&e->model, model_cfg, dev);
    if (st != ZL_OK) return st;
    zl_model *m = &e->model;

    int64_t numel = (int64_t)m->params_numel;
    int64_t stream_shape[4] = {2, opt->micro_batch_size, opt->seq_len, model_cfg->channels};
    if ((st = zl_tensor_alloc(&e->params, dev, "param", ZL_F32, 1, &numel)) != ZL_OK) goto fail;
    if ((st = zl_tensor_alloc(&e->grads, dev, "grad", ZL_F32, 1, &numel)) != ZL_OK) goto fail;
    zl_model_init_params(m, zl_tensor_f32(&e->params), 0, m->params_numel, opt->seed);
    zl_model_bind_flat(m, zl_tensor_f32(&e->params), zl_tensor_f32(&e->grads));
    if ((st = zl_adamw_init(&e->adam, dev, m->params_numel, &opt->optimizer)) != ZL_OK) goto fail;
    if ((st = zl_lr_schedule_init(&e->lr_schedule, &opt->scheduler, opt->optimizer.lr,
                                  opt->optimizer.beta1)) != ZL_OK)
        goto fail;
    if ((st = build_ranges(e)) != ZL_OK) goto fail;
    if ((st = zl_model_alloc_activations(m, opt->micro_batch_size, opt->seq_len)) != ZL_OK) goto fail;
    if ((st = zl_tensor_alloc(&e->stream, dev, "act.stream", ZL_F32, 4, stream_shape)) != ZL_OK)
        goto fail;
    return ZL_OK;
fail:
    zl_engine_destroy(e);
    return st;
}

void zl_engine_destroy(zl_engine *e)
{
    zl_tensor_free(&e->stream);
    zl_adamw_destroy(&e->adam);
    zl_tensor_free(&e->grads);
    zl_tensor_free(&e->params);
    if (e->model.layers) zl_model_destroy(&e->model);
    free(e->ranges);
    memset(e, 0, sizeof *e);
}

zl_status zl_engine_forward(zl_engine *e, const int32_t *inputs, const int32_t *targets,
                            float *loss)
{
    zl_model *m = &e->model;
    zl_status st = zl_model_set_batch(m, inputs, targets);
    if (st != ZL_OK) return st;
    const float *x = NULL;
    for (int l = 0; l < m->num_layers; l++) x = m->layers[l].out = m->layers[l].vt->forward(m, l, x);
    e->loss = zl_model_mean_loss(m);
    if (loss) *loss = e->loss;
    return ZL_OK;
}

void zl_engine_backward(zl_engine *e)
{
    zl_model *m = &e->model;
    /* DeepSpeed divides each micro-batch's loss by the accumulation steps, so the summed
     * gradient is that of the mean over the global batch. */
    m->loss_grad = m->num_targets
                       ? 1.0f / ((float)m->num_targets * (float)e->opt.gradient_accumulation_steps)
                       : 0.0f;
    size_t BTC = (size_t)m->B * m->T * m->cfg.channels;
    float *dout = NULL, *dinp = zl_tensor_f32(&e->stream);
    for (int l = m->num_layers - 1; l >= 0; l--) {
        m->layers[l].vt->backward(m, l, l ? m->layers[l - 1].out : NULL, dout, l ? dinp : NULL);
        /* This layer's input gradient is the next (earlier) layer's output gradient. */
        float *freed = dout ? dout : dinp + BTC;
        dout = dinp;
        dinp = freed;
    }
}

bool zl_engine_is_gradient_accumulation_boundary(const zl_engine *e)
{
    return (e->micro_steps + 1) % e->opt.gradient_accumulation_steps == 0;
}

double zl_engine_get_lr(const zl_engine *e) { return e->lr_schedule.lr; }

void zl_engine_step(zl_engine *e)
{
    if (zl_engine_is_gradient_accumulation_boundary(e)) {
        const zl_ops *ops = e->device->ops;
        float *grads = zl_tensor_f32(&e->grads);
        size_t n = e->model.params_numel;
        /* Global L2 norm; clip coefficient min(1, max_norm / (norm + 1e-6)) as
         * torch.nn.utils.clip_grad_norm_, folded into the optimizer's gradient scale. */
        e->grad_norm = sqrt(ops->sumsq(grads, n));
        float grad_scale = 1.0f;
        if (e->opt.gradient_clipping > 0) {
            double coef = e->opt.gradient_clipping / (e->grad_norm + 1e-6);
            if (coef < 1.0) grad_scale = (float)coef;
        }
        e->lr = e->lr_schedule.lr;
        double beta1 = e->opt.optimizer.beta1;
        if (e->lr_schedule.has_momentum) { /* OneCycle cycles beta1 and pins beta2 */
            beta1 = e->lr_schedule.momentum;
            e->adam.p.beta2 = e->lr_schedule.momentum_beta2;
        }
        zl_adamw_step(&e->adam, zl_tensor_f32(&e->params), grads, e->ranges, e->num_ranges, e->lr,
                      beta1, grad_scale);
        ops->zero(grads, n * sizeof(float));
        zl_lr_schedule_step(&e->lr_schedule);
        e->global_steps++;
        e->global_samples += e->opt.micro_batch_size * e->opt.gradient_accumulation_steps;
    }
    e->micro_steps++;
}
