/* The head: final LayerNorm, logits through the tied token embedding, and the loss.
 *
 *   lnf = ln_f(x)                      (B,T,C)
 *   logits = lnf @ wte^T               (B,T,V)
 *   losses = cross_entropy(logits, targets)   (B,T)
 *
 * With tensor parallelism wte is split by vocabulary (model.h): a rank computes the
 * logits of its Vr words only and the softmax is taken over the group (Megatron-LM's
 * vocab_parallel_cross_entropy: the rows' maxima, then their sums of exponentials, then
 * the target's term, each summed or maxed over the group between the passes, ops.h); every
 * rank ends with every token's loss. The logits' input gradient is a partial sum over the
 * words, summed over the group (f). With sequence parallelism the LayerNorm runs on the
 * rank's R = N/t rows, its output is gathered for the logits, and the input gradient is
 * reduce-scattered back to the rows.
 *
 * Saved (N = B*T, R = N or N/t): lnf (R,C) probs (N,Vr) in the model's precision;
 * lnf_mean (R) lnf_rstd (R) losses (N) in f32.
 * Scratch: logits in forward, then dlogits (N,Vr) and dlnf (N,C) in backward; with tensor
 * parallelism the rows' maxima and sums (2N) after them. */
#include "model/gpt_layers.h"

#include "comm/comm.h"

typedef struct head_acts { float *lnf, *mean, *rstd, *probs, *losses; } head_acts;

static int local_vocab(const zl_model *m)
{
    int v0, v1;
    zl_model_vocab_range(m, &v0, &v1);
    return v1 - v0;
}

static head_acts carve(zl_model *m, int l)
{
    size_t R = zl__rows(m, m->B, m->T), C = (size_t)m->cfg.channels;
    float *p = zl__layer_acts(m, l), *q = zl__layer_stats(m, l);
    head_acts a;
    a.lnf = p; p += R * C;
    a.probs = p;
    a.mean = q; q += R;
    a.rstd = q; q += R;
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

/* n f32 values reduced over the tensor-parallel group, exactly (the softmax's pieces). */
static void group_reduce(zl_model *m, float *x, size_t n, zl_reduce_op op)
{
    if (m->comm_status != ZL_OK) return;
    zl_status st = zl_comm_allreduce(m->tp, x, n, ZL_F32, op);
    if (st != ZL_OK) m->comm_status = st;
}

/* The LayerNorm's output over every token: lnf itself, or gathered from the rows. */
static const float *lnf_all(zl_model *m, const head_acts *a)
{
    if (!m->seq_parallel) return a->lnf;
    zl__sp_allgather(m, zl_tensor_f32(&m->tp_full), a->lnf);
    return zl_tensor_f32(&m->tp_full);
}

static const float *head_forward(zl_model *m, int l, const float *inp)
{
    const zl_ops *ops = m->device->ops;
    int N = m->B * m->T, R = m->stream_rows, C = m->cfg.channels, V = local_vocab(m);
    head_acts a = carve(m, l);
    float *logits = zl_tensor_f32(&m->scratch); /* (N,V), consumed at once */
    zl_act_slot *slot = zl_model_slot(m);
    ops->layernorm_forward(ops, a.lnf, a.mean, a.rstd, inp, zl__layer_param(m, l, HEAD_LNF_W),
                           zl__layer_param(m, l, HEAD_LNF_B), R, C);
    zl__round(m, a.lnf, (size_t)R * C);
    const float *x = lnf_all(m, &a);
    zl__gemm(m, logits, x, wte_operand(m, l), N, V, C, C, C, V, false, true, 1.0f, 0.0f);
    zl__round(m, logits, (size_t)N * V);
    if (m->tp_size == 1) {
        ops->crossentropy_forward(ops, a.losses, a.probs, logits, slot->targets, N, V);
    } else { /* the softmax over the group's words */
        int v0, v1;
        zl_model_vocab_range(m, &v0, &v1);
        float *rowmax = logits + (size_t)N * V + (size_t)N * C, *rowsum = rowmax + N;
        ops->crossentropy_shard_max(ops, rowmax, logits, N, V);
        group_reduce(m, rowmax, (size_t)N, ZL_REDUCE_MAX);
        ops->crossentropy_shard_exp(ops, a.probs, rowsum, logits, rowmax, N, V);
        group_reduce(m, rowsum, (size_t)N, ZL_REDUCE_SUM);
        ops->crossentropy_shard_loss(ops, a.losses, a.probs, logits, rowmax, rowsum, slot->targets,
                                     v0, N, V);
        group_reduce(m, a.losses, (size_t)N, ZL_REDUCE_SUM); /* the target's rank has it */
    }
    zl__round(m, a.probs, (size_t)N * V); /* the losses stay f32 */
    slot->losses = a.losses;
    return NULL;
}

static void head_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    (void)dout;
    const zl_ops *ops = m->device->ops;
    int N = m->B * m->T, R = m->stream_rows, C = m->cfg.channels, V = local_vocab(m);
    head_acts a = carve(m, l);
    float *dlogits = zl_tensor_f32(&m->scratch); /* (N,V) */
    float *dlnf = dlogits + (size_t)N * V;        /* (N,C) */
    const int32_t *targets = zl_model_slot(m)->targets;

    ops->zero(ops, dlogits, (size_t)N * V * sizeof(float));
    if (m->tp_size == 1) {
        ops->crossentropy_backward(ops, dlogits, a.probs, targets, m->loss_grad, N, V);
    } else {
        int v0, v1;
        zl_model_vocab_range(m, &v0, &v1);
        ops->crossentropy_shard_backward(ops, dlogits, a.probs, targets, v0, m->loss_grad, N, V);
    }
    /* In 16 bits this is where small gradients flush to zero without loss scaling:
     * loss_grad is 1/(tokens * accumulation steps) times the loss scale. */
    zl__round(m, dlogits, (size_t)N * V);
    /* dlnf (N,C) = dlogits (N,V) @ wte (V,C); dwte (V,C) += dlogits^T (V,N) @ lnf (N,C) */
    zl__gemm(m, dlnf, dlogits, wte_operand(m, l), N, C, V, V, C, C, false, false, 1.0f, 0.0f);
    zl__round(m, dlnf, (size_t)N * C);
    const float *x = lnf_all(m, &a);
    zl__gemm(m, dwte(m, l), dlogits, zl__f32(x), V, C, N, V, C, C, true, false, 1.0f,
             zl_model_tie_grad_beta(m, l));
    /* the words' partial sums: summed over the group (reduce-scattered to the rows) */
    float *drows = dlnf;
    if (m->seq_parallel) {
        drows = zl_tensor_f32(&m->tp_full); /* free again once dwte has read the gather */
        zl__sp_reduce_scatter(m, drows, dlnf);
    } else if (m->tp_size > 1) {
        zl__tp_allreduce(m, dlnf, (size_t)N * C);
    }
    ops->zero(ops, dinp, (size_t)R * C * sizeof(float));
    ops->layernorm_backward(ops, dinp, zl__grad_acc(m, l, HEAD_LNF_W),
                            zl__grad_acc(m, l, HEAD_LNF_B), drows, inp,
                            zl__layer_param(m, l, HEAD_LNF_W), a.mean, a.rstd, R, C);
    zl__round(m, dinp, (size_t)R * C);
}

/* The logits matmul (this rank's words); LayerNorm and softmax are not counted (as in the
 * usual 6N rule). */
static double head_flops(const zl_model *m, int l, int B, int T)
{
    return 2.0 * (double)B * T * m->cfg.channels * local_vocab(m);
}

static size_t head_act_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, R = zl__rows(m, B, T);
    return zl_sat_add(zl_sat_mul(R, (size_t)m->cfg.channels + 2),
                      zl_sat_mul(N, 1 + (size_t)local_vocab(m)));
}

static size_t head_act_stats_numel(const zl_model *m, int l, int B, int T)
{
    return 2 * zl__rows(m, B, T) + (size_t)B * T;
}

static size_t head_scratch_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, extra = m->tp_size > 1 ? 2 : 0; /* the rows' maxima and sums */
    return zl_sat_mul(N, (size_t)local_vocab(m) + (size_t)m->cfg.channels + extra);
}

const zl_layer_vtable zl_head_layer = {
    .forward = head_forward,
    .backward = head_backward,
    .flops = head_flops,
    .act_numel = head_act_numel,
    .act_stats_numel = head_act_stats_numel,
    .scratch_numel = head_scratch_numel,
};
