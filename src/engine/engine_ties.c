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
 * (whole_grads: ZeRO 0-1, as DeepSpeed's pipeline engine requires).
 *
 * Across pipeline stages (engine_pipe.c) a stage that holds a member without the owner
 * binds it to a copy whatever tie_copies says. ReduceTiedGrads sends the copy's gradient
 * to the owner's stage (the rank of the same data-parallel index), which adds it to the
 * owner's before the data-parallel reduction; after the step the owner's stage sends the
 * new values back. DeepSpeed instead keeps the tied weight as a parameter of both stages,
 * allreduces its gradient between them and steps both copies (with Adam's state twice);
 * the values are the same, and the member's stage here holds the values and gradient
 * only. */
#include <string.h>

#include "engine/engine_internal.h"

enum { TAG_TIE_GRAD = 4, TAG_TIE_VALUES = 5 }; /* on the pipeline group (engine_pipe.c) */

/* Member k is bound to a copy of its own on this rank. */
static bool has_copy(const zl_engine *e, const zl_tie_group *g, int k)
{
    return g->member_here[k] && (e->opt.tie_copies || !g->owner_here);
}

/* Member k is on another stage than the owner, which is here: its gradient comes over. */
static bool remote_member(const zl_tie_group *g, int k) { return g->owner_here && !g->member_here[k]; }

zl_status zl__engine_ties_alloc(zl_engine *e)
{
    zl_model *m = &e->model;
    bool any = false;
    for (int t = 0; t < m->num_ties; t++)
        for (int k = 0; k < m->ties[t].num_members; k++)
            any |= has_copy(e, &m->ties[t], k) || remote_member(&m->ties[t], k);
    if (!any) return ZL_OK;
    if (!e->zero.strategy->whole_grads)
        return zl_errorf(ZL_ERR_CONFIG,
                         "tied parameters bound to copies of their own need gradients kept whole "
                         "until the boundary, which %s does not do\n  hint: use ZeRO stage 0 "
                         "or 1 (DeepSpeed's pipeline engine allows no more)",
                         e->zero.strategy->name);
    for (int t = 0; t < m->num_ties; t++) {
        zl_tie_group *g = &m->ties[t];
        int64_t n = (int64_t)g->numel;
        for (int k = 0; k < g->num_members; k++) {
            zl_tensor *v = &e->tie_values[t][k], *gr = &e->tie_grads[t][k];
            zl_status st;
            if (has_copy(e, g, k)) {
                if ((st = zl_tensor_alloc(v, e->device, "param", ZL_F32, 1, &n)) != ZL_OK ||
                    (st = zl_tensor_alloc(gr, e->device, "grad", ZL_F32, 1, &n)) != ZL_OK)
                    return st;
                g->copy_values[k] = zl_tensor_f32(v);
                g->copy_grads[k] = zl_tensor_f32(gr);
            } else if (remote_member(g, k)) { /* where the member's gradient lands: a
                                               * receive buffer, not a model state */
                if ((st = zl_tensor_alloc(gr, e->device, "pipe.tie", ZL_F32, 1, &n)) != ZL_OK) return st;
            }
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
 * after each optimizer step; a member's stage receives them from the owner's. */
zl_status zl__engine_ties_sync_values(zl_engine *e)
{
    zl_model *m = &e->model;
    for (int t = 0; t < m->num_ties; t++) {
        const zl_tie_group *g = &m->ties[t];
        size_t n = g->numel;
        zl_status st;
        if (!g->owner_here) {
            for (int k = 0; k < g->num_members; k++)
                if (g->member_here[k] &&
                    (st = zl_comm_recv(e->opt.pipe, g->copy_values[k], n, ZL_F32,
                                       zl__engine_stage_of(e, g->owner), TAG_TIE_VALUES)) != ZL_OK)
                    return st;
            continue;
        }
        bool needed = false;
        for (int k = 0; k < g->num_members; k++) needed |= has_copy(e, g, k) || remote_member(g, k);
        if (!needed) continue;
        /* the owner's values as its forward sees them: f32, wherever the strategy keeps them */
        if ((st = zl__engine_use_layer(e, g->owner, false)) != ZL_OK) return st;
        const float *owner = m->param_ptr[g->param];
        for (int k = 0; k < g->num_members; k++) {
            if (has_copy(e, g, k))
                m->device->ops->copy(m->device->ops, g->copy_values[k], owner, n * sizeof(float));
            else if (remote_member(g, k) &&
                     (st = zl_comm_send(e->opt.pipe, owner, n, ZL_F32,
                                        zl__engine_stage_of(e, g->members[k]), TAG_TIE_VALUES)) != ZL_OK)
                return st;
        }
    }
    return ZL_OK;
}

/* ReduceTiedGrads: owner += every copy (sent over from a member's stage), then every local
 * copy = the sum: one gradient. */
zl_status zl__engine_reduce_tied_grads(zl_engine *e)
{
    zl_model *m = &e->model;
    const zl_ops *ops = m->device->ops;
    for (int t = 0; t < m->num_ties; t++) {
        const zl_tie_group *g = &m->ties[t];
        size_t n = g->numel;
        zl_status st;
        if (!g->owner_here) {
            for (int k = 0; k < g->num_members; k++)
                if (g->member_here[k] &&
                    (st = zl_comm_send(e->opt.pipe, g->copy_grads[k], n, ZL_F32,
                                       zl__engine_stage_of(e, g->owner), TAG_TIE_GRAD)) != ZL_OK)
                    return st;
            continue;
        }
        void *owner = NULL;
        for (int k = 0; k < g->num_members; k++) {
            float *add = NULL;
            if (has_copy(e, g, k)) add = g->copy_grads[k];
            else if (remote_member(g, k)) {
                add = zl_tensor_f32(&e->tie_grads[t][k]);
                if ((st = zl_comm_recv(e->opt.pipe, add, n, ZL_F32,
                                       zl__engine_stage_of(e, g->members[k]), TAG_TIE_GRAD)) != ZL_OK)
                    return st;
            }
            if (!add) continue; /* the member shares the owner's gradient */
            if (!owner) owner = zl_zero_param_grads(&e->zero, g->param);
            zl_precision_add(&e->prec, owner, e->prec.grad_dtype, add, ZL_F32, n);
        }
        for (int k = 0; k < g->num_members; k++) {
            if (!has_copy(e, g, k)) continue;
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
    const zl_model *m = &e->model;
    for (int t = 0; t < m->num_ties; t++)
        for (int k = 0; k < m->ties[t].num_members; k++)
            if (m->ties[t].copy_grads[k])
                m->device->ops->zero(m->device->ops, m->ties[t].copy_grads[k],
                                     m->ties[t].numel * sizeof(float));
}
