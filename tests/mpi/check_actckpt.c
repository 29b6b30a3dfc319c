/* Activation checkpointing (model/model.h zl_model_ckpt, engine.c forward_pass /
 * backward_pass) changes where activations live and when they are computed, not what they
 * are: a run that keeps only each segment's input and recomputes the segment before its
 * backward gives the same losses and weights, bit for bit, as the run that keeps every
 * activation. Checked for ZeRO stages 0-3, segments of 1 and 2 layers, gradient
 * accumulation 1 and 2, the inputs on the accelerator or on the host
 * (cpu_checkpointing), fp32 (and bf16, where the recompute must rebuild the same stored
 * 16-bit activations).
 *
 * Run under mpiexec at np = 1 and 2 (tests/run-mpi.sh). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "model/gpt_config.h"

/* 3 blocks: with segments of 2 layers, [embed h.0] [h.1 h.2] [head] */
static const zl_gpt_config model = {"ac-test", 64, 16, 3, 4, 32};
enum { B = 2, T = 8, STEPS = 4 };

static zl_comm *world;

static void global_sequences(int32_t *in, int32_t *tg, int k, int first_seq, int nseq)
{
    for (int s = 0; s < nseq; s++)
        for (int t = 0; t < T; t++) {
            uint64_t idx = (uint64_t)(first_seq + s) * (T + 1) + (uint64_t)t;
            in[s * T + t] = (int32_t)(zl_rng_bits(57, (uint64_t)k, idx) % model.vocab_size);
            tg[s * T + t] = (int32_t)(zl_rng_bits(57, (uint64_t)k, idx + 1) % model.vocab_size);
        }
}

static zl_engine_options options(int gas, int stage, int interval)
{
    zl_engine_options o = zl_test_engine_options(B, gas, T);
    o.gradient_clipping = 1.0;
    o.optimizer.lr = 3e-3;
    o.optimizer.weight_decay = 0.1;
    o.seed = 5;
    o.dp = world->size > 1 ? world : NULL;
    o.zero_stage = stage;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true;
    o.param_persistence_threshold = -1;
    o.prefetch_bucket_size = 5000; /* stage 3: prefetch in pieces, so the order matters */
    o.checkpoint_interval = interval;
    return o;
}

/* STEPS optimizer steps through zl_engine_train_batch; the gathered weights into w. */
typedef struct source {
    int k, rank;
} source;
static zl_status next_batch(void *ctx, int32_t *in, int32_t *tg)
{
    source *s = ctx;
    global_sequences(in, tg, s->k++, s->rank * B, B);
    return ZL_OK;
}

static void train(const zl_engine_options *o, zl_device *dev, float *losses, float *w)
{
    zl_engine *e;
    ck_assert_int_eq(zl_engine_create(&e, &model, o, dev), ZL_OK);
    source src = {0, world->rank};
    for (int step = 0; step < STEPS; step++)
        ck_assert_int_eq(zl_engine_train_batch(e, next_batch, &src, &losses[step]), ZL_OK);
    ck_assert_int_eq(zl_engine_gather_params(e, w), ZL_OK);
    /* the run checkpointed: one segment area, no per-layer activations; segment inputs
     * where they were asked for (none with a single segment from the tokens) */
    const zl_ledger *dl = &dev->ledger, *hl = &e->host->ledger;
    bool ck = o->checkpoint_interval > 0;
    ck_assert(ck == (zl_ledger_peak(dl, "act.segment") > 0));
    ck_assert(ck != (zl_ledger_peak(dl, "act.h.0") > 0));
    if (ck && o->checkpoint_interval < model.num_layers + 2)
        ck_assert(zl_ledger_peak(o->cpu_checkpointing ? hl : dl, "act_ckpt") > 0);
    zl_engine_destroy(e);
}

static void same_bits(const char *what, const zl_engine_options *a, const zl_engine_options *b)
{
    zl_device da, db;
    ck_assert_int_eq(zl_device_init(&da, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&db, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
    float la[STEPS], lb[STEPS];
    size_t n = zl_gpt_config_num_params(&model);
    float *wa = calloc(n, sizeof *wa), *wb = calloc(n, sizeof *wb);
    train(a, &da, la, wa);
    train(b, &db, lb, wb);
    size_t first;
    size_t nl = zl_test_bits_differ(la, lb, STEPS, &first);
    size_t nw = zl_test_bits_differ(wa, wb, n, &first);
    ck_assert_msg(zl_test_all_ok(nl == 0), "%s: %zu losses differ", what, nl);
    ck_assert_msg(zl_test_all_ok(nw == 0), "%s: %zu of %zu weights differ, first at %zu", what, nw,
                  n, first);
    ck_assert_msg(la[0] > 1.0f && la[STEPS - 1] > 1.0f && la[STEPS - 1] != la[0] &&
                      (wa[0] != 0 || wa[1] != 0),
                  "%s: compared nothing (losses %g .. %g)", what, la[0], la[STEPS - 1]);
    free(wa);
    free(wb);
}

/* Every ZeRO stage, segments of 1 and 2 layers, gradient accumulation 1 and 2. */
START_TEST(test_actckpt_bitwise_fp32)
{
    for (int stage = 0; stage <= 3; stage++)
        for (int interval = 1; interval <= 2; interval++)
            for (int gas = 1; gas <= 2; gas++) {
                char what[96];
                snprintf(what, sizeof what, "fp32 ZeRO %d, interval %d, gas %d, np %d", stage,
                         interval, gas, world->size);
                zl_engine_options plain = options(gas, stage, 0), ck = options(gas, stage, interval);
                same_bits(what, &plain, &ck);
            }
}
END_TEST

/* The segment inputs on the host (cpu_checkpointing), and a segment longer than the
 * model (one segment: everything recomputed from the tokens). */
START_TEST(test_actckpt_bitwise_cpu_checkpointing)
{
    zl_engine_options plain = options(2, 3, 0), ck = options(2, 3, 2), one = options(1, 1, 99);
    ck.cpu_checkpointing = true;
    same_bits("cpu_checkpointing, ZeRO 3, interval 2", &plain, &ck);
    plain = options(1, 1, 0);
    same_bits("one segment, ZeRO 1", &plain, &one);
}
END_TEST

/* bf16: the recompute rebuilds the same stored 16-bit activations. */
START_TEST(test_actckpt_bitwise_bf16)
{
    for (int stage = 0; stage <= 3; stage += 3) {
        zl_engine_options plain = options(2, stage, 0), ck = options(2, stage, 1);
        plain.precision.dtype = ck.precision.dtype = ZL_BF16;
        char what[64];
        snprintf(what, sizeof what, "bf16 ZeRO %d, interval 1", stage);
        same_bits(what, &plain, &ck);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("actckpt");
    TCase *tc = tcase_create("bitwise");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_actckpt_bitwise_fp32);
    tcase_add_test(tc, test_actckpt_bitwise_cpu_checkpointing);
    tcase_add_test(tc, test_actckpt_bitwise_bf16);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(suite, &world); }
