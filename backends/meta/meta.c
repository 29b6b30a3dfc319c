/* The meta backend: shapes without data. Every allocation is recorded by the device's
 * ledger as on any backend, but nothing is behind the pointer; every kernel is a no-op.
 * The engine runs its ordinary code on it, so the allocations, their sizes and tags, and
 * the sequence of kernels and collectives are exactly those of a real run, at any scale:
 * what `zerolab plan` needs to predict memory (and, with the cost model, time) for a model
 * far larger than the machine.
 *
 * Pointers. alloc hands out distinct, never-dereferenced addresses from a counter that
 * starts far from real memory and advances by each size (64-byte aligned), so pointer
 * comparisons and offsets inside a buffer behave; free does nothing. Code that reads or
 * writes device memory from the host must check ops->meta first.
 *
 * Values. sumsq is 0 and nonfinite false: a meta gradient is finite and its norm zero, so
 * the step runs its ordinary path (no overflow, no clipping). */
#include <stdatomic.h>
#include <stdint.h>

#include "backends/ops.h"

static _Atomic uintptr_t next_address = (uintptr_t)1 << 44; /* 16 TiB: not the heap */

static void *meta_alloc(const zl_ops *self, size_t nbytes)
{
    uintptr_t step = ((uintptr_t)nbytes + 63) & ~(uintptr_t)63;
    return (void *)atomic_fetch_add(&next_address, step ? step : 64);
}

static void meta_free(const zl_ops *self, void *p) {}
static void meta_zero(const zl_ops *self, void *p, size_t n) {}
static void meta_copy(const zl_ops *self, void *d, const void *s, size_t n) {}
static void meta_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n,
                      int k, int lda, int ldb, int ldc, bool ta, bool tb, float alpha,
                      float beta) {}
static void meta_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b,
                         zl_dtype bt, zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc,
                         bool ta, bool tb, float alpha, float beta) {}
static void meta_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC) {}
static void meta_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N,
                               int OC) {}
static void meta_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                   const float *wte, const float *wpe, int B, int T, int C) {}
static void meta_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                    const int32_t *tokens, int B, int T, int C) {}
static void meta_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                                   const float *inp, const float *w, const float *b, int N,
                                   int C) {}
static void meta_layernorm_backward(const zl_ops *self, float *dinp, float *dw, float *db,
                                    const float *dout, const float *inp, const float *w,
                                    const float *mean, const float *rstd, int N, int C) {}
static void meta_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv,
                                   int B, int T, int C, int NH) {}
static void meta_attention_backward(const zl_ops *self, float *dqkv, float *scratch,
                                    const float *dout, const float *qkv, const float *att, int B,
                                    int T, int C, int NH) {}
static void meta_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n) {}
static void meta_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                               size_t n) {}
static void meta_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                                  size_t n) {}
static void meta_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                      const float *logits, const int32_t *targets, int N, int V) {}
static void meta_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                       const int32_t *targets, float dloss, int N, int V) {}
static void meta_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                         const float *wte, int v0, int v1, const float *wpe,
                                         int B, int T, int C) {}
static void meta_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                          const float *dout, const int32_t *tokens, int v0,
                                          int v1, int B, int T, int C) {}
static void meta_ce_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N, int V) {}
static void meta_ce_shard_exp(const zl_ops *self, float *probs, float *rowsum, const float *logits,
                              const float *rowmax, int N, int V) {}
static void meta_ce_shard_loss(const zl_ops *self, float *losses, float *probs, const float *logits,
                               const float *rowmax, const float *rowsum, const int32_t *targets,
                               int v0, int N, int V) {}
static void meta_ce_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, int v0, float dloss, int N, int V) {}
static void meta_adamw(const zl_ops *self, float *p, float *m, float *v, const void *g,
                       zl_dtype gt, void *out, zl_dtype pt, size_t n, const zl_adamw_args *args) {}
static double meta_sumsq(const zl_ops *self, const float *x, size_t n) { return 0.0; }
static bool meta_nonfinite(const zl_ops *self, const float *x, size_t n) { return false; }
static void meta_scale(const zl_ops *self, float *x, float s, size_t n) {}
static void meta_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n) {}
static void meta_round(const zl_ops *self, float *x, zl_dtype t, size_t n) {}
static void meta_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n) {}
static void meta_cast(const zl_ops *self, void *dst, zl_dtype dt, const void *src, zl_dtype st,
                      size_t n) {}

const zl_ops zl_ops_meta = {
    .name = "meta",
    .meta = true,
    .alloc = meta_alloc,
    .free = meta_free,
    .zero = meta_zero,
    .copy = meta_copy,
    .to_host = meta_copy,
    .to_device = meta_copy,
    .gemm = meta_gemm,
    .gemm_lp = meta_gemm_lp,
    .bias_forward = meta_bias_forward,
    .bias_backward = meta_bias_backward,
    .embedding_forward = meta_embedding_forward,
    .embedding_backward = meta_embedding_backward,
    .layernorm_forward = meta_layernorm_forward,
    .layernorm_backward = meta_layernorm_backward,
    .attention_forward = meta_attention_forward,
    .attention_backward = meta_attention_backward,
    .gelu_forward = meta_gelu_forward,
    .gelu_backward = meta_gelu_backward,
    .residual_forward = meta_residual_forward,
    .crossentropy_forward = meta_crossentropy_forward,
    .crossentropy_backward = meta_crossentropy_backward,
    .embedding_shard_forward = meta_embedding_shard_forward,
    .embedding_shard_backward = meta_embedding_shard_backward,
    .crossentropy_shard_max = meta_ce_shard_max,
    .crossentropy_shard_exp = meta_ce_shard_exp,
    .crossentropy_shard_loss = meta_ce_shard_loss,
    .crossentropy_shard_backward = meta_ce_shard_backward,
    .adamw = meta_adamw,
    .sumsq = meta_sumsq,
    .nonfinite = meta_nonfinite,
    .scale = meta_scale,
    .axpy = meta_axpy,
    .round = meta_round,
    .drain = meta_drain,
    .cast = meta_cast,
};
