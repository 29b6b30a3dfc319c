/* The CUDA backend: every op of backends/ops.h on an NVIDIA GPU, gathered into zl_ops_cuda
 * by cuda.cu. One file per concept, llm.c's way (readable kernels, shapes in comments); the
 * semantics of each function are exactly those of the matching field of ops.h (shapes,
 * accumulation into gradients, ignored targets, rounding), and ref is the oracle every one
 * is tested against (tests/gpu).
 *
 * Context: a process drives one GPU (its rank's: local rank modulo the devices), and the
 * table's self->ctx is that GPU's zl_cuda_ctx, filled by the table's setup. Kernels run on
 * ctx->compute; collectives (src/comm/comm_nccl.c) on ctx->comm; host transfers for
 * offload on ctx->copy. Kernels do not allocate: scratch comes from the caller, or from
 * the context's workspace, reserved once at setup. Functions that return a value to the
 * host (sumsq, nonfinite) synchronise the compute stream.
 *
 * Every declaration is C (extern "C"): the library is C11 and calls them through the
 * table; the definitions are in .cu files compiled by nvcc. */
#ifndef ZL_BACKENDS_CUDA_CUDA_OPS_H
#define ZL_BACKENDS_CUDA_CUDA_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "backends/ops.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One GPU's context (self->ctx of zl_ops_cuda). */
typedef struct zl_cuda_ctx {
    int device;                /* the CUDA device this process drives */
    cudaStream_t compute;      /* every kernel and cuBLAS call */
    cudaStream_t comm;         /* NCCL collectives (ordered after compute with events) */
    cudaStream_t copy;         /* host <-> device transfers of offload */
    cublasHandle_t cublas;     /* on `compute` */
    cublasLtHandle_t lt;       /* created for epilogue-fused GEMMs; no op uses it yet */
    /* Reserved once at setup, outside the ledger's tags but inside its budget (setup
     * reports it): cuBLAS's workspace, the 16-bit copies gemm_lp converts its f32
     * operands into, and the scalars reductions return through. */
    void *workspace;
    size_t workspace_bytes;
    double *reduce;            /* device scalars for sumsq (double) and nonfinite (int) */
    int *flag;
    double *reduce_host;       /* pinned host mirrors of them */
    int *flag_host;
    int sm_count;              /* for grid sizes */
    int cc_major, cc_minor;    /* compute capability */
    /* the caching allocator (cuda.cu): one arena reserved at setup, handed out by it */
    void *arena;
    size_t arena_bytes;
    void *allocator;
    /* --trace's records (cuda_trace.cu; NULL until zl_cuda_trace_ops) */
    void *trace;
    /* the first error since the last zl_cuda_check (zl__cuda_fail) */
    bool failed;
    char error[256];
} zl_cuda_ctx;

static inline zl_cuda_ctx *zl_cuda_ctx_of(const zl_ops *self) { return (zl_cuda_ctx *)self->ctx; }

/* The workspace's layout. Its first ZL_CUDA_BLAS_WORKSPACE_BYTES are cuBLAS's (what setup
 * gives cublasSetWorkspace); the rest is kernel scratch
 * (gemm_lp's 16-bit operands, layernorm_backward's partial sums), used by one op at a time
 * in stream order on ctx->compute, so no two ops' uses overlap. 32 MiB is what NVIDIA
 * recommends for cuBLAS on Hopper. */
#define ZL_CUDA_BLAS_WORKSPACE_BYTES ((size_t)32 << 20)
static inline void *zl_cuda_scratch(const zl_cuda_ctx *ctx, size_t *nbytes)
{
    if (!ctx->workspace || ctx->workspace_bytes <= ZL_CUDA_BLAS_WORKSPACE_BYTES) {
        *nbytes = 0;
        return NULL;
    }
    *nbytes = ctx->workspace_bytes - ZL_CUDA_BLAS_WORKSPACE_BYTES;
    return (char *)ctx->workspace + ZL_CUDA_BLAS_WORKSPACE_BYTES;
}

/* A CUDA or cuBLAS error inside a kernel call: the ops return no status, so the context
 * keeps the first error and where it happened, and zl_cuda_check turns it into
 * ZL_ERR_DEVICE at the device layer's next check. Use the macros in every .cu file:
 *   ZL_CUDA_CHECK(ctx, cudaMemsetAsync(p, 0, n, ctx->compute));
 *   kernel<<<grid, block, 0, ctx->compute>>>(...); ZL_CUDA_CHECK(ctx, cudaGetLastError()); */
void zl__cuda_fail(zl_cuda_ctx *ctx, const char *where, const char *what);
#define ZL_CUDA_CHECK(ctx, call)                                                              \
    do {                                                                                      \
        cudaError_t zl_err_ = (call);                                                         \
        if (zl_err_ != cudaSuccess) zl__cuda_fail((ctx), #call, cudaGetErrorString(zl_err_)); \
    } while (0)
#define ZL_CUBLAS_CHECK(ctx, call)                                                            \
    do {                                                                                      \
        cublasStatus_t zl_st_ = (call);                                                       \
        if (zl_st_ != CUBLAS_STATUS_SUCCESS)                                                  \
            zl__cuda_fail((ctx), #call, cublasGetStatusString(zl_st_));                       \
    } while (0)
/* ZL_OK, or ZL_ERR_DEVICE with the first error recorded since the last check (then
 * cleared). */
zl_status zl_cuda_check(const zl_ops *self);

/* ---- cuda_gemm.cu: cuBLAS, fp32 accumulation (tensor cores for 16 bits) ---- */
void zl_cuda_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                  int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta);
void zl_cuda_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                     zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                     bool trans_b, float alpha, float beta);

/* ---- cuda_vector.cu: bias, residual, scale, axpy, reductions, rounding, casts ---- */
void zl_cuda_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC);
void zl_cuda_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC);
void zl_cuda_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                              size_t n);
double zl_cuda_sumsq(const zl_ops *self, const float *x, size_t n);
bool zl_cuda_nonfinite(const zl_ops *self, const float *x, size_t n);
void zl_cuda_scale(const zl_ops *self, float *x, float s, size_t n);
void zl_cuda_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n);
void zl_cuda_round(const zl_ops *self, float *x, zl_dtype t, size_t n);
void zl_cuda_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n);
void zl_cuda_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                  zl_dtype src_type, size_t n);

/* ---- cuda_gelu.cu ---- */
void zl_cuda_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n);
void zl_cuda_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                           size_t n);

/* ---- cuda_embedding.cu (and the vocabulary-parallel shards) ---- */
void zl_cuda_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                               const float *wte, const float *wpe, int B, int T, int C);
void zl_cuda_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                const int32_t *tokens, int B, int T, int C);
void zl_cuda_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                     const float *wte, int v0, int v1, const float *wpe, int B,
                                     int T, int C);
void zl_cuda_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                      const float *dout, const int32_t *tokens, int v0, int v1,
                                      int B, int T, int C);

/* ---- cuda_adamw.cu ---- */
void zl_cuda_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                   zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                   const zl_adamw_args *args);

/* ---- cuda_layernorm.cu ---- */
void zl_cuda_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                               const float *inp, const float *weight, const float *bias, int N,
                               int C);
void zl_cuda_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                const float *mean, const float *rstd, int N, int C);

/* ---- cuda_attention.cu: causal attention on fused QKV (B,T,3C), probabilities kept ---- */
void zl_cuda_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                               int T, int C, int NH);
void zl_cuda_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                const float *qkv, const float *att, int B, int T, int C, int NH);

/* ---- cuda_crossentropy.cu (and the vocabulary-parallel passes) ---- */
void zl_cuda_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                  const float *logits, const int32_t *targets, int N, int V);
void zl_cuda_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, float dloss, int N, int V);
void zl_cuda_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N,
                                    int V);
void zl_cuda_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum,
                                    const float *logits, const float *rowmax, int N, int V);
void zl_cuda_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs,
                                     const float *logits, const float *rowmax,
                                     const float *rowsum, const int32_t *targets, int v0, int N,
                                     int V);
void zl_cuda_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                         const int32_t *targets, int v0, float dloss, int N,
                                         int V);

#ifdef __cplusplus
}
#endif

#endif
