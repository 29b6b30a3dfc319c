/* Token and position embeddings on the GPU, and their vocabulary-parallel shards (ops.h;
 * ref: backends/ref/ref_embedding.c, ref_shard.c).
 *
 *   forward    out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
 *   backward   dwte[tokens[b,t],:] += dout[b,t,:];  dwpe[t,:] += sum_b dout[b,t,:]
 *   shards     the same over wte's rows [v0, v1) (index tok - v0; other tokens contribute
 *              0 forward and nothing backward); wpe / dwte / dwpe may be NULL (skipped)
 *
 * tokens (B,T) int32, wte (V,C), wpe (maxT,C), out and dout (B,T,C). N = B*T rows.
 *
 * Backward is deterministic, and bit for bit ref's: every sum is taken in ref's order.
 *   dwpe: one thread per (t, c) adds dout[0,t,c], dout[1,t,c], ... in b order onto
 *         dwpe[t,c], ref's loop order.
 *   dwte: tokens repeat, so rows of dout land on the same row of dwte. Atomics would add
 *         them in a different order each run (float addition is not associative), so
 *         instead the row of a token's FIRST occurrence owns that token: its block adds,
 *         in row order, every row with the same token (found by scanning tokens from its
 *         row on, 32 at a time with warp ballots), onto dwte[token] in place: the
 *         order ref adds them in, no atomics, no scratch. A block whose token occurred
 *         earlier exits after its scan.
 *   Cost: each owning block scans the N - row tokens after it (and every block the rows
 *   before it): O(N x distinct tokens) int comparisons, from L1/L2 (tokens are 4N
 *   bytes), plus the unavoidable N*C reads of dout. For GPT-2's N = 8K..64K rows this is
 *   about a millisecond at most; llm.c's encoder_backward (tokens bucketed on the host) is
 *   the route if it ever shows in a profile. A token occurring k times is summed by one
 *   block in k sequential steps, like ref. */
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/cuda_reduce.cuh"

#define THREADS 256

/* ---- forward ------------------------------------------------------------------------ */

/* out (N,C) flattened: element i is row bt = i / C, channel c = i % C. A token outside
 * [v0, v1) contributes 0; wpe NULL contributes 0 (as ref_shard: (w ? w : 0) + (p ? p : 0);
 * the full embedding is v0 = 0, v1 = INT_MAX with wpe set, and w + p is then exactly
 * ref_embedding's sum). */
__global__ static void embedding_forward_kernel(float *out, const int32_t *tokens,
                                                const float *wte, int v0, int v1,
                                                const float *wpe, int T, int C, size_t total)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / (size_t)C;
        int c = (int)(i % (size_t)C);
        int tok = tokens[bt];
        int t = (int)(bt % (size_t)T);
        float w = tok >= v0 && tok < v1 ? wte[(size_t)(tok - v0) * C + c] : 0.0f;
        float p = wpe ? wpe[(size_t)t * C + c] : 0.0f;
        out[i] = w + p;
    }
}

static void embedding_forward(zl_cuda_ctx *ctx, float *out, const int32_t *tokens,
                              const float *wte, int v0, int v1, const float *wpe, int B, int T,
                              int C)
{
    if (B <= 0 || T <= 0 || C <= 0) return;
    size_t total = (size_t)B * T * C;
    embedding_forward_kernel<<<zl__cuda_grid(ctx, total), THREADS, 0, ctx->compute>>>(
        out, tokens, wte, v0, v1, wpe, T, C, total);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

extern "C" void zl_cuda_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                          const float *wte, const float *wpe, int B, int T, int C)
{
    /* 0 <= token < V is the caller's check (ops.h), so [0, INT32_MAX) takes every token. */
    embedding_forward(zl_cuda_ctx_of(self), out, tokens, wte, 0, INT32_MAX, wpe, B, T, C);
}

extern "C" void zl_cuda_embedding_shard_forward(const zl_ops *self, float *out,
                                                const int32_t *tokens, const float *wte, int v0,
                                                int v1, const float *wpe, int B, int T, int C)
{
    embedding_forward(zl_cuda_ctx_of(self), out, tokens, wte, v0, v1, wpe, B, T, C);
}

/* ---- backward: positions ------------------------------------------------------------ */

/* dwpe (T,C) += sum over b of dout (B,T,C): thread per (t, c), b in ref's order */
__global__ static void embedding_backward_wpe_kernel(float *dwpe, const float *dout, int B, int T,
                                                     int C)
{
    size_t tc_count = (size_t)T * C;
    for (size_t tc = (size_t)blockIdx.x * blockDim.x + threadIdx.x; tc < tc_count;
         tc += (size_t)gridDim.x * blockDim.x) {
        float acc = dwpe[tc];
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * tc_count + tc];
        dwpe[tc] = acc;
    }
}

/* ---- backward: tokens --------------------------------------------------------------- */

/* Block `row` (one per row of dout, N = B*T of them, THREADS threads): if tokens[row] is in
 * [v0, v1) and occurs nowhere before row, add every row r >= row with the same token to
 * dwte[token - v0] in increasing r (ref's order); otherwise do nothing. */
__global__ static void embedding_backward_wte_kernel(float *dwte, const float *dout,
                                                     const int32_t *tokens, int v0, int v1,
                                                     int N, int C)
{
    __shared__ unsigned match[THREADS / 32]; /* one ballot per warp: rows that match */
    int row = blockIdx.x;
    int tok = tokens[row];
    if (tok < v0 || tok >= v1) return; /* uniform over the block */

    /* An earlier occurrence owns this token. */
    int seen = 0;
    for (int r = threadIdx.x; r < row && !seen; r += blockDim.x) seen = tokens[r] == tok;
    if (__syncthreads_or(seen)) return;

    float *dst = dwte + (size_t)(tok - v0) * C;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int r0 = row; r0 < N; r0 += blockDim.x) {
        int r = r0 + threadIdx.x;
        unsigned ballot = __ballot_sync(0xffffffffu, r < N && tokens[r] == tok);
        if (lane == 0) match[warp] = ballot;
        __syncthreads();
        /* the chunk's matching rows in increasing order; every thread does its channels */
        for (int w = 0; w < THREADS / 32; w++) {
            unsigned bits = match[w];
            while (bits) {
                int k = __ffs(bits) - 1;
                bits &= bits - 1;
                const float *src = dout + (size_t)(r0 + w * 32 + k) * C;
                for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] += src[c];
            }
        }
        __syncthreads(); /* match[] is rewritten by the next chunk */
    }
}

static void embedding_backward(zl_cuda_ctx *ctx, float *dwte, float *dwpe, const float *dout,
                               const int32_t *tokens, int v0, int v1, int B, int T, int C)
{
    if (B <= 0 || T <= 0 || C <= 0) return;
    int N = B * T; /* rows: one block each (grid x allows 2^31 - 1) */
    if (dwte) {
        embedding_backward_wte_kernel<<<N, THREADS, 0, ctx->compute>>>(dwte, dout, tokens, v0,
                                                                        v1, N, C);
        ZL_CUDA_CHECK(ctx, cudaGetLastError());
    }
    if (dwpe) {
        embedding_backward_wpe_kernel<<<zl__cuda_grid(ctx, (size_t)T * C), THREADS, 0,
                                        ctx->compute>>>(dwpe, dout, B, T, C);
        ZL_CUDA_CHECK(ctx, cudaGetLastError());
    }
}

extern "C" void zl_cuda_embedding_backward(const zl_ops *self, float *dwte, float *dwpe,
                                           const float *dout, const int32_t *tokens, int B, int T,
                                           int C)
{
    embedding_backward(zl_cuda_ctx_of(self), dwte, dwpe, dout, tokens, 0, INT32_MAX, B, T, C);
}

extern "C" void zl_cuda_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                                 const float *dout, const int32_t *tokens, int v0,
                                                 int v1, int B, int T, int C)
{
    embedding_backward(zl_cuda_ctx_of(self), dwte, dwpe, dout, tokens, v0, v1, B, T, C);
}
