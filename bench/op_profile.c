/* The profiling op table: each wrapper reads the clock, runs the real kernel, reads the
 * clock again and charges the difference to its kind (see op_profile.h). */
#include "bench/op_profile.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const zl_ops *g_real;
static zl_ops g_wrapped;
static op_profile g_prof;

static const char *const kind_names[OP_NUM_KINDS] = {
    "gemm", "bias_fwd", "bias_bwd", "embed_fwd", "embed_bwd", "layernorm_fwd",
    "layernorm_bwd", "attention_fwd", "attention_bwd", "gelu_fwd", "gelu_bwd",
    "residual", "xent_fwd", "xent_bwd", "adamw", "sumsq", "zero", "copy", "cast", "round",
    "drain", "other",
};

const char *op_kind_name(op_kind k) { return kind_names[k]; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void charge(op_kind k, double t0, double flops)
{
    g_prof.ops[k].seconds += now() - t0;
    g_prof.ops[k].flops += flops;
    g_prof.ops[k].calls++;
}

static void w_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n,
                   int k, int lda, int ldb, int ldc, bool ta, bool tb, float alpha, float beta)
{
    double t0 = now();
    g_real->gemm(g_real, c, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    double dt = now() - t0, flops = 2.0 * m * n * (double)k;
    g_prof.ops[OP_GEMM].seconds += dt;
    g_prof.ops[OP_GEMM].flops += flops;
    g_prof.ops[OP_GEMM].calls++;
    bool bnz = beta != 0.0f;
    int i;
    for (i = 0; i < g_prof.num_gemm_shapes; i++) {
        gemm_shape_stat *g = &g_prof.gemm[i];
        if (g->m == m && g->n == n && g->k == k && g->trans_a == ta && g->trans_b == tb &&
            g->beta_nonzero == bnz)
            break;
    }
    if (i == g_prof.num_gemm_shapes) {
        if (i == OP_MAX_GEMM_SHAPES) return; /* the per-kind total still counts it */
        g_prof.gemm[i] = (gemm_shape_stat){m, n, k, ta, tb, bnz, {0, 0, 0}};
        g_prof.num_gemm_shapes++;
    }
    g_prof.gemm[i].s.seconds += dt;
    g_prof.gemm[i].s.flops += flops;
    g_prof.gemm[i].s.calls++;
}

static void w_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    double t0 = now();
    g_real->bias_forward(g_real, out, bias, N, OC);
    charge(OP_BIAS_FWD, t0, 0);
}

static void w_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    double t0 = now();
    g_real->bias_backward(g_real, dbias, dout, N, OC);
    charge(OP_BIAS_BWD, t0, 0);
}

static void w_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                const float *wte, const float *wpe, int B, int T, int C)
{
    double t0 = now();
    g_real->embedding_forward(g_real, out, tokens, wte, wpe, B, T, C);
    charge(OP_EMBED_FWD, t0, 0);
}

static void w_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                 const int32_t *tokens, int B, int T, int C)
{
    double t0 = now();
    g_real->embedding_backward(g_real, dwte, dwpe, dout, tokens, B, T, C);
    charge(OP_EMBED_BWD, t0, 0);
}

static void w_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                                const float *inp, const float *weight, const float *bias, int N,
                                int C)
{
    double t0 = now();
    g_real->layernorm_forward(g_real, out, mean, rstd, inp, weight, bias, N, C);
    charge(OP_LAYERNORM_FWD, t0, 0);
}

static void w_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                 const float *dout, const float *inp, const float *weight,
                                 const float *mean, const float *rstd, int N, int C)
{
    double t0 = now();
    g_real->layernorm_backward(g_real, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    charge(OP_LAYERNORM_BWD, t0, 0);
}

/* The attention products are counted as the model counts them: Q K^T and att V over the
 * full T x T square, 4*B*T*T*C forward and twice that backward. */
static void w_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                                int T, int C, int NH)
{
    double t0 = now();
    g_real->attention_forward(g_real, out, att, qkv, B, T, C, NH);
    charge(OP_ATTENTION_FWD, t0, 4.0 * B * (double)T * T * C);
}

static void w_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                 const float *qkv, const float *att, int B, int T, int C, int NH)
{
    double t0 = now();
    g_real->attention_backward(g_real, dqkv, scratch, dout, qkv, att, B, T, C, NH);
    charge(OP_ATTENTION_BWD, t0, 8.0 * B * (double)T * T * C);
}

static void w_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    double t0 = now();
    g_real->gelu_forward(g_real, out, inp, n);
    charge(OP_GELU_FWD, t0, 0);
}

static void w_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                            size_t n)
{
    double t0 = now();
    g_real->gelu_backward(g_real, dinp, inp, dout, n);
    charge(OP_GELU_BWD, t0, 0);
}

static void w_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                               size_t n)
{
    double t0 = now();
    g_real->residual_forward(g_real, out, a, b, n);
    charge(OP_RESIDUAL, t0, 0);
}

static void w_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                   const float *logits, const int32_t *targets, int N, int V)
{
    double t0 = now();
    g_real->crossentropy_forward(g_real, losses, probs, logits, targets, N, V);
    charge(OP_XENT_FWD, t0, 0);
}

static void w_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                    const int32_t *targets, float dloss, int N, int V)
{
    double t0 = now();
    g_real->crossentropy_backward(g_real, dlogits, probs, targets, dloss, N, V);
    charge(OP_XENT_BWD, t0, 0);
}

static void w_adamw(const zl_ops *self, float *param, float *m, float *v, const void *grad,
                    zl_dtype gt, void *out, zl_dtype pt, size_t n, const zl_adamw_args *args)
{
    double t0 = now();
    g_real->adamw(g_real, param, m, v, grad, gt, out, pt, n, args);
    charge(OP_ADAMW, t0, 0);
}

static double w_sumsq(const zl_ops *self, const float *x, size_t n)
{
    double t0 = now();
    double r = g_real->sumsq(g_real, x, n);
    charge(OP_SUMSQ, t0, 0);
    return r;
}

static bool w_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    double t0 = now();
    bool r = g_real->nonfinite(g_real, x, n);
    charge(OP_OTHER, t0, 0);
    return r;
}

static void w_zero(const zl_ops *self, void *ptr, size_t nbytes)
{
    double t0 = now();
    g_real->zero(g_real, ptr, nbytes);
    charge(OP_ZERO, t0, 0);
}

static void w_copy(const zl_ops *self, void *dst, const void *src, size_t nbytes)
{
    double t0 = now();
    g_real->copy(g_real, dst, src, nbytes);
    charge(OP_COPY, t0, 0);
}

static void w_scale(const zl_ops *self, float *x, float s, size_t n)
{
    double t0 = now();
    g_real->scale(g_real, x, s, n);
    charge(OP_OTHER, t0, 0);
}

static void w_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    double t0 = now();
    g_real->axpy(g_real, y, a, x, n);
    charge(OP_OTHER, t0, 0);
}

static void w_cast(const zl_ops *self, void *dst, zl_dtype dt, const void *src, zl_dtype st,
                   size_t n)
{
    double t0 = now();
    g_real->cast(g_real, dst, dt, src, st, n);
    charge(OP_CAST, t0, 0);
}

/* 16 bits: the products count as gemm (their shapes are not split out); the casts, the
 * rounding of op outputs and the gradient drain are kinds of their own, the CPU's cost of
 * holding 16-bit tensors for real. */
static void w_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype bt,
                      zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool ta, bool tb,
                      float alpha, float beta)
{
    double t0 = now();
    g_real->gemm_lp(g_real, c, a, b, bt, t, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    charge(OP_GEMM, t0, 2.0 * m * n * (double)k);
}

static void w_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    double t0 = now();
    g_real->round(g_real, x, t, n);
    charge(OP_ROUND, t0, 0);
}

static void w_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    double t0 = now();
    g_real->drain(g_real, y, yt, x, xt, n);
    charge(OP_DRAIN, t0, 0);
}

const zl_ops *op_profile_wrap(const zl_ops *real)
{
    g_real = real;
    g_wrapped = *real; /* name, alloc and free pass through untimed */
#define WRAP(field, fn) if (real->field) g_wrapped.field = fn
    WRAP(gemm, w_gemm);
    WRAP(bias_forward, w_bias_forward);
    WRAP(bias_backward, w_bias_backward);
    WRAP(embedding_forward, w_embedding_forward);
    WRAP(embedding_backward, w_embedding_backward);
    WRAP(layernorm_forward, w_layernorm_forward);
    WRAP(layernorm_backward, w_layernorm_backward);
    WRAP(attention_forward, w_attention_forward);
    WRAP(attention_backward, w_attention_backward);
    WRAP(gelu_forward, w_gelu_forward);
    WRAP(gelu_backward, w_gelu_backward);
    WRAP(residual_forward, w_residual_forward);
    WRAP(crossentropy_forward, w_crossentropy_forward);
    WRAP(crossentropy_backward, w_crossentropy_backward);
    WRAP(adamw, w_adamw);
    WRAP(sumsq, w_sumsq);
    WRAP(nonfinite, w_nonfinite);
    WRAP(zero, w_zero);
    WRAP(copy, w_copy);
    WRAP(scale, w_scale);
    WRAP(axpy, w_axpy);
    WRAP(cast, w_cast);
    WRAP(gemm_lp, w_gemm_lp);
    WRAP(round, w_round);
    WRAP(drain, w_drain);
#undef WRAP
    op_profile_reset();
    return &g_wrapped;
}

void op_profile_reset(void) { memset(&g_prof, 0, sizeof g_prof); }

const op_profile *op_profile_get(void) { return &g_prof; }

static int by_seconds_desc(const void *a, const void *b)
{
    double x = ((const gemm_shape_stat *)a)->s.seconds, y = ((const gemm_shape_stat *)b)->s.seconds;
    return (x < y) - (x > y);
}

void op_profile_print(FILE *out, const char *op_prefix, const char *gemm_prefix, int steps,
                      double step_seconds)
{
    double per = 1.0 / steps, total_ops = 0;
    for (int k = 0; k < OP_NUM_KINDS; k++) total_ops += g_prof.ops[k].seconds;

    for (int k = 0; k < OP_NUM_KINDS; k++) {
        const op_stat *s = &g_prof.ops[k];
        if (!s->calls) continue;
        fprintf(out, "%s op=%s calls_step=%.0f ms_step=%.3f frac=%.4f gflops=%.1f\n", op_prefix,
                kind_names[k], s->calls * per, 1e3 * s->seconds * per,
                s->seconds / step_seconds, s->flops > 0 ? s->flops / s->seconds / 1e9 : 0.0);
    }
    /* Time outside every kernel: engine and model bookkeeping, batch upload, timers. */
    fprintf(out, "%s op=untimed ms_step=%.3f frac=%.4f gflops=0\n", op_prefix,
            1e3 * (step_seconds - total_ops) * per, (step_seconds - total_ops) / step_seconds);

    gemm_shape_stat sorted[OP_MAX_GEMM_SHAPES];
    int ns = g_prof.num_gemm_shapes;
    memcpy(sorted, g_prof.gemm, (size_t)ns * sizeof *sorted);
    qsort(sorted, (size_t)ns, sizeof *sorted, by_seconds_desc);
    for (int i = 0; i < ns; i++) {
        const gemm_shape_stat *g = &sorted[i];
        fprintf(out,
                "%s m=%d n=%d k=%d op=%s%s beta=%d calls_step=%.0f ms_step=%.3f frac=%.4f "
                "gflops=%.1f\n",
                gemm_prefix, g->m, g->n, g->k, g->trans_a ? "T" : "N", g->trans_b ? "T" : "N",
                g->beta_nonzero, g->s.calls * per, 1e3 * g->s.seconds * per,
                g->s.seconds / step_seconds, g->s.flops / g->s.seconds / 1e9);
    }
}
