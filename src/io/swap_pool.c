/* The swap buffer pool: one aligned allocation, optionally mlock'd, handed out in
 * buffer-sized pieces. */
#define _DEFAULT_SOURCE /* mlock, RLIMIT_MEMLOCK */
#include "io/swap_pool.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "base/hostmem.h"
#include "base/log.h"

#define ALIGN ((size_t)4096)

struct zl_swap_pool {
    char *base;
    int count;
    size_t buffer_nbytes; /* rounded up */
    bool pinned;
    int nfree;
    bool *in_use; /* [count] */
};

zl_status zl_swap_pool_create(zl_swap_pool **out, int buffer_count, size_t buffer_nbytes,
                              bool pin_memory)
{
    *out = NULL;
    if (buffer_count < 1)
        return zl_errorf(ZL_ERR_CONFIG, "buffer_count %d: the swap buffer pool needs at least "
                                        "one buffer\n  hint: DeepSpeed's defaults are 5 "
                                        "(offload_param) and 4 (offload_optimizer)",
                         buffer_count);
    if (buffer_nbytes == 0)
        return zl_errorf(ZL_ERR_CONFIG, "buffer_size 0: swap buffers need room for a tensor\n"
                                        "  hint: DeepSpeed's default is 1e8 elements");
    size_t each = (buffer_nbytes + ALIGN - 1) / ALIGN * ALIGN;
    if (each < buffer_nbytes || each > SIZE_MAX / (size_t)buffer_count)
        return zl_errorf(ZL_ERR_CONFIG, "buffer_count %d x buffer_size %zu bytes overflows",
                         buffer_count, buffer_nbytes);
    size_t total = each * (size_t)buffer_count;
    zl_hostmem hm;
    if (zl_hostmem_available(&hm) == ZL_OK && total > hm.available_nbytes)
        return zl_errorf(ZL_ERR_NOMEM,
                         "swap buffer pool: buffer_count %d x buffer_size %zu bytes = %zu bytes, "
                         "but only %zu bytes of host memory are available (%s)\n"
                         "  hint: lower offload_param/offload_optimizer.buffer_count or "
                         "buffer_size",
                         buffer_count, buffer_nbytes, total, hm.available_nbytes, hm.source);
    zl_swap_pool *p = calloc(1, sizeof *p);
    if (p) p->in_use = calloc((size_t)buffer_count, sizeof *p->in_use);
    if (p && p->in_use) p->base = aligned_alloc(ALIGN, total);
    if (!p || !p->in_use || !p->base) {
        if (p) free(p->in_use);
        free(p);
        return zl_errorf(ZL_ERR_NOMEM, "swap buffer pool: cannot allocate %d x %zu bytes",
                         buffer_count, each);
    }
    p->count = p->nfree = buffer_count;
    p->buffer_nbytes = each;
    if (pin_memory) {
        if (mlock(p->base, total) == 0) {
            p->pinned = true;
        } else {
            int err = errno;
            struct rlimit rl;
            char lim[64] = "unknown";
            if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
                if (rl.rlim_cur == RLIM_INFINITY) snprintf(lim, sizeof lim, "unlimited");
                else snprintf(lim, sizeof lim, "%llu bytes", (unsigned long long)rl.rlim_cur);
            }
            zl_log_warn("pin_memory: cannot lock the %zu-byte swap buffer pool in memory (%s; "
                        "RLIMIT_MEMLOCK is %s): its buffers stay unpinned, which only slows "
                        "copies\n  hint: raise the limit (ulimit -l, or --ulimit memlock=-1 "
                        "for docker) or set pin_memory false",
                        total, strerror(err), lim);
        }
    }
    *out = p;
    return ZL_OK;
}

void zl_swap_pool_destroy(zl_swap_pool *p)
{
    if (!p) return;
    if (p->pinned) munlock(p->base, p->buffer_nbytes * (size_t)p->count);
    free(p->base);
    free(p->in_use);
    free(p);
}

void *zl_swap_pool_acquire(zl_swap_pool *p)
{
    for (int i = 0; i < p->count; i++)
        if (!p->in_use[i]) {
            p->in_use[i] = true;
            p->nfree--;
            return p->base + (size_t)i * p->buffer_nbytes;
        }
    return NULL;
}

void zl_swap_pool_release(zl_swap_pool *p, void *buf)
{
    size_t at = (size_t)((char *)buf - p->base);
    ZL_ASSERT((char *)buf >= p->base && at % p->buffer_nbytes == 0 &&
              at / p->buffer_nbytes < (size_t)p->count);
    int i = (int)(at / p->buffer_nbytes);
    ZL_ASSERT(p->in_use[i]);
    p->in_use[i] = false;
    p->nfree++;
}

int zl_swap_pool_count(const zl_swap_pool *p) { return p->count; }
int zl_swap_pool_free_count(const zl_swap_pool *p) { return p->nfree; }
size_t zl_swap_pool_buffer_nbytes(const zl_swap_pool *p) { return p->buffer_nbytes; }
size_t zl_swap_pool_total_nbytes(const zl_swap_pool *p) { return p->buffer_nbytes * (size_t)p->count; }
bool zl_swap_pool_pinned(const zl_swap_pool *p) { return p->pinned; }
