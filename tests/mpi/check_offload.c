/* ZeRO-Offload of the optimizer (offload_optimizer.device "cpu", src/zero/offload.c), at
 * np 1 and 2 (tests/run-mpi.sh):
 *   - equivalence: 10 optimizer steps with the optimizer on the host give the same
 *     weights, bit for bit, as the same run without offload, at stages 1, 2 and 3, in
 *     fp32 (with gradient accumulation 4 and clipping at 0.5 at every stage), bf16 and
 *     fp16 (bitwise too: the host step is the same kernel on the same numbers, and the
 *     16-bit gradient's widening is exact; no tolerance is needed, so none is granted);
 *     Stage 2 also with GAS 4 in bf16 and fp16, an fp32 reduction, overlap_comm on and off
 *     (its partition accumulates on the host, rounded to the 16-bit grad_dtype as on the
 *     device);
 *   - ledgers: the device holds no "master", "adam.m", "adam.v" bytes, and at stage 2 no
 *     "grad"; the host holds them, and its two staging buffers, per rank, by the formula
 *     below;
 *   - the simulated trace shows the D2H copies (at stage 2 from backward on), the CPU's
 *     step and the H2D copy on their rows (host copy, host compute);
 *   - config: offload_optimizer accepted at stages 1-3 ("nvme" at 1-2 meaning cpu, and
 *     the deprecated cpu_offload alias; at 3 it is tests/mpi/check_nvme.c's), refused at
 *     stage 0, ratio < 1 refused by name.
 * Each rank runs both trainings itself on its own devices, over the world (one or two
 * ranks), so comparisons need no extra communication. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "comm/comm.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* the host device and the strategy's buffers */
#include "model/gpt_config.h"
#include "run/run.h"

static zl_comm *world;

/* A small AdamW recipe; `device` is offload_optimizer.device, `zextra` a fragment of more
 * zero_optimization keys, `extra` of more top-level keys ("" for none). Micro-batch 4 per
 * rank. */
static void recipe_z(char *json, size_t n, int stage, int gas, double clip, const char *device,
                     const char *zextra, const char *extra)
{
    snprintf(json, n,
             "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": %d,"
             " \"gradient_clipping\": %g,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95],"
             "   \"eps\": 1e-8, \"weight_decay\": 0.1}},"
             " \"zero_optimization\": {\"stage\": %d, \"offload_optimizer\": {\"device\": \"%s\"}%s%s}%s%s}",
             gas, clip, stage, device, zextra[0] ? ", " : "", zextra, extra[0] ? ", " : "", extra);
}

static void recipe(char *json, size_t n, int stage, int gas, double clip, const char *device,
                   const char *extra)
{
    recipe_z(json, n, stage, gas, clip, device, "", extra);
}

static void run_open(zl_run *r, const char *json, const char *device, const char *trace)
{
    zl_test_run_open(r, json, world, device, trace);
}

/* Train `steps` optimizer steps of the recipe; the whole parameter vector into *out
 * (malloc'd, params_numel floats); returns the number of skipped steps. */
static int64_t train(const char *json, int steps, float **out, size_t *numel)
{
    zl_run r;
    run_open(&r, json, NULL, NULL);
    for (int s = 0; s < steps; s++) {
        float loss;
        ck_assert_msg(zl_run_step(&r, &loss) == ZL_OK, "%s", zl_last_error());
    }
    *numel = r.engine->model.params_numel;
    *out = malloc(*numel * sizeof **out);
    ck_assert_ptr_nonnull(*out);
    ck_assert_int_eq(zl_engine_gather_params(r.engine, *out), ZL_OK);
    int64_t skipped = zl_engine_skipped_steps(r.engine);
    zl_run_free(&r);
    return skipped;
}

/* The same recipe with and without offload: the same bits after 10 steps. */
static void equivalent_z(int stage, int gas, double clip, const char *name, const char *zextra,
                         const char *precision)
{
    char a[2048], b[2048];
    recipe_z(a, sizeof a, stage, gas, clip, "none", zextra, precision);
    recipe_z(b, sizeof b, stage, gas, clip, "cpu", zextra, precision);
    float *wa, *wb;
    size_t na, nb;
    int64_t sa = train(a, 10, &wa, &na), sb = train(b, 10, &wb, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(sa, sb);
    size_t first, differ = zl_test_bits_differ(wa, wb, na, &first);
    ck_assert_msg(zl_test_all_ok(differ == 0),
                  "stage %d, gas %d, clip %g, %s, %d rank(s): %zu of %zu weights differ with "
                  "offload (first: [%zu] %.9g vs %.9g)", stage, gas, clip,
                  name, world->size, differ, na, first,
                  first < na ? wa[first] : 0.0, first < na ? wb[first] : 0.0);
    /* the runs trained: the weights moved from their start */
    float *w0;
    size_t n0, moved = 0;
    train(a, 0, &w0, &n0);
    for (size_t i = 0; i < n0; i++) moved += w0[i] != wa[i];
    ck_assert_msg(moved > n0 / 2, "only %zu of %zu weights moved in 10 steps", moved, n0);
    free(w0);
    if (world->rank == 0)
        printf("  stage %d, gas %d, clip %g, %s, %d rank(s): 10 steps, %zu weights bitwise equal "
               "with offload (%lld skipped)\n", stage, gas, clip, name,
               world->size, na, (long long)sa);
    free(wa);
    free(wb);
}

static void equivalent(int stage, int gas, double clip, const char *name, const char *precision)
{
    equivalent_z(stage, gas, clip, name, "", precision);
}

#define BF16 "\"bf16\": {\"enabled\": true}"
#define FP16 "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 12}"
#define FP16_ACC32 "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 12}, " \
                   "\"data_types\": {\"grad_accum_dtype\": \"fp32\"}"

START_TEST(test_fp32_stage1_gas4_clip) { equivalent(1, 4, 0.5, "fp32", ""); }
END_TEST
START_TEST(test_fp32_stage2_gas4_clip) { equivalent(2, 4, 0.5, "fp32", ""); }
END_TEST
START_TEST(test_fp32_stage2_no_clip) { equivalent(2, 1, 0, "fp32", ""); }
END_TEST
START_TEST(test_fp32_stage3_gas4_clip) { equivalent(3, 4, 0.5, "fp32", ""); }
END_TEST
START_TEST(test_bf16_stage1) { equivalent(1, 2, 0.5, "bf16", BF16); }
END_TEST
START_TEST(test_bf16_stage2) { equivalent(2, 2, 0.5, "bf16", BF16); }
END_TEST
START_TEST(test_bf16_stage3) { equivalent(3, 2, 0.5, "bf16", BF16); }
END_TEST
START_TEST(test_fp16_stage1) { equivalent(1, 2, 0.5, "fp16", FP16); }
END_TEST
START_TEST(test_fp16_stage2) { equivalent(2, 2, 0.5, "fp16", FP16); }
END_TEST
START_TEST(test_fp16_stage3) { equivalent(3, 2, 0.5, "fp16", FP16); }
END_TEST
START_TEST(test_fp16_fp32_accumulation_stage2) { equivalent(2, 2, 0.5, "fp16 + fp32 accumulation", FP16_ACC32); }
END_TEST
/* Stage 2 accumulates the partition on the host, rounding each micro-step's sum to the
 * 16-bit grad_dtype as the device's partition does: GAS 4 in both 16-bit types, an fp32
 * reduction into a 16-bit accumulation, and overlap_comm on and off (np 2: the layer
 * reductions then finish a layer late, while the next backward runs). */
#define BF16_COMM32 BF16 ", \"communication_data_type\": \"fp32\""
START_TEST(test_bf16_stage2_gas4) { equivalent(2, 4, 0.5, "bf16", BF16); }
END_TEST
START_TEST(test_fp16_stage2_gas4) { equivalent(2, 4, 0.5, "fp16", FP16); }
END_TEST
START_TEST(test_bf16_comm32_stage2_gas4) { equivalent(2, 4, 0.5, "bf16 + fp32 reduction", BF16_COMM32); }
END_TEST
START_TEST(test_bf16_stage2_overlap_on)
{
    equivalent_z(2, 4, 0.5, "bf16, overlap_comm", "\"overlap_comm\": true", BF16);
}
END_TEST
START_TEST(test_fp32_stage2_overlap_off)
{
    equivalent_z(2, 4, 0.5, "fp32, no overlap_comm", "\"overlap_comm\": false", "");
}
END_TEST

/* ---- ledgers --------------------------------------------------------------------------- */

/* This rank's optimizer partition, in elements, computed here from the model's layout:
 * stages 1-2 split the flat vector padded to a multiple of 2N into N equal parts
 * (DeepSpeed's alignment); stage 3 keeps ceil(n_l / N) elements of every layer l. */
static size_t partition_numel(const zl_model *m, int stage, int N)
{
    if (stage < 3) {
        size_t align = 2 * (size_t)N;
        return (m->params_numel + align - 1) / align * align / (size_t)N;
    }
    size_t p = 0;
    for (int l = 0; l < m->num_layers; l++) {
        size_t b, e;
        zl_model_layer_range(m, l, &b, &e);
        p += (e - b + (size_t)N - 1) / (size_t)N;
    }
    return p;
}

/* device_grad_bytes: bytes per element of the partition the device keeps as "grad" (stage
 * 1: the whole gradient, not checked here, -1; stage 2: none, the host accumulates it). */
static void ledgers(int stage, const char *name, const char *precision, size_t param_bytes,
                    int device_grad_bytes)
{
    char json[2048];
    recipe(json, sizeof json, stage, 1, 1.0, "cpu", precision);
    zl_run r;
    run_open(&r, json, NULL, NULL);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    zl_engine *e = r.engine;
    const zl_ledger *dev = &zl_engine_device(e)->ledger, *host = &e->host->ledger;
    size_t P = partition_numel(&e->model, stage, world->size);
    ck_assert_uint_eq(P, e->zero.opt_numel);
    static const char *const state[] = {"master", "adam.m", "adam.v"};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(zl_ledger_current(dev, state[i]) == 0, "stage %d: device holds %zu bytes of %s",
                      stage, zl_ledger_current(dev, state[i]), state[i]);
        ck_assert_uint_eq(zl_ledger_current(host, state[i]), 4 * P); /* fp32 */
    }
    /* the host's staging: the fp32 gradient, and the stepped partition in the model's type */
    ck_assert_uint_eq(zl_ledger_current(host, "offload.grad"), 4 * P);
    ck_assert_uint_eq(zl_ledger_current(host, "offload.param"), param_bytes * P);
    if (device_grad_bytes >= 0)
        ck_assert_msg(zl_ledger_current(dev, "grad") == (size_t)device_grad_bytes * P &&
                      zl_ledger_peak(dev, "grad") == (size_t)device_grad_bytes * P,
                      "stage %d, %s: device holds %zu bytes of grad (peak %zu), want %zu", stage,
                      name, zl_ledger_current(dev, "grad"), zl_ledger_peak(dev, "grad"),
                      (size_t)device_grad_bytes * P);
    /* nothing else of the engine's on the host but the micro-batch staging */
    size_t ours = (12 + 4 + param_bytes) * P;
    ck_assert_uint_ge(host->cur_nbytes, ours);
    ck_assert_uint_eq(zl_ledger_current(host, "param") + zl_ledger_current(host, "grad"), 0);
    if (world->rank == 0)
        printf("  stage %d, %s, %d rank(s): host holds 12 x %zu bytes of optimizer state + "
               "%zu x %zu of staging; the device none\n", stage, name,
               world->size, P, 4 + param_bytes, P);
    zl_run_free(&r);
}

START_TEST(test_ledger_stage1) { ledgers(1, "fp32", "", 4, -1); }
END_TEST
START_TEST(test_ledger_stage2_bf16) { ledgers(2, "bf16", BF16, 2, 0); }
END_TEST
START_TEST(test_ledger_stage2_fp32) { ledgers(2, "fp32", "", 4, 0); }
END_TEST
START_TEST(test_ledger_stage3) { ledgers(3, "fp32", "", 4, -1); }
END_TEST
START_TEST(test_ledger_stage3_fp16) { ledgers(3, "fp16", FP16, 2, -1); }
END_TEST

/* ---- the simulated trace ------------------------------------------------------------- */

/* On a simulated V100 the D2H copies of the gradient share, the CPU's Adam and the H2D copy
 * of the partition run on their streams, in that order; at stage 2 the copies start
 * during backward (each layer's share as it is reduced), beside its compute. */
START_TEST(test_trace_rows)
{
    char json[2048];
    recipe(json, sizeof json, 2, 1, 1.0, "cpu", BF16);
    char path[] = "/tmp/zl_offload_traceXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    zl_run r;
    run_open(&r, json, "v100-16gb", path);
    float loss;
    ck_assert_int_eq(zl_run_step(&r, &loss), ZL_OK);
    const zl_timeline *tl = &r.sim.timeline;
    double d2h_end = -1, adam_start = -1, adam_end = -1, h2d_start = -1;
    double d2h_first = -1, bwd_end = -1; /* the first D2H's start, the last backward op's end */
    for (size_t i = 0; i < tl->num_spans; i++) {
        const zl_span *s = &tl->spans[i];
        size_t len = strlen(s->name);
        if (s->stream == ZL_STREAM_COMPUTE && len > 4 && !strcmp(s->name + len - 4, "_bwd") &&
            s->end > bwd_end)
            bwd_end = s->end;
        if (s->stream == ZL_STREAM_HOST && !strcmp(s->name, "memcpy DtoH") && d2h_first < 0)
            d2h_first = s->start;
        if (s->stream == ZL_STREAM_HOST && !strcmp(s->name, "memcpy DtoH")) d2h_end = s->end;
        if (s->stream == ZL_STREAM_CPU && !strcmp(s->name, "cpu_adam")) adam_start = s->start, adam_end = s->end;
        if (s->stream == ZL_STREAM_HOST && !strcmp(s->name, "memcpy HtoD") && adam_end >= 0 && h2d_start < 0)
            h2d_start = s->start;
    }
    ck_assert_msg(d2h_end > 0 && adam_start >= d2h_end && adam_end > adam_start && h2d_start >= adam_end,
                  "D2H ends %g, cpu_adam %g-%g, H2D starts %g", d2h_end, adam_start, adam_end, h2d_start);
    ck_assert_str_eq(zl_stream_name(ZL_STREAM_CPU), "host compute");
    ck_assert_msg(bwd_end > 0 && d2h_first >= 0 && d2h_first < bwd_end,
                  "the first D2H starts at %g, after backward's compute (ends %g)", d2h_first, bwd_end);
    if (world->rank == 0)
        printf("  trace: D2H %.1f-%.1f us (backward ends %.1f us), cpu_adam %.1f-%.1f us, H2D "
               "from %.1f us\n", 1e6 * d2h_first, 1e6 * d2h_end, 1e6 * bwd_end,
               1e6 * adam_start, 1e6 * adam_end, 1e6 * h2d_start);
    zl_run_free(&r);
    close(fd);
    unlink(path);
}
END_TEST

/* ---- config ---------------------------------------------------------------------------- */

/* The config is accepted by the engine's check; *offload: what the options say. */
static zl_status check(const char *json, bool *offload)
{
    zl_engine_options o;
    zl_status st = zl_test_check_config(json, world->size, &o);
    *offload = o.offload_optimizer;
    return st;
}

static void zo(char *json, size_t n, int stage, const char *offload)
{
    snprintf(json, n, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": "
                      "{\"stage\": %d, %s}}", stage, offload);
}

START_TEST(test_config)
{
    char json[1024];
    bool off;
    for (int stage = 1; stage <= 3; stage++) {
        zo(json, sizeof json, stage, "\"offload_optimizer\": {\"device\": \"cpu\", \"pin_memory\": true}");
        ck_assert_msg(check(json, &off) == ZL_OK, "stage %d: %s", stage, zl_last_error());
        ck_assert(off);
    }
    /* stages 1-2: nvme means the CPU, as in DeepSpeed */
    zo(json, sizeof json, 2, "\"offload_optimizer\": {\"device\": \"nvme\", \"nvme_path\": \"/tmp\"}");
    ck_assert_msg(check(json, &off) == ZL_OK, "%s", zl_last_error());
    ck_assert(off);
    /* the deprecated alias */
    zo(json, sizeof json, 2, "\"cpu_offload\": true");
    ck_assert_msg(check(json, &off) == ZL_OK, "%s", zl_last_error());
    ck_assert(off);
    /* stage 3: nvme is ZeRO-Infinity's optimizer swapping (tests/mpi/check_nvme.c) */
    zo(json, sizeof json, 3, "\"offload_optimizer\": {\"device\": \"nvme\", \"nvme_path\": \"/tmp\"}");
    ck_assert_msg(check(json, &off) == ZL_OK, "%s", zl_last_error());
    ck_assert(off);
    /* stage 0 has no ZeRO optimizer to offload */
    zo(json, sizeof json, 0, "\"offload_optimizer\": {\"device\": \"cpu\"}");
    ck_assert_int_eq(check(json, &off), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "needs ZeRO stage 1, 2 or 3"), "%s", zl_last_error());
    /* partial offload stays refused by name */
    zo(json, sizeof json, 3, "\"offload_optimizer\": {\"device\": \"cpu\", \"ratio\": 0.5}");
    ck_assert_int_ne(check(json, &off), ZL_OK);
    ck_assert_msg(strstr(zl_last_error(), "ratio"), "%s", zl_last_error());
    /* the old refusal is gone */
    zo(json, sizeof json, 2, "\"offload_optimizer\": {\"device\": \"cpu\"}");
    ck_assert_int_eq(check(json, &off), ZL_OK);
}
END_TEST

static Suite *offload_suite(void)
{
    Suite *s = suite_create("offload");
    TCase *tc = tcase_create("offload");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_ledger_stage1);
    tcase_add_test(tc, test_ledger_stage2_bf16);
    tcase_add_test(tc, test_ledger_stage2_fp32);
    tcase_add_test(tc, test_ledger_stage3);
    tcase_add_test(tc, test_ledger_stage3_fp16);
    tcase_add_test(tc, test_trace_rows);
    tcase_add_test(tc, test_fp32_stage1_gas4_clip);
    tcase_add_test(tc, test_fp32_stage2_gas4_clip);
    tcase_add_test(tc, test_fp32_stage2_no_clip);
    tcase_add_test(tc, test_fp32_stage3_gas4_clip);
    tcase_add_test(tc, test_bf16_stage1);
    tcase_add_test(tc, test_bf16_stage2);
    tcase_add_test(tc, test_bf16_stage3);
    tcase_add_test(tc, test_fp16_stage1);
    tcase_add_test(tc, test_fp16_stage2);
    tcase_add_test(tc, test_fp16_stage3);
    tcase_add_test(tc, test_fp16_fp32_accumulation_stage2);
    tcase_add_test(tc, test_bf16_stage2_gas4);
    tcase_add_test(tc, test_fp16_stage2_gas4);
    tcase_add_test(tc, test_bf16_comm32_stage2_gas4);
    tcase_add_test(tc, test_bf16_stage2_overlap_on);
    tcase_add_test(tc, test_fp32_stage2_overlap_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(offload_suite, &world); }
