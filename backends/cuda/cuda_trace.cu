/* --trace on a real GPU (cuda.h): every kernel op of the CUDA table between two CUDA events
 * on the compute stream, read back after the step as (name, start, end) in seconds since
 * the step began. run.c turns them into the simulator's timeline spans and writes them
 * with the same Chrome writer, so a simulated and a real trace of one run lie side by side.
 *
 * State: the records and the traced table live in one struct the context points to
 * (zl_cuda_ctx's trace), made on the first zl_cuda_trace_ops and kept for the process, as
 * the context's streams are; every function finds it through its table (self->ctx).
 *
 * Timing: all kernels run in order on ctx->compute, so an op's events bracket exactly its
 * kernels (cuBLAS's included: its handle is on compute), and the times are the GPU's, not
 * the host's launch times. Events are made once and re-recorded step after step
 * (cudaEventCreate is not free; a step issues thousands of ops). Ops run from one thread
 * (the engine's), so the records need no lock. */
#include "backends/cuda/cuda.h"
#include "backends/cuda/cuda_ops.h"

#include <stdlib.h>

typedef struct trace_rec {
    cudaEvent_t start, end;
    const char *name;
} trace_rec;

typedef struct zl_cuda_trace {
    zl_ops ops;         /* the traced table: zl_ops_cuda's fields, the kernels wrapped */
    cudaEvent_t origin; /* recorded by the reset: time 0 */
    bool origin_made, origin_recorded;
    trace_rec *recs;    /* ZL_CUDA_TRACE_MAX_SPANS, their events made as first needed */
    size_t num_recs;    /* recorded since the reset */
    size_t num_made;    /* recs[0 .. num_made) have their events */
    size_t dropped;     /* ops past the cap since the reset */
} zl_cuda_trace;

static zl_cuda_trace *trace_of(const zl_ops *self)
{
    return (zl_cuda_trace *)zl_cuda_ctx_of(self)->trace;
}

extern "C" void zl_cuda_trace_reset(const zl_ops *self)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    zl_cuda_trace *t = trace_of(self);
    if (!t) return;
    t->num_recs = t->dropped = 0;
    if (!t->origin_made) {
        cudaError_t e = cudaEventCreate(&t->origin);
        if (e != cudaSuccess) {
            zl__cuda_fail(ctx, "cudaEventCreate (--trace)", cudaGetErrorString(e));
            return;
        }
        t->origin_made = true;
    }
    ZL_CUDA_CHECK(ctx, cudaEventRecord(t->origin, ctx->compute));
    t->origin_recorded = true;
}

/* The record for an op about to be issued, its start recorded; NULL (the op is not timed)
 * past the cap or when an event cannot be made (then the context holds the error). */
static trace_rec *begin(const zl_ops *self, const char *name)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    zl_cuda_trace *t = trace_of(self);
    if (!t->origin_recorded) zl_cuda_trace_reset(self);
    if (t->num_recs == ZL_CUDA_TRACE_MAX_SPANS) {
        t->dropped++;
        return NULL;
    }
    trace_rec *r = &t->recs[t->num_recs];
    if (t->num_recs == t->num_made) {
        cudaError_t e = cudaEventCreate(&r->start);
        if (e == cudaSuccess && (e = cudaEventCreate(&r->end)) != cudaSuccess)
            cudaEventDestroy(r->start);
        if (e != cudaSuccess) {
            zl__cuda_fail(ctx, "cudaEventCreate (--trace)", cudaGetErrorString(e));
            return NULL;
        }
        t->num_made++;
    }
    t->num_recs++;
    r->name = name;
    ZL_CUDA_CHECK(ctx, cudaEventRecord(r->start, ctx->compute));
    return r;
}

static void end(const zl_ops *self, trace_rec *r)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (r) ZL_CUDA_CHECK(ctx, cudaEventRecord(r->end, ctx->compute));
}

extern "C" zl_status zl_cuda_trace_read(const zl_ops *self, zl_cuda_span *spans, size_t cap,
                                        size_t *num_spans, size_t *dropped)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    zl_cuda_trace *t = trace_of(self);
    *num_spans = *dropped = 0;
    if (!t || !t->origin_recorded) return zl_cuda_check(self);
    ZL_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->compute));
    zl_status st = zl_cuda_check(self); /* a failed kernel leaves events that never ran */
    if (st != ZL_OK) return st;
    size_t n = t->num_recs < cap ? t->num_recs : cap;
    for (size_t i = 0; i < n; i++) {
        float t0 = 0, t1 = 0; /* milliseconds since the reset (resolution about 0.5 us) */
        ZL_CUDA_CHECK(ctx, cudaEventElapsedTime(&t0, t->origin, t->recs[i].start));
        ZL_CUDA_CHECK(ctx, cudaEventElapsedTime(&t1, t->origin, t->recs[i].end));
        spans[i].name = t->recs[i].name;
        spans[i].start = 1e-3 * (double)t0;
        spans[i].end = 1e-3 * (double)(t1 > t0 ? t1 : t0);
    }
    *num_spans = n;
    *dropped = t->dropped + (t->num_recs - n);
    return zl_cuda_check(self);
}

/* ---- the wrappers: one per kernel field of ops.h, named as sim/sim.c charges the op ---- */

static void t_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n,
                   int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha,
                   float beta)
{
    trace_rec *r = begin(self, "gemm");
    zl_cuda_gemm(self, c, a, b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    end(self, r);
}

static void t_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                      zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                      bool trans_b, float alpha, float beta)
{
    trace_rec *r = begin(self, "gemm");
    zl_cuda_gemm_lp(self, c, a, b, b_type, t, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha,
                    beta);
    end(self, r);
}

static void t_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    trace_rec *r = begin(self, "bias");
    zl_cuda_bias_forward(self, out, bias, N, OC);
    end(self, r);
}

static void t_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    trace_rec *r = begin(self, "bias_bwd");
    zl_cuda_bias_backward(self, dbias, dout, N, OC);
    end(self, r);
}

static void t_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                               size_t n)
{
    trace_rec *r = begin(self, "residual");
    zl_cuda_residual_forward(self, out, a, b, n);
    end(self, r);
}

static double t_sumsq(const zl_ops *self, const float *x, size_t n)
{
    trace_rec *r = begin(self, "norm");
    double v = zl_cuda_sumsq(self, x, n);
    end(self, r);
    return v;
}

static bool t_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    trace_rec *r = begin(self, "overflow_check");
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
    trace_rec *r = begin(self, "grad_accumulate");
    zl_cuda_drain(self, y, yt, x, xt, n);
    end(self, r);
}

static void t_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                   zl_dtype src_type, size_t n)
{
    trace_rec *r = begin(self, "cast");
    zl_cuda_cast(self, dst, dst_type, src, src_type, n);
    end(self, r);
}

static void t_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    trace_rec *r = begin(self, "gelu");
    zl_cuda_gelu_forward(self, out, inp, n);
    end(self, r);
}

static void t_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                            size_t n)
{
    trace_rec *r = begin(self, "gelu_bwd");
    zl_cuda_gelu_backward(self, dinp, inp, dout, n);
    end(self, r);
}

static void t_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                const float *wte, const float *wpe, int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding");
    zl_cuda_embedding_forward(self, out, tokens, wte, wpe, B, T, C);
    end(self, r);
}

static void t_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                 const int32_t *tokens, int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding_bwd");
    zl_cuda_embedding_backward(self, dwte, dwpe, dout, tokens, B, T, C);
    end(self, r);
}

static void t_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                      const float *wte, int v0, int v1, const float *wpe, int B,
                                      int T, int C)
{
    trace_rec *r = begin(self, "embedding");
    zl_cuda_embedding_shard_forward(self, out, tokens, wte, v0, v1, wpe, B, T, C);
    end(self, r);
}

static void t_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                       const float *dout, const int32_t *tokens, int v0, int v1,
                                       int B, int T, int C)
{
    trace_rec *r = begin(self, "embedding_bwd");
    zl_cuda_embedding_shard_backward(self, dwte, dwpe, dout, tokens, v0, v1, B, T, C);
    end(self, r);
}

static void t_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                    zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                    const zl_adamw_args *args)
{
    trace_rec *r = begin(self, "adamw");
    zl_cuda_adamw(self, master, m, v, grad, grad_type, param_out, param_type, n, args);
    end(self, r);
}

static void t_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                                const float *inp, const float *weight, const float *bias, int N,
                                int C)
{
    trace_rec *r = begin(self, "layernorm");
    zl_cuda_layernorm_forward(self, out, mean, rstd, inp, weight, bias, N, C);
    end(self, r);
}

static void t_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                 const float *dout, const float *inp, const float *weight,
                                 const float *mean, const float *rstd, int N, int C)
{
    trace_rec *r = begin(self, "layernorm_bwd");
    zl_cuda_layernorm_backward(self, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    end(self, r);
}

static void t_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                                int T, int C, int NH)
{
    trace_rec *r = begin(self, "attention");
    zl_cuda_attention_forward(self, out, att, qkv, B, T, C, NH);
    end(self, r);
}

static void t_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                 const float *qkv, const float *att, int B, int T, int C, int NH)
{
    trace_rec *r = begin(self, "attention_bwd");
    zl_cuda_attention_backward(self, dqkv, scratch, dout, qkv, att, B, T, C, NH);
    end(self, r);
}

static void t_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                   const float *logits, const int32_t *targets, int N, int V)
{
    trace_rec *r = begin(self, "cross_entropy");
    zl_cuda_crossentropy_forward(self, losses, probs, logits, targets, N, V);
    end(self, r);
}

static void t_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                    const int32_t *targets, float dloss, int N, int V)
{
    trace_rec *r = begin(self, "cross_entropy_bwd");
    zl_cuda_crossentropy_backward(self, dlogits, probs, targets, dloss, N, V);
    end(self, r);
}

static void t_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N,
                                     int V)
{
    trace_rec *r = begin(self, "cross_entropy");
    zl_cuda_crossentropy_shard_max(self, rowmax, logits, N, V);
    end(self, r);
}

static void t_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum,
                                     const float *logits, const float *rowmax, int N, int V)
{
    trace_rec *r = begin(self, "cross_entropy");
    zl_cuda_crossentropy_shard_exp(self, probs, rowsum, logits, rowmax, N, V);
    end(self, r);
}

static void t_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs,
                                      const float *logits, const float *rowmax, const float *rowsum,
                                      const int32_t *targets, int v0, int N, int V)
{
    trace_rec *r = begin(self, "cross_entropy");
    zl_cuda_crossentropy_shard_loss(self, losses, probs, logits, rowmax, rowsum, targets, v0, N, V);
    end(self, r);
}

static void t_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                          const int32_t *targets, int v0, float dloss, int N, int V)
{
    trace_rec *r = begin(self, "cross_entropy_bwd");
    zl_cuda_crossentropy_shard_backward(self, dlogits, probs, targets, v0, dloss, N, V);
    end(self, r);
}

extern "C" const zl_ops *zl_cuda_trace_ops(const zl_ops *cuda)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(cuda);
    if (ctx->trace)
        return &((zl_cuda_trace *)ctx->trace)->ops;
    zl_cuda_trace *t = (zl_cuda_trace *)calloc(1, sizeof *t);
    trace_rec *recs = (trace_rec *)calloc(ZL_CUDA_TRACE_MAX_SPANS, sizeof *recs);
    if (!t || !recs) {
        free(t);
        free(recs);
        zl_errorf(ZL_ERR_OOM, "--trace: no host memory for %d records of CUDA events",
                  ZL_CUDA_TRACE_MAX_SPANS);
        return NULL;
    }
    t->recs = recs;
    t->ops = *cuda; /* the context, setup, check, memory and transfers: cuda's own */
    t->ops.name = "cuda"; /* the same backend, timed */
    t->ops.gemm = t_gemm;
    t->ops.gemm_lp = t_gemm_lp;
    t->ops.bias_forward = t_bias_forward;
    t->ops.bias_backward = t_bias_backward;
    t->ops.residual_forward = t_residual_forward;
    t->ops.sumsq = t_sumsq;
    t->ops.nonfinite = t_nonfinite;
    t->ops.scale = t_scale;
    t->ops.axpy = t_axpy;
    t->ops.round = t_round;
    t->ops.drain = t_drain;
    t->ops.cast = t_cast;
    t->ops.gelu_forward = t_gelu_forward;
    t->ops.gelu_backward = t_gelu_backward;
    t->ops.embedding_forward = t_embedding_forward;
    t->ops.embedding_backward = t_embedding_backward;
    t->ops.embedding_shard_forward = t_embedding_shard_forward;
    t->ops.embedding_shard_backward = t_embedding_shard_backward;
    t->ops.adamw = t_adamw;
    t->ops.layernorm_forward = t_layernorm_forward;
    t->ops.layernorm_backward = t_layernorm_backward;
    t->ops.attention_forward = t_attention_forward;
    t->ops.attention_backward = t_attention_backward;
    t->ops.crossentropy_forward = t_crossentropy_forward;
    t->ops.crossentropy_backward = t_crossentropy_backward;
    t->ops.crossentropy_shard_max = t_crossentropy_shard_max;
    t->ops.crossentropy_shard_exp = t_crossentropy_shard_exp;
    t->ops.crossentropy_shard_loss = t_crossentropy_shard_loss;
    t->ops.crossentropy_shard_backward = t_crossentropy_shard_backward;
    ctx->trace = t;
    return &t->ops;
}
