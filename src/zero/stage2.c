/* ZeRO stage 2: gradients partitioned too. Backward writes each layer's gradient into a
 * staging buffer (comm_dtype, "bucket"), which is reduced as soon as the layer is done
 * (a bucketed allreduce, or each owner's slice reduced to its owner), and only this
 * rank's share is added to its gradient partition. The reduction runs every micro-step
 * (DeepSpeed's behaviour); only the partition is accumulated across micro-steps. With
 * overlap_comm, a layer's reduction runs while the next layer computes
 * (stage2_overlap.c). Optimizer state and the step are stage 1's. With offload_optimizer
 * the partition is not on the device at all: each share goes to the host as it is
 * reduced and accumulates there (zero/offload.c, zl__zero_offload_add_share). */
#include "zero/zero_internal.h"

static size_t layer_numel(const zl_zero_ctx *z, int l)
{
    size_t b, end;
    zl__zero_layer_range(z, l, &b, &end);
    return end - b;
}

static zl_status alloc(zl_zero_ctx *z)
{
    zl__zero_set_scales(z, true);
    z->bucket_allreduce = z->opt.use_multi_rank_bucket_allreduce;
    /* Owner reduction has no non-blocking form here and stays blocking. */
    z->overlap = z->opt.overlap_comm && z->dp_size > 1 && z->opt.use_multi_rank_bucket_allreduce;
    zl_status st = zl__zero_replicated_alloc(z, true);
    if (st != ZL_OK) return st;
    /* With offload the partition accumulates on the host (offload.grad), not here. */
    z->grads_on_host = z->offload;
    z->offload_grad_fresh = true;
    if (z->grads_on_host) zl_precision_own_grads_on_host(z->prec, z->host);
    int64_t pn = (int64_t)z->part->partition_numel;
    if (!z->grads_on_host &&
        (st = zl_tensor_alloc(z->grads, z->device, "grad", z->prec->grad_dtype, 1, &pn)) != ZL_OK)
        return st;
    return zl__zero_staging_alloc(z, layer_numel);
}

/* Add this rank's share of a reduced layer gradient g (the layer's range) to its
 * gradient partition: on the device, or with offload on the host. */
zl_status zl__zero2_keep_share(zl_zero_ctx *z, int layer, void *g)
{
    size_t b, end;
    zl__zero_layer_range(z, layer, &b, &end);
    const zl_partition *p = z->part;
    size_t lo = b > p->begin ? b : p->begin;
    size_t hi = end < p->end ? end : p->end;
    if (lo >= hi) return ZL_OK;
    void *share = zl__at(g, z->prec->comm_dtype, lo - b);
    if (z->grads_on_host) return zl__zero_offload_add_share(z, lo - p->begin, share, hi - lo);
    zl_precision_add(z->prec, zl__at(z->grads->data, z->prec->grad_dtype, lo - p->begin),
                     z->prec->grad_dtype, share, z->prec->comm_dtype, hi - lo);
    return ZL_OK;
}

static zl_status begin_grads(zl_zero_ctx *z, int layer)
{
    size_t csz = zl_dtype_nbytes(z->prec->comm_dtype);
    /* With offload, the shares of the layers before may still be on their way to the host
     * from the buckets zeroed below (offload.c, zl__zero_offload_add_share). */
    if (z->grads_on_host) zl_device_copy_wait(z->device);
    /* The first tie member in backward (the head) starts the tied gradient in the owner's
     * staging, which stays until the owner's own backward completes it. */
    const zl_tie_group *tie = zl__zero_tie(z);
    if (zl__zero_starts_tie(z, layer))
        z->device->ops->zero(z->device->ops, zl__zero_staging_of(z, tie->owner),
                             layer_numel(z, tie->owner) * csz);
    if (zl__zero_owns_tie(z, layer)) return ZL_OK;
    if (z->overlap) {
        zl_status st = zl__zero2_overlap_swap(z, layer);
        if (st != ZL_OK) return st;
    }
    z->device->ops->zero(z->device->ops, zl__zero_staging_of(z, layer),
                         layer_numel(z, layer) * csz);
    return ZL_OK;
}

static zl_status end_grads(zl_zero_ctx *z, int layer)
{
    zl__zero_flush_grads(z, layer, zl__zero_staging_of, z->prec->comm_dtype);
    size_t b, end;
    zl__zero_layer_range(z, layer, &b, &end);
    void *g = zl__zero_staging_of(z, layer);
    if (z->overlap && layer > 0 && (int64_t)(end - b) <= z->opt.reduce_bucket_size)
        return zl__zero2_overlap_start(z, layer, g, end - b);
    zl_status st = z->dp_size > 1 ? zl__zero_reduce_range(z, g, b, end - b) : ZL_OK;
    if (st != ZL_OK) return st;
    return zl__zero2_keep_share(z, layer, g);
}

static zl_status end_backward(zl_zero_ctx *z)
{
    zl_status st = zl__zero2_finish_pending(z, &z->pending[0]);
    zl_status st2 = zl__zero2_finish_pending(z, &z->pending[1]);
    /* With offload the partition is on the host, whose norm and step read it next. */
    if (z->grads_on_host) zl_device_copy_wait(z->device);
    /* Every element of the partition has had this micro-step's share: the next add. */
    z->offload_grad_fresh = false;
    return st != ZL_OK ? st : st2;
}

/* The gradient is the partition (with offload: on the host, widened to f32; the
 * precision policy reads it there, zl_precision_own_grads_on_host). */
static void *own_grads(zl_zero_ctx *z, size_t *n)
{
    *n = zl_partition_real_numel(z->part);
    return z->grads_on_host ? z->offload_grad.data : z->grads->data;
}

static zl_status step(zl_zero_ctx *z, double lr, double beta1, float grad_scale)
{
    return zl__zero_step_master(z, lr, beta1, grad_scale, true);
}

const zl_zero_strategy zl__zero_stage2 = {
    .name = "ZeRO stage 2",
    .stage = 2,
    .zero_optimizer = true,
    .alloc = alloc,
    .init_params = zl__zero_replicated_init_params,
    .use_params = zl__zero_replicated_use_params,
    .begin_grads = begin_grads,
    .end_grads = end_grads,
    .end_backward = end_backward,
    .reduce = zl__zero_no_op,
    .own_grads = own_grads,
    .step = step,
    .gather_all = zl__zero_replicated_gather_all,
    .fragments = zl__zero_replicated_fragments,
    .params_changed = zl__zero_no_op,
    .free = zl__zero_replicated_free,
};
