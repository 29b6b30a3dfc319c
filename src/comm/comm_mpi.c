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
 * handle, if and only if we initialised MPI. */
#include "comm/comm_internal.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

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
    for (size_t off = 0; off < count;) {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_TRY(c, "MPI_Allreduce",
                MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * es, (int)n, t, o, comm_of(c)));
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
    MPI_TRY(c, "MPI_Reduce_scatter_block",
            MPI_Reduce_scatter_block(sbuf, rbuf, (int)count, t, o, comm_of(c)));
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
    MPI_TRY(c, "MPI_Allgather", MPI_Allgather(sbuf, scount, stype, recv, (int)count, t, comm_of(c)));
    return ZL_OK;
}

static zl_status mpi_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root)
{
    size_t es = zl_dtype_nbytes(dt);
    for (size_t off = 0; off < count;) {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_TRY(c, "MPI_Bcast",
                MPI_Bcast((char *)buf + off * es, (int)n, mpi_type(dt), root, comm_of(c)));
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
    for (size_t off = 0; off < count && st == ZL_OK;) {
        size_t n = count - off < max_count ? count - off : max_count;
        const void *s = (const char *)send + off * es;
        void *r = is_root ? (in_place ? tmp : (char *)recv + off * es) : NULL;
        int rc = MPI_Reduce(s, r, (int)n, mpi_type(dt), mpi_op(dt, op), root, comm_of(c));
        if (rc != MPI_SUCCESS) st = mpi_fail(c, "MPI_Reduce", rc);
        else if (in_place) memcpy((char *)recv + off * es, tmp, n * es);
        off += n;
    }
    free(tmp);
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
    do {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_TRY(c, "MPI_Send",
                MPI_Send((const char *)buf + off * es, (int)n, mpi_type(dt), peer, tag, comm_of(c)));
        off += n;
    } while (off < count);
    return ZL_OK;
}

static zl_status mpi_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    if (c->size == 1) return alone(c, "recv");
    size_t es = zl_dtype_nbytes(dt);
    size_t off = 0;
    do {
        size_t n = count - off < max_count ? count - off : max_count;
        MPI_Status status;
        MPI_TRY(c, "MPI_Recv",
                MPI_Recv((char *)buf + off * es, (int)n, mpi_type(dt), peer, tag, comm_of(c), &status));
        int got = 0;
        MPI_Get_count(&status, mpi_type(dt), &got);
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
    MPI_TRY(c, "MPI_Barrier", MPI_Barrier(comm_of(c)));
    return ZL_OK;
}

static zl_status mpi_wait(zl_comm *c, zl_comm_request *req)
{
    mpi_request *r = req->impl;
    if (!r) return ZL_OK;
    int rc = MPI_Wait(&r->req, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS && r->move_nbytes) memmove(r->move_dst, r->move_src, r->move_nbytes);
    free(r);
    req->impl = NULL;
    if (rc != MPI_SUCCESS) return mpi_fail(c, "MPI_Wait", rc);
    return ZL_OK;
}

/* ------------------------------------------------------------------ communicators */

static const zl_comm_vtable mpi_vtable;

static zl_status wrap(MPI_Comm comm, bool is_world, const char *name, zl_comm_log *log,
                      zl_comm **out)
{
    zl_comm *c = calloc(1, sizeof *c);
    mpi_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
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
    *out = c;
    return ZL_OK;
}

static zl_status mpi_split(zl_comm *c, int color, int key, const char *name, zl_comm **out)
{
    MPI_Comm nc;
    MPI_TRY(c, "MPI_Comm_split", MPI_Comm_split(comm_of(c), color, key, &nc));
    return wrap(nc, false, name, c->log, out);
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
    free(m);
    free(c);
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
    .destroy = mpi_destroy,
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
    }
    zl_status st = setup();
    if (st != ZL_OK) return st;
    MPI_Comm dup;
    /* Our own copy of the world: our messages never match the application's. */
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    if (rc != MPI_SUCCESS) return zl_errorf(ZL_ERR_COMM, "MPI_Comm_dup of MPI_COMM_WORLD failed (MPI error %d)", rc);
    st = wrap(dup, true, "world", log, out);
    if (st != ZL_OK) return st;
    g.world_handles++;
    zl_log_set_rank((*out)->rank, (*out)->size);
    return ZL_OK;
}
