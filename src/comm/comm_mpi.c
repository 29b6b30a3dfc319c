/* The MPI communicator: every MPI rank plays one GPU. Built only with ZL_HAVE_MPI.
 *
 * Element types map to MPI types; f16 and bf16 travel as 16-bit integers and are reduced
 * by our own MPI operations, which compute in f32 and round back. DeepSpeed reduces 16-bit
 * gradients in 16 bits under mixed precision, so the rounding of every partial sum is
 * part of the semantics we reproduce.
 *
 * Lifetime: zl_comm_world initialises MPI if nobody has, creates the 16-bit operations,
 * and installs the MPI_Abort panic hook, all once. An attribute on MPI_COMM_SELF brings
 * them down inside MPI_Finalize (MPI deletes MPI_COMM_SELF's attributes first thing
 * there), whoever calls it. MPI_Finalize itself is called by destroying the last world
 * handle, if and only if we initialised MPI.
 *
 * The watchdog (comm.h): every blocking call is issued as its non-blocking counterpart
 * (MPI_Iallreduce for MPI_Allreduce, ...) and completed by await(), an MPI_Test loop that
 * reads the clock every POLLS_PER_CLOCK polls and gives up at the collective timeout. MPI
 * itself has no timed wait, and MPICH's MPI_Wait spins on the progress engine just as
 * this loop does, so the common case costs the same (one MPI_Test per poll). */
#include "comm/comm_internal.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

typedef struct mpi_impl {
    MPI_Comm comm;
    bool is_world;
} mpi_impl;

/* A pending non-blocking call; an in-place reduce-scatter still has to move its result
 * (MPI leaves it at the start of the buffer) to the rank's chunk when it completes. */
typedef struct mpi_request {
    MPI_Request req;
    void *move_dst;
    const void *move_src;
    size_t move_nbytes;
} mpi_request;

enum { HALF_F16, HALF_BF16 };

static struct {
    bool ready;          /* operations created and hooks installed, until MPI_Finalize */
    bool we_initialized; /* MPI_Init_thread was ours: so is MPI_Finalize */
    int world_handles;
    MPI_Op half_ops[2][3]; /* [HALF_F16, HALF_BF16][ZL_REDUCE_SUM, _MAX, _MIN] */
    int keyval;
} g;

static size_t max_count = INT_MAX;

size_t zl__comm_mpi_set_max_count(size_t n)
{
    size_t old = max_count;
    max_count = n > 0 && n <= INT_MAX ? n : INT_MAX;
    return old;
}

/* ------------------------------------------------------------------ errors */

static zl_status mpi_fail(const zl_comm *c, const char *call, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    return zl_errorf(ZL_ERR_COMM, "%s on communicator '%s' (rank %d of %d) failed: %s", call,
                     c->name, c->rank, c->size, msg);
}

#define MPI_TRY(c, call, expr)                                 \
    do {                                                       \
        int rc_ = (expr);                                      \
        if (rc_ != MPI_SUCCESS) return mpi_fail(c, call, rc_); \
    } while (0)

static zl_status too_large(const zl_comm *c, const char *call, size_t count)
{
    return zl_errorf(ZL_ERR_UNSUPPORTED,
                     "%s of %zu elements on communicator '%s': one MPI call moves at most %zu "
                     "elements; split the buffer (e.g. a smaller bucket size)",
                     call, count, c->name, max_count);
}

/* ------------------------------------------------------------------ the watchdog */

/* The clock is read once per this many MPI_Test calls: a poll costs about 0.1-1 us, so
 * the timeout is checked every 0.1-1 ms and clock_gettime stays off the fast path. */
enum { POLLS_PER_CLOCK = 1024 };

static MPI_Comm comm_of(const zl_comm *c);

/* "all_reduce of 8 bytes" / "send of 8 bytes to rank 1": the operation in a message. */
static void describe(char *buf, size_t n, zl_comm_op op, size_t nbytes, int peer)
{
    int k = snprintf(buf, n, "%s of %zu bytes", zl_comm_op_name(op), nbytes);
    if (peer >= 0 && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, op == ZL_COMM_RECV ? " from rank %d" : " to rank %d", peer);
}

static zl_status gave_up(zl_comm *c, zl_status st, zl_comm_op op, size_t nbytes, int peer,
                         double waited)
{
    zl_comm_guard *g = c->guard;
    char what[96];
    describe(what, sizeof what, op, nbytes, peer);
    const char *phase = g->phase[0] ? g->phase : "no phase set";
    if (st == ZL_ERR_INTERRUPTED)
        return zl__comm_guard_break(
            g, st,
            "rank %d of %d: interrupted by signal %d while waiting in %s on communicator '%s' "
            "(%s); waited %.1f s, the other ranks did not complete it within the grace of %g s",
            c->rank, c->size, (int)*g->interrupt, what, c->name, phase, waited,
            g->timeout > 0 && g->timeout < ZL_COMM_INTERRUPT_GRACE ? g->timeout
                                                                   : ZL_COMM_INTERRUPT_GRACE);
    return zl__comm_guard_break(
        g, st,
        "rank %d of %d: %s on communicator '%s' timed out after %.1f s (%s); collective "
        "timeout %g s\n"
        "  hint: another rank of '%s' is stalled (stopped, swapping, stuck in I/O or a long "
        "computation) or waits in a different collective; its own output says where. A "
        "longer limit: zerolab train --collective-timeout SECONDS or ZL_COLLECTIVE_TIMEOUT "
        "(0 waits forever)",
        c->rank, c->size, what, c->name, waited, phase, g->timeout, c->name);
}

/* What a wait polls: a request (MPI_Test), or, for a receive, the arrival of a message
 * (MPI_Improbe: a matched probe, so the receive can check the length before taking the
 * message; a truncating receive would fail inside MPI_Test, and MPICH reports errors of
 * MPI_Test through MPI_COMM_WORLD's error handler, which aborts, not through ours). */
typedef struct waitable {
    MPI_Request *req;   /* or NULL: probe */
    MPI_Message *msg;   /* the probe's match */
    int source, tag;    /* the probe's */
    MPI_Status *status; /* or MPI_STATUS_IGNORE (not for a probe) */
} waitable;

static int poll_once(const zl_comm *c, waitable *w, int *done)
{
    if (w->req) return MPI_Test(w->req, done, w->status);
    return MPI_Improbe(w->source, w->tag, comm_of(c), done, w->msg, w->status);
}

static int wait_forever(const zl_comm *c, waitable *w)
{
    if (w->req) return MPI_Wait(w->req, w->status);
    return MPI_Mprobe(w->source, w->tag, comm_of(c), w->msg, w->status);
}

/* Complete w, started by operation `op` (nbytes as logged, peer or -1), waiting since
 * t0: ZL_OK, an MPI failure, or ZL_ERR_TIMEOUT / ZL_ERR_INTERRUPTED with the communicator
 * broken. A request given up on stays with MPI (a collective cannot be cancelled). */
static zl_status watch(zl_comm *c, waitable *w, zl_comm_op op, size_t nbytes, int peer, double t0)
{
    const zl_comm_guard *g = c->guard;
    double limit = g->timeout;
    const volatile sig_atomic_t *intr = g->interrupt;
    const char *call = w->req ? "MPI_Test" : "MPI_Improbe";
    if (limit <= 0 && !intr) { /* no watchdog: MPI's own wait */
        int rc = wait_forever(c, w);
        return rc == MPI_SUCCESS ? ZL_OK : mpi_fail(c, w->req ? "MPI_Wait" : "MPI_Mprobe", rc);
    }
    double signalled = -1; /* when the interrupt flag was first seen */
    for (unsigned polls = 1;; polls++) {
        int done = 0;
        int rc = poll_once(c, w, &done);
        if (rc != MPI_SUCCESS) return mpi_fail(c, call, rc);
        if (done) return ZL_OK;
        if (polls % POLLS_PER_CLOCK) continue;
        double now = zl__comm_now();
        /* A signal: the grace runs from when the flag was seen (from the start when it was
         * set already), and it, not the timeout, is the reason given. */
        if (intr && *intr) {
            if (signalled < 0) signalled = polls == POLLS_PER_CLOCK ? t0 : now;
            if (now - signalled >= ZL_COMM_INTERRUPT_GRACE || (limit > 0 && now - t0 >= limit))
                return gave_up(c, ZL_ERR_INTERRUPTED, op, nbytes, peer, now - t0);
        } else if (limit > 0 && now - t0 >= limit) {
            return gave_up(c, ZL_ERR_TIMEOUT, op, nbytes, peer, now - t0);
        }
    }
}

static zl_status await(zl_comm *c, MPI_Request *r, MPI_Status *status, zl_comm_op op,
                       size_t nbytes, int peer, double t0)
{
    waitable w = {.req = r, .status = status};
    return watch(c, &w, op, nbytes, peer, t0);
}

/* Start a non-blocking call (`expr` sets req) and wait for it under the watchdog. */
#define MPI_AWAIT(c, call, expr, req, op, nbytes, peer, t0)                      \
    do {                                                                         \
        int rc_ = (expr);                                                        \
        if (rc_ != MPI_SUCCESS) return mpi_fail(c, call, rc_);                   \
        zl_status st_ = await(c, &(req), MPI_STATUS_IGNORE, op, nbytes, peer, t0); \
        if (st_ != ZL_OK) return st_;                                            \
    } while (0)

/* ------------------------------------------------------------------ 16-bit reductions */

/* f32 has more than twice the precision of f16 and bf16 plus two bits (24 >= 2*11+2), so
 * rounding the f32 sum of two 16-bit values back to 16 bits gives exactly the correctly
 * rounded 16-bit sum: the double rounding is innocuous. NaN wins MAX and MIN, as in
 * torch.max (a comparison alone would drop it on one side). */
static inline float op_sum(float a, float b) { return a + b; }
static inline float op_max(float a, float b) { return a != a ? a : b != b ? b : a > b ? a : b; }
static inline float op_min(float a, float b) { return a != a ? a : b != b ? b : a < b ? a : b; }

#define HALF_REDUCER(name, to_f32, from_f32, OP)                                    \
    static void name(void *in, void *inout, int *len, MPI_Datatype *dt)             \
    {                                                                               \
        const uint16_t *x = in;                                                     \
        uint16_t *y = inout;                                                        \
        for (int i = 0; i < *len; i++) y[i] = from_f32(OP(to_f32(x[i]), to_f32(y[i]))); \
    }

HALF_REDUCER(f16_sum, zl_f16_to_f32, zl_f32_to_f16, op_sum)
HALF_REDUCER(f16_max, zl_f16_to_f32, zl_f32_to_f16, op_max)
HALF_REDUCER(f16_min, zl_f16_to_f32, zl_f32_to_f16, op_min)
HALF_REDUCER(bf16_sum, zl_bf16_to_f32, zl_f32_to_bf16, op_sum)
HALF_REDUCER(bf16_max, zl_bf16_to_f32, zl_f32_to_bf16, op_max)
HALF_REDUCER(bf16_min, zl_bf16_to_f32, zl_f32_to_bf16, op_min)

static MPI_Datatype mpi_type(zl_dtype dt)
{
    switch (dt) {
    case ZL_F32: return MPI_FLOAT;
    case ZL_F64: return MPI_DOUBLE;
    case ZL_I32: return MPI_INT32_T;
    case ZL_U16: case ZL_F16: case ZL_BF16: return MPI_UINT16_T;
    default: ZL_ASSERT(!"bad dtype"); return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(zl_dtype dt, zl_reduce_op op)
{
    if (dt == ZL_F16) return g.half_ops[HALF_F16][op];
    if (dt == ZL_BF16) return g.half_ops[HALF_BF16][op];
    switch (op) {
    case ZL_REDUCE_SUM: return MPI_SUM;
    case ZL_REDUCE_MAX: return MPI_MAX;
    case ZL_REDUCE_MIN: return MPI_MIN;
    }
    ZL_ASSERT(!"bad reduce op");
    return MPI_OP_NULL;
}

/* ------------------------------------------------------------------ set-up, tear-down */

static void panic_abort(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Called by MPI_Finalize (deleting MPI_COMM_SELF's attributes), before MPI goes away. */
static int at_finalize(MPI_Comm comm, int keyval, void *attr, void *extra)
{
    for (int h = 0; h < 2; h++)
        for (int o = 0; o < 3; o++) MPI_Op_free(&g.half_ops[h][o]);
    zl_set_panic_hook(NULL); /* MPI_Abort is not allowed after MPI_Finalize */
    g.ready = false;
    return MPI_SUCCESS;
}

static zl_status setup(void)
{
    if (g.ready) return ZL_OK;
    static MPI_User_function *const fns[2][3] = {{f16_sum, f16_max, f16_min},
                                                 {bf16_sum, bf16_max, bf16_min}};
    for (int h = 0; h < 2; h++)
        for (int o = 0; o < 3; o++) {
            int rc = MPI_Op_create(fns[h][o], 1 /* commutative */, &g.half_ops[h][o]);
            if (rc != MPI_SUCCESS)
                return zl_errorf(ZL_ERR_COMM, "cannot create the 16-bit MPI reductions (MPI error %d)", rc);
        }
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_finalize, &g.keyval, NULL) != MPI_SUCCESS ||
        MPI_Comm_set_attr(MPI_COMM_SELF, g.keyval, NULL) != MPI_SUCCESS)
        return zl_errorf(ZL_ERR_COMM, "cannot register the MPI finalize hook");
    zl_set_panic_hook(panic_abort);
    g.ready = true;
    return ZL_OK;
}

/* ------------------------------------------------------------------ collectives */

static MPI_Comm comm_of(const zl_comm *c) { return ((const mpi_impl *)c->impl)->comm; }

static zl_status start_request(zl_comm_request *req, mpi_request **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return zl_errorf(ZL_ERR_NOMEM, "cannot allocate an MPI request");
    req->impl = *out;
    return ZL_OK;
}

static zl_status failed_start(const zl_comm *c, zl_comm_request *req, const char *call, int rc)
{
    free(req->impl);
    req->impl = NULL;
    return mpi_fail(c, call, rc);
}

static zl_status mpi_allreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt,
                               zl_reduce_op op, zl_comm_request *req)
{
    MPI_Datatype t = mpi_type(dt);
    MPI_Op o = mpi_op(dt, op);
    if (req) {
        if (count > max_count) return too_large(c, "iallreduce", count);
        mpi_request *r;
        zl_status st = start_request(req, &r);
        if (st != ZL_OK) return st;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, t, o, comm_of(c), &r->req);
        return rc == MPI_SUCCESS ? ZL_OK : failed_start(c, req, "MPI_Iallreduce", rc);
    }
    /* Element-wise: any split into pieces gives the same result. */
    size_t es = zl_dtype_nbytes(dt);
    double t0 = zl__comm_now();
    for (size_t off = 0; off < count;) {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_Request r;
        MPI_AWAIT(c, "MPI_Iallreduce",
                  MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * es, (int)n, t, o, comm_of(c), &r),
                  r, ZL_COMM_ALLREDUCE, count * es, -1, t0);
        off += n;
    }
    return ZL_OK;
}

static zl_status mpi_reduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                    zl_dtype dt, zl_reduce_op op, zl_comm_request *req)
{
    if (count > max_count) return too_large(c, req ? "ireduce_scatter" : "reduce_scatter", count);
    if (count == 0) return ZL_OK;
    MPI_Datatype t = mpi_type(dt);
    MPI_Op o = mpi_op(dt, op);
    size_t chunk = count * zl_dtype_nbytes(dt);
    /* In place (recv is this rank's chunk of send): MPI reduces the whole buffer and
     * leaves the result at its start, from where it moves to the chunk. */
    bool in_place = (const char *)recv == (const char *)send + (size_t)c->rank * chunk;
    const void *sbuf = in_place ? MPI_IN_PLACE : send;
    void *rbuf = in_place ? (void *)send : recv;
    if (req) {
        mpi_request *r;
        zl_status st = start_request(req, &r);
        if (st != ZL_OK) return st;
        if (in_place && c->rank != 0) {
            r->move_dst = recv;
            r->move_src = send;
            r->move_nbytes = chunk;
        }
        int rc = MPI_Ireduce_scatter_block(sbuf, rbuf, (int)count, t, o, comm_of(c), &r->req);
        return rc == MPI_SUCCESS ? ZL_OK : failed_start(c, req, "MPI_Ireduce_scatter_block", rc);
    }
    MPI_Request r;
    MPI_AWAIT(c, "MPI_Ireduce_scatter_block",
              MPI_Ireduce_scatter_block(sbuf, rbuf, (int)count, t, o, comm_of(c), &r), r,
              ZL_COMM_REDUCE_SCATTER, (size_t)c->size * chunk, -1, zl__comm_now());
    if (in_place && c->rank != 0) memmove(recv, send, chunk);
    return ZL_OK;
}

static zl_status mpi_allgather(zl_comm *c, void *recv, const void *send, size_t count,
                               zl_dtype dt, zl_comm_request *req)
{
    if (count > max_count) return too_large(c, req ? "iallgather" : "allgather", count);
    if (count == 0) return ZL_OK;
    MPI_Datatype t = mpi_type(dt);
    /* In place: this rank's chunk already sits at its place in recv. */
    bool in_place = (const char *)send == (const char *)recv + (size_t)c->rank * count * zl_dtype_nbytes(dt);
    const void *sbuf = in_place ? MPI_IN_PLACE : send;
    int scount = in_place ? 0 : (int)count;
    MPI_Datatype stype = in_place ? MPI_DATATYPE_NULL : t;
    if (req) {
        mpi_request *r;
        zl_status st = start_request(req, &r);
        if (st != ZL_OK) return st;
        int rc = MPI_Iallgather(sbuf, scount, stype, recv, (int)count, t, comm_of(c), &r->req);
        return rc == MPI_SUCCESS ? ZL_OK : failed_start(c, req, "MPI_Iallgather", rc);
    }
    MPI_Request r;
    MPI_AWAIT(c, "MPI_Iallgather",
              MPI_Iallgather(sbuf, scount, stype, recv, (int)count, t, comm_of(c), &r), r,
              ZL_COMM_ALLGATHER, count * zl_dtype_nbytes(dt), -1, zl__comm_now());
    return ZL_OK;
}

static zl_status mpi_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root)
{
    size_t es = zl_dtype_nbytes(dt);
    double t0 = zl__comm_now();
    for (size_t off = 0; off < count;) {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_Request r;
        MPI_AWAIT(c, "MPI_Ibcast",
                  MPI_Ibcast((char *)buf + off * es, (int)n, mpi_type(dt), root, comm_of(c), &r), r,
                  ZL_COMM_BROADCAST, count * es, -1, t0);
        off += n;
    }
    return ZL_OK;
}

static zl_status mpi_reduce(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                            zl_reduce_op op, int root)
{
    size_t es = zl_dtype_nbytes(dt);
    bool is_root = c->rank == root, in_place = is_root && recv == send;
    /* Debian 12's MPICH 4.0 (ch4:ucx) crashes in MPI_Reduce with MPI_IN_PLACE at a root
     * other than 0 (seen from 1000 floats up, in a memcpy inside the library). So an in-place
     * reduce goes through a temporary buffer at the root instead: one extra copy there. */
    void *tmp = NULL;
    if (in_place && count > 0) {
        tmp = malloc((count < max_count ? count : max_count) * es);
        if (!tmp) return zl_errorf(ZL_ERR_NOMEM, "reduce on '%s': out of host memory", c->name);
    }
    zl_status st = ZL_OK;
    double t0 = zl__comm_now();
    for (size_t off = 0; off < count && st == ZL_OK;) {
        size_t n = count - off < max_count ? count - off : max_count;
        const void *s = (const char *)send + off * es;
        void *r = is_root ? (in_place ? tmp : (char *)recv + off * es) : NULL;
        MPI_Request req;
        int rc = MPI_Ireduce(s, r, (int)n, mpi_type(dt), mpi_op(dt, op), root, comm_of(c), &req);
        if (rc != MPI_SUCCESS) st = mpi_fail(c, "MPI_Ireduce", rc);
        else st = await(c, &req, MPI_STATUS_IGNORE, ZL_COMM_REDUCE, count * es, -1, t0);
        if (st == ZL_OK && in_place) memcpy((char *)recv + off * es, tmp, n * es);
        off += n;
    }
    /* After a timeout MPI may still write tmp: leave it (the process is ending). */
    if (st != ZL_ERR_TIMEOUT && st != ZL_ERR_INTERRUPTED) free(tmp);
    return st;
}

/* The wrappers refuse peer == rank in a group of several; in a group of one there is no
 * peer at all (a blocking send to oneself could wait forever). */
static zl_status alone(const zl_comm *c, const char *call)
{
    return zl_errorf(ZL_ERR_COMM, "%s on communicator '%s': a one-rank group has no peer", call,
                     c->name);
}

static zl_status mpi_send(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    if (c->size == 1) return alone(c, "send");
    /* Pieces of one large message keep their order: MPI does not overtake messages with
     * the same source, destination, tag and communicator. */
    size_t es = zl_dtype_nbytes(dt);
    size_t off = 0;
    double t0 = zl__comm_now();
    do {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_Request r;
        MPI_AWAIT(c, "MPI_Isend",
                  MPI_Isend((const char *)buf + off * es, (int)n, mpi_type(dt), peer, tag, comm_of(c), &r),
                  r, ZL_COMM_SEND, count * es, peer, t0);
        off += n;
    } while (off < count);
    return ZL_OK;
}

static zl_status mpi_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    if (c->size == 1) return alone(c, "recv");
    size_t es = zl_dtype_nbytes(dt);
    size_t off = 0;
    double t0 = zl__comm_now();
    do {
        size_t n = count - off < max_count ? count - off : max_count;
        /* The message's length first (a matched probe), then the receive into buf. */
        MPI_Status status;
        MPI_Message msg;
        waitable w = {.msg = &msg, .source = peer, .tag = tag, .status = &status};
        zl_status st = watch(c, &w, ZL_COMM_RECV, count * es, peer, t0);
        if (st != ZL_OK) return st;
        int got = 0;
        MPI_Get_count(&status, mpi_type(dt), &got);
        if (got == MPI_UNDEFINED || (size_t)got > n) {
            /* Too long: take it out of the way (so it cannot match a later receive) and
             * report the truncation MPI_Recv would have. */
            int nbytes = 0;
            MPI_Get_count(&status, MPI_BYTE, &nbytes);
            void *sink = malloc(nbytes > 0 ? (size_t)nbytes : 1);
            if (sink) MPI_Mrecv(sink, nbytes, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
            free(sink);
            return zl_errorf(ZL_ERR_COMM,
                             "MPI_Recv on communicator '%s' (rank %d of %d) failed: message "
                             "truncated: rank %d sent %d bytes, more than the %zu elements of %s "
                             "expected (tag %d)",
                             c->name, c->rank, c->size, peer, nbytes, n, zl_dtype_name(dt), tag);
        }
        MPI_Request r;
        MPI_TRY(c, "MPI_Imrecv", MPI_Imrecv((char *)buf + off * es, got, mpi_type(dt), &msg, &r));
        if ((st = await(c, &r, MPI_STATUS_IGNORE, ZL_COMM_RECV, count * es, peer, t0)) != ZL_OK)
            return st;
        if ((size_t)got != n)
            return zl_errorf(ZL_ERR_COMM,
                             "recv on communicator '%s': rank %d sent %zu elements of %s, rank %d "
                             "expected %zu (tag %d)",
                             c->name, peer, off + (size_t)got, zl_dtype_name(dt), c->rank, count, tag);
        off += n;
    } while (off < count);
    return ZL_OK;
}

static zl_status mpi_barrier(zl_comm *c)
{
    MPI_Request r;
    MPI_AWAIT(c, "MPI_Ibarrier", MPI_Ibarrier(comm_of(c), &r), r, ZL_COMM_BARRIER, 0, -1,
              zl__comm_now());
    return ZL_OK;
}

static zl_status mpi_wait(zl_comm *c, zl_comm_request *req)
{
    mpi_request *r = req->impl;
    if (!r) return ZL_OK;
    /* The watchdog counts from the wait, not the start: overlapping a pending operation
     * with computation is the point of starting it early. */
    zl_status st = await(c, &r->req, MPI_STATUS_IGNORE, req->op, req->nbytes, -1, zl__comm_now());
    if (st == ZL_OK && r->move_nbytes) memmove(r->move_dst, r->move_src, r->move_nbytes);
    free(r); /* MPI keeps its own request object; ours is only the handle */
    req->impl = NULL;
    return st;
}

/* ------------------------------------------------------------------ communicators */

static const zl_comm_vtable mpi_vtable;

/* guard: the new communicator's reference (a new one for a world handle, the parent's
 * for a split); released here on failure. */
static zl_status wrap(MPI_Comm comm, bool is_world, const char *name, zl_comm_log *log,
                      zl_comm_guard *guard, zl_comm **out)
{
    zl_comm *c = calloc(1, sizeof *c);
    mpi_impl *m = calloc(1, sizeof *m);
    if (!c || !m || !guard) {
        free(c);
        free(m);
        zl__comm_guard_unref(guard);
        MPI_Comm_free(&comm);
        return zl_errorf(ZL_ERR_NOMEM, "cannot allocate communicator '%s'", name);
    }
    /* Errors come back as return codes (and become statuses) instead of aborting. */
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    m->comm = comm;
    m->is_world = is_world;
    c->vt = &mpi_vtable;
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->size);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->log = log;
    c->impl = m;
    c->guard = guard;
    *out = c;
    return ZL_OK;
}

static zl_status mpi_split(zl_comm *c, int color, int key, const char *name, zl_comm **out)
{
    MPI_Comm nc;
    MPI_TRY(c, "MPI_Comm_split", MPI_Comm_split(comm_of(c), color, key, &nc));
    return wrap(nc, false, name, c->log, zl__comm_guard_ref(c->guard), out);
}

static zl_status mpi_split_node(zl_comm *c, const char *name, zl_comm **out)
{
    MPI_Comm nc;
    MPI_TRY(c, "MPI_Comm_split_type",
            MPI_Comm_split_type(comm_of(c), MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &nc));
    return wrap(nc, false, name, c->log, zl__comm_guard_ref(c->guard), out);
}

static void mpi_destroy(zl_comm *c)
{
    mpi_impl *m = c->impl;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(&m->comm);
    if (m->is_world && --g.world_handles == 0 && g.we_initialized && !fin) {
        MPI_Finalize();
        g.we_initialized = false;
    }
    zl__comm_guard_unref(c->guard);
    free(m);
    free(c);
}

/* MPI_COMM_WORLD whatever c is: the job ends, not a group of it (MPICH ends the job
 * either way). */
static void mpi_abort(zl_comm *c, int code)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
}

static const zl_comm_vtable mpi_vtable = {
    .name = "mpi",
    .allreduce = mpi_allreduce,
    .reduce_scatter = mpi_reduce_scatter,
    .allgather = mpi_allgather,
    .broadcast = mpi_broadcast,
    .reduce = mpi_reduce,
    .send = mpi_send,
    .recv = mpi_recv,
    .barrier = mpi_barrier,
    .wait = mpi_wait,
    .split = mpi_split,
    .split_node = mpi_split_node,
    .destroy = mpi_destroy,
    .abort = mpi_abort,
};

bool zl__comm_mpi_active(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

zl_status zl__comm_mpi_world(zl_comm **out, zl_comm_log *log)
{
    int init = 0, fin = 0;
    MPI_Finalized(&fin);
    if (fin)
        return zl_errorf(ZL_ERR_COMM,
                         "MPI was already finalized in this process and cannot start again: "
                         "keep one world communicator alive for the whole run");
    MPI_Initialized(&init);
    if (!init) {
        /* FUNNELED: OpenMP threads compute, only the main thread calls MPI. */
        int provided;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return zl_errorf(ZL_ERR_COMM, "MPI_Init_thread failed (MPI error %d): is this "
                             "process started by a working mpiexec?", rc);
        g.we_initialized = true;
        /* MPICH 4.0 reports failures of MPI_Test (which every wait goes through, see the
         * watchdog) through MPI_COMM_WORLD's error handler, not the request's
         * communicator's: make them statuses too. A program that initialised MPI itself
         * keeps its own handler. */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    zl_status st = setup();
    if (st != ZL_OK) return st;
    MPI_Comm dup;
    /* Our own copy of the world: our messages never match the application's. */
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    if (rc != MPI_SUCCESS) return zl_errorf(ZL_ERR_COMM, "MPI_Comm_dup of MPI_COMM_WORLD failed (MPI error %d)", rc);
    st = wrap(dup, true, "world", log, zl__comm_guard_new(), out);
    if (st != ZL_OK) return st;
    g.world_handles++;
    zl_log_set_rank((*out)->rank, (*out)->size);
    return ZL_OK;
}
