/* Between the public wrappers (comm.c) and the implementations (comm_self.c, comm_mpi.c).
 * Not installed. */
#ifndef ZL_COMM_COMM_INTERNAL_H
#define ZL_COMM_COMM_INTERNAL_H

#include "config.h" /* ZL_HAVE_MPI */

#include "comm/comm.h"

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
