/* Generic reading of table rows: JSON value -> typed setting, with "auto", null, ranges and
 * choices; defaults; messages with file and line.
 *
 * Coercions follow pydantic's lax mode where DeepSpeed uses pydantic, because real configs
 * rely on them: 5e8 for an integer, "2" for a stage, "true" for a bool. Anything else is a
 * type error that names the key, its line, the expected type and the value. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "config/config_internal.h"

const char *zl__cfg_join(char *buf, size_t nbuf, const char *a, const char *b)
{
    snprintf(buf, nbuf, "%s%s%s", a, *a ? "." : "", b);
    return buf;
}

static int vformat(char *buf, size_t n, const zl__cfg_reader *r, const char *path,
                   const char *fmt, va_list ap)
{
    int line = zl__cfg_line(r, path);
    int len = line ? snprintf(buf, n, "%s:%d: ", r->name, line)
                   : snprintf(buf, n, "%s: ", r->name);
    if (path && *path && len < (int)n) len += snprintf(buf + len, n - (size_t)len, "%s: ", path);
    if (len < (int)n) vsnprintf(buf + len, n - (size_t)len, fmt, ap);
    return line;
}

zl_status zl__cfg_fail(const zl__cfg_reader *r, zl_status st, const char *path, const char *fmt,
                       ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vformat(buf, sizeof buf, r, path, fmt, ap);
    va_end(ap);
    return zl_errorf(st, "%s", buf);
}

void zl__cfg_warn(const zl__cfg_reader *r, const char *path, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    if (path)
        vformat(buf, sizeof buf, r, path, fmt, ap);
    else
        vsnprintf(buf, sizeof buf, fmt, ap); /* the caller wrote the whole line */
    va_end(ap);
    zl_config *cfg = r->cfg;
    char **w = realloc(cfg->warnings, (size_t)(cfg->nwarnings + 1) * sizeof *w);
    if (!w) return; /* a lost warning is not worth failing the parse for */
    cfg->warnings = w;
    if ((w[cfg->nwarnings] = strdup(buf))) cfg->nwarnings++;
}

const char *zl__cfg_show(const json_t *v)
{
    static _Thread_local char buf[96];
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, sizeof buf, "%s", s ? s : "?");
    if (s && strlen(s) >= sizeof buf) strcpy(buf + sizeof buf - 4, "...");
    free(s);
    return buf;
}

bool zl__cfg_is_auto(const json_t *v)
{
    return json_is_string(v) && !strcmp(json_string_value(v), "auto");
}

int zl__cfg_find(const char *block, const char *key)
{
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (!strcmp(e->block, block) &&
            (!strcmp(e->key, key) || (e->alias && !strcmp(e->alias, key))))
            return i;
    }
    return -1;
}

int zl__cfg_find_path(const char *dotted)
{
    char buf[256];
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (!strcmp(zl__cfg_join(buf, sizeof buf, e->block, e->key), dotted)) return i;
        if (e->alias && !strcmp(zl__cfg_join(buf, sizeof buf, e->block, e->alias), dotted))
            return i;
    }
    return -1;
}

void *zl__cfg_ptr(zl_config *cfg, size_t off) { return (char *)cfg + off; }

const zl__cfg_block *zl__cfg_find_block(const char *path)
{
    for (int i = 0; i < zl__cfg_nblocks; i++)
        if (!strcmp(zl__cfg_blocks[i].path, path)) return &zl__cfg_blocks[i];
    return NULL;
}

bool zl__cfg_in_list(const char *const *list, const char *key)
{
    for (; list && *list; list++)
        if (!strcmp(*list, key)) return true;
    return false;
}

/* ---- defaults --------------------------------------------------------------------------- */

static void set_default(zl_config *cfg, const zl__cfg_entry *e)
{
    void *p = zl__cfg_ptr(cfg, e->off);
    switch (e->type) {
    case ZL__CT_BOOL: *(bool *)p = e->def != 0; break;
    /* sys.maxsize does not survive a round trip through double: saturate. */
    case ZL__CT_INT: *(int64_t *)p = e->def >= 9.2e18 ? INT64_MAX : (int64_t)e->def; break;
    case ZL__CT_FLOAT: *(double *)p = e->def; break;
    case ZL__CT_ENUM:
    case ZL__CT_OPTBOOL: *(int *)p = (int)e->def; break;
    case ZL__CT_STR:
    case ZL__CT_STRLIST:
        free(*(char **)p);
        *(char **)p = e->def_str ? strdup(e->def_str) : NULL;
        break;
    case ZL__CT_BETAS:
        *(double *)p = e->def;
        *(double *)zl__cfg_ptr(cfg, e->off2) = e->def2;
        break;
    }
}

void zl__cfg_set_defaults(zl_config *cfg)
{
    for (int i = 0; i < zl__cfg_ntable; i++) {
        set_default(cfg, &zl__cfg_table[i]);
        cfg->origin[i] = (zl_config_origin){ZL_CFG_DEFAULT, 0, NULL, false};
    }
}

void zl__cfg_free_strings(zl_config *cfg)
{
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (e->type == ZL__CT_STR || e->type == ZL__CT_STRLIST) {
            char **p = zl__cfg_ptr(cfg, e->off);
            free(*p);
            *p = NULL;
        }
    }
}

/* ---- one value -------------------------------------------------------------------------- */

static bool as_bool(const json_t *v, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = json_integer_value(v) == 1;
        return true;
    }
    if (json_is_string(v)) { /* pydantic's lax spellings */
        static const char *const yes[] = {"true", "1", "yes", "on", "t", "y", NULL};
        static const char *const no[] = {"false", "0", "no", "off", "f", "n", NULL};
        for (int i = 0; yes[i]; i++) {
            if (!strcasecmp(json_string_value(v), yes[i])) return *out = true, true;
            if (!strcasecmp(json_string_value(v), no[i])) return *out = false, true;
        }
    }
    return false;
}

static bool as_number(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        *out = strtod(s, &end);
        while (isspace((unsigned char)*end)) end++;
        return end != s && *end == '\0' && isfinite(*out);
    }
    return false;
}

/* An integer value: 1 ok, 0 not an integer, -1 an integer past int64 (never saturated or
 * truncated: the caller names the key and the range). */
static int as_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) { /* 5e8: integral floats are integers, as pydantic accepts them */
        double d = json_real_value(v);
        if (d != floor(d)) return 0;
        if (!(fabs(d) < 0x1p63)) return -1; /* 2^63 itself is past INT64_MAX */
        *out = (int64_t)d;
        return 1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        bool range = errno == ERANGE;
        while (isspace((unsigned char)*end)) end++;
        if (end == s || *end) return 0;
        if (range) return -1;
        *out = x;
        return 1;
    }
    return 0;
}

static int match_choice(const zl__cfg_entry *e, const char *s)
{
    for (int k = 0; e->choices[k]; k++)
        if ((e->flags & ZL__CF_NOCASE) ? !strcasecmp(s, e->choices[k]) : !strcmp(s, e->choices[k]))
            return k;
    return -1;
}

static const char *choice_list(const zl__cfg_entry *e)
{
    static _Thread_local char buf[160];
    size_t n = (size_t)snprintf(buf, sizeof buf, "one of ");
    for (int k = 0; e->choices[k] && n < sizeof buf; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%s\"", k ? ", " : "", e->choices[k]);
    return buf;
}

/* A bound as text: integers exactly ("2147483647", not "2.14748e+09"). */
static const char *bound_text(const zl__cfg_entry *e, double x, char *buf, size_t n)
{
    if (e->type == ZL__CT_INT && fabs(x) < 0x1p63)
        snprintf(buf, n, "%lld", (long long)x);
    else
        snprintf(buf, n, "%g", x);
    return buf;
}

/* "out of range" with the allowed range, for a value past the row's bounds or past what
 * the field can hold at all (an integer past int64). */
static zl_status range_error(zl__cfg_reader *r, const zl__cfg_entry *e, const char *path,
                             const json_t *v)
{
    if (e->bad_msg) return zl__cfg_fail(r, ZL_ERR_CONFIG, path, e->bad_msg, zl__cfg_show(v));
    char lo[32], hi[32];
    bool has_lo = e->flags & ZL__CF_LO, has_hi = e->flags & ZL__CF_HI;
    if (e->type == ZL__CT_INT) { /* the field is int64 whatever the row says */
        if (!has_lo) snprintf(lo, sizeof lo, "%lld", (long long)INT64_MIN);
        if (!has_hi) snprintf(hi, sizeof hi, "%lld", (long long)INT64_MAX);
        has_lo = has_hi = true;
        if (e->flags & ZL__CF_LO) bound_text(e, e->lo, lo, sizeof lo);
        if (e->flags & ZL__CF_HI) bound_text(e, e->hi, hi, sizeof hi);
    } else {
        bound_text(e, e->lo, lo, sizeof lo);
        bound_text(e, e->hi, hi, sizeof hi);
    }
    if (has_lo && has_hi)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, path,
                            "%s is out of range: the allowed range is [%s, %s]",
                            zl__cfg_show(v), lo, hi);
    return zl__cfg_fail(r, ZL_ERR_CONFIG, path, "%s is out of range: it must be %s %s",
                        zl__cfg_show(v), has_lo ? ">=" : "<=", has_lo ? lo : hi);
}

static zl_status range_check(zl__cfg_reader *r, const zl__cfg_entry *e, const char *path,
                             double x, const json_t *v)
{
    bool low = (e->flags & ZL__CF_LO) && x < e->lo, high = (e->flags & ZL__CF_HI) && x > e->hi;
    if (!low && !high) return ZL_OK;
    return range_error(r, e, path, v);
}

static zl_status type_error(zl__cfg_reader *r, const char *path, const char *want,
                            const json_t *v)
{
    return zl__cfg_fail(r, ZL_ERR_CONFIG, path, "expected %s, got %s", want, zl__cfg_show(v));
}

zl_status zl__cfg_read_value(zl__cfg_reader *r, int i, const char *key, const json_t *v,
                             zl_config_source src)
{
    const zl__cfg_entry *e = &zl__cfg_table[i];
    zl_config *cfg = r->cfg;
    char path[256];
    zl__cfg_join(path, sizeof path, r->block_alias ? r->block_alias : e->block, key);
    zl_config_origin org = {src, zl__cfg_line(r, path), NULL, false};
    if (src == ZL_CFG_FILE && strcmp(key, e->key)) {
        org.source = ZL_CFG_ALIAS;
        org.alias = e->alias;
    }
    if (src == ZL_CFG_FILE && r->block_alias) {
        org.source = ZL_CFG_ALIAS;
        org.alias = r->block_alias;
    }
    void *p = zl__cfg_ptr(cfg, e->off);

    /* "auto" is the Hugging Face placeholder: not given. */
    if (zl__cfg_is_auto(v)) {
        set_default(cfg, e);
        cfg->origin[i] = (zl_config_origin){ZL_CFG_AUTO, org.line, NULL, true};
        return ZL_OK;
    }
    if (json_is_null(v)) {
        if (e->flags & ZL__CF_NULL_UNSET) {
            set_default(cfg, e);
            cfg->origin[i] = (zl_config_origin){ZL_CFG_DEFAULT, org.line, NULL, false};
            return ZL_OK;
        }
        if (!(e->flags & ZL__CF_NULLABLE) && e->type != ZL__CT_OPTBOOL &&
            e->type != ZL__CT_STRLIST)
            return type_error(r, path, "a value (null is not allowed here)", v);
        if (e->type == ZL__CT_STR || e->type == ZL__CT_STRLIST) {
            free(*(char **)p);
            *(char **)p = NULL;
        } else {
            set_default(cfg, e); /* the None sentinel */
            if (e->type == ZL__CT_OPTBOOL) *(int *)p = -1;
        }
        cfg->origin[i] = org;
        return ZL_OK;
    }

    zl_status st = ZL_OK;
    switch (e->type) {
    case ZL__CT_BOOL: {
        bool b;
        if (!as_bool(v, &b)) return type_error(r, path, "true or false", v);
        *(bool *)p = b;
        break;
    }
    case ZL__CT_OPTBOOL: {
        bool b;
        if (!as_bool(v, &b)) return type_error(r, path, "true, false or null", v);
        *(int *)p = b;
        break;
    }
    case ZL__CT_INT: {
        int64_t x = 0;
        int ok = json_is_boolean(v) ? 0 : as_int(v, &x);
        if (!ok) return type_error(r, path, "an integer", v);
        if (ok < 0) return range_error(r, e, path, v);
        if ((st = range_check(r, e, path, (double)x, v)) != ZL_OK) return st;
        *(int64_t *)p = x;
        break;
    }
    case ZL__CT_FLOAT: {
        double x;
        if (json_is_boolean(v) || !as_number(v, &x)) return type_error(r, path, "a number", v);
        if ((st = range_check(r, e, path, x, v)) != ZL_OK) return st;
        *(double *)p = x;
        break;
    }
    case ZL__CT_STR:
        if (!json_is_string(v)) return type_error(r, path, "a string", v);
        free(*(char **)p);
        if (!(*(char **)p = strdup(json_string_value(v))))
            return zl_errorf(ZL_ERR_NOMEM, "out of memory");
        break;
    case ZL__CT_ENUM: {
        int k = json_is_string(v) ? match_choice(e, json_string_value(v)) : -1;
        if (k < 0 && (e->flags & ZL__CF_WARN_FALLBACK) && json_is_string(v)) {
            zl__cfg_warn(r, path, e->bad_msg, json_string_value(v));
            set_default(cfg, e);
            break;
        }
        if (k < 0 && e->bad_msg && json_is_string(v))
            return zl__cfg_fail(r, ZL_ERR_CONFIG, path, e->bad_msg, json_string_value(v));
        int nchoices = 0;
        while (e->choices[nchoices]) nchoices++;
        const char *near =
            json_is_string(v) ? zl__cfg_suggest(json_string_value(v), e->choices, nchoices) : NULL;
        if (k < 0 && near)
            return zl__cfg_fail(r, ZL_ERR_CONFIG, path,
                                "expected %s, got %s (did you mean \"%s\"?)", choice_list(e),
                                zl__cfg_show(v), near);
        if (k < 0) return type_error(r, path, choice_list(e), v);
        *(int *)p = k;
        break;
    }
    case ZL__CT_STRLIST: {
        if (!json_is_array(v)) return type_error(r, path, "a list of strings", v);
        size_t n = 1, idx;
        json_t *it;
        json_array_foreach(v, idx, it) {
            if (!json_is_string(it)) return type_error(r, path, "a list of strings", v);
            n += strlen(json_string_value(it)) + 1;
        }
        char *s = calloc(1, n);
        if (!s) return zl_errorf(ZL_ERR_NOMEM, "out of memory");
        json_array_foreach(v, idx, it) {
            if (idx) strcat(s, ",");
            strcat(s, json_string_value(it));
        }
        free(*(char **)p);
        *(char **)p = s;
        break;
    }
    case ZL__CT_BETAS: {
        double b1, b2;
        if (!json_is_array(v) || json_array_size(v) != 2 ||
            !as_number(json_array_get(v, 0), &b1) || !as_number(json_array_get(v, 1), &b2))
            return type_error(r, path, "two numbers [beta1, beta2]", v);
        if (b1 < 0 || b1 >= 1 || b2 < 0 || b2 >= 1)
            return zl__cfg_fail(r, ZL_ERR_CONFIG, path,
                                "betas must be in [0, 1) (torch: Invalid beta parameter), got %s",
                                zl__cfg_show(v));
        *(double *)p = b1;
        *(double *)zl__cfg_ptr(cfg, e->off2) = b2;
        break;
    }
    }
    cfg->origin[i] = org;
    return ZL_OK;
}
