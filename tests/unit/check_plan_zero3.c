/* ZeRO-3 at DeepSpeed's granularity, at full scale: a traced plan of GPT-3 175B (the
 * repo's full-scale setup: 128 x 8 A100-80GB, bf16, micro-batch 1, 1024 tokens) gathers
 * each parameter tensor whole, no gather larger than the largest tensor (wte, 617M
 * elements; a block's largest is the MLP's 4C x C, 604M; was: one 1.8B-element allgather
 * per block), and part of the
 * gather time runs under compute (the prefetch of the next layer's tensors while a layer
 * computes).
 *
 * stage3_max_live_parameters is raised to 4e9 here: a layer runs only when all its
 * tensors are present, so a 1.8B-element block in use leaves no room for a prefetch under
 * DeepSpeed's 1e9 (DeepSpeed's unit of use is a submodule, at most 604M elements here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check_util.h"
#include "plan/plan.h"
#include "sim/cost.h"

enum { BUCKET = 50000000 };

typedef struct span { double begin, end; } span;

static int by_begin(const void *a, const void *b)
{
    double x = ((const span *)a)->begin, y = ((const span *)b)->begin;
    return (x > y) - (x < y);
}

START_TEST(test_175b_gathers_per_tensor_and_overlap)
{
    zl_cluster c;
    zl_plan_request req;
    zl_test_gpt3_zero3_request(&req, &c);
    zl_engine_options *o = &req.options;
    o->prefetch_bucket_size = BUCKET;
    o->max_live_parameters = 4000000000;
    char *buf = NULL;
    size_t len = 0;
    req.trace = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(req.trace);
    zl_plan_result *res = malloc(sizeof *res);
    ck_assert_int_eq(zl_plan_run(&req, res), ZL_OK);
    fclose(req.trace);
    ck_assert_uint_eq(res->trace_dropped, 0);

    json_error_t err;
    json_t *root = json_loads(buf, 0, &err);
    ck_assert_msg(root, "trace is not JSON: %s (line %d)", err.text, err.line);
    json_t *events = json_object_get(root, "traceEvents");
    size_t n = json_array_size(events), ng = 0, nc = 0;
    span *gathers = calloc(n, sizeof *gathers), *compute = calloc(n, sizeof *compute);
    double largest = 0; /* us: the longest single allgather */
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(events, i);
        const char *ph = json_string_value(json_object_get(e, "ph"));
        if (!ph || strcmp(ph, "X")) continue;
        const char *name = json_string_value(json_object_get(e, "name"));
        double ts = json_number_value(json_object_get(e, "ts"));
        double dur = json_number_value(json_object_get(e, "dur"));
        json_int_t tid = json_integer_value(json_object_get(e, "tid"));
        if (tid == 0) compute[nc++] = (span){ts, ts + dur};
        if (!name || strncmp(name, "all_gather_into_tensor", 22)) continue;
        /* 1024 ranks of 8-GPU nodes: the data-parallel group crosses nodes, and says so */
        char link[64];
        snprintf(link, sizeof link, "all_gather_into_tensor (%s)", c.inter->name);
        ck_assert_str_eq(name, link);
        json_t *k = json_object_get(json_object_get(e, "args"), "kernels");
        double kernels = k ? json_number_value(k) : 1; /* back-to-back runs merged */
        if (dur / kernels > largest) largest = dur / kernels;
        gathers[ng++] = (span){ts, ts + dur};
    }
    /* Bytes from time: the cost of an allgather grows with its bytes, so no allgather took
     * longer than one of the largest tensor's bytes does (bf16). */
    double C = req.model.channels, tensor = req.model.vocab_size * C; /* wte, 617M; the MLP's 604M */
    double tensor_us = 1e6 * zl_cost_collective(&c, ZL_SIM_ALLGATHER, 2.0 * tensor, req.world_size, true);
    printf("  175B ZeRO-3: %zu allgathers, largest %.2f ms (the largest tensor: %.2f ms); step "
           "%.3f s, communication %.3f s, exposed %.3f s\n",
           ng, largest / 1e3, tensor_us / 1e3, res->step_seconds, res->comm_seconds,
           res->exposed_comm_seconds);
    ck_assert_uint_gt(ng, 4 * 2 * 96); /* every block's 4 matrices, in forward and backward */
    ck_assert_msg(largest > 0 && largest <= tensor_us * (1 + 1e-9),
                  "largest allgather %.3f ms > the largest tensor's %.3f ms", largest / 1e3,
                  tensor_us / 1e3);
    /* Gather time under compute: the intersection of the two streams' spans. */
    qsort(compute, nc, sizeof *compute, by_begin);
    double hidden = 0, total = 0;
    for (size_t g = 0; g < ng; g++) {
        total += gathers[g].end - gathers[g].begin;
        for (size_t i = 0; i < nc && compute[i].begin < gathers[g].end; i++) {
            double lo = compute[i].begin > gathers[g].begin ? compute[i].begin : gathers[g].begin;
            double hi = compute[i].end < gathers[g].end ? compute[i].end : gathers[g].end;
            if (hi > lo) hidden += hi - lo;
        }
    }
    printf("  gather time under compute: %.3f s of %.3f s\n", hidden / 1e6, total / 1e6);
    ck_assert_msg(hidden > 0, "no gather time overlaps compute");
    ck_assert(res->comm_seconds > res->exposed_comm_seconds);
    free(gathers);
    free(compute);
    json_decref(root);
    free(buf);
    free(res);
}
END_TEST

static Suite *plan_zero3_suite(void)
{
    Suite *s = suite_create("plan_zero3");
    TCase *tc = tcase_create("175b");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_175b_gathers_per_tensor_and_overlap);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(plan_zero3_suite)
