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

#include "base/status.h"
#include "config/optim_settings.h" /* zl_lr_schedule_params */

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

#endif
