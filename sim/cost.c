#include "sim/cost.h"

double zl_cost_op(const zl_device_preset *d, zl_sim_op_kind kind, double flops, double bytes,
                  zl_dtype dtype)
{
    double eff = kind == ZL_SIM_GEMM ? ZL_COST_EFF_GEMM
                 : kind == ZL_SIM_ATTENTION ? ZL_COST_EFF_ATTENTION
                                            : 1.0; /* memory-bound: the FLOPs never bind */
    /* elementwise FLOPs run on the CUDA cores at the fp32 rate, whatever the storage */
    double rate = kind == ZL_SIM_ELEMENTWISE ? d->flops_fp32 : zl_device_peak_flops(d, dtype);
    double t_compute = flops / (rate * eff);
    double t_memory = bytes / (d->hbm_bandwidth * ZL_COST_EFF_MEMORY);
    return t_compute > t_memory ? t_compute : t_memory;
}

double zl_cost_collective(const zl_cluster *c, zl_sim_coll op, double bytes, int group_size,
                          bool spans_nodes)
{
    double p = group_size;
    if (group_size <= 1) return 0.0;
    const zl_link *l = spans_nodes ? c->inter : c->intra;
    double a = l->latency, b = zl_link_bus_bandwidth(l);
    switch (op) {
    case ZL_SIM_ALLREDUCE: return 2 * (p - 1) * a + 2 * (p - 1) / p * bytes / b;
    case ZL_SIM_REDUCE_SCATTER:
    case ZL_SIM_ALLGATHER: return (p - 1) * a + (p - 1) / p * bytes / b;
    case ZL_SIM_BROADCAST:
    case ZL_SIM_REDUCE: return (p - 1) * a + bytes / b;
    case ZL_SIM_P2P: return a + bytes / b;
    case ZL_SIM_BARRIER: return 2 * (p - 1) * a;
    }
    return 0.0;
}

double zl_cost_transfer(const zl_cluster *c, zl_transfer_kind kind, double bytes)
{
    if (kind == ZL_NVME_READ || kind == ZL_NVME_WRITE) return bytes / c->nvme_bandwidth;
    return c->host->latency + bytes / c->host->bandwidth;
}

double zl_cost_host_pass(const zl_cluster *c, double bytes)
{
    double share = c->host_memory_bandwidth / (c->gpus_per_node > 0 ? c->gpus_per_node : 1);
    return share > 0 ? bytes / (share * ZL_COST_EFF_HOST_MEMORY) : 0; /* 0: not given */
}

static double sim_op(const zl_sim *s, zl_sim_op_kind kind, double flops, double bytes, zl_dtype dt)
{
    return zl_cost_op(s->device_preset, kind, flops, bytes, dt);
}

/* Ranks are placed node by node: a group whose members, `stride` ranks apart, reach past
 * one node's GPUs crosses nodes (from its first member at a node's start: the data axis of
 * a grid with 8 tensor-parallel ranks per node crosses at once, its model axis never). */
static double sim_coll(const zl_sim *s, zl_sim_coll op, double bytes, int group_size, int stride,
                       const char **link)
{
    const zl_cluster *c = s->cluster;
    bool spans = (double)(group_size - 1) * (stride > 0 ? stride : 1) >= c->gpus_per_node;
    if (link) *link = (spans ? c->inter : c->intra)->name;
    return zl_cost_collective(c, op, bytes, group_size, spans);
}

static double sim_copy(const zl_sim *s, bool to_device, double bytes)
{
    return zl_cost_transfer(s->cluster, to_device ? ZL_HOST_TO_DEVICE : ZL_DEVICE_TO_HOST, bytes);
}

static double sim_host(const zl_sim *s, double bytes) { return zl_cost_host_pass(s->cluster, bytes); }

/* The node's drives are shared by its GPUs' ranks, as its DRAM is. */
static double sim_nvme(const zl_sim *s, bool write, double bytes)
{
    const zl_cluster *c = s->cluster;
    double t = zl_cost_transfer(c, write ? ZL_NVME_WRITE : ZL_NVME_READ, bytes);
    return t * (c->gpus_per_node > 0 ? c->gpus_per_node : 1);
}

void zl_cost_attach(zl_sim *s, const zl_cluster *c)
{
    s->op_cost = sim_op;
    s->coll_cost = sim_coll;
    s->copy_cost = sim_copy;
    s->host_cost = sim_host;
    s->nvme_cost = c->nvme_bandwidth > 0 ? sim_nvme : NULL;
    s->device_preset = c->device;
    s->cluster = c;
    s->launch = ZL_COST_KERNEL_LAUNCH;
}
