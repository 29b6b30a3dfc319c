/* The cards a rank can impersonate, and clusters of them.
 *
 * Each preset is a datasheet line: memory, HBM bandwidth, dense peak FLOP/s per dtype
 * (tensor cores for 16 bits, no sparsity), the card's usual GPU-to-GPU link in a server,
 * and the host link. docs/simulator.md gives the source of every figure.
 *
 * A cluster is nodes x GPUs per node of one card, with the intra-node link of the card's
 * servers (NVLink for SXM parts, PCIe otherwise) and an inter-node InfiniBand link, one
 * NIC per GPU, of the card's generation. Spec strings (zl_cluster_parse):
 *     a100-80gb                one GPU
 *     8xa100-80gb              one node of 8
 *     2x8xa100-80gb            2 nodes of 8
 *     4x8xh100-80gb,ib200      ... with a 200 Gb/s InfiniBand instead of the default
 * Links after the commas: ib100, ib200, ib400 replace the InfiniBand; pcie, nvlink (or a
 * named generation: pcie3..5, nvlink2..4) replace the link inside a node; two different
 * links for the same place are an error. Device and link names are case-insensitive
 * ("V100-16GB"). At most 2^20 GPUs in all.
 *
 * Units: bytes, bytes/s, FLOP/s, seconds. */
#ifndef ZL_SIM_PRESETS_H
#define ZL_SIM_PRESETS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/dtype.h"
#include "base/status.h"

typedef struct zl_link {
    const char *name;  /* "nvlink3", "pcie4", "ib200", ... */
    double bandwidth;  /* bytes/s per GPU per direction: the line rate */
    double latency;    /* seconds per message (the alpha of alpha-beta) */
    const char *source; /* where the bandwidth comes from */
    /* The fraction of the line rate NCCL's collectives reach: published nccl-tests bus
     * bandwidth of large messages / the line rate (protocol overhead; ~20% on NVLink). */
    double efficiency;
    const char *efficiency_source;
} zl_link;

/* The server a card usually sits in, as ZeRO-Offload and ZeRO-Infinity see it: the host
 * memory its GPUs' ranks share (what offloaded optimizer state and parameters fill) and
 * its NVMe data drives (ZeRO-Infinity's swap space). docs/simulator.md gives the source
 * of every figure. Host memory: DIMMs are binary, so the datasheets' "512 GB" is 512 GiB
 * (as DeepSpeed's estimators count "GB"); NVMe capacity: drives are sold in decimal
 * bytes (3.84 TB = 3.84e12 bytes). */
typedef struct zl_node_preset {
    const char *name;       /* "dgx-a100-640gb" */
    const char *display;    /* "DGX A100 640GB" */
    int gpus;               /* GPUs in the server */
    size_t host_memory;     /* bytes of DRAM in the whole node */
    size_t nvme_capacity;   /* bytes of NVMe (or SSD) data drives in the node; 0: none */
    double nvme_bandwidth;  /* bytes/s sequential over all its data drives (RAID 0) */
    const char *source;     /* the datasheets the figures come from */
} zl_node_preset;

typedef struct zl_device_preset {
    const char *name;         /* "a100-80gb": what --device takes */
    const char *display;      /* "A100-SXM4-80GB" */
    size_t memory;            /* bytes: the vendor's "N GB" read as N GiB (see docs) */
    double hbm_bandwidth;     /* bytes/s (GDDR or DRAM where there is no HBM) */
    double flops_fp32;        /* dense FLOP/s, CUDA cores (no tensor cores) */
    double flops_tf32;        /* dense FLOP/s, tensor cores; 0: none. Informational: PyTorch
                               * runs fp32 matmuls without TF32 by default, and so does the
                               * cost model */
    double flops_fp16;        /* dense FLOP/s, tensor cores, fp32 accumulation */
    double flops_bf16;        /* dense FLOP/s, tensor cores; 0: no bf16 (runs at fp32 rate) */
    const zl_link *intra;     /* the GPU-to-GPU link of its usual server */
    const zl_link *host;      /* PCIe to the host */
    const zl_link *inter;     /* the InfiniBand of its generation */
    const char *source;       /* the documents the card's own figures come from */
    /* The host of the card's usual server (what ZeRO-Offload's CPU step runs on): its
     * DRAM bandwidth, bytes/s for the whole node (all sockets: channels x transfer rate
     * x 8 bytes), and which server and CPUs that is (docs/simulator.md). */
    double host_memory_bandwidth;
    const char *host_source;
    const zl_node_preset *node; /* that server's host memory and NVMe */
} zl_device_preset;

typedef struct zl_cluster {
    const zl_device_preset *device;
    int nodes, gpus_per_node;
    const zl_link *intra, *inter, *host;
    double nvme_bandwidth; /* bytes/s per node, read and write: the node's drives */
    double host_memory_bandwidth; /* bytes/s per node: DRAM, shared by its GPUs' ranks */
    const zl_node_preset *node;   /* the card's server: its host memory and NVMe */
    size_t host_memory;           /* bytes per node, shared by its gpus_per_node ranks */
    size_t nvme_capacity;         /* bytes per node; 0: no NVMe */
} zl_cluster;

#define ZL_CLUSTER_MAX_GPUS (1 << 20)

/* By name, case-insensitively ("a100-80gb", "A100-80GB"); NULL if none. */
const zl_device_preset *zl_device_preset_find(const char *name);
/* "v100-16gb, v100-32gb, ..." for messages */
const char *zl_device_preset_names(void);
/* All presets, in table order (for docs and tests); *n receives the count. */
const zl_device_preset *zl_device_presets(size_t *n);

/* Parse a spec (see above). ZL_ERR_CONFIG names what is wrong and what is accepted (an
 * unknown device: the known ones). */
zl_status zl_cluster_parse(const char *spec, zl_cluster *out);

static inline int zl_cluster_size(const zl_cluster *c) { return c->nodes * c->gpus_per_node; }

/* A rank's share of its node's host memory and NVMe: the node's bytes / gpus_per_node
 * (the ranks of a node share them, as DeepSpeed's estimators count host memory per node
 * for num_gpus_per_node processes). 0: the node has none. */
size_t zl_cluster_host_memory_per_rank(const zl_cluster *c);
size_t zl_cluster_nvme_capacity_per_rank(const zl_cluster *c);

/* All node presets, in table order (docs and tests); *n receives the count. */
const zl_node_preset *zl_node_presets(size_t *n);

/* Dense peak FLOP/s of the card for matrix products in `t` (bf16 without bf16 hardware:
 * the fp32 rate). */
double zl_device_peak_flops(const zl_device_preset *d, zl_dtype t);

#endif
