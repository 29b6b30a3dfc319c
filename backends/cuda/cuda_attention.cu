/* Causal multi-head self-attention on the fused q|k|v projection, on the GPU: the
 * semantics of ref_attention.c (read it first), computed llm.c's way (attention_forward
 * with cuBLAS batched GEMMs and a causal softmax kernel), but with no permute.
 *
 * qkv (B,T,3C) row (b,t) holds q | k | v; head h's q for all t is the (T, HS) matrix at
 * qkv + b*T*3C + h*HS with leading dimension 3C, k at +C, v at +2C: each head's q, k and
 * v already ARE matrices cuBLAS can read with lda = 3C, and out (B,T,C) head h is the
 * (T, HS) matrix at out + b*T*C + h*HS with leading dimension C. So the GEMMs run on the
 * strided layout directly, and llm.c's permute into (B,NH,T,HS) buffers, its unpermute
 * and their 3*B*T*C + B*T*C floats of workspace are not needed.
 *
 * The (b, h) pairs are not one uniform stride apart (h steps HS, b steps T*3C), so one
 * strided-batched call covers one of the two indices and a loop runs the other: the batch
 * is over heads (NH) and the loop over b, or the other way round when B > NH, whichever
 * makes fewer calls.
 *
 * Forward, per (b, h):
 *   att (T,T)  = scale * q (T,HS) @ k^T (HS,T)          GEMM, all T x T (the masked upper
 *                                                       half is computed and discarded)
 *   att        = causal softmax of each row, 0 above the diagonal          kernel
 *   out (T,HS) = att (T,T) @ v (T,HS)                    GEMM (att's zeros do the masking)
 * Backward, per (b, h), scratch = datt (B,NH,T,T) | dpreatt (B,NH,T,T) as in ref:
 *   datt (T,T)     = dout (T,HS) @ v^T                   GEMM (upper half unused)
 *   dv (T,HS)     += att^T @ dout                        GEMM, beta 1
 *   dpreatt        = att * (datt - rowsum(att * datt)), 0 above the diagonal   kernel
 *   dq (T,HS)     += scale * dpreatt @ k                 GEMM, beta 1
 *   dk (T,HS)     += scale * dpreatt^T @ q               GEMM, beta 1
 * All fp32 (CUBLAS_COMPUTE_32F, no TF32: cuda_gemm.cu says why). */
#include <math.h>

#include "backends/cuda/cuda_ops.h"

#define ROWS_PER_BLOCK 8 /* softmax kernels: one warp per row, blockDim (32, 8) */

/* Row-major C = alpha op(A) op(B) + beta C for `count` problems, problem i's operands at
 * a + i*sa, b + i*sb, c + i*sc: cublasGemmStridedBatchedEx with the operand swap of
 * cuda_gemm.cu (C^T = op(B)^T op(A)^T column-major). */
static void gemm_batched(zl_cuda_ctx *ctx, bool trans_a, bool trans_b, int m, int n, int k,
                         float alpha, const float *a, int lda, long long sa, const float *b,
                         int ldb, long long sb, float beta, float *c, int ldc, long long sc,
                         int count)
{
    ZL_CUBLAS_CHECK(ctx, cublasGemmStridedBatchedEx(
                             ctx->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                             trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_32F,
                             ldb, sb, a, CUDA_R_32F, lda, sa, &beta, c, CUDA_R_32F, ldc, sc, count,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* Where (b, h)'s matrices start, as an outer loop index o and a batch index i:
 * offset = o * X_outer + i * X_inner, for X = qkv (per-head q; k, v at +C, +2C), out (and
 * dout), att (and the two scratch halves). */
typedef struct heads {
    int outer, inner;
    long long qkv_outer, qkv_inner, out_outer, out_inner, att_outer, att_inner;
} heads;

static heads heads_of(int B, int T, int C, int NH)
{
    long long HS = C / NH, TT = (long long)T * T;
    heads hd;
    if (NH >= B) { /* loop over b, batch over h */
        hd.outer = B, hd.inner = NH;
        hd.qkv_outer = (long long)T * 3 * C, hd.qkv_inner = HS;
        hd.out_outer = (long long)T * C, hd.out_inner = HS;
        hd.att_outer = NH * TT, hd.att_inner = TT;
    } else { /* loop over h, batch over b */
        hd.outer = NH, hd.inner = B;
        hd.qkv_outer = HS, hd.qkv_inner = (long long)T * 3 * C;
        hd.out_outer = HS, hd.out_inner = (long long)T * C;
        hd.att_outer = TT, hd.att_inner = NH * TT;
    }
    return hd;
}

__device__ static float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ static float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* att (rows, T), rows = B*NH*T, in place: row r is query t = r % T; its scores (already
 * scaled) at t2 <= t become softmax probabilities, t2 > t become 0. One warp per row.
 * fmaxf ignores NaN as ref's `>` does; the NaN then reaches the sum, as in ref. */
__global__ static void causal_softmax_kernel(float *att, size_t rows, int T)
{
    size_t row = (size_t)blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return; /* the whole warp: shuffles stay full-warp */
    int lane = threadIdx.x, t = (int)(row % T);
    float *p = att + row * T;

    float maxval = -INFINITY;
    for (int t2 = lane; t2 <= t; t2 += 32) maxval = fmaxf(maxval, p[t2]);
    maxval = warp_max(maxval);

    float sum = 0.0f;
    for (int t2 = lane; t2 <= t; t2 += 32) {
        float e = expf(p[t2] - maxval);
        p[t2] = e; /* each lane re-reads only what it wrote */
        sum += e;
    }
    sum = warp_sum(sum);
    for (int t2 = lane; t2 < T; t2 += 32) p[t2] = t2 <= t ? p[t2] / sum : 0.0f;
}

/* dpreatt (rows, T) = att * (datt - sum_{t3<=t} att * datt) for t2 <= t, else 0; rows
 * and t as in causal_softmax_kernel. */
__global__ static void causal_softmax_backward_kernel(float *dpreatt, const float *datt,
                                                      const float *att, size_t rows, int T)
{
    size_t row = (size_t)blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= rows) return;
    int lane = threadIdx.x, t = (int)(row % T);
    const float *a = att + row * T, *da = datt + row * T;
    float *dp = dpreatt + row * T;

    float dot = 0.0f;
    for (int t2 = lane; t2 <= t; t2 += 32) dot += a[t2] * da[t2];
    dot = warp_sum(dot);
    for (int t2 = lane; t2 < T; t2 += 32) dp[t2] = t2 <= t ? a[t2] * (da[t2] - dot) : 0.0f;
}

static unsigned row_blocks(size_t rows)
{
    return (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
}

void zl_cuda_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                               int T, int C, int NH)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    int C3 = 3 * C, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    heads hd = heads_of(B, T, C, NH);

    /* att = scale * q @ k^T */
    for (int o = 0; o < hd.outer; o++) {
        const float *q = qkv + o * hd.qkv_outer, *k = q + C;
        gemm_batched(ctx, false, true, T, T, HS, scale, q, C3, hd.qkv_inner, k, C3, hd.qkv_inner,
                     0.0f, att + o * hd.att_outer, T, hd.att_inner, hd.inner);
    }

    size_t rows = (size_t)B * NH * T;
    causal_softmax_kernel<<<row_blocks(rows), dim3(32, ROWS_PER_BLOCK), 0, ctx->compute>>>(
        att, rows, T);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());

    /* out = att @ v */
    for (int o = 0; o < hd.outer; o++) {
        const float *v = qkv + o * hd.qkv_outer + 2 * C;
        gemm_batched(ctx, false, false, T, HS, T, 1.0f, att + o * hd.att_outer, T, hd.att_inner, v,
                     C3, hd.qkv_inner, 0.0f, out + o * hd.out_outer, C, hd.out_inner, hd.inner);
    }
}

void zl_cuda_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                const float *qkv, const float *att, int B, int T, int C, int NH)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    int C3 = 3 * C, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    heads hd = heads_of(B, T, C, NH);
    float *datt = scratch;                               /* (B,NH,T,T) */
    float *dpreatt = scratch + (size_t)B * NH * T * T;   /* (B,NH,T,T) */

    for (int o = 0; o < hd.outer; o++) {
        const float *v = qkv + o * hd.qkv_outer + 2 * C, *dout_o = dout + o * hd.out_outer;
        const float *att_o = att + o * hd.att_outer;
        float *dv = dqkv + o * hd.qkv_outer + 2 * C;
        /* datt = dout @ v^T */
        gemm_batched(ctx, false, true, T, T, HS, 1.0f, dout_o, C, hd.out_inner, v, C3,
                     hd.qkv_inner, 0.0f, datt + o * hd.att_outer, T, hd.att_inner, hd.inner);
        /* dv += att^T @ dout (att is 0 above the diagonal: only queries t >= t2 count) */
        gemm_batched(ctx, true, false, T, HS, T, 1.0f, att_o, T, hd.att_inner, dout_o, C,
                     hd.out_inner, 1.0f, dv, C3, hd.qkv_inner, hd.inner);
    }

    size_t rows = (size_t)B * NH * T;
    causal_softmax_backward_kernel<<<row_blocks(rows), dim3(32, ROWS_PER_BLOCK), 0,
                                     ctx->compute>>>(dpreatt, datt, att, rows, T);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());

    for (int o = 0; o < hd.outer; o++) {
        const float *q = qkv + o * hd.qkv_outer, *k = q + C;
        const float *dp = dpreatt + o * hd.att_outer;
        float *dq = dqkv + o * hd.qkv_outer, *dk = dq + C;
        /* dq += scale * dpreatt @ k */
        gemm_batched(ctx, false, false, T, HS, T, scale, dp, T, hd.att_inner, k, C3,
                     hd.qkv_inner, 1.0f, dq, C3, hd.qkv_inner, hd.inner);
        /* dk += scale * dpreatt^T @ q */
        gemm_batched(ctx, true, false, T, HS, T, scale, dp, T, hd.att_inner, q, C3,
                     hd.qkv_inner, 1.0f, dk, C3, hd.qkv_inner, hd.inner);
    }
}
