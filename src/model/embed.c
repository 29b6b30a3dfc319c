/* The embedding layer: token embedding (wte) plus learned position embedding (wpe).
 *   out (B,T,C) = wte[tokens] + wpe[0..T)
 * wte is tied: the head reuses it as its output projection, and its gradient collects
 * from both places.
 *
 * With tensor parallelism wte is split by vocabulary (Megatron-LM's VocabParallelEmbedding):
 * a rank looks up the tokens among its words, zeros for the others, rank 0 adds the
 * positions, and the group's sum is the embedding (allreduced; with sequence parallelism
 * reduce-scattered to the rank's rows of the stream). In backward every rank needs every
 * token's gradient for its words (gathered under sequence parallelism); the position
 * table, which every rank holds whole, gets the whole gradient on each rank, or under
 * sequence parallelism its rows' share, summed over the group at the boundary with the
 * other whole parameters. */
#include "model/gpt_layers.h"

static const float *embed_forward(zl_model *m, int l, const float *inp)
{
    (void)inp;
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels;
    float *out = zl__layer_acts(m, l); /* (R,C): the stream's rows here */
    const int32_t *tokens = zl_model_slot(m)->inputs; /* (B,T) */
    const float *wte = zl__layer_param(m, l, EMBED_WTE), *wpe = zl__layer_param(m, l, EMBED_WPE);
    if (m->tp_size == 1) {
        ops->embedding_forward(ops, out, tokens, wte, wpe, B, T, C);
    } else {
        int v0, v1;
        zl_model_vocab_range(m, &v0, &v1);
        float *all = m->seq_parallel ? zl_tensor_f32(&m->tp_full) : out; /* (B,T,C) partial */
        ops->embedding_shard_forward(ops, all, tokens, wte, v0, v1, m->tp_rank == 0 ? wpe : NULL,
                                     B, T, C);
        if (m->seq_parallel) zl__sp_reduce_scatter(m, out, all);
        else zl__tp_allreduce(m, out, (size_t)B * T * C);
    }
    zl__round(m, out, zl_model_stream_numel(m));
    return out;
}

static void embed_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    (void)inp;
    (void)dinp;
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels;
    const int32_t *tokens = zl_model_slot(m)->inputs; /* (B,T) */
    if (m->tp_size == 1) {
        ops->embedding_backward(ops, zl__grad_acc(m, l, EMBED_WTE), zl__grad_acc(m, l, EMBED_WPE),
                                dout, tokens, B, T, C);
        return;
    }
    int v0, v1;
    zl_model_vocab_range(m, &v0, &v1);
    float *dwte = zl__grad_acc(m, l, EMBED_WTE), *dwpe = zl__grad_acc(m, l, EMBED_WPE);
    if (!m->seq_parallel) { /* dout is every token's, the same on every rank */
        ops->embedding_shard_backward(ops, dwte, dwpe, dout, tokens, v0, v1, B, T, C);
        return;
    }
    /* every token's gradient for this rank's words; the positions from this rank's rows */
    float *all = zl_tensor_f32(&m->tp_full), *own = zl_tensor_f32(&m->scratch); /* (B,T,C) */
    size_t NC = (size_t)B * T * C;
    zl__sp_allgather(m, all, dout);
    ops->embedding_shard_backward(ops, dwte, NULL, all, tokens, v0, v1, B, T, C);
    ops->zero(ops, own, NC * sizeof(float));
    ops->copy(ops, own + zl_model_stream_row0(m) * C, dout, zl_model_stream_numel(m) * sizeof(float));
    ops->embedding_shard_backward(ops, NULL, dwpe, own, tokens, v0, v1, B, T, C);
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

/* sequence parallelism's backward: this rank's rows in a (B,T,C) of zeros */
static size_t embed_scratch_numel(const zl_model *m, int l, int B, int T)
{
    return m->seq_parallel ? zl_sat_mul((size_t)B * T, (size_t)m->cfg.channels) : 0;
}

const zl_layer_vtable zl_embed_layer = {
    .forward = embed_forward,
    .backward = embed_backward,
    .flops = embed_flops,
    .act_numel = embed_act_numel,
    .scratch_numel = embed_scratch_numel,
};
