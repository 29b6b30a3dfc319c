/* Text-level work on a config file: hjson-lite pre-processing, jansson loading with
 * file:line:column errors, key positions, duplicate keys, and "did you mean".
 *
 * jansson keeps no positions for keys, so after it has accepted the text a small tokenizer
 * walks the same (already valid) text, tracking the object path, and records the line of
 * every key. The same walk finds duplicate keys the way DeepSpeed's object_pairs_hook does:
 * the first object to *close* with a repeated key is the one reported. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* ---- hjson-lite ----------------------------------------------------------------------- */

/* Skip a JSON string starting at s[i] == '"'; returns the index after the closing quote
 * (or the end of text if unterminated: jansson reports that one). */
static size_t skip_string(const char *s, size_t i)
{
    for (i++; s[i] && s[i] != '"'; i++)
        if (s[i] == '\\' && s[i + 1]) i++;
    return s[i] ? i + 1 : i;
}

zl_status zl__cfg_strip(char *s, const char *name)
{
    int line = 1;
    size_t line_start = 0;
    /* Pass 1: comments -> spaces. */
    for (size_t i = 0; s[i];) {
        if (s[i] == '"') {
            i = skip_string(s, i);
        } else if (s[i] == '#' || (s[i] == '/' && s[i + 1] == '/')) {
            while (s[i] && s[i] != '\n') s[i++] = ' ';
        } else if (s[i] == '/' && s[i + 1] == '*') {
            int l0 = line;
            size_t c0 = i - line_start + 1;
            while (s[i] && !(s[i] == '*' && s[i + 1] == '/')) {
                if (s[i] == '\n') {
                    line++;
                    line_start = i + 1;
                } else {
                    s[i] = ' ';
                }
                i++;
            }
            if (!s[i])
                return zl_errorf(ZL_ERR_FORMAT, "%s:%d:%zu: unterminated /* comment", name, l0,
                                 c0);
            s[i] = s[i + 1] = ' ';
            i += 2;
        } else {
            if (s[i] == '\n') {
                line++;
                line_start = i + 1;
            }
            i++;
        }
    }
    /* Pass 2: a comma followed (after white space) by a closing bracket -> space. */
    for (size_t i = 0; s[i];) {
        if (s[i] == '"') {
            i = skip_string(s, i);
            continue;
        }
        if (s[i] == ',') {
            size_t j = i + 1;
            while (s[j] && isspace((unsigned char)s[j])) j++;
            if (s[j] == '}' || s[j] == ']') s[i] = ' ';
        }
        i++;
    }
    return ZL_OK;
}

/* ---- key positions and duplicates ------------------------------------------------------ */

typedef struct frame {
    bool is_obj, expect_key;
    char *path, *cur_key;
    int id, arr_idx;
} frame;

/* Every object and array met, by id: its path and when it closed (for the duplicate report:
 * DeepSpeed's hook runs as each object closes, so the first to close is the one reported). */
typedef struct container {
    char *path;
    int closed; /* order of closing; INT32_MAX while open */
} container;

static char *dup_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", a, *a ? "." : "", b);
    return p;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Copy a JSON string body (between quotes) decoded as jansson decodes it, so that two
 * spellings of one key ("steps" and "st\u0065ps") compare equal. The text is valid JSON
 * (jansson accepted it), so escapes are well formed; \u0000 never gets here (jansson
 * refuses it without JSON_ALLOW_NUL). A \uXXXX escape never grows: 6 bytes give at most 4. */
static char *read_key(const char *s, size_t *i)
{
    size_t j = *i + 1, n = 0, end = j;
    while (s[end] && s[end] != '"') end += s[end] == '\\' && s[end + 1] ? 2 : 1;
    char *out = malloc(end - j + 1);
    if (!out) return NULL;
    for (; j < end; j++) {
        if (s[j] != '\\') {
            out[n++] = s[j];
            continue;
        }
        char c = s[++j];
        if (c == 'u') {
            int cp = hex4(s + j + 1);
            if (cp < 0) { /* not reached for valid JSON; keep the text */
                out[n++] = 'u';
                continue;
            }
            j += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && s[j + 1] == '\\' && s[j + 2] == 'u') {
                int lo = hex4(s + j + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    j += 6;
                }
            }
            n += put_utf8(out + n, (unsigned)cp);
        } else {
            out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b'
                       : c == 'f' ? '\f' : c;
        }
    }
    out[n] = '\0';
    *i = s[end] ? end + 1 : end;
    return out;
}

static zl_status add_key(zl__cfg_reader *r, char *path, int line, int col, int parent)
{
    if (r->nkeys == r->capkeys) {
        int cap = r->capkeys ? 2 * r->capkeys : 64;
        zl__cfg_keypos *k = realloc(r->keys, (size_t)cap * sizeof *k);
        if (!k) {
            free(path);
            return zl_errorf(ZL_ERR_NOMEM, "out of memory indexing config keys");
        }
        r->keys = k;
        r->capkeys = cap;
    }
    r->keys[r->nkeys++] = (zl__cfg_keypos){path, line, col, parent};
    return ZL_OK;
}

static const char *last_component(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* Keys ordered by (object, name, position): repeats of a name are neighbours. Within one
 * object the paths share the object's prefix, so comparing paths compares names. */
static _Thread_local const zl__cfg_keypos *sort_keys_base;

static int cmp_by_object(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    const zl__cfg_keypos *ka = &sort_keys_base[a], *kb = &sort_keys_base[b];
    if (ka->parent != kb->parent) return ka->parent < kb->parent ? -1 : 1;
    int c = strcmp(ka->path, kb->path);
    return c ? c : (a > b) - (a < b);
}

static int cmp_by_path(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    int c = strcmp(sort_keys_base[a].path, sort_keys_base[b].path);
    return c ? c : (a > b) - (a < b);
}

/* One repeated name in one object: its first and second occurrence. */
typedef struct repeat {
    int first, second;
} repeat;

static int cmp_repeat(const void *pa, const void *pb)
{
    const repeat *a = pa, *b = pb;
    return (a->first > b->first) - (a->first < b->first);
}

/* DeepSpeed's "Duplicate keys in DeepSpeed config: [...]" for the first object to close
 * that has any: one sort of all keys, O(n log n) (a pairwise scan took minutes for 200,000
 * keys). */
static zl_status check_duplicates(const zl__cfg_reader *r, const container *objs)
{
    int n = r->nkeys;
    if (n < 2) return ZL_OK;
    int *idx = malloc((size_t)n * sizeof *idx);
    repeat *reps = malloc((size_t)n * sizeof *reps);
    if (!idx || !reps) {
        free(idx);
        free(reps);
        return zl_errorf(ZL_ERR_NOMEM, "out of memory checking config keys");
    }
    for (int k = 0; k < n; k++) idx[k] = k;
    sort_keys_base = r->keys;
    qsort(idx, (size_t)n, sizeof *idx, cmp_by_object);
    /* The object to report: the first to close among those with a repeat. */
    int worst = -1;
    for (int k = 1; k < n; k++) {
        const zl__cfg_keypos *a = &r->keys[idx[k - 1]], *b = &r->keys[idx[k]];
        if (a->parent == b->parent && !strcmp(a->path, b->path) &&
            (worst < 0 || objs[a->parent].closed < objs[worst].closed))
            worst = a->parent;
    }
    int nreps = 0;
    for (int k = 1; worst >= 0 && k < n; k++) {
        const zl__cfg_keypos *a = &r->keys[idx[k - 1]], *b = &r->keys[idx[k]];
        bool first_of_run = k == 1 || r->keys[idx[k - 2]].parent != a->parent ||
                            strcmp(r->keys[idx[k - 2]].path, a->path) != 0;
        if (a->parent == worst && b->parent == worst && first_of_run && !strcmp(a->path, b->path))
            reps[nreps++] = (repeat){idx[k - 1], idx[k]};
    }
    free(idx);
    if (!nreps) {
        free(reps);
        return ZL_OK;
    }
    qsort(reps, (size_t)nreps, sizeof *reps, cmp_repeat); /* in order of first appearance */
    char list[512] = "";
    size_t len = 0;
    for (int k = 0; k < nreps && len < sizeof list - 1; k++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", len ? ", " : "",
                                last_component(r->keys[reps[k].first].path));
    int line = r->keys[reps[0].second].line, first_line = r->keys[reps[0].first].line;
    free(reps);
    const char *obj_path = objs[worst].path;
    return zl_errorf(ZL_ERR_CONFIG,
                     "%s:%d: Duplicate keys in DeepSpeed config: [%s] (in %s%s%s; first given at "
                     "line %d)\nhint: keep only one of them; DeepSpeed rejects the file too",
                     r->name, line, list, *obj_path ? "'" : "",
                     *obj_path ? obj_path : "the top-level object", *obj_path ? "'" : "",
                     first_line);
}

/* Walk valid JSON text, recording every key's dotted path and position, and every
 * container's path and closing order. */
static zl_status index_keys(zl__cfg_reader *r, const char *s, container **objs_out, int *nobjs)
{
    frame st[64];
    int depth = 0, next_id = 0, cap_objs = 0, line = 1, closed = 0;
    container *objs = NULL;
    size_t line_start = 0;
    zl_status status = ZL_OK;
    for (size_t i = 0; s[i] && status == ZL_OK;) {
        char c = s[i];
        frame *top = depth ? &st[depth - 1] : NULL;
        if (c == '\n') {
            line++;
            line_start = ++i;
        } else if (c == '"') {
            int col = (int)(i - line_start) + 1;
            char *str = read_key(s, &i);
            if (!str) {
                status = zl_errorf(ZL_ERR_NOMEM, "out of memory indexing config keys");
            } else if (top && top->is_obj && top->expect_key) {
                char *path = dup_join(top->path, str);
                free(top->cur_key);
                top->cur_key = str;
                top->expect_key = false;
                status = path ? add_key(r, path, line, col, top->id)
                              : zl_errorf(ZL_ERR_NOMEM, "out of memory");
            } else {
                free(str);
            }
        } else if (c == ',') {
            if (top && top->is_obj) top->expect_key = true;
            if (top && !top->is_obj) top->arr_idx++;
            i++;
        } else if (c == '{' || c == '[') {
            /* Return through the clean-up below: the open frames own their paths. */
            if (depth == (int)(sizeof st / sizeof st[0])) {
                status = zl_errorf(ZL_ERR_CONFIG, "%s:%d: config nested too deeply (more than "
                                   "%d levels)", r->name, line, (int)(sizeof st / sizeof st[0]));
                break;
            }
            char *path;
            if (!top) {
                path = strdup("");
            } else if (top->is_obj) {
                path = dup_join(top->path, top->cur_key ? top->cur_key : "");
            } else {
                size_t n = strlen(top->path) + 24;
                path = malloc(n);
                if (path) snprintf(path, n, "%s[%d]", top->path, top->arr_idx);
            }
            if (next_id == cap_objs) {
                cap_objs = cap_objs ? 2 * cap_objs : 16;
                container *more = realloc(objs, (size_t)cap_objs * sizeof *objs);
                if (more) objs = more;
                else cap_objs = 0;
            }
            if (!path || !cap_objs) {
                free(path);
                status = zl_errorf(ZL_ERR_NOMEM, "out of memory");
                break;
            }
            objs[next_id] = (container){path, INT32_MAX};
            st[depth++] = (frame){c == '{', c == '{', path, NULL, next_id++, 0};
            i++;
        } else if (c == '}' || c == ']') {
            if (top) {
                objs[top->id].closed = closed++;
                free(top->cur_key); /* the path belongs to objs */
                depth--;
            }
            i++;
        } else {
            i++;
        }
    }
    while (depth > 0) free(st[--depth].cur_key);
    *objs_out = objs;
    *nobjs = next_id;
    return status;
}

zl_status zl__cfg_load_json(zl__cfg_reader *r, const char *text, json_t **out)
{
    json_error_t err;
    *out = NULL;
    json_t *root = json_loads(text, 0, &err);
    if (!root)
        return zl_errorf(ZL_ERR_CONFIG, "%s:%d:%d: %s", r->name, err.line, err.column, err.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s:1: a DeepSpeed config must be a JSON object ({...}) at the top level",
                         r->name);
    }
    container *objs = NULL;
    int nobjs = 0;
    zl_status st = index_keys(r, text, &objs, &nobjs);
    if (st == ZL_OK) st = check_duplicates(r, objs);
    for (int k = 0; k < nobjs; k++) free(objs[k].path);
    free(objs);
    /* Lines are looked up by path for every key read: a sorted index, not a scan. */
    if (st == ZL_OK && r->nkeys > 0) {
        r->by_path = malloc((size_t)r->nkeys * sizeof *r->by_path);
        if (!r->by_path) st = zl_errorf(ZL_ERR_NOMEM, "out of memory indexing config keys");
    }
    if (st == ZL_OK && r->by_path) {
        for (int k = 0; k < r->nkeys; k++) r->by_path[k] = k;
        sort_keys_base = r->keys;
        qsort(r->by_path, (size_t)r->nkeys, sizeof *r->by_path, cmp_by_path);
    }
    if (st != ZL_OK) {
        json_decref(root);
        return st;
    }
    *out = root;
    return ZL_OK;
}

void zl__cfg_reader_free(zl__cfg_reader *r)
{
    for (int i = 0; i < r->nkeys; i++) free(r->keys[i].path);
    free(r->keys);
    free(r->by_path);
    r->keys = NULL;
    r->by_path = NULL;
    r->nkeys = r->capkeys = 0;
}

int zl__cfg_line(const zl__cfg_reader *r, const char *path)
{
    if (!path || !r->by_path) return 0;
    int lo = 0, hi = r->nkeys; /* the first key with this path (its earliest position) */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(r->keys[r->by_path[mid]].path, path) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->nkeys && !strcmp(r->keys[r->by_path[lo]].path, path)
               ? r->keys[r->by_path[lo]].line
               : 0;
}

/* ---- did you mean ----------------------------------------------------------------------- */

/* The distance if it is at most `cap`, else something larger (rows whose every cell is past
 * the cap cannot lead back under it, so the table stops there). */
static int distance_capped(const char *a, const char *b, int cap);

int zl__cfg_distance(const char *a, const char *b) { return distance_capped(a, b, 1000); }

static int distance_capped(const char *a, const char *b, int cap)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        int row_min = d[i][0];
        for (int j = 1; j <= m; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int cost = ca != cb;
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            /* Adjacent transposition ("szie" for "size") costs one edit, not two. */
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
            if (v < row_min) row_min = v;
        }
        /* A transposition reaches back two rows, so stop only when two rows are past it. */
        if (i > 1 && row_min > cap && d[i - 1][0] >= 0) {
            int prev_min = d[i - 1][0];
            for (int j = 1; j <= m; j++) prev_min = d[i - 1][j] < prev_min ? d[i - 1][j] : prev_min;
            if (prev_min > cap) return cap + 1;
        }
    }
    return d[n][m];
}

/* Edits a typo of this length may contain: short keys tolerate one, long ones three. */
static int max_edits(size_t len) { return len <= 4 ? 1 : len <= 12 ? 2 : 3; }

/* A long key that is most of a valid key ("micro_batch_size_per_gpu" in
 * "train_micro_batch_size_per_gpu") is a likely mistake too. */
static bool contains_most(const char *key, const char *cand)
{
    size_t lk = strlen(key), lc = strlen(cand);
    const char *shorter = lk < lc ? key : cand, *longer = lk < lc ? cand : key;
    size_t ls = strlen(shorter), ll = strlen(longer);
    return ls >= 8 && 2 * ls >= ll && strstr(longer, shorter) != NULL;
}

const char *zl__cfg_suggest(const char *key, const char *const *cands, int ncands)
{
    const char *best = NULL;
    int best_d = 1000, limit = max_edits(strlen(key));
    for (int i = 0; i < ncands; i++) {
        if (!cands[i] || !strcmp(cands[i], key)) continue;
        /* The distance is at least the difference in length: skip the table for keys that
         * cannot be close (a file of 200,000 unknown keys asks for each of them). */
        size_t lk = strlen(key), lc = strlen(cands[i]);
        if ((lk > lc ? lk - lc : lc - lk) > (size_t)limit && !contains_most(key, cands[i]))
            continue;
        int d = distance_capped(key, cands[i], limit);
        if (d > limit && contains_most(key, cands[i])) d = limit;
        if (d <= limit && d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best;
}
