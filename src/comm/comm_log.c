#include "comm/comm_log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One row of the summary: calls of one op on one group with one message size. The
 * latencies are all kept (8 bytes per call) because the summary's averages are trimmed
 * means, which need the whole distribution. */
typedef struct record {
    zl_comm_op op;
    char group[32];
    int group_size;
    size_t nbytes;
    uint64_t count;
    double *lat_ms;
    size_t nlat, cap;
} record;

struct zl_comm_log {
    record *recs;
    size_t nrecs, cap;
    uint64_t count[ZL_COMM_NUM_OPS];
    uint64_t nbytes[ZL_COMM_NUM_OPS];
    double seconds[ZL_COMM_NUM_OPS];
    zl_comm_observer observer;
    void *observer_ctx;
    FILE *verbose;
    bool shown[ZL_COMM_NUM_OPS]; /* in the summary and verbose lines (prof_all/prof_ops) */
};

zl_status zl_comm_log_create(zl_comm_log **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return zl_errorf(ZL_ERR_NOMEM, "cannot allocate the comms log");
    for (int op = 0; op < ZL_COMM_NUM_OPS; op++) (*out)->shown[op] = true; /* prof_all */
    return ZL_OK;
}

void zl_comm_log_reset(zl_comm_log *log)
{
    for (size_t i = 0; i < log->nrecs; i++) free(log->recs[i].lat_ms);
    free(log->recs);
    log->recs = NULL;
    log->nrecs = log->cap = 0;
    memset(log->count, 0, sizeof log->count);
    memset(log->nbytes, 0, sizeof log->nbytes);
    memset(log->seconds, 0, sizeof log->seconds);
}

void zl_comm_log_destroy(zl_comm_log *log)
{
    if (!log) return;
    zl_comm_log_reset(log);
    free(log);
}

void zl_comm_log_set_observer(zl_comm_log *log, zl_comm_observer fn, void *ctx)
{
    log->observer = fn;
    log->observer_ctx = ctx;
}

void zl_comm_log_set_verbose(zl_comm_log *log, FILE *out) { log->verbose = out; }

/* The op a prof_ops name selects, or ZL_COMM_NUM_OPS. */
static zl_comm_op op_named(const char *name, size_t len)
{
    static const struct { const char *name; zl_comm_op op; } aliases[] = {
        {"all_gather", ZL_COMM_ALLGATHER}, {"reduce_scatter", ZL_COMM_REDUCE_SCATTER}};
    for (int op = 0; op < ZL_COMM_NUM_OPS; op++) {
        const char *own = zl_comm_op_name((zl_comm_op)op);
        if (strlen(own) == len && !strncmp(own, name, len)) return (zl_comm_op)op;
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strlen(aliases[i].name) == len && !strncmp(aliases[i].name, name, len))
            return aliases[i].op;
    return ZL_COMM_NUM_OPS;
}

zl_status zl_comm_log_set_filter(zl_comm_log *log, bool prof_all, const char *prof_ops)
{
    for (int op = 0; op < ZL_COMM_NUM_OPS; op++) log->shown[op] = prof_all;
    if (prof_all) return ZL_OK;
    zl_status st = ZL_OK;
    for (const char *c = prof_ops ? prof_ops : ""; *c;) {
        size_t len = strcspn(c, ",");
        zl_comm_op op = op_named(c, len);
        if (op < ZL_COMM_NUM_OPS)
            log->shown[op] = true;
        else if (st == ZL_OK)
            st = zl_errorf(ZL_ERR_CONFIG,
                           "comms_logger.prof_ops: '%.*s' is not a communication op; known: "
                           "all_reduce, all_gather_into_tensor (all_gather), "
                           "reduce_scatter_tensor (reduce_scatter), broadcast, reduce, send, "
                           "recv, barrier", (int)len, c);
        c += len + (c[len] == ',');
    }
    return st;
}

/* DeepSpeed's calc_bw_log (utils/comms_logging.py), with its size conventions:
 * - all_gather logs the rank's input chunk and multiplies it by n here, so algbw counts
 *   the gathered output (S * n / t);
 * - reduce_scatter logs its whole input, which already covers all n chunks (S / t);
 * - all_reduce's algbw is 2S/t (DeepSpeed's choice; nccl-tests would say S/t), and its
 *   bus bandwidth is S/t * 2(n-1)/n, the ring's traffic per link;
 * - all_gather and reduce_scatter: busbw = algbw * (n-1)/n;
 * - broadcast, reduce, send, recv, barrier: busbw = algbw = S/t.
 * Bytes per millisecond become Gbps by * 8 / 1e6. One deliberate difference: DeepSpeed
 * takes n from the world size even for a call on a subgroup; we use the group's size,
 * which is what the formulas mean (the two agree for calls on the world). */
void zl_comm_bandwidth(zl_comm_op op, size_t nbytes, int n, double ms, double *algbw_gbps,
                       double *busbw_gbps)
{
    double s = (double)nbytes, alg = 0, bus = 0;
    if (ms > 0 && n > 0) {
        switch (op) {
        case ZL_COMM_ALLGATHER:
            alg = s * n / ms;
            bus = alg * (n - 1) / n;
            break;
        case ZL_COMM_REDUCE_SCATTER:
            alg = s / ms;
            bus = alg * (n - 1) / n;
            break;
        case ZL_COMM_ALLREDUCE:
            alg = 2 * s / ms;
            bus = s / ms * (2.0 * (n - 1) / n);
            break;
        default:
            alg = bus = s / ms;
            break;
        }
    }
    *algbw_gbps = alg * 8 / 1e6;
    *busbw_gbps = bus * 8 / 1e6;
}

const char *zl_comm_format_size(size_t nbytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
    if (nbytes == 0) {
        snprintf(buf, len, "0B");
        return buf;
    }
    int i = 0;
    double p = 1;
    while (i < 8 && (double)nbytes >= p * 1024) {
        p *= 1024;
        i++;
    }
    /* Python prints round(x, 2) in its shortest form: "2.0", "2.5", "678.86". */
    char num[64];
    snprintf(num, sizeof num, "%.2f", (double)nbytes / p);
    size_t k = strlen(num);
    while (k > 0 && num[k - 1] == '0' && num[k - 2] != '.') num[--k] = '\0';
    snprintf(buf, len, "%s %s", num, units[i]);
    return buf;
}

static void record_name(const record *r, char *buf, size_t len)
{
    if (!strcmp(r->group, "world"))
        snprintf(buf, len, "%s", zl_comm_op_name(r->op));
    else
        snprintf(buf, len, "%s [%s]", zl_comm_op_name(r->op), r->group);
}

static record *find_or_add(zl_comm_log *log, const zl_comm_event *ev)
{
    const char *group = ev->group ? ev->group : "";
    for (size_t i = log->nrecs; i-- > 0;) { /* recent records first: calls repeat */
        record *r = &log->recs[i];
        if (r->op == ev->op && r->nbytes == ev->nbytes && r->group_size == ev->group_size &&
            !strncmp(r->group, group, sizeof r->group - 1))
            return r;
    }
    if (log->nrecs == log->cap) {
        size_t cap = log->cap ? 2 * log->cap : 16;
        record *recs = realloc(log->recs, cap * sizeof *recs);
        if (!recs) return NULL;
        log->recs = recs;
        log->cap = cap;
    }
    record *r = &log->recs[log->nrecs++];
    memset(r, 0, sizeof *r);
    r->op = ev->op;
    snprintf(r->group, sizeof r->group, "%s", group);
    r->group_size = ev->group_size;
    r->nbytes = ev->nbytes;
    return r;
}

void zl_comm_log_record(zl_comm_log *log, const zl_comm_event *ev)
{
    if (!log) return;
    log->count[ev->op]++;
    log->nbytes[ev->op] += ev->nbytes;
    log->seconds[ev->op] += ev->seconds;
    /* A host allocation failure loses a latency sample, never the call count. */
    record *r = find_or_add(log, ev);
    if (r) {
        r->count++;
        if (r->nlat == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 8;
            double *lat = realloc(r->lat_ms, cap * sizeof *lat);
            if (lat) {
                r->lat_ms = lat;
                r->cap = cap;
            }
        }
        if (r->nlat < r->cap) r->lat_ms[r->nlat++] = ev->seconds * 1e3;
    }
    if (log->verbose && r && log->shown[ev->op]) {
        char name[64], size[32];
        double alg, bus;
        record_name(r, name, sizeof name);
        zl_comm_bandwidth(ev->op, ev->nbytes, ev->group_size, ev->seconds * 1e3, &alg, &bus);
        fprintf(log->verbose,
                "comm op: %s | time (ms): %.2f | msg size: %s | algbw (Gbps): %.2f | "
                "busbw (Gbps): %.2f\n",
                name, ev->seconds * 1e3, zl_comm_format_size(ev->nbytes, size, sizeof size), alg,
                bus);
    }
    if (log->observer) log->observer(log->observer_ctx, ev);
}

uint64_t zl_comm_log_count(const zl_comm_log *log, zl_comm_op op) { return log->count[op]; }
uint64_t zl_comm_log_nbytes(const zl_comm_log *log, zl_comm_op op) { return log->nbytes[op]; }
double zl_comm_log_seconds(const zl_comm_log *log, zl_comm_op op) { return log->seconds[op]; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_record_size(const void *a, const void *b)
{
    const record *x = *(const record *const *)a, *y = *(const record *const *)b;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* DeepSpeed's trim_mean(data, 0.1): sort, drop round(n * 0.1) values at each end (Python's
 * round: half to even, which rint does in the default rounding mode), average the rest.
 * The per-call bandwidths are K / latency for a fixed K within a record, so trimming them
 * drops the same calls as trimming the latencies: their trimmed means come from the same
 * sorted slice. */
static void trimmed_means(const record *r, double *lat, double *alg, double *bus)
{
    *lat = *alg = *bus = 0;
    if (r->nlat == 0) return;
    double *v = malloc(r->nlat * sizeof *v);
    if (!v) return;
    memcpy(v, r->lat_ms, r->nlat * sizeof *v);
    qsort(v, r->nlat, sizeof *v, cmp_double);
    size_t k = (size_t)rint((double)r->nlat * 0.1);
    size_t lo = k, hi = r->nlat - k;
    for (size_t i = lo; i < hi; i++) {
        double a, b;
        zl_comm_bandwidth(r->op, r->nbytes, r->group_size, v[i], &a, &b);
        *lat += v[i];
        *alg += a;
        *bus += b;
    }
    if (hi > lo) {
        *lat /= (double)(hi - lo);
        *alg /= (double)(hi - lo);
        *bus /= (double)(hi - lo);
    }
    free(v);
}

void zl_comm_log_print(const zl_comm_log *log, FILE *out)
{
    fprintf(out, "%-20s%-20s%-20s%-20s%-20s%-20s%-20s\n", "Comm. Op", "Message Size", "Count",
            "Total Latency(ms)", "Avg Latency(ms)", "tput_avg (Gbps)", "busbw_avg (Gbps)");
    const record **rows = malloc((log->nrecs ? log->nrecs : 1) * sizeof *rows);
    bool *done = calloc(log->nrecs ? log->nrecs : 1, sizeof *done);
    if (!rows || !done) {
        free(rows);
        free(done);
        return;
    }
    /* Op lines in order of first use; under each, its sizes in increasing order. */
    for (size_t i = 0; i < log->nrecs; i++) {
        if (done[i] || !log->shown[log->recs[i].op]) continue;
        const record *head = &log->recs[i];
        size_t nrows = 0;
        for (size_t j = i; j < log->nrecs; j++) {
            const record *r = &log->recs[j];
            if (!done[j] && r->op == head->op && r->group_size == head->group_size &&
                !strcmp(r->group, head->group)) {
                rows[nrows++] = r;
                done[j] = true;
            }
        }
        qsort(rows, nrows, sizeof *rows, cmp_record_size);
        char name[64];
        record_name(head, name, sizeof name);
        fprintf(out, "%s\n", name);
        for (size_t j = 0; j < nrows; j++) {
            const record *r = rows[j];
            double total = 0, lat, alg, bus;
            for (size_t k = 0; k < r->nlat; k++) total += r->lat_ms[k];
            trimmed_means(r, &lat, &alg, &bus);
            char size[32];
            fprintf(out, "%-20s%-20s%-20llu%-20.2f%-20.2f%-20.2f%-20.2f\n", " ",
                    zl_comm_format_size(r->nbytes, size, sizeof size),
                    (unsigned long long)r->count, total, lat, alg, bus);
        }
    }
    free(rows);
    free(done);
}
