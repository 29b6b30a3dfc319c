/* LayerNorm over the last dimension, as torch.nn.LayerNorm (eps 1e-5, biased variance).
 *
 * Per row x (C) of inp (N,C):
 *   mean = sum(x) / C
 *   var  = sum((x - mean)^2) / C           (biased: divide by C, not C-1)
 *   rstd = 1 / sqrt(var + eps)
 *   norm = (x - mean) * rstd
 *   out  = norm * weight + bias            weight, bias (C)
 * mean (N) and rstd (N) are saved for backward.
 *
 * Backward, with g = dout * weight (per row):
 *   dbias   += dout
 *   dweight += dout * norm
 *   dinp    += rstd * (g - mean(g) - norm * mean(g * norm))
 * The two means come from differentiating through mean and rstd, which both depend on
 * every x_i of the row. */
#include <math.h>

#include "backends/ref/ref.h"

#define LAYERNORM_EPS 1e-5f

void zl__ref_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                               const float *inp, const float *weight, const float *bias, int N,
                               int C)
{
    for (int row = 0; row < N; row++) {
        const float *x = inp + (size_t)row * C;
        float *y = out + (size_t)row * C;

        float m = 0.0f;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;

        float var = 0.0f;
        for (int i = 0; i < C; i++) var += (x[i] - m) * (x[i] - m);
        var /= C;

        float s = 1.0f / sqrtf(var + LAYERNORM_EPS);
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[row] = m;
        rstd[row] = s;
    }
}

void zl__ref_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                const float *mean, const float *rstd, int N, int C)
{
    for (int row = 0; row < N; row++) {
        const float *x = inp + (size_t)row * C;
        const float *dy = dout + (size_t)row * C;
        float *dx = dinp + (size_t)row * C;
        float m = mean[row], s = rstd[row];

        /* the two row means of the dinp formula */
        float g_mean = 0.0f, g_norm_mean = 0.0f;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s;
            float g = dy[i] * weight[i];
            g_mean += g;
            g_norm_mean += g * norm;
        }
        g_mean /= C;
        g_norm_mean /= C;

        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s;
            float g = dy[i] * weight[i];
            dbias[i] += dy[i];
            dweight[i] += dy[i] * norm;
            dx[i] += s * (g - g_mean - norm * g_norm_mean);
        }
    }
}
