/* DeepSpeed's optimizer and LR-scheduler settings: defaults and scheduler names (see
 * optim_settings.h). The optimizer's: FusedAdam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
 * weight_decay=0, bias_correction=True, adam_w_mode=True); "Adam" and "AdamW" share them. */
#include "config/optim_settings.h"

#include <math.h>
#include <string.h>

void zl_optimizer_params_default(zl_optimizer_params *p, zl_optimizer_type type)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    p->lr = 1e-3;
    p->beta1 = 0.9;
    p->beta2 = 0.999;
    p->eps = 1e-8;
    p->weight_decay = 0.0;
    p->bias_correction = true;
    p->adam_w_mode = true;
}

static const struct {
    zl_lr_schedule_type type;
    const char *name;
} schedule_names[] = {
    {ZL_LR_CONSTANT, "constant"},
    {ZL_LR_WARMUP, "WarmupLR"},
    {ZL_LR_WARMUP_DECAY, "WarmupDecayLR"},
    {ZL_LR_WARMUP_COSINE, "WarmupCosineLR"},
    {ZL_LR_ONE_CYCLE, "OneCycle"},
    {ZL_LR_RANGE_TEST, "LRRangeTest"},
};
#define NUM_SCHEDULES (sizeof schedule_names / sizeof schedule_names[0])

const char *zl_lr_schedule_name(zl_lr_schedule_type type)
{
    for (size_t i = 0; i < NUM_SCHEDULES; i++)
        if (schedule_names[i].type == type) return schedule_names[i].name;
    return "unknown";
}

/* torch.optim.lr_scheduler's classes: DeepSpeed falls back to them by name, zerolab
 * does not have them, and says so rather than "not recognized". */
static const char *const torch_schedulers[] = {
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "ChainedScheduler",
    "ReduceLROnPlateau", "CyclicLR", "CosineAnnealingWarmRestarts", "OneCycleLR",
    "PolynomialLR",
};

static bool same_ignoring_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb) return false;
    }
    return *a == *b;
}

zl_status zl_lr_schedule_parse(const char *name, zl_lr_schedule_type *out)
{
    /* "constant" is zerolab's name for "no scheduler block"; a config cannot ask for it,
     * just as DeepSpeed has no scheduler class of that name. */
    for (size_t i = 1; i < NUM_SCHEDULES; i++) {
        if (strcmp(name, schedule_names[i].name) == 0) {
            *out = schedule_names[i].type;
            return ZL_OK;
        }
    }
    for (size_t i = 0; i < sizeof torch_schedulers / sizeof torch_schedulers[0]; i++) {
        if (strcmp(name, torch_schedulers[i]) == 0)
            return zl_errorf(ZL_ERR_UNSUPPORTED,
                             "LR scheduler '%s' is torch.optim.lr_scheduler.%s, which DeepSpeed "
                             "accepts but zerolab does not implement; use one of DeepSpeed's "
                             "own: WarmupLR, WarmupDecayLR, WarmupCosineLR, OneCycle, LRRangeTest",
                             name, name);
    }
    for (size_t i = 1; i < NUM_SCHEDULES; i++) {
        if (same_ignoring_case(name, schedule_names[i].name))
            return zl_errorf(ZL_ERR_CONFIG,
                             "DeepSpeed does not recognize LR scheduler '%s' (did you mean "
                             "'%s'? names are case-sensitive)",
                             name, schedule_names[i].name);
    }
    return zl_errorf(ZL_ERR_CONFIG,
                     "DeepSpeed does not recognize LR scheduler '%s' (zerolab supports "
                     "WarmupLR, WarmupDecayLR, WarmupCosineLR, OneCycle and LRRangeTest)",
                     name);
}

void zl_lr_schedule_params_default(zl_lr_schedule_params *p, zl_lr_schedule_type type)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    p->warmup_min_lr = 0.0;
    p->warmup_max_lr = 0.001;
    p->warmup_max_lr_given = false;
    p->warmup_num_steps = 1000;
    p->warmup_type = ZL_WARMUP_LOG;
    p->total_num_steps = -1; /* required by WarmupDecayLR and WarmupCosineLR: -1 = not given */
    p->warmup_min_ratio = 0.0;
    p->cos_min_ratio = 1e-4;
    p->cycle_min_lr = NAN; /* required by OneCycle: NaN = not given */
    p->cycle_max_lr = NAN;
    p->decay_lr_rate = 0.0;
    p->cycle_first_step_size = 2000;
    p->cycle_second_step_size = -1;
    p->cycle_first_stair_count = 0;
    p->cycle_second_stair_count = -1;
    p->decay_step_size = 0;
    p->cycle_momentum = true;
    p->cycle_min_mom = 0.8;
    p->cycle_max_mom = 0.9;
    p->decay_mom_rate = 0.0;
    p->lr_range_test_min_lr = 1e-3;
    p->lr_range_test_step_size = 2000;
    p->lr_range_test_step_rate = 1.0;
    p->lr_range_test_staircase = false;
}
