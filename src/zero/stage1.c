/* ZeRO stage 1: optimizer state partitioned. The fp32 master weights and Adam's moments
 * exist for this rank's partition only; the whole gradient is reduced at the boundary as
 * at stage 0 (a bucketed allreduce, or, without use_multi_rank_bucket_allreduce, each
 * owner's slice reduced to its owner), each rank steps its partition, and the updated
 * partitions are allgathered into everyone's parameters. */
#include "zero/zero_internal.h"

/* Step the fp32 master copy of this rank's partition (all of it at stage 0), rounding it
 * into the parameters in the same pass, and gather everyone's updated partition. */
zl_status zl__zero_step_master(zl_zero_ctx *z, double lr, double beta1, float grad_scale, bool gather)
{
    const zl_partition *p = z->part;
    zl_dtype t = z->prec->dtype;
    size_t n;
    void *own = z->strategy->own_grads(z, &n);
    zl_param_range local[z->num_ranges > 0 ? z->num_ranges : 1];
    int nlocal = zl_param_ranges_clip(local, z->ranges, z->num_ranges, p->begin, p->end);
    /* The kernel rounds the stepped master into this rank's slice of the 16-bit
     * parameters as it goes (the ranges cover every parameter, so the whole slice). */
    void *slice = zl__at(z->params->data, t, p->begin);
    if (z->offload) { /* the same step on the host (zero/offload.c) */
        zl_status st = zl__zero_offload_step(z, slice, own, n, local, nlocal, lr, beta1, grad_scale);
        if (st != ZL_OK) return st;
    } else
        zl_precision_adam_step(z->prec, z->adam, z->master->data, slice, own, local, nlocal, lr,
                               beta1, grad_scale);
    if (z->dp_size == 1 || !gather) return ZL_OK;
    return zl_comm_allgather(z->dp, z->params->data, zl__at(z->params->data, t, p->begin),
                             p->partition_numel, t);
}

static zl_status alloc(zl_zero_ctx *z)
{
    zl__zero_set_scales(z, true);
    z->bucket_allreduce = z->opt.use_multi_rank_bucket_allreduce;
    zl_status st = zl__zero_replicated_alloc(z, true);
    return st != ZL_OK ? st : zl__zero_whole_grads_alloc(z);
}

/* The partition's slice of the whole reduced gradient. */
static void *own_grads(zl_zero_ctx *z, size_t *n)
{
    *n = zl_partition_real_numel(z->part);
    return zl__at(z->grads->data, z->prec->grad_dtype, z->part->begin);
}

static zl_status step(zl_zero_ctx *z, double lr, double beta1, float grad_scale)
{
    return zl__zero_step_master(z, lr, beta1, grad_scale, true);
}

const zl_zero_strategy zl__zero_stage1 = {
    .name = "ZeRO stage 1",
    .stage = 1,
    .zero_optimizer = true,
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
