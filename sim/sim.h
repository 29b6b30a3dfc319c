/* The simulated GPU's clock: a timed op table in front of the real backend.
 *
 * Each simulator holds its own timed table (ops): a device with the simulator attached
 * (zl_device_attach_sim) runs its kernels through it. Each of its functions runs the real
 * kernel (cpu computes, meta does nothing) and charges the kernel's simulated time to the
 * compute stream of the simulator's timeline. The time comes from the op's FLOPs and
 * bytes, counted here from its arguments, through a cost function (the roofline of
 * sim/cost.h with the card's rates). Collectives are charged by src/comm
 * (zl_sim_collective) on the comm stream of the simulator the communicator carries
 * (zl_comm_set_sim); copies between the host and the card by core/device.c
 * (zl_sim_copy), on the host-copy stream.
 *
 * The simulator is a handle, never found through a global: a kernel finds it in the table
 * it was called through (ops->gemm(ops, ...): self->ctx, backends/ops.h), a collective in
 * its communicator, a copy in its device. So several devices, each with its own
 * simulator, can be used in any interleaving in one process, each charging its own clock.
 *
 * Bytes are counted as a GPU would move them: every activation-sized tensor at the
 * element size of the model's precision (act_dtype; the CPU's kernels compute in f32 but
 * the GPU's would read and write 16-bit tensors), parameters, gradients and optimizer
 * state at their stored sizes.
 *
 * The CPU's emulation of 16-bit vector ops is not charged as such: the engine scales,
 * adds, norms and checks a 16-bit buffer by widening a piece into an f32 scratch (cast),
 * running the f32 op and narrowing it back (cast), 20 bytes per element where a GPU kernel
 * moves 4. A widening cast that the next vector op consumes is taken back off the clock,
 * the op is charged at the 16-bit width of what it reads and writes, and the narrowing
 * cast that follows it is free: what is charged is the GPU's one kernel.
 *
 * Launches: every kernel takes at least `launch` seconds (the host's launch rate bounds a
 * stream of tiny kernels; sim/cost.h). Consecutive calls of one elementwise op are the
 * CPU's pieces of one GPU kernel: they share one launch. */
#ifndef ZL_SIM_SIM_H
#define ZL_SIM_SIM_H

#include <stdbool.h>

#include "backends/ops.h"
#include "sim/timeline.h"

/* What an op is, for its efficiency in the cost model. */
typedef enum zl_sim_op_kind {
    ZL_SIM_GEMM,        /* dense matrix products (tensor cores under 16 bits) */
    ZL_SIM_ATTENTION,   /* the attention kernels: batched products and a softmax */
    ZL_SIM_ELEMENTWISE, /* memory-bound: norms, activations, casts, optimizer */
    ZL_SIM_NUM_KINDS
} zl_sim_op_kind;

/* What a collective is, for its algorithm in the cost model (comm.c maps its ops here). */
typedef enum zl_sim_coll {
    ZL_SIM_ALLREDUCE,
    ZL_SIM_REDUCE_SCATTER,
    ZL_SIM_ALLGATHER,
    ZL_SIM_BROADCAST,
    ZL_SIM_REDUCE,
    ZL_SIM_P2P,
    ZL_SIM_BARRIER,
} zl_sim_coll;

struct zl_sim;
/* Seconds for one op: FLOPs at rate of `dtype`, bytes at memory bandwidth. */
typedef double (*zl_sim_cost_fn)(const struct zl_sim *s, zl_sim_op_kind kind, double flops,
                                 double bytes, zl_dtype dtype);
/* Seconds for one collective over a group of group_size ranks moving a buffer of
 * `bytes` (the whole buffer: all chunks), whose members are `stride` ranks apart in the
 * world (1: neighbours); *link (may be NULL) names the link it used. */
typedef double (*zl_sim_coll_cost_fn)(const struct zl_sim *s, zl_sim_coll op, double bytes,
                                      int group_size, int stride, const char **link);

/* Seconds for one host <-> device copy of `bytes` (to_device: host to device). */
typedef double (*zl_sim_copy_cost_fn)(const struct zl_sim *s, bool to_device, double bytes);
/* Seconds for a memory-bound pass of the host's CPU over `bytes` (read + written). */
typedef double (*zl_sim_host_cost_fn)(const struct zl_sim *s, double bytes);
/* Seconds for one NVMe transfer of `bytes` (write: to the drive) of this rank's share of
 * the node's drives. */
typedef double (*zl_sim_nvme_cost_fn)(const struct zl_sim *s, bool write, double bytes);

/* A widening cast (16 bits -> f32 scratch) that the next vector op may consume. */
typedef struct zl_sim_widening {
    const void *ptr; /* the f32 scratch it wrote */
    size_t n;
    zl_dtype from;   /* the 16-bit type it read */
} zl_sim_widening;

typedef struct zl_sim {
    zl_timeline timeline;
    const zl_ops *inner;       /* the backend that runs the kernels */
    /* This simulator's timed table (ctx: this simulator), what an attached device calls.
     * It points into the struct: a zl_sim is not copied, only pointed to. */
    zl_ops ops;
    zl_sim_cost_fn op_cost;
    zl_sim_coll_cost_fn coll_cost;
    zl_sim_copy_cost_fn copy_cost;
    zl_sim_host_cost_fn host_cost;
    zl_sim_nvme_cost_fn nvme_cost;
    const void *device_preset; /* for the cost functions (sim/presets.h) */
    const void *cluster;       /* for the collective cost (sim/presets.h) */
    zl_dtype act_dtype;        /* element type of activations on the simulated GPU */
    double flops;              /* FLOPs charged so far (all kernels) */
    double seconds[ZL_SIM_NUM_KINDS]; /* compute time charged per kind */
    double launch;             /* seconds: the least a kernel takes; 0: no floor */
    /* the kernel being charged, while consecutive pieces of one elementwise op continue it */
    struct {
        const char *name;
        double roofline, charged; /* the pieces' roofline sum, and what was charged */
        bool open;
    } run;
    /* pending widenings (at most two: an add widens both operands), the clock before the
     * first, and the scratch whose narrowing is free (the fused op wrote 16 bits) */
    zl_sim_widening widen[2];
    int num_widen;
    struct {
        zl_timeline_mark timeline;
        double flops, seconds[ZL_SIM_NUM_KINDS];
        double run_roofline, run_charged;
        const char *run_name;
        bool run_open;
    } before_widen;
    const void *narrow;
    size_t narrow_n;
} zl_sim;

/* Initialise a simulator over `inner` (NULL: set later, by zl_device_attach_sim; record:
 * keep spans for a trace). */
void zl_sim_init(zl_sim *s, const zl_ops *inner, zl_sim_cost_fn cost, const void *preset,
                 bool record);
void zl_sim_free(zl_sim *s);
/* Put s in front of `inner`: s->ops runs inner's kernels (and keeps its `meta` flag). */
void zl_sim_set_inner(zl_sim *s, const zl_ops *inner);

/* Charge a collective on s's comm stream (no-op without a simulator, or without a
 * collective cost, or for one rank). It starts when this rank's input is ready and not
 * before `arrival`, the last member's readiness (0 if unknown). Blocking: compute waits
 * for it. Returns when it ends (for zl_sim_wait). */
double zl_sim_collective(zl_sim *s, zl_sim_coll op, const char *name, double bytes,
                         int group_size, bool blocking, double arrival);
/* The same for a group whose members are `stride` world ranks apart (the grid's data and
 * pipeline axes: comm/topology.h), which may cross nodes where neighbours would not; the
 * span is named "<name> (<link>)", so that a trace shows which link each collective used. */
double zl_sim_collective_placed(zl_sim *s, zl_sim_coll op, const char *name, double bytes,
                                int group_size, int stride, bool blocking, double arrival);
/* When this rank's next collective could start: s's compute stream's clock (0 without a
 * simulator). */
double zl_sim_ready(const zl_sim *s);
/* Compute on s waits for an asynchronous collective that ends at `end` (no-op for NULL). */
void zl_sim_wait(zl_sim *s, double end);

/* Charge a host <-> device copy of `bytes` on s's host-copy stream ("memcpy HtoD" or
 * "memcpy DtoH"; no-op without a copy cost): it starts when compute has produced its
 * input and compute goes on. Returns its end. s is passed, not found: the device that
 * copies holds it. */
double zl_sim_copy(zl_sim *s, bool to_device, double bytes);
/* Compute waits for every copy charged to s so far. */
void zl_sim_copy_wait(zl_sim *s);

/* Charge work of the host's CPU moving `bytes` (ZeRO-Offload's optimizer step) on s's
 * host compute stream ("host compute" in a trace; no-op without a host cost). It starts
 * when compute and the host copies issued so far are done, and compute waits for it: the
 * host thread that issues the GPU's work runs it (DeepSpeed's CPU Adam is synchronous).
 * Returns its end. */
double zl_sim_host_compute(zl_sim *s, const char *name, double bytes);

/* Charge an NVMe read or write of `bytes` (ZeRO-Infinity's swapping) on s's NVMe stream
 * ("nvme" in a trace; no-op without an NVMe cost, returning the stream's clock), not
 * before `ready` (when the host thread issued it; 0: whenever the drive is free).
 * Nothing waits for it: zl_sim_host_wait does. Returns its end. */
double zl_sim_nvme(zl_sim *s, const char *name, bool write, double bytes, double ready);
/* The host thread blocks until `end` (an NVMe transfer it waits for): the host compute
 * stream and what the host issues to the GPU after it start no earlier. */
void zl_sim_host_wait(zl_sim *s, double end);
/* When the host thread is free to issue more: after the GPU work and the host compute
 * issued so far. */
double zl_sim_host_now(const zl_sim *s);

/* FLOPs and bytes of one gemm of (m, n, k) with operands of `dt` (for tests and costs). */
void zl_sim_gemm_counts(int m, int n, int k, bool accumulate, zl_dtype dt, double *flops,
                        double *bytes);

#endif
