/* The cpu backend's op table, and its device memory: plain host memory.
 *
 * Fresh pages are expensive here: the first touch of a page costs a kernel fault and, on
 * a virtual machine, often a hypervisor fault too (about 3 ms per MiB measured with 4 KiB
 * pages). So large buffers are 2 MiB aligned and advised as transparent huge pages (one
 * fault per 2 MiB instead of 512), and they are zeroed right away, in parallel, so that
 * the cost is paid once at allocation and split over the cores rather than in the middle
 * of the first training step. */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backends/cpu/cpu.h"

/* Buffers from this size on get huge-page treatment; smaller ones just a cache line. */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)
/* memset/memcpy in slices of 1 MiB, parallel from 4 MiB on */
#define SLICE ((size_t)1 << 20)
#define PAR_BYTES ((size_t)4 << 20)

void *zl__cpu_alloc(size_t nbytes)
{
    size_t align = nbytes >= HUGE_MIN ? HUGE_ALIGN : 64;
    if (nbytes > SIZE_MAX - align) return NULL;
    /* aligned_alloc wants a multiple of the alignment; a 0-byte request still gets a
     * unique, freeable pointer */
    size_t rounded = (nbytes + align - 1) & ~(align - 1);
    if (rounded == 0) rounded = align;
    void *p = aligned_alloc(align, rounded);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    /* Advice only: if THP is off, or the call fails, we simply get small pages. */
    if (align == HUGE_ALIGN) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    zl__cpu_zero(p, rounded);
    return p;
}

void zl__cpu_free(void *ptr) { free(ptr); }

void zl__cpu_zero(void *ptr, size_t nbytes)
{
    char *p = ptr;
    size_t nslices = (nbytes + SLICE - 1) / SLICE;
#pragma omp parallel for schedule(static) if (nbytes >= PAR_BYTES)
    for (size_t s = 0; s < nslices; s++) {
        size_t off = s * SLICE;
        memset(p + off, 0, nbytes - off < SLICE ? nbytes - off : SLICE);
    }
}

void zl__cpu_copy(void *dst, const void *src, size_t nbytes)
{
    char *d = dst;
    const char *s = src;
    /* Overlapping ranges must be copied in one direction by one thread (memmove). */
    uintptr_t ud = (uintptr_t)dst, us = (uintptr_t)src;
    bool overlap = ud < us + nbytes && us < ud + nbytes;
    if (overlap || nbytes < PAR_BYTES) {
        memmove(dst, src, nbytes);
        return;
    }
    size_t nslices = (nbytes + SLICE - 1) / SLICE;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nslices; i++) {
        size_t off = i * SLICE;
        memcpy(d + off, s + off, nbytes - off < SLICE ? nbytes - off : SLICE);
    }
}

const zl_ops zl_ops_cpu = {
    .name = "cpu",
    .alloc = zl__cpu_alloc,
    .free = zl__cpu_free,
    .zero = zl__cpu_zero,
    .copy = zl__cpu_copy,
    .gemm = zl__cpu_gemm,
    .bias_forward = zl__cpu_bias_forward,
    .bias_backward = zl__cpu_bias_backward,
    .embedding_forward = zl__cpu_embedding_forward,
    .embedding_backward = zl__cpu_embedding_backward,
    .layernorm_forward = zl__cpu_layernorm_forward,
    .layernorm_backward = zl__cpu_layernorm_backward,
    .attention_forward = zl__cpu_attention_forward,
    .attention_backward = zl__cpu_attention_backward,
    .gelu_forward = zl__cpu_gelu_forward,
    .gelu_backward = zl__cpu_gelu_backward,
    .residual_forward = zl__cpu_residual_forward,
    .crossentropy_forward = zl__cpu_crossentropy_forward,
    .crossentropy_backward = zl__cpu_crossentropy_backward,
    .adamw = zl__cpu_adamw,
    .sumsq = zl__cpu_sumsq,
    .nonfinite = zl__cpu_nonfinite,
    .scale = zl__cpu_scale,
    .axpy = zl__cpu_axpy,
    .cast = zl__cpu_cast,
};
