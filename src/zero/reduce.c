/* Gradient reductions the stages share: the bucketed allreduce (stage 0, and stages 1-2
 * with use_multi_rank_bucket_allreduce, DeepSpeed's default) and the reduction of each
 * owner's slice to its owner (stages 1-2 without it). */
#include "zero/zero_internal.h"

/* DeepSpeed's scale factors: stage 0 (and reduce_scatter off) divides by the predivide
 * factor before the sum and multiplies by factor/W after it (prescale_gradients: all of
 * 1/W before); stages 1-2 with reduce_scatter divide by W before the sum. */
void zl__zero_set_scales(zl_zero_ctx *z, bool partitioned)
{
    double W = z->dp_size, f = z->opt.gradient_predivide_factor;
    if ((partitioned && z->opt.reduce_scatter) || z->opt.prescale_gradients)
        z->pre_scale = 1.0 / W, z->post_scale = 1.0;
    else
        z->pre_scale = 1.0 / f, z->post_scale = f / W;
}

/* Average g, the gradient of the flat range [first, first + n), over the data-parallel
 * ranks, in buckets of reduce_bucket_size elements. With bucket_allreduce every rank gets
 * the whole sum and a partitioned stage keeps its share. Without it, each owner's slice is
 * reduced to that owner alone, one reduce per bucket: the ZeRO paper's reduce-scatter
 * volume, (N-1)/N of the range per rank instead of the allreduce's 2(N-1)/N. Then only the
 * own slice holds the sum. */
zl_status zl__zero_reduce_range(zl_zero_ctx *z, void *g, size_t first, size_t n)
{
    zl_dtype ct = z->prec->comm_dtype;
    double pre = z->pre_scale, post = z->post_scale;
    size_t bucket = (size_t)z->opt.reduce_bucket_size;
    if (pre != 1.0) zl_precision_scale(z->prec, g, ct, (float)pre, n);
    zl_status st = ZL_OK;
    if (z->bucket_allreduce) {
        for (size_t off = 0; off < n && st == ZL_OK; off += bucket)
            st = zl_comm_allreduce(z->dp, zl__at(g, ct, off), n - off < bucket ? n - off : bucket, ct,
                                   ZL_REDUCE_SUM);
        if (st == ZL_OK && post != 1.0) zl_precision_scale(z->prec, g, ct, (float)post, n);
        return st;
    }
    size_t P = z->part->partition_numel;
    for (int r = 0; r < z->dp_size && st == ZL_OK; r++) {
        size_t lo = first > (size_t)r * P ? first : (size_t)r * P;
        size_t hi = first + n < (size_t)(r + 1) * P ? first + n : (size_t)(r + 1) * P;
        for (size_t off = lo; off < hi && st == ZL_OK; off += bucket) {
            void *x = zl__at(g, ct, off - first);
            st = zl_comm_reduce(z->dp, x, x, hi - off < bucket ? hi - off : bucket, ct, ZL_REDUCE_SUM, r);
        }
        if (st == ZL_OK && r == z->dp_rank && post != 1.0 && lo < hi)
            zl_precision_scale(z->prec, zl__at(g, ct, lo - first), ct, (float)post, hi - lo);
    }
    return st;
}

/* In place when g is of the communication type, else through comm_buf, a bucket at a
 * time (data_types.grad_accum_dtype fp32 with 16-bit communication, or the reverse). */
zl_status zl__zero_reduce_typed(zl_zero_ctx *z, void *g, zl_dtype gt, size_t first, size_t n)
{
    zl_dtype ct = z->prec->comm_dtype;
    if (gt == ct) return zl__zero_reduce_range(z, g, first, n);
    const zl_ops *ops = z->device->ops;
    size_t cap = z->comm_buf.numel;
    zl_status st = ZL_OK;
    for (size_t off = 0; off < n && st == ZL_OK; off += cap) {
        size_t len = n - off < cap ? n - off : cap;
        ops->cast(ops, z->comm_buf.data, ct, zl__at(g, gt, off), gt, len);
        st = zl__zero_reduce_range(z, z->comm_buf.data, first + off, len);
        ops->cast(ops, zl__at(g, gt, off), gt, z->comm_buf.data, ct, len);
    }
    return st;
}
