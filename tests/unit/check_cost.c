/* The cost model against its formulas, written out again here with the links' datasheet
 * figures and NCCL efficiencies typed in (not read from the presets): alpha-beta
 * collectives for several group sizes, message sizes and links, inside a node and across
 * nodes, at line rate x efficiency; simulated bus bandwidths against published nccl-tests
 * figures; the roofline of an op with its efficiencies; host and NVMe transfers. (The
 * presets: check_presets.c.) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "sim/cost.h"
#include "sim/presets.h"

/* Relative agreement: the same formula evaluated in another order. */
static void ck_time(double got, double want, const char *what)
{
    ck_assert_msg(fabs(got - want) <= 1e-12 * want + 1e-18, "%s: %.17g s, want %.17g s", what,
                  got, want);
}

/* The formulas, for p ranks, n bytes (the whole buffer), latency a, bandwidth b. */
static double want_time(zl_sim_coll op, double p, double n, double a, double b)
{
    switch (op) {
    case ZL_SIM_ALLREDUCE: return 2 * (p - 1) * a + 2 * (p - 1) / p * n / b;
    case ZL_SIM_REDUCE_SCATTER: return (p - 1) * a + (p - 1) / p * n / b;
    case ZL_SIM_ALLGATHER: return (p - 1) * a + (p - 1) / p * n / b;
    case ZL_SIM_BROADCAST: return (p - 1) * a + n / b;
    case ZL_SIM_REDUCE: return (p - 1) * a + n / b;
    case ZL_SIM_P2P: return a + n / b;
    case ZL_SIM_BARRIER: return 2 * (p - 1) * a;
    }
    return -1;
}

/* Collectives equal the alpha-beta formulas on the group's link: the intra-node one for
 * a group within a node, the InfiniBand for one that spans nodes. */
START_TEST(test_collectives_are_alpha_beta)
{
    /* bandwidths: line rate x NCCL's efficiency on the link */
    struct {
        const char *spec;
        double intra_a, intra_b, inter_a, inter_b;
    } clusters[] = {
        {"4x8xa100-80gb", 5e-6, 300e9 * 0.77, 15e-6, 25e9 * 0.96},       /* NVLink3, HDR */
        {"16x8xh100-80gb,pcie", 10e-6, 64e9 * 0.78, 15e-6, 50e9 * 0.94}, /* PCIe 5 forced, NDR */
        {"8x4xv100-16gb", 5e-6, 150e9 * 0.80, 15e-6, 12.5e9 * 0.94},     /* NVLink2, EDR */
        {"2x8xl4,ib400", 10e-6, 32e9 * 0.65, 15e-6, 50e9 * 0.94},        /* PCIe 4, NDR forced */
    };
    const double sizes[] = {0, 1, 4096, 1 << 20, 1.5e9, 1e11};
    const int groups[] = {2, 3, 4, 7, 8, 16, 64, 1000};
    int compared = 0;
    for (size_t k = 0; k < sizeof clusters / sizeof clusters[0]; k++) {
        zl_cluster c;
        ck_assert_int_eq(zl_cluster_parse(clusters[k].spec, &c), ZL_OK);
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
            for (int cross = 0; cross <= 1; cross++)
                for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                    for (int op = ZL_SIM_ALLREDUCE; op <= ZL_SIM_BARRIER; op++) {
                        double a = cross ? clusters[k].inter_a : clusters[k].intra_a;
                        double b = cross ? clusters[k].inter_b : clusters[k].intra_b;
                        double n = op == ZL_SIM_BARRIER ? 0 : sizes[i];
                        double got = zl_cost_collective(&c, op, n, groups[g], cross);
                        char what[128];
                        snprintf(what, sizeof what, "%s op %d p %d n %g %s", clusters[k].spec, op,
                                 groups[g], n, cross ? "across nodes" : "in a node");
                        ck_time(got, want_time(op, groups[g], n, a, b), what);
                        compared++;
                    }
    }
    ck_assert_int_eq(compared, 4 * 8 * 2 * 6 * 7);

    /* a worked number: 1 GB allreduced by 8 A100s over NVLink3 at 77% of its line rate,
     * 14 x 5 us + 2 x 7/8 x 1e9 / 231e9 = 70 us + 7.5758 ms */
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("8xa100-80gb", &c), ZL_OK);
    ck_time(zl_cost_collective(&c, ZL_SIM_ALLREDUCE, 1e9, 8, false), 70e-6 + 1.75 / 231, "8 x A100");
}
END_TEST

/* Simulated bus bandwidth (nccl-tests' busbw = 2(p-1)/p x bytes / time for an allreduce)
 * of 1 GiB against published nccl-tests figures, within 10%. Before the links had an
 * efficiency, 8 A100s took 6.3 ms where nccl-tests measures 8.2. */
START_TEST(test_bus_bandwidth_matches_nccl_tests)
{
    struct {
        const char *spec;
        int p;
        bool cross;
        double busbw; /* GB/s */
        const char *source;
    } published[] = {
        {"8xa100-80gb", 8, false, 232.5, "8 x A100 SXM4 (github.com/NVIDIA/nccl issue 1048)"},
        {"8xh100-80gb", 8, false, 370, "H100 NVLink, ring (github.com/NVIDIA/nccl-tests issue 212)"},
        {"2x8xa100-80gb", 16, true, 24, "HDR per NIC (github.com/NVIDIA/nccl issue 412)"},
        {"2x8xh100-80gb", 16, true, 47, "NDR per NIC, 46-48 (github.com/NVIDIA/nccl-tests issue 290)"},
        {"8xl4", 8, false, 20.75, "8 GPUs PCIe Gen4 ring (flashinfer pull 4870)"},
        {"8xh100-80gb,pcie", 8, false, 49.64, "8 GPUs PCIe Gen5 ring (flashinfer pull 4870)"},
        {"4xt4", 4, false, 12, "PCIe Gen3 measured peak (bam issue 54)"},
    };
    const double n = 1073741824.0;
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
        zl_cluster c;
        ck_assert_int_eq(zl_cluster_parse(published[i].spec, &c), ZL_OK);
        double p = published[i].p;
        double t = zl_cost_collective(&c, ZL_SIM_ALLREDUCE, n, published[i].p, published[i].cross);
        double busbw = 2 * (p - 1) / p * n / t / 1e9;
        ck_assert_msg(fabs(busbw / published[i].busbw - 1) <= 0.10, "%s: simulated busbw %.1f GB/s, "
                      "published %.1f GB/s (%s)", published[i].spec, busbw, published[i].busbw,
                      published[i].source);
    }
    /* the measurement: 1 GiB allreduced by 8 A100s in 8.2 ms (nccl-tests) */
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("8xa100-80gb", &c), ZL_OK);
    double t = zl_cost_collective(&c, ZL_SIM_ALLREDUCE, n, 8, false);
    ck_assert_msg(fabs(t / 8.2e-3 - 1) <= 0.10, "8 x A100, 1 GiB: %.2f ms, measured 8.2 ms", 1e3 * t);
}
END_TEST

/* One rank (or none) moves nothing and waits for nobody. */
START_TEST(test_one_rank_costs_nothing)
{
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("2x8xa100-80gb", &c), ZL_OK);
    for (int op = ZL_SIM_ALLREDUCE; op <= ZL_SIM_BARRIER; op++)
        for (int cross = 0; cross <= 1; cross++) {
            ck_assert_double_eq(zl_cost_collective(&c, op, 1e9, 1, cross), 0);
            ck_assert_double_eq(zl_cost_collective(&c, op, 1e9, 0, cross), 0);
        }
    /* the same allreduce across nodes is slower than within one */
    ck_assert_double_gt(zl_cost_collective(&c, ZL_SIM_ALLREDUCE, 1e9, 8, true),
                        zl_cost_collective(&c, ZL_SIM_ALLREDUCE, 1e9, 8, false));
}
END_TEST

/* Through a simulator (zl_cost_attach): groups larger than a node cross nodes. */
START_TEST(test_attached_groups)
{
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("4x8xa100-80gb", &c), ZL_OK);
    zl_sim s;
    memset(&s, 0, sizeof s);
    zl_cost_attach(&s, &c);
    ck_time(s.coll_cost(&s, ZL_SIM_ALLGATHER, 1e8, 8, 1, NULL),
            want_time(ZL_SIM_ALLGATHER, 8, 1e8, 5e-6, 300e9 * 0.77), "8 ranks: one node");
    ck_time(s.coll_cost(&s, ZL_SIM_ALLGATHER, 1e8, 16, 1, NULL),
            want_time(ZL_SIM_ALLGATHER, 16, 1e8, 15e-6, 25e9 * 0.96), "16 ranks: two nodes");
    /* a grid's data axis: 4 ranks 8 apart (8 tensor-parallel ranks per node) cross nodes;
     * its model axis (8 neighbours) does not; the link is named */
    const char *link = NULL;
    ck_time(s.coll_cost(&s, ZL_SIM_ALLGATHER, 1e8, 4, 8, &link),
            want_time(ZL_SIM_ALLGATHER, 4, 1e8, 15e-6, 25e9 * 0.96), "4 ranks 8 apart: 4 nodes");
    ck_assert_str_eq(link, c.inter->name);
    ck_time(s.coll_cost(&s, ZL_SIM_ALLGATHER, 1e8, 8, 1, &link),
            want_time(ZL_SIM_ALLGATHER, 8, 1e8, 5e-6, 300e9 * 0.77), "8 neighbours: one node");
    ck_assert_str_eq(link, c.intra->name);
    ck_assert_double_eq(s.launch, ZL_COST_KERNEL_LAUNCH); /* kernels take at least 4 us */
    ck_assert_double_eq(ZL_COST_KERNEL_LAUNCH, 4e-6);
    ck_time(s.op_cost(&s, ZL_SIM_GEMM, 1e15, 1e6, ZL_BF16), 1e15 / (312e12 * 0.75), "op through sim");
}
END_TEST

/* Roofline: the larger of compute at peak x efficiency and bytes at 80% of HBM. */
START_TEST(test_op_roofline)
{
    const zl_device_preset *d = zl_device_preset_find("a100-80gb");
    const double hbm = 2039e9 * 0.80;
    /* a compute-bound GEMM (4096^3 in bf16): FLOPs at 75% of the bf16 peak */
    double f = 2.0 * 4096 * 4096 * 4096, by = 2.0 * 3 * 4096 * 4096;
    ck_assert_double_gt(f / (312e12 * 0.75), by / hbm);
    ck_time(zl_cost_op(d, ZL_SIM_GEMM, f, by, ZL_BF16), f / (312e12 * 0.75), "gemm bf16");
    ck_time(zl_cost_op(d, ZL_SIM_GEMM, f, by, ZL_F16), f / (312e12 * 0.75), "gemm f16");
    /* fp32 runs on the CUDA cores */
    ck_time(zl_cost_op(d, ZL_SIM_GEMM, f, 2 * by, ZL_F32), f / (19.5e12 * 0.75), "gemm f32");
    /* a memory-bound GEMM (a matrix-vector product, 4096 x 4096 x 1): bytes bind */
    double fv = 2.0 * 4096 * 4096, bv = 2.0 * (4096 * 4096 + 2 * 4096);
    ck_assert_double_gt(bv / hbm, fv / (312e12 * 0.75));
    ck_time(zl_cost_op(d, ZL_SIM_GEMM, fv, bv, ZL_BF16), bv / hbm, "gemv");
    /* attention at 40% of the peak when compute binds */
    ck_time(zl_cost_op(d, ZL_SIM_ATTENTION, 1e14, 1e6, ZL_BF16), 1e14 / (312e12 * 0.40), "attention");
    ck_time(zl_cost_op(d, ZL_SIM_ATTENTION, 1e6, 1e10, ZL_BF16), 1e10 / hbm, "attention, bytes");
    /* elementwise: bytes at 80% of HBM; FLOPs only bind beyond the fp32 rate, undiscounted */
    ck_time(zl_cost_op(d, ZL_SIM_ELEMENTWISE, 1e6, 1e9, ZL_BF16), 1e9 / hbm, "elementwise");
    ck_time(zl_cost_op(d, ZL_SIM_ELEMENTWISE, 1e13, 1, ZL_BF16), 1e13 / 19.5e12, "elementwise flops");
    /* the V100 has no bf16 tensor cores: bf16 products at the fp32 rate, fp16 on tensor cores */
    const zl_device_preset *v = zl_device_preset_find("v100-32gb");
    ck_time(zl_cost_op(v, ZL_SIM_GEMM, f, by, ZL_BF16), f / (15.7e12 * 0.75), "v100 bf16");
    ck_time(zl_cost_op(v, ZL_SIM_GEMM, f, by, ZL_F16), f / (125e12 * 0.75), "v100 f16");
    /* nothing to do costs nothing */
    ck_assert_double_eq(zl_cost_op(d, ZL_SIM_GEMM, 0, 0, ZL_BF16), 0);
}
END_TEST

/* Host copies over the card's PCIe (latency + bytes / bandwidth), NVMe at the node's rate. */
START_TEST(test_transfers)
{
    zl_cluster c;
    ck_assert_int_eq(zl_cluster_parse("a100-80gb", &c), ZL_OK); /* PCIe 4: 32 GB/s, 10 us */
    ck_time(zl_cost_transfer(&c, ZL_HOST_TO_DEVICE, 32e9), 10e-6 + 1.0, "h2d");
    ck_time(zl_cost_transfer(&c, ZL_DEVICE_TO_HOST, 1e6), 10e-6 + 1e6 / 32e9, "d2h");
    /* a DGX A100 640GB's 8 PCIe 4 drives, 7 GB/s each (sim/presets.c) */
    ck_time(zl_cost_transfer(&c, ZL_NVME_READ, 56e9), 1.0, "nvme read");
    ck_time(zl_cost_transfer(&c, ZL_NVME_WRITE, 28e9), 0.5, "nvme write");
    ck_assert_int_eq(zl_cluster_parse("h100-80gb", &c), ZL_OK); /* PCIe 5: 64 GB/s */
    ck_time(zl_cost_transfer(&c, ZL_HOST_TO_DEVICE, 64e9), 10e-6 + 1.0, "h2d pcie5");
}
END_TEST

static Suite *cost_suite(void)
{
    Suite *s = suite_create("cost");
    TCase *tc = tcase_create("cost");
    tcase_add_test(tc, test_collectives_are_alpha_beta);
    tcase_add_test(tc, test_bus_bandwidth_matches_nccl_tests);
    tcase_add_test(tc, test_one_rank_costs_nothing);
    tcase_add_test(tc, test_attached_groups);
    tcase_add_test(tc, test_op_roofline);
    tcase_add_test(tc, test_transfers);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(cost_suite)
