/* ZeRO stage 0: plain data parallelism. Parameters, gradients and optimizer state whole
 * on every rank; backward accumulates into the whole flat gradient, which is averaged by
 * a bucketed allreduce at the accumulation boundary; every rank steps everything. Stage 1
 * keeps this gradient handling (zl__zero_whole_grads_*). */
#include "zero/zero_internal.h"

/* The whole padded gradient, tag "grad"; a "bucket" to convert it to comm_dtype when the
 * reduction sends another type. */
zl_status zl__zero_whole_grads_alloc(zl_zero_ctx *z)
{
    zl_precision *p = z->prec;
    int64_t n = (int64_t)z->part->padded_numel;
    zl_status st = zl_tensor_alloc(z->grads, z->device, "grad", p->grad_dtype, 1, &n);
    if (st != ZL_OK) return st;
    if (p->grad_dtype != p->comm_dtype && z->dp_size > 1) {
        int64_t c = (int64_t)(z->part->padded_numel < (size_t)z->opt.reduce_bucket_size
                                  ? z->part->padded_numel : (size_t)z->opt.reduce_bucket_size);
        if ((st = zl_tensor_alloc(&z->comm_buf, z->device, "bucket", p->comm_dtype, 1, &c)) != ZL_OK)
            return st;
    }
    for (int l = 0; l < z->model->num_layers && zl_precision_grads_in_place(p); l++) {
        size_t b, end;
        zl__zero_layer_range(z, l, &b, &end);
        zl_model_bind_layer_grads(z->model, l, zl_tensor_f32(z->grads) + b);
    }
    return ZL_OK;
}

/* Layer l's range of the whole gradient. */
static void *whole_dest(zl_zero_ctx *z, int l)
{
    size_t b, end;
    zl__zero_layer_range(z, l, &b, &end);
    return zl__at(z->grads->data, z->prec->grad_dtype, b);
}

zl_status zl__zero_whole_grads_end(zl_zero_ctx *z, int layer)
{
    zl__zero_flush_grads(z, layer, whole_dest, z->prec->grad_dtype);
    return ZL_OK;
}

zl_status zl__zero_whole_grads_reduce(zl_zero_ctx *z)
{
    zl_model_settle_grads(z->model); /* gradients no backward wrote: zero (zl_zero_zero_grads) */
    if (z->dp_size == 1) return ZL_OK;
    return zl__zero_reduce_typed(z, z->grads->data, z->prec->grad_dtype, 0, z->part->padded_numel);
}

static zl_status alloc(zl_zero_ctx *z)
{
    zl__zero_set_scales(z, false);
    z->bucket_allreduce = true;
    zl_status st = zl__zero_replicated_alloc(z, false);
    return st != ZL_OK ? st : zl__zero_whole_grads_alloc(z);
}

static void *own_grads(zl_zero_ctx *z, size_t *n)
{
    *n = z->model->params_numel;
    return z->grads->data;
}

/* fp32: Adam on the parameters themselves; 16 bits: on the fp32 master copy of all of
 * them, rounded into the parameters (nothing to gather). */
static zl_status step(zl_zero_ctx *z, double lr, double beta1, float grad_scale)
{
    if (zl_precision_master_weights(z->prec)) return zl__zero_step_master(z, lr, beta1, grad_scale, false);
    zl_precision_adam_step(z->prec, z->adam, z->params->data, NULL, z->grads->data, z->ranges,
                           z->num_ranges, lr, beta1, grad_scale);
    return ZL_OK;
}

const zl_zero_strategy zl__zero_stage0 = {
    .name = "ZeRO stage 0",
    .stage = 0,
    .zero_optimizer = false,
    .whole_grads = true,
    .alloc = alloc,
    .init_params = zl__zero_replicated_init_params,
    .use_params = zl__zero_replicated_use_params,
    .begin_grads = zl__zero_no_layer_op,
    .end_grads = zl__zero_whole_grads_end,
    .end_backward = zl__zero_no_op,
    .reduce = zl__zero_whole_grads_reduce,
    .own_grads = own_grads,
    .step = step,
    .gather_all = zl__zero_replicated_gather_all,
    .fragments = zl__zero_replicated_fragments,
    .params_changed = zl__zero_no_op,
    .free = zl__zero_replicated_free,
};
