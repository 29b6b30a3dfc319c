/* The mpiexec command of `zerolab launch` (launch.h). */
#define _GNU_SOURCE /* sched_getaffinity, sched_setaffinity, CPU_* */
#include "launch/launch.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing NULL-terminated vector of owned strings. */
typedef struct strvec {
    char **v;
    int n, cap;
    bool failed;
} strvec;

static void push(strvec *s, const char *word)
{
    if (s->failed) return;
    if (s->n + 2 > s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) {
            s->failed = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(word))) {
        s->failed = true;
        return;
    }
    s->v[++s->n] = NULL;
}

static void pushf(strvec *s, const char *fmt, int value)
{
    char buf[32];
    snprintf(buf, sizeof buf, fmt, value);
    push(s, buf);
}

void zl_launch_argv_free(char **argv)
{
    if (!argv) return;
    for (char **p = argv; *p; p++) free(*p);
    free(argv);
}

bool zl_launch_nodes_format(const zl_launch_pool *pool, char *buf, size_t size)
{
    size_t at = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < pool->nhosts; i++) {
        int w = snprintf(buf + at, size - at, "%s%s:%d", i ? "," : "", pool->hosts[i].name,
                         pool->hosts[i].nslots);
        if (w < 0 || (size_t)w >= size - at) return false;
        at += (size_t)w;
    }
    return true;
}

zl_status zl_launch_nodes_parse(const char *value, int *counts, int max, int *nnodes)
{
    *nnodes = 0;
    for (const char *p = value; *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':') colon = q; /* the last one: a host may be an IPv6 address */
        long k = 0;
        const char *d = colon ? colon + 1 : end;
        for (; d < end && isdigit((unsigned char)*d) && k <= INT_MAX; d++) k = k * 10 + (*d - '0');
        if (!colon || colon == p || colon + 1 == end || d != end || k < 1 || k > INT_MAX ||
            *nnodes >= max)
            return zl_errorf(ZL_ERR_INVALID, "ZL_LAUNCH_NODES='%s': expected HOST:RANKS[,HOST:"
                             "RANKS...] (at most %d hosts)\n  hint: `zerolab launch` sets it; "
                             "unset it when running mpiexec by hand", value, max);
        counts[(*nnodes)++] = (int)k;
        if (!comma) break;
        p = comma + 1;
    }
    if (*nnodes == 0)
        return zl_errorf(ZL_ERR_INVALID, "ZL_LAUNCH_NODES is empty\n  hint: `zerolab launch` "
                         "sets it; unset it when running mpiexec by hand");
    return ZL_OK;
}

zl_status zl_launch_cores_parse(const char *s, const char *what, int **cores, int *n)
{
    *cores = NULL;
    *n = 0;
    int cap = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        long lo = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1, hi = lo;
        if (lo >= 0 && *end == '-') {
            p = end + 1;
            hi = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
        }
        if (lo < 0 || hi < lo || hi >= CPU_SETSIZE || errno || (*end && *end != ',')) {
            free(*cores);
            *cores = NULL;
            *n = 0;
            return zl_errorf(ZL_ERR_INVALID, "%s '%s': not a core list\n  hint: comma-separated "
                             "core ids and ranges below %d, e.g. 1,3-5,7", what, s, CPU_SETSIZE);
        }
        for (long c = lo; c <= hi; c++) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                int *t = realloc(*cores, (size_t)cap * sizeof *t);
                if (!t) {
                    free(*cores);
                    *cores = NULL;
                    return zl_errorf(ZL_ERR_NOMEM, "out of host memory parsing %s", what);
                }
                *cores = t;
            }
            (*cores)[(*n)++] = (int)c;
        }
        if (!*end) break;
        p = end + 1;
    }
    return ZL_OK;
}

void zl_launch_cores_format(const int *cores, int n, char *buf, size_t size)
{
    size_t at = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < n && at < size;) {
        int j = i;
        while (j + 1 < n && cores[j + 1] == cores[j] + 1) j++;
        int w = j > i ? snprintf(buf + at, size - at, "%s%d-%d", i ? "," : "", cores[i], cores[j])
                      : snprintf(buf + at, size - at, "%s%d", i ? "," : "", cores[i]);
        if (w < 0) break;
        at += (size_t)w;
        i = j + 1;
    }
}

/* -env NAME VALUE (or -genv). */
static void env(strvec *v, const char *opt, const char *name, const char *value)
{
    push(v, opt);
    push(v, name);
    push(v, value);
}

static void program(strvec *v, const zl_launch_spec *s)
{
    for (int i = 0; i < s->ncommand; i++) push(v, s->command[i]);
}

zl_status zl_launch_argv(const zl_launch_pool *pool, const zl_launch_spec *s, char ***argv)
{
    *argv = NULL;
    if (s->bind)
        for (int i = 0; i < pool->nhosts; i++)
            if (s->ncore_list / pool->hosts[i].nslots < 1)
                return zl_errorf(ZL_ERR_INVALID, "--bind_cores_to_rank: At least one core needs "
                                 "to be assigned to each rank: %d core%s for the %d ranks of "
                                 "host %s\n  hint: give fewer slots (--num_gpus), or more cores "
                                 "(--bind_core_list)", s->ncore_list,
                                 s->ncore_list == 1 ? "" : "s", pool->hosts[i].nslots,
                                 pool->hosts[i].name);
    strvec v = {0};
    char nodes[4096];
    if (!zl_launch_nodes_format(pool, nodes, sizeof nodes))
        return zl_errorf(ZL_ERR_INVALID, "the host list is longer than %zu bytes\n  hint: "
                         "use fewer hosts, or shorter names", sizeof nodes);
    push(&v, s->mpiexec);
    for (int i = 0; i < s->n_launcher_args; i++) push(&v, s->launcher_args[i]);
    push(&v, "-hosts");
    push(&v, nodes);
    env(&v, "-genv", "ZL_LAUNCH_NODES", nodes);
    env(&v, "-genv", "MASTER_ADDR", s->master_addr);
    char port[16];
    snprintf(port, sizeof port, "%d", s->master_port);
    env(&v, "-genv", "MASTER_PORT", port);
    for (int i = 0; i < s->ngenv; i++) {
        const char *eq = strchr(s->genv[i], '=');
        char *name = eq ? strndup(s->genv[i], (size_t)(eq - s->genv[i])) : NULL;
        if (name) env(&v, "-genv", name, eq + 1);
        else v.failed = true;
        free(name);
    }
    bool first = true;
    for (int i = 0; i < pool->nhosts; i++) {
        int K = pool->hosts[i].nslots;
        char node[16];
        snprintf(node, sizeof node, "%d", i);
        if (!s->bind) {
            if (!first) push(&v, ":");
            first = false;
            push(&v, "-n");
            pushf(&v, "%d", K);
            env(&v, "-env", "ZL_LAUNCH_NODE", node);
            int t = s->node_cores / K;
            push(&v, "-env");
            push(&v, "OMP_NUM_THREADS");
            pushf(&v, "%d", t > 0 ? t : 1);
            program(&v, s);
            continue;
        }
        int per = s->ncore_list / K; /* DeepSpeed: len(core_list) // local_size */
        for (int j = 0; j < K; j++) {
            char list[4096];
            zl_launch_cores_format(s->core_list + j * per, per, list, sizeof list);
            if (!first) push(&v, ":");
            first = false;
            push(&v, "-n");
            push(&v, "1");
            env(&v, "-env", "ZL_LAUNCH_NODE", node);
            env(&v, "-env", "ZL_BIND_CORES", list);
            push(&v, "-env");
            push(&v, "OMP_NUM_THREADS");
            pushf(&v, "%d", per);
            program(&v, s);
        }
    }
    if (v.failed) {
        zl_launch_argv_free(v.v);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory building the mpiexec command");
    }
    *argv = v.v;
    return ZL_OK;
}

static bool name_char(char c, bool first)
{
    return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

zl_status zl_launch_env_parse(const char *text, const char *path, char ***pairs, int *npairs)
{
    int lineno = 0;
    const char *b, *e;
    for (const char *cursor = text; zl__launch_next_line(&cursor, &b, &e, &lineno);) {
        const char *eq = memchr(b, '=', (size_t)(e - b));
        const char *ne = eq;
        while (ne && ne > b && isspace((unsigned char)ne[-1])) ne--;
        bool ok = eq && ne > b;
        for (const char *p = b; ok && p < ne; p++) ok = name_char(*p, p == b);
        if (!ok)
            return zl_errorf(ZL_ERR_FORMAT, "%s:%d: '%.*s' is not NAME=VALUE\n  hint: one "
                             "environment variable a line, e.g. NCCL_DEBUG=INFO (NAME: letters, "
                             "digits, _); # starts a comment", path, lineno, (int)(e - b), b);
        const char *vb = eq + 1;
        while (vb < e && isspace((unsigned char)*vb)) vb++;
        size_t nlen = (size_t)(ne - b), vlen = (size_t)(e - vb);
        char *pair = malloc(nlen + vlen + 2);
        if (!pair) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading '%s'", path);
        memcpy(pair, b, nlen);
        pair[nlen] = '=';
        memcpy(pair + nlen + 1, vb, vlen);
        pair[nlen + 1 + vlen] = '\0';
        int at = *npairs;
        for (int i = 0; i < *npairs; i++)
            if (!strncmp((*pairs)[i], pair, nlen + 1)) at = i;
        if (at == *npairs) {
            char **t = realloc(*pairs, (size_t)(*npairs + 1) * sizeof *t);
            if (!t) {
                free(pair);
                return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading '%s'", path);
            }
            *pairs = t;
            (*npairs)++;
        } else {
            free((*pairs)[at]);
        }
        (*pairs)[at] = pair;
    }
    return ZL_OK;
}

static bool plain_word(const char *w)
{
    if (!*w) return false;
    for (; *w; w++)
        if (!isalnum((unsigned char)*w) && !strchr("_-./:=,@%+", *w)) return false;
    return true;
}

char *zl_launch_quote(char *const *argv)
{
    size_t len = 1;
    for (char *const *a = argv; *a; a++) len += 4 * strlen(*a) + 3;
    char *out = malloc(len), *o = out;
    if (!out) return NULL;
    for (char *const *a = argv; *a; a++) {
        if (a != argv) *o++ = ' ';
        if (plain_word(*a)) {
            o = stpcpy(o, *a);
            continue;
        }
        *o++ = '\'';
        for (const char *c = *a; *c; c++) o = *c == '\'' ? stpcpy(o, "'\\''") : (*o++ = *c, o);
        *o++ = '\'';
    }
    *o = '\0';
    return out;
}

zl_status zl_launch_local_cores(int **cores, int *n)
{
    cpu_set_t set;
    *cores = NULL;
    *n = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return zl_errorf(ZL_ERR_IO, "cannot read this process's cores (sched_getaffinity): %s",
                         strerror(errno));
    int count = CPU_COUNT(&set);
    if (!(*cores = malloc((size_t)(count > 0 ? count : 1) * sizeof **cores)))
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    for (int c = 0; c < CPU_SETSIZE && *n < count; c++)
        if (CPU_ISSET(c, &set)) (*cores)[(*n)++] = c;
    return ZL_OK;
}

zl_status zl_launch_bind_from_env(void)
{
    const char *list = getenv("ZL_BIND_CORES");
    if (!list || !*list) return ZL_OK;
    int *cores, n;
    zl_status st = zl_launch_cores_parse(list, "ZL_BIND_CORES", &cores, &n);
    if (st != ZL_OK) return st;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < n; i++) CPU_SET(cores[i], &set);
    free(cores);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return zl_errorf(ZL_ERR_INVALID, "cannot bind to cores %s (ZL_BIND_CORES): %s\n  hint: "
                         "--bind_core_list names cores this machine has and this job may use",
                         list, strerror(errno));
    return ZL_OK;
}
