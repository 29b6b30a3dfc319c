/* --trace on a real GPU: every kernel op of the CUDA table between two CUDA events on the
 * compute stream, turned into the simulator's timeline spans (sim/timeline.h) once the
 * step is over, so the same Chrome trace writer shows real time and a simulated and a
 * real trace of one run lie side by side. The traced table is zl_ops_cuda with each
 * kernel field wrapped (zl_cuda_trace_ops); the wrappers are generated from cuda_ops.h's
 * declarations. Events cost a few microseconds each: a traced run is slower, and a
 * trace keeps at most ZL_TIMELINE_MAX_SPANS ops of a step (the rest are counted). */
#include "backends/cuda/cuda.h"
#include "backends/cuda/cuda_ops.h"

#include <stdlib.h>

typedef struct trace_rec {
    cudaEvent_t start, end;
    const char *name;
} trace_rec;

static struct {
    cudaEvent_t origin;
    bool origin_set;
    trace_rec *recs;  /* the events, created once and reused step after step */
    size_t n, created, dropped;
} g;

static trace_rec *begin(const zl_ops *self, const char *name)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!g.recs && !(g.recs = calloc(ZL_TIMELINE_MAX_SPANS, sizeof *g.recs))) return NULL;
    if (!g.origin_set) zl_cuda_trace_reset(self);
    if (g.n == ZL_TIMELINE_MAX_SPANS) {
        g.dropped++;
        return NULL;
    }
    trace_rec *r = &g.recs[g.n];
    if (g.n == g.created) {
        if (cudaEventCreate(&r->start) != cudaSuccess) return NULL;
        if (cudaEventCreate(&r->end) != cudaSuccess) {
            cudaEventDestroy(r->start);
            return NULL;
        }
        g.created++;
    }
    g.n++;
    r->name = name;
    ZL_CUDA_CHECK(ctx, cudaEventRecord(r->start, ctx->compute));
    return r;
}

static void end(const zl_ops *self, trace_rec *r)
{
    if (r) ZL_CUDA_CHECK(zl_cuda_ctx_of(self), cudaEventRecord(r->end, zl_cuda_ctx_of(self)->compute));
}

void zl_cuda_trace_reset(const zl_ops *self)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!g.origin_set) {
        ZL_CUDA_CHECK(ctx, cudaEventCreate(&g.origin));
        g.origin_set = true;
    }
    g.n = g.dropped = 0;
    ZL_CUDA_CHECK(ctx, cudaEventRecord(g.origin, ctx->compute));
}

zl_status zl_cuda_trace_timeline(const zl_ops *self, zl_timeline *tl)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    ZL_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->compute));
    for (size_t i = 0; i < g.n; i++) {
        float t0 = 0, t1 = 0; /* milliseconds since the step began */
        ZL_CUDA_CHECK(ctx, cudaEventElapsedTime(&t0, g.origin, g.recs[i].start));
        ZL_CUDA_CHECK(ctx, cudaEventElapsedTime(&t1, g.origin, g.recs[i].end));
        /* in order on one stream: starting at its start is starting when it did */
        zl_timeline_run(tl, ZL_STREAM_COMPUTE, g.recs[i].name, (t1 - t0) * 1e-3, t0 * 1e-3);
    }
    tl->dropped_spans += g.dropped;
    return zl_cuda_check(self);
}

static void t_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    trace_rec *r = begin(self, "gemm");
    zl_cuda_gemm(self, c, a, b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    end(self, r);
}

static void t_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type, zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    trace_rec *r = begin(self, "gemm_lp");
    zl_cuda_gemm_lp(self, c, a, b, b_type, t, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    end(self, r);
}

static void t_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    trace_rec *r = begin(self, "bias_forward");
    zl_cuda_bias_forward(self, out, bias, N, OC);
    end(self, r);
}

static void t_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    trace_rec *r = begin(self, "bias_backward");
    zl_cuda_bias_backward(self, dbias, dout, N, OC);
    end(self, r);
}

static void t_residual_forward(const zl_ops *self, float *out, const float *a, const float *b, size_t n)
{
    trace_rec *r = begin(self, "residual_forward");
    zl_cuda_residual_forward(self, out, a, b, n);
    end(self, r);
}

static double t_sumsq(const zl_ops *self, const float *x, size_t n)
{
    trace_rec *r = begin(self, "sumsq");
    double v = zl_cuda_sumsq(self, x, n);
    end(self, r);
    return v;
}

static bool t_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    trace_rec *r = begin(self, "nonfinite");
    bool v = zl_cuda_nonfinite(self, x, n);
    end(self, r);
    return v;
}

static void t_scale(const zl_ops *self, float *x, float s, size_t n)
{
    trace_rec *r = begin(self, "scale");
    zl_cuda_scale(self, x, s, n);
    end(self, r);
}

static void t_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    trace_rec *r = begin(self, "axpy");
    zl_cuda_axpy(self, y, a, x, n);
    end(self, r);
}

static void t_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    trace_rec *r = begin(self, "round");
    zl_cuda_round(self, x, t, n);
    end(self, r);
}

static void t_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    trace_rec *r = begin(self, "drain");
    zl_cuda_drain(self, y, yt, x, xt, n);
    end(self, r);
}

static void t_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src, zl_dtype src_type, size_t n)
{
    trace_rec *r = begin(self, "cast");
    zl_cuda_cast(self, dst, dst_type, src, src_type, n);
    end(self, r);
}

static void t_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    trace_rec *r = begin(self, "gelu_forward");
    zl_cuda_gelu_forward(self, out, inp, n);
    end(self, r);
}

static void t_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout, size_t n)
{
    trace_rec *r = begin(self, "gelu_backward");
    zl_cuda_gelu_backward(self, dinp, inp, dout, n);
    end(self, r);
}

static void t_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens, const float *wte, const float *wpe, int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding_forward");
    zl_cuda_embedding_forward(self, out, tokens, wte, wpe, B, T, C);
    end(self, r);
}

static void t_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding_backward");
    zl_cuda_embedding_backward(self, dwte, dwpe, dout, tokens, B, T, C);
    end(self, r);
}

static void t_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens, const float *wte, int v0, int v1, const float *wpe, int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding_shard_forward");
    zl_cuda_embedding_shard_forward(self, out, tokens, wte, v0, v1, wpe, B, T, C);
    end(self, r);
}

static void t_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int v0, int v1, int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding_shard_backward");
    zl_cuda_embedding_shard_backward(self, dwte, dwpe, dout, tokens, v0, v1, B, T, C);
    end(self, r);
}

static void t_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad, zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n, const zl_adamw_args *args)
{
    trace_rec *r = begin(self, "adamw");
    zl_cuda_adamw(self, master, m, v, grad, grad_type, param_out, param_type, n, args);
    end(self, r);
}

static void t_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias, int N, int C)
{
    trace_rec *r = begin(self, "layernorm_forward");
    zl_cuda_layernorm_forward(self, out, mean, rstd, inp, weight, bias, N, C);
    end(self, r);
}

static void t_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight, const float *mean, const float *rstd, int N, int C)
{
    trace_rec *r = begin(self, "layernorm_backward");
    zl_cuda_layernorm_backward(self, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    end(self, r);
}

static void t_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    trace_rec *r = begin(self, "attention_forward");
    zl_cuda_attention_forward(self, out, att, qkv, B, T, C, NH);
    end(self, r);
}

static void t_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att, int B, int T, int C, int NH)
{
    trace_rec *r = begin(self, "attention_backward");
    zl_cuda_attention_backward(self, dqkv, scratch, dout, qkv, att, B, T, C, NH);
    end(self, r);
}

static void t_crossentropy_forward(const zl_ops *self, float *losses, float *probs, const float *logits, const int32_t *targets, int N, int V)
{
    trace_rec *r = begin(self, "crossentropy_forward");
    zl_cuda_crossentropy_forward(self, losses, probs, logits, targets, N, V);
    end(self, r);
}

static void t_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs, const int32_t *targets, float dloss, int N, int V)
{
    trace_rec *r = begin(self, "crossentropy_backward");
    zl_cuda_crossentropy_backward(self, dlogits, probs, targets, dloss, N, V);
    end(self, r);
}

static void t_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N, int V)
{
    trace_rec *r = begin(self, "crossentropy_shard_max");
    zl_cuda_crossentropy_shard_max(self, rowmax, logits, N, V);
    end(self, r);
}

static void t_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum, const float *logits, const float *rowmax, int N, int V)
{
    trace_rec *r = begin(self, "crossentropy_shard_exp");
    zl_cuda_crossentropy_shard_exp(self, probs, rowsum, logits, rowmax, N, V);
    end(self, r);
}

static void t_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs, const float *logits, const float *rowmax, const float *rowsum, const int32_t *targets, int v0, int N, int V)
{
    trace_rec *r = begin(self, "crossentropy_shard_loss");
    zl_cuda_crossentropy_shard_loss(self, losses, probs, logits, rowmax, rowsum, targets, v0, N, V);
    end(self, r);
}

static void t_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs, const int32_t *targets, int v0, float dloss, int N, int V)
{
    trace_rec *r = begin(self, "crossentropy_shard_backward");
    zl_cuda_crossentropy_shard_backward(self, dlogits, probs, targets, v0, dloss, N, V);
    end(self, r);
}

const zl_ops *zl_cuda_trace_ops(void)
{
    /* Built once; the context is the table's (the process's one GPU). A run asks for it
     * from one thread before its first kernel. */
    static zl_ops t;
    static bool built;
    if (!built) {
        t = zl_ops_cuda;
        t.name = "cuda"; /* the same backend, timed */
        t.gemm = t_gemm;
        t.gemm_lp = t_gemm_lp;
        t.bias_forward = t_bias_forward;
        t.bias_backward = t_bias_backward;
        t.residual_forward = t_residual_forward;
        t.sumsq = t_sumsq;
        t.nonfinite = t_nonfinite;
        t.scale = t_scale;
        t.axpy = t_axpy;
        t.round = t_round;
        t.drain = t_drain;
        t.cast = t_cast;
        t.gelu_forward = t_gelu_forward;
        t.gelu_backward = t_gelu_backward;
        t.embedding_forward = t_embedding_forward;
        t.embedding_backward = t_embedding_backward;
        t.embedding_shard_forward = t_embedding_shard_forward;
        t.embedding_shard_backward = t_embedding_shard_backward;
        t.adamw = t_adamw;
        t.layernorm_forward = t_layernorm_forward;
        t.layernorm_backward = t_layernorm_backward;
        t.attention_forward = t_attention_forward;
        t.attention_backward = t_attention_backward;
        t.crossentropy_forward = t_crossentropy_forward;
        t.crossentropy_backward = t_crossentropy_backward;
        t.crossentropy_shard_max = t_crossentropy_shard_max;
        t.crossentropy_shard_exp = t_crossentropy_shard_exp;
        t.crossentropy_shard_loss = t_crossentropy_shard_loss;
        t.crossentropy_shard_backward = t_crossentropy_shard_backward;
        built = true;
    }
    return &t;
}
