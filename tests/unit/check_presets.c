/* Device and cluster presets: every card has its figures and a source, the datasheet
 * numbers the docs quote, the default links of each generation, and cluster specs, good
 * and malformed, with the messages a user sees. */
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "sim/presets.h"

#define GIB ((size_t)1 << 30)

START_TEST(test_every_preset_is_complete)
{
    size_t n;
    const zl_device_preset *p = zl_device_presets(&n);
    const char *required[] = {"v100-16gb", "v100-32gb", "a100-40gb", "a100-80gb", "h100-80gb",
                              "h200", "l4", "t4", "rtx3090", "rtx4090", "laptop-cpu"};
    ck_assert_uint_ge(n, sizeof required / sizeof required[0]);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        ck_assert_msg(zl_device_preset_find(required[i]), "no preset '%s'", required[i]);
    for (size_t i = 0; i < n; i++) {
        const zl_device_preset *d = &p[i];
        ck_assert_msg(d->name && d->display && d->display[0], "preset %zu unnamed", i);
        ck_assert_msg(d->source && strlen(d->source) > 10, "%s: no source", d->name);
        ck_assert_msg(d->memory >= GIB, "%s: memory", d->name);
        ck_assert_msg(d->hbm_bandwidth > 0 && d->flops_fp32 > 0, "%s: rates", d->name);
        ck_assert_msg(d->flops_fp16 >= d->flops_fp32 && d->flops_bf16 >= 0 && d->flops_tf32 >= 0,
                      "%s: 16-bit rates", d->name);
        const zl_link *links[] = {d->intra, d->host, d->inter};
        for (int k = 0; k < 3; k++) {
            ck_assert_msg(links[k], "%s: link %d missing", d->name, k);
            ck_assert_msg(links[k]->bandwidth > 0 && links[k]->latency > 0, "%s: %s", d->name,
                          links[k]->name);
            ck_assert_msg(links[k]->source && links[k]->source[0], "%s: %s has no source",
                          d->name, links[k]->name);
            /* NCCL's share of the line rate, with the nccl-tests figure it comes from */
            ck_assert_msg(links[k]->efficiency > 0.5 && links[k]->efficiency <= 1.0, "%s: %s efficiency",
                          d->name, links[k]->name);
            ck_assert_msg(links[k]->efficiency_source && strlen(links[k]->efficiency_source) > 10,
                          "%s: %s efficiency has no source", d->name, links[k]->name);
        }
        /* names are unique, and listed in the message of an unknown device */
        ck_assert_ptr_eq(zl_device_preset_find(d->name), d);
        ck_assert_ptr_nonnull(strstr(zl_device_preset_names(), d->name));
    }
}
END_TEST

/* The datasheet figures docs/simulator.md quotes, for a few cards. */
START_TEST(test_datasheet_figures)
{
    const zl_device_preset *v = zl_device_preset_find("v100-16gb");
    ck_assert_uint_eq(v->memory, 16 * GIB);
    ck_assert_double_eq(v->hbm_bandwidth, 900e9);
    ck_assert_double_eq(v->flops_fp32, 15.7e12);
    ck_assert_double_eq(zl_device_peak_flops(v, ZL_F16), 125e12);
    /* no bf16 tensor cores: bf16 runs at the fp32 rate; no TF32 */
    ck_assert_double_eq(zl_device_peak_flops(v, ZL_BF16), 15.7e12);
    ck_assert_double_eq(v->flops_tf32, 0);

    const zl_device_preset *a = zl_device_preset_find("a100-80gb");
    ck_assert_uint_eq(a->memory, 80 * GIB);
    ck_assert_double_eq(a->hbm_bandwidth, 2039e9);
    ck_assert_double_eq(a->flops_tf32, 156e12);
    ck_assert_double_eq(zl_device_peak_flops(a, ZL_BF16), 312e12);
    /* fp32 matmuls run on the CUDA cores (PyTorch's default: TF32 off) */
    ck_assert_double_eq(zl_device_peak_flops(a, ZL_F32), 19.5e12);
    ck_assert_double_eq(zl_device_preset_find("a100-40gb")->hbm_bandwidth, 1555e9);

    const zl_device_preset *h = zl_device_preset_find("h100-80gb");
    ck_assert_double_eq(zl_device_peak_flops(h, ZL_BF16), 989.4e12);
    ck_assert_double_eq(h->hbm_bandwidth, 3350e9);
    /* 141 "GB": nvidia-smi shows 143771 MiB = 140.4 GiB */
    ck_assert_uint_eq(zl_device_preset_find("h200")->memory, 141 * GIB);
    ck_assert_double_eq(zl_device_preset_find("l4")->flops_bf16, 121e12);
    ck_assert_double_eq(zl_device_preset_find("t4")->flops_fp16, 65e12);
    ck_assert_double_eq(zl_device_preset_find("rtx3090")->flops_fp16, 71e12);
    ck_assert_double_eq(zl_device_preset_find("rtx4090")->flops_bf16, 165.2e12);
}
END_TEST

/* DGX-like defaults: NVLink for SXM parts, PCIe otherwise, InfiniBand of the generation. */
START_TEST(test_default_links)
{
    struct {
        const char *device, *intra, *inter, *host;
    } want[] = {
        {"v100-32gb", "nvlink2", "ib100", "pcie3"}, {"a100-40gb", "nvlink3", "ib200", "pcie4"},
        {"h100-80gb", "nvlink4", "ib400", "pcie5"}, {"h200", "nvlink4", "ib400", "pcie5"},
        {"l4", "pcie4", "ib100", "pcie4"},          {"t4", "pcie3", "ib100", "pcie3"},
        {"rtx3090", "pcie4", "ib100", "pcie4"},     {"rtx4090", "pcie4", "ib100", "pcie4"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        zl_cluster c;
        char spec[64];
        snprintf(spec, sizeof spec, "2x8x%s", want[i].device);
        ck_assert_int_eq(zl_cluster_parse(spec, &c), ZL_OK);
        ck_assert_str_eq(c.intra->name, want[i].intra);
        ck_assert_str_eq(c.inter->name, want[i].inter);
        ck_assert_str_eq(c.host->name, want[i].host);
        ck_assert(c.nvme_bandwidth > 0);
    }
    /* the per-direction figures: NVLink totals halved, InfiniBand line rate / 8 */
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("2x8xh100-80gb", &c), ZL_OK);
    ck_assert_double_eq(c.intra->bandwidth, 450e9);
    ck_assert_double_eq(c.inter->bandwidth, 50e9);
    ck_assert_double_eq(c.host->bandwidth, 64e9);
}
END_TEST

/* Every card sits in a server with host memory and NVMe, from the datasheets
 * (docs/simulator.md): a cluster carries them per node, and a rank's share is the node's
 * divided among the GPUs the spec puts in it. */
START_TEST(test_node_presets)
{
    const size_t GiB = (size_t)1 << 30;
    struct {
        const char *device, *node;
        size_t host;
        double nvme_tb;
    } want[] = {
        {"v100-16gb", "dgx-1", 512 * GiB, 7.68},   {"v100-32gb", "dgx-2", 1536 * GiB, 30.72},
        {"a100-40gb", "dgx-a100-320gb", 1024 * GiB, 15.36},
        {"a100-80gb", "dgx-a100-640gb", 2048 * GiB, 30.72},
        {"h100-80gb", "dgx-h100", 2048 * GiB, 30.72}, {"h200", "dgx-h200", 2048 * GiB, 30.72},
        {"l4", "workstation", 128 * GiB, 2},       {"rtx4090", "workstation", 128 * GiB, 2},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        zl_cluster c;
        ck_assert_int_eq(zl_cluster_parse(want[i].device, &c), ZL_OK);
        ck_assert_str_eq(c.node->name, want[i].node);
        ck_assert_uint_eq(c.host_memory, want[i].host);
        ck_assert_uint_eq(c.nvme_capacity, (size_t)(want[i].nvme_tb * 1e12));
        ck_assert_double_eq(c.nvme_bandwidth, c.node->nvme_bandwidth);
        ck_assert(c.node->source && strlen(c.node->source) > 20);
        /* one GPU of the node: all of it */
        ck_assert_uint_eq(zl_cluster_host_memory_per_rank(&c), want[i].host);
    }
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("2x8xa100-80gb", &c), ZL_OK);
    ck_assert_uint_eq(zl_cluster_host_memory_per_rank(&c), 256 * GiB); /* 2 TB / 8 */
    ck_assert_uint_eq(zl_cluster_nvme_capacity_per_rank(&c), 3840000000000u); /* 30.72 TB / 8 */
    ck_assert_double_eq(c.nvme_bandwidth, 56e9); /* 8 PCIe 4 drives x 7 GB/s */
    ck_assert_int_eq(zl_cluster_parse("16xv100-32gb", &c), ZL_OK);
    ck_assert_uint_eq(zl_cluster_host_memory_per_rank(&c), 96 * GiB); /* DGX-2: 1.5 TB / 16 */
    size_t n;
    const zl_node_preset *nodes = zl_node_presets(&n);
    ck_assert_uint_ge(n, 7);
    for (size_t i = 0; i < n; i++)
        ck_assert(nodes[i].host_memory > 0 && nodes[i].nvme_bandwidth > 0 && nodes[i].gpus >= 1);
}
END_TEST

START_TEST(test_cluster_specs)
{
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("a100-80gb", &c), ZL_OK);
    ck_assert(c.nodes == 1 && c.gpus_per_node == 1 && zl_cluster_size(&c) == 1);
    ck_assert_str_eq(c.device->name, "a100-80gb");
    ck_assert_int_eq(zl_cluster_parse("4xv100-16gb", &c), ZL_OK);
    ck_assert(c.nodes == 1 && c.gpus_per_node == 4);
    ck_assert_str_eq(c.intra->name, "nvlink2");
    ck_assert_int_eq(zl_cluster_parse("2x8xa100-80gb", &c), ZL_OK);
    ck_assert(c.nodes == 2 && c.gpus_per_node == 8 && zl_cluster_size(&c) == 16);
    ck_assert_str_eq(c.inter->name, "ib200");
    /* links after commas, in any order */
    ck_assert_int_eq(zl_cluster_parse("128x8xh100-80gb,ib200,pcie", &c), ZL_OK);
    ck_assert_int_eq(zl_cluster_size(&c), 1024);
    ck_assert_str_eq(c.inter->name, "ib200");
    ck_assert_str_eq(c.intra->name, "pcie5");
    ck_assert_int_eq(zl_cluster_parse("4x8xv100-16gb,ib400,nvlink3", &c), ZL_OK);
    ck_assert_str_eq(c.inter->name, "ib400");
    ck_assert_str_eq(c.intra->name, "nvlink3");
    ck_assert_int_eq(zl_cluster_parse("8xa100-80gb,nvlink", &c), ZL_OK);
    ck_assert_str_eq(c.intra->name, "nvlink3");
    ck_assert_int_eq(zl_cluster_parse("2x4xl4,ib100", &c), ZL_OK);
    ck_assert_str_eq(c.inter->name, "ib100");
    /* names in any case, as docs/config.md writes them ("V100-16GB") */
    ck_assert_ptr_eq(zl_device_preset_find("V100-16GB"), zl_device_preset_find("v100-16gb"));
    ck_assert_int_eq(zl_cluster_parse("2X8xA100-80GB,NVLink,IB400", &c), ZL_OK);
    ck_assert(c.nodes == 2 && c.gpus_per_node == 8);
    ck_assert_str_eq(c.device->name, "a100-80gb");
    ck_assert_str_eq(c.intra->name, "nvlink3");
    ck_assert_str_eq(c.inter->name, "ib400");
    /* the same link twice, or pcie with its own generation, is no conflict */
    ck_assert_int_eq(zl_cluster_parse("8xa100-80gb,pcie,pcie4,ib200,ib200", &c), ZL_OK);
    ck_assert_str_eq(c.intra->name, "pcie4");
    /* the most GPUs there may be */
    ck_assert_int_eq(zl_cluster_parse("1024x1024xh100-80gb", &c), ZL_OK);
    ck_assert_int_eq(zl_cluster_size(&c), 1 << 20);
}
END_TEST

START_TEST(test_bad_cluster_specs)
{
    const char *bad[][2] = {
        {"a100-90gb", "unknown device 'a100-90gb'"},
        {"a100-90gb", "known devices: v100-16gb, v100-32gb"},
        {"8xfoo", "unknown device 'foo'"},
        {"8xfoo", "laptop-cpu"},
        {"0x8xa100-80gb", "counts >= 1"},
        {"2x0xa100-80gb", "counts >= 1"},
        {"2x", "no device after the counts"},
        {"2x8x", "no device after the counts"},
        {"", "cluster spec is missing, empty"},
        {"2x8", "expected NODESxGPUSxDEVICE"},
        {"x8xa100-80gb", "unknown device 'x8xa100-80gb'"},
        {"-2x8xa100-80gb", "unknown device '-2x8xa100-80gb'"},
        {"1x2x3xt4", "unknown device '3xt4'"},
        {"A100-90GB", "unknown device 'A100-90GB'"},
        {"99999999999x8xa100-80gb", "a count is more than 1048576 GPUs, the most zerolab simulates"},
        {"99999999999999999999999x8xa100-80gb", "a count is more than 1048576 GPUs"},
        {"1048577xa100-80gb", "a count is more than 1048576 GPUs, the most zerolab simulates (2^20)"},
        {"2048x1024xa100-80gb", "2048 x 1024 GPUs is more than 1048576 GPUs, the most zerolab simulates"},
        {"8xa100-80gb,pcie,nvlink", "conflicting intra-node links 'pcie' and 'nvlink'"},
        {"8xa100-80gb,nvlink3,pcie4", "conflicting intra-node links 'nvlink3' and 'pcie4'"},
        {"2x8xa100-80gb,ib100,ib200", "conflicting inter-node links 'ib100' and 'ib200'"},
        {"2x8xa100-80gb,ib999", "unknown link 'ib999'"},
        {"2x8xa100-80gb,", "empty link"},
        {"2x8xa100-80gb,,ib200", "empty link"},
        {"4xl4,nvlink", "L4-24GB servers have no NVLink"},
    };
    zl_cluster c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zl_error_clear();
        ck_assert_msg(zl_cluster_parse(bad[i][0], &c) == ZL_ERR_CONFIG, "'%s' accepted", bad[i][0]);
        ck_assert_msg(strstr(zl_last_error(), bad[i][1]), "'%s': %s", bad[i][0], zl_last_error());
    }
    ck_assert_int_eq(zl_cluster_parse(NULL, &c), ZL_ERR_CONFIG);
    /* unknown names are not presets */
    ck_assert_ptr_null(zl_device_preset_find("a100"));
    ck_assert_ptr_null(zl_device_preset_find(""));
}
END_TEST

static Suite *presets_suite(void)
{
    Suite *s = suite_create("presets");
    TCase *tc = tcase_create("presets");
    tcase_add_test(tc, test_every_preset_is_complete);
    tcase_add_test(tc, test_datasheet_figures);
    tcase_add_test(tc, test_default_links);
    tcase_add_test(tc, test_cluster_specs);
    tcase_add_test(tc, test_node_presets);
    tcase_add_test(tc, test_bad_cluster_specs);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(presets_suite)
