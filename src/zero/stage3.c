/* ZeRO stage 3: parameters partitioned per tensor, fetched whole just before use,
 * prefetched ahead, released after use (DeepSpeed's partitioned parameter coordinator, at
 * the granularity of a tensor).
 *
 * Layout. As DeepSpeed's partition_parameters.py: every parameter tensor is padded to a
 * multiple of N and rank r owns [r*c, (r+1)*c), c = ceil(n/N). A tensor is a "unit": one
 * allgather of equal chunks, however large, as DeepSpeed gathers a parameter. (Cutting
 * large tensors into stage3_prefetch_bucket_size pieces was tried: every allgather pays
 * the ring's (N-1) latency steps, about 15 ms at 1024 ranks in the cost model, and a
 * GPT-3 175B step at 1024 A100s went from 85 s with whole tensors to 246 s with 5e7-element
 * pieces, 40 gathers per block pass instead of 4.) This rank's shard is its chunk of
 * every unit, back to back in the model's order: "param" (its chunks), "master", Adam's
 * moments and "grad" (the same size). Why per tensor and not per layer as before (a
 * layer's range cut in N chunks): a layer's chunk of one rank cuts through tensors, so a
 * tensor could only be fetched by an allgatherv of uneven pieces, or by moving N times
 * its size; per tensor every fetch is one equal allgather of exactly the tensor. The
 * arithmetic is unchanged: Adam is elementwise, a gradient element is the same sum, and
 * padding holds zeros in parameters, master weights and gradients alike.
 *
 * Fetch. A layer still runs only when all its units are present, in its layer-shaped
 * gather buffer (the layout the kernels read): one of two block buffers, or the tie
 * owner's own. A unit whose numel is a multiple of N is allgathered straight into its
 * place; another (a small bias, at most N-1 elements of padding) goes through a landing
 * buffer and is copied into place. After the units of the layer in use are present, the
 * units that come next in execution order (forward up the layers, backward down) are
 * prefetched with non-blocking allgathers while the layer computes, as long as the
 * elements in flight stay within stage3_prefetch_bucket_size and the elements gathered
 * (the layer in use plus what is in flight or present for the next) within
 * stage3_max_live_parameters. As DeepSpeed, the bucket is checked before a unit is added
 * (what is in flight must be under it), so a prefetch may pass it by one unit, and a
 * tensor larger than the bucket is still prefetched when nothing else is in flight; the
 * live bound is checked with the unit. Units that need the landing buffer are not prefetched (it is
 * used synchronously; they are small). The second block buffer exists only when the
 * largest layer in use leaves room for a prefetch within stage3_max_live_parameters.
 *
 * Release. A layer's buffer is released when another layer needs it: the layer that ran
 * before is dropped when the next prefetch claims its buffer, unless it is used again
 * within stage3_max_reuse_distance elements of the upcoming order (DeepSpeed's rule: at
 * the turn from forward to backward the last layers are kept, and their backward needs no
 * gather). The embedding stays gathered from its forward to its backward (the head uses
 * the tied wte at the end of forward and the start of backward). Tensors of at most
 * stage3_param_persistence_threshold elements are persistent, per tensor as in DeepSpeed:
 * gathered once into a keep buffer, copied into place when their layer is fetched, and
 * gathered again after each optimizer step.
 *
 * offload_param (device cpu). The shard of parameters lives on the host device (z->host,
 * tag "param", or "param.pageable" without pin_memory); a fetch copies this rank's chunk
 * host-to-device into its place in the gather buffer (zl_device_copy: charged to the host
 * link of a simulated card, beside the compute) before the allgather, and a prefetch
 * overlaps both (the allgather is issued once the copy of the chunk, 1/N of a tensor, is
 * done). The step writes the updated partition straight back into the host shard (Adam
 * counts its steps per call, so the step is not tiled through a device buffer; the
 * simulator does not charge that write-back).
 *
 * offload_param (device nvme, ZeRO-Infinity; zero/offload_nvme_param.c). The shard lives
 * in swap files, one per unit (<unit>_param.tensor.swp: the unit's chunk), and is nowhere
 * in memory (params is not allocated). A fetch reads the chunk into a pool buffer, copies
 * it host-to-device and allgathers as above; the ranks agree on the read's status before
 * the allgather (one 8-byte allreduce per fetched unit), so a short read fails every rank
 * instead of leaving the others in the allgather. While a layer computes, the reads of
 * the next two layers' units are issued (the next layer's allgather is prefetched then too
 * and needs its chunks). The step writes the updated chunks back: without optimizer
 * offload the device's Adam runs unit by unit (elementwise, so the same bits) into a
 * gather buffer, copied device-to-host and written; with offload_optimizer cpu the host's
 * step leaves the rounded shard in offload.param and it is written from there; with
 * offload_optimizer nvme each sub-group's rounded slice goes to the files instead of the
 * device (offload_nvme.c). The reads issued before the step are dropped first and every
 * write is waited for (and agreed on) before the step returns.
 *
 * Gradients. Backward writes a layer's gradient into staging (as stage 2); then, unit by
 * unit, it is divided by N and reduce-scattered: rank r receives the sum of its chunk,
 * which it adds to its gradient shard. Per step on the wire: an allgather in forward, one
 * in backward and a reduce-scatter, 3 x (N-1)/N of the model, 1.5 x stages 0-2. */
#include <stdlib.h>
#include <string.h>

#include "zero/zero_internal.h"

enum { ABSENT, IN_FLIGHT, PRESENT };
enum { TIED_SLOT = 2, NUM_SLOTS = 3 };

typedef struct zero3_unit {
    int layer;
    size_t offset;       /* where the unit starts in its layer's range (elements) */
    size_t numel;        /* real elements */
    size_t chunk;        /* per-rank share: ceil(numel / N) */
    size_t shard_offset; /* where this rank's chunk sits in its shard */
    size_t keep_offset;  /* persistent units: where their values sit in keep */
    bool persistent;
    int state;           /* ABSENT, IN_FLIGHT or PRESENT in its layer's slot */
    zl_comm_request req;
} zero3_unit;

typedef struct zero3_layer {
    size_t begin, numel; /* the layer's range of the flat vector */
    int first_unit, num_units;
} zero3_layer;

typedef struct zl_zero3 zl_zero3;

struct zl_zero3 {
    zero3_layer *layers;
    zero3_unit *units;
    int num_units;
    size_t shard_numel;
    zl_tensor slots[NUM_SLOTS]; /* tag "gather": two block buffers and the tie owner's */
    int holds[NUM_SLOTS];       /* layer whose values each slot holds, -1 if none */
    int num_block_slots;        /* 2 when a prefetch can ever happen, else 1 */
    int last;                   /* the layer used last, -1 if none */
    size_t in_flight;           /* elements being prefetched */
    zl_tensor landing;          /* tag "gather": units whose numel is not a multiple of N */
    zl_tensor grad_landing;     /* tag "bucket": their gradients, padded with zeros */
    zl_tensor keep;             /* tag "gather": persistent units' values */
    zl_param_range *ranges;     /* weight-decay ranges in shard coordinates */
    int num_ranges;
};

static void *at(void *base, zl_dtype t, size_t i) { return zl__at(base, t, i); }

static int slot_of(const zl_zero_ctx *z, int l)
{
    if (zl__zero_owns_tie(z, l)) return TIED_SLOT;
    for (int s = 0; s < 2; s++)
        if (z->z3->holds[s] == l) return s;
    return -1;
}

/* This rank's chunk of unit u into dst (the accelerator): a copy within the device, or
 * from the host with offload_param. */
static zl_status fetch_own(zl_zero_ctx *z, const zero3_unit *u, void *dst)
{
    size_t nbytes = u->chunk * zl_dtype_nbytes(z->prec->dtype);
    if (z->nvme_param) return zl__zero_pnvme_fetch(z, (int)(u - z->z3->units), dst);
    const void *src = at(z->params->data, z->prec->dtype, u->shard_offset);
    if (z->opt.offload_param) return zl_device_copy(z->device, dst, z->host, src, nbytes);
    z->device->ops->copy(z->device->ops, dst, src, nbytes);
    return ZL_OK;
}

/* Start gathering unit u's values into dst (req NULL: and finish). */
static zl_status start_unit(zl_zero_ctx *z, zero3_unit *u, void *dst, zl_comm_request *req)
{
    zl_zero3 *z3 = z->z3;
    zl_dtype t = z->prec->dtype;
    size_t N = (size_t)z->dp_size, esz = zl_dtype_nbytes(t);
    bool in_place = u->chunk * N == u->numel;
    void *land = in_place ? dst : z3->landing.data;
    void *own = at(land, t, (size_t)z->dp_rank * u->chunk);
    zl_status st = fetch_own(z, u, own);
    /* The allgather sends what the host copy brought: on a simulated card it is issued
     * once the copy is done (the copy of a chunk, 1/N of a tensor, is short). */
    if (st == ZL_OK && z->opt.offload_param) zl_device_copy_wait(z->device);
    /* NVMe: a short read on one rank must not leave the others in the allgather. */
    if (z->nvme_param && N > 1) st = zl_comm_agree(z->dp, st);
    if (st == ZL_OK && N > 1) {
        if (req && in_place) return zl_comm_iallgather(z->dp, land, own, u->chunk, t, req);
        st = zl_comm_allgather(z->dp, land, own, u->chunk, t);
    }
    if (st == ZL_OK && !in_place) z->device->ops->copy(z->device->ops, dst, land, u->numel * esz);
    return st;
}

static zl_status finish_unit(zl_zero_ctx *z, zero3_unit *u)
{
    if (u->state != IN_FLIGHT) return ZL_OK;
    u->state = PRESENT;
    z->z3->in_flight -= u->numel;
    return zl_comm_wait(z->dp, &u->req);
}

/* Slot s forgets its layer: its units in flight complete, all become absent. */
static zl_status release_slot(zl_zero_ctx *z, int s)
{
    zl_zero3 *z3 = z->z3;
    zl_status st = ZL_OK;
    int l = z3->holds[s];
    if (l < 0) return ZL_OK;
    zero3_layer *lay = &z3->layers[l];
    for (int i = 0; i < lay->num_units; i++) {
        zero3_unit *u = &z3->units[lay->first_unit + i];
        zl_status s2 = finish_unit(z, u);
        if (st == ZL_OK) st = s2;
        u->state = ABSENT;
    }
    z3->holds[s] = -1;
    return st;
}

/* Give layer l slot s; its persistent units are copied in from keep. */
static void claim_slot(zl_zero_ctx *z, int s, int l)
{
    zl_zero3 *z3 = z->z3;
    zl_dtype t = z->prec->dtype;
    z3->holds[s] = l;
    zero3_layer *lay = &z3->layers[l];
    for (int i = 0; i < lay->num_units; i++) {
        zero3_unit *u = &z3->units[lay->first_unit + i];
        if (!u->persistent) continue;
        z->device->ops->copy(z->device->ops, at(z3->slots[s].data, t, u->offset),
                             at(z3->keep.data, t, u->keep_offset), u->numel * zl_dtype_nbytes(t));
        u->state = PRESENT;
    }
}

static zl_status release_all(zl_zero_ctx *z)
{
    zl_status st = ZL_OK;
    for (int s = 0; s < NUM_SLOTS; s++) {
        zl_status s2 = release_slot(z, s);
        if (st == ZL_OK) st = s2;
    }
    z->z3->last = -1;
    return st;
}

/* Elements of layer l gathered (present or in flight), persistent units aside. */
static size_t gathered_numel(const zl_zero_ctx *z, int l)
{
    const zl_zero3 *z3 = z->z3;
    size_t n = 0;
    if (l < 0) return 0;
    const zero3_layer *lay = &z3->layers[l];
    for (int i = 0; i < lay->num_units; i++) {
        const zero3_unit *u = &z3->units[lay->first_unit + i];
        if (!u->persistent && u->state != ABSENT) n += u->numel;
    }
    return n;
}

/* The layer that runs after l: forward goes up the list, backward down it, and with
 * activation checkpointing each segment's recomputed forward comes before its backward
 * (zl_model_next_layer); the tie's owner is fetched at its own forward only, so it is
 * never a prefetch target. */
static int next_layer(const zl_zero_ctx *z, int l, bool backward)
{
    int n = zl_model_next_layer(z->model, l, backward);
    if (n < 0 || zl__zero_owns_tie(z, n)) return -1;
    return n;
}

/* Elements fetched between now (layer l about to run) and layer k's next use, in the
 * upcoming order of this micro-step (DeepSpeed's reuse distance); SIZE_MAX: not used
 * again in it. Only a layer that ran forward before l is used again (in backward). */
static size_t reuse_distance(const zl_zero_ctx *z, int k, int l, bool backward)
{
    if (backward || k >= l) return SIZE_MAX;
    size_t d = 0;
    for (int j = l; j < z->model->num_layers; j++) d += 2 * z->z3->layers[j].numel;
    for (int j = k + 1; j < l; j++) d += z->z3->layers[j].numel; /* their backward */
    return d;
}

/* While layer l computes: prefetch the next layer's units in order, within the bounds. */
static zl_status prefetch(zl_zero_ctx *z, int l, bool backward)
{
    zl_zero3 *z3 = z->z3;
    int n = next_layer(z, l, backward);
    if (n < 0 || z3->num_block_slots < 2 || z->dp_size == 1) return ZL_OK;
    int s = slot_of(z, n);
    if (s < 0) { /* the buffer l is not in: drop what it holds, unless reused soon */
        s = slot_of(z, l) == 0 ? 1 : 0;
        int k = z3->holds[s];
        if (k >= 0 && z->opt.max_reuse_distance > 0 &&
            reuse_distance(z, k, l, backward) <= (size_t)z->opt.max_reuse_distance)
            return ZL_OK;
        zl_status st = release_slot(z, s);
        if (st != ZL_OK) return st;
        claim_slot(z, s, n);
    }
    size_t live = gathered_numel(z, l) + gathered_numel(z, n);
    zero3_layer *lay = &z3->layers[n];
    for (int i = 0; i < lay->num_units; i++) {
        zero3_unit *u = &z3->units[lay->first_unit + i];
        if (u->state != ABSENT) continue;
        if (u->chunk * (size_t)z->dp_size != u->numel) continue; /* the landing is synchronous */
        if ((int64_t)z3->in_flight >= z->opt.prefetch_bucket_size ||
            (int64_t)(live + u->numel) > z->opt.max_live_parameters)
            break;
        memset(&u->req, 0, sizeof u->req);
        zl_status st = start_unit(z, u, at(z3->slots[s].data, z->prec->dtype, u->offset), &u->req);
        if (st != ZL_OK) return st;
        u->state = IN_FLIGHT;
        z3->in_flight += u->numel;
        live += u->numel;
    }
    return ZL_OK;
}

/* offload_param nvme: issue the reads of the next two layers' absent units (the next
 * layer's may be prefetched already: its chunks were read during this one). */
static void read_ahead(zl_zero_ctx *z, int l, bool backward)
{
    if (!z->nvme_param) return;
    int n = l;
    for (int k = 0; k < 2; k++) {
        if ((n = next_layer(z, n, backward)) < 0) return;
        zero3_layer *lay = &z->z3->layers[n];
        for (int i = 0; i < lay->num_units; i++) {
            const zero3_unit *u = &z->z3->units[lay->first_unit + i];
            if (u->state == ABSENT && !u->persistent) zl__zero_pnvme_prefetch(z, lay->first_unit + i);
        }
    }
}

static zl_status use_params(zl_zero_ctx *z, int l, bool backward, void **values)
{
    zl_zero3 *z3 = z->z3;
    zl_status st;
    int s = slot_of(z, l);
    bool tied = s == TIED_SLOT;
    if (tied && !backward && (st = release_slot(z, TIED_SLOT)) != ZL_OK) return st;
    if (s < 0) { /* not held: a block buffer the previous layer is not in */
        s = z3->num_block_slots == 2 && z3->last >= 0 && slot_of(z, z3->last) == 0 ? 1 : 0;
        if ((st = release_slot(z, s)) != ZL_OK) return st;
    }
    if (z3->holds[s] != l) claim_slot(z, s, l);
    zero3_layer *lay = &z3->layers[l];
    for (int i = 0; i < lay->num_units; i++) { /* every unit present before the layer runs */
        zero3_unit *u = &z3->units[lay->first_unit + i];
        if (u->state == IN_FLIGHT) st = finish_unit(z, u);
        else if (u->state == ABSENT) st = start_unit(z, u, at(z3->slots[s].data, z->prec->dtype, u->offset), NULL);
        if (st != ZL_OK) return st;
        u->state = PRESENT;
    }
    *values = z3->slots[s].data;
    z3->last = l;
    if ((st = prefetch(z, l, backward)) != ZL_OK) return st;
    read_ahead(z, l, backward);
    return ZL_OK;
}

/* Units: each (non-empty) tensor of each layer, whole: see the top. */
static zl_status make_units(zl_zero_ctx *z)
{
    zl_model *m = z->model;
    zl_zero3 *z3 = z->z3;
    size_t N = (size_t)z->dp_size;
    int cap = 0;
    for (int i = 0; i < m->num_params; i++) cap += m->params[i].numel != 0;
    if (!(z3->units = calloc((size_t)(cap ? cap : 1), sizeof *z3->units)))
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    size_t off = 0, keep = 0;
    for (int l = 0; l < m->num_layers; l++) {
        zero3_layer *lay = &z3->layers[l];
        size_t end;
        zl_model_layer_range(m, l, &lay->begin, &end);
        lay->numel = end - lay->begin;
        lay->first_unit = z3->num_units;
        for (int p = m->layers[l].first_param; p < m->layers[l].first_param + m->layers[l].num_params; p++) {
            const zl_param_info *pi = &m->params[p];
            bool persistent = (int64_t)pi->numel <= z->opt.param_persistence_threshold;
            if (pi->numel == 0) continue;
            zero3_unit *u = &z3->units[z3->num_units++];
            u->layer = l;
            u->offset = pi->offset - lay->begin;
            u->numel = pi->numel;
            u->chunk = (u->numel + N - 1) / N;
            u->shard_offset = off;
            off += u->chunk;
            u->persistent = persistent;
            if (persistent) {
                u->keep_offset = keep;
                keep += u->numel;
            }
        }
        lay->num_units = z3->num_units - lay->first_unit;
    }
    z3->shard_numel = off;
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
    for (int s = 0; s < NUM_SLOTS; s++) z3->holds[s] = -1;
    z3->last = -1;
    if ((st = make_units(z)) != ZL_OK) return st;
    int64_t block = 0, tied_n = 0, land = 0, keep = 0;
    for (int l = 0; l < m->num_layers; l++) {
        int64_t n = (int64_t)z3->layers[l].numel;
        if (zl__zero_owns_tie(z, l)) tied_n = n;
        else if (n > block) block = n;
    }
    for (int i = 0; i < z3->num_units; i++) {
        const zero3_unit *u = &z3->units[i];
        int64_t padded = (int64_t)(u->chunk * (size_t)N);
        if (padded != (int64_t)u->numel && padded > land) land = padded;
        if (u->persistent) keep += (int64_t)u->numel;
    }

    int64_t shard = (int64_t)z3->shard_numel;
    zl_dtype t = z->prec->dtype;
    if (z->nvme_param) { /* the partitions live in swap files (zero/offload_nvme_param.c) */
        size_t *numel = malloc((size_t)(z3->num_units + 1) * sizeof *numel);
        size_t *offs = malloc((size_t)(z3->num_units + 1) * sizeof *offs);
        if (!numel || !offs) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        for (int i = 0; st == ZL_OK && i < z3->num_units; i++) {
            numel[i] = z3->units[i].chunk;
            offs[i] = z3->units[i].shard_offset;
        }
        if (st == ZL_OK) st = zl__zero_pnvme_alloc(z, z3->num_units, numel, offs);
        free(numel);
        free(offs);
        if (st != ZL_OK) return st;
    } else if (z->opt.offload_param) { /* the partitions live on the host (pinned: "param") */
        const char *tag = z->opt.offload_param_pin ? "param" : "param.pageable";
        if ((st = zl_tensor_alloc(z->params, z->host, tag, t, 1, &shard)) != ZL_OK) return st;
    } else if ((st = zl_tensor_alloc(z->params, z->device, "param", t, 1, &shard)) != ZL_OK) {
        return st;
    }
    st = z->offload ? zl__zero_offload_alloc(z, z3->shard_numel) /* on the host (zero/offload.c) */
                    : zl_tensor_alloc(z->master, z->device, "master", ZL_F32, 1, &shard);
    if (st != ZL_OK) return st;
    if ((st = zl_tensor_alloc(z->grads, z->device, "grad", z->prec->grad_dtype, 1, &shard)) != ZL_OK) return st;
    if (tied_n && (st = zl_tensor_alloc(&z3->slots[TIED_SLOT], z->device, "gather", t, 1, &tied_n)) != ZL_OK)
        return st;
    /* The second block buffer exists only when a prefetch can happen: the largest layer
     * in use leaves room for one within stage3_max_live_parameters (GPT-3 175B's 1.8B
     * blocks need more than DeepSpeed's 1e9: its submodules are smaller than a block). */
    z3->num_block_slots = N > 1 && z->opt.prefetch_bucket_size > 0 && block < z->opt.max_live_parameters ? 2 : 1;
    for (int b = 0; b < z3->num_block_slots && block; b++)
        if ((st = zl_tensor_alloc(&z3->slots[b], z->device, "gather", t, 1, &block)) != ZL_OK)
            return st;
    if (land && (st = zl_tensor_alloc(&z3->landing, z->device, "gather", t, 1, &land)) != ZL_OK) return st;
    if (land && (st = zl_tensor_alloc(&z3->grad_landing, z->device, "bucket", z->prec->comm_dtype, 1,
                                      &land)) != ZL_OK)
        return st;
    if (keep && (st = zl_tensor_alloc(&z3->keep, z->device, "gather", t, 1, &keep)) != ZL_OK) return st;

    /* Weight-decay ranges, cut to each unit's chunk and placed in shard coordinates. */
    z3->ranges = calloc((size_t)(z->num_ranges + 2 * z3->num_units), sizeof *z3->ranges);
    if (!z3->ranges) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    for (int i = 0; i < z3->num_units; i++) {
        const zero3_unit *u = &z3->units[i];
        size_t first = z3->layers[u->layer].begin + u->offset;
        size_t lo = first + (size_t)r * u->chunk, hi = lo + u->chunk;
        if (hi > first + u->numel) hi = first + u->numel;
        if (lo >= hi) continue;
        int n = zl_param_ranges_clip(z3->ranges + z3->num_ranges, z->ranges, z->num_ranges, lo, hi);
        for (int k = 0; k < n; k++) z3->ranges[z3->num_ranges + k].offset += u->shard_offset;
        z3->num_ranges += n;
    }
    return ZL_OK;
}

/* This rank's real elements of unit u: its chunk, short at the end of the unit. */
static size_t own_real(const zl_zero_ctx *z, const zero3_unit *u)
{
    size_t first = (size_t)z->dp_rank * u->chunk;
    if (first >= u->numel) return 0;
    return u->numel - first < u->chunk ? u->numel - first : u->chunk;
}

/* Persistent units gathered into keep (after init and after each step). */
static zl_status gather_persistent(zl_zero_ctx *z)
{
    zl_zero3 *z3 = z->z3;
    for (int i = 0; i < z3->num_units; i++) {
        zero3_unit *u = &z3->units[i];
        if (!u->persistent) continue;
        zl_status st = start_unit(z, u, at(z3->keep.data, z->prec->dtype, u->keep_offset), NULL);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

/* Rank 0's initial values, layer by layer (so ranks seeded differently agree): rank 0
 * initialises the layer into a gather buffer, broadcasts it, and every rank keeps its
 * chunk of each unit (master too); the padding stays zero, as allocated. */
static zl_status init_params(zl_zero_ctx *z)
{
    zl_model *m = z->model;
    zl_zero3 *z3 = z->z3;
    zl_dtype t = z->prec->dtype;
    size_t esz = zl_dtype_nbytes(t);
    zl_status wst = ZL_OK; /* NVMe: the first write failure, agreed on at the end */
    for (int l = 0; l < m->num_layers; l++) {
        zero3_layer *lay = &z3->layers[l];
        void *buf = z3->slots[zl__zero_owns_tie(z, l) ? TIED_SLOT : 0].data;
        z->device->ops->zero(z->device->ops, buf, lay->numel * esz);
        if (z->dp_rank == 0) zl_precision_init_values(z->prec, buf, t, lay->begin, lay->begin + lay->numel);
        if (z->dp_size > 1) {
            zl_status st = zl_comm_broadcast(z->dp, buf, lay->numel, t, 0);
            if (st != ZL_OK) return st;
        }
        for (int i = 0; i < lay->num_units; i++) {
            zero3_unit *u = &z3->units[lay->first_unit + i];
            size_t n = own_real(z, u);
            void *own = at(buf, t, u->offset + (size_t)z->dp_rank * u->chunk);
            void *dst = z->nvme_param ? NULL : at(z->params->data, t, u->shard_offset);
            if (z->nvme_param) {
                zl_status st = zl__zero_pnvme_put(z, lay->first_unit + i, own, n);
                if (wst == ZL_OK) wst = st;
            } else if (n && z->opt.offload_param) {
                zl_status st = zl_device_copy(z->host, dst, z->device, own, n * esz);
                if (st != ZL_OK) return st;
            } else if (n) {
                z->device->ops->copy(z->device->ops, dst, own, n * esz);
            }
            if (n) zl__zero_master_init(z, u->shard_offset, own, n);
            if (u->persistent)
                z->device->ops->copy(z->device->ops, at(z3->keep.data, t, u->keep_offset),
                                     at(buf, t, u->offset), u->numel * esz);
        }
    }
    if (z->opt.offload_param) zl_device_copy_wait(z->device);
    if (z->nvme_param) {
        zl_status st = zl__zero_pnvme_flush(z);
        if (wst == ZL_OK) wst = st;
        if (z->dp_size > 1) wst = zl_comm_agree(z->dp, wst);
        if (wst != ZL_OK) {
            release_all(z);
            return wst;
        }
    }
    return release_all(z);
}

/* After layer l's backward: average its staged gradient (comm_dtype) over the ranks, unit
 * by unit, and add this rank's chunk of each to the gradient shard. */
static zl_status reduce_layer(zl_zero_ctx *z, int l, void *staging)
{
    zl_zero3 *z3 = z->z3;
    zero3_layer *lay = &z3->layers[l];
    size_t N = (size_t)z->dp_size;
    zl_dtype ct = z->prec->comm_dtype;
    size_t csz = zl_dtype_nbytes(ct);
    for (int i = 0; i < lay->num_units; i++) {
        zero3_unit *u = &z3->units[lay->first_unit + i];
        void *g = at(staging, ct, u->offset);
        size_t padded = u->chunk * N;
        if (padded != u->numel) { /* padded with zeros past the unit */
            z->device->ops->zero(z->device->ops, z3->grad_landing.data, padded * csz);
            z->device->ops->copy(z->device->ops, z3->grad_landing.data, g, u->numel * csz);
            g = z3->grad_landing.data;
        }
        void *own = at(g, ct, (size_t)z->dp_rank * u->chunk);
        if (N > 1) {
            zl_precision_scale(z->prec, g, ct, 1.0f / (float)N, padded);
            zl_status st = zl_comm_reduce_scatter(z->dp, own, g, u->chunk, ct, ZL_REDUCE_SUM);
            if (st != ZL_OK) return st;
        }
        zl_precision_add(z->prec, at(z->grads->data, z->prec->grad_dtype, u->shard_offset),
                         z->prec->grad_dtype, own, ct, u->chunk);
    }
    return ZL_OK;
}

/* offload_param nvme without optimizer offload: the device's step, unit by unit, each
 * chunk rounded into a gather buffer (free: everything was released) and written to its
 * file. Adam is elementwise, so stepping per unit gives the bits of one pass. */
static zl_status step_units_to_nvme(zl_zero_ctx *z, double lr, double beta1, float grad_scale)
{
    zl_zero3 *z3 = z->z3;
    zl_dtype t = z->prec->dtype, gt = z->prec->grad_dtype;
    zl_param_range *r = malloc((size_t)(z3->num_ranges + 1) * sizeof *r);
    if (!r) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    int64_t t0 = z->adam->step;
    zl_status st = ZL_OK;
    for (int i = 0; i < z3->num_units; i++) {
        const zero3_unit *u = &z3->units[i];
        void *out = z3->slots[zl__zero_owns_tie(z, u->layer) ? TIED_SLOT : 0].data;
        size_t b = u->shard_offset, n = u->chunk;
        int nr = zl_param_ranges_clip(r, z3->ranges, z3->num_ranges, b, b + n);
        zl_adamw view = *z->adam; /* this unit's moments; the step counted once below */
        view.m.data = zl_tensor_f32(&z->adam->m) + b;
        view.v.data = zl_tensor_f32(&z->adam->v) + b;
        view.m.numel = view.v.numel = view.numel = n;
        view.step = t0;
        zl_precision_adam_step(z->prec, &view, (float *)z->master->data + b, out,
                               at(z->grads->data, gt, b), r, nr, lr, beta1, grad_scale);
        zl_status s2 = zl__zero_pnvme_put(z, i, out, own_real(z, u));
        if (st == ZL_OK) st = s2;
    }
    z->adam->step = t0 + 1;
    free(r);
    (void)t;
    return st;
}

static zl_status step(zl_zero_ctx *z, double lr, double beta1, float grad_scale)
{
    zl_zero3 *z3 = z->z3;
    if (z->nvme_param) { /* the files are rewritten: nothing gathered or read ahead stays */
        zl_status st = release_all(z);
        zl_status s2 = zl__zero_pnvme_drop(z);
        if (st == ZL_OK) st = s2;
        if (st == ZL_OK && z->offload) {
            /* cpu: the rounded shard stays in offload.param (params NULL); nvme: each
             * sub-group's goes to the files (offload_nvme.c). */
            st = zl__zero_offload_step(z, NULL, z->grads->data, z3->shard_numel, z3->ranges,
                                       z3->num_ranges, lr, beta1, grad_scale);
            if (st == ZL_OK && !z->nvme)
                st = zl__zero_pnvme_put_host(z, 0, z->offload_param.data, z3->shard_numel);
        } else if (st == ZL_OK) {
            st = step_units_to_nvme(z, lr, beta1, grad_scale);
        }
        s2 = zl__zero_pnvme_flush(z);
        if (st == ZL_OK) st = s2;
        if (z->dp_size > 1) st = zl_comm_agree(z->dp, st);
        if (st != ZL_OK) return st;
        st = release_all(z);
        return st == ZL_OK ? gather_persistent(z) : st;
    }
    /* The shard's parameters (on the host with offload_param) are written by the step's
     * own pass; a chunk's padding is in no range and stays zero. */
    if (z->offload) { /* the same step on the host (zero/offload.c) */
        zl_status st = zl__zero_offload_step(z, z->params->data, z->grads->data, z3->shard_numel,
                                             z3->ranges, z3->num_ranges, lr, beta1, grad_scale);
        if (st != ZL_OK) return st;
    } else
        zl_precision_adam_step(z->prec, z->adam, z->master->data, z->params->data, z->grads->data,
                               z3->ranges, z3->num_ranges, lr, beta1, grad_scale);
    /* Gathered copies are stale now: persistent units are gathered again at once, the
     * others at their next use. */
    zl_status st = release_all(z);
    return st == ZL_OK ? gather_persistent(z) : st;
}

static zl_status gather_all(zl_zero_ctx *z, float *out)
{
    zl_zero3 *z3 = z->z3;
    if (z->device->ops->meta)
        return zl_errorf(ZL_ERR_UNSUPPORTED, "the meta backend holds shapes, not parameter values");
    zl_status st = release_all(z);
    for (int l = 0; l < z->model->num_layers && st == ZL_OK; l++) {
        void *values;
        if ((st = use_params(z, l, false, &values)) == ZL_OK)
            st = zl__zero_values_to_host(z, out + z3->layers[l].begin, values, z->prec->dtype,
                                         z3->layers[l].numel);
    }
    zl_status s2 = release_all(z); /* the buffers now hold whatever came last */
    return st == ZL_OK ? s2 : st;
}

/* State and parameters alike: this rank's chunk of every unit, where the shard keeps it. */
static int fragments(const zl_zero_ctx *z, bool params, zl_zero_fragment *out, int cap)
{
    (void)params;
    const zl_zero3 *z3 = z->z3;
    int k = 0;
    for (int i = 0; i < z3->num_units; i++) {
        const zero3_unit *u = &z3->units[i];
        size_t n = own_real(z, u);
        if (!n) continue;
        if (k < cap)
            out[k] = (zl_zero_fragment){z3->layers[u->layer].begin + u->offset +
                                            (size_t)z->dp_rank * u->chunk,
                                        n, u->shard_offset};
        k++;
    }
    return k;
}

/* New values in the shards: what was gathered is stale, as after a step. */
static zl_status params_changed(zl_zero_ctx *z)
{
    zl_status st = release_all(z);
    return st == ZL_OK ? gather_persistent(z) : st;
}

/* What layer l's gradient staging holds: its range (padding goes through grad_landing). */
static size_t layer_staging(const zl_zero_ctx *z, int l)
{
    return z->z3->layers[l].numel;
}

static void free_shards(zl_zero_ctx *z)
{
    zl_zero3 *z3 = z->z3;
    if (!z3) return;
    if (z3->units)
        for (int i = 0; i < z3->num_units; i++) finish_unit(z, &z3->units[i]); /* never leave one in flight */
    zl_tensor_free(&z3->keep);
    zl_tensor_free(&z3->grad_landing);
    zl_tensor_free(&z3->landing);
    for (int s = NUM_SLOTS - 1; s >= 0; s--) zl_tensor_free(&z3->slots[s]);
    free(z3->ranges);
    free(z3->units);
    free(z3->layers);
    free(z3);
    z->z3 = NULL;
}

static zl_status alloc(zl_zero_ctx *z)
{
    /* The flat partition is kept for what reads it; the shards are per unit. */
    zl_partition_init(z->part, z->model->params_numel, z->dp_size, z->dp_rank);
    zl__zero_set_scales(z, true);
    zl_status st = alloc_shards(z);
    if (st != ZL_OK) return st;
    z->opt_numel = z->z3->shard_numel;
    return zl__zero_staging_alloc(z, layer_staging);
}

static zl_status begin_grads(zl_zero_ctx *z, int layer)
{
    size_t csz = zl_dtype_nbytes(z->prec->comm_dtype);
    /* The first tie member in backward (the head) starts the tied gradient in the owner's
     * staging, which stays until the owner's own backward completes it. */
    const zl_tie_group *tie = zl__zero_tie(z);
    if (zl__zero_starts_tie(z, layer))
        z->device->ops->zero(z->device->ops, zl__zero_staging_of(z, tie->owner),
                             layer_staging(z, tie->owner) * csz);
    if (zl__zero_owns_tie(z, layer)) return ZL_OK;
    z->device->ops->zero(z->device->ops, zl__zero_staging_of(z, layer),
                         layer_staging(z, layer) * csz);
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
    zl__zero_pnvme_free(z); /* after the optimizer's: the last one removes zero_stage_3 */
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
    .fragments = fragments,
    .params_changed = params_changed,
    .own_grads = own_grads,
    .step = step,
    .gather_all = gather_all,
    .free = free_all,
};
