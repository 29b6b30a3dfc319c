/* ZeRO stage 3: parameters partitioned too, gathered layer by layer just before use.
 *
 * Layout. Stage 3 partitions per layer, not the flat vector as stages 1-2 do (DeepSpeed
 * partitions per parameter): layer l's range [begin, begin + numel) of the flat vector is
 * padded to a multiple of N and cut into N chunks of `chunk` elements; rank r owns chunk r
 * of every layer. So gathering one layer is one allgather of equal chunks, and the shard
 * this rank holds (its chunks of all layers, back to back) is all it keeps between uses:
 * "param" (its chunks), "master" and Adam's moments (the same size), "grad" (the same).
 *
 * Use. Before a layer runs forward, and again before it runs backward, its chunks are
 * allgathered into a gather buffer and the model's param_ptr are pointed into it; the
 * buffer is reused by a later layer ("released"). While a layer computes, the next one in
 * execution order is prefetched into a second buffer with a non-blocking allgather, when
 * its size is within stage3_prefetch_bucket_size and the two together within
 * stage3_max_live_parameters (DeepSpeed's bounds). The embedding stays gathered from its
 * forward to its backward, since the head uses the tied wte at the end of forward and the
 * start of backward. Layers of at most stage3_param_persistence_threshold elements are
 * persistent: gathered once, kept, and gathered again after each optimizer step.
 *
 * Gradients. Backward writes a layer's gradient into staging (as stage 2); it is then
 * divided by N and reduce-scattered: rank r receives the sum of chunk r, which it adds to
 * its gradient shard. Per step on the wire: an allgather in forward, one in backward and a
 * reduce-scatter, 3 x (N-1)/N of the model, 1.5 x what stages 0-2 move. */
#include <stdlib.h>
#include <string.h>

#include "zero/zero_internal.h"

typedef struct zero3_layer {
    size_t begin, numel; /* the layer's range of the flat vector */
    size_t chunk;        /* per-rank share: ceil(numel / N) */
    size_t shard_offset; /* where this rank's chunk sits in its shard */
    bool persistent;
    zl_tensor keep;      /* persistent layers: their gathered values, tag "gather" */
} zero3_layer;

typedef struct zl_zero3 zl_zero3;

struct zl_zero3 {
    zero3_layer *layers;
    size_t shard_numel;
    zl_tensor gather_tied;     /* tag "gather": the tie's owner (the embedding), gathered forward to backward */
    zl_tensor gather_block[2]; /* tag "gather": the layer in use, and the one prefetched */
    int holds[2];              /* layer whose values each block buffer holds, -1 if none */
    bool prefetch;             /* the second buffer exists (prefetch within the bounds) */
    int pending;               /* layer being prefetched into the other buffer, -1 if none */
    zl_comm_request pending_req;
    zl_param_range *ranges;    /* weight-decay ranges in shard coordinates */
    int num_ranges;
};

/* Layer z's chunk inside a shard-sized tensor (params, master or grads, of its own type). */
static void *shard_ptr(zl_tensor *t, const zero3_layer *lay) { return zl__at(t->data, t->dtype, lay->shard_offset); }

/* Where layer l's gathered values go: its own buffer if persistent, the embedding's, or
 * block buffer `slot`. */
static void *gather_buffer(zl_zero_ctx *z, int l, int slot)
{
    zero3_layer *lay = &z->z3->layers[l];
    if (lay->persistent) return lay->keep.data;
    return (zl__zero_owns_tie(z, l) ? &z->z3->gather_tied : &z->z3->gather_block[slot])->data;
}

/* Start gathering layer l's chunks into its buffer (req NULL: and finish). */
static zl_status start_gather(zl_zero_ctx *z, int l, int slot, zl_comm_request *req)
{
    zero3_layer *lay = &z->z3->layers[l];
    zl_dtype t = z->prec->dtype;
    void *buf = gather_buffer(z, l, slot);
    void *own = zl__at(buf, t, (size_t)z->dp_rank * lay->chunk);
    z->device->ops->copy(z->device->ops, own, shard_ptr(z->params, lay),
                         lay->chunk * zl_dtype_nbytes(t));
    if (z->dp_size == 1) return ZL_OK;
    if (req) return zl_comm_iallgather(z->dp, buf, own, lay->chunk, t, req);
    return zl_comm_allgather(z->dp, buf, own, lay->chunk, t);
}

static zl_status gather(zl_zero_ctx *z, int l, int slot)
{
    zl_status st = start_gather(z, l, slot, NULL);
    if (st != ZL_OK) return st;
    if (!zl__zero_owns_tie(z, l) && !z->z3->layers[l].persistent) z->z3->holds[slot] = l;
    return ZL_OK;
}

static zl_status finish_prefetch(zl_zero_ctx *z)
{
    zl_zero3 *z3 = z->z3;
    if (z3->pending < 0) return ZL_OK;
    z3->pending = -1;
    return zl_comm_wait(z->dp, &z3->pending_req);
}

/* Forget what the block buffers hold (their values are stale after a step). */
static zl_status release_all(zl_zero_ctx *z)
{
    zl_status st = finish_prefetch(z);
    z->z3->holds[0] = z->z3->holds[1] = -1;
    return st;
}

/* The layer that runs after l: forward goes up the list, backward down it; the embedding
 * and persistent layers are never fetched, so they are skipped as targets. */
static int next_fetch(const zl_zero_ctx *z, int l, bool backward)
{
    int n = backward ? l - 1 : l + 1;
    if (n < 0 || n >= z->model->num_layers || zl__zero_owns_tie(z, n) || z->z3->layers[n].persistent)
        return -1;
    return n;
}

static zl_status use_params(zl_zero_ctx *z, int l, bool backward, void **values)
{
    zl_zero3 *z3 = z->z3;
    *values = gather_buffer(z, l, 0); /* persistent layers and the tie's owner */
    if (z3->layers[l].persistent) return ZL_OK; /* always gathered */
    zl_status st;
    int slot;
    if (zl__zero_owns_tie(z, l)) { /* gathered once per micro-step, at the owner's forward */
        if (backward) return ZL_OK;
        if ((st = gather(z, l, 0)) != ZL_OK) return st;
        slot = 1; /* any block buffer may take the prefetch of the next layer */
    } else {
        if (z3->pending == l && (st = finish_prefetch(z)) != ZL_OK) return st;
        slot = z3->holds[0] == l ? 0 : z3->holds[1] == l ? 1 : -1;
        if (slot < 0) { /* not held: gather now into a buffer the prefetch is not using */
            if ((st = finish_prefetch(z)) != ZL_OK) return st;
            slot = z3->prefetch && z3->holds[0] >= 0 && z3->holds[1] < 0 ? 1 : 0;
            if ((st = gather(z, l, slot)) != ZL_OK) return st;
        }
        *values = gather_buffer(z, l, slot);
    }
    /* Prefetch the next layer into the other buffer while this one computes. */
    int n = next_fetch(z, l, backward), other = 1 - slot;
    if (!z3->prefetch || n < 0 || z3->holds[0] == n || z3->holds[1] == n || z3->pending >= 0)
        return ZL_OK;
    size_t n_numel = z3->layers[n].chunk * (size_t)z->dp_size;
    size_t live = n_numel + (l ? z3->layers[l].chunk * (size_t)z->dp_size : 0);
    if ((int64_t)n_numel > z->opt.prefetch_bucket_size || (int64_t)live > z->opt.max_live_parameters)
        return ZL_OK;
    memset(&z3->pending_req, 0, sizeof z3->pending_req);
    if ((st = start_gather(z, n, other, z->dp_size > 1 ? &z3->pending_req : NULL)) != ZL_OK) return st;
    z3->holds[other] = n;
    z3->pending = z->dp_size > 1 ? n : -1;
    return ZL_OK;
}

static zl_status alloc_shards(zl_zero_ctx *z)
{
    zl_model *m = z->model;
    int N = z->dp_size, r = z->dp_rank;
    zl_status st;
    zl_zero3 *z3 = z->z3 = calloc(1, sizeof *z3);
    if (!z3 || !(z3->layers = calloc((size_t)m->num_layers, sizeof *z3->layers)))
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    z3->holds[0] = z3->holds[1] = z3->pending = -1;
    size_t largest_block = 0, off = 0;
    for (int l = 0; l < m->num_layers; l++) {
        zero3_layer *lay = &z3->layers[l];
        size_t end;
        zl_model_layer_range(m, l, &lay->begin, &end);
        lay->numel = end - lay->begin;
        lay->chunk = (lay->numel + (size_t)N - 1) / (size_t)N;
        lay->shard_offset = off;
        off += lay->chunk;
        bool tied = zl__zero_owns_tie(z, l);
        lay->persistent = !tied && (int64_t)lay->numel <= z->opt.param_persistence_threshold;
        if (!tied && !lay->persistent && lay->chunk * (size_t)N > largest_block)
            largest_block = lay->chunk * (size_t)N;
    }
    z3->shard_numel = off;

    const zl_tie_group *tie = zl__zero_tie(z);
    int64_t shard = (int64_t)off, tied_n = tie ? (int64_t)(z3->layers[tie->owner].chunk * (size_t)N) : 0;
    int64_t block = (int64_t)largest_block;
    zl_dtype t = z->prec->dtype;
    if ((st = zl_tensor_alloc(z->params, z->device, "param", t, 1, &shard)) != ZL_OK) return st;
    st = z->offload ? zl__zero_offload_alloc(z, off) /* on the host (zero/offload.c) */
                    : zl_tensor_alloc(z->master, z->device, "master", ZL_F32, 1, &shard);
    if (st != ZL_OK) return st;
    if ((st = zl_tensor_alloc(z->grads, z->device, "grad", z->prec->grad_dtype, 1, &shard)) != ZL_OK) return st;
    if (tie && (st = zl_tensor_alloc(&z3->gather_tied, z->device, "gather", t, 1, &tied_n)) != ZL_OK)
        return st;
    /* The second block buffer exists only when a prefetch can ever happen. */
    z3->prefetch = block && block <= z->opt.prefetch_bucket_size && 2 * block <= z->opt.max_live_parameters;
    for (int b = 0; b < (z3->prefetch ? 2 : 1) && block; b++)
        if ((st = zl_tensor_alloc(&z3->gather_block[b], z->device, "gather", t, 1, &block)) != ZL_OK)
            return st;
    for (int l = 1; l < m->num_layers; l++) {
        zero3_layer *lay = &z3->layers[l];
        int64_t n = (int64_t)(lay->chunk * (size_t)N);
        if (lay->persistent && (st = zl_tensor_alloc(&lay->keep, z->device, "gather", t, 1, &n)) != ZL_OK)
            return st;
    }

    /* Weight-decay ranges, cut to each layer's chunk and placed in shard coordinates. */
    z3->ranges = calloc((size_t)(z->num_ranges + 2 * m->num_layers), sizeof *z3->ranges);
    if (!z3->ranges) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    for (int l = 0; l < m->num_layers; l++) {
        zero3_layer *lay = &z3->layers[l];
        size_t lo = lay->begin + (size_t)r * lay->chunk, hi = lo + lay->chunk;
        if (hi > lay->begin + lay->numel) hi = lay->begin + lay->numel;
        if (lo >= hi) continue;
        int n = zl_param_ranges_clip(z3->ranges + z3->num_ranges, z->ranges, z->num_ranges, lo, hi);
        for (int i = 0; i < n; i++) z3->ranges[z3->num_ranges + i].offset += lay->shard_offset;
        z3->num_ranges += n;
    }
    return ZL_OK;
}

/* Rank 0's initial values, layer by layer (so ranks seeded differently agree): rank 0
 * initialises the layer into a gather buffer, broadcasts it, and every rank keeps its
 * chunk (master too) and, for a persistent layer, the whole layer. */
static zl_status init_params(zl_zero_ctx *z)
{
    zl_model *m = z->model;
    zl_dtype t = z->prec->dtype;
    for (int l = 0; l < m->num_layers; l++) {
        zero3_layer *lay = &z->z3->layers[l];
        void *buf = gather_buffer(z, l, 0);
        size_t padded = lay->chunk * (size_t)z->dp_size;
        z->device->ops->zero(z->device->ops, buf, padded * zl_dtype_nbytes(t));
        if (z->dp_rank == 0) zl_precision_init_values(z->prec, buf, t, lay->begin, lay->begin + lay->numel);
        if (z->dp_size > 1) {
            zl_status st = zl_comm_broadcast(z->dp, buf, padded, t, 0);
            if (st != ZL_OK) return st;
        }
        void *own = zl__at(buf, t, (size_t)z->dp_rank * lay->chunk);
        z->device->ops->copy(z->device->ops, shard_ptr(z->params, lay), own,
                             lay->chunk * zl_dtype_nbytes(t));
        zl__zero_master_init(z, lay->shard_offset, own, lay->chunk);
    }
    return release_all(z);
}

/* After layer l's backward: average its staged gradient (comm_dtype) over the ranks and
 * add this rank's chunk of it to the gradient shard. The staging holds the layer's padded
 * range with zeros past its end. */
static zl_status reduce_layer(zl_zero_ctx *z, int l, void *staging)
{
    zero3_layer *lay = &z->z3->layers[l];
    int N = z->dp_size;
    zl_dtype ct = z->prec->comm_dtype;
    void *own = zl__at(staging, ct, (size_t)z->dp_rank * lay->chunk);
    if (N > 1) {
        zl_precision_scale(z->prec, staging, ct, 1.0f / (float)N, lay->chunk * (size_t)N);
        zl_status st = zl_comm_reduce_scatter(z->dp, own, staging, lay->chunk, ct, ZL_REDUCE_SUM);
        if (st != ZL_OK) return st;
    }
    zl_precision_add(z->prec, shard_ptr(z->grads, lay), z->prec->grad_dtype, own, ct, lay->chunk);
    return ZL_OK;
}

static zl_status step(zl_zero_ctx *z, double lr, double beta1, float grad_scale)
{
    zl_zero3 *z3 = z->z3;
    /* The shard's 16-bit parameters are written by the step's own pass; a chunk's padding
     * is in no range and stays as initialised (zero, in master and parameters alike). */
    if (z->offload) { /* the same step on the host (zero/offload.c) */
        zl_status st = zl__zero_offload_step(z, z->params->data, z->grads->data, z3->shard_numel,
                                             z3->ranges, z3->num_ranges, lr, beta1, grad_scale);
        if (st != ZL_OK) return st;
    } else
        zl_precision_adam_step(z->prec, z->adam, z->master->data, z->params->data, z->grads->data,
                               z3->ranges, z3->num_ranges, lr, beta1, grad_scale);
    /* Gathered copies are stale now: persistent layers are gathered again at once, the
     * others at their next use. */
    zl_status st = release_all(z);
    for (int l = 1; l < z->model->num_layers && st == ZL_OK; l++)
        if (z3->layers[l].persistent) st = gather(z, l, 0);
    return st;
}

static zl_status gather_all(zl_zero_ctx *z, float *out)
{
    zl_zero3 *z3 = z->z3;
    if (z->device->ops->meta)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "the meta backend holds shapes, not parameter values");
    zl_status st = release_all(z);
    for (int l = 0; l < z->model->num_layers && st == ZL_OK; l++) {
        if ((st = gather(z, l, 0)) == ZL_OK)
            zl_convert(out + z3->layers[l].begin, ZL_F32, gather_buffer(z, l, 0), z->prec->dtype,
                       z3->layers[l].numel);
    }
    if (st == ZL_OK) st = release_all(z); /* the buffers now hold whatever came last */
    return st;
}

/* The padded length of layer l's range: what its gradient staging holds (zeros past the
 * range, for the reduce-scatter). */
static size_t layer_padded(const zl_zero_ctx *z, int l)
{
    return z->z3->layers[l].chunk * (size_t)z->dp_size;
}

static void free_shards(zl_zero_ctx *z)
{
    zl_zero3 *z3 = z->z3;
    if (!z3) return;
    if (z3->layers)
        for (int l = 0; l < z->model->num_layers; l++) zl_tensor_free(&z3->layers[l].keep);
    if (z3->pending >= 0) zl_comm_wait(z->dp, &z3->pending_req); /* never leave it in flight */
    zl_tensor_free(&z3->gather_block[1]);
    zl_tensor_free(&z3->gather_block[0]);
    zl_tensor_free(&z3->gather_tied);
    free(z3->ranges);
    free(z3->layers);
    free(z3);
    z->z3 = NULL;
}

static zl_status alloc(zl_zero_ctx *z)
{
    /* The flat partition is kept for what reads it; the shards are per layer. */
    zl_partition_init(z->part, z->model->params_numel, z->dp_size, z->dp_rank);
    zl__zero_set_scales(z, true);
    zl_status st = alloc_shards(z);
    if (st != ZL_OK) return st;
    z->opt_numel = z->z3->shard_numel;
    return zl__zero_staging_alloc(z, layer_padded);
}

static zl_status begin_grads(zl_zero_ctx *z, int layer)
{
    size_t csz = zl_dtype_nbytes(z->prec->comm_dtype);
    /* The first tie member in backward (the head) starts the tied gradient in the owner's
     * staging, which stays until the owner's own backward completes it. */
    const zl_tie_group *tie = zl__zero_tie(z);
    if (zl__zero_starts_tie(z, layer))
        z->device->ops->zero(z->device->ops, zl__zero_staging_of(z, tie->owner),
                             layer_padded(z, tie->owner) * csz);
    if (zl__zero_owns_tie(z, layer)) return ZL_OK;
    z->device->ops->zero(z->device->ops, zl__zero_staging_of(z, layer),
                         layer_padded(z, layer) * csz);
    return ZL_OK;
}

static zl_status end_grads(zl_zero_ctx *z, int layer)
{
    zl__zero_flush_grads(z, layer, zl__zero_staging_of, z->prec->comm_dtype);
    return reduce_layer(z, layer, zl__zero_staging_of(z, layer));
}

/* The shard, whose padding holds zeros, so it may be summed and scanned whole. */
static void *own_grads(zl_zero_ctx *z, size_t *n)
{
    *n = z->z3->shard_numel;
    return z->grads->data;
}

static void free_all(zl_zero_ctx *z)
{
    zl__zero_offload_free(z);
    zl_tensor_free(z->master);
    zl__zero_free_grads(z);
    free_shards(z);
    zl_tensor_free(z->params);
}

const zl_zero_strategy zl__zero_stage3 = {
    .name = "ZeRO stage 3",
    .stage = 3,
    .zero_optimizer = true,
    .alloc = alloc,
    .init_params = init_params,
    .use_params = use_params,
    .begin_grads = begin_grads,
    .end_grads = end_grads,
    .end_backward = zl__zero_no_op,
    .reduce = zl__zero_no_op,
    .own_grads = own_grads,
    .step = step,
    .gather_all = gather_all,
    .free = free_all,
};
