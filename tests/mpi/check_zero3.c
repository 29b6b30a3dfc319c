/* ZeRO stage 3 at DeepSpeed's granularity (src/zero/stage3.c): parameters fetched per
 * tensor in pieces no larger than stage3_prefetch_bucket_size, prefetched ahead, released
 * after use; and offload_param on the host. How values move changes, not what they are:
 *   - stage 3 at two ranks computes bit for bit what stage 2 computes (each element's
 *     gradient is the same a + b, Adam the same elementwise update);
 *   - small buckets (every tensor cut in pieces, prefetch a piece at a time) and no
 *     prefetch at all give the same bits as the defaults.
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

static const zl_gpt_config model = {"z3-test", 64, 16, 2, 4, 32};
enum { B = 2, T = 8, STEPS = 10 };

static zl_comm *world;

static void global_sequences(int32_t *in, int32_t *tg, int k, int first_seq, int nseq)
{
    for (int s = 0; s < nseq; s++)
        for (int t = 0; t < T; t++) {
            uint64_t idx = (uint64_t)(first_seq + s) * (T + 1) + (uint64_t)t;
            in[s * T + t] = (int32_t)(zl_rng_bits(91, (uint64_t)k, idx) % model.vocab_size);
            tg[s * T + t] = (int32_t)(zl_rng_bits(91, (uint64_t)k, idx + 1) % model.vocab_size);
        }
}

static zl_engine_options options(int gas, double clip, int stage)
{
    zl_engine_options o = zl_test_engine_options(B, gas, T);
    o.gradient_clipping = clip;
    o.optimizer.lr = 3e-3;
    o.optimizer.weight_decay = 0.1;
    o.seed = 11;
    o.dp = world->size > 1 ? world : NULL;
    o.zero_stage = stage;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true;
    o.param_persistence_threshold = -1;
    return o;
}

/* STEPS optimizer steps; the gathered weights into w (params_numel floats). */
static void train(const zl_engine_options *o, zl_device *dev, float *losses, float *w)
{
    zl_engine *e;
    ck_assert_int_eq(zl_engine_create(&e, &model, o, dev), ZL_OK);
    int r = world->rank;
    int32_t in[B * T], tg[B * T];
    for (int step = 0; step < STEPS; step++) {
        double sum = 0;
        for (int micro = 0; micro < o->gradient_accumulation_steps; micro++) {
            float loss;
            global_sequences(in, tg, step * o->gradient_accumulation_steps + micro, r * B, B);
            ck_assert_int_eq(zl_engine_forward(e, in, tg, &loss), ZL_OK);
            ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
            ck_assert_int_eq(zl_engine_step(e), ZL_OK);
            sum += loss;
        }
        losses[step] = (float)sum;
    }
    ck_assert_int_eq(zl_engine_gather_params(e, w), ZL_OK);
    zl_engine_destroy(e);
}

static void same_bits(const char *what, const zl_engine_options *a, const zl_engine_options *b)
{
    zl_device da, db;
    ck_assert_int_eq(zl_device_init(&da, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&db, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
    float la[STEPS], lb[STEPS];
    size_t n = 4 * 1024 * 1024;
    float *wa = calloc(n, sizeof *wa), *wb = calloc(n, sizeof *wb);
    train(a, &da, la, wa);
    train(b, &db, lb, wb);
    ck_assert_msg(memcmp(la, lb, sizeof la) == 0, "%s: losses differ", what);
    ck_assert_msg(memcmp(wa, wb, n * sizeof *wa) == 0, "%s: weights differ", what);
    ck_assert_msg(wa[0] != 0 || wa[1] != 0, "%s: compared nothing", what);
    free(wa);
    free(wb);
}

/* Stage 3 against stage 2 at two ranks (and one): the same bits, GAS 1 and GAS 4 with
 * clipping. */
START_TEST(test_zero3_bitwise_stage2)
{
    if (world->size > 2) return;
    zl_engine_options s2 = options(1, 0, 2), s3 = options(1, 0, 3);
    same_bits("stage 3 vs stage 2, gas 1", &s2, &s3);
    s2 = options(4, 0.5, 2), s3 = options(4, 0.5, 3);
    same_bits("stage 3 vs stage 2, gas 4 clip", &s2, &s3);
}
END_TEST

/* Buckets far smaller than a tensor: every large tensor fetched in pieces, prefetch a
 * piece at a time, few live parameters; and no prefetch at all. */
START_TEST(test_zero3_small_buckets_same_bits)
{
    zl_engine_options d = options(2, 0.5, 3), small = d, tight = d, none = d;
    small.prefetch_bucket_size = 1000; /* pieces of 1000, one in flight at a time */
    tight.prefetch_bucket_size = 3000;
    tight.max_live_parameters = 15000; /* a block (12704) leaves room for one piece */
    tight.max_reuse_distance = -1;     /* every layer released when its buffer is claimed */
    none.prefetch_bucket_size = -1;
    same_bits("bucket 1000 vs default", &d, &small);
    same_bits("bucket 3000, live 15000 vs default", &d, &tight);
    same_bits("no prefetch vs default", &d, &none);
}
END_TEST

/* offload_param cpu: the partitions on the host, copied in on fetch (with prefetch). fp32
 * training gives the same bits as without offload over STEPS steps; the accelerator holds
 * no "param" bytes (only "gather" buffers), the host holds this rank's shard. */
static void offload_same_bits(int gas, double clip, bool pin)
{
    zl_engine_options base = options(gas, clip, 3), off = base;
    off.offload_param = true;
    off.offload_param_pin_memory = pin;
    char what[64];
    snprintf(what, sizeof what, "offload_param gas %d clip %g", gas, clip);
    same_bits(what, &base, &off);

    zl_device dev, host;
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "card", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&host, ZL_DEVICE_HOST, "cpu", "host", 0), ZL_OK);
    off.host = &host;
    ck_assert_int_eq(zl_engine_create(&e, &model, &off, &dev), ZL_OK);
    size_t shard = 0, W = (size_t)world->size;
    for (int i = 0; i < e->model.num_params; i++) shard += (e->model.params[i].numel + W - 1) / W;
    const char *tag = pin ? "param" : "param.pageable";
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "param"), 0);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "param.pageable"), 0);
    ck_assert_uint_eq(zl_ledger_current(&host.ledger, tag), 4 * shard);
    ck_assert_uint_gt(zl_ledger_current(&dev.ledger, "gather"), 0);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "master"), 4 * shard);
    zl_engine_destroy(e);
}

START_TEST(test_zero3_offload_param_same_bits) { offload_same_bits(1, 0, true); }
END_TEST
START_TEST(test_zero3_offload_param_gas4_clip) { offload_same_bits(4, 0.5, false); }
END_TEST

static Suite *zero3_suite(void)
{
    Suite *s = suite_create("zero3");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_zero3_bitwise_stage2);
    tcase_add_test(tc, test_zero3_small_buckets_same_bits);
    tcase_add_test(tc, test_zero3_offload_param_same_bits);
    tcase_add_test(tc, test_zero3_offload_param_gas4_clip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return zl_test_run_mpi_with(zero3_suite, &world);
}
