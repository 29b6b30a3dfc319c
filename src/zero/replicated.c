/* Parameters replicated on every rank (stages 0-2): the whole padded flat vector, tag
 * "param", with the fp32 master weights of this rank's partition (stages 1-2, or all of
 * them under 16 bits at stage 0). Partitions are contiguous slices of the padded flat
 * vector (zero/partition.h), so a partition boundary may cut through a parameter, as in
 * DeepSpeed. */
#include "zero/zero_internal.h"

#include <stdlib.h>

zl_status zl__zero_replicated_alloc(zl_zero_ctx *z, bool partitioned)
{
    zl_precision *p = z->prec;
    /* Stage 0 keeps everything whole; stages 1-2 pad the flat vector so it splits evenly
     * and step only this rank's partition. */
    zl_partition_init(z->part, z->model->params_numel, partitioned ? z->dp_size : 1,
                      partitioned ? z->dp_rank : 0);
    int64_t numel = (int64_t)z->part->padded_numel;
    zl_status st = zl_tensor_alloc(z->params, z->device, "param", p->dtype, 1, &numel);
    if (st != ZL_OK) return st;
    zl_precision_init_values(p, z->params->data, p->dtype, 0, z->model->params_numel);
    z->opt_numel = z->model->params_numel;
    if (partitioned || zl_precision_master_weights(p)) {
        int64_t pn = (int64_t)z->part->partition_numel;
        st = z->offload ? zl__zero_offload_alloc(z, z->part->partition_numel)
                        : zl_tensor_alloc(z->master, z->device, "master", ZL_F32, 1, &pn);
        if (st != ZL_OK) return st;
        z->opt_numel = z->part->partition_numel;
    }
    return ZL_OK;
}

/* Rank 0's values everywhere; the master weights start as the (rounded) parameters, as
 * DeepSpeed's fp32 copies of the 16-bit weights do. */
zl_status zl__zero_replicated_init_params(zl_zero_ctx *z)
{
    zl_dtype t = z->prec->dtype;
    if (z->dp_size > 1) {
        zl_status st = zl_comm_broadcast(z->dp, z->params->data, z->model->params_numel, t, 0);
        if (st != ZL_OK) return st;
    }
    if (z->master->data)
        zl__zero_master_init(z, 0, zl__at(z->params->data, t, z->part->begin),
                             zl_partition_real_numel(z->part));
    return ZL_OK;
}

zl_status zl__zero_replicated_use_params(zl_zero_ctx *z, int layer, bool backward, void **values)
{
    (void)backward;
    size_t b, end;
    zl__zero_layer_range(z, layer, &b, &end);
    *values = zl__at(z->params->data, z->prec->dtype, b);
    return ZL_OK;
}

zl_status zl__zero_replicated_gather_all(zl_zero_ctx *z, float *out)
{
    if (z->device->ops->meta)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "the meta backend holds shapes, not parameter values");
    return zl__zero_values_to_host(z, out, z->params->data, z->prec->dtype, z->model->params_numel);
}

zl_status zl__zero_values_to_host(const zl_zero_ctx *z, float *out, const void *values, zl_dtype t,
                                  size_t n)
{
    const zl_ops *ops = zl_device_backend(z->device);
    if (!n) return ZL_OK;
    if (t == ZL_F32) {
        zl_device_read(ops, out, values, n * sizeof(float));
        return ZL_OK;
    }
    void *narrow = malloc(n * zl_dtype_nbytes(t));
    if (!narrow) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading back %zu parameters", n);
    zl_device_read(ops, narrow, values, n * zl_dtype_nbytes(t));
    zl_convert(out, ZL_F32, narrow, t, n);
    free(narrow);
    return ZL_OK;
}

/* The optimizer's state is the partition's real elements (all of them at stage 0); the
 * parameters are the whole vector. */
int zl__zero_replicated_fragments(const zl_zero_ctx *z, bool params, zl_zero_fragment *out, int cap)
{
    size_t begin = params ? 0 : z->part->begin;
    size_t n = params ? z->model->params_numel : zl_partition_real_numel(z->part);
    if (!n) return 0;
    if (cap > 0) out[0] = (zl_zero_fragment){begin, n, 0};
    return 1;
}

void zl__zero_replicated_free(zl_zero_ctx *z)
{
    zl__zero_offload_free(z);
    zl_tensor_free(z->master);
    zl__zero_free_grads(z);
    zl_tensor_free(z->params);
    zl_tensor_free(&z->comm_buf);
}
