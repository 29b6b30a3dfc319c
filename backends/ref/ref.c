/* The ref backend's op table. Kernels live in the other files of this directory. */
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"

static void *ref_alloc(size_t nbytes)
{
    /* 64-byte alignment: a cache line, and what AVX-512 loads like. */
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

static void ref_free(void *p) { free(p); }
static void ref_zero(void *p, size_t nbytes) { memset(p, 0, nbytes); }
static void ref_copy(void *dst, const void *src, size_t nbytes) { memmove(dst, src, nbytes); }

const zl_ops zl_ops_ref = {
    .name = "ref",
    .alloc = ref_alloc,
    .free = ref_free,
    .zero = ref_zero,
    .copy = ref_copy,
};
