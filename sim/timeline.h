/* The timeline: a simulated clock per stream of one device, and what ran on each.
 *
 * A simulated GPU runs work on streams, as CUDA does: kernels on the compute stream,
 * collectives on a communication stream, host copies and NVMe transfers on theirs. Work on
 * one stream runs in order; work on different streams overlaps unless one waits for the
 * other. The timeline keeps each stream's clock (when it is next free) and, optionally,
 * every span for a trace.
 *
 *   kernel          compute: start = clock[compute]
 *   blocking coll.  comm: start = max(clock[compute], clock[comm], arrival of the last
 *                   member); compute waits for its end (exposed communication)
 *   async coll.     comm: the same start, compute goes on; zl_timeline_wait() later makes
 *                   compute wait for its end, if it has not passed already
 *   host copy       host: start = max(clock[compute], clock[host]), compute goes on (a
 *                   copy on a side stream, as DeepSpeed's offload issues them);
 *                   zl_timeline_wait_copy() makes compute wait for it
 *
 * The time compute spends waiting for communication is "exposed" communication; the rest
 * of the communication is hidden behind compute. Likewise for copies (exposed_copy). Durations come from the cost model
 * (sim/cost.h); the timeline only orders them. */
#ifndef ZL_SIM_TIMELINE_H
#define ZL_SIM_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/status.h"

typedef enum zl_stream {
    ZL_STREAM_COMPUTE,
    ZL_STREAM_COMM,
    ZL_STREAM_HOST, /* host <-> device copies (offload) */
    ZL_STREAM_NVME, /* NVMe reads and writes (ZeRO-Infinity) */
    ZL_STREAM_CPU,  /* the host's own compute: ZeRO-Offload's optimizer step on the CPU */
    ZL_STREAM_COUNT
} zl_stream;

typedef struct zl_span {
    double start, end; /* seconds */
    zl_stream stream;
    unsigned count;    /* runs merged into this span (1: one) */
    char name[40];
} zl_span;

/* Most spans a timeline keeps for its trace: past this, spans are counted, not kept, so a
 * full-scale plan's trace stays a few MB (a span is about 130 bytes of JSON). */
#define ZL_TIMELINE_MAX_SPANS 50000

typedef struct zl_timeline {
    double clock[ZL_STREAM_COUNT]; /* when each stream is next free */
    double busy[ZL_STREAM_COUNT];  /* seconds of work run on each */
    double exposed_comm;           /* compute waiting for communication */
    double exposed_copy;           /* compute waiting for host copies */
    bool record;                   /* keep spans for a trace */
    zl_span *spans;
    size_t num_spans, cap_spans;
    /* Keeping the trace small: a run that starts where the last span of its stream ended
     * and has its name (the pieces of one long elementwise op, the layers' repeated
     * kernels back to back) extends that span (merged_spans counts them); spans past
     * max_spans (ZL_TIMELINE_MAX_SPANS by default) are dropped (dropped_spans). */
    size_t max_spans, merged_spans, dropped_spans;
    /* The spans are measured times (a GPU's CUDA events, src/run's real trace), not the
     * cost model's: the trace's note says which clock it shows. */
    bool measured;
} zl_timeline;

/* The clocks and the end of the span list, to undo what was run after it
 * (zl_timeline_restore). */
typedef struct zl_timeline_mark {
    double clock[ZL_STREAM_COUNT], busy[ZL_STREAM_COUNT], exposed_comm, exposed_copy;
    size_t num_spans, merged_spans, dropped_spans;
    zl_span last;
} zl_timeline_mark;

void zl_timeline_mark_get(const zl_timeline *tl, zl_timeline_mark *m);
/* Back to the mark: valid while nothing but runs was added since (no reset of the spans). */
void zl_timeline_restore(zl_timeline *tl, const zl_timeline_mark *m);

/* A timeline at time 0 (record: keep every span, for zl_timeline_write_trace). */
void zl_timeline_init(zl_timeline *tl, bool record);
void zl_timeline_free(zl_timeline *tl);

/* Run `seconds` of work on `stream`, not before `ready` (the time its inputs exist; pass 0
 * for "whenever the stream is free"). Returns its end. */
double zl_timeline_run(zl_timeline *tl, zl_stream stream, const char *name, double seconds,
                       double ready);

/* A kernel: compute stream, in order. */
double zl_timeline_kernel(zl_timeline *tl, const char *name, double seconds);

/* A collective on the comm stream, ready when compute has produced its input (and not
 * before `arrival`, the last member's readiness, if known; else 0). Blocking: compute waits
 * for the end. Returns the end. */
double zl_timeline_collective(zl_timeline *tl, const char *name, double seconds, double arrival,
                              bool blocking);

/* Compute waits for an event on another stream that ends at `end` (an async collective's
 * wait). The wait counts as exposed communication. */
void zl_timeline_wait(zl_timeline *tl, double end);

/* A host <-> device copy on the host stream, ready when compute has produced its input;
 * compute goes on. Returns the end. */
double zl_timeline_copy(zl_timeline *tl, const char *name, double seconds);

/* Compute waits for a copy that ends at `end`; the wait counts as exposed copy time. */
void zl_timeline_wait_copy(zl_timeline *tl, double end);

/* The time everything issued so far is done. */
double zl_timeline_now(const zl_timeline *tl);

/* Chrome trace JSON (chrome://tracing, Perfetto): one process per rank, one thread per
 * stream, a complete event ("ph": "X") per span, in microseconds (merged spans carry
 * "args": {"kernels": N}). `first` and `last` say whether to open and close the JSON array
 * (ranks' files can be concatenated by writing rank 0 first and the last rank last). When
 * spans were merged or dropped, the rank's process gets a "process_labels" metadata event
 * saying so, and the closing writes "otherData" with zerolab's note on it. Returns
 * ZL_ERR_IO if the write fails. */
zl_status zl_timeline_write_trace(const zl_timeline *tl, FILE *out, int rank, bool first, bool last);

const char *zl_stream_name(zl_stream s);

#endif
