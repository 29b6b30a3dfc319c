/* Activation checkpointing's memory, RNG position and cost (model/model.h zl_model_ckpt,
 * engine.c): the bitwise equality with the run that keeps everything is
 * tests/mpi/check_actckpt.c's.
 *   - the ledger's activations fall to the segment inputs (per slot) plus ONE segment's
 *     activations, beside the fixed buffers (backward scratch, residual stream, tokens);
 *   - a recomputed layer is called at the RNG position of its first forward, and the
 *     position after backward is the one forward left;
 *   - a plan reproduces Korthikanti et al. (2022) full recompute: 2sbh bytes kept per
 *     layer with 16-bit activations, and hardware FLOPs 4/3 of the model's (MFU from the
 *     model's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "plan/plan.h"
#include "sim/presets.h"

static const zl_gpt_config model = {"ac-unit", 64, 16, 4, 4, 32};
enum { B = 2, T = 8 };

static size_t layer_act_bytes(const zl_model *m, int l, zl_dtype dt)
{
    const zl_layer_vtable *vt = m->layers[l].vt;
    size_t total = vt->act_numel(m, l, B, T);
    size_t stats = vt->act_stats_numel ? vt->act_stats_numel(m, l, B, T) : 0;
    return (total - stats) * zl_dtype_nbytes(dt) + stats * sizeof(float);
}

/* The activation tags' peaks (everything a micro-batch's activations take). */
static size_t act_peak(const zl_ledger *l)
{
    size_t n = 0;
    for (int i = 0; i < l->num_tags; i++)
        if (!strncmp(l->entries[i].tag, "act", 3) || !strcmp(l->entries[i].tag, "input"))
            n += l->entries[i].peak_nbytes;
    return n;
}

static void one_step(zl_engine *e)
{
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) in[i] = (7 * i) % 64, tg[i] = (5 * i + 3) % 64;
    float loss;
    ck_assert_int_eq(zl_engine_forward(e, in, tg, &loss), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
    ck_assert_int_eq(zl_engine_step(e), ZL_OK);
}

/* Peak = segment inputs + the largest segment + fixed buffers, for intervals 1, 2, 3
 * and both dtypes; and below the peak of keeping everything. */
START_TEST(test_actckpt_ledger_peak)
{
    zl_dtype types[] = {ZL_F32, ZL_BF16};
    for (int ti = 0; ti < 2; ti++) {
        zl_dtype dt = types[ti];
        size_t esz = zl_dtype_nbytes(dt), BTC = (size_t)B * T * model.channels;
        zl_engine_options o = zl_test_engine_options(B, 1, T);
        o.precision.dtype = dt;
        zl_device d0;
        ck_assert_int_eq(zl_device_init(&d0, ZL_DEVICE_ACCEL, "cpu", "plain", 0), ZL_OK);
        zl_engine *e0;
        ck_assert_int_eq(zl_engine_create(&e0, &model, &o, &d0), ZL_OK);
        one_step(e0);
        const zl_model *m = zl_engine_model(e0);
        int L = m->num_layers;
        size_t all = 0;
        for (int l = 0; l < L; l++) all += layer_act_bytes(m, l, dt);
        size_t fixed = zl_ledger_peak(&d0.ledger, "act.grad") + zl_ledger_peak(&d0.ledger, "act.stream") +
                       zl_ledger_peak(&d0.ledger, "input");
        ck_assert_uint_eq(act_peak(&d0.ledger), all + fixed); /* the layout without it */
        for (int k = 1; k <= 3; k++) {
            o.checkpoint_interval = k;
            zl_device d;
            ck_assert_int_eq(zl_device_init(&d, ZL_DEVICE_ACCEL, "cpu", "ckpt", 0), ZL_OK);
            zl_engine *e;
            ck_assert_int_eq(zl_engine_create(&e, &model, &o, &d), ZL_OK);
            one_step(e);
            /* segments [j*k, min((j+1)*k, L)); those after the first keep (B,T,C) */
            int nseg = (L + k - 1) / k;
            size_t largest = 0;
            for (int j = 0; j < nseg; j++) {
                size_t s = 0;
                for (int l = j * k; l < L && l < (j + 1) * k; l++) s += layer_act_bytes(m, l, dt);
                if (s > largest) largest = s;
            }
            size_t inputs = (size_t)(nseg - 1) * BTC * esz;
            ck_assert_uint_eq(zl_ledger_peak(&d.ledger, "act_ckpt"), inputs);
            ck_assert_uint_eq(zl_ledger_peak(&d.ledger, "act.segment"), largest);
            ck_assert_msg(act_peak(&d.ledger) == inputs + largest + fixed,
                          "interval %d: activations %zu, formula %zu", k, act_peak(&d.ledger),
                          inputs + largest + fixed);
            ck_assert_msg(inputs + largest < all, "interval %d saves nothing", k);
            zl_engine_destroy(e);
        }
        /* cpu_checkpointing: the inputs on the host, one (B,T,C) stop on the device */
        o.checkpoint_interval = 1;
        o.cpu_checkpointing = true;
        zl_device d;
        ck_assert_int_eq(zl_device_init(&d, ZL_DEVICE_ACCEL, "cpu", "cpu-ckpt", 0), ZL_OK);
        zl_engine *e;
        ck_assert_int_eq(zl_engine_create(&e, &model, &o, &d), ZL_OK);
        one_step(e);
        ck_assert_uint_eq(zl_ledger_peak(&d.ledger, "act_ckpt"), BTC * esz);
        ck_assert_uint_eq(zl_ledger_peak(&e->host->ledger, "act_ckpt"), (size_t)(L - 1) * BTC * esz);
        zl_engine_destroy(e);
        zl_engine_destroy(e0);
    }
}
END_TEST

/* Each layer call's RNG position, recorded by a wrapped forward. */
static const zl_layer_vtable *orig[16];
static zl_layer_vtable wrapped[16];
static int calls[64], ncalls;
static uint64_t pos[64];
static const float *record_forward(zl_model *m, int l, const float *inp)
{
    ck_assert_int_lt(ncalls, 64);
    calls[ncalls] = l;
    pos[ncalls++] = m->rng_pos;
    return orig[l]->forward(m, l, inp);
}

START_TEST(test_actckpt_rng_position)
{
    zl_engine_options o = zl_test_engine_options(B, 1, T);
    o.checkpoint_interval = 2;
    zl_device d;
    ck_assert_int_eq(zl_device_init(&d, ZL_DEVICE_ACCEL, "cpu", "rng", 0), ZL_OK);
    zl_engine *e;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &d), ZL_OK);
    zl_model *m = &e->model;
    int L = m->num_layers;
    for (int l = 0; l < L; l++) {
        orig[l] = m->layers[l].vt;
        wrapped[l] = *orig[l];
        wrapped[l].forward = record_forward;
        m->layers[l].vt = &wrapped[l];
    }
    for (int step = 0; step < 2; step++) {
        ncalls = 0;
        uint64_t start = m->rng_pos;
        one_step(e);
        /* L forward calls, then each layer once more in recompute */
        ck_assert_int_eq(ncalls, 2 * L);
        for (int i = 0; i < L; i++) {
            ck_assert_int_eq(calls[i], i);
            ck_assert(pos[i] == start + (uint64_t)i);
        }
        for (int i = L; i < 2 * L; i++) /* the recompute's call sees its forward's position */
            ck_assert_msg(pos[i] == start + (uint64_t)calls[i], "layer %d recomputed at %llu",
                          calls[i], (unsigned long long)pos[i]);
        ck_assert_int_eq(calls[L], L - 1 - (L - 1) % 2); /* the last segment first */
        ck_assert(m->rng_pos == start + (uint64_t)L);    /* restored after the recompute */
    }
    for (int l = 0; l < L; l++) m->layers[l].vt = orig[l];
    zl_engine_destroy(e);
}
END_TEST

/* GPT-3 175B in bf16 (s = 1024, b = 1, h = 12288), full recompute (interval 1): each
 * layer keeps its input, 2sbh bytes (Korthikanti et al., section 4.3: "only the input to
 * each transformer layer", 2sbh with 16-bit activations, no dropout); hardware FLOPs 4/3
 * of the model's. */
START_TEST(test_actckpt_plan_korthikanti)
{
    zl_plan_request req;
    zl_cluster c;
    zl_test_gpt3_zero3_request(&req, &c);
    zl_plan_result *plain = calloc(1, sizeof *plain), *ck = calloc(1, sizeof *ck);
    ck_assert_int_eq(zl_plan_run(&req, plain), ZL_OK);
    req.options.checkpoint_interval = 1;
    ck_assert_int_eq(zl_plan_run(&req, ck), ZL_OK);
    double s = 1024, b = 1, h = 12288, L = 96;
    /* blocks and the head keep their inputs; the embedding's is the tokens */
    ck_assert_uint_eq(zl_ledger_peak(&ck->ledger, "act_ckpt"), (size_t)((L + 1) * 2 * s * b * h));
    ck_assert(zl_ledger_peak(&ck->ledger, "act.h.0") == 0);
    /* one block's activations in the segment area (the largest layer: the head's) */
    ck_assert_uint_lt(zl_ledger_peak(&ck->ledger, "act.segment"), zl_ledger_peak(&plain->ledger, "act.h.0") * 4);
    ck_assert_msg(fabs(ck->hardware_flops / ck->model_flops - 4.0 / 3.0) < 0.01,
                  "hardware %g / model %g", ck->hardware_flops, ck->model_flops);
    ck_assert_msg(fabs(plain->hardware_flops / plain->model_flops - 1.0) < 0.01,
                  "hardware %g / model %g", plain->hardware_flops, plain->model_flops);
    ck_assert(ck->model_flops == plain->model_flops);
    /* MFU counts the model's FLOPs: the recompute's time lowers it */
    ck_assert(ck->step_seconds > plain->step_seconds && ck->mfu < plain->mfu);
    ck_assert(fabs(ck->mfu * ck->step_seconds - plain->mfu * plain->step_seconds) <
              1e-9 * plain->mfu * plain->step_seconds);
    free(plain);
    free(ck);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("actckpt");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_actckpt_ledger_peak);
    tcase_add_test(tc, test_actckpt_rng_position);
    tcase_add_test(tc, test_actckpt_plan_korthikanti);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(suite)
