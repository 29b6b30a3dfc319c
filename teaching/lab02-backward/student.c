/* Lab 02: backward by hand. Write the three functions (student.h has the contracts,
 * README.md the derivations to start from), then run `make lab02-check`. */
#include "lab.h"
#include "student.h"

int layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                       const float *x, const float *gamma, const float *mean, const float *rstd,
                       int N, int C)
{
    /* Hints: row by row. Recompute xhat from x, mean and rstd. dbeta and dgamma are sums
     * over the rows. For dx, with g = dout * gamma, differentiate through mean and rstd
     * too (both depend on every x of the row): you should end with two row means, of g
     * and of g * xhat. Add (+=) into all three outputs. */
    (void)dx, (void)dgamma, (void)dbeta, (void)dout, (void)x, (void)gamma, (void)mean;
    (void)rstd, (void)N, (void)C;
    LAB_TODO();
}

int linear_backward(float *dx, float *dW, float *db, const float *dout, const float *x,
                    const float *W, int N, int IC, int OC)
{
    /* Hints: y[n][o] = sum_i x[n][i] W[o][i] + b[o]. Which indices does dL/dx[n][i] sum
     * over, and dL/dW[o][i]? Check the shapes: dx = dout @ W, dW = dout^T @ x. Plain loops
     * are fine; mind which outputs are overwritten and which accumulate. */
    (void)dx, (void)dW, (void)db, (void)dout, (void)x, (void)W, (void)N, (void)IC, (void)OC;
    LAB_TODO();
}

int central_difference(scalar_fn f, void *ctx, double *x, int i, double h, double *deriv)
{
    /* Hints: save x[i], evaluate f at x[i] + h and at x[i] - h, put x[i] back. The central
     * difference's error is O(h^2); the one-sided (f(x+h) - f(x))/h's is O(h). */
    (void)f, (void)ctx, (void)x, (void)i, (void)h, (void)deriv;
    LAB_TODO();
}
