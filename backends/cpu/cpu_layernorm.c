/* LayerNorm over the last dimension (torch.nn.LayerNorm: eps 1e-5, biased variance); the
 * formulas are in backends/ref/ref_layernorm.c.
 *
 * Forward: one row per task. The row (C floats, 3 KiB for GPT-2 small) is read from memory
 * once; the mean, the variance (two-pass, about the mean, which is exact enough where the
 * one-pass E[x^2] - mean^2 cancels) and the output then run over it in L1.
 *
 * Backward has a row part (dinp needs two means over its own row) and a column part
 * (dweight, dbias sum over all rows). Rows are split between threads for the first, then
 * columns for the second, in one parallel region; the second pass re-reads inp and dout,
 * which the first pass has just brought into cache. */
#include <math.h>

#include "backends/cpu/cpu.h"

#define LAYERNORM_EPS 1e-5f

ZL_CPU_VECTOR static void forward_row(float *out, float *mean, float *rstd, const float *x,
                                      const float *weight, const float *bias, int C)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < C; i++) sum += x[i];
    float m = sum / C;

    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int i = 0; i < C; i++) var += (x[i] - m) * (x[i] - m);
    var /= C;

    float s = 1.0f / sqrtf(var + LAYERNORM_EPS);
#pragma omp simd
    for (int i = 0; i < C; i++) out[i] = (x[i] - m) * s * weight[i] + bias[i];
    *mean = m;
    *rstd = s;
}

void zl__cpu_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                               const float *inp, const float *weight, const float *bias, int N,
                               int C)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C >= ZL_CPU_PAR_MIN)
    for (int row = 0; row < N; row++)
        forward_row(out + (size_t)row * C, mean + row, rstd + row, inp + (size_t)row * C, weight,
                    bias, C);
}

/* dinp += rstd * (g - mean(g) - norm * mean(g * norm)), g = dout * weight */
ZL_CPU_VECTOR static void backward_row(float *dx, const float *dy, const float *x,
                                       const float *weight, float m, float s, int C)
{
    float g_mean = 0.0f, g_norm_mean = 0.0f;
#pragma omp simd reduction(+ : g_mean, g_norm_mean)
    for (int i = 0; i < C; i++) {
        float norm = (x[i] - m) * s;
        float g = dy[i] * weight[i];
        g_mean += g;
        g_norm_mean += g * norm;
    }
    g_mean /= C;
    g_norm_mean /= C;
#pragma omp simd
    for (int i = 0; i < C; i++) {
        float norm = (x[i] - m) * s;
        float g = dy[i] * weight[i];
        dx[i] += s * (g - g_mean - norm * g_norm_mean);
    }
}

/* dweight[c0..c1) += sum_rows dout * norm; dbias[c0..c1) += sum_rows dout */
ZL_CPU_VECTOR static void backward_cols(float *dweight, float *dbias, const float *dout,
                                        const float *inp, const float *mean, const float *rstd,
                                        int N, int C, int c0, int c1)
{
    for (int row = 0; row < N; row++) {
        const float *x = inp + (size_t)row * C, *dy = dout + (size_t)row * C;
        float m = mean[row], s = rstd[row];
#pragma omp simd
        for (int i = c0; i < c1; i++) {
            dbias[i] += dy[i];
            dweight[i] += dy[i] * ((x[i] - m) * s);
        }
    }
}

void zl__cpu_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                const float *mean, const float *rstd, int N, int C)
{
#pragma omp parallel if ((size_t)N * C >= ZL_CPU_PAR_MIN)
    {
#pragma omp for schedule(static) nowait
        for (int row = 0; row < N; row++)
            backward_row(dinp + (size_t)row * C, dout + (size_t)row * C, inp + (size_t)row * C,
                         weight, mean[row], rstd[row], C);
        /* no barrier: the two parts write different arrays and read only inputs */
        int c0, c1;
        zl__cpu_thread_cols(C, &c0, &c1);
        if (c0 < c1) backward_cols(dweight, dbias, dout, inp, mean, rstd, N, C, c0, c1);
    }
}
