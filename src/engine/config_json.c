/* Text-level work on a config file: hjson-lite pre-processing, jansson loading with
 * file:line:column errors, key positions, duplicate keys, and "did you mean".
 *
 * jansson keeps no positions for keys, so after it has accepted the text a small tokenizer
 * walks the same (already valid) text, tracking the object path, and records the line of
 * every key. The same walk finds duplicate keys the way DeepSpeed's object_pairs_hook does:
 * the first object to *close* with a repeated key is the one reported. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config_internal.h"

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

static char *dup_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", a, *a ? "." : "", b);
    return p;
}

/* Copy a JSON string body (between quotes) with the common escapes undone. */
static char *read_key(const char *s, size_t *i)
{
    size_t j = *i + 1, n = 0;
    char *out = malloc(strlen(s + j) + 1);
    if (!out) return NULL;
    for (; s[j] && s[j] != '"'; j++) {
        if (s[j] == '\\' && s[j + 1]) {
            j++;
            char c = s[j];
            out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
            out[n++] = s[j];
        }
    }
    out[n] = '\0';
    *i = s[j] ? j + 1 : j;
    return out;
}

static zl_status add_key(zl__cfg_reader *r, char *path, int line, int col, int parent)
{
    zl__cfg_keypos *k = realloc(r->keys, (size_t)(r->nkeys + 1) * sizeof *k);
    if (!k) {
        free(path);
        return zl_errorf(ZL_ERR_NOMEM, "out of memory indexing config keys");
    }
    r->keys = k;
    r->keys[r->nkeys++] = (zl__cfg_keypos){path, line, col, parent};
    return ZL_OK;
}

static const char *last_component(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* DeepSpeed's "Duplicate keys in DeepSpeed config: [...]" for object `id`, if it has any. */
static zl_status check_duplicates(const zl__cfg_reader *r, int id, const char *obj_path)
{
    char list[512] = "";
    size_t len = 0;
    int line = 0, first_line = 0;
    for (int a = 0; a < r->nkeys; a++) {
        if (r->keys[a].parent != id) continue;
        bool seen_before = false, repeated = false;
        for (int b = 0; b < a && !seen_before; b++)
            seen_before = r->keys[b].parent == id && !strcmp(r->keys[b].path, r->keys[a].path);
        if (seen_before) continue;
        for (int b = a + 1; b < r->nkeys; b++) {
            if (r->keys[b].parent == id && !strcmp(r->keys[b].path, r->keys[a].path)) {
                repeated = true;
                if (!line) {
                    line = r->keys[b].line;
                    first_line = r->keys[a].line;
                }
                break;
            }
        }
        if (repeated && len < sizeof list - 1)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", len ? ", " : "",
                                    last_component(r->keys[a].path));
    }
    if (!line) return ZL_OK;
    return zl_errorf(ZL_ERR_CONFIG,
                     "%s:%d: Duplicate keys in DeepSpeed config: [%s] (in %s%s%s; first given at "
                     "line %d)\nhint: keep only one of them; DeepSpeed rejects the file too",
                     r->name, line, list, *obj_path ? "'" : "",
                     *obj_path ? obj_path : "the top-level object", *obj_path ? "'" : "",
                     first_line);
}

/* Walk valid JSON text, recording every key's dotted path and position. */
static zl_status index_keys(zl__cfg_reader *r, const char *s)
{
    frame st[64];
    int depth = 0, next_id = 0, line = 1;
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
            if (!str) return zl_errorf(ZL_ERR_NOMEM, "out of memory indexing config keys");
            if (top && top->is_obj && top->expect_key) {
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
            if (depth == (int)(sizeof st / sizeof st[0]))
                return zl_errorf(ZL_ERR_CONFIG, "%s:%d: config nested too deeply", r->name, line);
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
            if (!path) return zl_errorf(ZL_ERR_NOMEM, "out of memory");
            st[depth++] = (frame){c == '{', c == '{', path, NULL, next_id++, 0};
            i++;
        } else if (c == '}' || c == ']') {
            if (top) {
                if (top->is_obj) status = check_duplicates(r, top->id, top->path);
                free(top->path);
                free(top->cur_key);
                depth--;
            }
            i++;
        } else {
            i++;
        }
    }
    while (depth > 0) {
        depth--;
        free(st[depth].path);
        free(st[depth].cur_key);
    }
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
    zl_status st = index_keys(r, text);
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
    r->keys = NULL;
    r->nkeys = 0;
}

int zl__cfg_line(const zl__cfg_reader *r, const char *path)
{
    if (!path) return 0;
    for (int i = 0; i < r->nkeys; i++)
        if (!strcmp(r->keys[i].path, path)) return r->keys[i].line;
    return 0;
}

/* ---- did you mean ----------------------------------------------------------------------- */

int zl__cfg_distance(const char *a, const char *b)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
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
        int d = zl__cfg_distance(key, cands[i]);
        if (d > limit && contains_most(key, cands[i])) d = limit;
        if (d <= limit && d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best;
}
