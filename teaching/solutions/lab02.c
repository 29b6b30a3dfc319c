/* Lab 02's reference solution: backward by hand. */
#include "lab.h"
#include "../lab02-backward/student.h"

int layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                       const float *x, const float *gamma, const float *mean, const float *rstd,
                       int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        /* y = xhat * gamma + beta: dL/dxhat = g = dout * gamma. xhat = (x - mean) * rstd,
         * and mean and rstd depend on every x of the row; the chain rule through both
         * gives dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
        float g_mean = 0, gx_mean = 0;
        for (int i = 0; i < C; i++) {
            float xhat = (xr[i] - m) * s, g = dy[i] * gamma[i];
            g_mean += g;
            gx_mean += g * xhat;
        }
        g_mean /= C;
        gx_mean /= C;
        for (int i = 0; i < C; i++) {
            float xhat = (xr[i] - m) * s, g = dy[i] * gamma[i];
            dbeta[i] += dy[i];
            dgamma[i] += dy[i] * xhat;
            dxr[i] += s * (g - g_mean - xhat * gx_mean);
        }
    }
    return 0;
}

int linear_backward(float *dx, float *dW, float *db, const float *dout, const float *x,
                    const float *W, int N, int IC, int OC)
{
    /* dx (N,IC) = dout (N,OC) @ W (OC,IC) */
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) {
            float acc = 0;
            for (int o = 0; o < OC; o++) acc += dout[(size_t)n * OC + o] * W[(size_t)o * IC + i];
            dx[(size_t)n * IC + i] = acc;
        }
    /* dW (OC,IC) += dout^T (OC,N) @ x (N,IC); db (OC) += the column sums of dout */
    for (int o = 0; o < OC; o++) {
        for (int i = 0; i < IC; i++) {
            float acc = 0;
            for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + o] * x[(size_t)n * IC + i];
            dW[(size_t)o * IC + i] += acc;
        }
        float acc = 0;
        for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + o];
        db[o] += acc;
    }
    return 0;
}

int central_difference(scalar_fn f, void *ctx, double *x, int i, double h, double *deriv)
{
    double x0 = x[i];
    x[i] = x0 + h;
    double fp = f(ctx, x);
    x[i] = x0 - h;
    double fm = f(ctx, x);
    x[i] = x0;
    *deriv = (fp - fm) / (2 * h);
    return 0;
}
