/* The public zl_comm_* calls: check the arguments, call the implementation through its
 * vtable, time the call and record it in the communicator's log. Also: which world a
 * process gets, and collective agreement on errors. */
#include "comm/comm_internal.h"
#include "sim/sim.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "comm/comm_log.h"

double zl__comm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ the watchdog */

zl_comm_guard *zl__comm_guard_new(void)
{
    zl_comm_guard *g = calloc(1, sizeof *g);
    if (g) {
        g->refs = 1;
        g->timeout = ZL_COMM_DEFAULT_TIMEOUT;
    }
    return g;
}

zl_comm_guard *zl__comm_guard_ref(zl_comm_guard *g)
{
    if (g) g->refs++;
    return g;
}

void zl__comm_guard_unref(zl_comm_guard *g)
{
    if (g && --g->refs == 0) free(g);
}

zl_status zl__comm_guard_break(zl_comm_guard *g, zl_status st, const char *fmt, ...)
{
    char msg[sizeof g->broken_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g && g->broken == ZL_OK) { /* the first failure is the cause; keep it */
        g->broken = st;
        snprintf(g->broken_msg, sizeof g->broken_msg, "%s", msg);
    }
    return zl_errorf(st, "%s", msg);
}

zl_status zl_comm_set_timeout(zl_comm *c, double seconds)
{
    ZL_ASSERT(c != NULL);
    if (!(seconds >= 0) || !isfinite(seconds))
        return zl_errorf(ZL_ERR_INVALID, "collective timeout %g s on communicator '%s': give a "
                         "number of seconds >= 0 (0: wait forever)", seconds, c->name);
    if (c->guard) c->guard->timeout = seconds;
    return ZL_OK;
}

double zl_comm_timeout(const zl_comm *c) { return c->guard ? c->guard->timeout : 0; }

void zl_comm_set_phase(zl_comm *c, const char *fmt, ...)
{
    if (!c->guard) return;
    c->guard->phase[0] = '\0';
    if (!fmt) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->guard->phase, sizeof c->guard->phase, fmt, ap);
    va_end(ap);
}

void zl_comm_set_interrupt(zl_comm *c, const volatile sig_atomic_t *flag)
{
    if (c->guard) c->guard->interrupt = flag;
}

zl_status zl_comm_health(const zl_comm *c)
{
    ZL_ASSERT(c != NULL);
    if (!c->guard || c->guard->broken == ZL_OK) return ZL_OK;
    return zl_errorf(c->guard->broken, "%s", c->guard->broken_msg);
}

void zl_comm_abort(zl_comm *c, int code)
{
    ZL_ASSERT(c != NULL);
    if (c->vt->abort) c->vt->abort(c, code);
}

/* A call on a broken communicator: at once, naming the call and the original failure. */
static zl_status refuse_broken(const zl_comm *c, const char *call)
{
    return zl_errorf(c->guard->broken, "%s on communicator '%s' not started: the communicator "
                     "is broken by an earlier failure:\n  %s", call, c->name, c->guard->broken_msg);
}

#define REFUSE_IF_BROKEN(c, call)                                                    \
    do {                                                                             \
        ZL_ASSERT((c) != NULL);                                                      \
        if ((c)->guard && (c)->guard->broken != ZL_OK) return refuse_broken(c, call); \
    } while (0)

/* ZL_COLLECTIVE_TIMEOUT: seconds, >= 0, strictly parsed (a typo must not silently mean
 * "the default" or "forever"). Unset: the default. */
static zl_status env_timeout(double *out)
{
    *out = ZL_COMM_DEFAULT_TIMEOUT;
    const char *s = getenv("ZL_COLLECTIVE_TIMEOUT");
    if (!s) return ZL_OK;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0) || !isfinite(v))
        return zl_errorf(ZL_ERR_CONFIG, "ZL_COLLECTIVE_TIMEOUT='%s' is not a number of seconds\n"
                         "  hint: give seconds >= 0, e.g. ZL_COLLECTIVE_TIMEOUT=300 (0: no "
                         "timeout), or unset it for the default (%g s)", s, ZL_COMM_DEFAULT_TIMEOUT);
    *out = v;
    return ZL_OK;
}

/* ------------------------------------------------------------------ the world */

#ifdef ZL_HAVE_MPI
/* Whether this process should speak MPI. A launcher leaves its mark in the environment
 * (MPICH's Hydra: PMI_RANK, PMI_SIZE, MPI_LOCALRANKID; PMIx launchers: PMIX_RANK; Open
 * MPI: OMPI_COMM_WORLD_SIZE; Slurm's srun with PMI: PMI_RANK). Without one we stay on the
 * self communicator: a singleton MPI_Init works with MPICH but costs start-up time and
 * opens network endpoints for nothing, and `zerolab plan` or a single-rank lab must not
 * depend on a working MPI installation. MPI already initialised by the program (the MPI
 * test runner) also means MPI. ZL_COMM=mpi|self overrides the guess. */
static bool want_mpi(void)
{
    const char *force = getenv("ZL_COMM");
    if (force && !strcmp(force, "self")) return false;
    if (force && !strcmp(force, "mpi")) return true;
    if (zl__comm_mpi_active()) return true;
    static const char *launcher_vars[] = {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "PMIX_RANK",
                                          "OMPI_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++)
        if (getenv(launcher_vars[i])) return true;
    return false;
}
#endif

zl_status zl_comm_world(zl_comm **out, zl_comm_log *log)
{
    *out = NULL;
    const char *force = getenv("ZL_COMM");
    if (force && strcmp(force, "self") && strcmp(force, "mpi"))
        return zl_errorf(ZL_ERR_CONFIG, "ZL_COMM='%s' is not a communicator (use 'self' or 'mpi')",
                         force);
    double timeout;
    zl_status st = env_timeout(&timeout);
    if (st != ZL_OK) return st;
#ifdef ZL_HAVE_MPI
    if (want_mpi()) {
        st = zl__comm_mpi_world(out, log);
        if (st == ZL_OK) zl_comm_set_timeout(*out, timeout);
        return st;
    }
#else
    if (force && !strcmp(force, "mpi"))
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "ZL_COMM=mpi, but zerolab was built without MPI (install MPICH, "
                         "e.g. apt-get install mpich libmpich-dev, and reconfigure)");
#endif
    st = zl__comm_self_create(out, "world", log);
    if (st == ZL_OK) zl_log_set_rank(0, 1);
    return st;
}

zl_status zl_comm_self(zl_comm **out, zl_comm_log *log)
{
    return zl__comm_self_create(out, "self", log);
}

void zl_comm_destroy(zl_comm *c)
{
    if (c) c->vt->destroy(c);
}

/* ------------------------------------------------------------------ argument checks */

static bool overlap(const void *a, size_t na, const void *b, size_t nb)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return na && nb && x < y + nb && y < x + na;
}

static zl_status check_rank(const zl_comm *c, const char *what, int r, const char *call)
{
    if (r < 0 || r >= c->size)
        return zl_errorf(ZL_ERR_INVALID, "%s: %s %d is not a rank of communicator '%s' (size %d)",
                         call, what, r, c->name, c->size);
    return ZL_OK;
}

static zl_status check_peer(const zl_comm *c, int peer, int tag, const char *call)
{
    zl_status st = check_rank(c, "peer", peer, call);
    if (st != ZL_OK) return st;
    if (tag < 0 || tag >= ZL_COMM_MAX_TAG)
        return zl_errorf(ZL_ERR_INVALID, "%s: tag %d is outside [0, %d)", call, tag, ZL_COMM_MAX_TAG);
    /* A blocking send to oneself would wait for a receive that never comes. The self
     * communicator reports its own error ("no peer"). */
    if (peer == c->rank && c->size > 1)
        return zl_errorf(ZL_ERR_INVALID, "%s: rank %d of communicator '%s' cannot talk to itself",
                         call, peer, c->name);
    return ZL_OK;
}

/* The chunked collectives take a whole buffer (size chunks) and one chunk: the chunk is
 * either this rank's chunk of the whole buffer (in place) or apart from it. For
 * reduce_scatter the whole buffer is send and the chunk recv; for allgather the reverse. */
static zl_status check_chunk_buffers(const zl_comm *c, const void *whole, const void *chunk,
                                     size_t chunk_nbytes, const char *call, const char *chunk_name,
                                     const char *whole_name)
{
    const char *own = (const char *)whole + (size_t)c->rank * chunk_nbytes;
    if ((const char *)chunk != own && overlap(chunk, chunk_nbytes, whole, (size_t)c->size * chunk_nbytes))
        return zl_errorf(ZL_ERR_INVALID,
                         "%s: the %s buffer overlaps the %s buffer; it must be apart from it or "
                         "exactly this rank's chunk (%s + rank * count)",
                         call, chunk_name, whole_name, whole_name);
    return ZL_OK;
}

static zl_status check_rs_buffers(const zl_comm *c, const void *recv, const void *send,
                                  size_t chunk_nbytes, const char *call)
{
    return check_chunk_buffers(c, send, recv, chunk_nbytes, call, "receive", "send");
}

static zl_status check_ag_buffers(const zl_comm *c, const void *recv, const void *send,
                                  size_t chunk_nbytes, const char *call)
{
    return check_chunk_buffers(c, recv, send, chunk_nbytes, call, "send", "receive");
}

static void check_common(const zl_comm *c, zl_dtype dt)
{
    ZL_ASSERT(c != NULL);
    ZL_ASSERT((unsigned)dt < ZL_DTYPE_COUNT);
}

static void check_reduce_op(zl_reduce_op op)
{
    ZL_ASSERT(op == ZL_REDUCE_SUM || op == ZL_REDUCE_MAX || op == ZL_REDUCE_MIN);
}

/* ------------------------------------------------------------------ recording */

/* On a simulated device, the collective's simulated time (sim/sim.h): `whole` is the
 * buffer the algorithm moves, all chunks included. */
static double simulate(const zl_comm *c, zl_comm_op op, size_t whole, bool blocking)
{
    static const zl_sim_coll kinds[ZL_COMM_NUM_OPS] = {
        [ZL_COMM_ALLREDUCE] = ZL_SIM_ALLREDUCE, [ZL_COMM_REDUCE_SCATTER] = ZL_SIM_REDUCE_SCATTER,
        [ZL_COMM_ALLGATHER] = ZL_SIM_ALLGATHER, [ZL_COMM_BROADCAST] = ZL_SIM_BROADCAST,
        [ZL_COMM_REDUCE] = ZL_SIM_REDUCE,       [ZL_COMM_SEND] = ZL_SIM_P2P,
        [ZL_COMM_RECV] = ZL_SIM_P2P,            [ZL_COMM_BARRIER] = ZL_SIM_BARRIER,
    };
    zl_sim *s = c->sim;
    if (!s || !s->coll_cost || c->size <= 1) return 0;
    /* A collective starts when its last member arrives: the ranks of a real group agree on
     * the latest of their simulated clocks (a virtual group's ranks are symmetric). This
     * 8-byte exchange is the simulator's, so it is neither logged nor timed. */
    double arrival = zl_sim_ready(s);
    if (strcmp(c->vt->name, "virtual") &&
        c->vt->allreduce((zl_comm *)c, &arrival, 1, ZL_F64, ZL_REDUCE_MAX, NULL) != ZL_OK)
        arrival = zl_sim_ready(s);
    return zl_sim_collective_placed(s, kinds[op], zl_comm_op_name(op), (double)whole, c->size,
                                    c->stride, blocking, arrival);
}

/* A send or receive on a simulated device: the transfer starts when both ends are there
 * (a rendezvous, as NCCL's send and recv are), so the two ranks exchange their simulated
 * clocks (on tag ZL_COMM_MAX_TAG, the simulator's own, neither logged nor timed) and both
 * charge it from the later one, blocking. A virtual group's peer is as ready as this rank. */
static void simulate_p2p(const zl_comm *c, int peer, bool sender, size_t nbytes)
{
    zl_sim *s = c->sim;
    if (!s || !s->coll_cost || c->size <= 1) return;
    double mine = zl_sim_ready(s), theirs = mine;
    if (strcmp(c->vt->name, "virtual")) {
        zl_comm *cc = (zl_comm *)c;
        zl_status st = sender ? cc->vt->send(cc, &mine, 1, ZL_F64, peer, ZL_COMM_MAX_TAG)
                              : cc->vt->recv(cc, &theirs, 1, ZL_F64, peer, ZL_COMM_MAX_TAG);
        if (st == ZL_OK)
            st = sender ? cc->vt->recv(cc, &theirs, 1, ZL_F64, peer, ZL_COMM_MAX_TAG)
                        : cc->vt->send(cc, &mine, 1, ZL_F64, peer, ZL_COMM_MAX_TAG);
        if (st != ZL_OK) theirs = mine;
    }
    int apart = (peer > c->rank ? peer - c->rank : c->rank - peer) * (c->stride > 0 ? c->stride : 1);
    zl_sim_collective_placed(s, ZL_SIM_P2P, sender ? "send" : "recv", (double)nbytes, 2, apart,
                             true, mine > theirs ? mine : theirs);
}

static void record(const zl_comm *c, zl_comm_op op, zl_dtype dt, size_t nbytes, double t0)
{
    if (!c->log) return;
    zl_comm_event ev = {op, c->name, c->size, dt, nbytes, zl__comm_now() - t0};
    zl_comm_log_record(c->log, &ev);
}

/* ------------------------------------------------------------------ blocking calls */

zl_status zl_comm_allreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt, zl_reduce_op op)
{
    REFUSE_IF_BROKEN(c, "all_reduce");
    check_common(c, dt);
    check_reduce_op(op);
    ZL_ASSERT(buf || count == 0);
    double t0 = zl__comm_now();
    zl_status st = c->vt->allreduce(c, buf, count, dt, op, NULL);
    if (st == ZL_OK) record(c, ZL_COMM_ALLREDUCE, dt, count * zl_dtype_nbytes(dt), t0);
    if (st == ZL_OK) simulate(c, ZL_COMM_ALLREDUCE, count * zl_dtype_nbytes(dt), true);
    return st;
}

zl_status zl_comm_reduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                 zl_dtype dt, zl_reduce_op op)
{
    REFUSE_IF_BROKEN(c, "reduce_scatter");
    check_common(c, dt);
    check_reduce_op(op);
    ZL_ASSERT((recv && send) || count == 0);
    size_t chunk = count * zl_dtype_nbytes(dt);
    zl_status st = check_rs_buffers(c, recv, send, chunk, "reduce_scatter");
    if (st != ZL_OK) return st;
    double t0 = zl__comm_now();
    st = c->vt->reduce_scatter(c, recv, send, count, dt, op, NULL);
    if (st == ZL_OK) record(c, ZL_COMM_REDUCE_SCATTER, dt, (size_t)c->size * chunk, t0);
    if (st == ZL_OK) simulate(c, ZL_COMM_REDUCE_SCATTER, (size_t)c->size * chunk, true);
    return st;
}

zl_status zl_comm_allgather(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt)
{
    REFUSE_IF_BROKEN(c, "allgather");
    check_common(c, dt);
    ZL_ASSERT((recv && send) || count == 0);
    size_t chunk = count * zl_dtype_nbytes(dt);
    zl_status st = check_ag_buffers(c, recv, send, chunk, "allgather");
    if (st != ZL_OK) return st;
    double t0 = zl__comm_now();
    st = c->vt->allgather(c, recv, send, count, dt, NULL);
    if (st == ZL_OK) record(c, ZL_COMM_ALLGATHER, dt, chunk, t0);
    if (st == ZL_OK) simulate(c, ZL_COMM_ALLGATHER, (size_t)c->size * chunk, true);
    return st;
}

zl_status zl_comm_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root)
{
    REFUSE_IF_BROKEN(c, "broadcast");
    check_common(c, dt);
    ZL_ASSERT(buf || count == 0);
    zl_status st = check_rank(c, "root", root, "broadcast");
    if (st != ZL_OK) return st;
    double t0 = zl__comm_now();
    st = c->vt->broadcast(c, buf, count, dt, root);
    if (st == ZL_OK) record(c, ZL_COMM_BROADCAST, dt, count * zl_dtype_nbytes(dt), t0);
    if (st == ZL_OK) simulate(c, ZL_COMM_BROADCAST, count * zl_dtype_nbytes(dt), true);
    return st;
}

zl_status zl_comm_reduce(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                         zl_reduce_op op, int root)
{
    REFUSE_IF_BROKEN(c, "reduce");
    check_common(c, dt);
    check_reduce_op(op);
    zl_status st = check_rank(c, "root", root, "reduce");
    if (st != ZL_OK) return st;
    ZL_ASSERT(send || count == 0);
    ZL_ASSERT(recv || count == 0 || c->rank != root); /* only the root receives */
    size_t nbytes = count * zl_dtype_nbytes(dt);
    if (c->rank == root && recv != send && overlap(recv, nbytes, send, nbytes))
        return zl_errorf(ZL_ERR_INVALID,
                         "reduce: the receive buffer partly overlaps the send buffer "
                         "(use the same buffer for an in-place reduce)");
    double t0 = zl__comm_now();
    st = c->vt->reduce(c, recv, send, count, dt, op, root);
    if (st == ZL_OK) record(c, ZL_COMM_REDUCE, dt, nbytes, t0);
    if (st == ZL_OK) simulate(c, ZL_COMM_REDUCE, nbytes, true);
    return st;
}

zl_status zl_comm_send(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    REFUSE_IF_BROKEN(c, "send");
    check_common(c, dt);
    ZL_ASSERT(buf || count == 0);
    zl_status st = check_peer(c, peer, tag, "send");
    if (st != ZL_OK) return st;
    double t0 = zl__comm_now();
    st = c->vt->send(c, buf, count, dt, peer, tag);
    if (st == ZL_OK) record(c, ZL_COMM_SEND, dt, count * zl_dtype_nbytes(dt), t0);
    if (st == ZL_OK) simulate_p2p(c, peer, true, count * zl_dtype_nbytes(dt));
    return st;
}

zl_status zl_comm_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    REFUSE_IF_BROKEN(c, "recv");
    check_common(c, dt);
    ZL_ASSERT(buf || count == 0);
    zl_status st = check_peer(c, peer, tag, "recv");
    if (st != ZL_OK) return st;
    double t0 = zl__comm_now();
    st = c->vt->recv(c, buf, count, dt, peer, tag);
    if (st == ZL_OK) record(c, ZL_COMM_RECV, dt, count * zl_dtype_nbytes(dt), t0);
    if (st == ZL_OK) simulate_p2p(c, peer, false, count * zl_dtype_nbytes(dt));
    return st;
}

zl_status zl_comm_barrier(zl_comm *c)
{
    REFUSE_IF_BROKEN(c, "barrier");
    ZL_ASSERT(c != NULL);
    double t0 = zl__comm_now();
    zl_status st = c->vt->barrier(c);
    if (st == ZL_OK) record(c, ZL_COMM_BARRIER, ZL_F32, 0, t0);
    if (st == ZL_OK) simulate(c, ZL_COMM_BARRIER, 0, true);
    return st;
}

/* ------------------------------------------------------------------ non-blocking calls */

static void request_start(zl_comm_request *req, zl_comm_op op, zl_dtype dt, size_t nbytes)
{
    ZL_ASSERT(req != NULL);
    ZL_ASSERT(!req->active); /* still pending: waiting on it first would be lost */
    req->impl = NULL;
    req->op = op;
    req->dtype = dt;
    req->nbytes = nbytes;
    req->t_start = zl__comm_now();
}

zl_status zl_comm_iallreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt, zl_reduce_op op,
                             zl_comm_request *req)
{
    REFUSE_IF_BROKEN(c, "iallreduce");
    check_common(c, dt);
    check_reduce_op(op);
    ZL_ASSERT(buf || count == 0);
    request_start(req, ZL_COMM_ALLREDUCE, dt, count * zl_dtype_nbytes(dt));
    zl_status st = c->vt->allreduce(c, buf, count, dt, op, req);
    req->active = st == ZL_OK;
    if (st == ZL_OK) req->sim_end = simulate(c, ZL_COMM_ALLREDUCE, count * zl_dtype_nbytes(dt), false);
    return st;
}

zl_status zl_comm_ireduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                  zl_dtype dt, zl_reduce_op op, zl_comm_request *req)
{
    REFUSE_IF_BROKEN(c, "ireduce_scatter");
    check_common(c, dt);
    check_reduce_op(op);
    ZL_ASSERT((recv && send) || count == 0);
    size_t chunk = count * zl_dtype_nbytes(dt);
    zl_status st = check_rs_buffers(c, recv, send, chunk, "ireduce_scatter");
    if (st != ZL_OK) return st;
    request_start(req, ZL_COMM_REDUCE_SCATTER, dt, (size_t)c->size * chunk);
    st = c->vt->reduce_scatter(c, recv, send, count, dt, op, req);
    req->active = st == ZL_OK;
    if (st == ZL_OK) req->sim_end = simulate(c, ZL_COMM_REDUCE_SCATTER, (size_t)c->size * chunk, false);
    return st;
}

zl_status zl_comm_iallgather(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                             zl_comm_request *req)
{
    REFUSE_IF_BROKEN(c, "iallgather");
    check_common(c, dt);
    ZL_ASSERT((recv && send) || count == 0);
    size_t chunk = count * zl_dtype_nbytes(dt);
    zl_status st = check_ag_buffers(c, recv, send, chunk, "iallgather");
    if (st != ZL_OK) return st;
    request_start(req, ZL_COMM_ALLGATHER, dt, chunk);
    st = c->vt->allgather(c, recv, send, count, dt, req);
    req->active = st == ZL_OK;
    if (st == ZL_OK) req->sim_end = simulate(c, ZL_COMM_ALLGATHER, (size_t)c->size * chunk, false);
    return st;
}

zl_status zl_comm_wait(zl_comm *c, zl_comm_request *req)
{
    ZL_ASSERT(c != NULL && req != NULL);
    if (!req->active) return ZL_OK; /* never started, or already completed */
    if (c->guard && c->guard->broken != ZL_OK) {
        req->active = false; /* abandoned with the communicator (comm.h, the watchdog) */
        return refuse_broken(c, "wait");
    }
    zl_status st = c->vt->wait(c, req);
    req->active = false;
    if (st == ZL_OK) record(c, req->op, req->dtype, req->nbytes, req->t_start);
    if (st == ZL_OK) zl_sim_wait(c->sim, req->sim_end);
    return st;
}

/* ------------------------------------------------------------------ groups, agreement */

zl_status zl_comm_split(zl_comm *c, int color, int key, const char *name, zl_comm **out)
{
    ZL_ASSERT(c != NULL && out != NULL);
    *out = NULL;
    REFUSE_IF_BROKEN(c, "split");
    if (color < 0)
        return zl_errorf(ZL_ERR_INVALID, "split of '%s': color %d is negative", c->name, color);
    zl_status st = c->vt->split(c, color, key, name ? name : c->name, out);
    if (st == ZL_OK && *out) (*out)->sim = c->sim; /* the same rank: the same device */
    return st;
}

zl_status zl_comm_split_node(zl_comm *c, zl_comm **out)
{
    ZL_ASSERT(c != NULL && out != NULL);
    *out = NULL;
    REFUSE_IF_BROKEN(c, "split_node");
    zl_status st = c->vt->split_node ? c->vt->split_node(c, "node", out) : zl_comm_self(out, c->log);
    if (st == ZL_OK && *out) (*out)->sim = c->sim;
    return st;
}

void zl_comm_set_stride(zl_comm *c, int stride) { c->stride = stride; }

zl_sim *zl_comm_set_sim(zl_comm *c, zl_sim *s)
{
    ZL_ASSERT(c != NULL);
    zl_sim *prev = c->sim;
    c->sim = s;
    return prev;
}

/* One allreduce (MIN) of two integers: the worst status (statuses are negative), and the
 * lowest rank that failed, for the message of the ranks that did not. */
zl_status zl_comm_agree(zl_comm *c, zl_status st)
{
    ZL_ASSERT(c != NULL);
    if (c->size == 1) return st;
    /* Broken (a timeout): nobody can be asked. A rank that failed keeps its own message
     * (often the timeout itself); the others get the communicator's. */
    if (c->guard && c->guard->broken != ZL_OK) return st != ZL_OK ? st : zl_comm_health(c);
    int32_t v[2] = {(int32_t)st, st != ZL_OK ? (int32_t)c->rank : INT32_MAX};
    /* zerolab's own control traffic, not training's: DeepSpeed's comms logger would not
     * show it, so it stays out of the log (and its summary), and a simulated GPU would not
     * run it, so it takes no simulated time. */
    zl_comm_log *log = c->log;
    zl_sim *sim = c->sim;
    c->log = NULL;
    c->sim = NULL;
    zl_status ast = zl_comm_allreduce(c, v, 2, ZL_I32, ZL_REDUCE_MIN);
    c->log = log;
    c->sim = sim;
    if (ast != ZL_OK)
        return zl_error_wrap(ast, "agreeing on the status of rank %d (%s): ", c->rank,
                             zl_status_str(st));
    if (v[0] != ZL_OK && st == ZL_OK)
        zl_errorf((zl_status)v[0], "rank %d failed (its message is in its output)", (int)v[1]);
    return (zl_status)v[0];
}
