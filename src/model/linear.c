/* The Linear layer as two GEMMs and a bias, shared by the block and the head. Outputs
 * are rounded to the model's precision once, after the bias (a GPU's fused epilogue);
 * weight and bias gradients accumulate in f32 and are rounded by the engine when the
 * layer's backward is done (each weight gets one contribution per micro-batch). */
#include "model/gpt_layers.h"

#include "base/log.h"
#include "comm/comm.h"

void zl__linear_forward(const zl_model *m, int l, int kw, float *out, const float *inp, int N,
                        int IC, int OC)
{
    /* (N,IC) @ (OC,IC)^T -> (N,OC) */
    zl__gemm(m, out, inp, zl__weight(m, l, kw), N, OC, IC, IC, IC, OC, false, true, 1.0f, 0.0f);
    m->device->ops->bias_forward(m->device->ops, out, zl__layer_param(m, l, kw + 1), N, OC);
    zl__round(m, out, (size_t)N * OC);
}

void zl__linear_backward(zl_model *m, int l, int kw, float *dinp, const float *dout,
                         const float *inp, int N, int IC, int OC)
{
    /* dinp (N,IC) = dout (N,OC) @ weight (OC,IC) */
    if (dinp) {
        zl__gemm(m, dinp, dout, zl__weight(m, l, kw), N, IC, OC, OC, IC, IC, false, false, 1.0f,
                 0.0f);
        zl__round(m, dinp, (size_t)N * IC);
    }
    /* dweight (OC,IC) += dout^T (OC,N) @ inp (N,IC), or = on a fresh gradient */
    float beta = zl__grad_beta(m, l, kw);
    zl__gemm(m, zl__layer_grad(m, l, kw), dout, zl__f32(inp), OC, IC, N, OC, IC, IC, true, false,
             1.0f, beta);
    m->device->ops->bias_backward(m->device->ops, zl__grad_acc(m, l, kw + 1), dout, N, OC);
}

void zl__tp_allreduce(zl_model *m, float *x, size_t n)
{
    if (m->tp_size <= 1 || m->comm_status != ZL_OK) return;
    zl_status st;
    if (m->dtype == ZL_F32) {
        st = zl_comm_allreduce(m->tp, x, n, ZL_F32, ZL_REDUCE_SUM);
    } else {
        /* the CPU's conversions around the wire: past a simulated clock */
        const zl_ops *cpu = zl_device_backend(m->device);
        ZL_ASSERT(n <= (size_t)m->tp_wire.numel);
        cpu->cast(cpu, m->tp_wire.data, m->dtype, x, ZL_F32, n);
        st = zl_comm_allreduce(m->tp, m->tp_wire.data, n, m->dtype, ZL_REDUCE_SUM);
        cpu->cast(cpu, x, ZL_F32, m->tp_wire.data, m->dtype, n);
    }
    if (st != ZL_OK) m->comm_status = st;
}
