/* The settings of DeepSpeed's "optimizer" and "scheduler" blocks, as data: what the config
 * reader (config/config.h) resolves and the optimizer (optim/adamw.h) and the LR schedules
 * (optim/lr_schedule.h) run. They live with the reader, on the floor below optim, so that
 * reading a config needs nothing that trains.
 *
 * DeepSpeed maps "Adam" and "AdamW" to one fused kernel whose behaviour is chosen by
 * adam_w_mode: the effective mode is AdamW when type is "AdamW" or adam_w_mode is true
 * (its default), so a config that says "Adam" trains with decoupled weight decay unless
 * it also says "adam_w_mode": false. */
#ifndef ZL_CONFIG_OPTIM_SETTINGS_H
#define ZL_CONFIG_OPTIM_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

typedef enum zl_optimizer_type {
    ZL_OPTIMIZER_ADAM,  /* "Adam" (DeepSpeed: FusedAdam; AdamW unless adam_w_mode=false) */
    ZL_OPTIMIZER_ADAMW, /* "AdamW" */
} zl_optimizer_type;

typedef struct zl_optimizer_params {
    zl_optimizer_type type;
    double lr;           /* 1e-3 */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 (FusedAdam's default, not torch.optim.AdamW's 0.01) */
    bool bias_correction; /* true */
    bool adam_w_mode;     /* effective mode after DeepSpeed's rule above */
} zl_optimizer_params;

/* DeepSpeed's defaults for `type`. */
void zl_optimizer_params_default(zl_optimizer_params *p, zl_optimizer_type type);

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

/* The parameters' defaults for `type` (all fields set). */
void zl_lr_schedule_params_default(zl_lr_schedule_params *p, zl_lr_schedule_type type);

/* DeepSpeed's class name ("WarmupLR", ...; "constant" for ZL_LR_CONSTANT) and the reverse
 * lookup of the five class names (exact, case-sensitive, as DeepSpeed's getattr is).
 * Unknown names: ZL_ERR_CONFIG ("DeepSpeed does not recognize LR scheduler 'x'", with a
 * "did you mean" for a case slip); torch.optim.lr_scheduler names: ZL_ERR_UNSUPPORTED. */
const char *zl_lr_schedule_name(zl_lr_schedule_type type);
zl_status zl_lr_schedule_parse(const char *name, zl_lr_schedule_type *out);

#endif
