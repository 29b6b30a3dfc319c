/* DeepSpeed's LR schedules: values at the steps where the formulas change branch, the
 * initial lr, OneCycle momentum and stairs, LRRangeTest staircase, and validation.
 *
 * Expected values come from two places: closed forms written here from the published
 * formulas (deepspeed-behaviour.md 1.3), and numbers worked out by hand (with their
 * derivation next to them). The schedule is always driven through zl_lr_schedule_step,
 * so the step convention (t = -1 before the first step) is part of what is tested. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "optim/lr_schedule.h"

#define MAX_T 200

/* lr[t + 1] and mom[t + 1] for t = -1 .. max_t, by stepping the schedule. */
static void run(const zl_lr_schedule_params *p, double base_lr, double base_beta1, int max_t,
                double *lr, double *mom)
{
    zl_lr_schedule s;
    ck_assert_int_eq(zl_lr_schedule_init(&s, p, base_lr, base_beta1), ZL_OK);
    ck_assert_int_eq(s.last_batch_iteration, -1);
    lr[0] = s.lr;
    if (mom) mom[0] = s.momentum;
    for (int t = 0; t <= max_t; t++) {
        double r = zl_lr_schedule_step(&s);
        ck_assert(r == s.lr);
        ck_assert_int_eq(s.last_batch_iteration, t);
        lr[t + 1] = r;
        if (mom) mom[t + 1] = s.momentum;
    }
}

static void expect_near(const char *what, int t, double got, double want)
{
    double tol = 1e-12 * fmax(1.0, fabs(want));
    ck_assert_msg(fabs(got - want) <= tol, "%s at t=%d: got %.17g want %.17g", what, t, got, want);
}

/* The steps every schedule is checked at: 0, 1, 2, N-1, N, N+1, T, T+10. */
static int probe_steps(int n, int total, int *out)
{
    int steps[] = {0, 1, 2, n - 1, n, n + 1, total, total + 10};
    memcpy(out, steps, sizeof steps);
    return (int)(sizeof steps / sizeof steps[0]);
}

/* ---- independent closed forms --------------------------------------------------------- */

/* Warmup fraction for 0 <= t < N, N already clamped to >= 2. log_N(t+1) via log2. */
static double want_gamma(int t, int n, bool linear)
{
    return linear ? (double)t / n : log2(t + 1.0) / log2((double)n);
}

static double want_warmup_lr(int t, double lo, double hi, int n, bool linear)
{
    if (t < 0) return lo;
    return t >= n ? hi : lo + (hi - lo) * want_gamma(t, n, linear);
}

static double want_decay_lr(int t, double lo, double hi, int n, int total, bool linear)
{
    if (t < 0) return lo;
    if (t < n) return lo + (hi - lo) * want_gamma(t, n, linear);
    int span = total - n > 1 ? total - n : 1;
    double g = (double)(total - t) / span;
    return lo + (hi - lo) * (g > 0 ? g : 0);
}

static double want_cosine_lr(int t, double base, double wmin, double cmin, int n, int total,
                             bool linear)
{
    if (t < 0) return 0.0;
    if (t < n) return base * (wmin + (1 - wmin) * want_gamma(t, n, linear));
    int span = total - n > 1 ? total - n : 1;
    double progress = (double)(t - n + 1) / span;
    if (progress > 1) progress = 1;
    /* (1 + cos(pi p)) / 2 = cos^2(pi p / 2) */
    double c = cos(acos(-1.0) * progress / 2);
    double r = cmin + (1 - cmin) * c * c;
    return base * (r > 0 ? r : 0);
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_lr_schedule_names_round_trip)
{
    const char *names[] = {"WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "LRRangeTest"};
    zl_lr_schedule_type types[] = {ZL_LR_WARMUP, ZL_LR_WARMUP_DECAY, ZL_LR_WARMUP_COSINE,
                                   ZL_LR_ONE_CYCLE, ZL_LR_RANGE_TEST};
    for (int i = 0; i < 5; i++) {
        zl_lr_schedule_type t = ZL_LR_CONSTANT;
        ck_assert_int_eq(zl_lr_schedule_parse(names[i], &t), ZL_OK);
        ck_assert_int_eq(t, types[i]);
        ck_assert_str_eq(zl_lr_schedule_name(types[i]), names[i]);
    }
    ck_assert_str_eq(zl_lr_schedule_name(ZL_LR_CONSTANT), "constant");
    zl_lr_schedule_type t;
    /* Class names are case-sensitive in DeepSpeed (a getattr on the module). */
    ck_assert_int_eq(zl_lr_schedule_parse("warmuplr", &t), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "DeepSpeed does not recognize LR scheduler"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "'warmuplr'"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "did you mean 'WarmupLR'"));
    ck_assert_int_eq(zl_lr_schedule_parse("constant", &t), ZL_ERR_CONFIG);
    ck_assert_int_eq(zl_lr_schedule_parse("Warmup", &t), ZL_ERR_CONFIG);
    ck_assert_ptr_null(strstr(zl_last_error(), "did you mean"));
    /* DeepSpeed falls back to torch.optim.lr_scheduler; zerolab names what it lacks. */
    ck_assert_int_eq(zl_lr_schedule_parse("StepLR", &t), ZL_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "torch.optim.lr_scheduler.StepLR"));
}
END_TEST

START_TEST(test_lr_schedule_defaults_are_deepspeeds)
{
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_ONE_CYCLE);
    ck_assert_int_eq(p.type, ZL_LR_ONE_CYCLE);
    ck_assert(p.warmup_min_lr == 0.0 && p.warmup_max_lr == 0.001 && !p.warmup_max_lr_given);
    ck_assert_int_eq(p.warmup_num_steps, 1000);
    ck_assert_int_eq(p.warmup_type, ZL_WARMUP_LOG);
    ck_assert(p.warmup_min_ratio == 0.0 && p.cos_min_ratio == 1e-4);
    ck_assert(p.decay_lr_rate == 0.0 && p.decay_mom_rate == 0.0);
    ck_assert_int_eq(p.cycle_first_step_size, 2000);
    ck_assert_int_eq(p.cycle_first_stair_count, 0);
    ck_assert_int_eq(p.decay_step_size, 0);
    ck_assert(p.cycle_momentum && p.cycle_min_mom == 0.8 && p.cycle_max_mom == 0.9);
    ck_assert(p.lr_range_test_min_lr == 1e-3 && p.lr_range_test_step_rate == 1.0);
    ck_assert_int_eq(p.lr_range_test_step_size, 2000);
    ck_assert(!p.lr_range_test_staircase);
}
END_TEST

START_TEST(test_lr_schedule_constant_keeps_base_lr)
{
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_CONSTANT);
    double lr[MAX_T + 2];
    run(&p, 6e-4, 0.9, 20, lr, NULL);
    for (int t = -1; t <= 20; t++) ck_assert(lr[t + 1] == 6e-4);
}
END_TEST

START_TEST(test_lr_schedule_warmup_log_hand_values)
{
    /* N = 10, min 0, max 1: lr(t) = ln(t+1)/ln(10) = log10(t+1) while t < 10, then 1. */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP);
    p.warmup_num_steps = 10;
    p.warmup_max_lr = 1.0;
    p.warmup_max_lr_given = true;
    double lr[MAX_T + 2];
    run(&p, 0.5, 0.9, 30, lr, NULL);
    expect_near("log warmup", -1, lr[0], 0.0);                 /* before the first step: min */
    expect_near("log warmup", 0, lr[1], 0.0);                  /* log10(1) */
    expect_near("log warmup", 1, lr[2], 0.30102999566398120);  /* log10(2) */
    expect_near("log warmup", 2, lr[3], 0.47712125471966244);  /* log10(3) */
    expect_near("log warmup", 4, lr[5], 0.69897000433601886);  /* log10(5) */
    expect_near("log warmup", 9, lr[10], 1.0);                 /* log10(10): max at N-1 */
    expect_near("log warmup", 10, lr[11], 1.0);
    expect_near("log warmup", 30, lr[31], 1.0);                /* WarmupLR holds max */
}
END_TEST

START_TEST(test_lr_schedule_warmup_follows_formula)
{
    /* warmup_max_lr not given: WarmupLR uses the optimizer's lr. */
    const int n = 25, total = 60;
    for (int linear = 0; linear <= 1; linear++) {
        zl_lr_schedule_params p;
        zl_lr_schedule_params_default(&p, ZL_LR_WARMUP);
        p.warmup_num_steps = n;
        p.warmup_min_lr = 1e-5;
        p.warmup_type = linear ? ZL_WARMUP_LINEAR : ZL_WARMUP_LOG;
        double lr[MAX_T + 2];
        run(&p, 3e-3, 0.9, total + 10, lr, NULL);
        int steps[8];
        int ns = probe_steps(n, total, steps);
        expect_near("warmup", -1, lr[0], 1e-5);
        for (int i = 0; i < ns; i++) {
            int t = steps[i];
            expect_near(linear ? "linear warmup" : "log warmup", t, lr[t + 1],
                        want_warmup_lr(t, 1e-5, 3e-3, n, linear));
        }
    }
}
END_TEST

START_TEST(test_lr_schedule_warmup_linear_hand_values)
{
    /* N = 10, min 0, max 1: t/10, so 0.9 at N-1 and a jump to 1 at N. */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP);
    p.warmup_num_steps = 10;
    p.warmup_type = ZL_WARMUP_LINEAR;
    p.warmup_max_lr = 1.0;
    p.warmup_max_lr_given = true;
    double lr[MAX_T + 2];
    run(&p, 0.5, 0.9, 12, lr, NULL);
    expect_near("linear", 0, lr[1], 0.0);
    expect_near("linear", 1, lr[2], 0.1);
    expect_near("linear", 9, lr[10], 0.9);
    expect_near("linear", 10, lr[11], 1.0);
}
END_TEST

START_TEST(test_lr_schedule_warmup_one_step_means_two)
{
    /* N = max(2, 1) = 2: lr(0) = ln1/ln2 = 0, lr(1) = ln2/ln2 = 1 (times max 0.2). */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP);
    p.warmup_num_steps = 1;
    double lr[MAX_T + 2];
    run(&p, 0.2, 0.9, 3, lr, NULL);
    expect_near("N=1", 0, lr[1], 0.0);
    expect_near("N=1", 1, lr[2], 0.2);
    expect_near("N=1", 2, lr[3], 0.2);
}
END_TEST

START_TEST(test_lr_schedule_warmup_decay_follows_formula)
{
    const int n = 10, total = 30;
    for (int linear = 0; linear <= 1; linear++) {
        zl_lr_schedule_params p;
        zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_DECAY);
        p.warmup_num_steps = n;
        p.total_num_steps = total;
        p.warmup_min_lr = 2e-5;
        p.warmup_max_lr = 2e-3;
        p.warmup_max_lr_given = true;
        p.warmup_type = linear ? ZL_WARMUP_LINEAR : ZL_WARMUP_LOG;
        double lr[MAX_T + 2];
        run(&p, 0.5, 0.9, total + 10, lr, NULL);
        expect_near("decay", -1, lr[0], 2e-5);
        int steps[8];
        int ns = probe_steps(n, total, steps);
        for (int i = 0; i < ns; i++) {
            int t = steps[i];
            expect_near("decay", t, lr[t + 1], want_decay_lr(t, 2e-5, 2e-3, n, total, linear));
        }
    }
}
END_TEST

START_TEST(test_lr_schedule_warmup_decay_hand_values)
{
    /* N = 10, T = 30, min 0, max not given -> 0.001 (WarmupDecayLR's default, not the
     * optimizer's lr). After warmup g = (30 - t)/20: t=10 -> 1, t=11 -> 0.95,
     * t=20 -> 0.5, t=30 -> 0, t=40 -> max(0, -0.5) = 0. */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_DECAY);
    p.warmup_num_steps = 10;
    p.total_num_steps = 30;
    double lr[MAX_T + 2];
    run(&p, 0.7, 0.9, 40, lr, NULL);
    expect_near("decay", 9, lr[10], 0.001);
    expect_near("decay", 10, lr[11], 0.001);
    expect_near("decay", 11, lr[12], 0.00095);
    expect_near("decay", 20, lr[21], 0.0005);
    expect_near("decay", 30, lr[31], 0.0);
    expect_near("decay", 40, lr[41], 0.0);
}
END_TEST

START_TEST(test_lr_schedule_warmup_cosine_follows_formula)
{
    const int n = 10, total = 30;
    for (int linear = 0; linear <= 1; linear++) {
        zl_lr_schedule_params p;
        zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_COSINE);
        p.warmup_num_steps = n;
        p.total_num_steps = total;
        p.warmup_min_ratio = 0.1;
        p.cos_min_ratio = 0.01;
        p.warmup_type = linear ? ZL_WARMUP_LINEAR : ZL_WARMUP_LOG;
        double lr[MAX_T + 2];
        run(&p, 4e-3, 0.9, total + 10, lr, NULL);
        int steps[8];
        int ns = probe_steps(n, total, steps);
        for (int i = 0; i < ns; i++) {
            int t = steps[i];
            expect_near("cosine", t, lr[t + 1],
                        want_cosine_lr(t, 4e-3, 0.1, 0.01, n, total, linear));
        }
        for (int t = total - 1; t <= total + 10; t++) /* the floor holds past T */
            expect_near("cosine floor", t, lr[t + 1], 4e-3 * 0.01);
    }
}
END_TEST

START_TEST(test_lr_schedule_warmup_cosine_hand_values)
{
    /* base lr 0.01, N = 10, T = 30, wmin 0.1, cmin 1e-4 (default), log warmup.
     *   before the first step: ratio 0 -> lr 0 (DeepSpeed's constructor value)
     *   t = 0:  g = 0 -> ratio = wmin = 0.1 -> 0.001
     *   t = 9:  g = 1 -> ratio 1 -> 0.01
     *   t = 19: p = (19-10+1)/20 = 0.5, cos(pi/2) = 0 -> ratio = 1e-4 + 0.9999*0.5 = 0.50005
     *   t = 29: p = 1 -> ratio = cmin -> 1e-6 */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_COSINE);
    p.warmup_num_steps = 10;
    p.total_num_steps = 30;
    p.warmup_min_ratio = 0.1;
    double lr[MAX_T + 2];
    run(&p, 0.01, 0.9, 40, lr, NULL);
    expect_near("cosine", -1, lr[0], 0.0);
    expect_near("cosine", 0, lr[1], 0.001);
    expect_near("cosine", 9, lr[10], 0.01);
    expect_near("cosine", 19, lr[20], 0.0050005);
    expect_near("cosine", 29, lr[30], 1e-6);
    expect_near("cosine", 40, lr[41], 1e-6);
}
END_TEST

START_TEST(test_lr_schedule_one_cycle_lr_and_momentum)
{
    /* min 0.1, max 1.0, s1 = 4, s2 = 6 (total 10, ratio 0.4), momentum 0.8..0.9,
     * decay_lr_rate 0.5, decay_mom_rate 0.1, decay_step_size 2. With b = t + 1:
     *   init:  lr = min = 0.1, beta1 = min_mom = 0.8, beta2 = 0.99
     *   t = 0: x = 0.1, scale 0.25 -> lr 0.325, mom 0.9 - 0.1*0.25 = 0.875
     *   t = 3: x = 0.4, scale 1    -> lr 1.0,   mom 0.8 (the peak)
     *   t = 4: x = 0.5, scale (0.5-1)/(0.4-1) = 5/6 -> lr 0.85, mom 0.9 - 0.1*5/6
     *   t = 6: x = 0.7, scale 0.5  -> lr 0.55,  mom 0.85
     *   t = 9: x = 0,   scale 0    -> lr 0.1,   mom 0.9
     *   t = 10: decay, d = 1, d/2 = 0.5 -> lr 0.1/1.25 = 0.08, mom 0.9*1.05 = 0.945
     *   t = 20: d = 11, 5.5 -> lr 0.1/3.75, mom 0.9*1.55 = 1.395 (DeepSpeed grows it) */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_ONE_CYCLE);
    p.cycle_min_lr = 0.1;
    p.cycle_max_lr = 1.0;
    p.cycle_first_step_size = 4;
    p.cycle_second_step_size = 6;
    p.decay_lr_rate = 0.5;
    p.decay_mom_rate = 0.1;
    p.decay_step_size = 2;
    zl_lr_schedule s;
    ck_assert_int_eq(zl_lr_schedule_init(&s, &p, 0.5, 0.95), ZL_OK);
    ck_assert(s.has_momentum);
    ck_assert(s.momentum_beta2 == 0.99);
    double lr[MAX_T + 2], mom[MAX_T + 2];
    run(&p, 0.5, 0.95, 20, lr, mom);
    expect_near("lr", -1, lr[0], 0.1);
    expect_near("mom", -1, mom[0], 0.8);
    expect_near("lr", 0, lr[1], 0.325);
    expect_near("mom", 0, mom[1], 0.875);
    expect_near("lr", 3, lr[4], 1.0);
    expect_near("mom", 3, mom[4], 0.8);
    expect_near("lr", 4, lr[5], 0.85);
    expect_near("mom", 4, mom[5], 0.9 - 0.1 * 5.0 / 6.0);
    expect_near("lr", 6, lr[7], 0.55);
    expect_near("mom", 6, mom[7], 0.85);
    expect_near("lr", 9, lr[10], 0.1);
    expect_near("mom", 9, mom[10], 0.9);
    expect_near("lr", 10, lr[11], 0.08);
    expect_near("mom", 10, mom[11], 0.945);
    expect_near("lr", 20, lr[21], 0.1 / 3.75);
    expect_near("mom", 20, mom[21], 1.395);
    /* Momentum moves against the lr through the whole cycle: lr + (max-min)*9 = const. */
    for (int t = 0; t < 10; t++)
        expect_near("lr vs mom", t, (lr[t + 1] - 0.1) / 0.9, (0.9 - mom[t + 1]) / 0.1);
}
END_TEST

START_TEST(test_lr_schedule_one_cycle_without_momentum_or_decay)
{
    /* cycle_momentum off: beta1 stays the optimizer's. decay_step_size 0 (the default):
     * no decay, and no second cycle either: the lr stays at min after the cycle. */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_ONE_CYCLE);
    p.cycle_min_lr = 0.01;
    p.cycle_max_lr = 0.05;
    p.cycle_first_step_size = 5;
    p.cycle_momentum = false;
    p.decay_lr_rate = 0.3; /* ignored without a decay_step_size */
    zl_lr_schedule s;
    ck_assert_int_eq(zl_lr_schedule_init(&s, &p, 1.0, 0.93), ZL_OK);
    ck_assert(!s.has_momentum);
    double lr[MAX_T + 2], mom[MAX_T + 2];
    run(&p, 1.0, 0.93, 30, lr, mom);
    for (int t = -1; t <= 30; t++) ck_assert(mom[t + 1] == 0.93);
    /* s2 defaults to s1 = 5: peak at b = 5 (t = 4), back to min at b = 10 (t = 9). */
    expect_near("lr", 4, lr[5], 0.05);
    expect_near("lr", 6, lr[7], 0.01 + 0.04 * 0.6); /* x = 0.7 -> (0.7-1)/(0.5-1) = 0.6 */
    for (int t = 9; t <= 30; t++) expect_near("after cycle", t, lr[t + 1], 0.01);
}
END_TEST

START_TEST(test_lr_schedule_one_cycle_stairs)
{
    /* min 0, max 1, s1 = s2 = 4, two stairs per half. Position c = (t+1) mod 8:
     *   rising  c <= 4: floor(c*2/4)/2       c = 1,2,3,4 -> 0, 0.5, 0.5, 1
     *   falling c > 4:  floor((8-c)*2/4)/2   c = 5,6,7   -> 0.5, 0.5, 0   and c = 8 -> 0 */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_ONE_CYCLE);
    p.cycle_min_lr = 0.0;
    p.cycle_max_lr = 1.0;
    p.cycle_first_step_size = 4;
    p.cycle_first_stair_count = 2; /* second defaults to the first */
    double lr[MAX_T + 2], mom[MAX_T + 2];
    run(&p, 1.0, 0.9, 8, lr, mom);
    const double want[8] = {0, 0.5, 0.5, 1, 0.5, 0.5, 0, 0};
    for (int t = 0; t < 8; t++) {
        expect_near("stairs lr", t, lr[t + 1], want[t]);
        expect_near("stairs mom", t, mom[t + 1], 0.9 - 0.1 * want[t]);
    }
    /* Asymmetric cycle s1 = 4, s2 = 6, four stairs up, three down. Rising c = 1..4:
     * floor(c*4/4)/4 = c/4; falling c = 5..9: floor((10-c)*3/6)/3 = 2/3, 2/3, 1/3, 1/3, 0;
     * c = 10 = 0 mod 10: 0. At the peak (c = 4) the float scale x/ratio is 0.9999999999999998
     * (b/total = 0.4 does not survive 1 + 0.4 - 1), so quantising the scale would give 0.75;
     * quantising the integer position gives exactly max. */
    p.cycle_first_step_size = 4;
    p.cycle_second_step_size = 6;
    p.cycle_first_stair_count = 4;
    p.cycle_second_stair_count = 3;
    run(&p, 1.0, 0.9, 9, lr, mom);
    const double want2[10] = {0.25, 0.5, 0.75, 1.0, 2.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0};
    for (int t = 0; t < 10; t++) expect_near("asymmetric stairs", t, lr[t + 1], want2[t]);
    ck_assert(lr[4] == 1.0); /* t = 3: exactly the peak */
    expect_near("asymmetric stairs mom", 3, mom[4], 0.8);
}
END_TEST

START_TEST(test_lr_schedule_range_test)
{
    /* min 1e-3, step size 4, rate 0.5: lr = 1e-3 * (1 + 0.5*i), i = (t+1)/4 or its floor.
     *   continuous t = 0: 1e-3*1.125; t = 3: 1e-3*1.5; t = 5: 1e-3*1.75
     *   staircase  t = 0..2: 1e-3; t = 3..6: 1.5e-3; t = 7: 2e-3 */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_RANGE_TEST);
    p.lr_range_test_step_size = 4;
    p.lr_range_test_step_rate = 0.5;
    double lr[MAX_T + 2];
    run(&p, 0.9, 0.9, 40, lr, NULL);
    expect_near("lrrt", -1, lr[0], 1e-3);
    expect_near("lrrt", 0, lr[1], 1.125e-3);
    expect_near("lrrt", 3, lr[4], 1.5e-3);
    expect_near("lrrt", 5, lr[6], 1.75e-3);
    for (int t = 0; t <= 40; t++)
        expect_near("lrrt", t, lr[t + 1], 1e-3 + 1e-3 * 0.5 * (t + 1) / 4.0);
    p.lr_range_test_staircase = true;
    run(&p, 0.9, 0.9, 40, lr, NULL);
    expect_near("stair", -1, lr[0], 1e-3);
    for (int t = 0; t <= 2; t++) expect_near("stair", t, lr[t + 1], 1e-3);
    for (int t = 3; t <= 6; t++) expect_near("stair", t, lr[t + 1], 1.5e-3);
    expect_near("stair", 7, lr[8], 2e-3);
    for (int t = 0; t <= 40; t++)
        expect_near("stair", t, lr[t + 1], 1e-3 * (1 + 0.5 * ((t + 1) / 4)));
}
END_TEST

static void expect_config_error(const zl_lr_schedule_params *p, const char *needle)
{
    zl_lr_schedule s;
    zl_error_clear();
    ck_assert_int_eq(zl_lr_schedule_init(&s, p, 1e-3, 0.9), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), needle), "message '%s' lacks '%s'", zl_last_error(),
                  needle);
}

START_TEST(test_lr_schedule_validation_errors)
{
    zl_lr_schedule_params p;
    zl_lr_schedule_type warmups[] = {ZL_LR_WARMUP, ZL_LR_WARMUP_DECAY, ZL_LR_WARMUP_COSINE};
    /* DeepSpeed takes max(2, warmup_num_steps) and raises nothing (lr_schedules.py): 0 and
     * -5 run exactly as 2 does. */
    for (int i = 0; i < 3; i++) {
        static const int64_t small[] = {0, -5, 1};
        for (int k = 0; k < 3; k++) {
            zl_lr_schedule s, two;
            zl_lr_schedule_params_default(&p, warmups[i]);
            p.total_num_steps = 100;
            p.warmup_type = ZL_WARMUP_LINEAR;
            zl_lr_schedule_params q = p;
            p.warmup_num_steps = small[k];
            q.warmup_num_steps = 2;
            zl_error_clear();
            ck_assert_msg(zl_lr_schedule_init(&s, &p, 1e-3, 0.9) == ZL_OK, "%s: %s",
                          zl_lr_schedule_name(warmups[i]), zl_last_error());
            ck_assert_int_eq(zl_lr_schedule_init(&two, &q, 1e-3, 0.9), ZL_OK);
            for (int t = 0; t < 6; t++) {
                ck_assert_msg(s.lr == two.lr, "%s n=%lld t=%d: %g vs %g",
                              zl_lr_schedule_name(warmups[i]), (long long)small[k], t, s.lr,
                              two.lr);
                zl_lr_schedule_step(&s);
                zl_lr_schedule_step(&two);
            }
        }
    }
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_DECAY);
    expect_config_error(&p, "total_num_steps is required");
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_COSINE);
    expect_config_error(&p, "total_num_steps is required");

    zl_lr_schedule_params_default(&p, ZL_LR_ONE_CYCLE);
    expect_config_error(&p, "cycle_min_lr and cycle_max_lr are required");
    p.cycle_min_lr = 0.1;
    expect_config_error(&p, "cycle_max_lr");
    p.cycle_max_lr = 1.0;
    p.cycle_first_step_size = 0;
    expect_config_error(&p, "cycle_first_step_size must be a positive integer, got 0");
    p.cycle_first_step_size = 10;
    p.cycle_second_step_size = -3;
    expect_config_error(&p, "cycle_second_step_size");
    p.cycle_second_step_size = -1;
    p.decay_step_size = -1;
    expect_config_error(&p, "decay_step_size");

    zl_lr_schedule_params_default(&p, ZL_LR_RANGE_TEST);
    p.lr_range_test_step_size = 0;
    expect_config_error(&p, "lr_range_test_step_size must be a positive integer, got 0");
}
END_TEST

START_TEST(test_lr_schedule_total_below_warmup_accepted)
{
    /* T = 5 < N = 10 is accepted (DeepSpeed only warns). After warmup the decay has no room:
     * g = max(0, (5 - t)/max(1, 5 - 10)) = 0 for t >= 10, and cosine stays at its floor. */
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_DECAY);
    p.warmup_num_steps = 10;
    p.total_num_steps = 5;
    p.warmup_min_lr = 1e-4;
    double lr[MAX_T + 2];
    run(&p, 1.0, 0.9, 12, lr, NULL);
    expect_near("decay", 9, lr[10], 1e-3);
    expect_near("decay", 10, lr[11], 1e-4);
    zl_lr_schedule_params_default(&p, ZL_LR_WARMUP_COSINE);
    p.warmup_num_steps = 10;
    p.total_num_steps = 5;
    run(&p, 1.0, 0.9, 12, lr, NULL);
    expect_near("cosine", 10, lr[11], 1e-4);
}
END_TEST

START_TEST(test_lr_schedule_set_iteration_resumes)
{
    zl_lr_schedule_params p;
    zl_lr_schedule_params_default(&p, ZL_LR_ONE_CYCLE);
    p.cycle_min_lr = 0.1;
    p.cycle_max_lr = 1.0;
    p.cycle_first_step_size = 7;
    zl_lr_schedule a, b;
    ck_assert_int_eq(zl_lr_schedule_init(&a, &p, 0.5, 0.9), ZL_OK);
    ck_assert_int_eq(zl_lr_schedule_init(&b, &p, 0.5, 0.9), ZL_OK);
    double lr0 = a.lr, mom0 = a.momentum;
    for (int i = 0; i < 12; i++) zl_lr_schedule_step(&a);
    zl_lr_schedule_set_iteration(&b, 11);
    ck_assert(a.lr == b.lr && a.momentum == b.momentum);
    ck_assert(zl_lr_schedule_step(&a) == zl_lr_schedule_step(&b));
    zl_lr_schedule_set_iteration(&b, -1);
    ck_assert(b.lr == lr0 && b.momentum == mom0);
}
END_TEST

static Suite *lr_schedule_suite(void)
{
    Suite *s = suite_create("lr_schedule");
    TCase *tc = tcase_create("lr_schedule");
    tcase_add_test(tc, test_lr_schedule_names_round_trip);
    tcase_add_test(tc, test_lr_schedule_defaults_are_deepspeeds);
    tcase_add_test(tc, test_lr_schedule_constant_keeps_base_lr);
    tcase_add_test(tc, test_lr_schedule_warmup_log_hand_values);
    tcase_add_test(tc, test_lr_schedule_warmup_follows_formula);
    tcase_add_test(tc, test_lr_schedule_warmup_linear_hand_values);
    tcase_add_test(tc, test_lr_schedule_warmup_one_step_means_two);
    tcase_add_test(tc, test_lr_schedule_warmup_decay_follows_formula);
    tcase_add_test(tc, test_lr_schedule_warmup_decay_hand_values);
    tcase_add_test(tc, test_lr_schedule_warmup_cosine_follows_formula);
    tcase_add_test(tc, test_lr_schedule_warmup_cosine_hand_values);
    tcase_add_test(tc, test_lr_schedule_one_cycle_lr_and_momentum);
    tcase_add_test(tc, test_lr_schedule_one_cycle_without_momentum_or_decay);
    tcase_add_test(tc, test_lr_schedule_one_cycle_stairs);
    tcase_add_test(tc, test_lr_schedule_range_test);
    tcase_add_test(tc, test_lr_schedule_validation_errors);
    tcase_add_test(tc, test_lr_schedule_total_below_warmup_accepted);
    tcase_add_test(tc, test_lr_schedule_set_iteration_resumes);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(lr_schedule_suite)
