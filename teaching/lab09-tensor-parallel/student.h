/* Lab 09: the functions you write (student.c). Read README.md first.
 *
 * Megatron-LM's tensor-parallel linear layers on plain float arrays, row-major, on the
 * ranks of a tensor-parallel group (every rank calls every function, collectively). A
 * Linear layer is y = x W^T + b with W of shape (out, in), as PyTorch's nn.Linear. Every
 * function OVERWRITES its outputs and returns 0. Use tp->ops->gemm (backends/ops.h) or
 * plain loops, and tp_allreduce for every sum over the group: the card counts its calls. */
#ifndef LAB09_STUDENT_H
#define LAB09_STUDENT_H

#include <stddef.h>

#include "lab.h"

typedef struct lab09_tp {
    zl_comm *comm;     /* the tensor-parallel group */
    const zl_ops *ops; /* the library's kernels: gemm, gelu_forward, ... */
    int rank, size;
    long allreduces;   /* tp_allreduce calls so far */
} lab09_tp;

/* Given by the lab (lab.c): sum buf[0..n) over the group, in place (every rank gets the
 * sum), and count the call. */
void tp_allreduce(lab09_tp *tp, float *buf, size_t n);

/* Given by the lab: how n rows (or columns) are split over the group: rank r gets
 * [*begin, *begin + *count); the first n % size ranks get one more (uneven splits are
 * allowed). */
void tp_split(int n, int size, int rank, int *begin, int *count);

/* Task 1. Column-parallel linear (Megatron's ColumnParallelLinear): this rank holds the
 * rows of W for its slice of the outputs.
 *   forward:  x (B, in) the whole input, the same on every rank; w (out_local, in);
 *             b (out_local)  ->  y (B, out_local) = x w^T + b. No communication.
 *   backward: dy (B, out_local)  ->  dw (out_local, in), db (out_local), and
 *             dx (B, in) = the sum over the ranks of dy w: Megatron's `f` operator
 *             (identity forward, allreduce backward). */
int column_forward(lab09_tp *tp, float *y, const float *x, const float *w, const float *b,
                   int B, int in, int out_local);
int column_backward(lab09_tp *tp, float *dx, float *dw, float *db, const float *dy,
                    const float *x, const float *w, int B, int in, int out_local);

/* Task 2. Row-parallel linear (RowParallelLinear): this rank holds the columns of W for
 * its slice of the input features, and that slice of the input.
 *   forward:  x (B, in_local); w (out, in_local); b (out), the whole bias
 *             ->  y (B, out) = sum over the ranks of x w^T, plus b once: Megatron's `g`
 *             (allreduce forward, identity backward).
 *   backward: dy (B, out), the same on every rank  ->  dx (B, in_local), dw (out, in_local),
 *             db (out). No communication. */
int row_forward(lab09_tp *tp, float *y, const float *x, const float *w, const float *b,
                int B, int in_local, int out);
int row_backward(lab09_tp *tp, float *dx, float *dw, float *db, const float *dy,
                 const float *x, const float *w, int B, int in_local, int out);

/* Task 3. The transformer's MLP, Megatron style: column-parallel fc (C -> H, this rank's
 * H_local units), GELU (tanh approximation: tp->ops->gelu_forward), row-parallel proj
 * (H -> C). w1 (H_local, C), b1 (H_local), w2 (C, H_local), b2 (C).
 * x (B, C) whole  ->  h (B, H_local) before GELU, a (B, H_local) after, y (B, C) whole.
 * Exactly one allreduce. */
int mlp_forward(lab09_tp *tp, float *y, float *h, float *a, const float *x, const float *w1,
                const float *b1, const float *w2, const float *b2, int B, int C, int H_local);

#endif
