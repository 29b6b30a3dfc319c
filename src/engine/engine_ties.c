/* Tied parameters whose members keep copies of their own: ReduceTiedGrads.
 *
 * GPT-2's head uses the embedding's wte. While both layers run on one rank they share one
 * binding (zl_tie_group: the head reads and adds into the owner's parameter), and the
 * tied gradient is whole when the owner's backward ends. When the members live apart,
 * as when pipeline stages hold the embedding and the head, each stage keeps its own copy
 * of the parameter (DeepSpeed's TiedLayerSpec) and its own gradient of it; once per step,
 * before the data-parallel reduction, every copy's gradient is summed into one
 * (DeepSpeed's ReduceTiedGrads, an allreduce over the ranks holding a member), every
 * copy then steps with that same gradient, and the copies stay equal.
 *
 * Here the members are on one rank, each bound to a buffer of its own
 * (zl_engine_options.tie_copies): the sum is local, and after the optimizer steps the
 * owner, the copies take its new values (what identical steps on identical copies give).
 * The copies' gradients are f32 (what layers write); the owner's is the strategy's, in
 * grad_dtype, so the strategy must keep the gradient whole until the boundary
 * (whole_grads: ZeRO 0-1, as DeepSpeed's pipeline engine requires). */
#include <string.h>

#include "engine/engine_internal.h"

static size_t tie_numel(const zl_engine *e, const zl_tie_group *g)
{
    return e->model.params[g->param].numel;
}

zl_status zl__engine_ties_alloc(zl_engine *e)
{
    if (!e->opt.tie_copies) return ZL_OK;
    if (!e->zero.strategy->whole_grads)
        return zl_errorf(ZL_ERR_CONFIG,
                         "tied parameters bound to copies of their own need gradients kept whole "
                         "until the boundary, which %s does not do\n  hint: use ZeRO stage 0 "
                         "or 1 (DeepSpeed's pipeline engine allows no more)",
                         e->zero.strategy->name);
    zl_model *m = &e->model;
    for (int t = 0; t < m->num_ties; t++) {
        zl_tie_group *g = &m->ties[t];
        int64_t n = (int64_t)tie_numel(e, g);
        for (int k = 0; k < g->num_members; k++) {
            zl_tensor *v = &e->tie_values[t][k], *gr = &e->tie_grads[t][k];
            zl_status st;
            if ((st = zl_tensor_alloc(v, e->device, "param", ZL_F32, 1, &n)) != ZL_OK ||
                (st = zl_tensor_alloc(gr, e->device, "grad", ZL_F32, 1, &n)) != ZL_OK)
                return st;
            g->copy_values[k] = zl_tensor_f32(&e->tie_values[t][k]);
            g->copy_grads[k] = zl_tensor_f32(&e->tie_grads[t][k]);
        }
    }
    return ZL_OK;
}

void zl__engine_ties_free(zl_engine *e)
{
    for (int t = 0; t < ZL_MAX_TIES; t++)
        for (int k = 0; k < ZL_TIE_MAX_MEMBERS; k++) {
            zl_tensor_free(&e->tie_values[t][k]);
            zl_tensor_free(&e->tie_grads[t][k]);
        }
}

/* The copies take the owner's values: at the start (every rank has rank 0's by then) and
 * after each optimizer step. */
zl_status zl__engine_ties_sync_values(zl_engine *e)
{
    if (!e->opt.tie_copies) return ZL_OK;
    zl_model *m = &e->model;
    for (int t = 0; t < m->num_ties; t++) {
        const zl_tie_group *g = &m->ties[t];
        /* the owner's values as its forward sees them: f32, wherever the strategy keeps them */
        zl_status st = zl__engine_use_layer(e, g->owner, false);
        if (st != ZL_OK) return st;
        for (int k = 0; k < g->num_members; k++)
            m->device->ops->copy(m->device->ops, g->copy_values[k], m->param_ptr[g->param],
                                 tie_numel(e, g) * sizeof(float));
    }
    return ZL_OK;
}

/* ReduceTiedGrads: owner += every copy, then every copy = the sum: one gradient. */
zl_status zl__engine_reduce_tied_grads(zl_engine *e)
{
    if (!e->opt.tie_copies) return ZL_OK; /* the members share the owner's gradient */
    zl_model *m = &e->model;
    const zl_ops *ops = m->device->ops;
    for (int t = 0; t < m->num_ties; t++) {
        const zl_tie_group *g = &m->ties[t];
        size_t n = tie_numel(e, g);
        void *owner = zl_zero_param_grads(&e->zero, g->param);
        for (int k = 0; k < g->num_members; k++)
            zl_precision_add(&e->prec, owner, e->prec.grad_dtype, g->copy_grads[k], ZL_F32, n);
        for (int k = 0; k < g->num_members; k++) {
            if (e->prec.grad_dtype == ZL_F32)
                ops->copy(ops, g->copy_grads[k], owner, n * sizeof(float));
            else
                ops->cast(ops, g->copy_grads[k], ZL_F32, owner, e->prec.grad_dtype, n);
        }
    }
    return ZL_OK;
}

/* With the gradients, after the step (or its skip). */
void zl__engine_ties_zero_grads(zl_engine *e)
{
    if (!e->opt.tie_copies) return;
    const zl_model *m = &e->model;
    for (int t = 0; t < m->num_ties; t++)
        for (int k = 0; k < m->ties[t].num_members; k++)
            m->device->ops->zero(m->device->ops, m->ties[t].copy_grads[k],
                                 tie_numel(e, &m->ties[t]) * sizeof(float));
}
