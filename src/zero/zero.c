/* Choosing a strategy, and what every stage does alike (zero/zero.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "zero/zero_internal.h"

zl_status zl_zero_choose(int stage, const zl_zero_strategy **out)
{
    static const zl_zero_strategy *const stages[] = {&zl__zero_stage0, &zl__zero_stage1,
                                                     &zl__zero_stage2, &zl__zero_stage3};
    if (stage < 0 || stage > 3)
        return zl_errorf(ZL_ERR_CONFIG, "zero_optimization.stage must be 0, 1, 2 or 3, got %d", stage);
    *out = stages[stage];
    return ZL_OK;
}

/* Each rank sums the squares of the elements it owns; under a ZeRO optimizer the partial
 * sums are added across ranks, in double. */
/* The sum of squares of this rank's share. With tensor parallelism, a parameter the
 * group holds whole (split NONE: the LayerNorms, the row-parallel biases, the positions)
 * is the same on every rank of the group: tp rank 0 counts it, the others skip it, so
 * that the sum over the model-parallel group counts it once (Megatron's
 * param_is_not_tensor_parallel_duplicate). Where each piece of own sits in the flat
 * vector is what the strategy's fragments say (as a checkpoint reads them): any stage,
 * with or without offload. */
static double own_sumsq(zl_zero_ctx *z, const void *own, size_t n)
{
    const zl_model *m = z->model;
    if (m->tp_size <= 1 || m->tp_rank == 0) return zl_precision_own_sumsq(z->prec, own, n);
    int nf = zl_zero_fragments(z, false, NULL, 0);
    zl_zero_fragment *f = malloc((size_t)(nf > 0 ? nf : 1) * sizeof *f);
    ZL_ASSERT(f != NULL); /* a few entries per layer */
    zl_zero_fragments(z, false, f, nf);
    zl_dtype t = z->prec->own_host ? ZL_F32 : z->prec->grad_dtype; /* offload: f32 on the host */
    double sum = 0;
    for (int k = 0; k < nf; k++)
        for (int i = 0; i < m->num_params; i++) {
            const zl_param_info *p = &m->params[i];
            if (p->split == ZL_SPLIT_NONE) continue; /* tp rank 0 counts it */
            size_t lo = p->offset > f[k].flat ? p->offset : f[k].flat;
            size_t hi = p->offset + p->numel < f[k].flat + f[k].numel ? p->offset + p->numel
                                                                      : f[k].flat + f[k].numel;
            if (lo < hi && f[k].local + (hi - f[k].flat) <= n)
                sum += zl_precision_own_sumsq(
                    z->prec, zl__at((void *)own, t, f[k].local + (lo - f[k].flat)), hi - lo);
        }
    free(f);
    return sum;
}

zl_status zl_zero_grad_norm(zl_zero_ctx *z, double *norm)
{
    size_t n;
    void *own = z->strategy->own_grads(z, &n);
    return zl_zero_grad_norm_from(z, own_sumsq(z, own, n), norm);
}

zl_status zl_zero_grad_norm_from(zl_zero_ctx *z, double sumsq, double *norm)
{
    if (z->strategy->zero_optimizer && z->dp_size > 1) {
        zl_status st = zl_comm_allreduce(z->dp, &sumsq, 1, ZL_F64, ZL_REDUCE_SUM);
        if (st != ZL_OK) return st;
    }
    if (z->mp) { /* the other stages' parameters: DeepSpeed's model-parallel group */
        zl_status st = zl_comm_allreduce(z->mp, &sumsq, 1, ZL_F64, ZL_REDUCE_SUM);
        if (st != ZL_OK) return st;
    }
    *norm = sqrt(sumsq);
    return ZL_OK;
}

void *zl_zero_param_grads(zl_zero_ctx *z, int param)
{
    if (!z->strategy->whole_grads) return NULL;
    zl_model_settle_grad(z->model, param);
    return zl__at(z->grads->data, z->prec->grad_dtype, z->model->params[param].offset);
}

/* Where backward writes the whole gradient in place as f32 (stages 0-1 in fp32), the
 * zeroing is left to it: the gradients are marked fresh, and each one's first write of the
 * next accumulation overwrites it (zl_model_mark_grads_fresh); the boundary settles what
 * was not written (zl__zero_whole_grads_reduce). On gpt2-124m that is a 500 MB memset
 * less per step, and the weight-gradient GEMMs of the first micro-step no longer read C.
 * The padding past the parameters is never written: it stays zero. */
void zl_zero_zero_grads(zl_zero_ctx *z)
{
    if (z->grads_on_host) { /* ZeRO-2 offload: the next shares overwrite (offload.c) */
        z->offload_grad_fresh = true;
        return;
    }
    if (z->strategy->whole_grads && zl_precision_grads_in_place(z->prec)) {
        zl_model_mark_grads_fresh(z->model);
        return;
    }
    z->device->ops->zero(z->device->ops, z->grads->data, zl_tensor_nbytes(z->grads));
}

/* ---- gradient staging (stages 2-3) -------------------------------------------------- */

zl_status zl__zero_staging_alloc(zl_zero_ctx *z, size_t (*numel)(const zl_zero_ctx *, int))
{
    zl_model *m = z->model;
    size_t largest = 0;
    for (int l = 0; l < m->num_layers; l++)
        if (!zl__zero_owns_tie(z, l) && numel(z, l) > largest) largest = numel(z, l);
    const zl_tie_group *tie = zl__zero_tie(z);
    int64_t tied_n = tie ? (int64_t)numel(z, tie->owner) : 0, layer_n = (int64_t)largest;
    zl_dtype ct = z->prec->comm_dtype;
    zl_status st;
    if (tie && (st = zl_tensor_alloc(&z->staging_tied, z->device, "bucket", ct, 1, &tied_n)) != ZL_OK)
        return st;
    if ((st = zl_tensor_alloc(&z->staging_layer, z->device, "bucket", ct, 1, &layer_n)) != ZL_OK)
        return st;
    z->staging_cur = z->staging_layer.data;
    if (z->overlap &&
        (st = zl_tensor_alloc(&z->staging_spare, z->device, "bucket", ct, 1, &layer_n)) != ZL_OK)
        return st;
    /* f32: backward writes straight into the staging (16 bits: into the work gradients,
     * flushed into the staging after each layer). */
    for (int l = 0; l < m->num_layers && zl_precision_grads_in_place(z->prec); l++)
        zl_model_bind_layer_grads(m, l, zl__zero_owns_tie(z, l) ? zl_tensor_f32(&z->staging_tied) : z->staging_cur);
    return ZL_OK;
}

void *zl__zero_staging_of(zl_zero_ctx *z, int layer)
{
    return zl__zero_owns_tie(z, layer) ? z->staging_tied.data : z->staging_cur;
}

void zl__zero_free_grads(zl_zero_ctx *z)
{
    for (int i = 0; i < 2; i++) /* never free a buffer MPI is still writing */
        if (z->pending[i].layer >= 0 && z->pending[i].req.active) zl_comm_wait(z->dp, &z->pending[i].req);
    zl_tensor_free(&z->staging_spare);
    zl_tensor_free(&z->staging_layer);
    zl_tensor_free(&z->staging_tied);
    zl_tensor_free(z->grads);
}

void zl__zero_flush_grads(zl_zero_ctx *z, int layer, void *(*dest)(zl_zero_ctx *, int), zl_dtype dt)
{
    if (zl_precision_grads_in_place(z->prec)) return;
    zl_precision_flush_grads(z->prec, layer, dest(z, layer), dt);
    const zl_tie_group *tie = zl_model_tie_used_by(z->model, layer);
    if (tie) /* a member's (the head's) share of the tied parameter */
        zl_precision_flush_grads(z->prec, tie->owner, dest(z, tie->owner), dt);
}

zl_status zl__zero_no_op(zl_zero_ctx *z) { (void)z; return ZL_OK; }
zl_status zl__zero_no_layer_op(zl_zero_ctx *z, int layer) { (void)z; (void)layer; return ZL_OK; }

int zl_zero_fragments(const zl_zero_ctx *z, bool params, zl_zero_fragment *out, int cap)
{
    return z->strategy->fragments(z, params, out, cap);
}

zl_status zl_zero_check_checkpointable(const zl_zero_ctx *z)
{
    const zl_ops *ops = zl_device_backend(z->device);
    if (ops->meta)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "the meta backend holds shapes, not values: there is "
                         "nothing to save or load");
    if (z->nvme || z->nvme_param)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "checkpoints of a run that offloads to NVMe "
                         "(zero_optimization.offload_%s.device \"nvme\") are not built yet\n"
                         "  hint: offload to \"cpu\" to save and resume, or train without saving",
                         z->nvme ? "optimizer" : "param");
    return ZL_OK;
}

const zl_tensor *zl_zero_master(const zl_zero_ctx *z)
{
    /* Stage 0 in fp32 steps the parameters themselves: they are the master weights. */
    return z->master->data ? z->master : z->params;
}

zl_status zl_zero_params_changed(zl_zero_ctx *z)
{
    return z->strategy->params_changed(z);
}
