/* LayerNorm on the GPU (llm.c's layernorm_forward_kernel3 / layernorm_backward), the
 * semantics of ref_layernorm.c: eps 1e-5, biased variance, mean (N) and rstd (N) saved;
 * backward accumulates (+=) into dinp, dweight and dbias.
 *
 * Forward and the dinp part of backward: one warp per row of (N,C); the row's sums are
 * warp reductions (shuffles), so any C works (odd, < 32, > 1024). Same formulas as ref
 * (two-pass mean then variance, rstd = 1/sqrtf(var + eps), not rsqrtf's approximation);
 * only the order of the sums differs.
 *
 * dweight (C) and dbias (C) are sums over all N rows: llm.c adds them with float atomics,
 * whose order (and so whose rounding) changes from run to run. Here they are
 * deterministic: pass 1 gives each block a tile of 32 columns and a chunk of rows, and
 * writes its partial sums (fixed order within the block) to the workspace's scratch;
 * pass 2 adds the chunks in chunk order into dweight/dbias. The chunk count depends only on
 * the shapes, the SM count and the scratch size, so a run repeats bit for bit. With one
 * chunk (little scratch, or few rows) pass 1 adds straight into dweight/dbias.
 * Scratch: 2 * chunks * C floats, chunks <= 2 * SMs / ceil(C/32) (e.g. C = 768 on 132 SMs:
 * 11 chunks, 66 KiB). */
#include "backends/cuda/cuda_ops.h"

#define LAYERNORM_EPS 1e-5f
#define ROWS_PER_BLOCK 8 /* warps per block in the row kernels: blockDim (32, 8) */
#define TILE 32          /* columns per block in the dweight/dbias pass */
#define TILE_ROWS 8      /* threads along the rows in that pass: blockDim (32, 8) */

__device__ static float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

/* out, inp (N,C); mean, rstd (N); weight, bias (C). Warp threadIdx.y of block blockIdx.x
 * owns row blockIdx.x * 8 + threadIdx.y; lane threadIdx.x takes columns lane, lane+32, ... */
__global__ static void layernorm_forward_kernel(float *out, float *mean, float *rstd,
                                                const float *inp, const float *weight,
                                                const float *bias, int N, int C)
{
    int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= N) return; /* the whole warp leaves: the shuffles below stay full-warp */
    int lane = threadIdx.x;
    const float *x = inp + (size_t)row * C;
    float *y = out + (size_t)row * C;

    float sum = 0.0f;
    for (int i = lane; i < C; i += 32) sum += x[i];
    float m = warp_sum(sum) / C;

    float var = 0.0f;
    for (int i = lane; i < C; i += 32) var += (x[i] - m) * (x[i] - m);
    var = warp_sum(var) / C;

    float s = 1.0f / sqrtf(var + LAYERNORM_EPS);
    for (int i = lane; i < C; i += 32) y[i] = (x[i] - m) * s * weight[i] + bias[i];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

void zl_cuda_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                               const float *inp, const float *weight, const float *bias, int N,
                               int C)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (N <= 0 || C <= 0) return;
    dim3 block(32, ROWS_PER_BLOCK);
    unsigned grid = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    layernorm_forward_kernel<<<grid, block, 0, ctx->compute>>>(out, mean, rstd, inp, weight, bias,
                                                               N, C);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* dinp (N,C) += rstd * (g - mean(g) - norm * mean(g * norm)), g = dout * weight, one warp
 * per row as in the forward kernel. */
__global__ static void layernorm_backward_dinp_kernel(float *dinp, const float *dout,
                                                      const float *inp, const float *weight,
                                                      const float *mean, const float *rstd, int N,
                                                      int C)
{
    int row = blockIdx.x * blockDim.y + threadIdx.y;
    if (row >= N) return;
    int lane = threadIdx.x;
    const float *x = inp + (size_t)row * C;
    const float *dy = dout + (size_t)row * C;
    float *dx = dinp + (size_t)row * C;
    float m = mean[row], s = rstd[row];

    float g_mean = 0.0f, g_norm_mean = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float norm = (x[i] - m) * s;
        float g = dy[i] * weight[i];
        g_mean += g;
        g_norm_mean += g * norm;
    }
    g_mean = warp_sum(g_mean) / C;
    g_norm_mean = warp_sum(g_norm_mean) / C;

    for (int i = lane; i < C; i += 32) {
        float norm = (x[i] - m) * s;
        float g = dy[i] * weight[i];
        dx[i] += s * (g - g_mean - norm * g_norm_mean);
    }
}

/* Pass 1 of dweight/dbias: block (blockIdx.x, blockIdx.y) sums columns
 * [blockIdx.x*32, +32) over the rows of chunk blockIdx.y ([r0, r1), rows_per_chunk each):
 *   dbias_part  = sum dout,   dweight_part = sum dout * norm
 * Thread (tx, ty) takes column tx, rows r0+ty, r0+ty+8, ... (coalesced along tx); the 8
 * partial sums of a column are then added in ty order through shared memory. With
 * accumulate, the result is added into dweight/dbias (C) directly (one chunk); otherwise
 * written to part_w / part_b (chunks, C), row blockIdx.y. */
__global__ static void layernorm_backward_params_kernel(float *part_w, float *part_b,
                                                        bool accumulate, const float *dout,
                                                        const float *inp, const float *mean,
                                                        const float *rstd, int N, int C,
                                                        int rows_per_chunk)
{
    __shared__ float sw[TILE_ROWS][TILE], sb[TILE_ROWS][TILE];
    int col = blockIdx.x * TILE + threadIdx.x;
    int r0 = blockIdx.y * rows_per_chunk;
    int r1 = r0 + rows_per_chunk < N ? r0 + rows_per_chunk : N;

    float w = 0.0f, b = 0.0f;
    if (col < C) {
        for (int row = r0 + threadIdx.y; row < r1; row += TILE_ROWS) {
            size_t idx = (size_t)row * C + col;
            float dy = dout[idx];
            float norm = (inp[idx] - mean[row]) * rstd[row];
            b += dy;
            w += dy * norm;
        }
    }
    sw[threadIdx.y][threadIdx.x] = w;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y != 0 || col >= C) return;
    for (int y = 1; y < TILE_ROWS; y++) {
        w += sw[y][threadIdx.x];
        b += sb[y][threadIdx.x];
    }
    if (accumulate) {
        part_w[col] += w;
        part_b[col] += b;
    } else {
        part_w[(size_t)blockIdx.y * C + col] = w;
        part_b[(size_t)blockIdx.y * C + col] = b;
    }
}

/* Pass 2: dweight[c] += sum over chunks of part_w[chunk, c], in chunk order; same for b. */
__global__ static void layernorm_backward_params_sum_kernel(float *dweight, float *dbias,
                                                            const float *part_w,
                                                            const float *part_b, int chunks,
                                                            int C)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= C) return;
    float w = 0.0f, b = 0.0f;
    for (int r = 0; r < chunks; r++) {
        w += part_w[(size_t)r * C + col];
        b += part_b[(size_t)r * C + col];
    }
    dweight[col] += w;
    dbias[col] += b;
}

void zl_cuda_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                const float *mean, const float *rstd, int N, int C)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (N <= 0 || C <= 0) return;

    dim3 block(32, ROWS_PER_BLOCK);
    unsigned grid = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    layernorm_backward_dinp_kernel<<<grid, block, 0, ctx->compute>>>(dinp, dout, inp, weight,
                                                                     mean, rstd, N, C);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());

    /* chunks of rows: enough blocks to fill the GPU twice, no chunk thinner than a block's
     * 8 row-threads, and partial sums that fit the scratch */
    int tiles = (C + TILE - 1) / TILE;
    int sms = ctx->sm_count > 0 ? ctx->sm_count : 80;
    int chunks = (2 * sms + tiles - 1) / tiles;
    int max_chunks = (N + TILE_ROWS - 1) / TILE_ROWS;
    if (chunks > max_chunks) chunks = max_chunks;
    size_t avail = 0;
    float *scratch = (float *)zl_cuda_scratch(ctx, &avail);
    size_t fit = avail / (2 * (size_t)C * sizeof(float));
    if ((size_t)chunks > fit) chunks = (int)fit;
    if (chunks < 1) chunks = 1;
    int rows_per_chunk = (N + chunks - 1) / chunks;
    chunks = (N + rows_per_chunk - 1) / rows_per_chunk; /* no empty chunk at the end */

    dim3 pblock(TILE, TILE_ROWS), pgrid((unsigned)tiles, (unsigned)chunks);
    if (chunks == 1) {
        layernorm_backward_params_kernel<<<pgrid, pblock, 0, ctx->compute>>>(
            dweight, dbias, true, dout, inp, mean, rstd, N, C, rows_per_chunk);
        ZL_CUDA_CHECK(ctx, cudaGetLastError());
        return;
    }
    float *part_w = scratch, *part_b = scratch + (size_t)chunks * C;
    layernorm_backward_params_kernel<<<pgrid, pblock, 0, ctx->compute>>>(
        part_w, part_b, false, dout, inp, mean, rstd, N, C, rows_per_chunk);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
    layernorm_backward_params_sum_kernel<<<(unsigned)((C + 255) / 256), 256, 0, ctx->compute>>>(
        dweight, dbias, part_w, part_b, chunks, C);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}
