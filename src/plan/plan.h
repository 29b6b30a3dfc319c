/* zerolab plan: a training run's memory, predicted by running the engine on the meta
 * backend as one rank of a virtual world.
 *
 * The engine code is the one that trains: the same options, the same allocations with
 * the same tags and sizes, the same order of kernels and collectives. Only no byte is
 * allocated and no kernel computes (backends/meta), and the other ranks exist only as the
 * size of a virtual communicator (comm/comm_virtual.c). So what the ledger of the meta
 * device records is, byte for byte, what the ledger of a real run's rank records
 * (tests/mpi/check_plan.c), at any scale: 175B parameters on 1024 GPUs take a fraction
 * of a second and no memory.
 *
 * The rank that runs is rank 0 of the data-parallel group: ZeRO's partitions are padded
 * to equal sizes, so every rank holds the same bytes.
 *
 * Three places hold a rank's bytes, each with its ledger and its budget: the card
 * (device_memory), the host's memory the rank's offloaded state lives in (host_memory:
 * the node's DRAM divided among its GPUs' ranks, zl_cluster_host_memory_per_rank) and the
 * NVMe swap files of ZeRO-Infinity (nvme_capacity). A plan fits when all three do. */
#ifndef ZL_PLAN_PLAN_H
#define ZL_PLAN_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "engine/engine.h"
#include "model/model.h"
#include "sim/ledger.h"
#include "sim/presets.h"

typedef struct zl_plan_request {
    zl_gpt_config model;
    zl_engine_options options; /* dp is ignored: the plan makes a virtual group */
    int world_size;            /* data-parallel ranks (GPUs) */
    /* Pipeline parallelism (plan_pipe.c): the stages (options.pipe_partition cuts the
     * layers; 0 or 1: none) and the one planned: 0 .. pipe_stages - 1 plans that stage
     * alone, its neighbours as ready as it is (a virtual group: memory, and a step without
     * the bubble); -1 plans every stage, reports the one that needs the most memory (or
     * the first that does not fit), and simulates the step across the stages. */
    int pipe_stages, pipe_stage;
    /* Tensor parallelism: the ranks that split each block (0 or 1: none); the plan runs
     * rank 0 of a virtual group of them (every rank holds the same bytes). */
    int tp_size;
    size_t device_memory;      /* bytes per device; 0: unlimited */
    size_t host_memory;        /* bytes of host memory for this rank; 0: unlimited */
    size_t nvme_capacity;      /* bytes of NVMe for this rank; 0: unlimited */
    const char *device_name;   /* for messages, e.g. "A100-80GB" */
    int steps;                 /* optimizer steps to run (peaks settle after 1); 0: 1 */
    bool gpu;                  /* the card is a GPU: the CPU's f32 stand-ins ("cast") are
                                * recorded but not held against device_memory */
    /* The simulated clock (sim/cost.h) on this cluster's card and links; NULL: memory
     * only. Its device's peak at the training precision is MFU's denominator. */
    const zl_cluster *cluster;
    FILE *trace;               /* Chrome trace of the last step, or NULL */
} zl_plan_request;

typedef struct zl_plan_result {
    zl_status status;      /* ZL_OK: fits; ZL_ERR_OOM: does not (message in zl_last_error) */
    zl_ledger ledger;      /* the meta device's ledger: current and peak bytes per tag (on
                            * an OOM: what was live when the allocation failed) */
    /* On an OOM: the run planned again without a memory limit, so `need` holds the full
     * requirement of every tag (what was never allocated included), and `reason` the
     * out-of-memory message of the run under the budget. */
    zl_ledger need;
    bool has_need;
    char reason[2048];
    /* The host device's ledger (ZeRO-Offload's master, gradient, moments and staging
     * buffer: pinned when offload_pin_memory) and the NVMe swap files' (the engine's,
     * zl_engine_nvme_ledger), as `ledger`; with has_need their full requirement. */
    zl_ledger host, nvme;
    zl_ledger need_host, need_nvme;
    /* Which places hold what they were asked to (all true when status is ZL_OK). */
    bool device_fits, host_fits, nvme_fits;
    size_t params;         /* Ψ, parameters of the model */
    double seconds;        /* wall time of the plan itself */
    /* With a clock: the last optimizer step, simulated. */
    double step_seconds, compute_seconds, comm_seconds, exposed_comm_seconds;
    double exposed_copy_seconds; /* compute waiting for host <-> device copies */
    double tokens_per_second; /* the whole world's */
    /* With a trace: its spans, the back-to-back runs merged into them and the spans
     * dropped past the timeline's cap (sim/timeline.h). */
    size_t trace_spans, trace_merged, trace_dropped;
    double mfu;               /* model FLOPs / (step time x peak), per GPU */
    /* With a clock, per GPU and step: the model's FLOPs (3 x forward: forward and
     * backward), and the FLOPs the simulated kernels ran, recompute included (activation
     * checkpointing runs each segment's forward twice: 4 x forward, as Korthikanti et al.
     * count hardware FLOPs), plus the optimizer's and the other kernels' few. */
    double model_flops, hardware_flops;
    /* Every stage planned (pipe_stage -1): the stage whose figures the ledgers above are
     * (the largest device peak, or the first that did not fit), each stage's device peak,
     * and with a clock the step across the stages: bubble_fraction is the stages' mean
     * idle share of the time from the step's start to the last backward (DeepSpeed's
     * TrainSchedule and GPipe leave (S - 1) / (M + S - 1) idle with uniform stages). */
    int pipe_stages, pipe_worst_stage;
#define ZL_PLAN_MAX_STAGES 256
    size_t stage_peak_nbytes[ZL_PLAN_MAX_STAGES];
    double bubble_fraction;
} zl_plan_result;

/* Run the plan. Returns the status of the run (also in result->status); an OOM is a
 * result, not a failure of the plan: result->ledger then holds what was live,
 * result->need the full requirement, result->reason (and zl_last_error()) the message.
 * Other errors (bad options) have their message in zl_last_error(). */
zl_status zl_plan_run(const zl_plan_request *req, zl_plan_result *result);

/* The ledgers a plan's figures come from: the full requirement when the run did not fit
 * (has_need), else the run's own. */
const zl_ledger *zl_plan_device_ledger(const zl_plan_result *r);
const zl_ledger *zl_plan_host_ledger(const zl_plan_result *r);
const zl_ledger *zl_plan_nvme_ledger(const zl_plan_result *r);

/* Bytes of ZeRO's model states in the ledger (param, grad, master, adam.*): current. */
size_t zl_plan_model_states(const zl_ledger *l);
/* The same at their peaks (the figure a plan prints: the states alone, without the
 * working buffers and activations). */
size_t zl_plan_model_states_peak(const zl_ledger *l);

/* ---- the search (plan_search.c): which setup fits and trains fastest ------------------- */

/* The setups a search tries. All zero (or NULL for the space): what `zerolab plan
 * --search` tries. The limits narrow it (a lab's stated set, a test's small search). */
typedef struct zl_plan_search_space {
    int max_tp;           /* tensor-parallel sizes up to this; 0: a node's GPUs */
    int max_pp;           /* pipeline sizes up to this; 0: the GPUs, the layers + 2 */
    int max_micro;        /* micro-batch sizes up to this; 0: the per-replica batch */
    bool no_offload;      /* only without offload (else the optimizer at stages 1-3, the
                           * parameters too at stage 3, at tp 1) */
    bool checkpoint_only; /* only with activation checkpointing (else off and on) */
    bool no_pruning;      /* also micro-batches larger than one that did not fit the card */
} zl_plan_search_space;

/* One setup tried: its choices and the figures it is ranked and shown by (a plan result
 * holds six ledgers; a search keeps only these). */
typedef struct zl_plan_candidate {
    int tp, pp, dp;          /* the grid: tp x pp x dp = the cluster's GPUs */
    int stage;               /* ZeRO stage 0-3 */
    int micro, gas;          /* micro-batch x accumulation x dp = the global batch */
    int checkpoint;          /* activation checkpointing: layers per segment; 0: off */
    bool offload_optimizer, offload_param;
    bool fits, device_fits, host_fits;
    double tokens_per_second, step_seconds, mfu;
    double exposed_seconds;  /* exposed communication + exposed host copies */
    size_t device_peak;      /* the device ledger's budgeted peak (the worst stage's) */
    size_t host_peak;        /* the host ledger's peak */
    int order;               /* its place in the order tried (0, 1, ...) */
} zl_plan_candidate;

typedef struct zl_plan_search_result {
    zl_plan_candidate *candidates; /* fitting first, then by tokens/s, descending */
    int num_candidates;
    int num_refused;               /* setups the engine refused (an offload choice, a
                                    * grid), skipped */
    int global_batch;              /* sequences per step: micro x accumulation x dp */
} zl_plan_search_result;

/* Called with every setup planned, before the search goes on: the request as planned,
 * its full result and its candidate (e.g. to print the plan's JSON). A status other than
 * ZL_OK stops the search and is returned. */
typedef zl_status (*zl_plan_search_visit)(void *ctx, const zl_plan_request *req,
                                          const zl_plan_result *r, const zl_plan_candidate *c);

/* The search. base is the config's setup (its world_size the data-parallel ranks, its
 * pipe_stages and tp_size the config's grid, its options the engine's) and base->cluster
 * the GPUs (required); the global batch stays micro x accumulation x data-parallel of
 * base. Tried, loops outermost first: tp (1 and the powers of two within a node that
 * divide the heads and channels), pp (1 and the powers of two that divide the GPUs, up to
 * the layers + 2 and ZL_PLAN_MAX_STAGES; ZeRO 0-1 only), ZeRO stage 0-3, offload (none;
 * the optimizer at stages 1-3; the parameters too at stage 3; at tp 1 only), micro-batch
 * 1, 2, 4... dividing the per-replica batch, each with checkpointing off and on (base's
 * interval, else every layer); past the smallest micro-batch that did not fit the card,
 * larger ones are not tried. A setup the engine refuses is skipped and counted, unless it
 * is the config's own offload and grid: then its error is returned (message in
 * zl_last_error). visit may be NULL. On success out holds the candidates, sorted; free
 * them with zl_plan_search_free. */
zl_status zl_plan_search(const zl_plan_request *base, const zl_plan_search_space *space,
                         zl_plan_search_visit visit, void *ctx, zl_plan_search_result *out);
void zl_plan_search_free(zl_plan_search_result *out);

#endif
