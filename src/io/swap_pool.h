/* The pool of swap buffers: `buffer_count` buffers of `buffer_size`, as DeepSpeed's
 * offload_param / offload_optimizer blocks configure them, through which every swap file
 * is read and written.
 *
 * DeepSpeed counts buffer_size in elements of the swapped dtype; the pool takes bytes
 * (the caller multiplies). Each buffer is rounded up to 4096 bytes and starts on a
 * 4096-byte boundary, as O_DIRECT needs (src/io/swap_file.h). The pool is one allocation,
 * made once, checked first against the host memory this process may still use
 * (base/hostmem.h) so that a pool too large for the machine is an error naming the keys,
 * not the OOM killer.
 *
 * pin_memory true locks the pool in RAM (mlock), as DeepSpeed pins its buffers so a
 * GPU's DMA can reach them. mlock past RLIMIT_MEMLOCK (`ulimit -l`, often 8 MiB in
 * containers) is not fatal: the pool stays unpinned, zl_swap_pool_pinned says so, and
 * one warning names the limit and the fix. */
#ifndef ZL_IO_SWAP_POOL_H
#define ZL_IO_SWAP_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct zl_swap_pool zl_swap_pool;

/* ZL_ERR_CONFIG for a zero count or size (naming buffer_count / buffer_size),
 * ZL_ERR_NOMEM when the pool does not fit the host's available memory. */
zl_status zl_swap_pool_create(zl_swap_pool **out, int buffer_count, size_t buffer_nbytes,
                              bool pin_memory);
/* Frees the pool; every buffer must have been released (or the caller is done with it).
 * NULL is a no-op. */
void zl_swap_pool_destroy(zl_swap_pool *pool);

/* A free buffer (4096-aligned, zl_swap_pool_buffer_nbytes long), or NULL when all are
 * in use. */
void *zl_swap_pool_acquire(zl_swap_pool *pool);
/* Give a buffer back (one zl_swap_pool_acquire returned). */
void zl_swap_pool_release(zl_swap_pool *pool, void *buf);

int zl_swap_pool_count(const zl_swap_pool *pool);
int zl_swap_pool_free_count(const zl_swap_pool *pool);
size_t zl_swap_pool_buffer_nbytes(const zl_swap_pool *pool); /* rounded up to 4096 */
size_t zl_swap_pool_total_nbytes(const zl_swap_pool *pool);
bool zl_swap_pool_pinned(const zl_swap_pool *pool);

#endif
