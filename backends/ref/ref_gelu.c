/* GELU, tanh approximation (GPT-2's gelu_new; torch.nn.GELU(approximate="tanh")).
 *
 *   u        = s * (x + 0.044715 x^3),   s = sqrt(2/pi)
 *   gelu(x)  = 0.5 x (1 + tanh(u))
 *   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) * s * (1 + 3 * 0.044715 x^2)
 *
 * 1 - tanh^2 is sech^2 written so that it cannot overflow (cosh(u) is inf for |u| > 89).
 * Element-wise over n values; backward accumulates dinp += gelu'(inp) * dout. */
#include <math.h>

#include "backends/ref/ref.h"

/* sqrt(2/pi); M_PI is not in strict C11 */
#define GELU_SCALING_FACTOR 0.7978845608028654f
#define GELU_CUBIC 0.044715f

void zl__ref_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + GELU_CUBIC * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanhf(u));
    }
}

void zl__ref_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + GELU_CUBIC * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float du_dx = GELU_SCALING_FACTOR * (1.0f + 3.0f * GELU_CUBIC * x * x);
        float local_grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * du_dx;
        dinp[i] += local_grad * dout[i];
    }
}
