/* One Adam / AdamW step, element-wise over n values (arguments: zl_adamw_args in ops.h).
 *
 *   g     = grad * grad_scale                       unscale (1/loss_scale) and clip at once
 *   g    += wd * p                                  classic Adam only (L2 in the gradient)
 *   m     = beta1 * m + (1 - beta1) * g
 *   v     = beta2 * v + (1 - beta2) * g^2
 *   mhat  = m / bias_correction1,  vhat = v / bias_correction2   (1 - beta^t, or 1 if off)
 *   p    -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)            wd * p for AdamW only
 *
 * adamw_mode is torch.optim.AdamW (decoupled decay, p *= 1 - lr*wd, which is the same as
 * the lr*wd*p term above since both use p before the step); !adamw_mode is
 * torch.optim.Adam(weight_decay=wd). This is also DeepSpeed's FusedAdam (ADAM_MODE_1 /
 * ADAM_MODE_0 in multi_tensor_adam.cu, computed in this very form) and DeepSpeedCPUAdam,
 * which writes the same math as p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps). */
#include <math.h>

#include "backends/ref/ref.h"

void zl__ref_adamw(const zl_ops *self, float *param, float *m, float *v, const float *grad,
                   size_t n, const zl_adamw_args *args)
{
    float lr = args->lr, b1 = args->beta1, b2 = args->beta2, eps = args->eps;
    float wd = args->weight_decay;

    for (size_t i = 0; i < n; i++) {
        float p = param[i];
        float g = grad[i] * args->grad_scale;
        if (!args->adamw_mode) g += wd * p;

        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float mhat = m[i] / args->bias_correction1;
        float vhat = v[i] / args->bias_correction2;

        float update = mhat / (sqrtf(vhat) + eps);
        if (args->adamw_mode) update += wd * p;
        param[i] = p - lr * update;
    }
}
