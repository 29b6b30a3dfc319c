/* The GPT model and the single-rank engine: parameter table, initialisation independent
 * of slicing, whole-model gradients against finite differences, backend agreement, the
 * ledger's accounting, and DeepSpeed's gradient-accumulation semantics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "base/rng.h"
#include "core/device.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* parameters and gradients */
#include "engine/schedule.h"
#include "model/gpt_config.h"
#include "model/model.h"

/* V=16 C=8 L=1 NH=2 T=4: small enough for finite differences over many parameters. */
static const zl_gpt_config tiny = {"tiny", 16, 8, 1, 2, 8};

static void random_batch(int32_t *in, int32_t *tg, int n, int V, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        in[i] = (int32_t)(zl_rng_bits(seed, 1, (uint64_t)i) % (uint64_t)V);
        tg[i] = (int32_t)(zl_rng_bits(seed, 2, (uint64_t)i) % (uint64_t)V);
    }
}

/* A data source for zl_engine_train_batch: micro-batch k of a fixed random sequence. */
typedef struct batch_source {
    int k, ntok, V;
} batch_source;

static zl_status next_source_batch(void *ctx, int32_t *in, int32_t *tg)
{
    batch_source *s = ctx;
    random_batch(in, tg, s->ntok, s->V, 100 + (uint64_t)s->k++);
    return ZL_OK;
}

static zl_engine_options options(int B, int T, int gas)
{
    zl_engine_options o = zl_test_engine_options(B, gas, T);
    o.seed = 1234;
    return o;
}

START_TEST(test_model_param_table)
{
    zl_device dev;
    zl_model m;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    ck_assert_int_eq(zl_gpt_config_preset("gpt2-124m", &cfg), ZL_OK);
    ck_assert_int_eq(zl_model_create(&m, &cfg, &dev), ZL_OK);
    /* GPT-2 small has 124,439,808 parameters with tied embeddings (HF's count). */
    ck_assert_uint_eq(m.params_numel, 124439808u);
    ck_assert_int_eq(m.num_layers, 14);
    ck_assert_int_eq(m.num_params, 2 + 12 * 12 + 2);
    size_t off = 0;
    for (int i = 0; i < m.num_params; i++) { /* contiguous, in table order */
        ck_assert_uint_eq(m.params[i].offset, off);
        off += m.params[i].numel;
    }
    int i = zl_model_find_param(&m, "h.11.mlp.c_proj.weight");
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(m.params[i].shape[0], 768);
    ck_assert_int_eq(m.params[i].shape[1], 3072);
    ck_assert(m.params[i].weight_decay);
    ck_assert(!m.params[zl_model_find_param(&m, "h.0.ln_1.bias")].weight_decay);
    ck_assert_int_eq(zl_model_find_param(&m, "lm_head.weight"), -1); /* tied: no separate head */
    zl_model_destroy(&m);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0); /* the table itself is host metadata */
}
END_TEST

/* A tie whose members are bound to different buffers (opt.tie_copies: the head keeps its
 * own copy of wte, as a pipeline stage holding the head would) still gets one reduced
 * gradient: at ReduceGrads (after ReduceTiedGrads) the owner's wte gradient is the
 * shared-binding run's, up to the order of the sum, and the head's copy holds the very
 * same gradient; after three steps the weights agree, and the copy equals the owner.
 * Without the tied reduction the owner would miss the head's share (about half). */
typedef struct tie_probe {
    zl_engine *e;
    float *grad;   /* the owner's wte gradient at ReduceGrads, f32 */
    float *copy;   /* the copy's, or NULL */
    size_t n;
} tie_probe;

static void probe_at_reduce(void *ctx, const zl_instr *in)
{
    tie_probe *p = ctx;
    if (!in || in->kind != ZL_REDUCE_GRADS) return;
    const zl_model *m = &p->e->model;
    const zl_tie_group *g = &m->ties[0];
    const float *grads = zl_tensor_f32(&p->e->grads);
    memcpy(p->grad, grads + m->params[g->param].offset, p->n * sizeof(float));
    if (p->copy) memcpy(p->copy, g->copy_grads[0], p->n * sizeof(float));
}

START_TEST(test_tie_copies_get_one_reduced_gradient)
{
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    zl_device d1, d2;
    ck_assert_int_eq(zl_device_init(&d1, ZL_DEVICE_ACCEL, "cpu", "shared", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d2, ZL_DEVICE_ACCEL, "cpu", "copies", 0), ZL_OK);
    zl_engine_options o = options(2, 16, 2);
    zl_engine *a, *b;
    ck_assert_int_eq(zl_engine_create(&a, &cfg, &o, &d1), ZL_OK);
    o.tie_copies = true;
    ck_assert_int_eq(zl_engine_create(&b, &cfg, &o, &d2), ZL_OK);
    const zl_tie_group *g = &b->model.ties[0];
    ck_assert_ptr_nonnull(g->copy_values[0]);
    ck_assert_ptr_null(a->model.ties[0].copy_values[0]);
    size_t n = b->model.params[g->param].numel, off = b->model.params[g->param].offset;
    /* the copy starts as the owner's values, on the ledger as a parameter */
    ck_assert_int_eq(memcmp(g->copy_values[0], zl_tensor_f32(&b->params) + off, n * sizeof(float)), 0);
    ck_assert_uint_eq(zl_ledger_current(&d2.ledger, "param"),
                      zl_ledger_current(&d1.ledger, "param") + n * sizeof(float));
    tie_probe pa = {a, malloc(n * sizeof(float)), NULL, n};
    tie_probe pb = {b, malloc(n * sizeof(float)), malloc(n * sizeof(float)), n};
    zl_engine_set_instr_observer(a, probe_at_reduce, &pa);
    zl_engine_set_instr_observer(b, probe_at_reduce, &pb);
    batch_source sa = {0, 32, cfg.vocab_size}, sb = sa;
    for (int step = 0; step < 3; step++) {
        float la, lb;
        ck_assert_int_eq(zl_engine_train_batch(a, next_source_batch, &sa, &la), ZL_OK);
        ck_assert_int_eq(zl_engine_train_batch(b, next_source_batch, &sb, &lb), ZL_OK);
        double diff = 0, norm = 0;
        for (size_t i = 0; i < n; i++) {
            diff += ((double)pa.grad[i] - pb.grad[i]) * ((double)pa.grad[i] - pb.grad[i]);
            norm += (double)pa.grad[i] * pa.grad[i];
        }
        ck_assert_double_gt(norm, 0);
        ck_assert_msg(sqrt(diff / norm) < 1e-6, "step %d: tied gradient differs by %g (relative)",
                      step, sqrt(diff / norm));
        ck_assert_int_eq(memcmp(pb.copy, pb.grad, n * sizeof(float)), 0); /* one gradient */
        ck_assert_float_eq_tol(la, lb, 1e-5f * fabsf(la));
    }
    /* The weights as a whole (Adam divides by sqrt(v): an element whose gradient is at the
     * level of rounding moves by up to lr either way, so elementwise bounds say nothing). */
    const float *pa_w = zl_tensor_f32(&a->params), *pb_w = zl_tensor_f32(&b->params);
    double wdiff = 0, wnorm = 0;
    for (size_t i = 0; i < b->model.params_numel; i++) {
        wdiff += ((double)pa_w[i] - pb_w[i]) * ((double)pa_w[i] - pb_w[i]);
        wnorm += (double)pa_w[i] * pa_w[i];
    }
    printf("tie copies: weights differ by %.3g (relative L2) after 3 steps\n", sqrt(wdiff / wnorm));
    ck_assert_double_lt(sqrt(wdiff / wnorm), 1e-5);
    ck_assert_int_eq(memcmp(g->copy_values[0], pb_w + off, n * sizeof(float)), 0);
    free(pa.grad);
    free(pb.grad);
    free(pb.copy);
    zl_engine_destroy(a);
    zl_engine_destroy(b);

    /* A strategy that reduces each layer's gradient during backward cannot sum copies
     * before the reduction: refused by name (DeepSpeed's pipeline allows ZeRO 0-1). */
    o.zero_stage = 2;
    ck_assert_int_eq(zl_engine_create(&b, &cfg, &o, &d2), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "ZeRO stage 2"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "hint: use ZeRO stage 0 or 1"));
}
END_TEST

START_TEST(test_model_init_independent_of_slicing)
{
    zl_device dev;
    zl_model m;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    ck_assert_int_eq(zl_model_create(&m, &cfg, &dev), ZL_OK);
    size_t n = m.params_numel;
    float *full = malloc(n * sizeof *full), *sliced = malloc(n * sizeof *sliced);
    zl_model_init_params(&m, full, 0, n, 42);
    /* Three uneven shards, as ZeRO-3 over 3 ranks would cut them. */
    size_t cuts[4] = {0, n / 3 + 7, 2 * n / 3 - 5, n};
    for (int r = 0; r < 3; r++) zl_model_init_params(&m, sliced + cuts[r], cuts[r], cuts[r + 1], 42);
    ck_assert(memcmp(full, sliced, n * sizeof *full) == 0);
    /* Statistics of the scheme: LayerNorm weights 1, biases 0, wte std 0.02. */
    const zl_param_info *ln = &m.params[zl_model_find_param(&m, "h.0.ln_1.weight")];
    const zl_param_info *wte = &m.params[zl_model_find_param(&m, "wte.weight")];
    ck_assert(full[ln->offset] == 1.0f && full[ln->offset + ln->numel - 1] == 1.0f);
    double s2 = 0;
    for (size_t i = 0; i < wte->numel; i++) s2 += (double)full[wte->offset + i] * full[wte->offset + i];
    ck_assert_double_eq_tol(sqrt(s2 / wte->numel), 0.02, 0.001);
    /* A different seed gives different weights. */
    zl_model_init_params(&m, sliced, 0, n, 43);
    ck_assert(memcmp(full, sliced, n * sizeof *full) != 0);
    free(full);
    free(sliced);
    zl_model_destroy(&m);
}
END_TEST

/* Loss of the engine's model at its current parameters for one batch. */
/* GPT-2's tie is data: one group, the token embedding owned by "embed" and used by "head",
 * which reads and writes it through the group's parameter slot, not through "layer 0". */
START_TEST(test_model_tie_group)
{
    zl_device dev;
    zl_model m;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    ck_assert_int_eq(zl_model_create(&m, &cfg, &dev), ZL_OK);
    ck_assert_int_eq(m.num_ties, 1);
    const zl_tie_group *g = &m.ties[0];
    ck_assert_str_eq(g->name, "wte");
    ck_assert_int_eq(g->param, zl_model_find_param(&m, "wte.weight"));
    ck_assert(m.layers[g->owner].kind == ZL_LAYER_EMBED);
    ck_assert_int_eq(g->num_members, 1);
    ck_assert(m.layers[g->members[0]].kind == ZL_LAYER_HEAD);
    int head = g->members[0];
    ck_assert_ptr_eq(zl_model_tie_owned_by(&m, g->owner), g);
    ck_assert_ptr_eq(zl_model_tie_used_by(&m, head), g);
    ck_assert_ptr_null(zl_model_tie_used_by(&m, g->owner));
    ck_assert_ptr_null(zl_model_tie_owned_by(&m, head));
    ck_assert_ptr_null(zl_model_tie_used_by(&m, 1)); /* a block */
    ck_assert_int_eq(zl_model_tie_first_backward(g), head);
    zl_model_destroy(&m);
}
END_TEST

/* The head's logits come from whatever the tie's parameter slot points at: with the slot
 * pointed at a scaled copy of wte (and nothing else changed), every logit scales too. */
START_TEST(test_model_head_reads_through_the_tie)
{
    zl_device dev;
    zl_engine *e;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    zl_engine_options o = options(1, 8, 1);
    ck_assert_int_eq(zl_engine_create(&e, &cfg, &o, &dev), ZL_OK);
    int32_t in[8], tg[8];
    random_batch(in, tg, 8, cfg.vocab_size, 7);
    ck_assert_int_eq(zl_engine_forward(e, in, tg, NULL), ZL_OK);
    size_t nlogits = (size_t)8 * cfg.vocab_size;
    float *before = malloc(nlogits * sizeof *before);
    memcpy(before, zl_model_logits(&e->model), nlogits * sizeof *before);
    /* Run only the head again with the slot on 2 x wte. */
    zl_model *m = &e->model;
    const zl_tie_group *g = &m->ties[0];
    size_t n = m->params[g->param].numel;
    float *orig = m->param_ptr[g->param], *twice = malloc(n * sizeof *twice);
    for (size_t i = 0; i < n; i++) twice[i] = 2 * orig[i];
    m->param_ptr[g->param] = twice;
    int head = g->members[0];
    m->layers[head].vt->forward(m, head, zl_model_slot(m)->layers[head - 1].out);
    const float *after = zl_model_logits(m);
    for (size_t i = 0; i < nlogits; i++)
        ck_assert_msg(fabsf(after[i] - 2 * before[i]) <= 1e-5f * (1 + fabsf(before[i])),
                      "logit %zu: %g, twice %g", i, after[i], before[i]);
    m->param_ptr[g->param] = orig;
    free(twice);
    free(before);
    zl_engine_destroy(e);
}
END_TEST

static double loss_at(zl_engine *e, const int32_t *in, const int32_t *tg)
{
    float loss;
    ck_assert_int_eq(zl_engine_forward(e, in, tg, &loss), ZL_OK);
    return loss;
}

START_TEST(test_model_gradients_match_finite_differences)
{
    zl_device dev;
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    zl_engine_options o = options(2, 4, 1);
    ck_assert_int_eq(zl_engine_create(&e, &tiny, &o, &dev), ZL_OK);
    /* Larger weights than GPT-2's init so every path carries signal. */
    float *p = zl_tensor_f32(&e->params);
    for (size_t i = 0; i < e->model.params_numel; i++) p[i] += 0.3f * zl_rng_normal(9, 9, i);
    int32_t in[8], tg[8];
    random_batch(in, tg, 8, tiny.vocab_size, 5);
    tg[3] = -1; /* an ignored position */
    loss_at(e, in, tg);
    zl_engine_backward(e);
    const float *g = zl_tensor_f32(&e->grads);
    /* Central differences in f32 need a large step; compare with a matching tolerance
     * on every parameter tensor (up to 6 elements each). */
    const float h = 1e-2f;
    int checked = 0;
    for (int k = 0; k < e->model.num_params; k++) {
        const zl_param_info *pi = &e->model.params[k];
        for (size_t j = 0; j < pi->numel && j < 6; j++) {
            size_t idx = pi->offset + (j * 7919) % pi->numel;
            float save = p[idx];
            p[idx] = save + h;
            double lp = loss_at(e, in, tg);
            p[idx] = save - h;
            double lm = loss_at(e, in, tg);
            p[idx] = save;
            double fd = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(fd - g[idx]) <= 2e-3 + 2e-2 * fabs(fd),
                          "%s[%zu]: analytic %.6g, finite difference %.6g", pi->name,
                          idx - pi->offset, g[idx], fd);
            checked++;
        }
    }
    ck_assert_int_gt(checked, 50);
    zl_engine_destroy(e);
}
END_TEST

START_TEST(test_model_cpu_matches_ref)
{
    zl_device dref, dcpu;
    zl_engine *er, *ec;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(&dref, ZL_DEVICE_ACCEL, "ref", "ref", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&dcpu, ZL_DEVICE_ACCEL, "cpu", "cpu", 0), ZL_OK);
    zl_engine_options o = options(3, 17, 1);
    ck_assert_int_eq(zl_engine_create(&er, &cfg, &o, &dref), ZL_OK);
    ck_assert_int_eq(zl_engine_create(&ec, &cfg, &o, &dcpu), ZL_OK);
    int32_t in[51], tg[51];
    random_batch(in, tg, 51, cfg.vocab_size, 11);
    for (int step = 0; step < 3; step++) {
        float lr, lc;
        ck_assert_int_eq(zl_engine_forward(er, in, tg, &lr), ZL_OK);
        ck_assert_int_eq(zl_engine_forward(ec, in, tg, &lc), ZL_OK);
        ck_assert_double_eq_tol(lr, lc, 1e-5 * fabs(lr));
        zl_engine_backward(er);
        zl_engine_backward(ec);
        ck_assert(zl_test_close("grads", zl_tensor_f32(&ec->grads), zl_tensor_f32(&er->grads),
                                er->model.params_numel, 1e-3, 1e-6));
        zl_engine_step(er);
        zl_engine_step(ec);
    }
    /* Adam divides by sqrt(v): where a gradient is pure rounding noise (~1e-12, below
     * eps) the two backends' updates differ in sign, by up to lr*|g|/eps per step. Bound
     * the absolute error at 1% of lr; everything else agrees to 1e-4 relative. */
    ck_assert(zl_test_close("params after 3 steps", zl_tensor_f32(&ec->params),
                            zl_tensor_f32(&er->params), er->model.params_numel, 1e-4, 1e-5));
    zl_engine_destroy(er);
    zl_engine_destroy(ec);
}
END_TEST

START_TEST(test_model_ledger_accounts_everything)
{
    zl_device dev;
    zl_engine *e;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "test", 0), ZL_OK);
    zl_engine_options o = options(4, 32, 1);
    ck_assert_int_eq(zl_engine_create(&e, &cfg, &o, &dev), ZL_OK);
    size_t P = e->model.params_numel;
    /* fp32 training: 4 bytes each of param, grad, Adam m and v per parameter (16 P). */
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "param"), 4 * P);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "grad"), 4 * P);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.m"), 4 * P);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.v"), 4 * P);
    size_t act = 0;
    for (int l = 0; l < e->model.num_layers; l++)
        act += 4 * e->model.layers[l].vt->act_numel(&e->model, l, 4, 32);
    ck_assert_uint_gt(zl_ledger_current(&dev.ledger, "act.h.0"), 0);
    ck_assert_uint_eq(zl_ledger_current_prefix(&dev.ledger, "act.h.") +
                          zl_ledger_current(&dev.ledger, "act.embed") +
                          zl_ledger_current(&dev.ledger, "act.head"),
                      act);
    zl_engine_destroy(e);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
}
END_TEST

START_TEST(test_model_engine_out_of_budget_fails_cleanly)
{
    zl_device dev;
    zl_engine *e;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    /* Enough for params and grads (~1 MB) but not for Adam's state. */
    size_t P = zl_gpt_config_num_params(&cfg);
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "rank 0 (tiny card)", 10 * P), ZL_OK);
    zl_engine_options o = options(4, 32, 1);
    e = (zl_engine *)&dev; /* not NULL: create must clear it */
    ck_assert_int_eq(zl_engine_create(&e, &cfg, &o, &dev), ZL_ERR_OOM);
    ck_assert_ptr_null(e);
    zl_engine_destroy(e); /* NULL-safe */
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "rank 0 (tiny card)"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "adam"));
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0); /* everything released */
}
END_TEST

/* DeepSpeed semantics: micro-batch B with 2 accumulation steps computes the same update
 * as micro-batch 2B in one step (the loss of each micro-batch is divided by GAS). */
START_TEST(test_model_gradient_accumulation_equivalence)
{
    zl_device d1, d2;
    zl_engine *a, *b;
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d1, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d2, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
    zl_engine_options oa = options(4, 16, 1), ob = options(2, 16, 2);
    oa.gradient_clipping = ob.gradient_clipping = 0.5; /* clipping sees the accumulated norm */
    ck_assert_int_eq(zl_engine_create(&a, &cfg, &oa, &d1), ZL_OK);
    ck_assert_int_eq(zl_engine_create(&b, &cfg, &ob, &d2), ZL_OK);
    int32_t in[64], tg[64];
    for (int step = 0; step < 3; step++) {
        random_batch(in, tg, 64, cfg.vocab_size, 100 + step);
        ck_assert(zl_engine_is_gradient_accumulation_boundary(a));
        ck_assert_int_eq(zl_engine_forward(a, in, tg, NULL), ZL_OK);
        zl_engine_backward(a);
        zl_engine_step(a);
        for (int micro = 0; micro < 2; micro++) {
            ck_assert(zl_engine_is_gradient_accumulation_boundary(b) == (micro == 1));
            ck_assert_int_eq(zl_engine_forward(b, in + 32 * micro, tg + 32 * micro, NULL), ZL_OK);
            zl_engine_backward(b);
            zl_engine_step(b);
        }
        ck_assert_double_eq_tol(a->grad_norm, b->grad_norm, 1e-5 * a->grad_norm);
    }
    /* through the public accessors (engine/engine.h), as tools read an engine */
    ck_assert_int_eq(zl_engine_global_steps(a), 3);
    ck_assert_int_eq(zl_engine_global_steps(b), 3);
    ck_assert_int_eq(zl_engine_micro_steps(b), 6);
    ck_assert_int_eq(zl_engine_global_samples(a), zl_engine_global_samples(b));
    ck_assert_int_eq(zl_engine_global_samples(a), 3 * 4);
    ck_assert(zl_engine_grad_norm(a) == a->grad_norm && zl_engine_last_lr(b) == b->lr);
    ck_assert(zl_engine_model(a) == &a->model && zl_engine_device(b) == &d2);
    ck_assert_int_eq(zl_engine_get_options(b)->gradient_accumulation_steps, 2);
    ck_assert_int_eq(zl_engine_dtype(a), ZL_F32);
    ck_assert_int_eq(zl_engine_skipped_steps(a), 0);
    ck_assert_double_eq(zl_engine_loss_scale(a), 1.0);
    ck_assert(zl_test_close("params", zl_tensor_f32(&b->params), zl_tensor_f32(&a->params),
                            a->model.params_numel, 1e-4, 1e-6));
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}
END_TEST

/* zero_grad without a pass over memory (model.h: fresh gradients): after a step every
 * gradient is marked dead, the next backward overwrites each one with its first write, and
 * the result is bit for bit that of a backward into zeroed gradients; what no backward
 * wrote is zeroed when read. */
START_TEST(test_model_fresh_gradients_equal_zeroed_ones)
{
    zl_device d1, d2;
    zl_engine *a, *b;
    ck_assert_int_eq(zl_device_init(&d1, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d2, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
    zl_engine_options o = options(2, 8, 1);
    ck_assert_int_eq(zl_engine_create(&a, &tiny, &o, &d1), ZL_OK);
    ck_assert_int_eq(zl_engine_create(&b, &tiny, &o, &d2), ZL_OK);
    int32_t in[2][16], tg[2][16];
    random_batch(in[0], tg[0], 16, tiny.vocab_size, 7);
    random_batch(in[1], tg[1], 16, tiny.vocab_size, 8);
    zl_engine *e[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(zl_engine_forward(e[i], in[0], tg[0], NULL), ZL_OK);
        ck_assert_int_eq(zl_engine_backward(e[i]), ZL_OK);
        ck_assert_int_eq(zl_engine_step(e[i]), ZL_OK);
    }
    size_t n = a->model.params_numel;
    for (int k = 0; k < a->model.num_params; k++) ck_assert(a->model.grad_fresh[k]);
    /* b: the gradients zeroed as before the change (settle zeroes every fresh one) */
    zl_model_settle_grads(&b->model);
    const float *gb = zl_tensor_f32(&b->grads), *ga = zl_tensor_f32(&a->grads);
    for (size_t i = 0; i < n; i++) ck_assert(gb[i] == 0.0f);
    ck_assert(ga[0] != 0.0f); /* a still holds the dead values of step 1 */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(zl_engine_forward(e[i], in[1], tg[1], NULL), ZL_OK);
        ck_assert_int_eq(zl_engine_backward(e[i]), ZL_OK);
    }
    for (int k = 0; k < a->model.num_params; k++) ck_assert(!a->model.grad_fresh[k]);
    ck_assert_int_eq(memcmp(ga, gb, n * sizeof *ga), 0);
    zl_engine_destroy(a);
    zl_engine_destroy(b);
}
END_TEST

/* Without clipping the norm comes from the optimizer's pass (zl_adamw.sumsq); with a
 * clipping threshold no step reaches, from a pass of its own before the step. Same
 * training bit for bit, same norm to rounding, on both backends. */
START_TEST(test_model_norm_from_the_step_pass)
{
    static const char *backends[] = {"ref", "cpu"};
    for (int bi = 0; bi < 2; bi++) {
        zl_device d1, d2;
        zl_engine *a, *b;
        ck_assert_int_eq(zl_device_init(&d1, ZL_DEVICE_ACCEL, backends[bi], "a", 0), ZL_OK);
        ck_assert_int_eq(zl_device_init(&d2, ZL_DEVICE_ACCEL, backends[bi], "b", 0), ZL_OK);
        zl_engine_options oa = options(2, 8, 2), ob = options(2, 8, 2);
        oa.gradient_clipping = 0;
        ob.gradient_clipping = 1e30;
        ck_assert_int_eq(zl_engine_create(&a, &tiny, &oa, &d1), ZL_OK);
        ck_assert_int_eq(zl_engine_create(&b, &tiny, &ob, &d2), ZL_OK);
        int32_t in[16], tg[16];
        for (int k = 0; k < 6; k++) {
            random_batch(in, tg, 16, tiny.vocab_size, 40 + (uint64_t)k);
            zl_engine *e[2] = {a, b};
            for (int i = 0; i < 2; i++) {
                ck_assert_int_eq(zl_engine_forward(e[i], in, tg, NULL), ZL_OK);
                ck_assert_int_eq(zl_engine_backward(e[i]), ZL_OK);
                ck_assert_int_eq(zl_engine_step(e[i]), ZL_OK);
            }
            if (k % 2 == 1) { /* a boundary: both report this step's norm */
                ck_assert(a->grad_norm > 0);
                ck_assert_double_eq_tol(a->grad_norm, b->grad_norm, 1e-6 * b->grad_norm);
            }
        }
        ck_assert_int_eq(memcmp(zl_tensor_f32(&a->params), zl_tensor_f32(&b->params),
                                a->model.params_numel * sizeof(float)), 0);
        zl_engine_destroy(a);
        zl_engine_destroy(b);
    }
}
END_TEST

START_TEST(test_model_config_errors)
{
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("gpt5", &cfg), ZL_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "unknown model 'gpt5'"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "gpt2-124m"));
    zl_gpt_config bad = {"bad", 256, 64, 2, 5, 64};
    ck_assert_int_eq(zl_gpt_config_validate(&bad), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "divisible by num_heads (5)"));
    ck_assert_int_eq(zl_gpt_config_resolve("/nonexistent/model.json", &cfg), ZL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "/nonexistent/model.json"));
}
END_TEST

START_TEST(test_model_json_with_hf_keys)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/zl_model_%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    const char *text = "{\"vocab_size\": 300, \"n_positions\": 32, \"n_layer\": 3, \"n_head\": 2, "
                       "\"n_embd\": 24}";
    fputs(text, f);
    fclose(f);
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_resolve(path, &cfg), ZL_OK);
    ck_assert_int_eq(cfg.vocab_size, 300);
    ck_assert_int_eq(cfg.max_seq_len, 32);
    ck_assert_int_eq(cfg.num_layers, 3);
    ck_assert_int_eq(cfg.channels, 24);

    /* GPT-2's own config.json (model_type gpt2, n_inner null) is read; Llama's and an MLP
     * that is not 4x wide are refused, not misread as GPT-2 */
    static const struct { const char *text; zl_status want; const char *msg; } cases[] = {
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 300, \"n_positions\": 32, \"n_layer\": 3, "
         "\"n_head\": 2, \"n_embd\": 24, \"n_inner\": null}", ZL_OK, NULL},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 300, \"n_positions\": 32, \"n_layer\": 3, "
         "\"n_head\": 2, \"n_embd\": 24, \"n_inner\": 96}", ZL_OK, NULL},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 300, \"n_positions\": 32, \"n_layer\": 3, "
         "\"n_head\": 2, \"n_embd\": 24, \"n_inner\": 64}", ZL_ERR_UNSUPPORTED,
         "n_inner must be null or 4 x n_embd"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 32000, \"hidden_size\": 4096, "
         "\"num_hidden_layers\": 32, \"num_attention_heads\": 32, \"num_key_value_heads\": 8, "
         "\"intermediate_size\": 11008, \"max_position_embeddings\": 4096}", ZL_ERR_UNSUPPORTED,
         "model_type 'llama' is not supported: zerolab builds GPT-2 models only"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(cases[i].text, f);
        fclose(f);
        ck_assert_int_eq(zl_gpt_config_resolve(path, &cfg), cases[i].want);
        if (cases[i].msg) ck_assert_ptr_nonnull(strstr(zl_last_error(), cases[i].msg));
        else ck_assert_int_eq(cfg.channels, 24);
    }
    unlink(path);
}
END_TEST

/* Sizes from user input never wrap: a model whose parameter count passes 2^53 (or 64
 * bits), too many layers for the parameter table, and activations past 64-bit sizes are
 * refused with a message naming the dimension; a tensor too large for 64 bits is an
 * error, not an assertion. */
START_TEST(test_model_sizes_are_checked)
{
    zl_gpt_config wide = {"wide.json", 50257, 1024, 12, 16, 1 << 30};
    ck_assert_int_eq(zl_gpt_config_validate(&wide), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "model 'wide.json'"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "channels 1073741824"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "past the limit of 2^53"));
    ck_assert_uint_eq(zl_gpt_config_num_params(&wide), SIZE_MAX); /* saturated, not wrapped */
    zl_model m;
    ck_assert_int_eq(zl_model_create(&m, &wide, NULL), ZL_ERR_CONFIG);

    zl_gpt_config deep = {"deep", 50257, 1024, 1 << 30, 16, 1024};
    ck_assert_int_eq(zl_gpt_config_validate(&deep), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "num_layers 1073741824"));
    /* just under the limits: accepted, and counted exactly */
    zl_gpt_config big = {"big", 50257, 2048, 96, 96, 12288};
    ck_assert_int_eq(zl_gpt_config_validate(&big), ZL_OK);
    ck_assert_uint_eq(zl_gpt_config_num_params(&big),
                      50257ull * 12288 + 2048ull * 12288 + 96ull * (12ull * 12288 * 12288 + 13 * 12288) + 2 * 12288);

    /* activations: B*T past INT_MAX, and a (B, NH, T, T) attention past 2^64 elements */
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "meta", "test", 0), ZL_OK);
    zl_gpt_config heads = {"heads", 256, 1 << 20, 1, 1 << 16, 1 << 16};
    ck_assert_int_eq(zl_gpt_config_validate(&heads), ZL_OK);
    ck_assert_int_eq(zl_model_create(&m, &heads, &dev), ZL_OK);
    ck_assert_int_eq(zl_model_alloc_activations(&m, 1 << 12, 1 << 20, 1), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "micro-batch 4096 x sequence 1048576"));
    ck_assert_int_eq(zl_model_alloc_activations(&m, 1 << 10, 1 << 20, 1), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "layer h.0's activations"));
    zl_model_destroy(&m);

    zl_tensor t;
    const int64_t shape[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    ck_assert_int_eq(zl_tensor_alloc(&t, &dev, "huge", ZL_F32, 2, shape), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "tensor 'huge' of shape (1099511627776, 1099511627776)"));
    ck_assert_ptr_null(t.data);
    const int64_t bytes[1] = {INT64_C(1) << 62}; /* numel fits, bytes do not */
    ck_assert_int_eq(zl_tensor_alloc(&t, &dev, "huge", ZL_F32, 1, bytes), ZL_ERR_INVALID);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_model_param_table);
    tcase_add_test(tc, test_model_tie_group);
    tcase_add_test(tc, test_model_head_reads_through_the_tie);
    tcase_add_test(tc, test_tie_copies_get_one_reduced_gradient);
    tcase_add_test(tc, test_model_init_independent_of_slicing);
    tcase_add_test(tc, test_model_gradients_match_finite_differences);
    tcase_add_test(tc, test_model_cpu_matches_ref);
    tcase_add_test(tc, test_model_ledger_accounts_everything);
    tcase_add_test(tc, test_model_engine_out_of_budget_fails_cleanly);
    tcase_add_test(tc, test_model_gradient_accumulation_equivalence);
    tcase_add_test(tc, test_model_fresh_gradients_equal_zeroed_ones);
    tcase_add_test(tc, test_model_norm_from_the_step_pass);
    tcase_add_test(tc, test_model_config_errors);
    tcase_add_test(tc, test_model_json_with_hf_keys);
    tcase_add_test(tc, test_model_sizes_are_checked);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(model_suite)
