/* DeepSpeed's hostfile and --include/--exclude/--num_nodes/--num_gpus (hostfile.h). */
#include "launch/hostfile.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const filter_hint =
    "  hint: the syntax is NAME[:SLOT[,SLOT...]][@NAME...], e.g. worker-0@worker-1:0,2, with "
    "NAME a host of the hostfile and SLOT a slot id below its slots=N";

void zl_launch_pool_free(zl_launch_pool *pool)
{
    for (int i = 0; i < pool->nhosts; i++) {
        free(pool->hosts[i].name);
        free(pool->hosts[i].slots);
    }
    free(pool->hosts);
    pool->hosts = NULL;
    pool->nhosts = 0;
}

int zl_launch_pool_ranks(const zl_launch_pool *pool)
{
    int n = 0;
    for (int i = 0; i < pool->nhosts; i++) n += pool->hosts[i].nslots;
    return n;
}

static int find_host(const zl_launch_pool *pool, const char *name, size_t len)
{
    for (int i = 0; i < pool->nhosts; i++)
        if (strlen(pool->hosts[i].name) == len && !memcmp(pool->hosts[i].name, name, len))
            return i;
    return -1;
}

/* Append a host with slots 0..nslots-1. */
static zl_status add_host(zl_launch_pool *pool, const char *name, size_t len, int nslots)
{
    zl_launch_host *h = realloc(pool->hosts, (size_t)(pool->nhosts + 1) * sizeof *h);
    if (!h) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading the hostfile");
    pool->hosts = h;
    h += pool->nhosts;
    h->name = strndup(name, len);
    h->slots = malloc((size_t)(nslots > 0 ? nslots : 1) * sizeof *h->slots);
    h->nslots = nslots;
    if (!h->name || !h->slots) {
        free(h->name);
        free(h->slots);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading the hostfile");
    }
    for (int s = 0; s < nslots; s++) h->slots[s] = s;
    pool->nhosts++;
    return ZL_OK;
}

/* One stripped line against ^(\S+)\s+slots=(\d+): 1 with the host and count, 0 if not. */
static int match_line(const char *p, const char *end, const char **host, size_t *hlen,
                      long long *slots)
{
    const char *h = p;
    while (p < end && !isspace((unsigned char)*p)) p++;
    if (p == h || p == end) return 0;
    *host = h;
    *hlen = (size_t)(p - h);
    while (p < end && isspace((unsigned char)*p)) p++;
    if (end - p < 7 || strncmp(p, "slots=", 6) || !isdigit((unsigned char)p[6])) return 0;
    p += 6;
    long long n = 0;
    while (p < end && isdigit((unsigned char)*p)) {
        n = n * 10 + (*p - '0');
        if (n > INT_MAX) n = (long long)INT_MAX + 1; /* caught by the caller */
        p++;
    }
    *slots = n;
    return 1;
}

char *zl__launch_slurp(FILE *f, size_t *len, bool *read_error)
{
    char *text = NULL;
    FILE *mem = open_memstream(&text, len);
    if (!mem) return NULL;
    char buf[4096];
    for (size_t got; (got = fread(buf, 1, sizeof buf, f)) > 0;) fwrite(buf, 1, got, mem);
    *read_error = ferror(f) != 0;
    if (fclose(mem) != 0) { /* out of memory while growing: what was kept is no text */
        free(text);
        return NULL;
    }
    return text;
}

bool zl__launch_next_line(const char **cursor, const char **b, const char **e, int *lineno)
{
    while (**cursor) {
        const char *line = *cursor, *nl = strchr(line, '\n');
        const char *next = nl ? nl + 1 : line + strlen(line);
        *b = line;
        *e = nl ? nl : next;
        ++*lineno;
        *cursor = next;
        while (*b < *e && isspace((unsigned char)**b)) ++*b;
        while (*e > *b && isspace((unsigned char)(*e)[-1])) --*e;
        if (*b < *e && **b != '#') return true;
    }
    return false;
}

zl_status zl_hostfile_parse(const char *text, const char *path, zl_launch_pool *out)
{
    memset(out, 0, sizeof *out);
    zl_status st = ZL_OK;
    int lineno = 0;
    const char *b, *e;
    for (const char *cursor = text; st == ZL_OK && zl__launch_next_line(&cursor, &b, &e, &lineno);) {
        const char *host;
        size_t hlen;
        long long slots;
        if (!match_line(b, e, &host, &hlen, &slots))
            st = zl_errorf(ZL_ERR_FORMAT, "%s:%d: Hostfile contains a bad entry: %.*s, unable to "
                           "proceed with launching\n  hint: one `hostname slots=N` a line, e.g. "
                           "`worker-1 slots=4`; # starts a comment", path, lineno, (int)(e - b), b);
        else if (find_host(out, host, hlen) >= 0)
            st = zl_errorf(ZL_ERR_FORMAT, "%s:%d: Hostfile contains multiple entries for %.*s, "
                           "unable to proceed with launching\n  hint: list each host once, with "
                           "all its slots (slots=N)", path, lineno, (int)hlen, host);
        else if (slots == 0)
            st = zl_errorf(ZL_ERR_FORMAT, "%s:%d: host %.*s has slots=0: no rank could run "
                           "there\n  hint: give it slots=N with N >= 1 (one rank per slot), or "
                           "remove the line", path, lineno, (int)hlen, host);
        else if (slots > 1 << 20)
            st = zl_errorf(ZL_ERR_FORMAT, "%s:%d: host %.*s has slots=%lld, more than %d\n  hint: "
                           "slots=N counts the GPUs (here: ranks) of the host", path, lineno,
                           (int)hlen, host, slots, 1 << 20);
        else
            st = add_host(out, host, hlen, (int)slots);
    }
    if (st == ZL_OK && out->nhosts == 0)
        st = zl_errorf(ZL_ERR_FORMAT, "%s: Hostfile is empty or not formatted correctly, unable "
                       "to proceed with launching.\n  hint: one `hostname slots=N` a line, e.g. "
                       "`worker-1 slots=4`", path);
    if (st != ZL_OK) zl_launch_pool_free(out);
    return st;
}

zl_status zl_hostfile_read(const char *path, zl_launch_pool *out, bool *found)
{
    memset(out, 0, sizeof *out);
    *found = false;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT) return ZL_OK;
    if (!f)
        return zl_errorf(ZL_ERR_IO, "cannot read hostfile '%s': %s\n  hint: -H/--hostfile names "
                         "a readable file", path, strerror(errno));
    size_t n = 0;
    bool bad = false;
    char *text = zl__launch_slurp(f, &n, &bad);
    fclose(f);
    if (!text) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading '%s'", path);
    if (bad) {
        free(text);
        return zl_errorf(ZL_ERR_IO, "cannot read hostfile '%s'\n  hint: -H/--hostfile names a "
                         "readable file", path);
    }
    if (strlen(text) != n) {
        free(text);
        return zl_errorf(ZL_ERR_FORMAT, "%s: Hostfile contains a NUL byte: not a text file\n  "
                         "hint: one `hostname slots=N` a line", path);
    }
    *found = true;
    zl_status st = zl_hostfile_parse(text, path, out);
    free(text);
    return st;
}

zl_status zl_launch_pool_local(int slots, zl_launch_pool *out)
{
    memset(out, 0, sizeof *out);
    return add_host(out, "localhost", 9, slots);
}

/* A slot id of a NODE_SPEC: digits only (DeepSpeed: int()). */
static zl_status parse_slot(const char *flag, const char *spec, const char *b, const char *e,
                            int *slot)
{
    long v = 0;
    const char *p = b;
    while (p < e && *p == ' ') p++;
    const char *d = p;
    while (p < e && isdigit((unsigned char)*p) && v <= INT_MAX) v = v * 10 + (*p++ - '0');
    while (p < e && *p == ' ') p++;
    if (d == p || p != e || v > INT_MAX)
        return zl_errorf(ZL_ERR_INVALID, "%s '%s': '%.*s' is not a slot id\n%s", flag, spec,
                         (int)(e - b), b, filter_hint);
    *slot = (int)v;
    return ZL_OK;
}

static bool has_slot(const zl_launch_host *h, int slot)
{
    for (int i = 0; i < h->nslots; i++)
        if (h->slots[i] == slot) return true;
    return false;
}

/* One NODE_SPEC [b, e) applied to `work` (include: built up from nothing, with the
 * original pool `all` to check against; exclude: `work` starts as a copy of `all`). */
static zl_status apply_spec(zl_launch_pool *work, const zl_launch_pool *all, bool include,
                            const char *flag, const char *spec, const char *b, const char *e)
{
    const char *colon = memchr(b, ':', (size_t)(e - b));
    const char *name_end = colon ? colon : e;
    int h = find_host(all, b, (size_t)(name_end - b));
    if (h < 0)
        return zl_errorf(ZL_ERR_INVALID, "%s '%s': Hostname '%.*s' not found in hostfile\n%s",
                         flag, spec, (int)(name_end - b), b, filter_hint);
    const zl_launch_host *src = &all->hosts[h];
    int w = find_host(work, src->name, strlen(src->name));
    if (!colon) { /* the whole host */
        if (include) {
            if (w < 0) return add_host(work, src->name, strlen(src->name), src->nslots);
            for (int s = 0; s < src->nslots; s++) work->hosts[w].slots[s] = src->slots[s];
            work->hosts[w].nslots = src->nslots;
        } else {
            work->hosts[w].nslots = 0;
        }
        return ZL_OK;
    }
    /* name:slot,slot...: every slot must be one the host has. */
    zl_launch_host *dst = w >= 0 ? &work->hosts[w] : NULL;
    if (include) {
        if (!dst) {
            zl_status st = add_host(work, src->name, strlen(src->name), src->nslots);
            if (st != ZL_OK) return st;
            dst = &work->hosts[work->nhosts - 1];
        }
        dst->nslots = 0; /* DeepSpeed: the listed slots replace what was there */
    }
    for (const char *p = colon + 1;; p++) {
        const char *q = p;
        while (q < e && *q != ',') q++;
        int slot = 0;
        zl_status st = parse_slot(flag, spec, p, q, &slot);
        if (st != ZL_OK) return st;
        if (!has_slot(src, slot))
            return zl_errorf(ZL_ERR_INVALID, "%s '%s': No slot '%d' specified on host '%s' (it "
                             "has slots=%d: ids 0 to %d)\n%s", flag, spec, slot, src->name,
                             src->nslots, src->nslots - 1, filter_hint);
        if (include) {
            if (!has_slot(dst, slot)) dst->slots[dst->nslots++] = slot; /* duplicates: once */
        } else {
            int k = 0;
            for (int i = 0; i < dst->nslots; i++)
                if (dst->slots[i] != slot) dst->slots[k++] = dst->slots[i];
            dst->nslots = k;
        }
        if (q == e) break;
        p = q;
    }
    return ZL_OK;
}

static zl_status copy_pool(const zl_launch_pool *src, zl_launch_pool *dst)
{
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < src->nhosts; i++) {
        const zl_launch_host *h = &src->hosts[i];
        zl_status st = add_host(dst, h->name, strlen(h->name), h->nslots);
        if (st != ZL_OK) {
            zl_launch_pool_free(dst);
            return st;
        }
        memcpy(dst->hosts[i].slots, h->slots, (size_t)h->nslots * sizeof *h->slots);
    }
    return ZL_OK;
}

/* Keep the hosts with slots, in the original pool's order. */
static void finish(zl_launch_pool *work, const zl_launch_pool *all)
{
    int k = 0;
    for (int i = 0; i < all->nhosts; i++) {
        int w = find_host(work, all->hosts[i].name, strlen(all->hosts[i].name));
        if (w < 0) continue;
        zl_launch_host t = work->hosts[k];
        work->hosts[k] = work->hosts[w];
        work->hosts[w] = t;
        k++;
    }
    int kept = 0;
    for (int i = 0; i < work->nhosts; i++) {
        if (work->hosts[i].nslots > 0) {
            work->hosts[kept++] = work->hosts[i];
        } else {
            free(work->hosts[i].name);
            free(work->hosts[i].slots);
        }
    }
    work->nhosts = kept;
}

zl_status zl_launch_pool_filter(zl_launch_pool *pool, const char *include, const char *exclude,
                                int num_nodes, int num_gpus, bool from_hostfile)
{
    bool inc = include && *include, exc = exclude && *exclude;
    if ((num_nodes >= 0 || num_gpus >= 0) && (inc || exc))
        return zl_errorf(ZL_ERR_INVALID, "Cannot specify num_nodes/gpus with include/exclude\n  "
                         "hint: pick the resources either with --num_nodes/--num_gpus or with "
                         "--include/--exclude");
    if (!from_hostfile && num_nodes > 1)
        return zl_errorf(ZL_ERR_INVALID, "Num nodes is >1 but no extra nodes available via "
                         "hostfile\n  hint: list the nodes in a hostfile (-H FILE, `host slots=N` "
                         "a line), or drop --num_nodes");
    if (inc && exc)
        return zl_errorf(ZL_ERR_INVALID, "include_str and exclude_str are mutually exclusive.\n  "
                         "hint: give --include or --exclude, not both");
    if (inc || exc) {
        const char *flag = inc ? "--include" : "--exclude", *spec = inc ? include : exclude;
        zl_launch_pool work = {0};
        zl_status st = inc ? ZL_OK : copy_pool(pool, &work);
        for (const char *p = spec; st == ZL_OK;) {
            const char *q = strchr(p, '@');
            const char *e = q ? q : p + strlen(p);
            st = apply_spec(&work, pool, inc, flag, spec, p, e);
            if (!q) break;
            p = q + 1;
        }
        if (st != ZL_OK) {
            zl_launch_pool_free(&work);
            return st;
        }
        finish(&work, pool);
        if (work.nhosts == 0) {
            zl_launch_pool_free(&work);
            return zl_errorf(ZL_ERR_INVALID, "%s '%s' leaves no slot to run on\n  hint: exclude "
                             "fewer slots", flag, spec);
        }
        zl_launch_pool_free(pool);
        *pool = work;
    }
    if (num_nodes > 0 && num_nodes < pool->nhosts) {
        for (int i = num_nodes; i < pool->nhosts; i++) {
            free(pool->hosts[i].name);
            free(pool->hosts[i].slots);
        }
        pool->nhosts = num_nodes;
    }
    if (num_gpus > 0) {
        for (int i = 0; i < pool->nhosts; i++) {
            zl_launch_host *h = &pool->hosts[i];
            int *s = realloc(h->slots, (size_t)num_gpus * sizeof *s);
            if (!s) return zl_errorf(ZL_ERR_NOMEM, "out of host memory (--num_gpus %d)", num_gpus);
            h->slots = s;
            h->nslots = num_gpus;
            for (int k = 0; k < num_gpus; k++) s[k] = k;
        }
    }
    return ZL_OK;
}
