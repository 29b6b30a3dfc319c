/* The Linear layer as two GEMMs and a bias, shared by the block and the head. */
#include "model/gpt_layers.h"

void zl__linear_forward(const zl_ops *ops, float *out, const float *inp, const float *weight,
                        const float *bias, int N, int IC, int OC)
{
    /* (N,IC) @ (OC,IC)^T -> (N,OC) */
    ops->gemm(out, inp, weight, N, OC, IC, IC, IC, OC, false, true, 1.0f, 0.0f);
    if (bias) ops->bias_forward(out, bias, N, OC);
}

void zl__linear_backward(const zl_ops *ops, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight, int N, int IC,
                         int OC)
{
    /* dinp (N,IC) = dout (N,OC) @ weight (OC,IC) */
    if (dinp) ops->gemm(dinp, dout, weight, N, IC, OC, OC, IC, IC, false, false, 1.0f, 0.0f);
    /* dweight (OC,IC) += dout^T (OC,N) @ inp (N,IC) */
    ops->gemm(dweight, dout, inp, OC, IC, N, OC, IC, IC, true, false, 1.0f, 1.0f);
    if (dbias) ops->bias_backward(dbias, dout, N, OC);
}
