/* The discrete backend (discrete.h): ref's kernels on an arena the host may touch only
 * through this table. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "backends/discrete/discrete.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/log.h"

/* ------------------------------------------------------------------ the arena
 *
 * One per process (a rank is one GPU). The allocator's bookkeeping lives in host memory
 * (the arena is closed while it runs): blocks sorted by offset, each used or free; new
 * memory comes from the top (a bump pointer), a freed block merges with free neighbours,
 * and a free block at the top lowers it. First fit. */
typedef struct block {
    size_t off, size;
    bool used;
} block;

typedef struct arena {
    char *base;
    size_t size;  /* reserved bytes */
    size_t top;   /* bytes below it are blocks */
    size_t in_use;
    int depth;    /* opens not yet closed */
    bool failed;  /* the reservation failed: every alloc returns NULL */
    block *blocks;
    size_t nblocks, cap;
} arena;

static arena A;

/* ZL_DISCRETE_MEMORY: bytes, with an optional K, M or G (binary) suffix. */
static size_t arena_size(void)
{
    const char *s = getenv("ZL_DISCRETE_MEMORY");
    if (!s || !*s) return ZL_DISCRETE_DEFAULT_MEMORY;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (shift) end++;
    if (errno || end == s || *end || v == 0 || v > (SIZE_MAX >> shift)) {
        zl_log_warn("ZL_DISCRETE_MEMORY='%s' is not a size (bytes, or with K, M or G): the "
                    "discrete backend reserves its default, 1 GiB", s);
        return ZL_DISCRETE_DEFAULT_MEMORY;
    }
    return (size_t)v << shift;
}

static void arena_init(void)
{
    if (A.base || A.failed) return;
    size_t size = arena_size();
    size = (size + 4095) & ~(size_t)4095;
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        zl_log_error("the discrete backend cannot reserve %zu bytes of address space: %s",
                     size, strerror(errno));
        A.failed = true;
        return;
    }
    A.base = p;
    A.size = size;
}

static void set_prot(int prot)
{
    /* The whole reservation: page tables exist only for the pages touched, so this costs
     * what the touched memory costs, and no allocation can fall outside the open range. */
    if (A.base && mprotect(A.base, A.size, prot) != 0)
        zl_log_error("discrete backend: mprotect failed: %s", strerror(errno));
}

void zl_discrete_enter(void *ctx)
{
    (void)ctx;
    if (A.depth++ == 0) set_prot(PROT_READ | PROT_WRITE);
}

void zl_discrete_leave(void *ctx)
{
    (void)ctx;
    ZL_ASSERT(A.depth > 0);
    if (--A.depth == 0) set_prot(PROT_NONE);
}

bool zl_discrete_owns(const void *p)
{
    uintptr_t x = (uintptr_t)p, b = (uintptr_t)A.base;
    return A.base && x >= b && x < b + A.top;
}

size_t zl_discrete_in_use(void) { return A.in_use; }

static bool insert_block(size_t at, block bl)
{
    if (A.nblocks == A.cap) {
        size_t cap = A.cap ? 2 * A.cap : 256;
        block *nb = realloc(A.blocks, cap * sizeof *nb);
        if (!nb) return false;
        A.blocks = nb;
        A.cap = cap;
    }
    memmove(A.blocks + at + 1, A.blocks + at, (A.nblocks - at) * sizeof *A.blocks);
    A.blocks[at] = bl;
    A.nblocks++;
    return true;
}

static void remove_block(size_t at)
{
    memmove(A.blocks + at, A.blocks + at + 1, (A.nblocks - at - 1) * sizeof *A.blocks);
    A.nblocks--;
}

static void *discrete_alloc(const zl_ops *self, size_t nbytes)
{
    (void)self;
    arena_init();
    if (!A.base) return NULL;
    size_t size = ((nbytes ? nbytes : 1) + 63) & ~(size_t)63; /* 64-byte aligned, as ref's */
    if (size < nbytes) return NULL;
    size_t i = 0, off = 0;
    for (; i < A.nblocks; i++)
        if (!A.blocks[i].used && A.blocks[i].size >= size) break;
    if (i < A.nblocks) { /* first fit; the rest stays free after it */
        off = A.blocks[i].off;
        if (A.blocks[i].size > size &&
            !insert_block(i + 1, (block){off + size, A.blocks[i].size - size, false}))
            return NULL;
        A.blocks[i].size = size;
        A.blocks[i].used = true;
    } else {
        if (size > A.size - A.top) return NULL;
        off = A.top;
        if (!insert_block(A.nblocks, (block){off, size, true})) return NULL;
        A.top += size;
    }
    A.in_use += size;
    char *p = A.base + off;
    zl_discrete_enter(NULL); /* zeroed, as every backend's */
    memset(p, 0, size);
    zl_discrete_leave(NULL);
    return p;
}

static void check_no_transfer(const void *p, size_t size);

static void discrete_free(const zl_ops *self, void *p)
{
    (void)self;
    if (!p) return;
    ZL_ASSERT(zl_discrete_owns(p));
    size_t off = (size_t)((char *)p - A.base), lo = 0, hi = A.nblocks;
    while (lo < hi) { /* the block at off */
        size_t mid = (lo + hi) / 2;
        if (A.blocks[mid].off < off) lo = mid + 1;
        else hi = mid;
    }
    ZL_ASSERT(lo < A.nblocks && A.blocks[lo].off == off && A.blocks[lo].used);
    check_no_transfer(p, A.blocks[lo].size);
    A.blocks[lo].used = false;
    A.in_use -= A.blocks[lo].size;
    if (lo + 1 < A.nblocks && !A.blocks[lo + 1].used) {
        A.blocks[lo].size += A.blocks[lo + 1].size;
        remove_block(lo + 1);
    }
    if (lo > 0 && !A.blocks[lo - 1].used) {
        A.blocks[lo - 1].size += A.blocks[lo].size;
        remove_block(lo);
        lo--;
    }
    if (lo == A.nblocks - 1) { /* the top block: give it back to the bump pointer */
        A.top = A.blocks[lo].off;
        remove_block(lo);
    }
}

static void discrete_setup(const zl_ops *self)
{
    (void)self;
    arena_init();
}

/* ------------------------------------------------------------------ the ops
 *
 * Each op: check its device pointers, open the arena, run ref's kernel, close. */

/* A device pointer that is not the arena's: a kernel run on host memory, which a GPU
 * would report as an illegal address. NULL is an absent optional argument. */
static void check(const void *p, const char *op, const char *arg)
{
    if (!p || zl_discrete_owns(p)) return;
    zl_log_error("discrete backend: %s's argument %s (%p) is not device memory: host memory "
                 "given to a device kernel (on a GPU: an illegal address)", op, arg, p);
    zl__panic(__FILE__, __LINE__, "device pointer");
}

#define R (&zl_ops_ref)
#define CHK(p) check((p), __func__ + 2, #p) /* d_gemm -> "gemm" */
#define RUN(call)               \
    do {                        \
        zl_discrete_enter(NULL); \
        call;                   \
        zl_discrete_leave(NULL); \
    } while (0)

static void d_zero(const zl_ops *self, void *p, size_t n)
{
    CHK(p);
    RUN(R->zero(R, p, n));
}

static void d_copy(const zl_ops *self, void *dst, const void *src, size_t n)
{
    CHK(dst), CHK(src);
    RUN(R->copy(R, dst, src, n));
}

/* ------------------------------------------------------------------ transfers
 *
 * As a GPU's copy stream: a transfer is queued, its destination poisoned at once (bytes
 * 0xFF: a NaN in every f32, f16 and bf16, -1 in an int32), and the bytes move, in the
 * order issued, only at transfer_wait. So host code that reads what came back before
 * zl_device_copy_wait reads NaN, a kernel or a collective that reads what was sent before
 * it reads NaN, and a source changed before the wait sends its new bytes: each a race on
 * a GPU, and here a result that differs from ref's. */
typedef struct transfer {
    void *dst;
    const void *src;
    size_t n;
} transfer;

static struct {
    transfer *q;
    size_t len, cap;
} Q;

static bool overlaps(const void *a, size_t an, const void *b, size_t bn)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + bn && y < x + an;
}

/* Memory freed while a transfer to or from it is queued: on a GPU the copy stream would
 * still be reading or writing it (a caching allocator hands it out again at once). */
static void check_no_transfer(const void *p, size_t size)
{
    for (size_t i = 0; i < Q.len; i++)
        if (overlaps(p, size, Q.q[i].dst, Q.q[i].n) || overlaps(p, size, Q.q[i].src, Q.q[i].n)) {
            zl_log_error("discrete backend: device memory %p freed with a transfer to or from it "
                         "not waited for (zl_device_copy_wait)", p);
            zl__panic(__FILE__, __LINE__, "free during a transfer");
        }
}

static void d_transfer_wait(const zl_ops *self)
{
    (void)self;
    if (!Q.len) return;
    zl_discrete_enter(NULL);
    for (size_t i = 0; i < Q.len; i++) memcpy(Q.q[i].dst, Q.q[i].src, Q.q[i].n);
    zl_discrete_leave(NULL);
    Q.len = 0;
}

/* Queue dst <- src. A destination that an earlier queued transfer still reads from would
 * be poisoned under it: the copy stream is in order, so the queue runs first. */
static void enqueue(void *dst, const void *src, size_t n, bool dst_on_device)
{
    if (!n) return;
    for (size_t i = 0; i < Q.len; i++)
        if (overlaps(dst, n, Q.q[i].src, Q.q[i].n)) {
            d_transfer_wait(NULL);
            break;
        }
    if (Q.len == Q.cap) {
        size_t cap = Q.cap ? 2 * Q.cap : 64;
        transfer *nq = realloc(Q.q, cap * sizeof *nq);
        if (!nq) { /* no room to defer: the transfer completes now, as a blocking one */
            d_transfer_wait(NULL);
            zl_discrete_enter(NULL);
            memcpy(dst, src, n);
            zl_discrete_leave(NULL);
            return;
        }
        Q.q = nq;
        Q.cap = cap;
    }
    Q.q[Q.len++] = (transfer){dst, src, n};
    if (dst_on_device) zl_discrete_enter(NULL);
    memset(dst, 0xFF, n);
    if (dst_on_device) zl_discrete_leave(NULL);
}

static void d_to_host(const zl_ops *self, void *host, const void *dev, size_t n)
{
    CHK(dev);
    enqueue(host, dev, n, false);
}

static void d_to_device(const zl_ops *self, void *dev, const void *host, size_t n)
{
    CHK(dev);
    enqueue(dev, host, n, true);
}

static void d_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n,
                   int k, int lda, int ldb, int ldc, bool ta, bool tb, float alpha, float beta)
{
    CHK(c), CHK(a), CHK(b);
    RUN(R->gemm(R, c, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta));
}

static void d_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype bt,
                      zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool ta, bool tb,
                      float alpha, float beta)
{
    CHK(c), CHK(a), CHK(b);
    RUN(R->gemm_lp(R, c, a, b, bt, t, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta));
}

static void d_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    CHK(out), CHK(bias);
    RUN(R->bias_forward(R, out, bias, N, OC));
}

static void d_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    CHK(dbias), CHK(dout);
    RUN(R->bias_backward(R, dbias, dout, N, OC));
}

static void d_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                const float *wte, const float *wpe, int B, int T, int C)
{
    CHK(out), CHK(tokens), CHK(wte), CHK(wpe);
    RUN(R->embedding_forward(R, out, tokens, wte, wpe, B, T, C));
}

static void d_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                 const int32_t *tokens, int B, int T, int C)
{
    CHK(dwte), CHK(dwpe), CHK(dout), CHK(tokens);
    RUN(R->embedding_backward(R, dwte, dwpe, dout, tokens, B, T, C));
}

static void d_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                                const float *inp, const float *weight, const float *bias, int N,
                                int C)
{
    CHK(out), CHK(mean), CHK(rstd), CHK(inp), CHK(weight), CHK(bias);
    RUN(R->layernorm_forward(R, out, mean, rstd, inp, weight, bias, N, C));
}

static void d_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                 const float *dout, const float *inp, const float *weight,
                                 const float *mean, const float *rstd, int N, int C)
{
    CHK(dinp), CHK(dweight), CHK(dbias), CHK(dout), CHK(inp), CHK(weight), CHK(mean), CHK(rstd);
    RUN(R->layernorm_backward(R, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C));
}

static void d_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv,
                                int B, int T, int C, int NH)
{
    CHK(out), CHK(att), CHK(qkv);
    RUN(R->attention_forward(R, out, att, qkv, B, T, C, NH));
}

static void d_attention_backward(const zl_ops *self, float *dqkv, float *scratch,
                                 const float *dout, const float *qkv, const float *att, int B,
                                 int T, int C, int NH)
{
    CHK(dqkv), CHK(scratch), CHK(dout), CHK(qkv), CHK(att);
    RUN(R->attention_backward(R, dqkv, scratch, dout, qkv, att, B, T, C, NH));
}

static void d_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    CHK(out), CHK(inp);
    RUN(R->gelu_forward(R, out, inp, n));
}

static void d_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                            size_t n)
{
    CHK(dinp), CHK(inp), CHK(dout);
    RUN(R->gelu_backward(R, dinp, inp, dout, n));
}

static void d_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                               size_t n)
{
    CHK(out), CHK(a), CHK(b);
    RUN(R->residual_forward(R, out, a, b, n));
}

static void d_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                   const float *logits, const int32_t *targets, int N, int V)
{
    CHK(losses), CHK(probs), CHK(logits), CHK(targets);
    RUN(R->crossentropy_forward(R, losses, probs, logits, targets, N, V));
}

static void d_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                    const int32_t *targets, float dloss, int N, int V)
{
    CHK(dlogits), CHK(probs), CHK(targets);
    RUN(R->crossentropy_backward(R, dlogits, probs, targets, dloss, N, V));
}

static void d_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                      const float *wte, int v0, int v1, const float *wpe, int B,
                                      int T, int C)
{
    CHK(out), CHK(tokens), CHK(wte), CHK(wpe);
    RUN(R->embedding_shard_forward(R, out, tokens, wte, v0, v1, wpe, B, T, C));
}

static void d_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                       const float *dout, const int32_t *tokens, int v0, int v1,
                                       int B, int T, int C)
{
    CHK(dwte), CHK(dwpe), CHK(dout), CHK(tokens);
    RUN(R->embedding_shard_backward(R, dwte, dwpe, dout, tokens, v0, v1, B, T, C));
}

static void d_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N,
                                     int V)
{
    CHK(rowmax), CHK(logits);
    RUN(R->crossentropy_shard_max(R, rowmax, logits, N, V));
}

static void d_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum,
                                     const float *logits, const float *rowmax, int N, int V)
{
    CHK(probs), CHK(rowsum), CHK(logits), CHK(rowmax);
    RUN(R->crossentropy_shard_exp(R, probs, rowsum, logits, rowmax, N, V));
}

static void d_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs,
                                      const float *logits, const float *rowmax,
                                      const float *rowsum, const int32_t *targets, int v0, int N,
                                      int V)
{
    CHK(losses), CHK(probs), CHK(logits), CHK(rowmax), CHK(rowsum), CHK(targets);
    RUN(R->crossentropy_shard_loss(R, losses, probs, logits, rowmax, rowsum, targets, v0, N, V));
}

static void d_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                          const int32_t *targets, int v0, float dloss, int N,
                                          int V)
{
    CHK(dlogits), CHK(probs), CHK(targets);
    RUN(R->crossentropy_shard_backward(R, dlogits, probs, targets, v0, dloss, N, V));
}

/* args (and args->sumsq, the reduction's result) are host memory, as a kernel's
 * by-value arguments and a reduction scalar read back are on a GPU. */
static void d_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                    zl_dtype gt, void *param_out, zl_dtype pt, size_t n, const zl_adamw_args *args)
{
    CHK(master), CHK(m), CHK(v), CHK(grad), CHK(param_out);
    RUN(R->adamw(R, master, m, v, grad, gt, param_out, pt, n, args));
}

static double d_sumsq(const zl_ops *self, const float *x, size_t n)
{
    double r;
    CHK(x);
    RUN(r = R->sumsq(R, x, n));
    return r;
}

static bool d_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    bool r;
    CHK(x);
    RUN(r = R->nonfinite(R, x, n));
    return r;
}

static void d_scale(const zl_ops *self, float *x, float s, size_t n)
{
    CHK(x);
    RUN(R->scale(R, x, s, n));
}

static void d_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    CHK(y), CHK(x);
    RUN(R->axpy(R, y, a, x, n));
}

static void d_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    CHK(x);
    RUN(R->round(R, x, t, n));
}

static void d_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    CHK(y), CHK(x);
    RUN(R->drain(R, y, yt, x, xt, n));
}

static void d_cast(const zl_ops *self, void *dst, zl_dtype dt, const void *src, zl_dtype st,
                   size_t n)
{
    CHK(dst), CHK(src);
    RUN(R->cast(R, dst, dt, src, st, n));
}

/* A discrete run's host device (offload, staging) is ordinary host memory: ref's. */
static const zl_ops *discrete_host(const zl_ops *self)
{
    (void)self;
    return &zl_ops_ref;
}

const zl_ops zl_ops_discrete = {
    .name = "discrete",
    .setup = discrete_setup,
    .host = discrete_host,
    .alloc = discrete_alloc,
    .free = discrete_free,
    .zero = d_zero,
    .copy = d_copy,
    .to_host = d_to_host,
    .to_device = d_to_device,
    .transfer_wait = d_transfer_wait,

    .gemm = d_gemm,
    .gemm_lp = d_gemm_lp,
    .bias_forward = d_bias_forward,
    .bias_backward = d_bias_backward,

    .embedding_forward = d_embedding_forward,
    .embedding_backward = d_embedding_backward,
    .layernorm_forward = d_layernorm_forward,
    .layernorm_backward = d_layernorm_backward,
    .attention_forward = d_attention_forward,
    .attention_backward = d_attention_backward,
    .gelu_forward = d_gelu_forward,
    .gelu_backward = d_gelu_backward,
    .residual_forward = d_residual_forward,
    .crossentropy_forward = d_crossentropy_forward,
    .crossentropy_backward = d_crossentropy_backward,
    .embedding_shard_forward = d_embedding_shard_forward,
    .embedding_shard_backward = d_embedding_shard_backward,
    .crossentropy_shard_max = d_crossentropy_shard_max,
    .crossentropy_shard_exp = d_crossentropy_shard_exp,
    .crossentropy_shard_loss = d_crossentropy_shard_loss,
    .crossentropy_shard_backward = d_crossentropy_shard_backward,

    .adamw = d_adamw,
    .sumsq = d_sumsq,
    .nonfinite = d_nonfinite,
    .scale = d_scale,
    .axpy = d_axpy,
    .round = d_round,
    .drain = d_drain,
    .cast = d_cast,
};
