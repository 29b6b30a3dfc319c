/* Between the public wrappers (comm.c) and the implementations (comm_self.c, comm_mpi.c).
 * Not installed. */
#ifndef ZL_COMM_COMM_INTERNAL_H
#define ZL_COMM_COMM_INTERNAL_H

#include "zl_build.h" /* ZL_HAVE_MPI */

#include "comm/comm.h"

/* The watchdog's state (comm.h), shared by an MPI world handle and the communicators
 * split from it (reference-counted: any of them may be destroyed first). Only the main
 * thread communicates (MPI_THREAD_FUNNELED), so no locking. */
struct zl_comm_guard {
    int refs;
    double timeout;                         /* seconds; 0: wait forever */
    const volatile sig_atomic_t *interrupt; /* non-zero: stop waiting, after a grace */
    char phase[160];                        /* the caller's, for the timeout's message */
    zl_status broken;                       /* ZL_OK, or why every call now fails at once */
    char broken_msg[1024];                  /* that failure's message */
};

/* A new guard (refs 1, the default timeout) or NULL when out of memory; another holder;
 * let go of one (the last frees it; NULL is fine). */
zl_comm_guard *zl__comm_guard_new(void);
zl_comm_guard *zl__comm_guard_ref(zl_comm_guard *g);
void zl__comm_guard_unref(zl_comm_guard *g);
/* Record a failed wait: set the current message (zl_errorf(st, ...)), keep it in the
 * guard and mark it broken. Returns st. */
zl_status zl__comm_guard_break(zl_comm_guard *g, zl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new one-rank communicator called `name`. */
zl_status zl__comm_self_create(zl_comm **out, const char *name, zl_comm_log *log);

/* Seconds on a monotonic clock (the log's wall times). */
double zl__comm_now(void);

#ifdef ZL_HAVE_MPI
/* The MPI world (a duplicate of MPI_COMM_WORLD), initialising MPI if nobody has. */
zl_status zl__comm_mpi_world(zl_comm **out, zl_comm_log *log);
/* Whether the program has initialised MPI (and not yet finalized it). */
bool zl__comm_mpi_active(void);
/* Largest element count passed to one MPI call (default INT_MAX); larger blocking
 * transfers are split. Tests lower it to exercise the splitting. Returns the old value. */
size_t zl__comm_mpi_set_max_count(size_t max_count);
#endif

#endif
