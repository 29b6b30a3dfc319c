/* Launch shapes and deterministic sums in double for the CUDA kernels (sumsq, adamw's
 * optional sumsq).
 *
 * A sum of n values runs in two kernels with a fixed shape: ZL_CUDA_REDUCE_BLOCKS blocks
 * at most (fewer when n is small; the count depends on n only, never on the card), each
 * block summing its grid-stride slice in double and reducing its threads with a fixed
 * tree (warp shuffles, then one warp over the warps' sums) into partials[block]; then one
 * block sums the partials with the same tree. No atomics on doubles, so a rerun of the
 * same n and data gives the same bits, on any card.
 *
 * The partials live in a __device__ array of cuda_vector.cu (8 KiB, loaded with the
 * module: kernels allocate nothing); every sum runs on ctx->compute, so the array is
 * never used by two sums at once. */
#ifndef ZL_BACKENDS_CUDA_CUDA_REDUCE_CUH
#define ZL_BACKENDS_CUDA_CUDA_REDUCE_CUH

#include "backends/cuda/cuda_ops.h"

#define ZL_CUDA_REDUCE_THREADS 256 /* threads of every block that calls the block sum */
#define ZL_CUDA_REDUCE_BLOCKS 1024 /* most blocks (partials) of one sum */

/* Blocks for a grid-stride pass over n elements with one partial per block. */
static inline int zl__cuda_reduce_blocks(size_t n)
{
    size_t b = (n + ZL_CUDA_REDUCE_THREADS - 1) / ZL_CUDA_REDUCE_THREADS;
    return b < 1 ? 1 : b > ZL_CUDA_REDUCE_BLOCKS ? ZL_CUDA_REDUCE_BLOCKS : (int)b;
}

/* Blocks of ZL_CUDA_REDUCE_THREADS threads for an element-wise grid-stride kernel over n
 * elements: enough to fill the card (16 blocks per SM), no more (the loop strides). n > 0. */
static inline unsigned zl__cuda_grid(const zl_cuda_ctx *ctx, size_t n)
{
    size_t cap = ctx->sm_count > 0 ? (size_t)ctx->sm_count * 16 : 4096;
    size_t b = (n + ZL_CUDA_REDUCE_THREADS - 1) / ZL_CUDA_REDUCE_THREADS;
    return (unsigned)(b < cap ? b : cap);
}

/* The sum of v over the block (blockDim.x == ZL_CUDA_REDUCE_THREADS), valid in thread 0.
 * Every thread must call it (it synchronises the block). */
static __device__ __forceinline__ double zl__cuda_block_sum(double v)
{
    __shared__ double warp_sums[ZL_CUDA_REDUCE_THREADS / 32];
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < ZL_CUDA_REDUCE_THREADS / 32 ? warp_sums[lane] : 0.0;
        for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    }
    return v;
}

/* The device array of partials (ZL_CUDA_REDUCE_BLOCKS doubles), for kernels of other
 * files to write one partial per block into. */
double *zl__cuda_partials(zl_cuda_ctx *ctx);
/* Sums partials[0, nblocks) (written by kernels queued on ctx->compute) in a fixed tree,
 * waits for the compute stream and returns the sum (0 after a CUDA error). */
double zl__cuda_finish_sum(zl_cuda_ctx *ctx, int nblocks);

#endif
