/* The preset table. Figures are the vendors' datasheet numbers; the source strings name
 * the documents and docs/simulator.md gives their addresses. Memory: NVIDIA writes "80GB"
 * and means GiB (an A100 80GB shows 81920 MiB in nvidia-smi, an H200 "141GB" 143771 MiB
 * = 140.4 GiB), so N GB is stored as N GiB, which is also how DeepSpeed's estimators
 * count. Rates are dense (no 2:4 sparsity), 16-bit tensor-core rates with fp32
 * accumulation; link bandwidths are per direction. */
#include "sim/presets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GB 1e9
#define TF 1e12
#define GIB ((size_t)1 << 30)

/* NVLink: the per-GPU total of the datasheet (both directions) halved. PCIe x16: the
 * datasheets' "N GB/s" (both directions) halved. InfiniBand: line rate / 8, one NIC per
 * GPU as in DGX A100/H100 (DGX-1/2 had one per two V100s). Latencies are orders of
 * magnitude of NCCL's small-message times.
 *
 * Efficiency: what NCCL's collectives reach of the line rate, as published nccl-tests
 * bus bandwidths (busbw) of large messages (docs/simulator.md has the table):
 *   nvlink3 0.77  8 x A100 SXM4 all_reduce busbw 232.5 GB/s (github.com/NVIDIA/nccl
 *                 issue 1048); 1 GiB on 8 A100 in 8.2 ms = 229 GB/s (zerolab issue 10)
 *   nvlink4 0.82  H100: "with the protocol overhead (~20%) NCCL can get an effective
 *                 NVLink bandwidth of 370GB/s" of 450 (NVIDIA, github.com/NVIDIA/
 *                 nccl-tests issue 212; ring, without NVLink SHARP)
 *   nvlink2 0.80  no V100 figure found: the ~20% protocol overhead of the same answer
 *   pcie3   0.75  V100 PCIe Gen3 x16 measured peak 12 of 16 GB/s (github.com/ZaidQureshi/
 *                 bam issue 54)
 *   pcie4   0.65  8 x L40S PCIe Gen4 flat ring 20.75 of 32 GB/s (github.com/flashinfer-ai/
 *                 flashinfer pull 4870); a single hop reaches 26.3
 *   pcie5   0.78  8 GPUs PCIe Gen5 flat ring 49.64 of 64 GB/s (the same pull request)
 *   ib200   0.96  HDR: "24GB/s inter-node" per NIC (NVIDIA, github.com/NVIDIA/nccl issue 412)
 *   ib400   0.94  NDR: "you should see 46-48GB/s per NIC" (NVIDIA, github.com/NVIDIA/
 *                 nccl-tests issue 290)
 *   ib100   0.94  EDR: no figure found; NDR's
 *   dram    1.0   a measured rate already */
static const zl_link nvlink2 = {"nvlink2", 150 * GB, 5e-6, "V100 datasheet: NVLink 300 GB/s",
                                0.80, "NCCL's ~20% protocol overhead on NVLink (nccl-tests #212)"};
static const zl_link nvlink3 = {"nvlink3", 300 * GB, 5e-6, "A100 datasheet: NVLink 600 GB/s",
                                0.77, "8 x A100 all_reduce busbw 232.5 GB/s (nccl #1048)"};
static const zl_link nvlink4 = {"nvlink4", 450 * GB, 5e-6, "H100 datasheet: NVLink 900 GB/s",
                                0.82, "H100 NVLink ring busbw 370 GB/s (nccl-tests #212)"};
static const zl_link pcie3 = {"pcie3", 16 * GB, 10e-6, "V100/T4 datasheets: PCIe Gen3 32 GB/s",
                              0.75, "V100 PCIe Gen3 measured peak 12 GB/s (bam #54)"};
static const zl_link pcie4 = {"pcie4", 32 * GB, 10e-6, "A100/L4 datasheets: PCIe Gen4 64 GB/s",
                              0.65, "8 x L40S PCIe Gen4 ring 20.75 GB/s (flashinfer #4870)"};
static const zl_link pcie5 = {"pcie5", 64 * GB, 10e-6, "H100 datasheet: PCIe Gen5 128 GB/s",
                              0.78, "8 GPUs PCIe Gen5 ring 49.64 GB/s (flashinfer #4870)"};
static const zl_link ib100 = {"ib100", 12.5 * GB, 15e-6, "InfiniBand EDR 100 Gb/s (V100 era)",
                              0.94, "assumed as NDR's (nccl-tests #290)"};
static const zl_link ib200 = {"ib200", 25 * GB, 15e-6, "InfiniBand HDR 200 Gb/s (DGX A100)",
                              0.96, "HDR busbw 24 GB/s per NIC (nccl #412)"};
static const zl_link ib400 = {"ib400", 50 * GB, 15e-6, "InfiniBand NDR 400 Gb/s (DGX H100)",
                              0.94, "NDR busbw 46-48 GB/s per NIC (nccl-tests #290)"};
static const zl_link dram = {"dram", 20 * GB, 1e-6, "measured here: STREAM-like triad",
                             1.0, "a measured rate"};

#define SRC_V100 "NVIDIA V100 Tensor Core GPU datasheet (SXM2); Volta architecture whitepaper"
#define SRC_A100 "NVIDIA A100 Tensor Core GPU datasheet (SXM4); NVIDIA A100 Tensor Core GPU " \
                 "Architecture whitepaper"
#define SRC_H100 "NVIDIA H100 Tensor Core GPU datasheet (SXM); NVIDIA H100 Tensor Core GPU " \
                 "Architecture whitepaper"

/* The node's host memory (ZeRO-Offload's CPU step is bound by it): DRAM channels x
 * transfer rate x 8 bytes per socket, from the servers' published configurations. */
#define HOST_DGX1 "DGX-1: 2 x Xeon E5-2698 v4, 4 ch. DDR4-2400 = 76.8 GB/s per socket"
#define HOST_DGX2 "DGX-2: 2 x Xeon Platinum 8168, 6 ch. DDR4-2666 = 128 GB/s per socket"
#define HOST_DGXA100 "DGX A100: 2 x EPYC 7742, 8 ch. DDR4-3200 = 204.8 GB/s per socket"
#define HOST_DGXH100 "DGX H100: 2 x Xeon Platinum 8480C, 8 ch. DDR5-4800 = 307.2 GB/s per socket"
#define HOST_WS_DDR4 "single-GPU workstation: 1 socket, 2 ch. DDR4-3200 = 51.2 GB/s"
#define HOST_WS_DDR5 "single-GPU workstation: 1 socket, 2 ch. DDR5-4800 = 76.8 GB/s"

/* The servers (zl_node_preset): host memory and NVMe data drives from the vendors'
 * datasheets; the NVMe rate is the drives' count x a sequential read rate of their class
 * (SATA SSD 0.55 GB/s, PCIe 3 x4 NVMe 3.2 GB/s, PCIe 4 x4 NVMe 7.0 GB/s), in RAID 0 as
 * the DGX systems ship their data drives. docs/simulator.md has the table. */
#define TB 1e12
enum { NODE_DGX1, NODE_DGX2, NODE_DGX_A100_320, NODE_DGX_A100_640, NODE_DGX_H100, NODE_DGX_H200,
       NODE_WORKSTATION, NODE_LAPTOP, NUM_NODES };
static const zl_node_preset nodes[NUM_NODES] = {
    [NODE_DGX1] = {
        "dgx-1", "DGX-1 (V100)", 8, 512 * GIB, (size_t)(4 * 1.92 * TB), 4 * 0.55 * GB,
        "NVIDIA DGX-1 with Tesla V100 datasheet (2017): 512 GB DDR4, 4 x 1.92 TB SSD RAID 0"},
    [NODE_DGX2] = {
        "dgx-2", "DGX-2", 16, 1536 * GIB, (size_t)(8 * 3.84 * TB), 8 * 3.2 * GB,
        "NVIDIA DGX-2 datasheet (2018): 1.5 TB system memory, 30 TB (8 x 3.84 TB) NVMe"},
    [NODE_DGX_A100_320] = {
        "dgx-a100-320gb", "DGX A100 320GB", 8, 1024 * GIB, (size_t)(4 * 3.84 * TB), 4 * 7.0 * GB,
        "NVIDIA DGX A100 datasheet (2020), 320GB system: 1 TB, 15 TB (4 x 3.84 TB) U.2 NVMe"},
    [NODE_DGX_A100_640] = {
        "dgx-a100-640gb", "DGX A100 640GB", 8, 2048 * GIB, (size_t)(8 * 3.84 * TB), 8 * 7.0 * GB,
        "NVIDIA DGX A100 datasheet (2020), 640GB system: 2 TB, 30 TB (8 x 3.84 TB) U.2 NVMe"},
    [NODE_DGX_H100] = {
        "dgx-h100", "DGX H100", 8, 2048 * GIB, (size_t)(8 * 3.84 * TB), 8 * 7.0 * GB,
        "NVIDIA DGX H100 datasheet (2023): 2 TB system memory, 8 x 3.84 TB NVMe U.2"},
    [NODE_DGX_H200] = {
        "dgx-h200", "DGX H200", 8, 2048 * GIB, (size_t)(8 * 3.84 * TB), 8 * 7.0 * GB,
        "NVIDIA DGX H200 datasheet (2024): 2 TB system memory, 8 x 3.84 TB NVMe U.2"},
    [NODE_WORKSTATION] = {
        "workstation", "single-GPU workstation", 1, 128 * GIB, (size_t)(2 * TB), 7.0 * GB,
        "assumed: 4 x 32 GB DIMMs, one 2 TB PCIe 4 NVMe drive (Samsung 990 PRO datasheet, "
        "2022: 7,450 MB/s read)"},
    [NODE_LAPTOP] = {
        "laptop", "development machine", 1, 16 * GIB, (size_t)(512e9), 3.2 * GB,
        "assumed: the laptop-cpu card's 16 GiB is also its host memory; a PCIe 4 drive"},
};

static const zl_device_preset presets[] = {
    /* name, display, memory, memory B/s, fp32, tf32, fp16, bf16, intra, host, inter, source */
    {"v100-16gb", "V100-SXM2-16GB", 16 * GIB, 900 * GB, 15.7 * TF, 0, 125 * TF, 0,
     &nvlink2, &pcie3, &ib100, SRC_V100,
     2 * 76.8 * GB, HOST_DGX1, &nodes[NODE_DGX1]},
    {"v100-32gb", "V100-SXM2-32GB", 32 * GIB, 900 * GB, 15.7 * TF, 0, 125 * TF, 0,
     &nvlink2, &pcie3, &ib100, SRC_V100,
     2 * 128 * GB, HOST_DGX2, &nodes[NODE_DGX2]},
    {"a100-40gb", "A100-SXM4-40GB", 40 * GIB, 1555 * GB, 19.5 * TF, 156 * TF, 312 * TF, 312 * TF,
     &nvlink3, &pcie4, &ib200, SRC_A100,
     2 * 204.8 * GB, HOST_DGXA100, &nodes[NODE_DGX_A100_320]},
    {"a100-80gb", "A100-SXM4-80GB", 80 * GIB, 2039 * GB, 19.5 * TF, 156 * TF, 312 * TF, 312 * TF,
     &nvlink3, &pcie4, &ib200, SRC_A100,
     2 * 204.8 * GB, HOST_DGXA100, &nodes[NODE_DGX_A100_640]},
    {"h100-80gb", "H100-SXM5-80GB", 80 * GIB, 3350 * GB, 67 * TF, 494.7 * TF, 989.4 * TF,
     989.4 * TF, &nvlink4, &pcie5, &ib400, SRC_H100,
     2 * 307.2 * GB, HOST_DGXH100, &nodes[NODE_DGX_H100]},
    {"h200", "H200-SXM-141GB", 141 * GIB, 4800 * GB, 67 * TF, 494.7 * TF, 989.4 * TF, 989.4 * TF,
     &nvlink4, &pcie5, &ib400, "NVIDIA H200 Tensor Core GPU datasheet (SXM); H100 whitepaper",
     2 * 307.2 * GB, HOST_DGXH100, &nodes[NODE_DGX_H200]},
    {"l4", "L4-24GB", 24 * GIB, 300 * GB, 30.3 * TF, 60 * TF, 121 * TF, 121 * TF,
     &pcie4, &pcie4, &ib100, "NVIDIA L4 Tensor Core GPU datasheet (sparse rates halved)",
     51.2 * GB, HOST_WS_DDR4, &nodes[NODE_WORKSTATION]},
    {"t4", "T4-16GB", 16 * GIB, 320 * GB, 8.1 * TF, 0, 65 * TF, 0,
     &pcie3, &pcie3, &ib100, "NVIDIA T4 Tensor Core GPU datasheet",
     51.2 * GB, HOST_WS_DDR4, &nodes[NODE_WORKSTATION]},
    {"rtx3090", "GeForce RTX 3090", 24 * GIB, 936 * GB, 35.6 * TF, 35.6 * TF, 71 * TF, 71 * TF,
     &pcie4, &pcie4, &ib100, "NVIDIA Ampere GA102 GPU Architecture whitepaper, appendix A",
     51.2 * GB, HOST_WS_DDR4, &nodes[NODE_WORKSTATION]},
    {"rtx4090", "GeForce RTX 4090", 24 * GIB, 1008 * GB, 82.6 * TF, 82.6 * TF, 165.2 * TF,
     165.2 * TF, &pcie4, &pcie4, &ib100, "NVIDIA Ada GPU Architecture whitepaper, appendix A",
     76.8 * GB, HOST_WS_DDR5, &nodes[NODE_WORKSTATION]},
    /* Two cores of the machine zerolab is developed on (AVX-512 with BF16): OpenBLAS sgemm
     * at 107-185 GFLOP/s per core depending on its kernel, oneDNN's bf16 matmul ~350 per
     * core on one thread, DRAM ~20 GB/s; fp16 converts to f32 around sgemm. */
    {"laptop-cpu", "laptop CPU (2 cores)", 16 * GIB, 20 * GB, 0.3 * TF, 0, 0.3 * TF, 0.6 * TF,
     &dram, &dram, &ib100, "measured on the development machine (docs/benchmarks.md)",
     20 * GB, "measured on the development machine: STREAM-like triad", &nodes[NODE_LAPTOP]},
};
#define NUM_PRESETS (sizeof presets / sizeof presets[0])

const zl_device_preset *zl_device_presets(size_t *n)
{
    *n = NUM_PRESETS;
    return presets;
}

const zl_device_preset *zl_device_preset_find(const char *name)
{
    /* case-insensitive: docs and DeepSpeed users write "V100-16GB" */
    for (size_t i = 0; i < NUM_PRESETS; i++)
        if (!strcasecmp(presets[i].name, name)) return &presets[i];
    return NULL;
}

const char *zl_device_preset_names(void)
{
    static char names[512];
    if (!names[0])
        for (size_t i = 0; i < NUM_PRESETS; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     presets[i].name);
    return names;
}

const zl_node_preset *zl_node_presets(size_t *n)
{
    *n = NUM_NODES;
    return nodes;
}

size_t zl_cluster_host_memory_per_rank(const zl_cluster *c)
{
    return c->gpus_per_node > 0 ? c->host_memory / (size_t)c->gpus_per_node : 0;
}

size_t zl_cluster_nvme_capacity_per_rank(const zl_cluster *c)
{
    return c->gpus_per_node > 0 ? c->nvme_capacity / (size_t)c->gpus_per_node : 0;
}

double zl_device_peak_flops(const zl_device_preset *d, zl_dtype t)
{
    if (t == ZL_F16) return d->flops_fp16;
    if (t == ZL_BF16 && d->flops_bf16 > 0) return d->flops_bf16;
    return d->flops_fp32;
}

static const zl_link *link_named(const char *s)
{
    static const zl_link *const all[] = {&ib100, &ib200, &ib400, &pcie3, &pcie4, &pcie5,
                                         &nvlink2, &nvlink3, &nvlink4};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcasecmp(all[i]->name, s)) return all[i];
    return NULL;
}

/* A count followed by 'x' (or 'X'); *s advances past it. 0: the count is malformed or
 * zero; -1: it is more than ZL_CLUSTER_MAX_GPUS (digits past any long's range included). */
static int count_x(const char **s, int *out)
{
    const char *p = *s;
    long long v = 0;
    bool big = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > ZL_CLUSTER_MAX_GPUS) big = true, v = ZL_CLUSTER_MAX_GPUS + 1; /* no overflow */
    }
    if (p == *s || (*p != 'x' && *p != 'X') || v < 1) return 0;
    if (big) return -1;
    *out = (int)v;
    *s = p + 1;
    return 1;
}

/* One link after a comma: it replaces the inter-node (ib*) or the intra-node link. A
 * second, different link for the same place (",pcie,nvlink", ",ib100,ib200") is an
 * error: which one the user meant is not ours to guess. *intra_given and *inter_given
 * are the names given so far (NULL: none). */
static zl_status apply_link(const char *spec, const char *l, zl_cluster *c,
                            const char **intra_given, const char **inter_given)
{
    const zl_link *k = link_named(l), *chosen;
    bool inter = false;
    if (!strcasecmp(l, "pcie")) chosen = c->device->host;
    else if (!strcasecmp(l, "nvlink")) {
        if (strncmp(c->device->intra->name, "nvlink", 6))
            return zl_errorf(ZL_ERR_CONFIG,
                             "cluster '%s': %s servers have no NVLink; name a generation "
                             "(nvlink2, nvlink3, nvlink4) to assume one", spec, c->device->display);
        chosen = c->device->intra;
    } else if (k) {
        chosen = k;
        inter = !strncmp(k->name, "ib", 2);
    } else
        return zl_errorf(ZL_ERR_CONFIG,
                         "cluster '%s': unknown link '%s' (links: ib100, ib200, ib400, pcie, "
                         "nvlink, pcie3..pcie5, nvlink2..nvlink4)", spec, l);
    const zl_link **slot = inter ? &c->inter : &c->intra;
    const char **given = inter ? inter_given : intra_given;
    if (*given && *slot != chosen)
        return zl_errorf(ZL_ERR_CONFIG,
                         "cluster '%s': conflicting %s links '%s' and '%s'\n  hint: give one "
                         "%s link", spec, inter ? "inter-node" : "intra-node", *given, l,
                         inter ? "InfiniBand (ib100, ib200, ib400)"
                               : "intra-node (pcie, nvlink, pcie3..5, nvlink2..4)");
    *slot = chosen;
    *given = l;
    return ZL_OK;
}

zl_status zl_cluster_parse(const char *spec, zl_cluster *out)
{
    memset(out, 0, sizeof *out);
    char buf[128];
    if (!spec || !*spec || snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
        return zl_errorf(ZL_ERR_CONFIG, "cluster spec is missing, empty or too long (expected "
                         "e.g. a100-80gb, 8xa100-80gb or 2x8xa100-80gb)");
    char *links = strchr(buf, ',');
    if (links) *links++ = '\0';
    /* [nodes x] [gpus x] device: up to two counts before the name */
    const char *p = buf;
    int counts[2], n = 0;
    while (n < 2 && *p >= '0' && *p <= '9') {
        int ok = count_x(&p, &counts[n]);
        if (ok < 0)
            return zl_errorf(ZL_ERR_CONFIG,
                             "cluster '%s': a count is more than %d GPUs, the most zerolab "
                             "simulates (2^20)", spec, ZL_CLUSTER_MAX_GPUS);
        if (!ok)
            return zl_errorf(ZL_ERR_CONFIG,
                             "cluster '%s': expected NODESxGPUSxDEVICE, GPUSxDEVICE or DEVICE "
                             "(e.g. 2x8xa100-80gb), with counts >= 1", spec);
        n++;
    }
    const zl_device_preset *d = zl_device_preset_find(p);
    if (!d && !*p)
        return zl_errorf(ZL_ERR_CONFIG, "cluster '%s': no device after the counts\n  known "
                         "devices: %s", spec, zl_device_preset_names());
    if (!d)
        return zl_errorf(ZL_ERR_CONFIG, "cluster '%s': unknown device '%s'\n  known devices: %s",
                         spec, p, zl_device_preset_names());
    out->device = d;
    out->nodes = n == 2 ? counts[0] : 1;
    out->gpus_per_node = n == 2 ? counts[1] : n == 1 ? counts[0] : 1;
    if ((long long)out->nodes * out->gpus_per_node > ZL_CLUSTER_MAX_GPUS)
        return zl_errorf(ZL_ERR_CONFIG, "cluster '%s': %d x %d GPUs is more than %d GPUs, the "
                         "most zerolab simulates (2^20)", spec, out->nodes, out->gpus_per_node,
                         ZL_CLUSTER_MAX_GPUS);
    out->intra = d->intra;
    out->inter = d->inter;
    out->host = d->host;
    out->node = d->node;
    out->nvme_bandwidth = d->node->nvme_bandwidth;
    out->host_memory = d->node->host_memory;
    out->nvme_capacity = d->node->nvme_capacity;
    out->host_memory_bandwidth = d->host_memory_bandwidth;
    /* comma-separated links; an empty one (",," or a trailing comma) is an error */
    const char *intra_given = NULL, *inter_given = NULL;
    for (char *l = links; l;) {
        char *next = strchr(l, ',');
        if (next) *next++ = '\0';
        if (!*l) return zl_errorf(ZL_ERR_CONFIG, "cluster '%s': empty link after a comma", spec);
        zl_status st = apply_link(spec, l, out, &intra_given, &inter_given);
        if (st != ZL_OK) return st;
        l = next;
    }
    return ZL_OK;
}
