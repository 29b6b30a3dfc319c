/* ZeRO's stages as strategies: one table of operations per stage, over a narrow context.
 *
 * DeepSpeed's engine asks its ZeRO optimizer to do the same things at the same points of a
 * step whatever the stage; the stages differ only in where parameters, gradients and
 * optimizer state live and how they move. So the engine calls, per micro-step:
 *
 *   for each layer, forward:      use_params
 *   for each layer, backward:     use_params, begin_grads, (the layer), end_grads
 *   after backward:               end_backward
 *   at the accumulation boundary: reduce, own_grads (overflow check, norm), step,
 *                                 zl_zero_zero_grads
 *
 * and the strategy of the configured stage decides what each means:
 *
 *   stage 0  (stage0.c)  everything whole on every rank; bucketed allreduce at the boundary
 *   stage 1  (stage1.c)  fp32 master weights and Adam state: this rank's partition only;
 *                        the whole gradient reduced at the boundary (a bucketed allreduce,
 *                        or each owner's slice reduced to it), each rank steps its
 *                        partition, the updated partitions are allgathered
 *   stage 2  (stage2.c)  as 1, and the gradient too: each layer's gradient is reduced as
 *                        soon as backward produces it, keeping only this rank's share
 *                        (stage2_overlap.c: with overlap_comm, while the next layer runs)
 *   stage 3  (stage3.c)  parameters partitioned per tensor (DeepSpeed's layout), fetched
 *                        in bucket-sized pieces just before forward and backward, with
 *                        prefetch, reuse and a per-tensor persistence threshold, on the
 *                        host with offload_param; each tensor's gradient reduce-scattered
 *
 * Parameters of stages 0-2 are replicated (replicated.c); the reductions they share are in
 * reduce.c. Anything dtype-specific goes through the precision policy (zero/precision.h).
 * Only src/zero knows what a stage number means: the engine gets its table from
 * zl_zero_choose. */
#ifndef ZL_ZERO_ZERO_H
#define ZL_ZERO_ZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "comm/comm.h"
#include "core/device.h"
#include "core/tensor.h"
#include "io/aio.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "zero/partition.h"
#include "zero/precision.h"

/* DeepSpeed's "zero_optimization" keys the strategies read (defaults already applied). */
typedef struct zl_zero_options {
    int64_t reduce_bucket_size;           /* elements per gradient reduction */
    bool reduce_scatter;                  /* stage 1/2: pre-divide by N, reduce per bucket */
    bool use_multi_rank_bucket_allreduce; /* stage 1/2: allreduce each bucket, not reduce to owners */
    int64_t param_persistence_threshold;  /* stage 3: layers this small stay gathered */
    bool overlap_comm;                    /* stage 2: reduce while the next layer computes */
    int64_t prefetch_bucket_size;         /* stage 3: largest prefetch, elements */
    int64_t max_live_parameters;          /* stage 3: cap on gathered elements */
    int64_t max_reuse_distance;           /* stage 3: keep what is used again this soon (elements) */
    bool offload_param;                   /* stage 3: parameter partitions on the host (z->host) */
    bool offload_param_pin;               /* offload_param.pin_memory: tag "param.pinned" */
    bool prescale_gradients;              /* divide by N before the reduction */
    double gradient_predivide_factor;
} zl_zero_options;

/* A reduction in flight (stage 2 with overlap_comm). */
typedef struct zl_zero_pending {
    int layer; /* -1: none */
    void *buf;
    zl_comm_request req;
} zl_zero_pending;

/* ZeRO-Infinity's optimizer swapping (offload_optimizer.device "nvme", stage 3;
 * zero/offload_nvme.c): DeepSpeed's keys, defaults applied. */
typedef struct zl_zero_nvme_options {
    const char *nvme_path;  /* the folder the swap tree goes under (must exist) */
    int buffer_count;       /* offload_optimizer.buffer_count: the pool's buffers (at least
                             * what the step needs: 5, +3 per pipelined direction) */
    bool pipeline_read;     /* read the next sub-group while this one steps */
    bool pipeline_write;    /* write the previous sub-group while this one steps */
    int64_t sub_group_size; /* elements of the partition stepped (and swapped) at a time */
    zl_aio_config aio;      /* the top-level "aio" block */
    int rank;               /* the global rank: rank<R> of the folder */
} zl_zero_nvme_options;

/* ZeRO-Infinity's parameter swapping (offload_param.device "nvme", stage 3;
 * zero/offload_nvme_param.c): DeepSpeed's offload_param keys, defaults applied. */
typedef struct zl_zero_param_nvme_options {
    const char *nvme_path; /* offload_param.nvme_path (must exist) */
    int buffer_count;      /* pinned buffers in the pool (DeepSpeed's 5) */
    int64_t buffer_size;   /* elements per buffer (1e8): at least the largest chunk */
    int64_t max_in_cpu;    /* elements kept in host memory, units in order (<= 0: none) */
    bool pin_memory;       /* lock the pool in RAM */
    zl_aio_config aio;     /* the top-level "aio" block */
    int rank;              /* rank<R> of the folder */
} zl_zero_param_nvme_options;

/* A piece of the flat parameter vector that a rank keeps: numel elements from flat offset
 * `flat`, at element `local` of the rank's buffer (its partition, shard or whole vector).
 * What a checkpoint records of each rank's state, so that another layout can find its
 * own pieces in it. */
typedef struct zl_zero_fragment {
    size_t flat, numel, local;
} zl_zero_fragment;

struct zl_zero_strategy;
struct zl_zero3;
struct zl_zero_nvme;
struct zl_zero_pnvme;

/* What a strategy works on. The engine fills the first part; the strategy the rest. */
typedef struct zl_zero_ctx {
    const struct zl_zero_strategy *strategy;
    zl_device *device;
    zl_comm *dp;                   /* the data-parallel group; NULL: one rank */
    zl_comm *mp;                   /* the ranks that hold the rest of the model (pipeline
                                    * stages): the gradient norm and the overflow check span
                                    * them too; NULL: none */
    int dp_size, dp_rank;
    zl_model *model;               /* layer ranges; gradients are bound to the strategy's buffers */
    zl_precision *prec;
    zl_adamw *adam;                /* stepped on this rank's partition */
    const zl_param_range *ranges;  /* weight decay over the flat vector */
    int num_ranges;
    zl_zero_options opt;
    /* ZeRO-Offload (offload_optimizer.device "cpu"; zero/offload.c): the optimizer's
     * partition (master, Adam's moments, an fp32 gradient buffer) lives on `host`, and
     * the step runs there. host: the engine's host device (always set; used only when
     * offload). pin_memory: offload_optimizer.pin_memory, recorded for reports (the cpu
     * backend does not lock these pages). */
    zl_device *host;
    bool offload, pin_memory;
    /* The flat buffers: the engine's tensors (what tools and tests read), allocated by the
     * strategy. params (dtype, "param"): the whole padded vector, or stage 3's shard;
     * grads (grad_dtype, "grad"): whole at 0-1, the partition at 2, the shard at 3;
     * master (f32, "master"): the optimizer partition's fp32 weights, when there are any. */
    zl_tensor *params, *grads, *master;
    zl_partition *part;            /* this rank's share of the flat vector (whole at stage 0) */

    /* Set by the strategy's alloc. */
    size_t opt_numel;              /* elements of the optimizer's partition (Adam's state) */
    double pre_scale, post_scale;  /* gradient scale before and after the sum (reduce.c) */
    bool bucket_allreduce;         /* allreduce each bucket (else reduce each owner's slice) */
    bool overlap;                  /* stage 2: layer reductions run while backward goes on */
    zl_tensor comm_buf;            /* stages 0-1: grads converted to comm_dtype, "bucket" */
    /* stages 2-3: backward's gradient staging (comm_dtype, "bucket"). The tie's owner has
     * its own (the embedding: the head writes the tied wte's gradient first and the owner
     * completes it last, zl_model_tie_*). Every other layer shares staging_layer (and
     * staging_spare, the second bucket of overlap_comm); staging_cur is the one backward
     * writes now. */
    zl_tensor staging_tied, staging_layer, staging_spare;
    void *staging_cur;
    zl_zero_pending pending[2];
    struct zl_zero3 *z3;           /* stage 3's layout and gather buffers */
    /* offload: on the host, the size of the optimizer's partition (opt_numel):
     * offload_grad (f32, "offload.grad"): this rank's reduced gradient, widened;
     * offload_param (dtype, "offload.param"): the stepped partition, rounded, before its
     * copy to the device; between steps, at stage 2, the landing zone of the gradient
     * pieces that come over during backward. */
    zl_tensor offload_grad, offload_param;
    /* ZeRO-2 with offload (set by stage 2's alloc): no gradient partition on the device
     * (grads stays empty). Each layer's reduced share goes to offload_grad as backward
     * produces it (zl__zero_offload_add_share), where the micro-steps accumulate, and the
     * boundary reads it there. offload_grad_fresh: nothing has landed since the last
     * zero_grads, so the next micro-step's shares are written, not added. */
    bool grads_on_host, offload_grad_fresh;
    /* ZeRO-Infinity (nvme, with offload): the partition's master weights and Adam's
     * moments in swap files instead of host memory; the host holds only the buffer pool
     * ("nvme.buffers"), nvme_ledger the files ("nvme.master", "nvme.adam.m", "nvme.adam.v"). */
    bool nvme;
    zl_zero_nvme_options nvme_opt;
    zl_ledger *nvme_ledger;
    struct zl_zero_nvme *nvme_state;
    /* ZeRO-Infinity's parameters (offload_param nvme, stage 3): this rank's shard lives in
     * swap files, one per tensor's chunk; params is not allocated. The host holds the
     * buffer pool ("nvme.param.buffers"), nvme_ledger the files ("nvme.param"). */
    bool nvme_param;
    zl_zero_param_nvme_options pnvme_opt;
    struct zl_zero_pnvme *pnvme;
} zl_zero_ctx;

typedef struct zl_zero_strategy {
    const char *name;    /* "ZeRO stage 2" */
    int stage;           /* zero_optimization.stage (for messages and hints) */
    /* DeepSpeed wraps the optimizer in its ZeRO optimizer (stages 1-3): fp16's loss
     * scaler is that optimizer's, and the gradient norm sums partitions across ranks. */
    bool zero_optimizer;
    /* Stages 0-1: the gradient accumulates whole on every rank until reduce() at the
     * boundary (stages 2-3 move each layer's gradient away as backward produces it). */
    bool whole_grads;

    /* Partition, parameters (with their initial values, locally), master weights,
     * gradients and buckets, in the ledger's order. Local: the caller agrees on it. */
    zl_status (*alloc)(zl_zero_ctx *z);
    /* Collective: every rank starts from rank 0's values; master weights from them. */
    zl_status (*init_params)(zl_zero_ctx *z);
    /* Make layer l's values available (stage 3 gathers, prefetching the next layer);
     * *values: where the layer's whole range is now (type dtype). */
    zl_status (*use_params)(zl_zero_ctx *z, int layer, bool backward, void **values);
    /* Before a layer's backward: prepare where it writes its gradients. */
    zl_status (*begin_grads)(zl_zero_ctx *z, int layer);
    /* After it: move its gradients to where they are kept (stages 2-3 reduce them). */
    zl_status (*end_grads)(zl_zero_ctx *z, int layer);
    /* End of backward: complete the reductions still in flight. */
    zl_status (*end_backward)(zl_zero_ctx *z);
    /* At the boundary: reduce what backward has not reduced (stages 0-1). */
    zl_status (*reduce)(zl_zero_ctx *z);
    /* This rank's share of the reduced gradient (grad_dtype), aligned with its partition. */
    void *(*own_grads)(zl_zero_ctx *z, size_t *n);
    /* The optimizer on this rank's share, and the parameters updated everywhere. */
    zl_status (*step)(zl_zero_ctx *z, double lr, double beta1, float grad_scale);
    /* The whole flat vector as f32 into out, on every rank. Collective. */
    zl_status (*gather_all)(zl_zero_ctx *z, float *out);
    /* The pieces of the flat vector this rank keeps (padding excluded), in increasing
     * `local` order: those of its optimizer state (master weights and Adam's moments,
     * `params` false) or of its parameters (`params` true). Writes at most cap of them
     * and returns how many there are. */
    int (*fragments)(const zl_zero_ctx *z, bool params, zl_zero_fragment *out, int cap);
    /* The parameters' values were written outside a step (a checkpoint was loaded): drop
     * what was gathered from the old ones. Collective. */
    zl_status (*params_changed)(zl_zero_ctx *z);
    void (*free)(zl_zero_ctx *z);
} zl_zero_strategy;

/* Have the device's out-of-memory message suggest what ZeRO would do for a run of
 * dp_size data-parallel ranks at zero_stage (memory_hint.c): no stage on one rank, none
 * already in use, none of stages 2-3 with pipeline stages (pipe_stages > 1). */
void zl_zero_set_memory_hint(zl_ledger *l, int dp_size, int zero_stage, int checkpoint_interval,
                             int pipe_stages);
/* The same for a strategy's context: its device, its stage, its data-parallel size. */
void zl_zero_hint_memory(const zl_zero_ctx *z, int checkpoint_interval);

/* The strategy of zero_optimization.stage; an error naming the key for another number. */
zl_status zl_zero_choose(int stage, const zl_zero_strategy **out);

/* The global L2 norm of the reduced gradient: this rank's share, summed across the
 * ranks that partition it. */
zl_status zl_zero_grad_norm(zl_zero_ctx *z, double *norm);
/* The same from this rank's sum of squares, computed elsewhere (the optimizer's pass:
 * zl_adamw.sumsq). Collective under a ZeRO optimizer. */
zl_status zl_zero_grad_norm_from(zl_zero_ctx *z, double sumsq, double *norm);
/* Where parameter `param`'s accumulated gradient is before the boundary's reduction
 * (grad_dtype): only while the strategy keeps the gradient whole (whole_grads), else
 * NULL. What ReduceTiedGrads adds a tie's copies into. */
void *zl_zero_param_grads(zl_zero_ctx *z, int param);
/* After init_params: the first failure of writing the initial master weights to their
 * swap files (offload_optimizer nvme; the stage's initialisation cannot return it), or
 * ZL_OK. Local: the caller agrees on it. */
zl_status zl_zero_init_status(zl_zero_ctx *z);
/* The strategy's fragments (above), and a check that this rank's state can be read and
 * written in place by a checkpoint: ZL_ERR_UNSUPPORTED naming what is not built yet
 * (state in NVMe swap files). */
int zl_zero_fragments(const zl_zero_ctx *z, bool params, zl_zero_fragment *out, int cap);
zl_status zl_zero_check_checkpointable(const zl_zero_ctx *z);
/* The fp32 master weights of this rank's optimizer partition (the parameters themselves
 * at stage 0 in fp32), aligned with the state fragments' `local`. */
const zl_tensor *zl_zero_master(const zl_zero_ctx *z);
zl_status zl_zero_params_changed(zl_zero_ctx *z);
/* DeepSpeed's zero_grad after the step. */
void zl_zero_zero_grads(zl_zero_ctx *z);

#endif
