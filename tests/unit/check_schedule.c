/* One optimizer step as data: the data-parallel schedule's instruction stream, and the
 * executor (zl_engine_train_batch) against DeepSpeed's forward/backward/step API, bit for
 * bit. */
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* the parameters, bit for bit */
#include "engine/schedule.h"
#include "model/gpt_config.h"

/* The stream of one step at gradient accumulation 4, as DeepSpeed prints instructions. */
START_TEST(test_schedule_data_parallel_stream)
{
    zl_instr prog[32];
    int n = zl_schedule_data_parallel(4, prog, 32);
    ck_assert_int_eq(n, 15);
    ck_assert_int_eq(zl_schedule_data_parallel(4, NULL, 0), 15); /* sizing call */
    char text[1024] = "", one[64];
    for (int i = 0; i < n; i++) {
        zl_instr_format(&prog[i], one, sizeof one);
        strcat(text, one);
        strcat(text, i + 1 < n ? " " : "");
    }
    const char *mb = "LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0) BackwardPass(buffer_id=0) ";
    char want[1024] = "";
    for (int i = 0; i < 4; i++) strcat(want, mb);
    strcat(want, "ReduceTiedGrads() ReduceGrads() OptimizerStep()");
    printf("gradient_accumulation_steps 4: %s\n", text);
    ck_assert_str_eq(text, want);
}
END_TEST

/* A data source: micro-batch k of a fixed random sequence. */
typedef struct source {
    int k, ntok, V;
} source;

static zl_status next_batch(void *ctx, int32_t *in, int32_t *tg)
{
    source *s = ctx;
    for (int i = 0; i < s->ntok; i++) {
        in[i] = (int32_t)(zl_rng_bits(77, 2 * (uint64_t)s->k, (uint64_t)i) % (uint64_t)s->V);
        tg[i] = (int32_t)(zl_rng_bits(77, 2 * (uint64_t)s->k + 1, (uint64_t)i) % (uint64_t)s->V);
    }
    s->k++;
    return ZL_OK;
}

typedef struct seen {
    int n;
    zl_instr ins[64];
} seen;

static void observe(void *ctx, const zl_instr *in)
{
    seen *s = ctx;
    if (!in) return; /* the end of the step */
    if (s->n < 64) s->ins[s->n] = *in;
    s->n++;
}

/* The lab model on two cpu devices, one engine on each (options oa and ob). */
static void two_lab_engines(zl_gpt_config *cfg, zl_device *d1, zl_device *d2,
                            const zl_engine_options *oa, const zl_engine_options *ob, zl_engine **a,
                            zl_engine **b)
{
    ck_assert_int_eq(zl_gpt_config_preset("lab", cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(d1, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(d2, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
    ck_assert_int_eq(zl_engine_create(a, cfg, oa, d1), ZL_OK);
    ck_assert_int_eq(zl_engine_create(b, cfg, ob, d2), ZL_OK);
}

/* train_batch runs the same arithmetic as forward/backward/step: the same weights, loss,
 * norm and counters after three steps at gradient accumulation 4, bit for bit; the executor
 * ran exactly the schedule. */
START_TEST(test_train_batch_equals_forward_backward_step)
{
    zl_gpt_config cfg;
    zl_device d1, d2;
    zl_engine_options o = zl_test_engine_options(2, 4, 16);
    o.gradient_clipping = 0.5;
    zl_engine *a, *b;
    two_lab_engines(&cfg, &d1, &d2, &o, &o, &a, &b);
    seen s = {0};
    zl_engine_set_instr_observer(b, observe, &s);
    source sa = {0, 32, cfg.vocab_size}, sb = sa;
    int32_t in[32], tg[32];
    for (int step = 0; step < 3; step++) {
        double sum = 0;
        for (int micro = 0; micro < 4; micro++) {
            float l;
            next_batch(&sa, in, tg);
            ck_assert_int_eq(zl_engine_forward(a, in, tg, &l), ZL_OK);
            ck_assert_int_eq(zl_engine_backward(a), ZL_OK);
            ck_assert_int_eq(zl_engine_step(a), ZL_OK);
            sum += l;
        }
        float loss;
        ck_assert_int_eq(zl_engine_train_batch(b, next_batch, &sb, &loss), ZL_OK);
        ck_assert_float_eq(loss, (float)(sum / 4));
        ck_assert(a->grad_norm == b->grad_norm);
    }
    ck_assert_int_eq(memcmp(a->params.data, b->params.data, zl_tensor_nbytes(&a->params)), 0);
    ck_assert_int_eq(a->micro_steps, b->micro_steps);
    ck_assert_int_eq(a->global_steps, b->global_steps);
    ck_assert_int_eq(a->global_samples, b->global_samples);
    ck_assert_int_eq(s.n, 3 * 15);
    zl_instr prog[15];
    zl_schedule_data_parallel(4, prog, 15);
    for (int i = 0; i < s.n; i++) {
        ck_assert_int_eq(s.ins[i].kind, prog[i % 15].kind);
        ck_assert_int_eq(s.ins[i].buffer, prog[i % 15].buffer);
    }
    /* Inside an accumulation, train_batch refuses rather than mix two batches. */
    next_batch(&sa, in, tg);
    ck_assert_int_eq(zl_engine_forward(a, in, tg, NULL), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(a), ZL_OK);
    ck_assert_int_eq(zl_engine_step(a), ZL_OK);
    ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, NULL), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "inside an accumulation of 4"));
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}
END_TEST

/* GPipe's order on one stage: every forward, each micro-batch into its own buffer, then
 * every backward. */
START_TEST(test_schedule_gpipe_stream)
{
    zl_instr prog[32];
    int n = zl_schedule_gpipe(3, prog, 32);
    ck_assert_int_eq(n, 12);
    ck_assert_int_eq(zl_schedule_buffers(ZL_SCHEDULE_GPIPE, 3), 3);
    ck_assert_int_eq(zl_schedule_buffers(ZL_SCHEDULE_DATA_PARALLEL, 3), 1);
    char text[1024] = "", one[64];
    for (int i = 0; i < n; i++) {
        zl_instr_format(&prog[i], one, sizeof one);
        strcat(text, one);
        strcat(text, i + 1 < n ? " " : "");
    }
    ck_assert_str_eq(text, "LoadMicroBatch(buffer_id=0) ForwardPass(buffer_id=0) "
                           "LoadMicroBatch(buffer_id=1) ForwardPass(buffer_id=1) "
                           "LoadMicroBatch(buffer_id=2) ForwardPass(buffer_id=2) "
                           "BackwardPass(buffer_id=0) BackwardPass(buffer_id=1) "
                           "BackwardPass(buffer_id=2) ReduceTiedGrads() ReduceGrads() OptimizerStep()");
}
END_TEST

/* Micro-batches in flight keep their own activations: with every forward before any
 * backward (GPipe, 4 slots), the weights after three steps are those of the data-parallel
 * schedule (one slot) bit for bit, in f32 and in bf16 (whose layers share f32 work
 * buffers between the slots), and the ledger holds 4 slots of activations. A slot that
 * leaked into another (a stale input, the last forward's statistics) would change them. */
static void gpipe_matches_data_parallel(zl_dtype dtype)
{
    zl_gpt_config cfg;
    zl_device d1, d2;
    zl_engine_options o = zl_test_engine_options(2, 4, 16), og;
    o.precision.dtype = dtype;
    og = o;
    og.schedule = ZL_SCHEDULE_GPIPE;
    zl_engine *a, *b;
    two_lab_engines(&cfg, &d1, &d2, &o, &og, &a, &b);
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "act.h.0"), 4 * zl_ledger_current(&d1.ledger, "act.h.0"));
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "input"), 4 * zl_ledger_current(&d1.ledger, "input"));
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "act.grad"), zl_ledger_current(&d1.ledger, "act.grad"));
    source sa = {0, 32, cfg.vocab_size}, sb = sa;
    seen s = {0};
    zl_engine_set_instr_observer(b, observe, &s);
    for (int step = 0; step < 3; step++) {
        float la, lb;
        ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, &la), ZL_OK);
        ck_assert_int_eq(zl_engine_train_batch(b, next_batch, &sb, &lb), ZL_OK);
        ck_assert_float_eq(la, lb);
        ck_assert(a->grad_norm == b->grad_norm);
    }
    ck_assert_int_eq(s.ins[4].kind, ZL_LOAD_MICRO_BATCH); /* the GPipe order ran */
    ck_assert_int_eq(s.ins[4].buffer, 2);
    ck_assert_int_eq(memcmp(a->params.data, b->params.data, zl_tensor_nbytes(&a->params)), 0);
    if (dtype != ZL_F32)
        ck_assert_int_eq(memcmp(a->master.data, b->master.data, zl_tensor_nbytes(&a->master)), 0);
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}

START_TEST(test_gpipe_slots_match_data_parallel_f32) { gpipe_matches_data_parallel(ZL_F32); }
END_TEST
START_TEST(test_gpipe_slots_match_data_parallel_bf16) { gpipe_matches_data_parallel(ZL_BF16); }
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("data_parallel");
    tcase_add_test(tc, test_schedule_data_parallel_stream);
    tcase_add_test(tc, test_train_batch_equals_forward_backward_step);
    tcase_add_test(tc, test_schedule_gpipe_stream);
    tcase_add_test(tc, test_gpipe_slots_match_data_parallel_f32);
    tcase_add_test(tc, test_gpipe_slots_match_data_parallel_bf16);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(schedule_suite)
