/* The GPT-2 transformer block, pre-LayerNorm:
 *
 *   x   (B,T,C)  the residual stream in
 *   r2 = x  + attn_proj(attention(c_attn(ln_1(x))))
 *   out = r2 + mlp_proj(gelu(c_fc(ln_2(r2))))
 *
 * With tensor parallelism t (model.h, Megatron-LM's layers) a rank holds NH/t heads:
 * c_attn and c_fc are column-parallel (their outputs, Cl = C/t of Q, K and V each and
 * Fl = 4C/t hidden units, stay on the rank), attn_proj and mlp_proj row-parallel (their
 * products are partial sums, allreduced over the group before the residual add: g), and
 * in backward the gradients of ln_1's and ln_2's outputs, partial from the rank's heads
 * and units, are allreduced before the LayerNorms' backward (f). Everything else, the
 * LayerNorms and the residual stream, is whole and the same on every rank. t = 1: Cl = C.
 *
 * With sequence parallelism as well (Korthikanti et al.), the stream and what is computed
 * on it row by row (the LayerNorms, the residual adds, the projections' biases) are this
 * rank's R = N/t token rows only: the LayerNorm's output is gathered (N,C) before the
 * column-parallel layer, and the row-parallel layer's partial sums are reduce-scattered
 * to R rows, in place of g; backward mirrors it (block_forward_sp, block_backward_sp).
 * The gathered LayerNorm outputs are not kept: backward gathers them again.
 *
 * Saved activations, in buffer order (N = B*T; R = N, or N/t with sequence parallelism),
 * in the model's precision:
 *   ln1 (R,C) qkv (N,3Cl) atty (N,Cl) att (B,NH/t,T,T) r2 (R,C) ln2 (R,C) fch (N,Fl)
 *   fch_gelu (N,Fl) out (R,C)
 * and in f32: ln1_mean (R) ln1_rstd (R) ln2_mean (R) ln2_rstd (R)
 * Backward scratch: dr2 (N,C) | dbig1 (N,Fl) | dbig2 (N,Fl) | dsmall (N,C) | att (2,B,NH/t,T,T)
 * and with sequence parallelism dr2_r (R,C) | dln_r (R,C) after them. */
#include "model/gpt_layers.h"

typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *r2, *ln2, *ln2_mean, *ln2_rstd, *fch,
        *fch_gelu, *out;
} block_acts;

/* This rank's heads and attention width (Cl) and MLP width (Fl). */
static int local_heads(const zl_model *m) { return m->cfg.num_heads / m->tp_size; }
static int local_channels(const zl_model *m) { return m->cfg.channels / m->tp_size; }

/* Saturating (SIZE_MAX past 64 bits): zl_model_alloc_activations refuses such shapes. */
static size_t att_numel(const zl_model *m, int B, int T)
{
    return zl_sat_mul(zl_sat_mul((size_t)B, (size_t)local_heads(m)), zl_sat_mul((size_t)T, (size_t)T));
}

static block_acts carve(zl_model *m, int l)
{
    size_t N = (size_t)m->B * m->T, C = (size_t)m->cfg.channels, Cl = (size_t)local_channels(m);
    size_t R = zl__rows(m, m->B, m->T);
    float *p = zl__layer_acts(m, l), *q = zl__layer_stats(m, l);
    block_acts a;
    a.ln1 = p; p += R * C;
    a.qkv = p; p += N * 3 * Cl;
    a.atty = p; p += N * Cl;
    a.att = p; p += att_numel(m, m->B, m->T);
    a.r2 = p; p += R * C;
    a.ln2 = p; p += R * C;
    a.fch = p; p += N * 4 * Cl;
    a.fch_gelu = p; p += N * 4 * Cl;
    a.out = p;
    a.ln1_mean = q; q += R;
    a.ln1_rstd = q; q += R;
    a.ln2_mean = q; q += R;
    a.ln2_rstd = q;
    return a;
}

/* out (N,C) = res + x (N,K) @ W^T + b for a row-parallel projection W (C,K): in one
 * rank, the product accumulates onto a copy of the stream, so the residual add costs no
 * extra pass (and, in 16 bits, one rounding, not two); with tensor parallelism the
 * product is a partial sum, allreduced over the group before the stream is added. */
static void projection(zl_model *m, int l, int kw, float *out, const float *x, const float *res,
                       int N, int K)
{
    const zl_ops *ops = m->device->ops;
    int C = m->cfg.channels;
    size_t NC = (size_t)N * C;
    if (m->tp_size == 1) {
        ops->copy(ops, out, res, NC * sizeof(float));
        zl__gemm(m, out, x, zl__weight(m, l, kw), N, C, K, K, K, C, false, true, 1.0f, 1.0f);
    } else {
        zl__gemm(m, out, x, zl__weight(m, l, kw), N, C, K, K, K, C, false, true, 1.0f, 0.0f);
        zl__tp_allreduce(m, out, NC); /* g */
        ops->axpy(ops, out, 1.0f, res, NC);
    }
    ops->bias_forward(ops, out, zl__layer_param(m, l, kw + 1), N, C);
    zl__round(m, out, NC);
}

/* Sequence parallelism: inp, r2 and out are this rank's R rows. */
static const float *block_forward_sp(zl_model *m, int l, const float *inp)
{
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels, N = B * T;
    int Cl = local_channels(m), NHl = local_heads(m), R = m->stream_rows;
    size_t NCl = (size_t)N * Cl, RC = (size_t)R * C;
    block_acts a = carve(m, l);
    float *full = zl_tensor_f32(&m->tp_full);        /* (N,C): a gathered LayerNorm output */
    float *partial = zl_tensor_f32(&m->scratch);      /* (N,C): a projection's partial sums */
#define P(k) zl__layer_param(m, l, k)
    ops->layernorm_forward(ops, a.ln1, a.ln1_mean, a.ln1_rstd, inp, P(BLOCK_LN1_W), P(BLOCK_LN1_B),
                           R, C);
    zl__round(m, a.ln1, RC);
    zl__sp_allgather(m, full, a.ln1);
    zl__linear_forward(m, l, BLOCK_QKV_W, a.qkv, full, N, C, 3 * Cl);
    ops->attention_forward(ops, a.atty, a.att, a.qkv, B, T, Cl, NHl);
    zl__round(m, a.att, att_numel(m, B, T));
    zl__round(m, a.atty, NCl);
    zl__gemm(m, partial, a.atty, zl__weight(m, l, BLOCK_ATTPROJ_W), N, C, Cl, Cl, Cl, C, false,
             true, 1.0f, 0.0f);
    zl__sp_reduce_scatter(m, a.r2, partial);
    ops->axpy(ops, a.r2, 1.0f, inp, RC);
    ops->bias_forward(ops, a.r2, P(BLOCK_ATTPROJ_B), R, C);
    zl__round(m, a.r2, RC);

    ops->layernorm_forward(ops, a.ln2, a.ln2_mean, a.ln2_rstd, a.r2, P(BLOCK_LN2_W), P(BLOCK_LN2_B),
                           R, C);
    zl__round(m, a.ln2, RC);
    zl__sp_allgather(m, full, a.ln2);
    zl__linear_forward(m, l, BLOCK_FC_W, a.fch, full, N, C, 4 * Cl);
    ops->gelu_forward(ops, a.fch_gelu, a.fch, 4 * NCl);
    zl__round(m, a.fch_gelu, 4 * NCl);
    zl__gemm(m, partial, a.fch_gelu, zl__weight(m, l, BLOCK_FCPROJ_W), N, C, 4 * Cl, 4 * Cl,
             4 * Cl, C, false, true, 1.0f, 0.0f);
    zl__sp_reduce_scatter(m, a.out, partial);
    ops->axpy(ops, a.out, 1.0f, a.r2, RC);
    ops->bias_forward(ops, a.out, P(BLOCK_FCPROJ_B), R, C);
    zl__round(m, a.out, RC);
#undef P
    return a.out;
}

/* A row-parallel projection's backward under sequence parallelism: dx (N,K) = dfull (N,C)
 * @ W; dW += dfull^T @ x; the bias, added to this rank's rows only, gets their column sums
 * (summed over the group at the boundary, as the other parameters the group holds whole). */
static void projection_backward_sp(zl_model *m, int l, int kw, float *dx, const float *dfull,
                                   const float *drows, const float *x, int K)
{
    int N = m->B * m->T, C = m->cfg.channels;
    zl__gemm(m, dx, dfull, zl__weight(m, l, kw), N, K, C, C, K, K, false, false, 1.0f, 0.0f);
    zl__round(m, dx, (size_t)N * K);
    float beta = zl__grad_beta(m, l, kw);
    zl__gemm(m, zl__layer_grad(m, l, kw), dfull, zl__f32(x), C, K, N, C, K, K, true, false, 1.0f, beta);
    m->device->ops->bias_backward(m->device->ops, zl__grad_acc(m, l, kw + 1), drows, m->stream_rows, C);
}

static void block_backward_sp(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels, N = B * T;
    int Cl = local_channels(m), NHl = local_heads(m), R = m->stream_rows;
    size_t NC = (size_t)N * C, NCl = (size_t)N * Cl, RC = (size_t)R * C;
    block_acts a = carve(m, l);
    float *full = zl_tensor_f32(&m->tp_full);   /* (N,C): a LayerNorm output, gathered again */
    float *dfull = zl_tensor_f32(&m->scratch); /* (N,C): a stream gradient, gathered */
    float *dbig1 = dfull + NC;                  /* (N,Fl): d fch_gelu, later d qkv (N,3Cl) */
    float *dbig2 = dbig1 + 4 * NCl;             /* (N,Fl): d fch */
    float *dsmall = dbig2 + 4 * NCl;            /* (N,C): partial d ln2 / d ln1; d atty (N,Cl) */
    float *datt = dsmall + NC;                  /* (2,B,NH/t,T,T) */
    float *dr2 = datt + 2 * att_numel(m, B, T); /* (R,C) */
    float *dln = dr2 + RC;                      /* (R,C) */
#define P(k) zl__layer_param(m, l, k)
#define G(k) zl__grad_acc(m, l, k)
    /* MLP branch */
    ops->copy(ops, dr2, dout, RC * sizeof(float)); /* the residual path */
    zl__sp_allgather(m, dfull, dout);
    projection_backward_sp(m, l, BLOCK_FCPROJ_W, dbig1, dfull, dout, a.fch_gelu, 4 * Cl);
    ops->zero(ops, dbig2, 4 * NCl * sizeof(float));
    ops->gelu_backward(ops, dbig2, a.fch, dbig1, 4 * NCl);
    zl__round(m, dbig2, 4 * NCl);
    zl__sp_allgather(m, full, a.ln2);
    zl__linear_backward(m, l, BLOCK_FC_W, dsmall, dbig2, full, N, C, 4 * Cl);
    zl__sp_reduce_scatter(m, dln, dsmall); /* d ln2, this rank's rows */
    ops->layernorm_backward(ops, dr2, G(BLOCK_LN2_W), G(BLOCK_LN2_B), dln, a.r2, P(BLOCK_LN2_W),
                            a.ln2_mean, a.ln2_rstd, R, C);
    zl__round(m, dr2, RC);

    /* Attention branch */
    ops->copy(ops, dinp, dr2, RC * sizeof(float)); /* the residual path */
    zl__sp_allgather(m, dfull, dr2);
    projection_backward_sp(m, l, BLOCK_ATTPROJ_W, dsmall, dfull, dr2, a.atty, Cl);
    float *dqkv = dbig1; /* (N,3Cl) */
    ops->zero(ops, dqkv, 3 * NCl * sizeof(float));
    ops->attention_backward(ops, dqkv, datt, dsmall, a.qkv, a.att, B, T, Cl, NHl);
    zl__round(m, dqkv, 3 * NCl);
    zl__sp_allgather(m, full, a.ln1);
    zl__linear_backward(m, l, BLOCK_QKV_W, dsmall, dqkv, full, N, C, 3 * Cl);
    zl__sp_reduce_scatter(m, dln, dsmall); /* d ln1, this rank's rows */
    ops->layernorm_backward(ops, dinp, G(BLOCK_LN1_W), G(BLOCK_LN1_B), dln, inp, P(BLOCK_LN1_W),
                            a.ln1_mean, a.ln1_rstd, R, C);
    zl__round(m, dinp, RC);
#undef P
#undef G
}

static const float *block_forward(zl_model *m, int l, const float *inp)
{
    if (m->seq_parallel) return block_forward_sp(m, l, inp);
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels, N = B * T;
    int Cl = local_channels(m), NHl = local_heads(m);
    size_t NC = (size_t)N * C, NCl = (size_t)N * Cl;
    block_acts a = carve(m, l);
#define P(k) zl__layer_param(m, l, k)

    ops->layernorm_forward(ops, a.ln1, a.ln1_mean, a.ln1_rstd, inp, P(BLOCK_LN1_W), P(BLOCK_LN1_B),
                           N, C);
    zl__round(m, a.ln1, NC);
    zl__linear_forward(m, l, BLOCK_QKV_W, a.qkv, a.ln1, N, C, 3 * Cl);
    ops->attention_forward(ops, a.atty, a.att, a.qkv, B, T, Cl, NHl);
    zl__round(m, a.att, att_numel(m, B, T));
    zl__round(m, a.atty, NCl);
    projection(m, l, BLOCK_ATTPROJ_W, a.r2, a.atty, inp, N, Cl);

    ops->layernorm_forward(ops, a.ln2, a.ln2_mean, a.ln2_rstd, a.r2, P(BLOCK_LN2_W), P(BLOCK_LN2_B),
                           N, C);
    zl__round(m, a.ln2, NC);
    zl__linear_forward(m, l, BLOCK_FC_W, a.fch, a.ln2, N, C, 4 * Cl);
    ops->gelu_forward(ops, a.fch_gelu, a.fch, 4 * NCl);
    zl__round(m, a.fch_gelu, 4 * NCl);
    projection(m, l, BLOCK_FCPROJ_W, a.out, a.fch_gelu, a.r2, N, 4 * Cl);
#undef P
    return a.out;
}

static void block_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    if (m->seq_parallel) {
        block_backward_sp(m, l, inp, dout, dinp);
        return;
    }
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels, N = B * T;
    int Cl = local_channels(m), NHl = local_heads(m);
    size_t NC = (size_t)N * C, NCl = (size_t)N * Cl;
    block_acts a = carve(m, l);
    float *dr2 = zl_tensor_f32(&m->scratch); /* (N,C) */
    float *dbig1 = dr2 + NC;                  /* (N,Fl): d fch_gelu, later d qkv (N,3Cl) */
    float *dbig2 = dbig1 + 4 * NCl;           /* (N,Fl): d fch */
    float *dsmall = dbig2 + 4 * NCl;          /* (N,C): d ln2, d atty (N,Cl), d ln1 in turn */
    float *datt = dsmall + NC;                /* (2,B,NH/t,T,T) attention scratch */
#define P(k) zl__layer_param(m, l, k)
#define G(k) zl__grad_acc(m, l, k) /* LayerNorm's: kernels that add */

    /* MLP branch: out = r2 + fcproj(gelu(fc(ln2(r2)))). Every activation gradient is
     * rounded to the model's precision as it is written (zl__linear_backward rounds dinp). */
    ops->copy(ops, dr2, dout, NC * sizeof(float)); /* the residual path */
    zl__linear_backward(m, l, BLOCK_FCPROJ_W, dbig1, dout, a.fch_gelu, N, 4 * Cl, C);
    ops->zero(ops, dbig2, 4 * NCl * sizeof(float));
    ops->gelu_backward(ops, dbig2, a.fch, dbig1, 4 * NCl);
    zl__round(m, dbig2, 4 * NCl);
    zl__linear_backward(m, l, BLOCK_FC_W, dsmall, dbig2, a.ln2, N, C, 4 * Cl);
    zl__tp_allreduce(m, dsmall, NC); /* f: d ln2 from every rank's units */
    ops->layernorm_backward(ops, dr2, G(BLOCK_LN2_W), G(BLOCK_LN2_B), dsmall, a.r2, P(BLOCK_LN2_W),
                            a.ln2_mean, a.ln2_rstd, N, C);
    zl__round(m, dr2, NC);

    /* Attention branch: r2 = x + attproj(attention(qkv(ln1(x)))) */
    ops->copy(ops, dinp, dr2, NC * sizeof(float)); /* the residual path */
    zl__linear_backward(m, l, BLOCK_ATTPROJ_W, dsmall, dr2, a.atty, N, Cl, C);
    float *dqkv = dbig1; /* (N,3Cl) */
    ops->zero(ops, dqkv, 3 * NCl * sizeof(float));
    ops->attention_backward(ops, dqkv, datt, dsmall, a.qkv, a.att, B, T, Cl, NHl);
    zl__round(m, dqkv, 3 * NCl);
    zl__linear_backward(m, l, BLOCK_QKV_W, dsmall, dqkv, a.ln1, N, C, 3 * Cl);
    zl__tp_allreduce(m, dsmall, NC); /* f: d ln1 from every rank's heads */
    ops->layernorm_backward(ops, dinp, G(BLOCK_LN1_W), G(BLOCK_LN1_B), dsmall, inp, P(BLOCK_LN1_W),
                            a.ln1_mean, a.ln1_rstd, N, C);
    zl__round(m, dinp, NC);
#undef P
#undef G
}

/* Matmul FLOPs (2 per multiply-add): the four Linear layers, 2*N*12*C^2, and the two
 * attention products Q K^T and att V over the full T x T square (PaLM's convention),
 * 4*B*T*T*C; a tensor-parallel rank's share, 1/t of both. */
static double block_flops(const zl_model *m, int l, int B, int T)
{
    double N = (double)B * T, C = m->cfg.channels;
    return (24.0 * N * C * C + 4.0 * B * (double)T * T * C) / m->tp_size;
}

static size_t block_act_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.channels, Cl = (size_t)local_channels(m);
    size_t R = zl__rows(m, B, T); /* ln1, r2, ln2, out and the four statistics */
    return zl_sat_add(zl_sat_add(zl_sat_mul(N, 12 * Cl), zl_sat_mul(R, 4 * C + 4)), att_numel(m, B, T));
}

static size_t block_act_stats_numel(const zl_model *m, int l, int B, int T)
{
    return 4 * zl__rows(m, B, T);
}

static size_t block_scratch_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.channels, Cl = (size_t)local_channels(m);
    size_t sp = m->seq_parallel ? zl_sat_mul(zl__rows(m, B, T), 2 * C) : 0; /* dr2_r, dln_r */
    return zl_sat_add(zl_sat_add(zl_sat_mul(N, 2 * C + 8 * Cl), zl_sat_mul(2, att_numel(m, B, T))), sp);
}

const zl_layer_vtable zl_block_layer = {
    .forward = block_forward,
    .backward = block_backward,
    .flops = block_flops,
    .act_numel = block_act_numel,
    .act_stats_numel = block_act_stats_numel,
    .scratch_numel = block_scratch_numel,
};
