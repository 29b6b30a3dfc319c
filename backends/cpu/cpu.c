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
#include "backends/cpu/cpu_blas.h"
#include "backends/ref/ref.h" /* the vocabulary-parallel ops: the ref loops */

/* Buffers from this size on get huge-page treatment; smaller ones just a cache line. */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)
/* zero and copy: parallel from PAR_BYTES, one contiguous share per thread cut at 4 KiB;
 * a share is written in one memset/memcpy call from STREAM_BYTES on, in SLICE calls below.
 * Why (bench/zl_bench_kernels.c --zero-copy, 2 threads, buffers last written by both
 * threads as a step leaves them; GB/s median, warm / cold cache; "before" = serial below
 * 4 MiB, 1 MiB slices over the threads above):
 *   - Copies of 0.25-1.5 MiB (the residual copies) 63-85 / 45-59, before 20-21 / 17-18 on
 *     one thread, which must fetch the half of the lines the other core holds; zeroes of
 *     0.25-3 MiB 80-161 / 46-113, before 38-41 / 22-30.
 *   - Shares of whole slices were uneven when the size is no even number of slices
 *     (4.5 MiB: 3 + 2 slices, 85 GB/s before, 163 now).
 *   - One rep stosb of 32 MiB or more is written without reading the lines first (this
 *     CPU streams long string stores; glibc 2.36 memsets with rep stosb): zeroing 98-474
 *     MiB 131-150 GB/s, before 58-64 in 1 MiB calls. Below that size the slices keep the
 *     lines in cache for the kernel that reads them next (32 MiB: 171 against 136 in two
 *     16 MiB calls).
 *   A training step (profiled, 2 threads): copy 1.6-2.3 -> 0.6-1.1 ms (small), 5.6 -> 3.1
 *   (gpt2-124m); zero unchanged within noise on small (2.3-2.6 ms), 18 -> 8 on gpt2-124m. */
#define PAR_BYTES ((size_t)256 << 10)
#define SLICE ((size_t)1 << 20)
#define STREAM_BYTES ((size_t)32 << 20)

void *zl__cpu_alloc(const zl_ops *self, size_t nbytes)
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
    zl__cpu_zero(self, p, rounded);
    return p;
}

void zl__cpu_free(const zl_ops *self, void *ptr) { free(ptr); }

/* Inside a parallel region: this thread's share [*lo, *hi) of nbytes, cut at 4 KiB. */
static void thread_share(size_t nbytes, size_t *lo, size_t *hi)
{
    size_t nth = (size_t)omp_get_num_threads(), tid = (size_t)omp_get_thread_num();
    size_t per = ((nbytes + nth - 1) / nth + 4095) & ~(size_t)4095;
    *lo = tid * per < nbytes ? tid * per : nbytes;
    *hi = *lo + per < nbytes ? *lo + per : nbytes;
}

/* memset or memcpy of one share: see STREAM_BYTES */
static void zero_share(char *p, size_t nbytes)
{
    size_t step = nbytes >= STREAM_BYTES ? nbytes : SLICE;
    for (size_t off = 0; off < nbytes; off += step)
        memset(p + off, 0, nbytes - off < step ? nbytes - off : step);
}

static void copy_share(char *d, const char *s, size_t nbytes)
{
    size_t step = nbytes >= STREAM_BYTES ? nbytes : SLICE;
    for (size_t off = 0; off < nbytes; off += step)
        memcpy(d + off, s + off, nbytes - off < step ? nbytes - off : step);
}

void zl__cpu_zero(const zl_ops *self, void *ptr, size_t nbytes)
{
    char *p = ptr;
    if (nbytes < PAR_BYTES) {
        memset(p, 0, nbytes);
        return;
    }
#pragma omp parallel
    {
        size_t lo, hi;
        thread_share(nbytes, &lo, &hi);
        zero_share(p + lo, hi - lo);
    }
}

void zl__cpu_copy(const zl_ops *self, void *dst, const void *src, size_t nbytes)
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
#pragma omp parallel
    {
        size_t lo, hi;
        thread_share(nbytes, &lo, &hi);
        copy_share(d + lo, s + lo, hi - lo);
    }
}

/* Once per process, before the first sgemm: the OpenBLAS kernel for this CPU. */
static void cpu_setup(const zl_ops *self)
{
    (void)self;
    zl_cpu_blas_setup();
}

static size_t cpu_choices_save(const zl_ops *self, char *buf, size_t len)
{
    (void)self;
    return zl__cpu_gemm_choices_save(buf, len);
}

static int cpu_choices_load(const zl_ops *self, const char *text)
{
    (void)self;
    return zl__cpu_gemm_choices_load(text);
}

const zl_ops zl_ops_cpu = {
    .name = "cpu",
    .setup = cpu_setup,
    .choices_save = cpu_choices_save,
    .choices_load = cpu_choices_load,
    .alloc = zl__cpu_alloc,
    .free = zl__cpu_free,
    .zero = zl__cpu_zero,
    .copy = zl__cpu_copy,
    .to_host = zl__ref_transfer,
    .to_device = zl__ref_transfer,
    .gemm = zl__cpu_gemm,
    .gemm_lp = zl__cpu_gemm_lp,
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
    /* vocabulary-parallel pieces: the ref loops (backends/ref/ref_shard.c) */
    .embedding_shard_forward = zl__ref_embedding_shard_forward,
    .embedding_shard_backward = zl__ref_embedding_shard_backward,
    .crossentropy_shard_max = zl__ref_crossentropy_shard_max,
    .crossentropy_shard_exp = zl__ref_crossentropy_shard_exp,
    .crossentropy_shard_loss = zl__ref_crossentropy_shard_loss,
    .crossentropy_shard_backward = zl__ref_crossentropy_shard_backward,
    .adamw = zl__cpu_adamw,
    .sumsq = zl__cpu_sumsq,
    .nonfinite = zl__cpu_nonfinite,
    .scale = zl__cpu_scale,
    .axpy = zl__cpu_axpy,
    .round = zl__cpu_round,
    .drain = zl__cpu_drain,
    .cast = zl__cpu_cast,
};
