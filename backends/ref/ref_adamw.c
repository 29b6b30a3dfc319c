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
 * which writes the same math as p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
 *
 * The gradient is read in its storage type and widened exactly (zl_f16_to_f32 /
 * zl_bf16_to_f32); with param_out, the updated p is also stored there as param_type,
 * rounded as zl_convert rounds (nearest even): the 16-bit parameters of mixed precision,
 * the copy-out that DeepSpeedCPUAdam fuses into its step. */
#include <math.h>

#include "backends/ref/ref.h"
#include "base/log.h"

static float load(const void *x, zl_dtype t, size_t i)
{
    switch (t) {
    case ZL_F16: return zl_f16_to_f32(((const uint16_t *)x)[i]);
    case ZL_BF16: return zl_bf16_to_f32(((const uint16_t *)x)[i]);
    default: return ((const float *)x)[i];
    }
}

static void store(void *x, zl_dtype t, size_t i, float value)
{
    switch (t) {
    case ZL_F16: ((uint16_t *)x)[i] = zl_f32_to_f16(value); break;
    case ZL_BF16: ((uint16_t *)x)[i] = zl_f32_to_bf16(value); break;
    default: ((float *)x)[i] = value; break;
    }
}

void zl__ref_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                   zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                   const zl_adamw_args *args)
{
    ZL_ASSERT(grad_type == ZL_F32 || grad_type == ZL_F16 || grad_type == ZL_BF16);
    ZL_ASSERT(!param_out || param_type == ZL_F32 || param_type == ZL_F16 || param_type == ZL_BF16);
    float lr = args->lr, b1 = args->beta1, b2 = args->beta2, eps = args->eps;
    float wd = args->weight_decay;

    double sq = 0.0;
    for (size_t i = 0; i < n; i++) {
        float p = master[i];
        float g = load(grad, grad_type, i) * args->grad_scale;
        sq += (double)g * g;
        if (!args->adamw_mode) g += wd * p;

        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float mhat = m[i] / args->bias_correction1;
        float vhat = v[i] / args->bias_correction2;

        float update = mhat / (sqrtf(vhat) + eps);
        if (args->adamw_mode) update += wd * p;
        master[i] = p - lr * update;
        if (param_out) store(param_out, param_type, i, master[i]);
    }
    if (args->sumsq) *args->sumsq += sq;
}
