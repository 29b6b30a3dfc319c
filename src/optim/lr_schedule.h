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
    int64_t total_num_steps;   /* WarmupDecayLR, WarmupCosineLR: required */
    double warmup_min_ratio;   /* WarmupCosineLR: 0 */
    double cos_min_ratio;      /* WarmupCosineLR: 1e-4 */
    /* OneCycle */
    double cycle_min_lr, cycle_max_lr;
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
    double momentum;
} zl_lr_schedule;

/* The parameters' defaults for `type` (all fields set). */
void zl_lr_schedule_params_default(zl_lr_schedule_params *p, zl_lr_schedule_type type);

/* Validate the parameters (DeepSpeed's errors, e.g. warmup_num_steps <= 0) and set the
 * initial lr. base_lr and base_beta1 come from the optimizer. */
zl_status zl_lr_schedule_init(zl_lr_schedule *s, const zl_lr_schedule_params *p, double base_lr,
                              double base_beta1);

/* Advance one optimizer step; returns the lr for the step after it (also in s->lr). */
double zl_lr_schedule_step(zl_lr_schedule *s);

/* DeepSpeed's class name ("WarmupLR", ...) and the reverse lookup (exact names). */
const char *zl_lr_schedule_name(zl_lr_schedule_type type);
zl_status zl_lr_schedule_parse(const char *name, zl_lr_schedule_type *out);

#endif
