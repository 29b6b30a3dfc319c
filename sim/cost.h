/* The cost model: how long an op, a collective or a transfer takes on a simulated card.
 *
 *   op          roofline: max(FLOPs / (peak(dtype) x e_kind), bytes / (HBM x e_mem)); a
 *               kernel on a simulator takes at least ZL_COST_KERNEL_LAUNCH (sim/sim.h)
 *   collective  alpha-beta time of NCCL's algorithm on the slowest link the group spans,
 *               b being the link's line rate x its efficiency (sim/presets.c: published
 *               nccl-tests bus bandwidths):
 *                 ring allreduce        2(p-1) a + 2(p-1)/p n/b
 *                 reduce-scatter,       (p-1) a +  (p-1)/p n/b     (n: the whole buffer)
 *                 allgather
 *                 broadcast, reduce     (p-1) a +  n/b             (pipelined ring/chain)
 *                 send / recv           a + n/b
 *                 barrier               2(p-1) a                   (an empty allreduce)
 *               p ranks, n bytes, a the link's latency, b its bandwidth per direction; a
 *               group within one node uses the intra-node link, one that spans nodes the
 *               inter-node link (one NIC per GPU: NCCL's rings cross nodes at that rate).
 *               (Hierarchical algorithms, NCCL's trees and contention between groups
 *               sharing a link are not modelled.)
 *   transfer    host: latency + bytes / bandwidth of the host link (PCIe), each way;
 *               a simulator charges it on the host-copy stream (zl_sim_copy);
 *               NVMe: bytes / the node's NVMe bandwidth.
 *   host step   bytes / (the node's DRAM bandwidth / its GPUs x e_host): ZeRO-Offload's
 *               CPU Adam is memory-bound, and the ranks of a node share its sockets;
 *               a simulator charges it on the host compute stream (zl_sim_host_compute).
 *
 * Units: FLOPs, bytes, seconds; rates in FLOP/s and bytes/s from sim/presets.h.
 *
 * Efficiencies, the fraction of the datasheet peak a kind of op reaches on real cards
 * (docs/simulator.md has the sources):
 *   gemm       0.75  cuBLAS on large transformer GEMMs runs at 70-80% of the tensor-core
 *                    peak; Megatron-LM's 52% of peak per A100 (1T GPT, 3072 GPUs) is
 *                    that rate diluted by everything else in a step
 *   attention  0.40  unfused attention, as zerolab's kernels do it: batched T x T products
 *                    per head, too small to fill the tensor cores (the FlashAttention-2
 *                    paper puts fused FlashAttention at 25-40% of A100's peak; 0.40 is
 *                    the upper end, so unfused attention may be slower than modelled)
 *   memory     0.80  streaming kernels (norms, GELU, casts, Adam): STREAM-like benchmarks
 *                    (BabelStream) reach 80-90% of the HBM datasheet rate on V100/A100
 * Elementwise FLOPs run at the fp32 (CUDA-core) rate with no discount: they never bind. */
#ifndef ZL_SIM_COST_H
#define ZL_SIM_COST_H

#include <stdbool.h>

#include "sim/presets.h"
#include "sim/sim.h"

#define ZL_COST_EFF_GEMM 0.75      /* cuBLAS on large transformer GEMMs */
#define ZL_COST_EFF_ATTENTION 0.40 /* unfused attention: batched small GEMMs + softmax */
#define ZL_COST_EFF_MEMORY 0.80    /* streaming kernels vs the HBM datasheet rate */
/* A streaming CPU kernel against the DRAM's theoretical rate: STREAM triad on two-socket
 * Xeon and EPYC servers reaches 75-85% of channels x transfer rate (the vendors' and
 * McCalpin's published STREAM results); DeepSpeed's CPU Adam is such a kernel. */
#define ZL_COST_EFF_HOST_MEMORY 0.80

/* The least time a kernel takes on the simulated GPU: launches are asynchronous, so a
 * long kernel hides the next one's launch, but a stream of tiny kernels runs at the
 * host's launch rate. NVIDIA's "Getting Started with CUDA Graphs" (developer.nvidia.com/
 * blog/cuda-graphs) shows launch overheads of a few microseconds per kernel dominating
 * short kernels; PyTorch's eager dispatch adds its own per-op host time of the same
 * order. 4 us is a round figure in that range. Charged as max(roofline, launch) per
 * kernel; consecutive pieces of one elementwise op are one kernel. */
#define ZL_COST_KERNEL_LAUNCH 4e-6

/* A link's bandwidth as NCCL's collectives see it: line rate x efficiency. */
static inline double zl_link_bus_bandwidth(const zl_link *l) { return l->bandwidth * l->efficiency; }

double zl_cost_op(const zl_device_preset *d, zl_sim_op_kind kind, double flops, double bytes,
                  zl_dtype dtype);

/* spans_nodes: the group crosses a node boundary. */
double zl_cost_collective(const zl_cluster *c, zl_sim_coll op, double bytes, int group_size,
                          bool spans_nodes);

typedef enum zl_transfer_kind { ZL_HOST_TO_DEVICE, ZL_DEVICE_TO_HOST, ZL_NVME_READ, ZL_NVME_WRITE } zl_transfer_kind;
double zl_cost_transfer(const zl_cluster *c, zl_transfer_kind kind, double bytes);
/* A memory-bound pass of one rank's CPU share over `bytes` (read + written). */
double zl_cost_host_pass(const zl_cluster *c, double bytes);

/* A simulator charging a cluster's card: zl_sim cost callbacks over `c` (kept by pointer;
 * a data-parallel group of the whole cluster, ranks placed node by node). */
void zl_cost_attach(zl_sim *s, const zl_cluster *c);

#endif
