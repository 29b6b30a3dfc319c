/* The NCCL communicator: the ranks of an MPI communicator (`host`), whose device buffers
 * move with NCCL on their GPU. Built only with ZL_HAVE_CUDA.
 *
 * Set-up: rank 0 makes the ncclUniqueId, host broadcasts it (MPI), every rank calls
 * ncclCommInitRank on its GPU (the CUDA table's context: ctx->device). Failures before
 * and after the initialisation are agreed on over host (zl_comm_agree), so a rank whose
 * id or device failed does not leave the others waiting in NCCL.
 *
 * Host and device buffers (comm_nccl.h): each call asks the CUDA runtime where its
 * buffers live. Device memory of this GPU goes to NCCL; host memory goes to host's own
 * vtable, so one handle serves zl_comm_agree, the simulator's clock exchange and the
 * loader's host scalars as well as the gradients. The ranks of a call must all pass the
 * same kind of memory (they do: the same code runs on every rank).
 *
 * Ordering, on the context's streams (backends/cuda/cuda_ops.h): kernels run on
 * ctx->compute, collectives on ctx->comm. A collective must see what compute wrote: it
 * records an event on compute, makes comm wait for it, then enqueues the NCCL call on
 * comm. Completion:
 * - blocking calls: the host waits until the collective has completed on the GPU (an
 *   event recorded on comm after it, polled under the watchdog). comm.h's blocking calls
 *   are complete on return, host code reads results right after them (to_host, on any
 *   stream), the comms log times them, and only a host that waits can notice a hang;
 *   making compute wait on an event instead would give none of that. Overlap is what the
 *   non-blocking calls are for.
 * - non-blocking calls (req): the request keeps an event recorded on comm after the
 *   call; zl_comm_wait polls it (cudaEventSynchronize under the watchdog). Once the host
 *   has seen it complete, every kernel launched later, on any stream, sees the result.
 * Transfers on ctx->copy are not ordered here: whoever writes a buffer there
 * synchronises before handing it to a collective.
 *
 * The watchdog (comm.h): the same guard as host's (the timeout, the phase, the
 * interrupt flag, the broken state are shared). A wait polls its event, and every
 * POLLS_PER_CHECK polls asks NCCL for an asynchronous error (ncclCommGetAsyncError: a
 * peer's failure, a network error) and reads the clock. An error or the timeout aborts
 * the NCCL communicator (ncclCommAbort: its kernels stop, so the GPU is not left spinning
 * in a collective that will never complete) and breaks the guard: every communicator
 * sharing it, host included, then fails at once. The host blocks in NCCL only in its
 * set-up calls (ncclCommInitRank, ncclCommSplit, a first send's connection), which NCCL's
 * own bootstrap timeouts bound; the communicator is blocking-mode (NCCL's default):
 * non-blocking mode would cover those too at the price of a poll after every call.
 *
 * Differences from the MPI communicator, all NCCL's:
 * - f16 and bf16 reduce natively (each partial sum rounded to 16 bits, to nearest even),
 *   which is comm.h's rule; the order of the partial sums is NCCL's (ring or tree), so
 *   beyond 2 ranks sums may differ from MPI's in the last bit. MAX and MIN of a NaN
 *   are NCCL's (not promised to keep the NaN, as MPI's 16-bit reductions do).
 * - send/recv ignore tags: messages between two ranks match in the order they were
 *   posted (NCCL has no tags), and a receive cannot check the sender's length (the
 *   counts must agree, as they do in zerolab's pipeline).
 * - u16 (token ids) moves as bytes and cannot be reduced (NCCL has no 16-bit integer).
 * - counts are size_t: no INT_MAX limit. */
#include "comm/comm_internal.h"
#include "comm/comm_nccl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "backends/cuda/cuda_ops.h"
#include "base/log.h"

#ifndef NCCL_VERSION
#define NCCL_VERSION(X, Y, Z) ((X) * 10000 + (Y) * 100 + (Z))
#endif

typedef struct nccl_impl {
    ncclComm_t nccl;   /* NULL: no NCCL side (a node communicator), or aborted */
    bool aborted;      /* ncclCommAbort was called: device calls fail */
    zl_comm *host;     /* the same ranks over MPI: host buffers, barrier, set-up */
    bool owns_host;    /* a split's own (destroyed with it); the world's is borrowed */
    zl_cuda_ctx *ctx;  /* streams compute and comm, the device */
    cudaEvent_t ready; /* recorded on compute: comm waits for it */
    cudaEvent_t done;  /* recorded on comm after a blocking call: the host waits for it */
} nccl_impl;

/* A pending non-blocking call: on the device (an event on comm) or on the host (host's
 * vtable's own request handle). */
typedef struct nccl_request {
    cudaEvent_t done; /* NULL: a host call */
    void *host_impl;
} nccl_request;

/* ------------------------------------------------------------------ host-side decisions */

zl__nccl_mem zl__nccl_mem_of(const void *p, int device)
{
    if (!p) return ZL__NCCL_MEM_NONE;
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        /* No device or driver (this machine, a CPU build's test), or a pointer the
         * runtime does not know: host memory. Clear the error: it is not sticky, and a
         * kernel's check must not find it later. */
        (void)cudaGetLastError();
        return ZL__NCCL_MEM_HOST;
    }
    switch (a.type) {
    case cudaMemoryTypeDevice:
        return a.device == device ? ZL__NCCL_MEM_DEVICE : ZL__NCCL_MEM_OTHER_DEVICE;
    case cudaMemoryTypeManaged: /* NCCL reads and writes it as device memory */
        return ZL__NCCL_MEM_DEVICE;
    default: /* unregistered or pinned host memory: MPI's */
        return ZL__NCCL_MEM_HOST;
    }
}

zl__nccl_route zl__nccl_route_of(size_t count, zl__nccl_mem a, zl__nccl_mem b, bool have_nccl)
{
    if (count == 0) return ZL__NCCL_NOTHING;
    if (a == ZL__NCCL_MEM_OTHER_DEVICE || b == ZL__NCCL_MEM_OTHER_DEVICE) return ZL__NCCL_WRONG_DEVICE;
    bool dev = a == ZL__NCCL_MEM_DEVICE || b == ZL__NCCL_MEM_DEVICE;
    bool host = a == ZL__NCCL_MEM_HOST || b == ZL__NCCL_MEM_HOST;
    if (dev && host) return ZL__NCCL_MIXED;
    if (dev) return have_nccl ? ZL__NCCL_DEVICE : ZL__NCCL_HOST_ONLY;
    return ZL__NCCL_HOST;
}

bool zl__nccl_dtype(zl_dtype dt, bool reduces, int *nccl_type, size_t *per_elem)
{
    *per_elem = 1;
    *nccl_type = -1;
    switch (dt) {
    case ZL_F32: *nccl_type = ncclFloat32; return true;
    case ZL_F16: *nccl_type = ncclFloat16; return true;
    case ZL_BF16: *nccl_type = ncclBfloat16; return true;
    case ZL_I32: *nccl_type = ncclInt32; return true;
    case ZL_F64: *nccl_type = ncclFloat64; return true;
    case ZL_U16: /* no 16-bit integer in NCCL: bytes move it unchanged, nothing adds it */
        *nccl_type = ncclUint8;
        *per_elem = 2;
        return !reduces;
    default: return false;
    }
}

int zl__nccl_redop(zl_reduce_op op)
{
    switch (op) {
    case ZL_REDUCE_SUM: return ncclSum;
    case ZL_REDUCE_MAX: return ncclMax;
    case ZL_REDUCE_MIN: return ncclMin;
    }
    ZL_ASSERT(!"bad reduce op");
    return ncclSum;
}

/* ------------------------------------------------------------------ errors */

static nccl_impl *impl_of(const zl_comm *c) { return c->impl; }

static const char *nccl_last(ncclComm_t comm)
{
    const char *s = ncclGetLastError(comm);
    return s ? s : "";
}

static zl_status nccl_fail(const zl_comm *c, const char *call, ncclResult_t rc)
{
    const nccl_impl *m = impl_of(c);
    const char *last = nccl_last(m ? m->nccl : NULL);
    return zl_errorf(ZL_ERR_COMM,
                     "%s on communicator '%s' (rank %d of %d) failed: %s%s%s\n"
                     "  hint: NCCL_DEBUG=WARN (or INFO) in the environment makes NCCL say more",
                     call, c->name, c->rank, c->size, ncclGetErrorString(rc), *last ? ": " : "",
                     last);
}

static zl_status cuda_fail(const zl_comm *c, const char *call, cudaError_t e)
{
    return zl_errorf(ZL_ERR_DEVICE, "%s for communicator '%s' (rank %d of %d) failed: %s", call,
                     c->name, c->rank, c->size, cudaGetErrorString(e));
}

#define CUDA_TRY(c, call, expr)                                   \
    do {                                                          \
        cudaError_t e_ = (expr);                                  \
        if (e_ != cudaSuccess) return cuda_fail(c, call, e_);     \
    } while (0)

static zl_status unsupported_dtype(const zl_comm *c, const char *call, zl_dtype dt)
{
    return zl_errorf(ZL_ERR_UNSUPPORTED,
                     "%s of %s on NCCL communicator '%s': NCCL cannot reduce %s (it has no "
                     "16-bit integer type)\n  hint: reduce token ids as i32",
                     call, zl_dtype_name(dt), c->name, zl_dtype_name(dt));
}

/* Where a call's buffers a and b (NULL: not part of it) go; ZL_OK with *r, or the
 * refusal of a mix. */
static zl_status route(const zl_comm *c, const char *call, size_t count, const void *a,
                       const void *b, zl__nccl_route *r)
{
    const nccl_impl *m = impl_of(c);
    int dev = m->ctx ? m->ctx->device : -1;
    *r = count == 0 ? ZL__NCCL_NOTHING
                    : zl__nccl_route_of(count, zl__nccl_mem_of(a, dev), zl__nccl_mem_of(b, dev),
                                        m->nccl != NULL);
    switch (*r) {
    case ZL__NCCL_MIXED:
        return zl_errorf(ZL_ERR_INVALID,
                         "%s on communicator '%s': one buffer is in host memory, the other in "
                         "device memory (NCCL moves device memory, MPI host memory)\n"
                         "  hint: copy the host buffer to the device, or the device buffer to "
                         "the host, first", call, c->name);
    case ZL__NCCL_WRONG_DEVICE:
        return zl_errorf(ZL_ERR_INVALID,
                         "%s on communicator '%s': a buffer is on another GPU than the "
                         "communicator's (device %d)", call, c->name, dev);
    case ZL__NCCL_HOST_ONLY:
        if (m->aborted)
            return zl_errorf(ZL_ERR_COMM, "%s on communicator '%s': its NCCL communicator was "
                             "aborted", call, c->name);
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "%s on communicator '%s': it moves host memory only (a node "
                         "communicator, over MPI), and a buffer is device memory\n"
                         "  hint: copy it to the host first", call, c->name);
    default: return ZL_OK;
    }
}

/* ------------------------------------------------------------------ the watchdog */

/* cudaEventQuery costs about a microsecond: the clock and NCCL's error state are read
 * every this many polls, i.e. about every 0.1 ms. */
enum { POLLS_PER_CHECK = 64 };

/* Stop the NCCL side for good: its kernels end, its buffers are no longer written. */
static void abort_nccl(nccl_impl *m)
{
    if (m->nccl) ncclCommAbort(m->nccl);
    m->nccl = NULL;
    m->aborted = true;
}

static void describe(char *buf, size_t n, zl_comm_op op, size_t nbytes, int peer)
{
    int k = snprintf(buf, n, "%s of %zu bytes", zl_comm_op_name(op), nbytes);
    if (peer >= 0 && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, op == ZL_COMM_RECV ? " from rank %d" : " to rank %d", peer);
}

static zl_status gave_up(zl_comm *c, zl_status st, zl_comm_op op, size_t nbytes, int peer,
                         double waited, const char *nccl_error)
{
    zl_comm_guard *g = c->guard;
    char what[96];
    describe(what, sizeof what, op, nbytes, peer);
    const char *phase = g && g->phase[0] ? g->phase : "no phase set";
    /* The message is taken before the abort, which may clear NCCL's last error. */
    char last[512];
    snprintf(last, sizeof last, "%s", nccl_last(impl_of(c)->nccl));
    abort_nccl(impl_of(c));
    if (nccl_error)
        return zl__comm_guard_break(
            g, st,
            "rank %d of %d: %s on NCCL communicator '%s' failed after %.1f s (%s): NCCL "
            "reported %s%s%s; the NCCL communicator is aborted\n"
            "  hint: another rank failed or lost its connection; its own output says why "
            "(NCCL_DEBUG=WARN makes NCCL say more)",
            c->rank, c->size, what, c->name, waited, phase, nccl_error, *last ? ": " : "", last);
    if (st == ZL_ERR_INTERRUPTED)
        return zl__comm_guard_break(
            g, st,
            "rank %d of %d: interrupted by signal %d while waiting in %s on NCCL communicator "
            "'%s' (%s); waited %.1f s, the other ranks did not complete it within the grace of "
            "%g s; the NCCL communicator is aborted",
            c->rank, c->size, (int)*g->interrupt, what, c->name, phase, waited,
            g->timeout > 0 && g->timeout < ZL_COMM_INTERRUPT_GRACE ? g->timeout
                                                                   : ZL_COMM_INTERRUPT_GRACE);
    return zl__comm_guard_break(
        g, st,
        "rank %d of %d: %s on NCCL communicator '%s' timed out after %.1f s (%s); collective "
        "timeout %g s; the NCCL communicator is aborted\n"
        "  hint: another rank of '%s' is stalled (stopped, stuck in I/O or a long computation) "
        "or waits in a different collective; its own output says where. A longer limit: "
        "zerolab train --collective-timeout SECONDS or ZL_COLLECTIVE_TIMEOUT (0 waits forever)",
        c->rank, c->size, what, c->name, waited, phase, g ? g->timeout : 0.0, c->name);
}

/* Wait until ev (recorded on comm after operation `op`) has completed, from t0: ZL_OK, a
 * CUDA failure, or (the NCCL communicator aborted, the guard broken) an NCCL error,
 * ZL_ERR_TIMEOUT or ZL_ERR_INTERRUPTED. Even without a timeout the loop polls NCCL's
 * error state: a peer's failure must not leave this rank waiting for ever. */
static zl_status watch(zl_comm *c, cudaEvent_t ev, zl_comm_op op, size_t nbytes, int peer,
                       double t0)
{
    nccl_impl *m = impl_of(c);
    const zl_comm_guard *g = c->guard;
    double limit = g ? g->timeout : 0;
    const volatile sig_atomic_t *intr = g ? g->interrupt : NULL;
    double signalled = -1; /* when the interrupt flag was first seen */
    for (unsigned polls = 1;; polls++) {
        cudaError_t e = cudaEventQuery(ev);
        if (e == cudaSuccess) return ZL_OK;
        if (e != cudaErrorNotReady) return cuda_fail(c, "cudaEventQuery", e);
        /* "Not ready" is no failure, but the runtime may keep it as the last error, where
         * a kernel's ZL_CUDA_CHECK(ctx, cudaGetLastError()) would find it (PyTorch clears
         * it the same way). */
        (void)cudaGetLastError();
        if (polls % POLLS_PER_CHECK) continue;
        ncclResult_t async = ncclSuccess;
        ncclResult_t rc = m->nccl ? ncclCommGetAsyncError(m->nccl, &async) : ncclInvalidUsage;
        if (rc != ncclSuccess) async = rc;
        double now = zl__comm_now();
        if (async != ncclSuccess && async != ncclInProgress)
            return gave_up(c, ZL_ERR_COMM, op, nbytes, peer, now - t0, ncclGetErrorString(async));
        if (intr && *intr) {
            if (signalled < 0) signalled = polls == POLLS_PER_CHECK ? t0 : now;
            if (now - signalled >= ZL_COMM_INTERRUPT_GRACE || (limit > 0 && now - t0 >= limit))
                return gave_up(c, ZL_ERR_INTERRUPTED, op, nbytes, peer, now - t0, NULL);
        } else if (limit > 0 && now - t0 >= limit) {
            return gave_up(c, ZL_ERR_TIMEOUT, op, nbytes, peer, now - t0, NULL);
        }
    }
}

/* ------------------------------------------------------------------ launching */

/* Before an NCCL call: comm waits for what compute has queued so far; a non-blocking
 * call gets its request (and event) now, so that nothing can fail once NCCL has it. */
static zl_status launch_begin(zl_comm *c, zl_comm_request *req, nccl_request **out)
{
    nccl_impl *m = impl_of(c);
    *out = NULL;
    CUDA_TRY(c, "cudaEventRecord", cudaEventRecord(m->ready, m->ctx->compute));
    CUDA_TRY(c, "cudaStreamWaitEvent", cudaStreamWaitEvent(m->ctx->comm, m->ready, 0));
    if (!req) return ZL_OK;
    nccl_request *r = calloc(1, sizeof *r);
    if (!r) return zl_errorf(ZL_ERR_NOMEM, "cannot allocate an NCCL request");
    cudaError_t e = cudaEventCreateWithFlags(&r->done, cudaEventDisableTiming);
    if (e != cudaSuccess) {
        free(r);
        return cuda_fail(c, "cudaEventCreateWithFlags", e);
    }
    *out = r;
    return ZL_OK;
}

/* After the NCCL call `call` returned rc: a blocking call waits for it; a non-blocking
 * one hands its event to req. */
static zl_status launch_end(zl_comm *c, zl_comm_request *req, nccl_request *r, ncclResult_t rc,
                            const char *call, zl_comm_op op, size_t nbytes, int peer)
{
    nccl_impl *m = impl_of(c);
    if (rc != ncclSuccess) {
        if (r) {
            cudaEventDestroy(r->done);
            free(r);
        }
        return nccl_fail(c, call, rc);
    }
    cudaStream_t s = m->ctx->comm;
    if (r) {
        cudaError_t e = cudaEventRecord(r->done, s);
        if (e != cudaSuccess) { /* the call is queued: wait for it here instead */
            cudaEventDestroy(r->done);
            free(r);
            zl_status st = cuda_fail(c, "cudaEventRecord", e);
            if (cudaStreamSynchronize(s) != cudaSuccess) abort_nccl(m);
            return st;
        }
        req->impl = r;
        return ZL_OK;
    }
    CUDA_TRY(c, "cudaEventRecord", cudaEventRecord(m->done, s));
    return watch(c, m->done, op, nbytes, peer, zl__comm_now());
}

/* A host call made with req: host's request handle goes inside ours, so that wait knows
 * whose it is. Allocated first: once host has started the call, nothing may fail. */
static zl_status host_request(zl_comm_request *req, nccl_request **out)
{
    *out = NULL;
    if (!req) return ZL_OK;
    *out = calloc(1, sizeof **out);
    return *out ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "cannot allocate a request");
}

static zl_status host_started(zl_comm_request *req, nccl_request *r, zl_status st)
{
    if (!r) return st;
    if (st != ZL_OK) {
        free(r);
        return st;
    }
    r->host_impl = req->impl;
    req->impl = r;
    return ZL_OK;
}

/* ------------------------------------------------------------------ collectives */

static zl_status nccl_allreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt,
                                zl_reduce_op op, zl_comm_request *req)
{
    nccl_impl *m = impl_of(c);
    zl__nccl_route where;
    zl_status st = route(c, "all_reduce", count, buf, NULL, &where);
    if (st != ZL_OK || where == ZL__NCCL_NOTHING) return st;
    nccl_request *r;
    if (where == ZL__NCCL_HOST) {
        if ((st = host_request(req, &r)) != ZL_OK) return st;
        return host_started(req, r, m->host->vt->allreduce(m->host, buf, count, dt, op, req));
    }
    int t;
    size_t per;
    if (!zl__nccl_dtype(dt, true, &t, &per)) return unsupported_dtype(c, "all_reduce", dt);
    if ((st = launch_begin(c, req, &r)) != ZL_OK) return st;
    ncclResult_t rc = ncclAllReduce(buf, buf, count * per, (ncclDataType_t)t,
                                    (ncclRedOp_t)zl__nccl_redop(op), m->nccl, m->ctx->comm);
    return launch_end(c, req, r, rc, "ncclAllReduce", ZL_COMM_ALLREDUCE,
                      count * zl_dtype_nbytes(dt), -1);
}

/* In place when recv == send + rank * count: NCCL's own in-place rule for
 * ncclReduceScatter, so the buffers go to it unchanged. */
static zl_status nccl_reduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                     zl_dtype dt, zl_reduce_op op, zl_comm_request *req)
{
    nccl_impl *m = impl_of(c);
    zl__nccl_route where;
    zl_status st = route(c, "reduce_scatter", count, recv, send, &where);
    if (st != ZL_OK || where == ZL__NCCL_NOTHING) return st;
    nccl_request *r;
    if (where == ZL__NCCL_HOST) {
        if ((st = host_request(req, &r)) != ZL_OK) return st;
        return host_started(req, r,
                            m->host->vt->reduce_scatter(m->host, recv, send, count, dt, op, req));
    }
    int t;
    size_t per;
    if (!zl__nccl_dtype(dt, true, &t, &per)) return unsupported_dtype(c, "reduce_scatter", dt);
    if ((st = launch_begin(c, req, &r)) != ZL_OK) return st;
    ncclResult_t rc = ncclReduceScatter(send, recv, count * per, (ncclDataType_t)t,
                                        (ncclRedOp_t)zl__nccl_redop(op), m->nccl, m->ctx->comm);
    return launch_end(c, req, r, rc, "ncclReduceScatter", ZL_COMM_REDUCE_SCATTER,
                      (size_t)c->size * count * zl_dtype_nbytes(dt), -1);
}

/* In place when send == recv + rank * count: NCCL's rule for ncclAllGather too. */
static zl_status nccl_allgather(zl_comm *c, void *recv, const void *send, size_t count,
                                zl_dtype dt, zl_comm_request *req)
{
    nccl_impl *m = impl_of(c);
    zl__nccl_route where;
    zl_status st = route(c, "allgather", count, recv, send, &where);
    if (st != ZL_OK || where == ZL__NCCL_NOTHING) return st;
    nccl_request *r;
    if (where == ZL__NCCL_HOST) {
        if ((st = host_request(req, &r)) != ZL_OK) return st;
        return host_started(req, r, m->host->vt->allgather(m->host, recv, send, count, dt, req));
    }
    int t;
    size_t per;
    zl__nccl_dtype(dt, false, &t, &per); /* every dtype moves */
    if ((st = launch_begin(c, req, &r)) != ZL_OK) return st;
    ncclResult_t rc = ncclAllGather(send, recv, count * per, (ncclDataType_t)t, m->nccl,
                                    m->ctx->comm);
    return launch_end(c, req, r, rc, "ncclAllGather", ZL_COMM_ALLGATHER,
                      count * zl_dtype_nbytes(dt), -1);
}

static zl_status nccl_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root)
{
    nccl_impl *m = impl_of(c);
    zl__nccl_route where;
    zl_status st = route(c, "broadcast", count, buf, NULL, &where);
    if (st != ZL_OK || where == ZL__NCCL_NOTHING) return st;
    if (where == ZL__NCCL_HOST) return m->host->vt->broadcast(m->host, buf, count, dt, root);
    int t;
    size_t per;
    zl__nccl_dtype(dt, false, &t, &per);
    nccl_request *r;
    if ((st = launch_begin(c, NULL, &r)) != ZL_OK) return st;
    ncclResult_t rc = ncclBroadcast(buf, buf, count * per, (ncclDataType_t)t, root, m->nccl,
                                    m->ctx->comm);
    return launch_end(c, NULL, r, rc, "ncclBroadcast", ZL_COMM_BROADCAST,
                      count * zl_dtype_nbytes(dt), -1);
}

/* recv matters on the root only: elsewhere it may be NULL, or anything, and is not
 * looked at (a non-root's stray host pointer must not route its call differently from
 * the root's). NCCL reads recvbuff on the root only; elsewhere it gets send, which it
 * does not write. */
static zl_status nccl_reduce(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                             zl_reduce_op op, int root)
{
    nccl_impl *m = impl_of(c);
    bool is_root = c->rank == root;
    zl__nccl_route where;
    zl_status st = route(c, "reduce", count, is_root ? recv : NULL, send, &where);
    if (st != ZL_OK || where == ZL__NCCL_NOTHING) return st;
    if (where == ZL__NCCL_HOST) return m->host->vt->reduce(m->host, recv, send, count, dt, op, root);
    int t;
    size_t per;
    if (!zl__nccl_dtype(dt, true, &t, &per)) return unsupported_dtype(c, "reduce", dt);
    nccl_request *r;
    if ((st = launch_begin(c, NULL, &r)) != ZL_OK) return st;
    ncclResult_t rc = ncclReduce(send, is_root ? recv : (void *)send, count * per,
                                 (ncclDataType_t)t, (ncclRedOp_t)zl__nccl_redop(op), root,
                                 m->nccl, m->ctx->comm);
    return launch_end(c, NULL, r, rc, "ncclReduce", ZL_COMM_REDUCE, count * zl_dtype_nbytes(dt),
                      -1);
}

static zl_status alone(const zl_comm *c, const char *call)
{
    return zl_errorf(ZL_ERR_COMM, "%s on communicator '%s': a one-rank group has no peer", call,
                     c->name);
}

/* One point-to-point call in an NCCL group: the group is where a later fused exchange
 * (a pipeline stage's send and receive together) would add its other half. Host memory
 * goes to host with its tag (MPI matches on it); NCCL has no tags (see the top). */
static zl_status nccl_p2p(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag,
                          bool sending)
{
    nccl_impl *m = impl_of(c);
    const char *call = sending ? "send" : "recv";
    zl__nccl_route where;
    zl_status st = route(c, call, count, buf, NULL, &where);
    if (st != ZL_OK || where == ZL__NCCL_NOTHING) return st;
    if (where == ZL__NCCL_HOST)
        return sending ? m->host->vt->send(m->host, buf, count, dt, peer, tag)
                       : m->host->vt->recv(m->host, buf, count, dt, peer, tag);
    if (c->size == 1) return alone(c, call);
    int t;
    size_t per;
    zl__nccl_dtype(dt, false, &t, &per);
    nccl_request *r;
    if ((st = launch_begin(c, NULL, &r)) != ZL_OK) return st;
    ncclResult_t rc = ncclGroupStart();
    if (rc == ncclSuccess) {
        rc = sending ? ncclSend(buf, count * per, (ncclDataType_t)t, peer, m->nccl, m->ctx->comm)
                     : ncclRecv(buf, count * per, (ncclDataType_t)t, peer, m->nccl, m->ctx->comm);
        ncclResult_t end = ncclGroupEnd(); /* always: a group must be closed */
        if (rc == ncclSuccess) rc = end;
    }
    return launch_end(c, NULL, r, rc, sending ? "ncclSend" : "ncclRecv",
                      sending ? ZL_COMM_SEND : ZL_COMM_RECV, count * zl_dtype_nbytes(dt), peer);
}

static zl_status nccl_send(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    return nccl_p2p(c, (void *)buf, count, dt, peer, tag, true);
}

static zl_status nccl_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    return nccl_p2p(c, buf, count, dt, peer, tag, false);
}

/* Over host: a barrier is about the ranks, and every blocking NCCL call has completed on
 * the GPU before it returned. */
static zl_status nccl_barrier(zl_comm *c)
{
    nccl_impl *m = impl_of(c);
    return m->host->vt->barrier(m->host);
}

static zl_status nccl_wait(zl_comm *c, zl_comm_request *req)
{
    nccl_impl *m = impl_of(c);
    nccl_request *r = req->impl;
    if (!r) return ZL_OK; /* nothing was started (count 0) */
    req->impl = NULL;
    zl_status st;
    if (!r->done) { /* a host call: host's own wait, on host's own handle */
        req->impl = r->host_impl;
        st = m->host->vt->wait(m->host, req);
        req->impl = NULL;
    } else if (!m->nccl) {
        st = zl_errorf(ZL_ERR_COMM, "wait on communicator '%s': its NCCL communicator was aborted",
                       c->name);
    } else {
        /* As MPI's: the watchdog counts from the wait, not from the start. */
        st = watch(c, r->done, req->op, req->nbytes, -1, zl__comm_now());
    }
    if (r->done) cudaEventDestroy(r->done); /* released once it completes, if it has not */
    free(r);
    return st;
}

/* ------------------------------------------------------------------ communicators */

static const zl_comm_vtable nccl_vtable;

/* A communicator over host (owned or borrowed) with NCCL communicator nc (NULL: none).
 * On failure nothing is taken: the caller still owns host and nc. */
static zl_status make(zl_comm *host, bool owns_host, zl_cuda_ctx *ctx, ncclComm_t nc,
                      const char *name, zl_comm **out)
{
    zl_comm *c = calloc(1, sizeof *c);
    nccl_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
        return zl_errorf(ZL_ERR_NOMEM, "cannot allocate communicator '%s'", name);
    }
    c->vt = &nccl_vtable;
    c->rank = host->rank;
    c->size = host->size;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->log = host->log;
    c->stride = host->stride;
    c->impl = m;
    m->nccl = nc;
    m->host = host;
    m->owns_host = owns_host;
    m->ctx = ctx;
    if (nc) {
        cudaError_t e = cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&m->done, cudaEventDisableTiming);
        if (e != cudaSuccess) {
            zl_status st = cuda_fail(c, "cudaEventCreateWithFlags", e);
            if (m->ready) cudaEventDestroy(m->ready);
            free(m);
            free(c);
            return st;
        }
    }
    c->guard = zl__comm_guard_ref(host->guard); /* host's watchdog is ours */
    *out = c;
    return ZL_OK;
}

/* Let go of nc: abort it when the communicator is broken (a peer may be stalled, and a
 * clean destroy would wait for it), else finalize (its queued work completes) and
 * destroy it. */
static void release_nccl(ncclComm_t nc, bool broken)
{
    if (!nc) return;
    if (broken) {
        ncclCommAbort(nc);
        return;
    }
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
    ncclCommFinalize(nc);
#endif
    ncclCommDestroy(nc);
}

/* Make an NCCL communicator over the ranks of host (device ctx->device): rank 0's
 * unique id, broadcast over host, then ncclCommInitRank. Collective over host; a failure
 * on any rank is every rank's. */
static zl_status init_over(zl_comm *host, zl_cuda_ctx *ctx, const char *name, ncclComm_t *out)
{
    *out = NULL;
    zl_status st = ZL_OK;
    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    if (e != cudaSuccess || ndev == 0)
        st = zl_errorf(ZL_ERR_DEVICE, "NCCL communicator '%s' (rank %d of %d): no CUDA device (%s)",
                       name, host->rank, host->size,
                       e != cudaSuccess ? cudaGetErrorString(e) : "the runtime counts none");
    else if (ctx->device < 0 || ctx->device >= ndev)
        st = zl_errorf(ZL_ERR_DEVICE, "NCCL communicator '%s' (rank %d of %d): device %d does "
                       "not exist (%d devices)", name, host->rank, host->size, ctx->device, ndev);
    else if ((e = cudaSetDevice(ctx->device)) != cudaSuccess)
        st = zl_errorf(ZL_ERR_DEVICE, "NCCL communicator '%s': cudaSetDevice(%d) failed: %s", name,
                       ctx->device, cudaGetErrorString(e));
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (st == ZL_OK && host->rank == 0) {
        ncclResult_t rc = ncclGetUniqueId(&id);
        if (rc != ncclSuccess)
            st = zl_errorf(ZL_ERR_COMM, "ncclGetUniqueId for communicator '%s' failed: %s%s%s", name,
                           ncclGetErrorString(rc), *nccl_last(NULL) ? ": " : "", nccl_last(NULL));
    }
    if ((st = zl_comm_agree(host, st)) != ZL_OK) return st;
    /* zerolab's own set-up traffic: host's vtable, so neither logged nor simulated. */
    _Static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0, "the id travels as i32s");
    st = host->vt->broadcast(host, &id, sizeof id / sizeof(int32_t), ZL_I32, 0);
    if (st != ZL_OK) return st; /* a failed collective fails on every rank */
    ncclComm_t nc = NULL;
    ncclResult_t rc = ncclCommInitRank(&nc, host->size, id, host->rank);
    if (rc != ncclSuccess) {
        st = zl_errorf(ZL_ERR_COMM,
                       "ncclCommInitRank for communicator '%s' (rank %d of %d, device %d) "
                       "failed: %s%s%s\n  hint: every rank needs a GPU of its own (ranks per "
                       "node <= GPUs per node); NCCL_DEBUG=WARN makes NCCL say more",
                       name, host->rank, host->size, ctx->device, ncclGetErrorString(rc),
                       *nccl_last(NULL) ? ": " : "", nccl_last(NULL));
        nc = NULL;
    }
    if ((st = zl_comm_agree(host, st)) != ZL_OK) {
        release_nccl(nc, true);
        return st;
    }
    *out = nc;
    return ZL_OK;
}

static zl_status nccl_split(zl_comm *c, int color, int key, const char *name, zl_comm **out)
{
    nccl_impl *m = impl_of(c);
    zl_comm *sub = NULL;
    zl_status st = m->host->vt->split(m->host, color, key, name, &sub);
    if (st != ZL_OK) return st;
    ncclComm_t nc = NULL;
    if (m->nccl) {
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
        /* NCCL orders the new ranks by key, then by parent rank: as MPI_Comm_split does,
         * so rank r of sub is rank r of the NCCL split (checked). */
        ncclResult_t rc = ncclCommSplit(m->nccl, color, key, &nc, NULL);
        if (rc != ncclSuccess) {
            st = nccl_fail(c, "ncclCommSplit", rc);
            nc = NULL;
        } else {
            int r = -1, n = -1;
            ncclCommUserRank(nc, &r);
            ncclCommCount(nc, &n);
            if (r != sub->rank || n != sub->size)
                st = zl_errorf(ZL_ERR_COMM, "split of '%s' into '%s': NCCL made rank %d of %d, "
                               "MPI rank %d of %d", c->name, name, r, n, sub->rank, sub->size);
        }
        st = zl_comm_agree(m->host, st); /* sub's ranks are among host's */
        if (st != ZL_OK) release_nccl(nc, true);
#else
        /* No ncclCommSplit before NCCL 2.18: a fresh unique id over the split MPI group. */
        st = init_over(sub, m->ctx, name, &nc);
#endif
        if (st != ZL_OK) {
            sub->vt->destroy(sub);
            return st;
        }
    }
    st = make(sub, true, m->ctx, nc, name, out);
    if (st != ZL_OK) {
        release_nccl(nc, true);
        sub->vt->destroy(sub);
    }
    return st;
}

/* The node's ranks for host-side work (who writes a node's files, which ranks share
 * cores): host's node group, with no NCCL side; a device buffer given to it is refused
 * (comm_nccl.h, ZL__NCCL_HOST_ONLY). */
static zl_status nccl_split_node(zl_comm *c, const char *name, zl_comm **out)
{
    nccl_impl *m = impl_of(c);
    zl_comm *sub = NULL;
    zl_status st = m->host->vt->split_node ? m->host->vt->split_node(m->host, name, &sub)
                                           : zl__comm_self_create(&sub, name, m->host->log);
    if (st != ZL_OK) return st;
    st = make(sub, true, m->ctx, NULL, name, out);
    if (st != ZL_OK) sub->vt->destroy(sub);
    return st;
}

static void nccl_destroy(zl_comm *c)
{
    nccl_impl *m = impl_of(c);
    release_nccl(m->nccl, c->guard && c->guard->broken != ZL_OK);
    if (m->ready) cudaEventDestroy(m->ready);
    if (m->done) cudaEventDestroy(m->done);
    if (m->owns_host) m->host->vt->destroy(m->host);
    zl__comm_guard_unref(c->guard);
    free(m);
    free(c);
}

/* The GPU's collectives stop first (a killed process's kernels would end anyway, but
 * ncclCommAbort does not depend on how the launcher kills), then host ends the job. */
static void nccl_abort(zl_comm *c, int code)
{
    nccl_impl *m = impl_of(c);
    abort_nccl(m);
    if (m->host->vt->abort) m->host->vt->abort(m->host, code);
}

static const zl_comm_vtable nccl_vtable = {
    .name = "nccl",
    .allreduce = nccl_allreduce,
    .reduce_scatter = nccl_reduce_scatter,
    .allgather = nccl_allgather,
    .broadcast = nccl_broadcast,
    .reduce = nccl_reduce,
    .send = nccl_send,
    .recv = nccl_recv,
    .barrier = nccl_barrier,
    .wait = nccl_wait,
    .split = nccl_split,
    .split_node = nccl_split_node,
    .destroy = nccl_destroy,
    .abort = nccl_abort,
};

zl_status zl_comm_nccl(zl_comm **out, zl_comm *host, bool own_host, const zl_ops *cuda,
                       const char *name)
{
    ZL_ASSERT(out != NULL && host != NULL);
    *out = NULL;
    if (!name) name = host->name;
    zl_status st = zl_comm_health(host);
    if (st != ZL_OK) return st;
    zl_cuda_ctx *ctx = cuda ? zl_cuda_ctx_of(cuda) : NULL;
    /* Every rank checks, then all agree: one rank's missing context must not leave the
     * others in the id's broadcast. */
    if (!ctx)
        st = zl_errorf(ZL_ERR_INVALID, "NCCL communicator '%s': the CUDA backend has no "
                       "context (its setup has not run)\n  hint: initialise the device "
                       "(zl_device_init) before its communicator", name);
    if ((st = zl_comm_agree(host, st)) != ZL_OK) return st;
    ncclComm_t nc;
    if ((st = init_over(host, ctx, name, &nc)) != ZL_OK) return st;
    st = make(host, own_host, ctx, nc, name, out);
    if (st != ZL_OK) release_nccl(nc, true);
    return st;
}
