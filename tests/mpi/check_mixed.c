/* Mixed precision (fp16 with loss scaling, bf16) on one rank and across data-parallel
 * ranks with ZeRO 0-3:
 *   - two ranks with ZeRO 0-3 take the same first step as one rank in the same precision,
 *     bit for bit wherever the arithmetic is the same (see "equivalence" below; how far
 *     200 steps land from fp32 is a benchmark, bench/convergence.c, not a test);
 *   - an overflow on one rank skips the step on every rank, leaves the weights and the LR
 *     schedule alone, and drives the loss scaler as DeepSpeed's does;
 *   - fp16 without loss scaling loses small gradients, with scaling it does not;
 *   - the ledger holds ZeRO's 2 + 2 + 12 bytes per parameter, split per stage, and 2
 *     bytes per saved activation.
 *
 * Run under mpiexec at np = 2 (tests/run-mpi.sh); each rank also runs the single-rank
 * trainings itself, on its own device, so comparisons need no extra communication. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* the gradient shares, to inject an overflow */
#include "model/gpt_config.h"
#include "run/run.h"

static zl_comm *world;

/* The built-in `zerolab train` recipe (src/cli/default_config.c: the 300-step cosine it
 * defines, run here for 200 steps) with a precision block appended by the caller. */
static const char recipe[] =
    "{\"train_micro_batch_size_per_gpu\": %d, \"gradient_accumulation_steps\": %d,"
    " \"gradient_clipping\": 1.0,"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95],"
    "   \"eps\": 1e-8, \"weight_decay\": 0.1}},"
    " \"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": {\"total_num_steps\": 300,"
    "   \"warmup_num_steps\": 30, \"warmup_type\": \"linear\", \"cos_min_ratio\": 0.1}},"
    " \"zero_optimization\": {\"stage\": %d}%s%s}";

/* The recipe's JSON for `precision` ("" for fp32, or a "\"fp16\": {...}" fragment) at a
 * global batch of 16 sequences x gas, on W ranks. */
static void recipe_json(char *json, size_t n, const char *precision, int stage, int gas, int W)
{
    snprintf(json, n, recipe, 16 / W, gas, stage, precision[0] ? ", " : "", precision);
}

/* Options for the recipe on dp (NULL: one rank), for the tests that build an engine
 * themselves. */
static zl_engine_options options(const char *precision, int stage, int gas, zl_comm *dp)
{
    char json[2048];
    int W = dp ? dp->size : 1;
    recipe_json(json, sizeof json, precision, stage, gas, W);
    zl_config cfg;
    zl_status st = zl_config_parse(&cfg, json, "<test>", W);
    ck_assert_msg(st == ZL_OK, "%s", zl_last_error());
    zl_engine_options o;
    zl_engine_options_from_config(&o, &cfg, 64, 1337, dp);
    zl_config_free(&cfg);
    return o;
}

static zl_gpt_config lab(void)
{
    zl_gpt_config m;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &m), ZL_OK);
    return m;
}

/* A run of the lab model on the built-in corpus cut for its data-parallel rank, built as
 * `zerolab train` builds one (run/run.h: 64 tokens, seed 1337, the cpu backend, its own
 * device), from the config `json` on dp (NULL: one rank). The tests step its engine
 * micro-step by micro-step, to look between backward and step. */
typedef struct run {
    zl_run run;
    zl_engine *e;      /* run.engine */
    zl_loader *loader; /* &run.loader */
} run;

static void run_open(run *r, const char *json, zl_comm *dp)
{
    zl_gpt_config m = lab();
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = json;
    o.config_name = "<test>";
    o.model_config = &m;
    o.seq_len = 64;
    o.seed = 1337;
    o.backend = "cpu";
    o.comm = dp;
    ck_assert_msg(zl_run_init(&r->run, &o) == ZL_OK, "%s", zl_last_error());
    r->e = r->run.engine;
    r->loader = &r->run.loader;
}

/* The recipe's run (options() above). */
static void recipe_open(run *r, const char *precision, int stage, int gas, zl_comm *dp)
{
    char json[2048];
    recipe_json(json, sizeof json, precision, stage, gas, dp ? dp->size : 1);
    run_open(r, json, dp);
}

static void run_close(run *r)
{
    zl_run_free(&r->run);
}

/* ---- equivalence ------------------------------------------------------------------- */

/* Two ranks at micro-batch B, one accumulation step, against one rank at micro-batch B
 * and two accumulation steps, in the same precision, over the same global batch (the
 * loader gives rank r the r-th micro-batch of each global batch; the single rank takes
 * them in order), through the first optimizer step. The arithmetic is the same except
 * where stated, so the comparison is bit for bit except there:
 *   - each micro-batch's forward and backward is the same computation on the same data
 *     (one OpenMP thread per rank, the same shapes);
 *   - DeepSpeed divides each micro-batch's loss by the accumulation steps, so the
 *     single rank scales micro-batch k's loss by S1/(2n), the ranks by S2/n. bf16 (S = 1):
 *     a factor 2^-1, exact in binary, and so is every later product and sum of backward
 *     and every 16-bit rounding of it (bf16 has f32's exponent range, far from its
 *     subnormals): the single rank's gradients are exactly half the ranks'. fp16 has
 *     subnormals from 2^-14 on, where halving is not exact, and backward rounds its
 *     activation gradients to fp16: so the single rank runs at twice the ranks' loss scale
 *     (S1 = 2 S2), and its backward computes exactly the ranks' numbers;
 *   - the single rank drains both into its 16-bit store: round(round(g_a) + round(g_b))
 *     (bf16: of the halves); each rank stores round(g_k) and the reduction computes
 *     round(round(g_a) + round(g_b)) and halves it (before the sum at stages 1-3, after
 *     it at stage 0); the optimizer unscales by 1/S1 or 1/S2, powers of 2, exactly.
 *     Halving commutes with rounding wherever the value is a normal number of the 16-bit
 *     type, and a + b == b + a (with more than two ranks the order of the sum could
 *     differ, hence np = 2): the same bits. Exceptions:
 *       (a) fp16 values below 2^-13, which halving takes below 2^-14: the last bit of a
 *           subnormal may be lost, in round(g_a), round(g_b) or their sum (none in bf16);
 *       (b) the tied embedding wte: its gradient has two terms per micro-batch (head and
 *           embedding, each rounded, zero/precision.c), so the single rank sums four
 *           rounded terms in the order ((h_a + e_a) + h_b) + e_b and the ranks in the
 *           order (h_a + e_a) + (h_b + e_b): another association, other rounding;
 *   - the overflow check and Adam then act elementwise on equal inputs (clipping, whose
 *     global norm is summed in another order on two ranks, is off: check_dp covers it).
 * For the exceptions, Adam's first step bounds the difference: with bias correction its
 * m^ and v^ are g and g^2, so a weight moves by lr (g / (|g| + eps) + wd w), less than
 * lr (1 + wd |w|) whatever g is: two such moves differ by at most 2 lr (1 + wd |w|), plus
 * one rounding of the 16-bit weight (2^-8 |w| in bf16, 2^-11 in fp16, relative). Every
 * other weight, 16-bit and fp32 master, must match exactly; and the exceptions must be a
 * minority, so that the exact part carries the test. */
static const char eq_recipe[] =
    "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": %d,"
    " \"gradient_clipping\": 0,"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95],"
    "   \"eps\": 1e-8, \"weight_decay\": 0.1}},"
    " \"zero_optimization\": {\"stage\": %d}, %s}";
#define EQ_LR 3e-3
#define EQ_WD 0.1

/* The equivalence's run for `precision` on dp (NULL: one rank). */
static void eq_open(run *r, const char *precision, int stage, int gas, zl_comm *dp)
{
    char json[2048];
    snprintf(json, sizeof json, eq_recipe, gas, stage, precision);
    run_open(r, json, dp);
    ck_assert_double_eq(r->run.options.gradient_clipping, 0); /* see above */
}

/* One optimizer step over one global batch; returns its mean loss. first and sum (may be
 * NULL): the 16-bit gradient store, widened, after the first micro-batch and just before
 * the boundary (the single rank: stage 0, all of it). */
static float one_step(run *r, float *first, float *sum)
{
    zl_engine *e = r->e;
    const zl_engine_options *o = &e->opt;
    size_t n = (size_t)o->micro_batch_size * o->seq_len;
    int32_t *in = malloc(n * sizeof *in), *tg = malloc(n * sizeof *tg);
    float total = 0; /* two terms at most: the same float sum as the ranks' mean */
    for (int k = 0; k < o->gradient_accumulation_steps; k++) {
        float loss;
        zl_loader_next(r->loader, in, tg);
        ck_assert_int_eq(zl_engine_forward(e, in, tg, &loss), ZL_OK);
        ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
        if (first && k == 0)
            zl_convert(first, ZL_F32, e->grads.data, e->prec.grad_dtype, e->model.params_numel);
        if (sum && k == o->gradient_accumulation_steps - 1)
            zl_convert(sum, ZL_F32, e->grads.data, e->prec.grad_dtype, e->model.params_numel);
        ck_assert_int_eq(zl_engine_step(e), ZL_OK);
        total += loss;
    }
    free(in);
    free(tg);
    return o->dp && o->dp->size > 1 ? zl_engine_dp_mean(e, total) : total / (float)o->gradient_accumulation_steps;
}

/* precision1 for the single rank, precision2 for the ranks (fp16: twice the scale) */
static void equivalent(const char *precision1, const char *precision2, const char *name, int stage)
{
    ck_assert_int_eq(world->size, 2); /* see above: two operands per sum */
    run one, dp;
    eq_open(&one, precision1, 0, 2, NULL);
    eq_open(&dp, precision2, stage, 1, world);
    zl_engine *e1 = one.e, *e2 = dp.e;
    size_t n = e1->model.params_numel;
    float *ga = malloc(n * sizeof *ga), *g1 = malloc(n * sizeof *g1);
    float l1 = one_step(&one, ga, g1), l2 = one_step(&dp, NULL, NULL);
    char label[128];
    snprintf(label, sizeof label, "%s, stage %d, 2 ranks vs 1 rank", name, stage);
    ck_assert_msg(l1 == l2, "%s: loss %.9g vs %.9g", label, l2, l1);
    ck_assert_int_eq(e1->skipped_steps, 0); /* both updated */
    ck_assert_int_eq(e2->skipped_steps, 0);
    bool fp16 = e1->prec.dtype == ZL_F16;
    ck_assert_double_eq(zl_engine_loss_scale(e1), (fp16 ? 2 : 1) * zl_engine_loss_scale(e2));

    /* the exceptions (a) and (b) */
    int iwte = zl_model_find_param(&e1->model, "wte.weight");
    ck_assert_int_ge(iwte, 0);
    const zl_param_info *wte = &e1->model.params[iwte];
    bool *loose = calloc(n, sizeof *loose);
    size_t nloose = 0;
    for (size_t i = 0; i < n; i++) {
        /* (a): round(g_a) is ga, and round(g_b) lies within half an ulp of the sum
         * (2^-11 relative) of g1 - ga */
        float gb = g1[i] - ga[i];
        bool sub = fabsf(ga[i]) < 0x1p-13f || fabsf(g1[i]) < 0x1p-13f ||
                   fabsf(gb) < 0x1p-13f + 0x1p-11f * fabsf(g1[i]);
        loose[i] = (i >= wte->offset && i < wte->offset + wte->numel) || (fp16 && sub);
        nloose += loose[i];
    }
    ck_assert_uint_lt(nloose, n / 2);

    float *w1 = malloc(n * sizeof *w1), *w2 = malloc(n * sizeof *w2);
    ck_assert_int_eq(zl_engine_gather_params(e1, w1), ZL_OK);
    ck_assert_int_eq(zl_engine_gather_params(e2, w2), ZL_OK);
    double rel = fp16 ? 0x1p-11 : 0x1p-8;
    size_t exact = 0, moved = 0;
    for (size_t i = 0; i < n; i++) {
        if (!loose[i]) {
            if (memcmp(&w1[i], &w2[i], sizeof *w1) != 0)
                ck_abort_msg("%s: weight %zu: %.9g vs %.9g (1 rank), where the arithmetic is the same",
                             label, i, w2[i], w1[i]);
            exact++;
            continue;
        }
        double tol = 2 * EQ_LR * (1 + EQ_WD * fabs(w1[i])) + rel * fabs(w1[i]);
        if (fabs((double)w2[i] - w1[i]) > tol)
            ck_abort_msg("%s: weight %zu: %.9g vs %.9g (1 rank), more than %.3g apart", label, i,
                         w2[i], w1[i], tol);
        moved += w1[i] != w2[i];
    }
    /* the fp32 master weights of this rank's partition (stages 0-2: a slice of the flat
     * vector; stage 3's shards are per layer, and its 16-bit weights are compared above) */
    if (stage < 3) {
        const float *m1 = zl_tensor_f32(&e1->master), *m2 = zl_tensor_f32(&e2->master);
        size_t begin = e2->part.begin, end = e2->part.end < n ? e2->part.end : n;
        for (size_t i = begin; i < end; i++)
            if (!loose[i] && memcmp(&m1[i], &m2[i - begin], sizeof *m1) != 0)
                ck_abort_msg("%s: master weight %zu: %.9g vs %.9g (1 rank)", label, i, m2[i - begin], m1[i]);
    }
    if (world->rank == 0)
        printf("  %s: %zu weights bit for bit, %zu bounded (wte%s), %zu of those differ\n", label,
               exact, nloose, fp16 ? ", fp16 subnormal gradients" : "", moved);
    free(loose);
    free(ga);
    free(g1);
    free(w1);
    free(w2);
    run_close(&one);
    run_close(&dp);
}

/* Ten optimizer steps of the same pair of runs: the losses stay together. After the first
 * step the exceptions above (wte, fp16 subnormal gradients) leave their weights apart by
 * at most one Adam move each step (2 lr (1 + wd |w|)) plus a 16-bit rounding, and every
 * later step starts from slightly different weights. The bound is an eighth of the 16-bit
 * type's unit roundoff, relative to the loss (bf16 2^-11, fp16 2^-14): over ten times what
 * those few weights moved it here (3.3e-5 and 3.4e-6 at most over ten steps), and far
 * below what a wrong reduction does (a scale off by 2 or a rank left out moves the loss by
 * percents within a step). How far 200 steps go from fp32 is a benchmark: make
 * bench-convergence. */
static void ten_steps(const char *precision1, const char *precision2, const char *name, int stage)
{
    ck_assert_int_eq(world->size, 2);
    run one, dp;
    eq_open(&one, precision1, 0, 2, NULL);
    eq_open(&dp, precision2, stage, 1, world);
    bool fp16 = one.e->prec.dtype == ZL_F16;
    double rel = (fp16 ? 0x1p-11 : 0x1p-8) / 8, worst = 0;
    for (int step = 1; step <= 10; step++) {
        float l1 = one_step(&one, NULL, NULL), l2 = one_step(&dp, NULL, NULL);
        double d = fabs((double)l2 - l1) / fabs((double)l1);
        if (d > worst) worst = d;
        ck_assert_msg(d <= rel, "%s, stage %d, step %d: loss %.7g (2 ranks) vs %.7g (1 rank), "
                      "%.3g apart relative, more than %.3g", name, stage, step, l2, l1, d, rel);
    }
    ck_assert_int_eq(one.e->skipped_steps, dp.e->skipped_steps);
    if (world->rank == 0)
        printf("  %s, stage %d: 10 steps, losses within %.2g relative (bound %.2g)\n", name, stage,
               worst, rel);
    run_close(&one);
    run_close(&dp);
}

#define FP16 "\"fp16\": {\"enabled\": true}"
#define FP16_LOW "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 8}"
#define BF16 "\"bf16\": {\"enabled\": true}"
/* the equivalence's fp16 scales: low enough that no sum of two ranks' gradients overflows
 * (the test checks that no step was skipped), and the single rank's twice the ranks' */
#define FP16_EQ1 "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 9}"
#define FP16_EQ2 "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 8}"

START_TEST(test_bf16_equivalent_zero0) { equivalent(BF16, BF16, "bf16", 0); }
END_TEST
START_TEST(test_bf16_equivalent_zero1) { equivalent(BF16, BF16, "bf16", 1); }
END_TEST
START_TEST(test_bf16_equivalent_zero2) { equivalent(BF16, BF16, "bf16", 2); }
END_TEST
START_TEST(test_bf16_equivalent_zero3) { equivalent(BF16, BF16, "bf16", 3); }
END_TEST
START_TEST(test_fp16_equivalent_zero0) { equivalent(FP16_EQ1, FP16_EQ2, "fp16", 0); }
END_TEST
START_TEST(test_fp16_equivalent_zero1) { equivalent(FP16_EQ1, FP16_EQ2, "fp16", 1); }
END_TEST
START_TEST(test_fp16_equivalent_zero2) { equivalent(FP16_EQ1, FP16_EQ2, "fp16", 2); }
END_TEST
START_TEST(test_fp16_equivalent_zero3) { equivalent(FP16_EQ1, FP16_EQ2, "fp16", 3); }
END_TEST

START_TEST(test_bf16_ten_steps_zero1) { ten_steps(BF16, BF16, "bf16", 1); }
END_TEST
START_TEST(test_bf16_ten_steps_zero2) { ten_steps(BF16, BF16, "bf16", 2); }
END_TEST
START_TEST(test_bf16_ten_steps_zero3) { ten_steps(BF16, BF16, "bf16", 3); }
END_TEST
START_TEST(test_fp16_ten_steps_zero1) { ten_steps(FP16_EQ1, FP16_EQ2, "fp16", 1); }
END_TEST
START_TEST(test_fp16_ten_steps_zero2) { ten_steps(FP16_EQ1, FP16_EQ2, "fp16", 2); }
END_TEST
START_TEST(test_fp16_ten_steps_zero3) { ten_steps(FP16_EQ1, FP16_EQ2, "fp16", 3); }
END_TEST
/* fp32 communication of bf16 gradients: the reduction widens, adds in f32 and rounds,
 * which is what the single rank's drain does (y + round(x) in f32, rounded) */
START_TEST(test_bf16_fp32_communication_equivalent_zero2)
{
    const char *prec = BF16 ", \"communication_data_type\": \"fp32\"";
    equivalent(prec, prec, "bf16+fp32 communication", 2);
}
END_TEST

/* ---- overflow -------------------------------------------------------------------------- */

/* One micro-batch of the corpus through forward and backward. */
static void forward_backward(zl_engine *e, zl_loader *loader)
{
    size_t n = (size_t)e->opt.micro_batch_size * e->opt.seq_len;
    int32_t *in = malloc(n * sizeof *in), *tg = malloc(n * sizeof *tg);
    float loss;
    zl_loader_next(loader, in, tg);
    ck_assert_int_eq(zl_engine_forward(e, in, tg, &loss), ZL_OK);
    ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
    free(in);
    free(tg);
}

/* Put inf into this rank's share of the gradients, as a blown-up backward would. At
 * stages 0-1 the whole gradient is still unreduced here; the reduction spreads it. */
static void inject_inf(zl_engine *e)
{
    size_t n;
    void *own = zl__engine_own_grads(e, &n);
    float inf = INFINITY;
    zl_convert(zl__at(own, e->prec.grad_dtype, n / 2), e->prec.grad_dtype, &inf, ZL_F32, 1);
}

/* This rank's fp32 master weights (its partition; all of them at stage 0). */
static float *master_copy(const zl_engine *e)
{
    float *p = malloc(e->master.numel * sizeof *p);
    memcpy(p, e->master.data, e->master.numel * sizeof *p);
    return p;
}

static float *gathered(zl_engine *e)
{
    float *p = malloc(e->model.params_numel * sizeof *p);
    ck_assert_int_eq(zl_engine_gather_params(e, p), ZL_OK);
    return p;
}

/* Rank 1 overflows, rank 0 does not: both skip, nothing moves, and the scaler follows
 * DeepSpeed's sequence: the ZeRO optimizers' hysteresis 2 (the first overflow only uses
 * it up, the second halves the scale), FP16_Optimizer's halving at every overflow (stage
 * 0). Then a clean step updates. The initial scale is 2^8 so that only the injected
 * overflows happen (at 2^16 the lab model's first gradients overflow fp16 by themselves,
 * and at stage 0 the allreduce's sum of two ranks' scaled gradients does too). */
static void overflow_on_one_rank(const char *precision, int stage)
{
    run r;
    recipe_open(&r, precision, stage, 1, world);
    zl_engine *e = r.e;
    /* clean steps first, so that Adam is under way and the LR is not 0 (WarmupCosineLR's
     * first two are) */
    for (int k = 0; k < 2; k++) {
        forward_backward(e, r.loader);
        ck_assert_int_eq(zl_engine_step(e), ZL_OK);
        ck_assert(!e->prec.overflow);
    }
    double scale0 = zl_engine_loss_scale(e);
    bool fp16 = e->prec.dtype == ZL_F16;

    for (int k = 1; k <= 2; k++) {
        float *before = gathered(e), *master = master_copy(e);
        double lr = zl_engine_get_lr(e);
        int64_t adam_steps = e->adam.step;
        forward_backward(e, r.loader);
        if (world->rank == 1) inject_inf(e);
        ck_assert_int_eq(zl_engine_step(e), ZL_OK);
        ck_assert_int_eq(e->skipped_steps, k);
        ck_assert(e->prec.overflow);
        ck_assert_int_eq(e->global_steps, 2 + k); /* DeepSpeed counts skipped steps */
        ck_assert_int_eq(e->adam.step, adam_steps);
        ck_assert_double_eq(zl_engine_get_lr(e), lr); /* the schedule did not advance */
        float *after = gathered(e);
        ck_assert(memcmp(before, after, e->model.params_numel * sizeof *before) == 0);
        ck_assert(memcmp(master, e->master.data, e->master.numel * sizeof *master) == 0);
        free(before);
        free(after);
        free(master);
        /* the gradients were zeroed: nothing of the overflow is left */
        size_t n;
        void *own = zl__engine_own_grads(e, &n);
        ck_assert(!zl__vec_nonfinite(e, own, e->prec.grad_dtype, n));
        ck_assert_double_eq(zl__vec_sumsq(e, own, e->prec.grad_dtype, n), 0);
        if (fp16 && stage > 0) /* hysteresis 2, then halving */
            ck_assert_double_eq(zl_engine_loss_scale(e), k == 1 ? scale0 : scale0 / 2);
        else if (fp16)
            ck_assert_double_eq(zl_engine_loss_scale(e), k == 1 ? scale0 / 2 : scale0 / 4);
        else
            ck_assert_double_eq(zl_engine_loss_scale(e), 1.0);
    }
    /* a clean step updates again, with the scale that survived: the fp32 master weights
     * move (a 16-bit weight may not, by a step of lr 3.3e-5) */
    float *master = master_copy(e);
    forward_backward(e, r.loader);
    ck_assert_int_eq(zl_engine_step(e), ZL_OK);
    ck_assert(!e->prec.overflow);
    ck_assert_int_eq(e->skipped_steps, 2);
    size_t moved = 0;
    for (size_t i = 0; i < e->master.numel; i++) moved += master[i] != zl_tensor_f32(&e->master)[i];
    ck_assert_uint_gt(moved, e->master.numel / 2);
    free(master);
    run_close(&r);
}

START_TEST(test_fp16_overflow_one_rank_stage0) { overflow_on_one_rank(FP16_LOW, 0); }
END_TEST
START_TEST(test_fp16_overflow_one_rank_stage1) { overflow_on_one_rank(FP16_LOW, 1); }
END_TEST
START_TEST(test_fp16_overflow_one_rank_stage2) { overflow_on_one_rank(FP16_LOW, 2); }
END_TEST
START_TEST(test_fp16_overflow_one_rank_stage3) { overflow_on_one_rank(FP16_LOW, 3); }
END_TEST
START_TEST(test_bf16_overflow_one_rank_stage2)
{
    overflow_on_one_rank("\"bf16\": {\"enabled\": true, \"check_grad_overflow\": true}", 2);
}
END_TEST

/* The minimum scale: the ZeRO scaler fails the run when it would have to go below it,
 * with DeepSpeed's message, on every rank. */
START_TEST(test_fp16_overflow_at_min_scale_fails)
{
    run r;
    recipe_open(&r, "\"fp16\": {\"enabled\": true, \"initial_scale_power\": 1, "
                                  "\"hysteresis\": 1, \"min_loss_scale\": 1}", 2, 1, world);
    zl_engine *e = r.e;
    ck_assert_double_eq(zl_engine_loss_scale(e), 2.0);
    forward_backward(e, r.loader);
    if (world->rank == 0) inject_inf(e);
    ck_assert_int_eq(zl_engine_step(e), ZL_OK); /* 2 -> 1 */
    ck_assert_double_eq(zl_engine_loss_scale(e), 1.0);
    forward_backward(e, r.loader);
    if (world->rank == 0) inject_inf(e);
    ck_assert_int_eq(zl_engine_step(e), ZL_ERR_TRAINING);
    ck_assert_msg(strstr(zl_last_error(), "Current loss scale already at minimum"), "%s", zl_last_error());
    run_close(&r);
}
END_TEST

/* bf16 without check_grad_overflow steps through an inf gradient (DeepSpeed's behaviour
 * before v0.19.5), and poisons the weights. */
START_TEST(test_bf16_unchecked_overflow_steps)
{
    run r;
    recipe_open(&r, "\"bf16\": {\"enabled\": true, \"check_grad_overflow\": false}", 1, 1, world);
    zl_engine *e = r.e;
    forward_backward(e, r.loader);
    if (world->rank == 1) inject_inf(e);
    ck_assert_int_eq(zl_engine_step(e), ZL_OK);
    ck_assert_int_eq(e->skipped_steps, 0);
    ck_assert(!isfinite(e->grad_norm));
    run_close(&r);
}
END_TEST

/* ---- small gradients ------------------------------------------------------------------ */

/* Gradients that are nonzero in fp32 and exactly zero in the fp16 store after one
 * backward of the same micro-batch, with loss scale `scale` (static). */
static size_t flushed(double scale, int gas, size_t *nonzero)
{
    char fp16[160];
    snprintf(fp16, sizeof fp16, "\"fp16\": {\"enabled\": true, \"loss_scale\": %g}", scale);
    zl_engine_options o32 = options("", 0, gas, NULL), o16 = options(fp16, 0, gas, NULL);
    zl_device d32, d16;
    zl_engine *e32, *e16;
    zl_dataset ds;
    zl_loader l32, l16;
    zl_gpt_config m = lab();
    ck_assert_int_eq(zl_device_init(&d32, ZL_DEVICE_ACCEL, "cpu", "fp32", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d16, ZL_DEVICE_ACCEL, "cpu", "fp16", 0), ZL_OK);
    ck_assert_int_eq(zl_engine_create(&e32, &m, &o32, &d32), ZL_OK);
    ck_assert_int_eq(zl_engine_create(&e16, &m, &o16, &d16), ZL_OK);
    ck_assert_int_eq(zl_dataset_default(&ds), ZL_OK);
    ck_assert_int_eq(zl_loader_init(&l32, &ds, o32.micro_batch_size, o32.seq_len, 0, 1), ZL_OK);
    ck_assert_int_eq(zl_loader_init(&l16, &ds, o16.micro_batch_size, o16.seq_len, 0, 1), ZL_OK);
    forward_backward(e32, &l32);
    forward_backward(e16, &l16);
    size_t n = e32->model.params_numel, lost = 0;
    float *g16 = malloc(n * sizeof *g16);
    zl_convert(g16, ZL_F32, e16->grads.data, ZL_F16, n);
    const float *g32 = zl_tensor_f32(&e32->grads);
    *nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        /* well inside fp16's range once scaled: a zero there is a lost gradient */
        if (fabsf(g32[i]) == 0.0f) continue;
        (*nonzero)++;
        lost += g16[i] == 0.0f;
    }
    free(g16);
    zl_dataset_free(&ds);
    zl_engine_destroy(e32);
    zl_engine_destroy(e16);
    return lost;
}

START_TEST(test_fp16_small_gradients_need_the_scale)
{
    /* DeepSpeed divides each micro-batch's loss by the accumulation steps: at 64 of them
     * (64K tokens per step) the gradient of one micro-batch's tokens sinks below fp16's
     * smallest subnormal, 2^-24, for about a tenth of the weights. */
    size_t nonzero, unscaled = flushed(1.0, 64, &nonzero), scaled = flushed(65536.0, 64, &nonzero);
    if (world->rank == 0)
        printf("  fp16 gradients flushed to zero: %zu of %zu without loss scaling, %zu with 2^16\n",
               unscaled, nonzero, scaled);
    ck_assert_uint_gt(unscaled, nonzero / 20); /* visibly lost: over 5% */
    ck_assert_uint_le(scaled * 1000, unscaled);
}
END_TEST

/* ---- the ledger ------------------------------------------------------------------------- */

/* ZeRO's model states at 16 bits with Adam, per rank (Ψ parameters, N ranks):
 *   stage 0: 2Ψ + 2Ψ + 12Ψ;  1: 2Ψ + 2Ψ + 12Ψ/N;  2: 2Ψ + (2 + 12)Ψ/N;  3: (2 + 2 + 12)Ψ/N
 * with padding: stages 0-2 pad the flat vector to a multiple of 2N, stage 3 each layer to
 * a multiple of N (check_dp's fp32 test spells the sizes out). */
static void ledger_split(int stage, bool distributed, bool grad_fp32)
{
    zl_comm *dp = distributed ? world : NULL;
    int W = dp ? dp->size : 1;
    const char *prec = grad_fp32 ? BF16 ", \"data_types\": {\"grad_accum_dtype\": \"fp32\"}" : BF16;
    zl_engine_options o = options(prec, stage, 1, dp);
    zl_device dev;
    zl_engine *e;
    zl_gpt_config m = lab();
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "ledger", 0), ZL_OK);
    ck_assert_int_eq(zl_engine_create(&e, &m, &o, &dev), ZL_OK);
    size_t psi = e->model.params_numel, align = 2 * (size_t)W;
    size_t whole = (psi + align - 1) / align * align, part = whole / (size_t)W;
    if (stage == 3) {
        size_t shard = 0;
        for (int l = 0; l < e->model.num_layers; l++) {
            size_t b, end;
            zl_model_layer_range(&e->model, l, &b, &end);
            shard += (end - b + (size_t)W - 1) / (size_t)W;
        }
        whole = part = shard;
    }
    size_t param = 2 * whole, grad = (grad_fp32 ? 4 : 2) * (stage >= 2 ? part : whole);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "param"), param);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "grad"), grad);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "master"), 4 * part);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.m"), 4 * part);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.v"), 4 * part);
    if (stage == 0 && !grad_fp32) /* the paper's 16 bytes per parameter */
        ck_assert_uint_eq(param + grad + 12 * part, 16 * whole);
    zl_engine_destroy(e);
}

/* Saved activations take 2 bytes per element in 16 bits, except the f32 statistics
 * (LayerNorm's mean and rstd, the losses), against 4 for all of them in fp32. */
START_TEST(test_activations_stored_in_16_bits)
{
    for (int half = 0; half <= 1; half++) {
        zl_engine_options o = options(half ? BF16 : "", 0, 1, NULL);
        zl_device dev;
        zl_engine *e;
        zl_gpt_config m = lab();
        ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "acts", 0), ZL_OK);
        ck_assert_int_eq(zl_engine_create(&e, &m, &o, &dev), ZL_OK);
        for (int l = 0; l < e->model.num_layers; l++) {
            const zl_layer *layer = &e->model.layers[l];
            size_t total = layer->vt->act_numel(&e->model, l, e->model.B, e->model.T);
            size_t stats = layer->vt->act_stats_numel ? layer->vt->act_stats_numel(&e->model, l, e->model.B, e->model.T) : 0;
            char tag[64];
            snprintf(tag, sizeof tag, "act.%s", layer->name);
            ck_assert_uint_eq(zl_ledger_current(&dev.ledger, tag),
                              half ? 2 * (total - stats) + 4 * stats : 4 * total);
        }
        zl_engine_destroy(e);
    }
}
END_TEST

START_TEST(test_ledger_16bit_stage0) { ledger_split(0, false, false); }
END_TEST
START_TEST(test_ledger_16bit_stage0_fp32_accumulation) { ledger_split(0, false, true); }
END_TEST
START_TEST(test_ledger_16bit_stage1) { ledger_split(1, true, false); }
END_TEST
START_TEST(test_ledger_16bit_stage2) { ledger_split(2, true, false); }
END_TEST
START_TEST(test_ledger_16bit_stage3) { ledger_split(3, true, false); }
END_TEST

static Suite *mixed_suite(void)
{
    Suite *s = suite_create("mixed");
    TCase *tc = tcase_create("mixed");
    tcase_add_test(tc, test_activations_stored_in_16_bits);
    tcase_add_test(tc, test_ledger_16bit_stage0);
    tcase_add_test(tc, test_ledger_16bit_stage0_fp32_accumulation);
    tcase_add_test(tc, test_ledger_16bit_stage1);
    tcase_add_test(tc, test_ledger_16bit_stage2);
    tcase_add_test(tc, test_ledger_16bit_stage3);
    tcase_add_test(tc, test_fp16_overflow_one_rank_stage0);
    tcase_add_test(tc, test_fp16_overflow_one_rank_stage1);
    tcase_add_test(tc, test_fp16_overflow_one_rank_stage2);
    tcase_add_test(tc, test_fp16_overflow_one_rank_stage3);
    tcase_add_test(tc, test_bf16_overflow_one_rank_stage2);
    tcase_add_test(tc, test_fp16_overflow_at_min_scale_fails);
    tcase_add_test(tc, test_bf16_unchecked_overflow_steps);
    tcase_add_test(tc, test_fp16_small_gradients_need_the_scale);
    tcase_add_test(tc, test_bf16_equivalent_zero0);
    tcase_add_test(tc, test_bf16_equivalent_zero1);
    tcase_add_test(tc, test_bf16_equivalent_zero2);
    tcase_add_test(tc, test_bf16_equivalent_zero3);
    tcase_add_test(tc, test_bf16_fp32_communication_equivalent_zero2);
    tcase_add_test(tc, test_fp16_equivalent_zero0);
    tcase_add_test(tc, test_fp16_equivalent_zero1);
    tcase_add_test(tc, test_fp16_equivalent_zero2);
    tcase_add_test(tc, test_fp16_equivalent_zero3);
    tcase_add_test(tc, test_bf16_ten_steps_zero1);
    tcase_add_test(tc, test_bf16_ten_steps_zero2);
    tcase_add_test(tc, test_bf16_ten_steps_zero3);
    tcase_add_test(tc, test_fp16_ten_steps_zero1);
    tcase_add_test(tc, test_fp16_ten_steps_zero2);
    tcase_add_test(tc, test_fp16_ten_steps_zero3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(mixed_suite, &world); }
