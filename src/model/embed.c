/* The embedding layer: token embedding (wte) plus learned position embedding (wpe).
 *   out (B,T,C) = wte[tokens] + wpe[0..T)
 * wte is tied: the head reuses it as its output projection, and its gradient collects
 * from both places. With sequence parallelism the layer's output is this rank's rows of
 * the stream (model.h): the whole (B,T,C) is looked up (the tables are whole on every
 * rank) and the rows kept; backward scatters the rows' gradient into an otherwise zero
 * (B,T,C), so the tables' gradients are this rank's rows' share, summed over the group
 * at the boundary. */
#include "model/gpt_layers.h"

static const float *embed_forward(zl_model *m, int l, const float *inp)
{
    (void)inp;
    const zl_ops *ops = m->device->ops;
    float *out = zl__layer_acts(m, l); /* (R,C): the stream's rows here */
    float *all = m->seq_parallel ? zl_tensor_f32(&m->tp_full) : out; /* (B,T,C) */
    const int32_t *tokens = zl_model_slot(m)->inputs; /* (B,T) */
    ops->embedding_forward(ops, all, tokens, zl__layer_param(m, l, EMBED_WTE),
                           zl__layer_param(m, l, EMBED_WPE), m->B, m->T, m->cfg.channels);
    if (m->seq_parallel)
        ops->copy(ops, out, all + zl_model_stream_row0(m) * m->cfg.channels,
                  zl_model_stream_numel(m) * sizeof(float));
    zl__round(m, out, zl_model_stream_numel(m));
    return out;
}

static void embed_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    (void)inp;
    (void)dinp;
    const zl_ops *ops = m->device->ops;
    const int32_t *tokens = zl_model_slot(m)->inputs; /* (B,T) */
    if (m->seq_parallel) { /* this rank's rows of an otherwise zero (B,T,C) gradient */
        float *all = zl_tensor_f32(&m->tp_full);
        ops->zero(ops, all, (size_t)m->B * m->T * m->cfg.channels * sizeof(float));
        ops->copy(ops, all + zl_model_stream_row0(m) * m->cfg.channels, dout,
                  zl_model_stream_numel(m) * sizeof(float));
        dout = all;
    }
    ops->embedding_backward(ops, zl__grad_acc(m, l, EMBED_WTE), zl__grad_acc(m, l, EMBED_WPE), dout,
                            tokens, m->B, m->T, m->cfg.channels);
}

/* A lookup is not arithmetic; the add of the position embedding is B*T*C. */
static double embed_flops(const zl_model *m, int l, int B, int T)
{
    return (double)zl__rows(m, B, T) * m->cfg.channels;
}

static size_t embed_act_numel(const zl_model *m, int l, int B, int T)
{
    return zl_sat_mul(zl__rows(m, B, T), (size_t)m->cfg.channels);
}

static size_t embed_scratch_numel(const zl_model *m, int l, int B, int T) { return 0; }

const zl_layer_vtable zl_embed_layer = {
    .forward = embed_forward,
    .backward = embed_backward,
    .flops = embed_flops,
    .act_numel = embed_act_numel,
    .scratch_numel = embed_scratch_numel,
};
