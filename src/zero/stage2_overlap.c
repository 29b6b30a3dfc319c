/* Stage 2 with overlap_comm: a layer's reduction runs (non-blocking allreduce) while the
 * next layer computes its backward into the other bucket, as DeepSpeed's side stream does
 * with its two IPG buckets. */
#include <string.h>

#include "zero/zero_internal.h"

/* Complete a reduction in flight: wait, scale after the sum, keep this rank's share. */
zl_status zl__zero2_finish_pending(zl_zero_ctx *z, zl_zero_pending *p)
{
    if (p->layer < 0) return ZL_OK;
    zl_status st = zl_comm_wait(z->dp, &p->req);
    if (st == ZL_OK) {
        size_t b, end;
        zl__zero_layer_range(z, p->layer, &b, &end);
        if (z->post_scale != 1.0)
            zl_precision_scale(z->prec, p->buf, z->prec->comm_dtype, (float)z->post_scale, end - b);
        st = zl__zero2_keep_share(z, p->layer, p->buf);
    }
    p->layer = -1;
    return st;
}

/* Before layer l's backward: alternate buckets; the one we take may still be reducing
 * two layers back. */
zl_status zl__zero2_overlap_swap(zl_zero_ctx *z, int layer)
{
    int turn = z->staging_cur == z->staging_layer.data ? 1 : 0;
    zl_status st = zl__zero2_finish_pending(z, &z->pending[turn]);
    if (st != ZL_OK) return st;
    z->staging_cur = (turn ? &z->staging_spare : &z->staging_layer)->data;
    if (zl_precision_grads_in_place(z->prec)) zl_model_bind_layer_grads(z->model, layer, z->staging_cur);
    return ZL_OK;
}

/* After it: start reducing its gradient g (n elements of comm_dtype). */
zl_status zl__zero2_overlap_start(zl_zero_ctx *z, int layer, void *g, size_t n)
{
    int turn = g == z->staging_layer.data ? 0 : 1;
    zl_zero_pending *p = &z->pending[turn];
    zl_dtype ct = z->prec->comm_dtype;
    if (z->pre_scale != 1.0) zl_precision_scale(z->prec, g, ct, (float)z->pre_scale, n);
    memset(&p->req, 0, sizeof p->req);
    zl_status st = zl_comm_iallreduce(z->dp, g, n, ct, ZL_REDUCE_SUM, &p->req);
    if (st != ZL_OK) return st;
    p->layer = layer;
    p->buf = g;
    return ZL_OK;
}
