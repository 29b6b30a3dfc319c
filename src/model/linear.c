/* The Linear layer as two GEMMs and a bias, shared by the block and the head. Outputs
 * are rounded to the model's precision once, after the bias (a GPU's fused epilogue);
 * weight and bias gradients accumulate in f32 and are rounded by the engine when the
 * layer's backward is done (each weight gets one contribution per micro-batch). */
#include "model/gpt_layers.h"

#include "base/log.h"
#include "comm/comm.h"
#include "core/vec.h"

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

void zl__sp_allgather(zl_model *m, float *full, const float *rows)
{
    if (m->comm_status != ZL_OK) return;
    size_t chunk = zl_model_stream_numel(m), r0 = (size_t)m->tp_rank * chunk;
    zl_status st;
    if (m->dtype == ZL_F32) {
        st = zl_comm_allgather(m->tp, full, rows, chunk, ZL_F32);
    } else { /* in place in the wire buffer: this rank's chunk first */
        const zl_ops *cpu = zl_device_backend(m->device);
        void *wire = m->tp_wire.data;
        cpu->cast(cpu, zl__at(wire, m->dtype, r0), m->dtype, rows, ZL_F32, chunk);
        st = zl_comm_allgather(m->tp, wire, zl__at(wire, m->dtype, r0), chunk, m->dtype);
        cpu->cast(cpu, full, ZL_F32, wire, m->dtype, chunk * (size_t)m->tp_size);
    }
    if (st != ZL_OK) m->comm_status = st;
}

void zl__sp_reduce_scatter(zl_model *m, float *rows, float *full)
{
    if (m->comm_status != ZL_OK) return;
    size_t chunk = zl_model_stream_numel(m), r0 = (size_t)m->tp_rank * chunk;
    zl_status st;
    if (m->dtype == ZL_F32) {
        st = zl_comm_reduce_scatter(m->tp, full + r0, full, chunk, ZL_F32, ZL_REDUCE_SUM);
        if (st == ZL_OK) m->device->ops->copy(m->device->ops, rows, full + r0, chunk * sizeof(float));
    } else {
        const zl_ops *cpu = zl_device_backend(m->device);
        void *wire = m->tp_wire.data;
        cpu->cast(cpu, wire, m->dtype, full, ZL_F32, chunk * (size_t)m->tp_size);
        st = zl_comm_reduce_scatter(m->tp, zl__at(wire, m->dtype, r0), wire, chunk, m->dtype,
                                    ZL_REDUCE_SUM);
        cpu->cast(cpu, rows, ZL_F32, zl__at(wire, m->dtype, r0), m->dtype, chunk);
    }
    if (st != ZL_OK) m->comm_status = st;
}
