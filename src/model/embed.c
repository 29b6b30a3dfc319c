/* The embedding layer: token embedding (wte) plus learned position embedding (wpe).
 *   out (B,T,C) = wte[tokens] + wpe[0..T)
 * wte is tied: the head reuses it as its output projection, and its gradient collects
 * from both places. */
#include "model/gpt_layers.h"

static const float *embed_forward(zl_model *m, int l, const float *inp)
{
    (void)inp;
    float *out = zl__layer_acts(m, l); /* (B,T,C) */
    const int32_t *tokens = zl_model_slot(m)->inputs; /* (B,T) */
    m->device->ops->embedding_forward(m->device->ops, out, tokens, zl__layer_param(m, l, EMBED_WTE),
                                      zl__layer_param(m, l, EMBED_WPE), m->B, m->T,
                                      m->cfg.channels);
    zl__round(m, out, (size_t)m->B * m->T * m->cfg.channels);
    return out;
}

static void embed_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    (void)inp;
    (void)dinp;
    const int32_t *tokens = zl_model_slot(m)->inputs; /* (B,T) */
    m->device->ops->embedding_backward(m->device->ops, zl__grad_acc(m, l, EMBED_WTE),
                                       zl__grad_acc(m, l, EMBED_WPE), dout, tokens, m->B,
                                       m->T, m->cfg.channels);
}

/* A lookup is not arithmetic; the add of the position embedding is B*T*C. */
static double embed_flops(const zl_model *m, int l, int B, int T)
{
    return (double)B * T * m->cfg.channels;
}

static size_t embed_act_numel(const zl_model *m, int l, int B, int T)
{
    return zl_sat_mul((size_t)B * T, (size_t)m->cfg.channels);
}

static size_t embed_scratch_numel(const zl_model *m, int l, int B, int T) { return 0; }

const zl_layer_vtable zl_embed_layer = {
    .forward = embed_forward,
    .backward = embed_backward,
    .flops = embed_flops,
    .act_numel = embed_act_numel,
    .scratch_numel = embed_scratch_numel,
};
