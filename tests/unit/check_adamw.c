/* The Adam / AdamW driver: five steps against torch.optim.AdamW and torch.optim.Adam
 * written here in double, the weight-decay mask, grad_scale, bias correction off,
 * per-step beta1 (OneCycle) and beta2, the ledger, resuming from saved state, and
 * stepping shards. Runs on every backend whose op table has an adamw kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "core/device.h"
#include "optim/adamw.h"

#define NUMEL 1000
#define NSTEPS 5

/* The GPT-2 pattern in miniature: weights decay, biases and LayerNorm do not; the last
 * 10 elements belong to no range and must not move. */
static const zl_param_range test_ranges[] = {
    {.offset = 0, .numel = 300, .decay = true},
    {.offset = 300, .numel = 50, .decay = false},
    {.offset = 350, .numel = 400, .decay = true},
    {.offset = 750, .numel = 240, .decay = false},
};
#define NRANGES 4
#define COVERED 990

/* Per-step settings, varied so that a driver using the wrong step's value is caught. */
static const double step_lr[NSTEPS] = {1e-2, 2e-2, 5e-3, 1.5e-2, 8e-3};
static const double step_beta1[NSTEPS] = {0.9, 0.85, 0.8, 0.85, 0.9};
/* 1/loss_scale times a clipping coefficient. */
static const float step_grad_scale[NSTEPS] = {0.7f / 1024, 1.0f / 1024, 0.25f / 1024,
                                              1.0f / 2048, 0.9f / 512};

static const char *const backends[] = {"ref", "cpu"};
#define NBACKENDS 2

/* True if `name` is built and has an adamw kernel (the cpu one may come later). */
static bool backend_ready(const char *name)
{
    const zl_ops *ops = zl_ops_find(name);
    return ops && ops->adamw;
}

/* ---- the reference: torch.optim.AdamW / torch.optim.Adam, in double ------------------- */

typedef struct ref_state {
    double p[NUMEL], m[NUMEL], v[NUMEL];
} ref_state;

/* One torch step at step count t. grad is the raw (loss-scaled) gradient. The
 * hyperparameters are rounded to fp32 first, because that is what the kernel receives
 * (as FusedAdam's does); all arithmetic after that is double. */
static void ref_step(ref_state *s, const float *grad, double grad_scale, double lr, double b1,
                     double b2, double eps, double wd_all, bool adamw, bool bias_correction,
                     int t)
{
    lr = (float)lr, b1 = (float)b1, b2 = (float)b2, eps = (float)eps, wd_all = (float)wd_all;
    double bc1 = bias_correction ? 1 - pow(b1, t) : 1;
    double bc2 = bias_correction ? 1 - pow(b2, t) : 1;
    for (int r = 0; r < NRANGES; r++) {
        double wd = test_ranges[r].decay ? wd_all : 0;
        for (size_t i = test_ranges[r].offset; i < test_ranges[r].offset + test_ranges[r].numel;
             i++) {
            double g = grad[i] * grad_scale;
            if (adamw)
                s->p[i] *= 1 - lr * wd; /* torch.optim.AdamW: decoupled, before the update */
            else
                g += wd * s->p[i]; /* torch.optim.Adam(weight_decay): L2 in the gradient */
            s->m[i] = b1 * s->m[i] + (1 - b1) * g;
            s->v[i] = b2 * s->v[i] + (1 - b2) * g * g;
            double denom = sqrt(s->v[i]) / sqrt(bc2) + eps;
            s->p[i] -= (lr / bc1) * s->m[i] / denom;
        }
    }
}

static void to_float(float *out, const double *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)in[i];
}

typedef struct adam_case {
    bool adamw;
    bool bias_correction;
    double eps;
    double weight_decay;
    int beta2_change_step; /* from this step on (1-based), beta2 = 0.99; 0 = never */
} adam_case;

/* Five steps on `backend`, compared with the reference after every step. */
static void run_case(const char *backend, const adam_case *c, uint64_t seed)
{
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, backend, "test", 0), ZL_OK);
    zl_optimizer_params p;
    zl_optimizer_params_default(&p, c->adamw ? ZL_OPTIMIZER_ADAMW : ZL_OPTIMIZER_ADAM);
    p.adam_w_mode = c->adamw;
    p.bias_correction = c->bias_correction;
    p.eps = c->eps;
    p.weight_decay = c->weight_decay;
    zl_adamw opt;
    ck_assert_int_eq(zl_adamw_init(&opt, &dev, NUMEL, &p), ZL_OK);

    float *params, *grads;
    ck_assert_int_eq(zl_device_alloc(&dev, "param", NUMEL * 4, (void **)&params), ZL_OK);
    ck_assert_int_eq(zl_device_alloc(&dev, "grad", NUMEL * 4, (void **)&grads), ZL_OK);
    zl_test_fill_uniform(params, NUMEL, seed, -1.0f, 1.0f);

    ref_state *ref = calloc(1, sizeof *ref);
    for (int i = 0; i < NUMEL; i++) ref->p[i] = params[i];
    float *want = malloc(NUMEL * sizeof(float));
    float *start = malloc(NUMEL * sizeof(float));
    memcpy(start, params, NUMEL * sizeof(float));

    char label[96];
    double beta2 = p.beta2;
    for (int k = 0; k < NSTEPS; k++) {
        /* Gradients as a loss-scaled backward leaves them: about 1000x too large. */
        zl_test_fill_uniform(grads, NUMEL, seed * 31 + (uint64_t)k + 1, -1000.0f, 1000.0f);
        if (c->beta2_change_step && k + 1 >= c->beta2_change_step) beta2 = opt.p.beta2 = 0.99;
        zl_adamw_step(&opt, params, grads, test_ranges, NRANGES, step_lr[k], step_beta1[k],
                      step_grad_scale[k]);
        ref_step(ref, grads, step_grad_scale[k], step_lr[k], step_beta1[k], beta2, c->eps,
                 c->weight_decay, c->adamw, c->bias_correction, k + 1);
        ck_assert_int_eq(zl_adamw_step_count(&opt), k + 1);

        snprintf(label, sizeof label, "%s params after step %d", backend, k + 1);
        to_float(want, ref->p, NUMEL);
        ck_assert(zl_test_close(label, params, want, NUMEL, 1e-5, 1e-6));
        snprintf(label, sizeof label, "%s exp_avg after step %d", backend, k + 1);
        to_float(want, ref->m, NUMEL);
        /* atol: with L2 decay, m sums terms of size wd*|p| ~ 0.05 that nearly cancel, so
         * its absolute error is a few fp32 ulps of those terms, not of m itself. */
        ck_assert(zl_test_close(label, zl_adamw_exp_avg(&opt), want, NUMEL, 1e-5, 1e-7));
        snprintf(label, sizeof label, "%s exp_avg_sq after step %d", backend, k + 1);
        to_float(want, ref->v, NUMEL);
        ck_assert(zl_test_close(label, zl_adamw_exp_avg_sq(&opt), want, NUMEL, 1e-5, 1e-12));
    }
    /* Elements outside every range: untouched, state included. */
    for (int i = COVERED; i < NUMEL; i++) {
        ck_assert(params[i] == start[i]);
        ck_assert(zl_adamw_exp_avg(&opt)[i] == 0.0f && zl_adamw_exp_avg_sq(&opt)[i] == 0.0f);
    }
    free(start);
    free(want);
    free(ref);
    zl_device_free(&dev, "param", params, NUMEL * 4);
    zl_device_free(&dev, "grad", grads, NUMEL * 4);
    zl_adamw_destroy(&opt);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
}

static int for_each_backend(const adam_case *c, uint64_t seed)
{
    int ran = 0;
    for (int b = 0; b < NBACKENDS; b++) {
        if (!backend_ready(backends[b])) continue;
        run_case(backends[b], c, seed);
        ran++;
    }
    return ran;
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_adamw_defaults_are_fused_adams)
{
    zl_optimizer_params p;
    zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAM);
    ck_assert_int_eq(p.type, ZL_OPTIMIZER_ADAM);
    ck_assert(p.lr == 1e-3 && p.beta1 == 0.9 && p.beta2 == 0.999 && p.eps == 1e-8);
    ck_assert(p.weight_decay == 0.0);
    ck_assert(p.bias_correction);
    ck_assert(p.adam_w_mode); /* "Adam" means AdamW unless the config says otherwise */
    zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAMW);
    ck_assert_int_eq(p.type, ZL_OPTIMIZER_ADAMW);
    ck_assert(p.adam_w_mode && p.lr == 1e-3);
}
END_TEST

START_TEST(test_adamw_matches_torch_adamw)
{
    adam_case c = {.adamw = true, .bias_correction = true, .eps = 1e-8, .weight_decay = 0.1};
    ck_assert_int_ge(for_each_backend(&c, 11), 1);
}
END_TEST

START_TEST(test_adamw_grad_scale_and_eps)
{
    /* With eps = 1e-8 Adam is blind to the gradient's scale, so a driver that dropped
     * grad_scale would pass the test above. eps = 1e-3, comparable to the unscaled
     * gradients' size (|g| ~ 1e-3), makes the scale visible. */
    adam_case c = {.adamw = true, .bias_correction = true, .eps = 1e-3, .weight_decay = 0.05};
    ck_assert_int_ge(for_each_backend(&c, 12), 1);
}
END_TEST

START_TEST(test_adamw_matches_torch_adam_with_l2)
{
    adam_case c = {.adamw = false, .bias_correction = true, .eps = 1e-8, .weight_decay = 0.1};
    ck_assert_int_ge(for_each_backend(&c, 13), 1);
}
END_TEST

START_TEST(test_adamw_without_bias_correction)
{
    adam_case c = {.adamw = true, .bias_correction = false, .eps = 1e-8, .weight_decay = 0.1};
    ck_assert_int_ge(for_each_backend(&c, 14), 1);
    c.adamw = false;
    ck_assert_int_ge(for_each_backend(&c, 15), 1);
}
END_TEST

START_TEST(test_adamw_beta2_read_each_step)
{
    /* OneCycle pins beta2 to 0.99 by writing opt.p.beta2; the bias correction follows. */
    adam_case c = {.adamw = true, .bias_correction = true, .eps = 1e-8, .weight_decay = 0.1,
                   .beta2_change_step = 3};
    ck_assert_int_ge(for_each_backend(&c, 16), 1);
}
END_TEST

START_TEST(test_adamw_ledger_holds_two_moments)
{
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    zl_optimizer_params p;
    zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAMW);
    zl_adamw opt;
    ck_assert_int_eq(zl_adamw_init(&opt, &dev, NUMEL, &p), ZL_OK);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.m"), 4 * NUMEL);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.v"), 4 * NUMEL);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 8 * NUMEL);
    ck_assert_int_eq(zl_adamw_step_count(&opt), 0);
    for (int i = 0; i < NUMEL; i++)
        ck_assert(zl_adamw_exp_avg(&opt)[i] == 0.0f && zl_adamw_exp_avg_sq(&opt)[i] == 0.0f);
    zl_adamw_destroy(&opt);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.m"), 0);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.v"), 0);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
    ck_assert_uint_eq(dev.ledger.peak_nbytes, 8 * NUMEL);
    zl_adamw_destroy(&opt); /* twice is harmless */

    /* An empty shard is legal: nothing allocated, nothing to step. */
    ck_assert_int_eq(zl_adamw_init(&opt, &dev, 0, &p), ZL_OK);
    zl_adamw_step(&opt, NULL, NULL, NULL, 0, 1e-3, 0.9, 1.0f);
    ck_assert_int_eq(zl_adamw_step_count(&opt), 1);
    zl_adamw_destroy(&opt);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
}
END_TEST

START_TEST(test_adamw_oom_leaves_nothing)
{
    /* Budget for m but not for v: the failure names adam.v and m is released again. */
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "rank 0 (tiny)", 6 * NUMEL),
                     ZL_OK);
    zl_optimizer_params p;
    zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAMW);
    zl_adamw opt;
    ck_assert_int_eq(zl_adamw_init(&opt, &dev, NUMEL, &p), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "adam.v"));
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
    zl_adamw_destroy(&opt); /* safe after a failed init */
}
END_TEST

START_TEST(test_adamw_resume_from_state)
{
    /* Run 5 steps in one go, and 2 + 3 with the state (step count, m, v, params) carried
     * over to a fresh optimizer as a checkpoint would: the same bits. */
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    zl_optimizer_params p;
    zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAMW);
    p.weight_decay = 0.1;
    zl_adamw a, b;
    ck_assert_int_eq(zl_adamw_init(&a, &dev, NUMEL, &p), ZL_OK);
    float *pa = malloc(NUMEL * 4), *pb = malloc(NUMEL * 4), *g = malloc(NUMEL * 4);
    zl_test_fill_uniform(pa, NUMEL, 21, -1.0f, 1.0f);
    for (int k = 0; k < NSTEPS; k++) {
        if (k == 2) { /* checkpoint after two steps, restore into b */
            ck_assert_int_eq(zl_adamw_init(&b, &dev, NUMEL, &p), ZL_OK);
            zl_adamw_set_step_count(&b, zl_adamw_step_count(&a));
            memcpy(zl_adamw_exp_avg(&b), zl_adamw_exp_avg(&a), NUMEL * 4);
            memcpy(zl_adamw_exp_avg_sq(&b), zl_adamw_exp_avg_sq(&a), NUMEL * 4);
            memcpy(pb, pa, NUMEL * 4);
        }
        zl_test_fill_uniform(g, NUMEL, 100 + (uint64_t)k, -1.0f, 1.0f);
        zl_adamw_step(&a, pa, g, test_ranges, NRANGES, step_lr[k], step_beta1[k], 1.0f);
        if (k >= 2) zl_adamw_step(&b, pb, g, test_ranges, NRANGES, step_lr[k], step_beta1[k], 1.0f);
    }
    ck_assert_int_eq(zl_adamw_step_count(&b), NSTEPS);
    ck_assert_mem_eq(pa, pb, NUMEL * 4);
    ck_assert_mem_eq(zl_adamw_exp_avg(&a), zl_adamw_exp_avg(&b), NUMEL * 4);
    /* Resuming with step count 0 instead would redo the large first-step bias
     * correction: the values would differ. */
    zl_adamw_set_step_count(&b, 0);
    memcpy(pb, pa, NUMEL * 4);
    zl_adamw_step(&a, pa, g, test_ranges, NRANGES, 1e-2, 0.9, 1.0f);
    zl_adamw_step(&b, pb, g, test_ranges, NRANGES, 1e-2, 0.9, 1.0f);
    ck_assert(memcmp(pa, pb, NUMEL * 4) != 0);
    free(pa);
    free(pb);
    free(g);
    zl_adamw_destroy(&a);
    zl_adamw_destroy(&b);
}
END_TEST

START_TEST(test_adamw_split_ranges_same_result)
{
    /* The same coverage described by more, smaller ranges (as a model's parameter table
     * gives them, with an empty one in between), and ranges with a gap between them: the
     * driver may merge contiguous ranges of one flag, but never across a gap or a flag. */
    static const zl_param_range split[] = {
        {0, 120, true},  {120, 180, true}, {300, 50, false}, {350, 0, true},
        {350, 200, true}, {550, 200, true}, {750, 100, false}, {850, 140, false},
    };
    static const zl_param_range gapped[] = {{0, 100, true}, {150, 150, true}, {300, 50, false}};
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "test", 0), ZL_OK);
    zl_optimizer_params p;
    zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAMW);
    p.weight_decay = 0.1;
    zl_adamw a, b, c;
    ck_assert_int_eq(zl_adamw_init(&a, &dev, NUMEL, &p), ZL_OK);
    ck_assert_int_eq(zl_adamw_init(&b, &dev, NUMEL, &p), ZL_OK);
    ck_assert_int_eq(zl_adamw_init(&c, &dev, NUMEL, &p), ZL_OK);
    float *pa = malloc(NUMEL * 4), *pb = malloc(NUMEL * 4), *pc = malloc(NUMEL * 4);
    float *g = malloc(NUMEL * 4);
    zl_test_fill_uniform(pa, NUMEL, 41, -1.0f, 1.0f);
    memcpy(pb, pa, NUMEL * 4);
    memcpy(pc, pa, NUMEL * 4);
    for (int k = 0; k < NSTEPS; k++) {
        zl_test_fill_uniform(g, NUMEL, 300 + (uint64_t)k, -1.0f, 1.0f);
        zl_adamw_step(&a, pa, g, test_ranges, NRANGES, step_lr[k], step_beta1[k], 1.0f);
        zl_adamw_step(&b, pb, g, split, 8, step_lr[k], step_beta1[k], 1.0f);
        zl_adamw_step(&c, pc, g, gapped, 3, step_lr[k], step_beta1[k], 1.0f);
    }
    ck_assert_mem_eq(pa, pb, NUMEL * 4);
    ck_assert_mem_eq(zl_adamw_exp_avg_sq(&a), zl_adamw_exp_avg_sq(&b), NUMEL * 4);
    /* gapped: [0,100) and [150,350) stepped exactly as in a (same flags there), the gap
     * [100,150) and everything from 350 on untouched. */
    ck_assert_mem_eq(pc, pa, 100 * 4);
    ck_assert_mem_eq(pc + 150, pa + 150, 200 * 4);
    zl_test_fill_uniform(pb, NUMEL, 41, -1.0f, 1.0f); /* the starting values again */
    ck_assert_mem_eq(pc + 100, pb + 100, 50 * 4);
    ck_assert_mem_eq(pc + 350, pb + 350, (NUMEL - 350) * 4);
    for (int i = 100; i < 150; i++) ck_assert(zl_adamw_exp_avg(&c)[i] == 0.0f);
    free(pa);
    free(pb);
    free(pc);
    free(g);
    zl_adamw_destroy(&a);
    zl_adamw_destroy(&b);
    zl_adamw_destroy(&c);
}
END_TEST

/* Mixed precision's step, fused: 16-bit gradients read by the kernel and the stepped
 * master rounded into the 16-bit parameters in the same pass give, bit for bit, what the
 * three passes it replaced gave (widen the gradients with zl_convert, the f32 step, round
 * the master with zl_convert), on every backend; parameters outside every range are not
 * written. */
START_TEST(test_adamw_lp_fused_equals_widen_step_round)
{
    static const zl_dtype types[] = {ZL_F16, ZL_BF16};
    for (int b = 0; b < NBACKENDS; b++) {
        if (!backend_ready(backends[b])) continue;
        zl_device dev;
        ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, backends[b], "test", 0), ZL_OK);
        for (int gi = 0; gi < 2; gi++)
            for (int pi = 0; pi < 2; pi++)
                for (int mode = 0; mode < 2; mode++) {
                    zl_dtype gt = types[gi], pt = types[pi];
                    zl_optimizer_params p;
                    zl_optimizer_params_default(&p, mode ? ZL_OPTIMIZER_ADAMW : ZL_OPTIMIZER_ADAM);
                    p.adam_w_mode = mode;
                    p.weight_decay = 0.1;
                    zl_adamw fused, split;
                    ck_assert_int_eq(zl_adamw_init(&fused, &dev, NUMEL, &p), ZL_OK);
                    ck_assert_int_eq(zl_adamw_init(&split, &dev, NUMEL, &p), ZL_OK);
                    float *mf = malloc(NUMEL * 4), *ms = malloc(NUMEL * 4), *g = malloc(NUMEL * 4);
                    uint16_t *g16 = malloc(NUMEL * 2), *pf = malloc(NUMEL * 2), *ps = malloc(NUMEL * 2);
                    zl_test_fill_uniform(mf, NUMEL, 77, -1.0f, 1.0f);
                    memcpy(ms, mf, NUMEL * 4);
                    memset(pf, 0x5a, NUMEL * 2);
                    memset(ps, 0x5a, NUMEL * 2);
                    for (int k = 0; k < NSTEPS; k++) {
                        zl_test_fill_uniform(g, NUMEL, 400 + (uint64_t)k, -1000.0f, 1000.0f);
                        zl_convert(g16, gt, g, ZL_F32, NUMEL);
                        zl_adamw_step_lp(&fused, mf, g16, gt, pf, pt, test_ranges, NRANGES,
                                         step_lr[k], step_beta1[k], step_grad_scale[k]);
                        zl_convert(g, ZL_F32, g16, gt, NUMEL); /* the old widening pass */
                        zl_adamw_step(&split, ms, g, test_ranges, NRANGES, step_lr[k],
                                      step_beta1[k], step_grad_scale[k]);
                        zl_convert(ps, pt, ms, ZL_F32, COVERED); /* the old rounding pass */
                        ck_assert_msg(!memcmp(mf, ms, NUMEL * 4), "%s %s/%s mode %d: master, step %d",
                                      backends[b], zl_dtype_name(gt), zl_dtype_name(pt), mode, k + 1);
                        ck_assert_msg(!memcmp(pf, ps, NUMEL * 2), "%s %s/%s mode %d: params, step %d",
                                      backends[b], zl_dtype_name(gt), zl_dtype_name(pt), mode, k + 1);
                        ck_assert(!memcmp(zl_adamw_exp_avg_sq(&fused), zl_adamw_exp_avg_sq(&split),
                                          NUMEL * 4));
                    }
                    for (int i = COVERED; i < NUMEL; i++) ck_assert_uint_eq(pf[i], 0x5a5a);
                    free(mf), free(ms), free(g), free(g16), free(pf), free(ps);
                    zl_adamw_destroy(&fused);
                    zl_adamw_destroy(&split);
                }
    }
}
END_TEST

START_TEST(test_adamw_ranges_clip_to_shard)
{
    /* test_ranges cut by the shard [320, 800): the bias range [300,350) contributes
     * [320,350) -> (0, 30), the weight [350,750) -> (30, 400), [750,990) -> (430, 50). */
    zl_param_range out[NRANGES];
    int n = zl_param_ranges_clip(out, test_ranges, NRANGES, 320, 800);
    ck_assert_int_eq(n, 3);
    ck_assert(out[0].offset == 0 && out[0].numel == 30 && !out[0].decay);
    ck_assert(out[1].offset == 30 && out[1].numel == 400 && out[1].decay);
    ck_assert(out[2].offset == 430 && out[2].numel == 50 && !out[2].decay);
    /* A shard past every range, and an empty one. */
    ck_assert_int_eq(zl_param_ranges_clip(out, test_ranges, NRANGES, 990, 1000), 0);
    ck_assert_int_eq(zl_param_ranges_clip(out, test_ranges, NRANGES, 100, 100), 0);
}
END_TEST

START_TEST(test_adamw_shards_reproduce_full_step)
{
    /* What ZeRO does: each rank steps only its partition. Three shards with boundaries
     * inside ranges give exactly the bits of one optimizer over the whole buffer. */
    const size_t cut[4] = {0, 320, 800, NUMEL};
    for (int bk = 0; bk < NBACKENDS; bk++) {
        if (!backend_ready(backends[bk])) continue;
        zl_device dev;
        ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, backends[bk], "test", 0), ZL_OK);
        zl_optimizer_params p;
        zl_optimizer_params_default(&p, ZL_OPTIMIZER_ADAMW);
        p.weight_decay = 0.1;
        zl_adamw full, shard[3];
        zl_param_range sr[3][NRANGES];
        int nsr[3];
        ck_assert_int_eq(zl_adamw_init(&full, &dev, NUMEL, &p), ZL_OK);
        for (int s = 0; s < 3; s++) {
            ck_assert_int_eq(zl_adamw_init(&shard[s], &dev, cut[s + 1] - cut[s], &p), ZL_OK);
            nsr[s] = zl_param_ranges_clip(sr[s], test_ranges, NRANGES, cut[s], cut[s + 1]);
        }
        ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.m"), 2 * 4 * NUMEL);
        float *pf = malloc(NUMEL * 4), *ps = malloc(NUMEL * 4), *g = malloc(NUMEL * 4);
        zl_test_fill_uniform(pf, NUMEL, 31, -1.0f, 1.0f);
        memcpy(ps, pf, NUMEL * 4);
        for (int k = 0; k < NSTEPS; k++) {
            zl_test_fill_uniform(g, NUMEL, 200 + (uint64_t)k, -1.0f, 1.0f);
            zl_adamw_step(&full, pf, g, test_ranges, NRANGES, step_lr[k], step_beta1[k], 0.5f);
            for (int s = 0; s < 3; s++)
                zl_adamw_step(&shard[s], ps + cut[s], g + cut[s], sr[s], nsr[s], step_lr[k],
                              step_beta1[k], 0.5f);
        }
        ck_assert_mem_eq(pf, ps, NUMEL * 4);
        for (int s = 0; s < 3; s++) {
            ck_assert_mem_eq(zl_adamw_exp_avg(&full) + cut[s], zl_adamw_exp_avg(&shard[s]),
                             (cut[s + 1] - cut[s]) * 4);
            ck_assert_mem_eq(zl_adamw_exp_avg_sq(&full) + cut[s], zl_adamw_exp_avg_sq(&shard[s]),
                             (cut[s + 1] - cut[s]) * 4);
            zl_adamw_destroy(&shard[s]);
        }
        zl_adamw_destroy(&full);
        ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
        free(pf);
        free(ps);
        free(g);
    }
}
END_TEST

static Suite *adamw_suite(void)
{
    Suite *s = suite_create("adamw");
    TCase *tc = tcase_create("adamw");
    tcase_add_test(tc, test_adamw_defaults_are_fused_adams);
    tcase_add_test(tc, test_adamw_matches_torch_adamw);
    tcase_add_test(tc, test_adamw_grad_scale_and_eps);
    tcase_add_test(tc, test_adamw_matches_torch_adam_with_l2);
    tcase_add_test(tc, test_adamw_without_bias_correction);
    tcase_add_test(tc, test_adamw_beta2_read_each_step);
    tcase_add_test(tc, test_adamw_ledger_holds_two_moments);
    tcase_add_test(tc, test_adamw_oom_leaves_nothing);
    tcase_add_test(tc, test_adamw_resume_from_state);
    tcase_add_test(tc, test_adamw_split_ranges_same_result);
    tcase_add_test(tc, test_adamw_lp_fused_equals_widen_step_round);
    tcase_add_test(tc, test_adamw_ranges_clip_to_shard);
    tcase_add_test(tc, test_adamw_shards_reproduce_full_step);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(adamw_suite)
