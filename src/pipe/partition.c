/* Pipeline partitioning: DeepSpeed's partition_uniform and partition_balanced, and the
 * methods of PipelineModule's partition_method over zerolab's layer list (partition.h). */
#include "pipe/partition.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

void zl_partition_uniform(int num_items, int num_parts, int *bounds)
{
    ZL_ASSERT(num_items >= 0 && num_parts >= 1 && bounds);
    /* Fewer items than parts: one item per part while they last (DeepSpeed's "trivial edge
     * case"), the remaining parts empty. */
    if (num_items <= num_parts) {
        for (int p = 0; p <= num_parts; p++) bounds[p] = p < num_items ? p : num_items;
        return;
    }
    /* chunk items each, and the residual ones one apiece to the FIRST parts: DeepSpeed adds
     * 1 to every boundary after part i for i < residual. So uniform(10, 4) is 3 3 2 2. */
    int chunk = num_items / num_parts, residual = num_items % num_parts;
    bounds[0] = 0;
    for (int p = 1; p <= num_parts; p++)
        bounds[p] = bounds[p - 1] + chunk + (p - 1 < residual ? 1 : 0);
}

int64_t zl_partition_spread(const int64_t *weights, int num_parts, const int *bounds)
{
    int64_t hi = 0, lo = 0;
    for (int p = 0; p < num_parts; p++) {
        int64_t w = 0;
        for (int i = bounds[p]; i < bounds[p + 1]; i++) w += weights[i];
        if (p == 0 || w > hi) hi = w;
        if (p == 0 || w < lo) lo = w;
    }
    return hi - lo;
}

/* The largest total weight the programme takes: sums and differences of sums then never
 * overflow, and every one of them is exact in a double too, as DeepSpeed's numpy floats are
 * up to 2^53 (zerolab's models stop at 2^53 parameters, 2^54 counting a tie twice). */
#define ZL_PARTITION_MAX_TOTAL ((int64_t)1 << 62)

/* DeepSpeed's dynamic programme for the linear partition problem, in its own terms: for
 * every prefix of i items cut into j parts it keeps ONE cut, the one with the smallest spread
 * (max part - min part), remembering that cut's heaviest and lightest part; the cut for
 * (i, j) extends the kept cut of (k, j - 1) by the part [k, i), for the k that gives the
 * smallest spread. Ties go to the LAST such k (DeepSpeed compares with >=), which puts the
 * boundary as far right as the tie allows: balanced([0,1,1,0], 3) is 0 2 3 4, not 0 1 2 4
 * (spread 1 both; "type:block" on the lab model is this case). Keeping one cut per state is what makes it a heuristic for
 * three or more parts (partition.h has an input where it misses the smallest spread).
 *
 * Tables of (n + 1) x (m + 1); time O(n^2 m): a few hundred layers into a few dozen stages
 * is well under a million steps. */
zl_status zl_partition_balanced(const int64_t *weights, int num_items, int num_parts,
                                int *bounds)
{
    ZL_ASSERT(num_items >= 0 && num_parts >= 1 && bounds && (weights || num_items == 0));
    int64_t total = 0;
    for (int i = 0; i < num_items; i++) {
        if (weights[i] < 0)
            return zl_errorf(ZL_ERR_INVALID,
                             "partition weight %d is negative (%lld): weights are sizes "
                             "(parameter or layer counts)\n  hint: pass weights >= 0",
                             i, (long long)weights[i]);
        if (weights[i] > ZL_PARTITION_MAX_TOTAL - total)
            return zl_errorf(ZL_ERR_INVALID,
                             "partition weights total more than 2^62\n  hint: scale the "
                             "weights down (only their ratios matter)");
        total += weights[i];
    }
    /* As many parts as items or more: DeepSpeed hands this to partition_uniform. */
    if (num_items <= num_parts) {
        zl_partition_uniform(num_items, num_parts, bounds);
        return ZL_OK;
    }

    const int n = num_items, m = num_parts;
    const size_t cells = (size_t)(n + 1) * (size_t)(m + 1);
    int64_t *prefix = malloc((size_t)(n + 1) * sizeof *prefix);
    int64_t *best_max = malloc(cells * sizeof *best_max); /* heaviest part of the kept cut */
    int64_t *best_min = malloc(cells * sizeof *best_min); /* lightest part */
    int64_t *cost = malloc(cells * sizeof *cost);          /* their difference */
    bool *reached = calloc(cells, sizeof *reached);       /* a cut exists (DeepSpeed: cost < inf) */
    int *position = calloc(cells, sizeof *position);      /* k: where the kept cut's last part starts */
    if (!prefix || !best_max || !best_min || !cost || !reached || !position) {
        free(prefix), free(best_max), free(best_min), free(cost), free(reached), free(position);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory partitioning %d layers into %d "
                                       "stages", n, m);
    }
#define AT(i, j) ((size_t)(i) * (size_t)(m + 1) + (size_t)(j))
    prefix[0] = 0;
    for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + weights[i];

    /* (0 items, 0 parts) is the one cut to start from. Its "heaviest part" is 0 and its
     * "lightest" is +inf in DeepSpeed (the min table starts at inf and [0,0] is never set),
     * so a first part's max and min are both that part's own weight: spread 0. */
    reached[AT(0, 0)] = true;
    for (int i = 1; i <= n; i++) {
        int jmax = i < m ? i : m;
        for (int j = 1; j <= jmax; j++) {
            /* Only k with a cut of k items into j - 1 parts can be extended: k = 0 for the
             * first part, else k >= j - 1 (each part non-empty). DeepSpeed also tries the
             * others, at cost inf, and any finite cost replaces those. */
            for (int k = j == 1 ? 0 : j - 1; k < (j == 1 ? 1 : i); k++) {
                if (!reached[AT(k, j - 1)]) continue;
                int64_t part = prefix[i] - prefix[k];
                int64_t hi = part, lo = part;
                if (j > 1) {
                    if (best_max[AT(k, j - 1)] > hi) hi = best_max[AT(k, j - 1)];
                    if (best_min[AT(k, j - 1)] < lo) lo = best_min[AT(k, j - 1)];
                }
                int64_t c = hi - lo;
                /* <=: a later k with the same spread wins, as DeepSpeed's `>=`. */
                if (!reached[AT(i, j)] || c <= cost[AT(i, j)]) {
                    reached[AT(i, j)] = true;
                    cost[AT(i, j)] = c;
                    best_max[AT(i, j)] = hi;
                    best_min[AT(i, j)] = lo;
                    position[AT(i, j)] = k;
                }
            }
        }
    }
    /* Walk the kept cuts back from (n, m). */
    bounds[m] = n;
    for (int j = m; j >= 1; j--) bounds[j - 1] = position[AT(bounds[j], j)];
    ZL_ASSERT(bounds[0] == 0);
#undef AT
    free(prefix), free(best_max), free(best_min), free(cost), free(reached), free(position);
    return ZL_OK;
}

const char *zl_pipe_layer_kind_name(zl_layer_kind kind)
{
    switch (kind) {
    case ZL_LAYER_EMBED: return "embed";
    case ZL_LAYER_BLOCK: return "block";
    case ZL_LAYER_HEAD: return "head";
    }
    return "?";
}

/* The methods' names, for hints. */
#define METHODS "parameters, uniform, type:<regex> (e.g. type:block) or a list of boundaries " \
                "(e.g. 0,4,8,14)"

/* The parameters a layer holds on its stage: its own, and a tied one it uses as a member,
 * of which a stage without the owner holds a copy (zl_tie_group.copy_values). */
static int64_t layer_params(const zl_model *m, int l)
{
    const zl_layer *layer = &m->layers[l];
    int64_t n = 0;
    for (int p = layer->first_param; p < layer->first_param + layer->num_params; p++)
        n += (int64_t)m->params[p].numel;
    const zl_tie_group *tie = zl_model_tie_used_by(m, l);
    if (tie) n += (int64_t)m->params[tie->param].numel;
    return n;
}

/* "type:<regex>": weight 1 for the layers whose kind name matches. */
static zl_status type_weights(const zl_model *m, const char *method, int64_t *w)
{
    const char *pattern = method + 5; /* after "type:" */
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &re, why, sizeof why);
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline.partition '%s': '%s' is not a POSIX extended regular "
                         "expression (%s)\n  hint: match layer kinds (embed, block, head), "
                         "e.g. type:block",
                         method, pattern, why);
    }
    int found = 0;
    for (int l = 0; l < m->num_layers; l++) {
        /* anywhere in the name, as DeepSpeed's regex search */
        w[l] = regexec(&re, zl_pipe_layer_kind_name(m->layers[l].kind), 0, NULL, 0) == 0;
        found += (int)w[l];
    }
    regfree(&re);
    if (!found)
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline.partition '%s' found no valid layers to partition: no "
                         "layer kind of model '%s' matches '%s'\n  hint: the kinds are "
                         "embed, block and head, e.g. type:block",
                         method, m->cfg.name, pattern);
    return ZL_OK;
}

/* "0,4,8,14": exactly stages + 1 boundaries from 0 to num_layers, strictly increasing. */
static zl_status explicit_bounds(const zl_model *m, const char *method, int stages, int *bounds)
{
    const int n = m->num_layers;
    const char *fix = "  hint: give pipeline.stages + 1 boundaries, from 0 to the number of "
                      "layers, increasing: stage s runs layers [b[s], b[s+1])";
    const char *s = method;
    int count = 0;
    for (;;) {
        while (*s == ' ') s++;
        if (!isdigit((unsigned char)*s))
            return zl_errorf(ZL_ERR_CONFIG,
                             "pipeline.partition '%s': expected a layer index at '%s' (a "
                             "list of boundaries is integers separated by commas)\n%s",
                             method, s, fix);
        errno = 0;
        char *end;
        long v = strtol(s, &end, 10);
        if (errno == ERANGE || v > INT_MAX)
            return zl_errorf(ZL_ERR_CONFIG, "pipeline.partition '%s': boundary %.*s is out "
                                            "of range (the model has %d layers)\n%s",
                             method, (int)(end - s), s, n, fix);
        if (count < stages + 1) bounds[count] = (int)v;
        count++;
        s = end;
        while (*s == ' ') s++;
        if (*s == '\0') break;
        if (*s != ',')
            return zl_errorf(ZL_ERR_CONFIG,
                             "pipeline.partition '%s': unexpected '%c' after a boundary (a "
                             "list of boundaries is integers separated by commas)\n%s",
                             method, *s, fix);
        s++;
    }
    if (count != stages + 1)
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline.partition '%s' has %d boundaries, and %d stages need %d\n%s",
                         method, count, stages, stages + 1, fix);
    if (bounds[0] != 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline.partition '%s' starts at %d: the first stage starts at "
                         "layer 0\n%s",
                         method, bounds[0], fix);
    if (bounds[stages] != n)
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline.partition '%s' ends at %d, and model '%s' has %d layers "
                         "(embed, %d blocks, head): the last boundary is %d\n%s",
                         method, bounds[stages], m->cfg.name, n, n - 2, n, fix);
    for (int i = 0; i < stages; i++)
        if (bounds[i + 1] <= bounds[i])
            return zl_errorf(ZL_ERR_CONFIG,
                             "pipeline.partition '%s' leaves stage %d without layers (%d "
                             "after %d): every stage needs at least one layer\n%s",
                             method, i, bounds[i + 1], bounds[i], fix);
    return ZL_OK;
}

zl_status zl_pipe_partition_model(const zl_model *m, const char *method, int stages,
                                  int *bounds)
{
    ZL_ASSERT(m && bounds);
    const int n = m->num_layers;
    if (stages < 1)
        return zl_errorf(ZL_ERR_CONFIG, "pipeline.stages is %d: a pipeline has at least one "
                                        "stage\n  hint: set pipeline.stages (or "
                                        "--pipeline-stages) to 1 or more",
                         stages);
    if (stages > n) {
        char which[48];
        if (stages - n == 1) snprintf(which, sizeof which, "stage %d", n);
        else snprintf(which, sizeof which, "stages %d to %d", n, stages - 1);
        return zl_errorf(ZL_ERR_CONFIG,
                         "pipeline.stages is %d, and model '%s' has %d layers (embed, %d "
                         "blocks, head): %s would have no layers to run\n  hint: use at most "
                         "%d pipeline stages (pipeline.stages or --pipeline-stages), or a "
                         "model with more layers",
                         stages, m->cfg.name, n, n - 2, which, n);
    }
    if (!method || !*method)
        return zl_errorf(ZL_ERR_CONFIG, "pipeline.partition is empty\n  hint: use " METHODS);

    /* A list of boundaries starts with a digit; the methods with a letter. */
    const char *s = method;
    while (*s == ' ') s++;
    if (isdigit((unsigned char)*s)) return explicit_bounds(m, method, stages, bounds);

    int64_t *w = malloc((size_t)n * sizeof *w);
    if (!w) return zl_errorf(ZL_ERR_NOMEM, "out of host memory partitioning %d layers", n);
    zl_status st = ZL_OK;
    /* case-insensitive, as DeepSpeed lower-cases the method */
    if (strcasecmp(method, "uniform") == 0) {
        zl_partition_uniform(n, stages, bounds);
    } else if (strcasecmp(method, "parameters") == 0 || strcasecmp(method, "best") == 0) {
        for (int l = 0; l < n; l++) w[l] = layer_params(m, l);
        st = zl_partition_balanced(w, n, stages, bounds);
    } else if (strncasecmp(method, "type:", 5) == 0) {
        st = type_weights(m, method, w);
        if (st == ZL_OK) st = zl_partition_balanced(w, n, stages, bounds);
    } else if (strcasecmp(method, "profile") == 0) {
        st = zl_errorf(ZL_ERR_UNSUPPORTED,
                       "pipeline.partition 'profile' is not implemented (DeepSpeed raises "
                       "NotImplementedError for it too)\n  hint: use " METHODS);
    } else {
        st = zl_errorf(ZL_ERR_CONFIG, "pipeline.partition '%s' is not a partitioning "
                                      "method\n  hint: use " METHODS,
                       method);
    }
    free(w);
    return st;
}

/* snprintf into buf at *len, counting what would not fit. */
static void emit(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emit(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (k > 0) *len += (size_t)k;
}

size_t zl_pipe_partition_format(const zl_model *m, int stages, const int *bounds, char *buf,
                                size_t cap)
{
    size_t len = 0;
    if (buf && cap) buf[0] = '\0';
    for (int s = 0; s < stages; s++) {
        emit(buf, cap, &len, "stage=%d layers=%d\n", s, bounds[s + 1] - bounds[s]);
        for (int l = bounds[s]; l < bounds[s + 1]; l++)
            emit(buf, cap, &len, "    %2d: %s\n", l, zl_pipe_layer_kind_name(m->layers[l].kind));
    }
    return len;
}
