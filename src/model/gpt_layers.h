/* Internal to src/model: parameter order inside a GPT-2 block and the helpers the three
 * layer files share. Dimension glossary: B batch, T sequence, C channels, NH heads,
 * V vocabulary, N = B*T. */
#ifndef ZL_MODEL_GPT_LAYERS_H
#define ZL_MODEL_GPT_LAYERS_H

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

/* out (N,OC) = inp (N,IC) @ weight^T (OC,IC) + bias (OC): a Linear layer, weight stored
 * (out, in) as torch.nn.Linear does. */
void zl__linear_forward(const zl_ops *ops, float *out, const float *inp, const float *weight,
                        const float *bias, int N, int IC, int OC);
/* dinp (N,IC) = dout @ weight (overwritten); dweight (OC,IC) += dout^T @ inp;
 * dbias (OC) += column sums of dout. */
void zl__linear_backward(const zl_ops *ops, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight, int N, int IC,
                         int OC);

#endif
