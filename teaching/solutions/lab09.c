/* Lab 09: the reference solution (what the instructor shows afterwards). */
#include "lab.h"
#include "../lab09-tensor-parallel/student.h"

/* y (B, n) += b on every row */
static void add_bias(float *y, const float *b, int B, int n)
{
    for (int i = 0; i < B; i++)
        for (int j = 0; j < n; j++) y[(size_t)i * n + j] += b[j];
}

/* db (n) = column sums of dy (B, n) */
static void bias_grad(float *db, const float *dy, int B, int n)
{
    for (int j = 0; j < n; j++) db[j] = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < n; j++) db[j] += dy[(size_t)i * n + j];
}

int column_forward(lab09_tp *tp, float *y, const float *x, const float *w, const float *b,
                   int B, int in, int out_local)
{
    /* y (B, out_local) = x (B, in) @ w^T (in, out_local): this rank's outputs, complete. */
    tp->ops->gemm(tp->ops, y, x, w, B, out_local, in, in, in, out_local, false, true, 1.0f, 0.0f);
    add_bias(y, b, B, out_local);
    return 0;
}

int column_backward(lab09_tp *tp, float *dx, float *dw, float *db, const float *dy,
                    const float *x, const float *w, int B, int in, int out_local)
{
    /* dw (out_local, in) = dy^T (out_local, B) @ x (B, in) */
    tp->ops->gemm(tp->ops, dw, dy, x, out_local, in, B, out_local, in, in, true, false, 1.0f, 0.0f);
    bias_grad(db, dy, B, out_local);
    /* dx (B, in) = dy (B, out_local) @ w (out_local, in): the part of the input gradient
     * that flows through this rank's outputs; every input feeds every output, so the
     * whole gradient is the sum over the ranks (f's backward). */
    tp->ops->gemm(tp->ops, dx, dy, w, B, in, out_local, out_local, in, in, false, false, 1.0f, 0.0f);
    tp_allreduce(tp, dx, (size_t)B * in);
    return 0;
}

int row_forward(lab09_tp *tp, float *y, const float *x, const float *w, const float *b,
                int B, int in_local, int out)
{
    /* Partial sums over this rank's input features, completed by g's allreduce; the bias
     * is added after it, once (adding it before would count it `size` times). */
    tp->ops->gemm(tp->ops, y, x, w, B, out, in_local, in_local, in_local, out, false, true, 1.0f, 0.0f);
    tp_allreduce(tp, y, (size_t)B * out);
    add_bias(y, b, B, out);
    return 0;
}

int row_backward(lab09_tp *tp, float *dx, float *dw, float *db, const float *dy,
                 const float *x, const float *w, int B, int in_local, int out)
{
    /* dx (B, in_local) = dy (B, out) @ w (out, in_local): exactly this rank's slice. */
    tp->ops->gemm(tp->ops, dx, dy, w, B, in_local, out, out, in_local, in_local, false, false, 1.0f, 0.0f);
    /* dw (out, in_local) = dy^T @ x */
    tp->ops->gemm(tp->ops, dw, dy, x, out, in_local, B, out, in_local, in_local, true, false, 1.0f, 0.0f);
    bias_grad(db, dy, B, out); /* the whole bias's gradient, the same on every rank */
    return 0;
}

int mlp_forward(lab09_tp *tp, float *y, float *h, float *a, const float *x, const float *w1,
                const float *b1, const float *w2, const float *b2, int B, int C, int H_local)
{
    /* Column then row: the GELU between them is elementwise on this rank's units, so the
     * two splits meet without communication; only the row layer's sum needs one. */
    column_forward(tp, h, x, w1, b1, B, C, H_local);
    tp->ops->gelu_forward(tp->ops, a, h, (size_t)B * H_local);
    row_forward(tp, y, a, w2, b2, B, H_local, C);
    return 0;
}
