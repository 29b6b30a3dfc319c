/* The comms logger: every collective and point-to-point call of a process, as DeepSpeed's
 * comms_logger records them (comm/comms_logging.py).
 *
 * Records are keyed by (op, group, message size) and keep the call count and each call's
 * latency. zl_comm_log_print writes DeepSpeed's summary table (log_summary): per op and
 * message size the count, total and average latency, and algorithmic and bus bandwidth
 * in Gbps. An observer callback sees every call as it happens, in order (the simulator's
 * timeline and DeepSpeed's "verbose" mode are observers).
 *
 * Message size is DeepSpeed's: the size of the call's input tensor on this rank, so
 *   all_reduce, broadcast, reduce, send, recv   count * element size
 *   all_gather                                  count * element size (the rank's own chunk)
 *   reduce_scatter                              size * count * element size (the whole input)
 *   barrier                                     0
 * One log is shared by all communicators of a process; it is not thread-safe (every call
 * comes from the thread that drives the communicators). */
#ifndef ZL_COMM_COMM_LOG_H
#define ZL_COMM_COMM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Below the communicators (comm.h records into it): it needs only the ops' names. */
#include "base/dtype.h"
#include "base/status.h"
#include "comm/comm_op.h"

typedef struct zl_comm_log zl_comm_log; /* also declared, opaque, in comm.h */

/* One completed call. */
typedef struct zl_comm_event {
    zl_comm_op op;
    const char *group; /* the communicator's name: "world", "data", ... */
    int group_size;    /* ranks in the group (n in the bandwidth formulas) */
    zl_dtype dtype;
    size_t nbytes;     /* message size, see above */
    double seconds;    /* wall time from start to completion */
} zl_comm_event;

typedef void (*zl_comm_observer)(void *ctx, const zl_comm_event *ev);

zl_status zl_comm_log_create(zl_comm_log **out);
void zl_comm_log_destroy(zl_comm_log *log);
/* Forget every record (DeepSpeed's reset_data). The observer stays. */
void zl_comm_log_reset(zl_comm_log *log);

/* Called by the zl_comm_* wrappers for each successful call. */
void zl_comm_log_record(zl_comm_log *log, const zl_comm_event *ev);

/* See every call as it is recorded (NULL removes the observer). */
void zl_comm_log_set_observer(zl_comm_log *log, zl_comm_observer fn, void *ctx);
/* DeepSpeed's comms_logger.verbose: one line per call on `out` (NULL: off):
 *   comm op: all_reduce | time (ms): 0.01 | msg size: 4.0 KB | algbw (Gbps): ... | busbw ... */
void zl_comm_log_set_verbose(zl_comm_log *log, FILE *out);

/* DeepSpeed's comms_logger.prof_all / prof_ops: with prof_all false, only the ops named in
 * `prof_ops` (comma-separated, as the config reader keeps the list; NULL = none) appear in
 * the summary and the verbose lines. Every call is still recorded and still seen by the
 * observer (the simulator times them all). A name is an op's DeepSpeed name as printed
 * ("all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "broadcast", "reduce",
 * "send", "recv", "barrier"); "all_gather" and "reduce_scatter", the torch.distributed
 * names of the same collectives on lists, are accepted for them too. An unknown name is
 * ZL_ERR_CONFIG naming it and the known ones; the other names still take effect. */
zl_status zl_comm_log_set_filter(zl_comm_log *log, bool prof_all, const char *prof_ops);

/* Totals over all groups and sizes: calls, message bytes (sum of the sizes above), and
 * wall seconds, of one op. */
uint64_t zl_comm_log_count(const zl_comm_log *log, zl_comm_op op);
uint64_t zl_comm_log_nbytes(const zl_comm_log *log, zl_comm_op op);
double zl_comm_log_seconds(const zl_comm_log *log, zl_comm_op op);

/* DeepSpeed's summary table (columns 20 wide, left-aligned):
 *   Comm. Op  Message Size  Count  Total Latency(ms)  Avg Latency(ms)  tput_avg (Gbps)
 *   busbw_avg (Gbps)
 * then, per op (in order of first use; a group other than "world" is named after the op,
 * "all_reduce [data]"), one row per message size, sorted by size. Averages are 10%-trimmed
 * means, as DeepSpeed's trim_mean. Print it on one rank (every rank has its own log). */
void zl_comm_log_print(const zl_comm_log *log, FILE *out);

/* DeepSpeed's calc_bw_log: bandwidths in Gbps of one call of `op` that moved a message of
 * `nbytes` (the size above) in a group of n ranks in `ms` milliseconds. */
void zl_comm_bandwidth(zl_comm_op op, size_t nbytes, int n, double ms, double *algbw_gbps,
                       double *busbw_gbps);

/* DeepSpeed's convert_size: "0B", "512.0 B", "2.0 KB", "678.86 MB" (powers of 1024). */
const char *zl_comm_format_size(size_t nbytes, char *buf, size_t len);

#endif
