#include "sim/timeline.h"

#include <stdlib.h>
#include <string.h>

static const char *const stream_names[ZL_STREAM_COUNT] = {"compute", "comm", "host copy", "nvme",
                                                                 "host compute"};

const char *zl_stream_name(zl_stream s)
{
    return s >= 0 && s < ZL_STREAM_COUNT ? stream_names[s] : "?";
}

void zl_timeline_init(zl_timeline *tl, bool record)
{
    memset(tl, 0, sizeof *tl);
    tl->record = record;
    tl->max_spans = ZL_TIMELINE_MAX_SPANS;
}

void zl_timeline_mark_get(const zl_timeline *tl, zl_timeline_mark *m)
{
    memset(m, 0, sizeof *m);
    memcpy(m->clock, tl->clock, sizeof m->clock);
    memcpy(m->busy, tl->busy, sizeof m->busy);
    m->exposed_comm = tl->exposed_comm;
    m->exposed_copy = tl->exposed_copy;
    m->num_spans = tl->num_spans;
    m->merged_spans = tl->merged_spans;
    m->dropped_spans = tl->dropped_spans;
    if (tl->num_spans) m->last = tl->spans[tl->num_spans - 1];
}

void zl_timeline_restore(zl_timeline *tl, const zl_timeline_mark *m)
{
    memcpy(tl->clock, m->clock, sizeof m->clock);
    memcpy(tl->busy, m->busy, sizeof m->busy);
    tl->exposed_comm = m->exposed_comm;
    tl->exposed_copy = m->exposed_copy;
    if (m->num_spans <= tl->num_spans) {
        tl->num_spans = m->num_spans;
        if (m->num_spans) tl->spans[m->num_spans - 1] = m->last;
    }
    tl->merged_spans = m->merged_spans;
    tl->dropped_spans = m->dropped_spans;
}

void zl_timeline_free(zl_timeline *tl)
{
    free(tl->spans);
    memset(tl, 0, sizeof *tl);
}

/* Keep a span for the trace: merged into the last one when it continues it (same stream,
 * same name, starting where it ended); past the cap, or a failed allocation, counted as
 * dropped. */
static void keep(zl_timeline *tl, zl_stream s, const char *name, double start, double end)
{
    if (!tl->record) return;
    if (tl->num_spans) {
        zl_span *last = &tl->spans[tl->num_spans - 1];
        if (last->stream == s && last->end == start && !strncmp(last->name, name, sizeof last->name - 1)) {
            last->end = end;
            last->count++;
            tl->merged_spans++;
            return;
        }
    }
    if (tl->max_spans && tl->num_spans >= tl->max_spans) {
        tl->dropped_spans++;
        return;
    }
    if (tl->num_spans == tl->cap_spans) {
        size_t cap = tl->cap_spans ? 2 * tl->cap_spans : 1024;
        zl_span *p = realloc(tl->spans, cap * sizeof *p);
        if (!p) {
            tl->dropped_spans++;
            return;
        }
        tl->spans = p;
        tl->cap_spans = cap;
    }
    zl_span *sp = &tl->spans[tl->num_spans++];
    sp->start = start;
    sp->end = end;
    sp->stream = s;
    sp->count = 1;
    snprintf(sp->name, sizeof sp->name, "%s", name);
}

double zl_timeline_run(zl_timeline *tl, zl_stream stream, const char *name, double seconds,
                       double ready)
{
    double start = tl->clock[stream] > ready ? tl->clock[stream] : ready;
    double end = start + seconds;
    tl->clock[stream] = end;
    tl->busy[stream] += seconds;
    keep(tl, stream, name, start, end);
    return end;
}

double zl_timeline_kernel(zl_timeline *tl, const char *name, double seconds)
{
    return zl_timeline_run(tl, ZL_STREAM_COMPUTE, name, seconds, 0);
}

void zl_timeline_wait(zl_timeline *tl, double end)
{
    if (end > tl->clock[ZL_STREAM_COMPUTE]) {
        tl->exposed_comm += end - tl->clock[ZL_STREAM_COMPUTE];
        tl->clock[ZL_STREAM_COMPUTE] = end;
    }
}

double zl_timeline_collective(zl_timeline *tl, const char *name, double seconds, double arrival,
                              bool blocking)
{
    double ready = tl->clock[ZL_STREAM_COMPUTE] > arrival ? tl->clock[ZL_STREAM_COMPUTE] : arrival;
    double end = zl_timeline_run(tl, ZL_STREAM_COMM, name, seconds, ready);
    if (blocking) zl_timeline_wait(tl, end);
    return end;
}

double zl_timeline_copy(zl_timeline *tl, const char *name, double seconds)
{
    return zl_timeline_run(tl, ZL_STREAM_HOST, name, seconds, tl->clock[ZL_STREAM_COMPUTE]);
}

void zl_timeline_wait_copy(zl_timeline *tl, double end)
{
    if (end > tl->clock[ZL_STREAM_COMPUTE]) {
        tl->exposed_copy += end - tl->clock[ZL_STREAM_COMPUTE];
        tl->clock[ZL_STREAM_COMPUTE] = end;
    }
}

double zl_timeline_now(const zl_timeline *tl)
{
    double t = 0;
    for (int s = 0; s < ZL_STREAM_COUNT; s++)
        if (tl->clock[s] > t) t = tl->clock[s];
    return t;
}

zl_status zl_timeline_write_trace(const zl_timeline *tl, FILE *out, int rank, bool first, bool last)
{
    if (first) fprintf(out, "{\"traceEvents\": [\n");
    fprintf(out, "  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": \"rank %d\"}}",
            rank, rank);
    if (tl->merged_spans || tl->dropped_spans)
        fprintf(out, ",\n  {\"name\": \"process_labels\", \"ph\": \"M\", \"pid\": %d, \"args\": "
                     "{\"labels\": \"%zu back-to-back runs of the same kernel merged into their "
                     "spans (args.kernels); %zu spans past the cap of %zu dropped\"}}",
                rank, tl->merged_spans, tl->dropped_spans, tl->max_spans);
    for (int s = 0; s < ZL_STREAM_COUNT; s++)
        fprintf(out, ",\n  {\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                     "\"args\": {\"name\": \"%s\"}}", rank, s, stream_names[s]);
    for (size_t i = 0; i < tl->num_spans; i++) {
        const zl_span *sp = &tl->spans[i];
        /* names are ours (op and collective names): no characters that need escaping */
        fprintf(out, ",\n  {\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %d, "
                     "\"tid\": %d, \"ts\": %.3f, \"dur\": %.3f",
                sp->name, stream_names[sp->stream], rank, (int)sp->stream, 1e6 * sp->start,
                1e6 * (sp->end - sp->start));
        if (sp->count > 1) fprintf(out, ", \"args\": {\"kernels\": %u}", sp->count);
        fputc('}', out);
    }
    if (last)
        fprintf(out, "\n], \"otherData\": {\"zerolab\": \"%s; back-to-back runs of "
                     "the same kernel are one span (args.kernels counts them); at most %zu spans "
                     "per rank, the rest dropped (see each rank's labels)\"}}\n",
                tl->measured ? "measured times (CUDA events on the compute stream)"
                             : "simulated streams",
                tl->max_spans);
    else
        fprintf(out, ",\n");
    if (ferror(out)) return zl_errorf(ZL_ERR_IO, "could not write the trace");
    return ZL_OK;
}
