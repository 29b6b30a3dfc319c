/* The GPT-2 transformer block, pre-LayerNorm:
 *
 *   x   (B,T,C)  the residual stream in
 *   r2 = x  + attn_proj(attention(c_attn(ln_1(x))))
 *   out = r2 + mlp_proj(gelu(c_fc(ln_2(r2))))
 *
 * Saved activations, in buffer order (N = B*T), in the model's precision:
 *   ln1 (N,C) qkv (N,3C) atty (N,C) att (B,NH,T,T) r2 (N,C) ln2 (N,C) fch (N,4C)
 *   fch_gelu (N,4C) out (N,C)
 * and in f32: ln1_mean (N) ln1_rstd (N) ln2_mean (N) ln2_rstd (N)
 * Backward scratch: dr2 (N,C) | dbig1 (N,4C) | dbig2 (N,4C) | dsmall (N,C) | att (2,B,NH,T,T) */
#include "model/gpt_layers.h"

typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *r2, *ln2, *ln2_mean, *ln2_rstd, *fch,
        *fch_gelu, *out;
} block_acts;

/* Saturating (SIZE_MAX past 64 bits): zl_model_alloc_activations refuses such shapes. */
static size_t att_numel(const zl_model *m, int B, int T)
{
    return zl_sat_mul(zl_sat_mul((size_t)B, (size_t)m->cfg.num_heads), zl_sat_mul((size_t)T, (size_t)T));
}

static block_acts carve(zl_model *m, int l)
{
    size_t N = (size_t)m->B * m->T, C = (size_t)m->cfg.channels;
    float *p = zl__layer_acts(m, l), *q = zl__layer_stats(m, l);
    block_acts a;
    a.ln1 = p; p += N * C;
    a.qkv = p; p += N * 3 * C;
    a.atty = p; p += N * C;
    a.att = p; p += att_numel(m, m->B, m->T);
    a.r2 = p; p += N * C;
    a.ln2 = p; p += N * C;
    a.fch = p; p += N * 4 * C;
    a.fch_gelu = p; p += N * 4 * C;
    a.out = p;
    a.ln1_mean = q; q += N;
    a.ln1_rstd = q; q += N;
    a.ln2_mean = q; q += N;
    a.ln2_rstd = q;
    return a;
}

static const float *block_forward(zl_model *m, int l, const float *inp)
{
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels, NH = m->cfg.num_heads, N = B * T;
    size_t NC = (size_t)N * C;
    block_acts a = carve(m, l);
#define P(k) zl__layer_param(m, l, k)

    ops->layernorm_forward(ops, a.ln1, a.ln1_mean, a.ln1_rstd, inp, P(BLOCK_LN1_W), P(BLOCK_LN1_B),
                           N, C);
    zl__round(m, a.ln1, NC);
    zl__linear_forward(m, l, BLOCK_QKV_W, a.qkv, a.ln1, N, C, 3 * C);
    ops->attention_forward(ops, a.atty, a.att, a.qkv, B, T, C, NH);
    zl__round(m, a.att, att_numel(m, B, T));
    zl__round(m, a.atty, NC);
    /* r2 = x + atty @ Wproj^T + b: the projection accumulates onto a copy of the stream,
     * so the residual add costs no extra pass (and, in 16 bits, one rounding, not two). */
    ops->copy(ops, a.r2, inp, NC * sizeof(float));
    zl__gemm(m, a.r2, a.atty, zl__weight(m, l, BLOCK_ATTPROJ_W), N, C, C, C, C, C, false, true,
             1.0f, 1.0f);
    ops->bias_forward(ops, a.r2, P(BLOCK_ATTPROJ_B), N, C);
    zl__round(m, a.r2, NC);

    ops->layernorm_forward(ops, a.ln2, a.ln2_mean, a.ln2_rstd, a.r2, P(BLOCK_LN2_W), P(BLOCK_LN2_B),
                           N, C);
    zl__round(m, a.ln2, NC);
    zl__linear_forward(m, l, BLOCK_FC_W, a.fch, a.ln2, N, C, 4 * C);
    ops->gelu_forward(ops, a.fch_gelu, a.fch, 4 * NC);
    zl__round(m, a.fch_gelu, 4 * NC);
    ops->copy(ops, a.out, a.r2, NC * sizeof(float));
    zl__gemm(m, a.out, a.fch_gelu, zl__weight(m, l, BLOCK_FCPROJ_W), N, C, 4 * C, 4 * C, 4 * C, C,
             false, true, 1.0f, 1.0f);
    ops->bias_forward(ops, a.out, P(BLOCK_FCPROJ_B), N, C);
    zl__round(m, a.out, NC);
#undef P
    return a.out;
}

static void block_backward(zl_model *m, int l, const float *inp, const float *dout, float *dinp)
{
    const zl_ops *ops = m->device->ops;
    int B = m->B, T = m->T, C = m->cfg.channels, NH = m->cfg.num_heads, N = B * T;
    size_t NC = (size_t)N * C;
    block_acts a = carve(m, l);
    float *dr2 = zl_tensor_f32(&m->scratch); /* (N,C) */
    float *dbig1 = dr2 + NC;                  /* (N,4C): d fch_gelu, later d qkv */
    float *dbig2 = dbig1 + 4 * NC;            /* (N,4C): d fch */
    float *dsmall = dbig2 + 4 * NC;           /* (N,C): d ln2, d atty, d ln1 in turn */
    float *datt = dsmall + NC;                /* (2,B,NH,T,T) attention scratch */
#define P(k) zl__layer_param(m, l, k)
#define G(k) zl__grad_acc(m, l, k) /* LayerNorm's: kernels that add */

    /* MLP branch: out = r2 + fcproj(gelu(fc(ln2(r2)))). Every activation gradient is
     * rounded to the model's precision as it is written (zl__linear_backward rounds dinp). */
    ops->copy(ops, dr2, dout, NC * sizeof(float)); /* the residual path */
    zl__linear_backward(m, l, BLOCK_FCPROJ_W, dbig1, dout, a.fch_gelu, N, 4 * C, C);
    ops->zero(ops, dbig2, 4 * NC * sizeof(float));
    ops->gelu_backward(ops, dbig2, a.fch, dbig1, 4 * NC);
    zl__round(m, dbig2, 4 * NC);
    zl__linear_backward(m, l, BLOCK_FC_W, dsmall, dbig2, a.ln2, N, C, 4 * C);
    ops->layernorm_backward(ops, dr2, G(BLOCK_LN2_W), G(BLOCK_LN2_B), dsmall, a.r2, P(BLOCK_LN2_W),
                            a.ln2_mean, a.ln2_rstd, N, C);
    zl__round(m, dr2, NC);

    /* Attention branch: r2 = x + attproj(attention(qkv(ln1(x)))) */
    ops->copy(ops, dinp, dr2, NC * sizeof(float)); /* the residual path */
    zl__linear_backward(m, l, BLOCK_ATTPROJ_W, dsmall, dr2, a.atty, N, C, C);
    float *dqkv = dbig1; /* (N,3C) */
    ops->zero(ops, dqkv, 3 * NC * sizeof(float));
    ops->attention_backward(ops, dqkv, datt, dsmall, a.qkv, a.att, B, T, C, NH);
    zl__round(m, dqkv, 3 * NC);
    zl__linear_backward(m, l, BLOCK_QKV_W, dsmall, dqkv, a.ln1, N, C, 3 * C);
    ops->layernorm_backward(ops, dinp, G(BLOCK_LN1_W), G(BLOCK_LN1_B), dsmall, inp, P(BLOCK_LN1_W),
                            a.ln1_mean, a.ln1_rstd, N, C);
    zl__round(m, dinp, NC);
#undef P
#undef G
}

/* Matmul FLOPs (2 per multiply-add): the four Linear layers, 2*N*12*C^2, and the two
 * attention products Q K^T and att V over the full T x T square (PaLM's convention),
 * 4*B*T*T*C. */
static double block_flops(const zl_model *m, int l, int B, int T)
{
    double N = (double)B * T, C = m->cfg.channels;
    return 24.0 * N * C * C + 4.0 * B * (double)T * T * C;
}

static size_t block_act_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.channels;
    return zl_sat_add(zl_sat_mul(N, 16 * C + 4), att_numel(m, B, T));
}

static size_t block_act_stats_numel(const zl_model *m, int l, int B, int T)
{
    return 4 * (size_t)B * T;
}

static size_t block_scratch_numel(const zl_model *m, int l, int B, int T)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.channels;
    return zl_sat_add(zl_sat_mul(10 * N, C), zl_sat_mul(2, att_numel(m, B, T)));
}

const zl_layer_vtable zl_block_layer = {
    .forward = block_forward,
    .backward = block_backward,
    .flops = block_flops,
    .act_numel = block_act_numel,
    .act_stats_numel = block_act_stats_numel,
    .scratch_numel = block_scratch_numel,
};
