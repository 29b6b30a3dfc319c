/* The head: final LayerNorm, logits through the tied token embedding, and the loss.
 *
 *   lnf = ln_f(x)                      (B,T,C)
 *   logits = lnf @ wte^T               (B,T,V)
 *   losses = cross_entropy(logits, targets)   (B,T)
 *
 * over the stream's R rows: N = B*T, or this rank's N/t with sequence parallelism (its
 * tokens' losses; the mean is summed over the group, zl_model_mean_loss).
 * Saved: lnf (R,C) probs (R,V) in the model's precision; lnf_mean (R) lnf_rstd (R)
 * losses (R) in f32.
 * Scratch: logits in forward, then dlogits (R,V) and dlnf (R,C) in backward. */
#include "model/gpt_layers.h"

typedef struct head_acts { float *lnf, *mean, *rstd, *probs, *losses; } head_acts;

static head_acts carve(zl_model *m, int l)
{
    size_t N = zl__rows(m, m->B, m->T), C = (size_t)m->cfg.channels;
    float *p = zl__layer_acts(m, l), *q = zl__layer_stats(m, l);
    head_acts a;
    a.lnf = p; p += N * C;
    a.probs = p;
    a.mean = q; q += N;
    a.rstd = q; q += N;
    a.losses = q;
    return a;
}

/* The head's output projection is a tied parameter (wte, which the embedding owns): it
 * reads it, and adds its gradient, through the model's tie group (the owner's binding,
 * or a copy of the head's own). */
static float *wte(const zl_model *m, int l) { return zl_model_tie_values(m, l); }
/* ... as a GEMM operand: its stored 16-bit values when the model has them (gpt_layers.h) */
static zl__operand wte_operand(const zl_model *m, int l)
{
    const void *h = zl_model_tie_values16(m, l);
    return h ? (zl__operand){h, m->dtype} : zl__f32(wte(m, l));
}
static float *dwte(const zl_model *m, int l) { return zl_model_tie_grads(m, l); }

static const float *head_forward(zl_model *m, int l, const float *inp)
{
    const zl_ops *ops = m->device->ops;
    int N = m->stream_rows, C = m->cfg.channels, V = m->cfg.vocab_size;
    head_acts a = carve(m, l);
    float *logits = zl_tensor_f32(&m->scratch); /* (N,V), consumed at once */
    const int32_t *targets = zl_model_slot(m)->targets + zl_model_stream_row0(m); /* (N) */
    ops->layernorm_forward(ops, a.lnf, a.mean, a.rstd, inp, zl__layer_param(m, l, HEAD_LNF_W),
                           zl__layer_param(m, l, HEAD_LNF_B), N, C);
    zl__round(m, a.lnf, (size_t)N * C);
    zl__gemm(m, logits, a.lnf, wte_operand(m, l), N, V, C, C, C, V, false, true, 1.0f, 0.0f);
    zl__round(m, logits, (size_t)N * V);
    zl_act_slot *slot = zl_model_slot(m);
    ops->crossentropy_forward(ops, a.losses, a.probs, logits, targets, N, V);
    zl__round(m, a.probs, (size_t)N * V); /* the losses stay f32 */
    slot->losses = a.losses;
    return NULL;
}

static void head_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    (void)dout;
    const zl_ops *ops = m->device->ops;
    int N = m->stream_rows, C = m->cfg.channels, V = m->cfg.vocab_size;
    const int32_t *targets = zl_model_slot(m)->targets + zl_model_stream_row0(m); /* (N) */
    head_acts a = carve(m, l);
    float *dlogits = zl_tensor_f32(&m->scratch); /* (N,V) */
    float *dlnf = dlogits + (size_t)N * V;        /* (N,C) */

    ops->zero(ops, dlogits, (size_t)N * V * sizeof(float));
    ops->crossentropy_backward(ops, dlogits, a.probs, targets, m->loss_grad, N, V);
    /* In 16 bits this is where small gradients flush to zero without loss scaling:
     * loss_grad is 1/(tokens * accumulation steps) times the loss scale. */
    zl__round(m, dlogits, (size_t)N * V);
    /* dlnf (N,C) = dlogits (N,V) @ wte (V,C); dwte (V,C) += dlogits^T (V,N) @ lnf (N,C) */
    zl__gemm(m, dlnf, dlogits, wte_operand(m, l), N, C, V, V, C, C, false, false, 1.0f, 0.0f);
    zl__round(m, dlnf, (size_t)N * C);
    zl__gemm(m, dwte(m, l), dlogits, zl__f32(a.lnf), V, C, N, V, C, C, true, false, 1.0f,
             zl_model_tie_grad_beta(m, l));
    ops->zero(ops, dinp, (size_t)N * C * sizeof(float));
    ops->layernorm_backward(ops, dinp, zl__grad_acc(m, l, HEAD_LNF_W),
                            zl__grad_acc(m, l, HEAD_LNF_B), dlnf, inp,
                            zl__layer_param(m, l, HEAD_LNF_W), a.mean, a.rstd, N, C);
    zl__round(m, dinp, (size_t)N * C);
}

/* The logits matmul; LayerNorm and softmax are not counted (as in the usual 6N rule). */
static double head_flops(const zl_model *m, int l, int B, int T)
{
    return 2.0 * (double)zl__rows(m, B, T) * m->cfg.channels * m->cfg.vocab_size;
}

static size_t head_act_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = zl__rows(m, B, T);
    return zl_sat_mul(N, (size_t)m->cfg.channels + 3 + (size_t)m->cfg.vocab_size);
}

static size_t head_act_stats_numel(const zl_model *m, int l, int B, int T)
{
    return 3 * zl__rows(m, B, T);
}

static size_t head_scratch_numel(const zl_model *m, int l, int B, int T)
{
    return zl_sat_mul(zl__rows(m, B, T), (size_t)m->cfg.vocab_size + (size_t)m->cfg.channels);
}

const zl_layer_vtable zl_head_layer = {
    .forward = head_forward,
    .backward = head_backward,
    .flops = head_flops,
    .act_numel = head_act_numel,
    .act_stats_numel = head_act_stats_numel,
    .scratch_numel = head_scratch_numel,
};
