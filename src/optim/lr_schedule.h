/* Learning-rate schedules with DeepSpeed's formulas (deepspeed/runtime/lr_schedules.py):
 * WarmupLR, WarmupDecayLR, WarmupCosineLR, OneCycle, LRRangeTest.
 *
 * A schedule steps once per optimizer step (at the gradient-accumulation boundary), and
 * not on a step skipped for overflow. last_batch_iteration starts at -1, as DeepSpeed's
 * does; the lr in force before the first step is the value for that initial state. */
#ifndef ZL_OPTIM_LR_SCHEDULE_H
#define ZL_OPTIM_LR_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

typedef enum zl_lr_schedule_type {
    ZL_LR_CONSTANT, /* no "scheduler" block: the optimizer's lr throughout */
    ZL_LR_WARMUP,   /* "WarmupLR" */
    ZL_LR_WARMUP_DECAY,  /* "WarmupDecayLR" */
    ZL_LR_WARMUP_COSINE, /* "WarmupCosineLR" */
    ZL_LR_ONE_CYCLE,     /* "OneCycle" */
    ZL_LR_RANGE_TEST,    /* "LRRangeTest" */
} zl_lr_schedule_type;

typedef enum zl_warmup_type { ZL_WARMUP_LOG, ZL_WARMUP_LINEAR } zl_warmup_type;

/* Every parameter of every schedule, with DeepSpeed's names; the config parser fills the
 * ones of the chosen type and leaves the rest at their defaults. */
typedef struct zl_lr_schedule_params {
    zl_lr_schedule_type type;
    /* WarmupLR, WarmupDecayLR, WarmupCosineLR */
    double warmup_min_lr;      /* 0 */
    double warmup_max_lr;      /* 0.001 (WarmupLR: the optimizer's lr if not given) */
    bool warmup_max_lr_given;
    int64_t warmup_num_steps;  /* 1000 */
    zl_warmup_type warmup_type; /* log */
    int64_t total_num_steps;   /* WarmupDecayLR, WarmupCosineLR: required (-1: not given) */
    double warmup_min_ratio;   /* WarmupCosineLR: 0 */
    double cos_min_ratio;      /* WarmupCosineLR: 1e-4 */
    /* OneCycle */
    double cycle_min_lr, cycle_max_lr; /* required (NaN: not given) */
    double decay_lr_rate;            /* 0 */
    int64_t cycle_first_step_size;   /* 2000 */
    int64_t cycle_second_step_size;  /* -1: same as first */
    int64_t cycle_first_stair_count; /* 0 */
    int64_t cycle_second_stair_count; /* -1: same as first */
    int64_t decay_step_size;         /* 0 */
    bool cycle_momentum;             /* true */
    double cycle_min_mom, cycle_max_mom; /* 0.8, 0.9 */
    double decay_mom_rate;           /* 0 */
    /* LRRangeTest */
    double lr_range_test_min_lr;     /* 1e-3 */
    int64_t lr_range_test_step_size; /* 2000 */
    double lr_range_test_step_rate;  /* 1.0 */
    bool lr_range_test_staircase;    /* false */
} zl_lr_schedule_params;

typedef struct zl_lr_schedule {
    zl_lr_schedule_params p;
    double base_lr;     /* the optimizer's configured lr */
    int64_t last_batch_iteration;
    double lr;          /* lr in force for the next optimizer step */
    bool has_momentum;  /* OneCycle with cycle_momentum: beta1 follows `momentum` */
    double momentum;    /* beta1 for the next optimizer step (base_beta1 unless cycled) */
    double momentum_beta2; /* with has_momentum, beta2 for the next step: DeepSpeed's
                            * OneCycle writes betas = (momentum, 0.99) */
} zl_lr_schedule;

/* The parameters' defaults for `type` (all fields set). */
void zl_lr_schedule_params_default(zl_lr_schedule_params *p, zl_lr_schedule_type type);

/* Validate the parameters and set the initial lr (t = -1). base_lr and base_beta1 come
 * from the optimizer. Errors (ZL_ERR_CONFIG, naming the schedule and the key):
 * total_num_steps or cycle_min_lr/cycle_max_lr not given, and step sizes DeepSpeed would
 * divide by zero with. warmup_num_steps may be anything: the warmup lasts max(2, n) steps,
 * as DeepSpeed's WarmupLR has it. total_num_steps < warmup_num_steps is accepted, as in
 * DeepSpeed (whose warning the config reader gives). The engine runs each optimizer step with s->lr (and, with has_momentum,
 * betas (s->momentum, s->momentum_beta2)), then calls zl_lr_schedule_step; skipped
 * (overflow) steps do not step the schedule. */
zl_status zl_lr_schedule_init(zl_lr_schedule *s, const zl_lr_schedule_params *p, double base_lr,
                              double base_beta1);

/* Advance one optimizer step; returns the lr for the step after it (also in s->lr). */
double zl_lr_schedule_step(zl_lr_schedule *s);

/* Resume: set last_batch_iteration (DeepSpeed's whole state_dict) and recompute lr and
 * momentum for it; -1 restores the initial state. */
void zl_lr_schedule_set_iteration(zl_lr_schedule *s, int64_t last_batch_iteration);

/* DeepSpeed's class name ("WarmupLR", ...; "constant" for ZL_LR_CONSTANT) and the reverse
 * lookup of the five class names (exact, case-sensitive, as DeepSpeed's getattr is).
 * Unknown names: ZL_ERR_CONFIG ("DeepSpeed does not recognize LR scheduler 'x'", with a
 * "did you mean" for a case slip); torch.optim.lr_scheduler names: ZL_ERR_UNSUPPORTED. */
const char *zl_lr_schedule_name(zl_lr_schedule_type type);
zl_status zl_lr_schedule_parse(const char *name, zl_lr_schedule_type *out);

#endif
