/* Internal to src/model: parameter order inside a GPT-2 block and the helpers the three
 * layer files share. Dimension glossary: B batch, T sequence, C channels, NH heads,
 * V vocabulary, N = B*T. The element counts (act_numel, scratch_numel) saturate at
 * SIZE_MAX (base/checked.h): zl_model_alloc_activations refuses a shape that reaches it. */
#ifndef ZL_MODEL_GPT_LAYERS_H
#define ZL_MODEL_GPT_LAYERS_H

#include "base/checked.h"
#include "model/model.h"

/* Parameters of each layer, in table order. */
enum { EMBED_WTE, EMBED_WPE, EMBED_NUM_PARAMS };
enum {
    BLOCK_LN1_W, BLOCK_LN1_B,
    BLOCK_QKV_W, BLOCK_QKV_B,       /* (3C, C), (3C) */
    BLOCK_ATTPROJ_W, BLOCK_ATTPROJ_B, /* (C, C), (C) */
    BLOCK_LN2_W, BLOCK_LN2_B,
    BLOCK_FC_W, BLOCK_FC_B,         /* (4C, C), (4C) */
    BLOCK_FCPROJ_W, BLOCK_FCPROJ_B, /* (C, 4C), (C) */
    BLOCK_NUM_PARAMS
};
enum { HEAD_LNF_W, HEAD_LNF_B, HEAD_NUM_PARAMS };

/* The k-th parameter of layer l, and its gradient. */
static inline float *zl__layer_param(const zl_model *m, int l, int k)
{
    return m->param_ptr[m->layers[l].first_param + k];
}
static inline float *zl__layer_grad(const zl_model *m, int l, int k)
{
    return m->grad_ptr[m->layers[l].first_param + k];
}

/* The beta of the GEMM that adds a product into gradient k of layer l: 0 when the
 * gradient is fresh (zl_model_mark_grads_fresh), so the product overwrites what is dead
 * and nobody zeroes the buffer first (a weight gradient is most of the model's bytes). */
static inline float zl__grad_beta(zl_model *m, int l, int k)
{
    int i = m->layers[l].first_param + k;
    if (!m->grad_fresh[i]) return 1.0f;
    m->grad_fresh[i] = false;
    return 0.0f;
}

/* Gradient k of layer l for a kernel that adds (+=) into it: zeroed first if fresh. */
static inline float *zl__grad_acc(zl_model *m, int l, int k)
{
    zl_model_settle_grad(m, m->layers[l].first_param + k);
    return zl__layer_grad(m, l, k);
}

/* Where layer l computes its saved activations in the current slot, as f32: its own buffer in f32, the shared
 * work buffer in 16 bits (the engine stores and widens them around the layer). The
 * statistics are always the layer's own f32 tensor. */
static inline float *zl__layer_acts(zl_model *m, int l)
{
    return zl_tensor_f32(m->dtype == ZL_F32 ? &zl_model_slot(m)->layers[l].acts : &m->act_work);
}
static inline float *zl__layer_stats(zl_model *m, int l)
{
    return zl_tensor_f32(&zl_model_slot(m)->layers[l].stats);
}

/* Round a tensor a layer just wrote to the model's storage precision (no-op in f32). */
static inline void zl__round(const zl_model *m, float *x, size_t n)
{
    if (m->dtype != ZL_F32) m->device->ops->round(m->device->ops, x, m->dtype, n);
}

/* A GEMM's B operand: f32 values, or a weight as the model stores it (16 bits). */
typedef struct zl__operand {
    const void *p;
    zl_dtype t;
} zl__operand;

static inline zl__operand zl__f32(const float *p) { return (zl__operand){p, ZL_F32}; }

/* Parameter k of layer l as a B operand: its stored 16-bit values where the precision
 * policy bound them (zl_model_bind_layer_params16), so no widened copy is made or read;
 * else its f32 values. */
static inline zl__operand zl__weight(const zl_model *m, int l, int k)
{
    int i = m->layers[l].first_param + k;
    return m->param16_ptr[i] ? (zl__operand){m->param16_ptr[i], m->dtype}
                             : zl__f32(m->param_ptr[i]);
}

/* C = alpha op(A) op(B) + beta C on the model's precision: gemm_lp (16-bit operands,
 * f32 accumulation), which is plain gemm in f32. The caller rounds C. */
static inline void zl__gemm(const zl_model *m, float *c, const float *a, zl__operand b, int M,
                            int N, int K, int lda, int ldb, int ldc, bool ta, bool tb, float alpha,
                            float beta)
{
    const zl_ops *ops = m->device->ops;
    if (m->dtype == ZL_F32)
        ops->gemm(ops, c, a, b.p, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta);
    else
        ops->gemm_lp(ops, c, a, b.p, b.t, m->dtype, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta);
}

/* out (N,OC) = inp (N,IC) @ weight^T (OC,IC) + bias (OC): the Linear layer whose weight is
 * parameter kw of layer l and whose bias is kw + 1, weight stored (out, in) as
 * torch.nn.Linear does. */
void zl__linear_forward(const zl_model *m, int l, int kw, float *out, const float *inp, int N,
                        int IC, int OC);
/* The Linear layer whose weight is parameter kw of layer l and whose bias is kw + 1:
 * dinp (N,IC) = dout @ weight (overwritten, skipped if NULL); dweight (OC,IC) +=
 * dout^T @ inp; dbias (OC) += column sums of dout (both overwrite fresh gradients). */
void zl__linear_backward(zl_model *m, int l, int kw, float *dinp, const float *dout,
                         const float *inp, int N, int IC, int OC);

/* The residual stream's rows a layer works on at (B, T): B*T, or this rank's share of
 * them under sequence parallelism (model.h, seq_parallel). */
static inline size_t zl__rows(const zl_model *m, int B, int T)
{
    return m->seq_parallel ? (size_t)B * T / (size_t)m->tp_size : (size_t)B * T;
}

/* Sequence parallelism's collectives over the tensor-parallel group, in place of g and f:
 * full (N,C) gathered from every rank's rows (R,C) of the stream, rank order; and rows
 * (R,C) = this rank's rows of the sum over the group of full (N,C) (partial sums), which
 * it overwrites. In 16 bits the values travel in the model's dtype. A failure is kept in
 * m->comm_status. */
void zl__sp_allgather(zl_model *m, float *full, const float *rows);
void zl__sp_reduce_scatter(zl_model *m, float *rows, float *full);

/* Megatron-LM's g (forward, after a row-parallel layer) and f (backward, before a
 * column-parallel one): x (n floats) summed over the tensor-parallel group, in place; in
 * 16 bits the values travel as the model's dtype, as a GPU's would. No-op without a
 * group; a failure is kept in m->comm_status (the engine checks it after the layer). */
void zl__tp_allreduce(zl_model *m, float *x, size_t n);

#endif
