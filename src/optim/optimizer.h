/* Optimizer settings, as DeepSpeed's "optimizer" block resolves them.
 *
 * DeepSpeed maps "Adam" and "AdamW" to one fused kernel whose behaviour is chosen by
 * adam_w_mode: the effective mode is AdamW when type is "AdamW" or adam_w_mode is true
 * (its default), so a config that says "Adam" trains with decoupled weight decay unless
 * it also says "adam_w_mode": false. The config parser fills this struct; the optimizer
 * (optim/adamw.h) runs it. */
#ifndef ZL_OPTIM_OPTIMIZER_H
#define ZL_OPTIM_OPTIMIZER_H

#include <stdbool.h>

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

#endif
