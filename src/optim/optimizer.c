/* DeepSpeed's optimizer defaults: FusedAdam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
 * weight_decay=0, bias_correction=True, adam_w_mode=True). "Adam" and "AdamW" share them;
 * for "Adam" the effective mode stays AdamW unless the config says adam_w_mode: false. */
#include "optim/optimizer.h"

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
