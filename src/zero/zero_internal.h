/* Internal to src/zero: what the stage files share. */
#ifndef ZL_ZERO_ZERO_INTERNAL_H
#define ZL_ZERO_ZERO_INTERNAL_H

#include "zero/zero.h"

extern const zl_zero_strategy zl__zero_stage0, zl__zero_stage1, zl__zero_stage2, zl__zero_stage3;

/* The model's tie (zl_model_tie_*): its owner keeps one staging buffer, and at stage 3 one
 * gather buffer, from forward to backward, because its members (GPT-2's head) use the tied
 * parameter after the owner's forward and add to its gradient before the owner's backward.
 * A model declares at most ZL_MAX_TIES (one) tie group. */
static inline const zl_tie_group *zl__zero_tie(const zl_zero_ctx *z)
{
    return z->model->num_ties ? &z->model->ties[0] : NULL;
}
/* Layer l owns the tie. */
static inline bool zl__zero_owns_tie(const zl_zero_ctx *z, int l)
{
    const zl_tie_group *g = zl__zero_tie(z);
    return g && g->owner == l;
}
/* Layer l is the tie member that runs backward first: the tied gradient starts there. */
static inline bool zl__zero_starts_tie(const zl_zero_ctx *z, int l)
{
    const zl_tie_group *g = zl__zero_tie(z);
    return g && zl_model_tie_first_backward(g) == l;
}

static inline void zl__zero_layer_range(const zl_zero_ctx *z, int l, size_t *begin, size_t *end)
{
    zl_model_layer_range(z->model, l, begin, end);
}

/* reduce.c: average g (type comm_dtype), the gradient of the flat range [first, first + n),
 * over the ranks, in buckets; the same through comm_buf for a buffer of another type. */
zl_status zl__zero_reduce_range(zl_zero_ctx *z, void *g, size_t first, size_t n);
zl_status zl__zero_reduce_typed(zl_zero_ctx *z, void *g, zl_dtype gt, size_t first, size_t n);
/* DeepSpeed's pre- and post-reduction scales; `partitioned`: a ZeRO optimizer's
 * reduce_scatter path (stages 1-2), which divides by N before the sum. */
void zl__zero_set_scales(zl_zero_ctx *z, bool partitioned);
/* 16 bits: layer l's work gradient into dest(z, l) (type dt), and after a tie member (the
 * head) its share of the tied parameter into dest(z, owner). */
void zl__zero_flush_grads(zl_zero_ctx *z, int layer, void *(*dest)(zl_zero_ctx *, int), zl_dtype dt);

/* replicated.c: the whole parameter vector on every rank (stages 0-2). */
zl_status zl__zero_replicated_alloc(zl_zero_ctx *z, bool partitioned); /* partition, params, master */
zl_status zl__zero_replicated_init_params(zl_zero_ctx *z);
zl_status zl__zero_replicated_use_params(zl_zero_ctx *z, int layer, bool backward, void **values);
zl_status zl__zero_replicated_gather_all(zl_zero_ctx *z, float *out);
/* out (n, host f32) = the n values of type t at device memory `values`, widened: read
 * back with the backend's to_host (the host cannot read an accelerator's memory in
 * place), then widened on the host. ZL_ERR_NOMEM without host memory for a 16-bit copy. */
zl_status zl__zero_values_to_host(const zl_zero_ctx *z, float *out, const void *values, zl_dtype t,
                                  size_t n);
void zl__zero_replicated_free(zl_zero_ctx *z);
int zl__zero_replicated_fragments(const zl_zero_ctx *z, bool params, zl_zero_fragment *out, int cap);
zl_status zl__zero_no_op(zl_zero_ctx *z);
zl_status zl__zero_no_layer_op(zl_zero_ctx *z, int layer);

/* stage0.c: the whole gradient, reduced at the boundary (stages 0-1). */
zl_status zl__zero_whole_grads_alloc(zl_zero_ctx *z);
zl_status zl__zero_whole_grads_end(zl_zero_ctx *z, int layer);
zl_status zl__zero_whole_grads_reduce(zl_zero_ctx *z);

/* stage1.c: step the fp32 master partition and round it into the parameters; then, if
 * `gather`, allgather everyone's partition (stages 0 in 16 bits, 1 and 2). */
zl_status zl__zero_step_master(zl_zero_ctx *z, double lr, double beta1, float grad_scale, bool gather);

/* offload.c: ZeRO-Offload of the optimizer (z->offload), what the stage files call.
 * alloc: the fp32 master partition ("master"), "offload.grad" and "offload.param", numel
 * elements each, on the host device (Adam's moments are the engine's, on the host too).
 * master_init: master[off, off + n) from n values of type dtype at src on the device
 * (the master's start: as the device's cast would, through a device-to-host copy).
 * step: this rank's gradient share (n elements of grad_dtype on the device, aligned with
 * master[0, n)) to the host, Adam on the host over ranges r (relative to master), and the
 * rounded partition back into params (n elements of dtype on the device). The caller
 * allgathers after it. free: what alloc made. */
zl_status zl__zero_offload_alloc(zl_zero_ctx *z, size_t numel);
void zl__zero_master_init(zl_zero_ctx *z, size_t off, const void *src, size_t n);
zl_status zl__zero_offload_step(zl_zero_ctx *z, void *params, const void *grads, size_t n,
                                const zl_param_range *r, int nr, double lr, double beta1,
                                float grad_scale);
void zl__zero_offload_free(zl_zero_ctx *z);

/* offload_nvme.c: the same four for offload_optimizer.device "nvme" (z->nvme), which
 * offload.c's dispatch to; grads_to_host is offload.c's step 1, shared. */
zl_status zl__zero_nvme_alloc(zl_zero_ctx *z, size_t numel);
void zl__zero_nvme_master_init(zl_zero_ctx *z, size_t off, const void *src, size_t n);
zl_status zl__zero_nvme_init_status(zl_zero_ctx *z);
zl_status zl__zero_nvme_step(zl_zero_ctx *z, void *params, const void *grads, size_t n,
                             const zl_param_range *r, int nr, double lr, double beta1,
                             float grad_scale);
void zl__zero_nvme_free(zl_zero_ctx *z);
zl_status zl__zero_offload_grads_to_host(zl_zero_ctx *z, float *dst, const void *grads, size_t n);
/* offload.c, ZeRO-2 (z->grads_on_host): add n reduced gradient elements g (comm_dtype, on
 * the device) into offload_grad[off, off + n) on the host, rounding each sum to grad_dtype
 * as the device's partition would (written, not added, while offload_grad_fresh). */
zl_status zl__zero_offload_add_share(zl_zero_ctx *z, size_t off, const void *g, size_t n);

/* offload_nvme_param.c: offload_param nvme (z->nvme_param), what stage3.c calls. Items are
 * this rank's chunks of the units, in shard order: item i has numel[i] elements (padding
 * included) at shard_offset[i]; one swap file each, <i>_param.tensor.swp.
 *   alloc     the folder, the files (allocated: a full disk fails here), the pool;
 *   put       item i from the device (n real elements at src; the rest of the chunk is
 *             zeros), written behind (init and the device's step);
 *   put_host  shard elements [off, off + n) from the host (the CPU step's output), in
 *             shard order; an item is written once its last element is in;
 *   prefetch  issue item i's read if a spare buffer exists (never fails: a failure is
 *             kept for the next fetch);
 *   fetch     item i into dst on the device (waiting for its read, or reading now);
 *   drop      forget the reads issued (the files are about to change);
 *   flush     wait for every write; the first failure of put/put_host/flush. */
zl_status zl__zero_pnvme_alloc(zl_zero_ctx *z, int count, const size_t *numel, const size_t *shard_offset);
zl_status zl__zero_pnvme_put(zl_zero_ctx *z, int i, const void *src, size_t n);
zl_status zl__zero_pnvme_put_host(zl_zero_ctx *z, size_t off, const void *src, size_t n);
void zl__zero_pnvme_prefetch(zl_zero_ctx *z, int i);
zl_status zl__zero_pnvme_fetch(zl_zero_ctx *z, int i, void *dst);
zl_status zl__zero_pnvme_drop(zl_zero_ctx *z);
zl_status zl__zero_pnvme_flush(zl_zero_ctx *z);
void zl__zero_pnvme_free(zl_zero_ctx *z);

/* zero.c: gradient staging of stages 2-3; numel(z, l): what layer l's staging holds. */
zl_status zl__zero_staging_alloc(zl_zero_ctx *z, size_t (*numel)(const zl_zero_ctx *, int));
void *zl__zero_staging_of(zl_zero_ctx *z, int layer);
void zl__zero_free_grads(zl_zero_ctx *z);

/* stage2.c and stage2_overlap.c */
zl_status zl__zero2_keep_share(zl_zero_ctx *z, int layer, void *g);
zl_status zl__zero2_finish_pending(zl_zero_ctx *z, zl_zero_pending *p);
zl_status zl__zero2_overlap_swap(zl_zero_ctx *z, int layer);
zl_status zl__zero2_overlap_start(zl_zero_ctx *z, int layer, void *g, size_t n);

#endif
