/* The CUDA backend's table (zl_ops_cuda) and what every kernel file shares: the process's
 * context (one GPU, three streams, cuBLAS handles, the workspace, the reduction scalars),
 * the caching allocator over one arena of device memory, the transfers, and the deferred
 * errors. The kernels are in the other .cu files (cuda_ops.h says which).
 *
 * One process drives one GPU, so the context is this file's static, found by every
 * function through its table (self->ctx), never through a global of its own.
 *
 * Errors: ops return no status, and a kernel's failure shows later than its launch, so a
 * failure is recorded in the context (zl__cuda_fail, the first one wins) and reported by
 * the table's `check` (zl_cuda_check), which the device layer calls after setup, on every
 * allocation and every transfer. A failed setup (no driver, no device, no memory) stays
 * failed: every later check reports it. */
#include "backends/cuda/cuda.h"
#include "backends/cuda/cuda_alloc.h"
#include "backends/cuda/cuda_ops.h"

#include <mutex>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static zl_cuda_ctx g_ctx;
static zl_cuda_alloc g_alloc;
static std::once_flag g_setup_once;
static bool g_setup_failed;          /* sticky: reported by every check */
static char g_setup_error[512];

extern "C" void zl__cuda_fail(zl_cuda_ctx *ctx, const char *where, const char *what)
{
    if (ctx->failed) return; /* the first error is the cause; the rest follow from it */
    ctx->failed = true;
    snprintf(ctx->error, sizeof ctx->error, "%s: %s", where, what);
}

extern "C" zl_status zl_cuda_check(const zl_ops *self)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (g_setup_failed) return zl_errorf(ZL_ERR_DEVICE, "%s", g_setup_error);
    if (!ctx->failed) return ZL_OK;
    ctx->failed = false;
    return zl_errorf(ZL_ERR_DEVICE, "CUDA error in %s\n  hint: rerun with CUDA_LAUNCH_BLOCKING=1 "
                     "to stop at the call that failed", ctx->error);
}

/* ---- setup: the GPU, streams, handles, workspace, scalars ---------------------------- */

static void setup_fail(const char *fmt, const char *a, const char *b)
{
    g_setup_failed = true;
    snprintf(g_setup_error, sizeof g_setup_error, fmt, a, b);
}

#define SETUP_CUDA(call)                                                                       \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            setup_fail("CUDA setup failed in %s: %s", #call, cudaGetErrorString(e_));          \
            return;                                                                            \
        }                                                                                      \
    } while (0)
#define SETUP_CUBLAS(call)                                                                     \
    do {                                                                                       \
        cublasStatus_t s_ = (call);                                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                     \
            setup_fail("cuBLAS setup failed in %s: %s", #call, cublasGetStatusString(s_));     \
            return;                                                                            \
        }                                                                                      \
    } while (0)

static void setup_once(zl_cuda_ctx *ctx)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    /* The two causes a user can act on, named apart from CUDA's other messages. */
    if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
        setup_fail("no CUDA device: %s%s", "the driver sees no GPU on this machine",
                   "\n  hint: run where a GPU is visible (nvidia-smi lists it; check "
                   "CUDA_VISIBLE_DEVICES), or use --backend cpu");
        return;
    }
    int driver = 0;
    /* No driver at all (no libcuda: a machine without a GPU) reads as "insufficient": tell
     * the two apart, the first is the usual case. */
    if (err == cudaErrorInsufficientDriver && cudaDriverGetVersion(&driver) == cudaSuccess &&
        driver == 0) {
        setup_fail("no CUDA driver: %s%s", "the NVIDIA driver (libcuda) is not installed here",
                   "\n  hint: run on a machine with an NVIDIA GPU and its driver (nvidia-smi "
                   "lists the GPU), or use --backend cpu");
        return;
    }
    if (err == cudaErrorInsufficientDriver || err == cudaErrorNoKernelImageForDevice ||
        err == cudaErrorInitializationError || err == cudaErrorSystemDriverMismatch ||
        err == cudaErrorCompatNotSupportedOnDevice) {
        setup_fail("no usable CUDA driver: %s%s", cudaGetErrorString(err),
                   "\n  hint: install an NVIDIA driver that supports this CUDA toolkit "
                   "(nvidia-smi shows it), or use --backend cpu");
        return;
    }
    if (err != cudaSuccess) {
        setup_fail("CUDA cannot start: %s%s", cudaGetErrorString(err),
                   "\n  hint: nvidia-smi shows whether the driver sees a GPU; or use --backend cpu");
        return;
    }
    ctx->device = zl_cuda_local_rank() % count;
    SETUP_CUDA(cudaSetDevice(ctx->device));
    cudaDeviceProp prop;
    SETUP_CUDA(cudaGetDeviceProperties(&prop, ctx->device));
    ctx->sm_count = prop.multiProcessorCount;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    /* Non-blocking: none of them synchronises with the legacy default stream, which some
     * library might use behind our back; order between them is by events only. */
    SETUP_CUDA(cudaStreamCreateWithFlags(&ctx->compute, cudaStreamNonBlocking));
    SETUP_CUDA(cudaStreamCreateWithFlags(&ctx->comm, cudaStreamNonBlocking));
    SETUP_CUDA(cudaStreamCreateWithFlags(&ctx->copy, cudaStreamNonBlocking));
    SETUP_CUBLAS(cublasCreate(&ctx->cublas));
    SETUP_CUBLAS(cublasSetStream(ctx->cublas, ctx->compute));
    SETUP_CUBLAS(cublasLtCreate(&ctx->lt));
    ctx->workspace_bytes = ZL_CUDA_WORKSPACE_BYTES;
    SETUP_CUDA(cudaMalloc(&ctx->workspace, ctx->workspace_bytes));
    /* cuBLAS's share of the workspace (cuda_ops.h's layout): without this cuBLAS keeps a
     * pool of its own outside the arena and the share reserved for it lies unused. After
     * cublasSetStream, which resets a handle's workspace to the default pool. */
    SETUP_CUBLAS(cublasSetWorkspace(ctx->cublas, ctx->workspace, ZL_CUDA_BLAS_WORKSPACE_BYTES));
    SETUP_CUDA(cudaMalloc(&ctx->reduce, sizeof *ctx->reduce));
    SETUP_CUDA(cudaMalloc(&ctx->flag, sizeof *ctx->flag));
    SETUP_CUDA(cudaHostAlloc(&ctx->reduce_host, sizeof *ctx->reduce_host, cudaHostAllocDefault));
    SETUP_CUDA(cudaHostAlloc(&ctx->flag_host, sizeof *ctx->flag_host, cudaHostAllocDefault));
}

static void cuda_setup(const zl_ops *self)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    std::call_once(g_setup_once, setup_once, ctx);
}

/* The arena: one cudaMalloc of the budget, then the caching allocator (cuda_alloc.h). */
static zl_status cuda_reserve(const zl_ops *self, size_t *budget_nbytes)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    zl_status st = zl_cuda_check(self);
    if (st != ZL_OK) return st;
    if (ctx->arena) { /* a second accelerator device in this process shares the arena */
        if (*budget_nbytes == 0 || *budget_nbytes > ctx->arena_bytes) *budget_nbytes = ctx->arena_bytes;
        return ZL_OK;
    }
    size_t card_free = 0, total = 0, budget = 0;
    cudaError_t err = cudaMemGetInfo(&card_free, &total);
    if (err != cudaSuccess)
        return zl_errorf(ZL_ERR_DEVICE, "GPU %d: cudaMemGetInfo failed: %s", ctx->device,
                         cudaGetErrorString(err));
    st = zl__cuda_arena_budget(ctx->device, *budget_nbytes, card_free, &budget);
    if (st != ZL_OK) return st;
    char b1[32];
    err = cudaMalloc(&ctx->arena, budget);
    if (err != cudaSuccess) {
        ctx->arena = NULL;
        (void)cudaGetLastError(); /* clear it: the failure is reported here */
        return zl_errorf(ZL_ERR_OOM, "GPU %d: cannot reserve %s of device memory: %s\n  hint: "
                         "ask for less with --device-memory", ctx->device,
                         zl_format_bytes(b1, sizeof b1, budget), cudaGetErrorString(err));
    }
    if (!zl_cuda_alloc_init(&g_alloc, budget)) {
        cudaFree(ctx->arena);
        ctx->arena = NULL;
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory for the CUDA allocator");
    }
    ctx->arena_bytes = budget;
    ctx->allocator = &g_alloc;
    *budget_nbytes = budget;
    return ZL_OK;
}

/* ---- memory ------------------------------------------------------------------------ */

static void *cuda_alloc(const zl_ops *self, size_t nbytes)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!ctx->arena) { /* a device made without zl_device_init's reserve: the default arena */
        size_t budget = 0;
        if (cuda_reserve(self, &budget) != ZL_OK) return NULL;
    }
    size_t off = zl_cuda_alloc_take(&g_alloc, nbytes);
    if (off == ZL_CUDA_NO_BLOCK) return NULL;
    void *p = (char *)ctx->arena + off;
    /* Zeroed (ops.h), in compute order: a block freed and taken again is cleared only after
     * the kernels that used it before, as every user of it runs on compute after this. */
    ZL_CUDA_CHECK(ctx, cudaMemsetAsync(p, 0, nbytes, ctx->compute));
    return p;
}

/* Blocks return to the arena at once, without a synchronisation: the next user's work is
 * queued on compute behind the last one's. Work on the other streams (NCCL on comm, offload
 * on copy) that reads a block must be joined to compute by an event before it is freed. */
static void cuda_free(const zl_ops *self, void *ptr)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    char *p = (char *)ptr, *base = (char *)ctx->arena;
    if (!ptr) return;
    if (!base || p < base || p >= base + ctx->arena_bytes ||
        !zl_cuda_alloc_give(&g_alloc, (size_t)(p - base), NULL))
        zl__cuda_fail(ctx, "free", "a pointer freed twice, or not from this GPU's allocator");
}

static void cuda_zero(const zl_ops *self, void *ptr, size_t nbytes)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (nbytes) ZL_CUDA_CHECK(ctx, cudaMemsetAsync(ptr, 0, nbytes, ctx->compute));
}

static void cuda_copy(const zl_ops *self, void *dst, const void *src, size_t nbytes)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (nbytes)
        ZL_CUDA_CHECK(ctx, cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, ctx->compute));
}

/* Transfers (ops.h, to_host / transfer_wait): on the copy stream, so that offload's and
 * activation checkpointing's traffic runs beside the kernels issued after it. Each one
 * first waits (an event on compute) for the kernels issued before it, which produced
 * what it reads or still read what it overwrites; transfer_wait joins them back: the
 * host waits for the copy stream, and compute waits for it (an event) before the kernels
 * that read what came. Only pinned host memory (ops->host's) makes cudaMemcpyAsync
 * really asynchronous; pageable memory is staged by the driver, correct but blocking.
 * One event of each kind serves every transfer: a wait takes the event's state when it
 * is issued, so re-recording it later does not change what an earlier wait waits for. */
static cudaEvent_t g_before_copy; /* on compute: the kernels issued before a transfer */
static cudaEvent_t g_copies_done; /* on copy: every transfer issued before a wait */
static bool g_copy_events;

/* The copy stream after every kernel issued so far; false when CUDA is unusable. */
static bool copy_after_compute(zl_cuda_ctx *ctx)
{
    if (g_setup_failed || ctx->failed) return false;
    if (!g_copy_events) {
        ZL_CUDA_CHECK(ctx, cudaEventCreateWithFlags(&g_before_copy, cudaEventDisableTiming));
        ZL_CUDA_CHECK(ctx, cudaEventCreateWithFlags(&g_copies_done, cudaEventDisableTiming));
        if (ctx->failed) return false;
        g_copy_events = true;
    }
    ZL_CUDA_CHECK(ctx, cudaEventRecord(g_before_copy, ctx->compute));
    ZL_CUDA_CHECK(ctx, cudaStreamWaitEvent(ctx->copy, g_before_copy, 0));
    return !ctx->failed;
}

static void cuda_to_host(const zl_ops *self, void *host, const void *dev, size_t nbytes)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (nbytes && copy_after_compute(ctx))
        ZL_CUDA_CHECK(ctx, cudaMemcpyAsync(host, dev, nbytes, cudaMemcpyDeviceToHost, ctx->copy));
}

static void cuda_to_device(const zl_ops *self, void *dev, const void *host, size_t nbytes)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (nbytes && copy_after_compute(ctx))
        ZL_CUDA_CHECK(ctx, cudaMemcpyAsync(dev, host, nbytes, cudaMemcpyHostToDevice, ctx->copy));
}

static void cuda_transfer_wait(const zl_ops *self)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    /* Not skipped on a pending error (ctx->failed, reported at the next check): transfers
     * issued before it may still be in flight, and the caller reuses or frees their buffers
     * once this returns. On a dead context the calls below fail at once (the first error
     * is kept). */
    if (!g_copy_events || g_setup_failed) return; /* none issued, or no GPU */
    ZL_CUDA_CHECK(ctx, cudaEventRecord(g_copies_done, ctx->copy));
    /* compute: the kernels issued from now on read what came to the device */
    ZL_CUDA_CHECK(ctx, cudaStreamWaitEvent(ctx->compute, g_copies_done, 0));
    /* host: what came to it is there (not waiting for compute, which may run on) */
    ZL_CUDA_CHECK(ctx, cudaEventSynchronize(g_copies_done));
}

/* ---- the host device of a cuda run: the cpu kernels on pinned memory ----------------- */

/* Pinned (page-locked) memory: the GPU's DMA engines read and write it directly, so
 * offload's transfers run at the link's speed and can overlap compute; pageable memory
 * would be staged through a driver buffer. Zeroed as ops.h asks; page aligned. */
static void *pinned_alloc(const zl_ops *self, size_t nbytes)
{
    (void)self;
    void *p = NULL;
    if (cudaHostAlloc(&p, nbytes, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    memset(p, 0, nbytes);
    return p;
}

static void pinned_free(const zl_ops *self, void *ptr)
{
    (void)self;
    if (ptr) cudaFreeHost(ptr);
}

static zl_ops make_host_table(void)
{
    zl_ops t = zl_ops_cpu; /* offload's CPU Adam and every host kernel: the cpu backend's */
    t.name = "cpu-pinned";
    t.alloc = pinned_alloc;
    t.free = pinned_free;
    return t;
}

static const zl_ops *cuda_host(const zl_ops *self)
{
    (void)self;
    static const zl_ops table = make_host_table(); /* built once, thread-safe (C++ static) */
    return &table;
}

/* ---- the table ---------------------------------------------------------------------- */

/* In the declaration order of ops.h (C++ designated initializers must be). */
extern "C" const zl_ops zl_ops_cuda = {
    .name = "cuda",
    .ctx = &g_ctx,
    .meta = false,
    .setup = cuda_setup,
    .reserve = cuda_reserve,
    .check = zl_cuda_check,
    .host = cuda_host,
    /* cuBLAS picks its algorithms by heuristics, not by measuring here: nothing to keep */
    .choices_save = NULL,
    .choices_load = NULL,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .zero = cuda_zero,
    .copy = cuda_copy,
    .to_host = cuda_to_host,
    .to_device = cuda_to_device,
    .transfer_wait = cuda_transfer_wait,
    .gemm = zl_cuda_gemm,
    .gemm_lp = zl_cuda_gemm_lp,
    .bias_forward = zl_cuda_bias_forward,
    .bias_backward = zl_cuda_bias_backward,
    .embedding_forward = zl_cuda_embedding_forward,
    .embedding_backward = zl_cuda_embedding_backward,
    .layernorm_forward = zl_cuda_layernorm_forward,
    .layernorm_backward = zl_cuda_layernorm_backward,
    .attention_forward = zl_cuda_attention_forward,
    .attention_backward = zl_cuda_attention_backward,
    .gelu_forward = zl_cuda_gelu_forward,
    .gelu_backward = zl_cuda_gelu_backward,
    .residual_forward = zl_cuda_residual_forward,
    .crossentropy_forward = zl_cuda_crossentropy_forward,
    .crossentropy_backward = zl_cuda_crossentropy_backward,
    .embedding_shard_forward = zl_cuda_embedding_shard_forward,
    .embedding_shard_backward = zl_cuda_embedding_shard_backward,
    .crossentropy_shard_max = zl_cuda_crossentropy_shard_max,
    .crossentropy_shard_exp = zl_cuda_crossentropy_shard_exp,
    .crossentropy_shard_loss = zl_cuda_crossentropy_shard_loss,
    .crossentropy_shard_backward = zl_cuda_crossentropy_shard_backward,
    .adamw = zl_cuda_adamw,
    .sumsq = zl_cuda_sumsq,
    .nonfinite = zl_cuda_nonfinite,
    .scale = zl_cuda_scale,
    .axpy = zl_cuda_axpy,
    .round = zl_cuda_round,
    .drain = zl_cuda_drain,
    .cast = zl_cuda_cast,
};
