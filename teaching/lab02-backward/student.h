/* Lab 02: backward by hand. The functions you write, in student.c.
 *
 * Arrays are row-major float, shapes in comments. Gradients of parameters ACCUMULATE
 * (+=), as in PyTorch and in zerolab's ops (backends/ops.h): a weight used by several
 * micro-batches, or twice in one model, sums its contributions; the caller zeroes them
 * when a step begins. The lab hands you non-zero starting values to check that you add. */
#ifndef LAB02_STUDENT_H
#define LAB02_STUDENT_H

/* Task 1. LayerNorm backward, over the last dimension of x (N,C), eps 1e-5:
 *   mean = sum_i x_i / C,  rstd = 1/sqrt(sum_i (x_i - mean)^2 / C + eps)
 *   xhat = (x - mean) * rstd,  y = xhat * gamma + beta        gamma, beta (C)
 * Given dout = dL/dy (N,C), x, gamma and the forward's saved mean (N) and rstd (N):
 *   dx (N,C)     += dL/dx
 *   dgamma (C)   += dL/dgamma
 *   dbeta (C)    += dL/dbeta
 * Return 0 (or LAB_NOT_DONE). */
int layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                       const float *x, const float *gamma, const float *mean, const float *rstd,
                       int N, int C);

/* Task 2. The Linear layer as zerolab's model has it (src/model/linear.c, like
 * torch.nn.Linear): y (N,OC) = x (N,IC) @ W^T + b, W (OC,IC), b (OC). Given dout = dL/dy
 * (N,OC), x and W:
 *   dx (N,IC)    = dL/dx        (overwritten: an activation's gradient, used once)
 *   dW (OC,IC)  += dL/dW
 *   db (OC)     += dL/db
 * Return 0. */
int linear_backward(float *dx, float *dW, float *db, const float *dout, const float *x,
                    const float *W, int N, int IC, int OC);

/* A scalar function of a vector, in double: f(ctx, x) with x of the length the caller
 * knows. */
typedef double (*scalar_fn)(void *ctx, const double *x);

/* Task 3. The central finite difference of f along coordinate i with step h:
 *   *deriv = (f(x + h e_i) - f(x - h e_i)) / (2h)
 * x is restored before returning (you may change x[i] while you evaluate f). Return 0. */
int central_difference(scalar_fn f, void *ctx, double *x, int i, double h, double *deriv);

#endif
