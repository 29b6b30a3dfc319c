/* Fused softmax + cross-entropy over the vocabulary, and Megatron's vocabulary-parallel
 * passes, on the GPU: the semantics of ref_crossentropy.c and ref_shard.c (read them
 * first). A target < 0 is ignored: loss 0, no gradient.
 *
 * One block per row of logits (N,V) (llm.c's fused classifier kernels): the block's
 * threads stride over the V columns, and the row's max and sum are block reductions
 * (warp shuffles, then one warp over the warps' results: a fixed order, so deterministic).
 * V need not be a multiple of anything. Rows are addressed with size_t, since N*V passes
 * 2^31 at GPT-2's vocabulary from N = 42k rows.
 *
 * The forward kernel reads the row three times (max; sum of exp; probs = exp / sum) and
 * writes it once: expf is recomputed rather than stored and re-read, which moves fewer
 * bytes, and gives the very same values as ref's exp-then-divide (same expf arguments). */
#include <math.h>

#include "backends/cuda/cuda_ops.h"

#define BLOCK 512 /* threads per row */

/* The block's reduction (sum, or max with is_max) of each thread's v, returned to every
 * thread. Uses 32 floats of shared memory; every thread of the block must call it. */
__device__ static float block_reduce(float v, bool is_max)
{
    __shared__ float partial[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
    for (int offset = 16; offset > 0; offset >>= 1) {
        float o = __shfl_xor_sync(0xffffffffu, v, offset);
        v = is_max ? fmaxf(v, o) : v + o;
    }
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? partial[lane] : (is_max ? -INFINITY : 0.0f);
        for (int offset = 16; offset > 0; offset >>= 1) {
            float o = __shfl_xor_sync(0xffffffffu, v, offset);
            v = is_max ? fmaxf(v, o) : v + o;
        }
        if (lane == 0) partial[0] = v;
    }
    __syncthreads();
    v = partial[0];
    __syncthreads(); /* partial is free again for the next call */
    return v;
}

/* max over the row l (V): fmaxf skips NaN as ref's `>` does */
__device__ static float row_max(const float *l, int V)
{
    float m = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, l[j]);
    return block_reduce(m, true);
}

/* losses (N), probs (N,V) from logits (N,V), targets (N); block = row */
__global__ static void crossentropy_forward_kernel(float *losses, float *probs,
                                                   const float *logits, const int32_t *targets,
                                                   int V)
{
    size_t n = blockIdx.x;
    const float *l = logits + n * V;
    float *p = probs + n * V;

    float maxval = row_max(l, V);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) sum += expf(l[j] - maxval);
    sum = block_reduce(sum, false);
    for (int j = threadIdx.x; j < V; j += blockDim.x) p[j] = expf(l[j] - maxval) / sum;

    if (threadIdx.x == 0) {
        int y = targets[n];
        losses[n] = y < 0 ? 0.0f : logf(sum) + maxval - l[y];
    }
}

/* dlogits (N,V) += dloss * (probs - [j == y]), y = targets[n] - v0 (v0 = 0 for the whole
 * vocabulary; a shard's target may be outside [0, V): no column matches), for rows with
 * targets[n] >= 0. One block per row. */
__global__ static void crossentropy_backward_kernel(float *dlogits, const float *probs,
                                                    const int32_t *targets, int v0, float dloss,
                                                    int V)
{
    size_t n = blockIdx.x;
    if (targets[n] < 0) return; /* ignored row: no gradient at all */
    int y = targets[n] - v0;
    const float *p = probs + n * V;
    float *dl = dlogits + n * V;
    for (int j = threadIdx.x; j < V; j += blockDim.x)
        dl[j] += dloss * (p[j] - (j == y ? 1.0f : 0.0f));
}

/* rowmax (N) = max_j logits[n,j] */
__global__ static void shard_max_kernel(float *rowmax, const float *logits, int V)
{
    size_t n = blockIdx.x;
    float m = row_max(logits + n * V, V);
    if (threadIdx.x == 0) rowmax[n] = m;
}

/* probs = exp(logits - rowmax); rowsum (N) = sum_j probs */
__global__ static void shard_exp_kernel(float *probs, float *rowsum, const float *logits,
                                        const float *rowmax, int V)
{
    size_t n = blockIdx.x;
    const float *l = logits + n * V;
    float *p = probs + n * V;
    float m = rowmax[n], sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        p[j] = expf(l[j] - m);
        sum += p[j];
    }
    sum = block_reduce(sum, false);
    if (threadIdx.x == 0) rowsum[n] = sum;
}

/* probs /= rowsum; losses[n] = log(rowsum) + rowmax - logits[n, y - v0] when the target is
 * one of this shard's words, else 0 */
__global__ static void shard_loss_kernel(float *losses, float *probs, const float *logits,
                                         const float *rowmax, const float *rowsum,
                                         const int32_t *targets, int v0, int V)
{
    size_t n = blockIdx.x;
    float *p = probs + n * V;
    float s = rowsum[n];
    for (int j = threadIdx.x; j < V; j += blockDim.x) p[j] /= s;
    if (threadIdx.x == 0) {
        int y = targets[n] - v0;
        losses[n] = targets[n] >= 0 && y >= 0 && y < V
                        ? logf(s) + rowmax[n] - logits[n * V + y]
                        : 0.0f;
    }
}

/* One block per row. The fused pair needs V > 0 (a row's loss reads logits[y]); the shard
 * passes run for V = 0 too, as ref's loops do: a rank holding no words still writes
 * rowmax = -inf, rowsum = 0 and losses = 0 for the group's reductions. */
static bool launchable(int N, int V) { return N > 0 && V > 0; }
static bool shard_launchable(int N, int V) { return N > 0 && V >= 0; }

void zl_cuda_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                  const float *logits, const int32_t *targets, int N, int V)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!launchable(N, V)) return;
    crossentropy_forward_kernel<<<(unsigned)N, BLOCK, 0, ctx->compute>>>(losses, probs, logits,
                                                                        targets, V);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

void zl_cuda_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, float dloss, int N, int V)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!launchable(N, V)) return;
    crossentropy_backward_kernel<<<(unsigned)N, BLOCK, 0, ctx->compute>>>(dlogits, probs,
                                                                         targets, 0, dloss, V);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

void zl_cuda_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N,
                                    int V)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!shard_launchable(N, V)) return;
    shard_max_kernel<<<(unsigned)N, BLOCK, 0, ctx->compute>>>(rowmax, logits, V);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

void zl_cuda_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum,
                                    const float *logits, const float *rowmax, int N, int V)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!shard_launchable(N, V)) return;
    shard_exp_kernel<<<(unsigned)N, BLOCK, 0, ctx->compute>>>(probs, rowsum, logits, rowmax, V);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

void zl_cuda_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs,
                                     const float *logits, const float *rowmax,
                                     const float *rowsum, const int32_t *targets, int v0, int N,
                                     int V)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!shard_launchable(N, V)) return;
    shard_loss_kernel<<<(unsigned)N, BLOCK, 0, ctx->compute>>>(losses, probs, logits, rowmax,
                                                              rowsum, targets, v0, V);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

void zl_cuda_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                         const int32_t *targets, int v0, float dloss, int N,
                                         int V)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!launchable(N, V)) return;
    crossentropy_backward_kernel<<<(unsigned)N, BLOCK, 0, ctx->compute>>>(dlogits, probs,
                                                                         targets, v0, dloss, V);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}
