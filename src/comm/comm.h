/* Communicators: a table of collectives on a group of ranks.
 *
 *   self  one rank, no MPI: collectives are copies (or nothing)
 *   mpi   MPICH; every MPI rank plays one GPU
 *   nccl  real GPUs: NCCL on the device, beside an MPI (or self) communicator
 *   virtual  plans of worlds that do not exist
 *
 * Buffers are device memory of the calling rank's device. Counts are in elements of
 * `dtype`. Every call must be made by every rank of the group, in the same order
 * (collective semantics, as in MPI and NCCL); a call's failure is reported by every rank.
 * f16 and bf16 reductions compute each partial result in f32 and round it back to 16 bits
 * (round to nearest even), as a GPU reduces half-precision gradients: the sum of two
 * 65504s is inf in f16.
 *
 * Every call is recorded in the communicator's log (op, group, dtype, bytes, wall time):
 * the comms logger (DeepSpeed's comms_logger block) prints it. A communicator may carry a
 * simulator (zl_comm_set_sim): the simulated GPU this rank impersonates, on whose comm
 * stream each collective is then charged, as time on the cluster's links.
 *
 * A watchdog guards every wait of the MPI communicator: a call that waits longer than the
 * collective timeout (a stalled rank) fails with ZL_ERR_TIMEOUT instead of hanging, and
 * the communicator is broken from then on (see "the watchdog" below). */
#ifndef ZL_COMM_COMM_H
#define ZL_COMM_COMM_H

#include <signal.h> /* sig_atomic_t */
#include <stdbool.h>
#include <stddef.h>

#include "base/dtype.h"
#include "base/status.h"
#include "comm/comm_op.h" /* zl_comm_op, zl_comm_op_name */

typedef enum zl_reduce_op { ZL_REDUCE_SUM, ZL_REDUCE_MAX, ZL_REDUCE_MIN } zl_reduce_op;

typedef struct zl_comm zl_comm;
typedef struct zl_comm_log zl_comm_log;
typedef struct zl_comm_guard zl_comm_guard; /* the watchdog's state (comm_internal.h) */
struct zl_sim;                              /* sim/sim.h */

/* A pending non-blocking operation. zl_comm_wait completes it (and records it, with the
 * time from start to completion). */
typedef struct zl_comm_request {
    void *impl;       /* backend handle (MPI_Request) */
    zl_comm_op op;
    zl_dtype dtype;
    size_t nbytes;    /* message size as logged (comm_log.h) */
    double t_start;
    double sim_end;   /* simulated end time, on a simulated device (sim/sim.h) */
    bool active;      /* started and not yet waited for; zero-initialise new requests */
} zl_comm_request;

/* What an implementation provides. All functions return ZL_OK or a status with a message. */
typedef struct zl_comm_vtable {
    const char *name; /* "self", "mpi" */
    /* in place: buf (count) reduced across the group */
    zl_status (*allreduce)(zl_comm *c, void *buf, size_t count, zl_dtype dt, zl_reduce_op op,
                           zl_comm_request *req /* NULL: blocking */);
    /* send (size * count) -> recv (count): rank r gets the reduction of chunk r. In place
     * when recv == send + rank * count (the other chunks of send are then undefined). */
    zl_status (*reduce_scatter)(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                                zl_reduce_op op, zl_comm_request *req);
    /* send (count) -> recv (size * count), chunk r from rank r. In place when
     * send == recv + rank * count. */
    zl_status (*allgather)(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                           zl_comm_request *req);
    zl_status (*broadcast)(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root);
    /* recv (count) is written on the root only (NULL elsewhere is fine); recv == send is
     * an in-place reduce. */
    zl_status (*reduce)(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                        zl_reduce_op op, int root);
    zl_status (*send)(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer, int tag);
    zl_status (*recv)(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag);
    zl_status (*barrier)(zl_comm *c);
    zl_status (*wait)(zl_comm *c, zl_comm_request *req);
    /* A sub-communicator of the ranks with the same color (>= 0), ordered by key; it
     * shares c's log. Collective over c. */
    zl_status (*split)(zl_comm *c, int color, int key, const char *name, zl_comm **out);
    /* The ranks of c on this rank's node (its shared-memory group) as a sub-communicator,
     * like split. Collective over c. NULL: one rank per node (self, virtual). */
    zl_status (*split_node)(zl_comm *c, const char *name, zl_comm **out);
    void (*destroy)(zl_comm *c); /* frees c itself */
    /* End every rank of the job with exit status `code`; NULL: there is no job to end
     * (self, virtual), zl_comm_abort returns. */
    void (*abort)(zl_comm *c, int code);
} zl_comm_vtable;

struct zl_comm {
    const zl_comm_vtable *vt;
    int rank, size;
    char name[32];    /* "world", "data", "model", "pipe" */
    zl_comm_log *log; /* shared by the communicators of one process; may be NULL */
    /* The simulator its collectives are charged to (zl_comm_set_sim), or NULL. */
    struct zl_sim *sim;
    /* Where its members sit for the simulator: `stride` world ranks apart (0 or 1:
     * neighbours; zl_comm_set_stride), so that a group of a grid's data or pipeline axis
     * is charged on the link it crosses (sim/sim.h zl_sim_collective_placed). */
    int stride;
    void *impl;
    /* The watchdog (timeout, phase, interrupt flag, broken state): an MPI world handle's
     * own, shared with the communicators split from it; NULL for self and virtual
     * communicators, which never wait. */
    zl_comm_guard *guard;
};

/* The world, named "world": the MPI communicator when built with MPI and launched by a
 * launcher (mpiexec/Hydra, srun, Open MPI's mpirun: their environment variables say so),
 * or when the program already initialised MPI; else the self communicator, so a
 * single-rank run never needs MPI. ZL_COMM=mpi|self overrides the guess (mpi without a
 * launcher is MPI's singleton mode). With MPI, this calls MPI_Init_thread (FUNNELED) if
 * nobody has, sets the log module's rank, and installs a panic hook that calls
 * MPI_Abort, so one failing ZL_ASSERT ends every rank instead of leaving them waiting.
 * Each call returns a new handle on the same world. */
zl_status zl_comm_world(zl_comm **out, zl_comm_log *log);
/* A one-rank communicator, named "self": collectives are copies, send/recv fail with
 * ZL_ERR_COMM ("self communicator has no peer"). */
zl_status zl_comm_self(zl_comm **out, zl_comm_log *log);
/* Rank `rank` of a virtual group of `size` ranks (comm_virtual.c): collectives move no
 * data and complete at once; for the meta backend (zerolab plan), where one process
 * stands for every rank of a large world. */
zl_status zl_comm_virtual(zl_comm **out, int size, int rank, const char *name, zl_comm_log *log);
/* Built with ZL_HAVE_CUDA only (comm_nccl.c): the ranks of `host` (an MPI or self
 * communicator; own_host: destroyed with this one, else it must outlive it), whose device buffers move with NCCL
 * on the GPU of `cuda`'s context (backends/cuda/cuda_ops.h: stream comm, ordered after
 * compute), named `name` (NULL: host's). Host buffers go to host, so one handle serves
 * both. Blocking calls return once the GPU has completed them; non-blocking ones once
 * zl_comm_wait has seen them complete. It shares host's log and watchdog. Collective
 * over host. */
typedef struct zl_ops zl_ops;
zl_status zl_comm_nccl(zl_comm **out, zl_comm *host, bool own_host, const zl_ops *cuda,
                       const char *name);
/* Free a communicator (NULL is fine); collective over its ranks. Destroying the last
 * world handle calls MPI_Finalize if zl_comm_world initialised MPI (a program that
 * initialised MPI itself finalizes it itself); MPI cannot start again after that.
 * Sub-communicators may be destroyed before or after their world. */
void zl_comm_destroy(zl_comm *c);

/* The collectives, recorded in c->log. See zl_comm_vtable for shapes and in-place rules.
 * Invalid ranks, tags or overlapping buffers return ZL_ERR_INVALID before any
 * communication; transport failures return ZL_ERR_COMM with the transport's message. */
zl_status zl_comm_allreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt, zl_reduce_op op);
zl_status zl_comm_reduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                 zl_dtype dt, zl_reduce_op op);
zl_status zl_comm_allgather(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt);
zl_status zl_comm_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root);
zl_status zl_comm_reduce(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                         zl_reduce_op op, int root);
/* Point to point, blocking; tags in [0, ZL_COMM_MAX_TAG) (the ones above are zerolab's
 * own: a simulated send and receive exchange their clocks there). */
#define ZL_COMM_MAX_TAG 32000
zl_status zl_comm_send(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer, int tag);
zl_status zl_comm_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag);
zl_status zl_comm_barrier(zl_comm *c);
/* Non-blocking variants: start, then zl_comm_wait(c, req); the buffers must stay
 * untouched until then. The call is recorded at the wait, with the time since the start.
 * MPI counts are ints: blocking allreduce, broadcast, reduce, send and recv split larger
 * transfers; reduce-scatter, allgather and the non-blocking calls refuse counts above
 * INT_MAX with ZL_ERR_UNSUPPORTED. */
zl_status zl_comm_iallreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt, zl_reduce_op op,
                             zl_comm_request *req);
zl_status zl_comm_ireduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                  zl_dtype dt, zl_reduce_op op, zl_comm_request *req);
zl_status zl_comm_iallgather(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                             zl_comm_request *req);
zl_status zl_comm_wait(zl_comm *c, zl_comm_request *req); /* inactive req: no-op */
/* A sub-communicator (see zl_comm_vtable.split); it shares c's log and simulator. */
zl_status zl_comm_split(zl_comm *c, int color, int key, const char *name, zl_comm **out);
/* The ranks of c on this rank's node (MPI's shared-memory communicator), named "node";
 * a self communicator for self and virtual ones. Collective over c. */
zl_status zl_comm_split_node(zl_comm *c, zl_comm **out);

/* Charge c's collectives to simulator s (NULL: none, the default): each one's simulated
 * time on s's comm stream, which its compute stream waits for as the call's blocking or
 * zl_comm_wait says (sim/sim.h). Set by whoever gives a rank's device a simulator and
 * the rank's engine this communicator (src/run, src/plan, tests); s must outlive the
 * setting. Returns the previous one, so a caller can run a collective untimed (logging
 * a loss is not training) and put it back. */
struct zl_sim *zl_comm_set_sim(zl_comm *c, struct zl_sim *s);
/* Say that c's members are `stride` world ranks apart (a grid axis: comm/topology.h), for
 * the simulator's placement of its collectives. */
void zl_comm_set_stride(zl_comm *c, int stride);

/* Collective agreement on errors: every rank passes its status; all get the worst
 * (lowest) one, so ranks fail together instead of one leaving the others in a collective.
 * A rank that failed keeps its message; the others get "rank R failed (its message is in
 * its output)", R the lowest failing rank. One 8-byte allreduce, zerolab's own control
 * traffic: neither logged nor charged to a simulator. */
zl_status zl_comm_agree(zl_comm *c, zl_status st);

/* ------------------------------------------------------------------ the watchdog
 *
 * Every wait of the MPI communicator (blocking collectives, send, recv, barrier,
 * zl_comm_wait) is bounded by the collective timeout, counted from the moment the call
 * starts waiting. A call that reaches it returns ZL_ERR_TIMEOUT with a message naming the
 * rank, the operation, its bytes, the communicator, the time waited and the caller's
 * phase; from then on the communicator, and every communicator sharing its guard (the
 * world handle and those split from it), is broken: each call, zl_comm_agree included,
 * fails at once with that message instead of waiting again. The operation that timed out
 * cannot be cancelled (MPI has no cancel for collectives): its buffers may still be
 * written until the process ends, and the process should end the job with
 * zl_comm_abort (MPI_Finalize would wait for the stalled rank).
 *
 * Default: ZL_COMM_DEFAULT_TIMEOUT seconds, or ZL_COLLECTIVE_TIMEOUT (seconds) from the
 * environment when zl_comm_world creates the world. Ten minutes: a healthy rank never
 * waits that long for another (the slowest legitimate wait is a peer building a large
 * model or writing a file, a minute or two), yet a stalled job gives its machines back in
 * minutes, not hours. DeepSpeed's process-group timeout is 30 minutes (DEEPSPEED_TIMEOUT,
 * in minutes), sized for real clusters, where loading a checkpoint can keep one rank
 * busy that long; zerolab's ranks share one machine's memory and disk. 0 turns the
 * watchdog off (wait forever). */
#define ZL_COMM_DEFAULT_TIMEOUT 600.0

/* The collective timeout in seconds for c and the communicators sharing its guard; 0:
 * wait forever. Negative or non-finite: ZL_ERR_INVALID. Self and virtual communicators
 * never wait: the call is accepted and changes nothing (zl_comm_timeout reports 0). */
zl_status zl_comm_set_timeout(zl_comm *c, double seconds);
double zl_comm_timeout(const zl_comm *c);

/* What the caller is doing ("step 12 of 100, micro-step 3 of 4"), printed by a timeout's
 * message. Kept until the next call; "" or NULL clears it. Cheap (one snprintf). */
void zl_comm_set_phase(zl_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A flag a signal handler sets (to the signal's number): while it is non-zero, a wait
 * gives the other ranks ZL_COMM_INTERRUPT_GRACE seconds (at most the timeout) to complete
 * the operation, then fails with ZL_ERR_INTERRUPTED and breaks the communicator. An
 * operation that completes within the grace succeeds: ranks that all received the
 * signal finish the collective they were in and may stop together (zl_comm_agree).
 * NULL: no flag. The flag must outlive the communicator. */
#define ZL_COMM_INTERRUPT_GRACE 5.0
void zl_comm_set_interrupt(zl_comm *c, const volatile sig_atomic_t *flag);

/* ZL_OK while c can communicate; after a timeout or an interrupted wait, that failure's
 * status, with its message recorded again (zl_last_error). */
zl_status zl_comm_health(const zl_comm *c);

/* End the whole job with exit status `code` (0-255): MPI_Abort, so the launcher kills
 * every rank, a stopped one included, and exits non-zero. Returns only where there is no
 * job to end (self and virtual communicators): the caller then returns `code` itself.
 * For the command line, after it printed why; library code never calls it. */
void zl_comm_abort(zl_comm *c, int code);

#endif
