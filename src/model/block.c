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
 * Saved activations, in buffer order (N = B*T), in the model's precision:
 *   ln1 (N,C) qkv (N,3Cl) atty (N,Cl) att (B,NH/t,T,T) r2 (N,C) ln2 (N,C) fch (N,Fl)
 *   fch_gelu (N,Fl) out (N,C)
 * and in f32: ln1_mean (N) ln1_rstd (N) ln2_mean (N) ln2_rstd (N)
 * Backward scratch: dr2 (N,C) | dbig1 (N,Fl) | dbig2 (N,Fl) | dsmall (N,C) | att (2,B,NH/t,T,T) */
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
    float *p = zl__layer_acts(m, l), *q = zl__layer_stats(m, l);
    block_acts a;
    a.ln1 = p; p += N * C;
    a.qkv = p; p += N * 3 * Cl;
    a.atty = p; p += N * Cl;
    a.att = p; p += att_numel(m, m->B, m->T);
    a.r2 = p; p += N * C;
    a.ln2 = p; p += N * C;
    a.fch = p; p += N * 4 * Cl;
    a.fch_gelu = p; p += N * 4 * Cl;
    a.out = p;
    a.ln1_mean = q; q += N;
    a.ln1_rstd = q; q += N;
    a.ln2_mean = q; q += N;
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

static const float *block_forward(zl_model *m, int l, const float *inp)
{
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
    return zl_sat_add(zl_sat_mul(N, 4 * C + 12 * Cl + 4), att_numel(m, B, T));
}

static size_t block_act_stats_numel(const zl_model *m, int l, int B, int T)
{
    return 4 * (size_t)B * T;
}

static size_t block_scratch_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.channels, Cl = (size_t)local_channels(m);
    return zl_sat_add(zl_sat_mul(N, 2 * C + 8 * Cl), zl_sat_mul(2, att_numel(m, B, T)));
}

const zl_layer_vtable zl_block_layer = {
    .forward = block_forward,
    .backward = block_backward,
    .flops = block_flops,
    .act_numel = block_act_numel,
    .act_stats_numel = block_act_stats_numel,
    .scratch_numel = block_scratch_numel,
};
