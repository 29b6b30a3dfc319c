/* DeepSpeed's learning-rate schedules (deepspeed/runtime/lr_schedules.py), in double.
 *
 * Step convention. t is last_batch_iteration. It starts at -1, and the constructor writes
 * an initial lr (and, for OneCycle, betas) into the optimizer; the engine's first
 * optimizer step runs with that value. After every optimizer step (not on skipped
 * steps) the schedule steps: t += 1 and the lr for t is written, to be used by the next
 * optimizer step. So optimizer step k (0-based) runs with lr(k - 1), lr(-1) being the
 * constructor's value:
 *
 *   schedule        lr(-1), before the first step    lr(t), t >= 0
 *   constant        base_lr                          base_lr
 *   WarmupLR        min                              min + (max - min) * g(t)
 *   WarmupDecayLR   min                              min + (max - min) * g(t), decaying
 *   WarmupCosineLR  0 (not the warmup floor)         base_lr * r(t)
 *   OneCycle        cycle_min_lr, beta1 = min_mom    see below
 *   LRRangeTest     min_lr                           min_lr * (1 + rate * i(t))
 *
 * Warmup, with N = max(2, warmup_num_steps) (0 and negative counts are accepted, as in
 * DeepSpeed, and mean N = 2):
 *   t < N:  g = ln(t + 1) / ln(N)  (log: g(0) = 0, g(N-1) = 1)
 *           g = t / N              (linear: g(N-1) = (N-1)/N, then a step to 1)
 *   WarmupLR       t >= N: g = 1 (the lr stays at max forever)
 *   WarmupDecayLR  t >= N: g = max(0, (T - t) / max(1, T - N))  (g(N) = 1, g(T) = 0)
 *   WarmupLR's max is the optimizer's lr unless given; WarmupDecayLR's defaults to 1e-3.
 *
 * WarmupCosineLR multiplies the optimizer's configured lr by a ratio r:
 *   t < N:  r = wmin + g(t) * (1 - wmin)
 *   t >= N: p = min(1, (t - N + 1) / max(1, T - N));
 *           r = max(0, cmin + (1 - cmin) * (1 + cos(pi p)) / 2)   (r = cmin from t = T - 1)
 *
 * OneCycle, with s1, s2 the half-cycle sizes, total = s1 + s2, ratio = s1 / total,
 * b = t + 1:
 *   x = 1 + b/total - floor(1 + b/total)
 *   scale = x / ratio            if x <= ratio (rising half, stair count k1)
 *         = (x - 1) / (ratio - 1) otherwise   (falling half, stair count k2)
 *   a stair count k > 0 quantises from the integer position c = b mod total:
 *         scale = floor(c * k / s1) / k        if c <= s1
 *               = floor((total - c) * k / s2) / k  otherwise
 *   t < total:  lr = min_lr + (max_lr - min_lr) * scale
 *               beta1 = max_mom - (max_mom - min_mom) * scale, beta2 = 0.99
 *   t >= total: d = t - total + 1
 *               lr = min_lr / (1 + decay_lr_rate * d / decay_step_size)
 *               beta1 = max_mom * (1 + decay_mom_rate * d / decay_step_size)
 *               (either decay is skipped, holding min_lr / max_mom, when its rate or
 *               decay_step_size is 0)
 *
 * LRRangeTest: i(t) = (t + 1) / step_size, or floor((t + 1) / step_size) with staircase.
 */
#include "optim/lr_schedule.h"

#include <math.h>
#include <string.h>

#include "base/log.h"

/* OneCycle pins betas[1] to this value while it cycles betas[0] (DeepSpeed does). */
#define ONE_CYCLE_BETA2 0.99

/* math.pi; M_PI is not in strict C11. */
#define ZL_PI 3.14159265358979323846

/* ---- formulas ------------------------------------------------------------------------ */

static int64_t warmup_steps(const zl_lr_schedule_params *p)
{
    return p->warmup_num_steps < 2 ? 2 : p->warmup_num_steps;
}

/* The warmup fraction g(t) for 0 <= t < N. */
static double warmup_gamma(const zl_lr_schedule_params *p, int64_t t)
{
    int64_t n = warmup_steps(p);
    if (p->warmup_type == ZL_WARMUP_LINEAR) return (double)t / (double)n;
    /* DeepSpeed multiplies by a precomputed 1/ln(N); keep its rounding. */
    return (1.0 / log((double)n)) * log((double)(t + 1));
}

static int64_t second_step_size(const zl_lr_schedule_params *p)
{
    return p->cycle_second_step_size < 0 ? p->cycle_first_step_size : p->cycle_second_step_size;
}

static int64_t second_stair_count(const zl_lr_schedule_params *p)
{
    return p->cycle_second_stair_count < 0 ? p->cycle_first_stair_count
                                           : p->cycle_second_stair_count;
}

static double one_cycle_scale(const zl_lr_schedule_params *p, int64_t t)
{
    double s1 = (double)p->cycle_first_step_size, s2 = (double)second_step_size(p);
    double total = s1 + s2, ratio = s1 / total;
    double b = (double)(t + 1);
    double x = 1.0 + b / total - floor(1.0 + b / total);
    double scale;
    int64_t stairs;
    if (x <= ratio) {
        scale = x / ratio;
        stairs = p->cycle_first_stair_count;
    } else {
        scale = (x - 1.0) / (ratio - 1.0);
        stairs = second_stair_count(p);
    }
    if (stairs > 0) {
        /* Quantise from the integer position in the cycle, not from `scale`: at a
         * half-cycle boundary the float scale can sit an ulp under a stair, and flooring
         * it would drop a whole stair (even off the peak). */
        double k = (double)stairs, c = fmod(b, total);
        double pos = c <= s1 ? c * k / s1 : (total - c) * k / s2;
        scale = floor(pos) / k;
    }
    return scale;
}

static void one_cycle_at(const zl_lr_schedule *s, int64_t t, double *lr, double *mom)
{
    const zl_lr_schedule_params *p = &s->p;
    double total = (double)(p->cycle_first_step_size + second_step_size(p));
    if ((double)t < total) {
        double scale = one_cycle_scale(p, t);
        *lr = p->cycle_min_lr + (p->cycle_max_lr - p->cycle_min_lr) * scale;
        *mom = p->cycle_max_mom - (p->cycle_max_mom - p->cycle_min_mom) * scale;
        return;
    }
    double d = (double)t - total + 1.0;
    bool no_step = p->decay_step_size == 0;
    double interval = no_step ? 0.0 : d / (double)p->decay_step_size;
    *lr = (no_step || p->decay_lr_rate == 0.0) ? p->cycle_min_lr
                                               : p->cycle_min_lr / (1.0 + p->decay_lr_rate * interval);
    *mom = (no_step || p->decay_mom_rate == 0.0) ? p->cycle_max_mom
                                                 : p->cycle_max_mom * (1.0 + p->decay_mom_rate * interval);
}

/* lr (and momentum) in force once last_batch_iteration is t. */
static void schedule_at(zl_lr_schedule *s, int64_t t)
{
    const zl_lr_schedule_params *p = &s->p;
    double lr = s->base_lr, mom = s->momentum;
    switch (p->type) {
    case ZL_LR_CONSTANT:
        lr = s->base_lr;
        break;
    case ZL_LR_WARMUP:
    case ZL_LR_WARMUP_DECAY: {
        double max_lr = p->type == ZL_LR_WARMUP && !p->warmup_max_lr_given ? s->base_lr
                                                                            : p->warmup_max_lr;
        int64_t n = warmup_steps(p);
        double gamma;
        if (t < 0)
            gamma = 0.0; /* DeepSpeed: "before it has started", the min lr */
        else if (t < n)
            gamma = warmup_gamma(p, t);
        else if (p->type == ZL_LR_WARMUP)
            gamma = 1.0;
        else {
            double span = (double)(p->total_num_steps - n);
            gamma = fmax(0.0, (double)(p->total_num_steps - t) / fmax(1.0, span));
        }
        lr = p->warmup_min_lr + (max_lr - p->warmup_min_lr) * gamma;
        break;
    }
    case ZL_LR_WARMUP_COSINE: {
        int64_t n = warmup_steps(p);
        double ratio;
        if (t < 0) {
            ratio = 0.0; /* DeepSpeed writes lr 0 at construction, not the warmup floor */
        } else if (t < n) {
            ratio = p->warmup_min_ratio + warmup_gamma(p, t) * (1.0 - p->warmup_min_ratio);
        } else {
            double progress = (double)(t - n + 1) / fmax(1.0, (double)(p->total_num_steps - n));
            progress = fmin(1.0, progress);
            double c = (1.0 + cos(ZL_PI * progress)) / 2.0;
            ratio = fmax(0.0, p->cos_min_ratio + (1.0 - p->cos_min_ratio) * c);
        }
        lr = s->base_lr * ratio;
        break;
    }
    case ZL_LR_ONE_CYCLE:
        if (t < 0) {
            lr = p->cycle_min_lr;
            mom = p->cycle_min_mom;
        } else {
            one_cycle_at(s, t, &lr, &mom);
        }
        break;
    case ZL_LR_RANGE_TEST: {
        double i = (double)(t + 1) / (double)p->lr_range_test_step_size;
        if (p->lr_range_test_staircase) i = floor(i);
        lr = p->lr_range_test_min_lr * (1.0 + p->lr_range_test_step_rate * i);
        break;
    }
    }
    s->lr = lr;
    if (s->has_momentum) s->momentum = mom;
}

/* ---- validation ---------------------------------------------------------------------- */

/* Any warmup_num_steps is accepted: DeepSpeed's WarmupLR (and the two schedules built on
 * it) takes max(2, warmup_num_steps) and raises nothing for 0 or a negative count. */
static zl_status check_warmup(const zl_lr_schedule_params *p, const char *name)
{
    (void)p;
    (void)name;
    return ZL_OK;
}

static zl_status check_total(const zl_lr_schedule_params *p, const char *name)
{
    if (p->total_num_steps < 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "scheduler %s: total_num_steps is required (got %lld); set "
                         "\"total_num_steps\" in scheduler.params to the number of optimizer "
                         "steps of the run",
                         name, (long long)p->total_num_steps);
    /* DeepSpeed warns and carries on. The config reader already warns about this, naming
     * the key, so here it is only a debug line (one warning per mistake). */
    if (p->total_num_steps < warmup_steps(p))
        zl_log_debug("total_num_steps %lld is less than warmup_num_steps %lld",
                    (long long)p->total_num_steps, (long long)p->warmup_num_steps);
    return ZL_OK;
}

static zl_status check_one_cycle(const zl_lr_schedule_params *p)
{
    if (isnan(p->cycle_min_lr) || isnan(p->cycle_max_lr))
        return zl_errorf(ZL_ERR_CONFIG,
                         "scheduler OneCycle: cycle_min_lr and cycle_max_lr are required; set "
                         "both in scheduler.params");
    /* DeepSpeed divides by these without a check (ZeroDivisionError); say why instead. */
    if (p->cycle_first_step_size <= 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "scheduler OneCycle: cycle_first_step_size must be a positive integer, "
                         "got %lld",
                         (long long)p->cycle_first_step_size);
    if (p->cycle_second_step_size < -1)
        return zl_errorf(ZL_ERR_CONFIG,
                         "scheduler OneCycle: cycle_second_step_size must be >= 0 (or omitted to "
                         "equal cycle_first_step_size), got %lld",
                         (long long)p->cycle_second_step_size);
    if (p->decay_step_size < 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "scheduler OneCycle: decay_step_size must be >= 0 (0 disables the "
                         "post-cycle decay), got %lld",
                         (long long)p->decay_step_size);
    return ZL_OK;
}

zl_status zl_lr_schedule_init(zl_lr_schedule *s, const zl_lr_schedule_params *p, double base_lr,
                              double base_beta1)
{
    memset(s, 0, sizeof *s);
    zl_status st = ZL_OK;
    const char *name = zl_lr_schedule_name(p->type);
    switch (p->type) {
    case ZL_LR_CONSTANT:
        break;
    case ZL_LR_WARMUP:
        st = check_warmup(p, name);
        break;
    case ZL_LR_WARMUP_DECAY:
    case ZL_LR_WARMUP_COSINE:
        st = check_warmup(p, name);
        if (st == ZL_OK) st = check_total(p, name);
        break;
    case ZL_LR_ONE_CYCLE:
        st = check_one_cycle(p);
        break;
    case ZL_LR_RANGE_TEST:
        if (p->lr_range_test_step_size <= 0)
            st = zl_errorf(ZL_ERR_CONFIG,
                           "scheduler LRRangeTest: lr_range_test_step_size must be a positive "
                           "integer, got %lld",
                           (long long)p->lr_range_test_step_size);
        break;
    default:
        st = zl_errorf(ZL_ERR_INVALID, "unknown lr schedule type %d", (int)p->type);
    }
    if (st != ZL_OK) return st;

    s->p = *p;
    s->base_lr = base_lr;
    s->momentum = base_beta1;
    s->has_momentum = p->type == ZL_LR_ONE_CYCLE && p->cycle_momentum;
    s->momentum_beta2 = s->has_momentum ? ONE_CYCLE_BETA2 : 0.0;
    s->last_batch_iteration = -1;
    schedule_at(s, -1);
    return ZL_OK;
}

double zl_lr_schedule_step(zl_lr_schedule *s)
{
    s->last_batch_iteration++;
    schedule_at(s, s->last_batch_iteration);
    return s->lr;
}

void zl_lr_schedule_set_iteration(zl_lr_schedule *s, int64_t last_batch_iteration)
{
    ZL_ASSERT(last_batch_iteration >= -1);
    s->last_batch_iteration = last_batch_iteration;
    schedule_at(s, last_batch_iteration);
}
