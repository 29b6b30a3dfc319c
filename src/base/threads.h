/* How many OpenMP threads a rank runs when nobody said (no --threads, no OMP_NUM_THREADS).
 *
 * OpenMP's own default, one thread per core for every process, goes badly wrong in two
 * cases zerolab's users meet every day:
 *   - several ranks on one machine (mpiexec -n 2 on a 2-core laptop): each rank starts a
 *     thread per core, so twice as many threads as cores spin against each other at every
 *     barrier; a step runs 5-10x slower than with one thread per rank;
 *   - a machine already busy with other work (a shared lab server, a CI runner): a thread
 *     that waits at a barrier spins while the one it waits for is descheduled, and a step
 *     of the lab model went from 15 ms to 900 ms with six busy loops beside it.
 * So the default is the cores this process may use (its affinity mask), less what other
 * work keeps busy right now (runnable tasks that are not zerolab's ranks), divided among
 * the ranks of this node, and at least 1. The choice is a pure function of those three
 * numbers (zl_threads_choose, unit-tested with made-up machines); zl_threads_default reads
 * them from this machine. */
#ifndef ZL_BASE_THREADS_H
#define ZL_BASE_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cpus: cores in the affinity mask; runnable: tasks runnable right now on the machine,
 * this process included (/proc/loadavg's 4th field), 0 if unknown; ranks: ranks of this
 * job on this node (they are, or soon will be, among the runnable). */
int zl_threads_choose(int cpus, int runnable, int ranks);

/* What the machine says: sched_getaffinity (a launcher that binds ranks to cores, as
 * `mpiexec -bind-to core:2` does, shrinks it), /proc/loadavg, and `ranks`, the job's
 * ranks on this node that share this rank's cores (zl_threads_sharing over the node's
 * masks, MPI's shared-memory communicator), of node_ranks on the node in all (the others
 * are bound elsewhere: not competition); ranks <= 0: the launcher's environment says
 * (MPICH's MPI_LOCALNRANKS, Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE; 1 without a launcher).
 * *why, if not NULL, gets a short explanation for the banner, e.g. "2 cores, 6 other
 * tasks running" (static storage). */
int zl_threads_default(int ranks, int node_ranks, const char **why);

/* Who shares this rank's cores. A launcher that binds ranks (mpiexec -bind-to core:N)
 * gives each its own cores: the rank then counts alone. Without binding every rank of the
 * node sees all of them. ZL_THREADS_MASK_WORDS words (32-bit, a multiple of 4 bytes so it
 * travels as ZL_I32) hold an affinity mask: zl_threads_mask writes this process's;
 * zl_threads_sharing counts the masks of n ranks that overlap mask `me` (itself
 * included): pure, for the tests. */
#define ZL_THREADS_MASK_WORDS 32 /* 1024 CPUs, glibc's cpu_set_t */
void zl_threads_mask(uint32_t mask[ZL_THREADS_MASK_WORDS]);
int zl_threads_sharing(const uint32_t *masks, int n, int me);

/* More threads than cores when asked (--threads, OMP_NUM_THREADS) is allowed, with a
 * warning: threads x ranks on this node past the cores. Pure: whether `threads` per rank
 * for `ranks` ranks oversubscribe `cpus` cores. */
bool zl_threads_oversubscribed(int threads, int cpus, int ranks);
/* This machine's cores (affinity) and `ranks` on this node (<= 0: as zl_threads_default
 * finds them); false and nothing written if `threads` fits, else true with the warning in
 * buf ("2 ranks x 2 threads on 2 cores: ..."). */
bool zl_threads_check(int threads, int ranks, char *buf, size_t size);

#endif
