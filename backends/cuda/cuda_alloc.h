/* The CUDA backend's caching allocator, as bookkeeping only: which byte ranges of one
 * arena (the device memory cuda.cu reserves once at setup) are handed out. It never
 * touches the arena's memory, so it is plain C, and tests/unit/check_cuda_alloc.c runs it
 * on any machine against an arena of ordinary host memory.
 *
 * Why an arena and not cudaMalloc per tensor: cudaMalloc and cudaFree synchronise the
 * device and cost tens of microseconds, and ZeRO-3 gathers and frees parameters every
 * layer; a caching allocator (PyTorch's does the same) makes both a few list operations.
 * Reserving the budget once also makes an out-of-memory failure happen where the ledger
 * says it does, not when the driver runs out.
 *
 * Blocks are 256-byte aligned offsets (cuBLAS and vectorised kernels want 16 bytes;
 * 256 is cudaMalloc's own alignment, so a block is as aligned as a fresh allocation).
 * The arena is a list of blocks in address order covering it; allocation is best fit
 * (the smallest free block that holds the request, lowest address on ties: it keeps the
 * large free blocks large), splitting off the rest; a free coalesces with free neighbours,
 * so the arena never holds two adjacent free blocks. Fragmentation can make a request fail
 * although enough bytes are free in total: zl_cuda_alloc_take then returns ZL_CUDA_NO_BLOCK
 * and zl_cuda_alloc_largest_free says why. */
#ifndef ZL_BACKENDS_CUDA_CUDA_ALLOC_H
#define ZL_BACKENDS_CUDA_CUDA_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZL_CUDA_ALIGN ((size_t)256)
#define ZL_CUDA_NO_BLOCK SIZE_MAX

typedef struct zl_cuda_block {
    size_t offset, size; /* bytes from the arena's start; both multiples of ZL_CUDA_ALIGN */
    bool used;
} zl_cuda_block;

typedef struct zl_cuda_alloc {
    size_t capacity;         /* the arena's usable bytes (rounded down to ZL_CUDA_ALIGN) */
    zl_cuda_block *blocks;   /* address order, covering [0, capacity) */
    size_t nblocks, cap;
    size_t used_nbytes;      /* handed out, rounded up to blocks */
    size_t peak_nbytes;
    size_t live;             /* blocks handed out */
} zl_cuda_alloc;

/* An allocator over an arena of capacity bytes. false when out of host memory. */
bool zl_cuda_alloc_init(zl_cuda_alloc *a, size_t capacity);
void zl_cuda_alloc_destroy(zl_cuda_alloc *a);

/* The offset of a block of at least nbytes (0 counts as 1), or ZL_CUDA_NO_BLOCK when no
 * free block is large enough (or the block list cannot grow). */
size_t zl_cuda_alloc_take(zl_cuda_alloc *a, size_t nbytes);

/* Return the block at offset. false (and nothing changes) when offset is not the start of
 * a block in use: a pointer freed twice, or not from this allocator. *nbytes (may be NULL)
 * gets the block's size. */
bool zl_cuda_alloc_give(zl_cuda_alloc *a, size_t offset, size_t *nbytes);

/* The largest request that would succeed now. */
size_t zl_cuda_alloc_largest_free(const zl_cuda_alloc *a);

#ifdef __cplusplus
}
#endif

#endif
