/* Walking a block's keys: table rows, sub-blocks, and keys zerolab does not know.
 *
 * The unknown-key policy (config.h): an error in blocks DeepSpeed validates strictly; in
 * blocks and at the top level where DeepSpeed ignores unknown keys, an error only when the
 * key is a likely typo of a valid key or a valid key of another block, else a warning. */
#include <string.h>

#include "base/log.h"
#include "config/config_internal.h"

zl_status zl__cfg_expect_object(zl__cfg_reader *r, const json_t *v, const char *path)
{
    if (json_is_object(v)) return ZL_OK;
    return zl__cfg_fail(r, ZL_ERR_CONFIG, path, "expected an object {...}, got %s",
                        zl__cfg_show(v));
}

/* Candidate keys of a block, for "did you mean". */
static int candidates(const char *block, unsigned type_mask, const char **out, int max)
{
    int n = 0;
    size_t bl = strlen(block);
    for (int i = 0; i < zl__cfg_ntable && n < max - 2; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (strcmp(e->block, block) || (type_mask && !(e->sched_mask & type_mask))) continue;
        out[n++] = e->key;
        if (e->alias) out[n++] = e->alias;
    }
    for (int i = 0; i < zl__cfg_nblocks && n < max; i++) { /* direct sub-blocks */
        const char *p = zl__cfg_blocks[i].path;
        if (*p && !strncmp(p, block, bl) && (bl == 0 || p[bl] == '.') &&
            !strchr(p + bl + (bl ? 1 : 0), '.'))
            out[n++] = p + bl + (bl ? 1 : 0);
    }
    const zl__cfg_block *b = zl__cfg_find_block(block);
    for (int k = 0; b && b->extra_keys && b->extra_keys[k] && n < max; k++)
        out[n++] = b->extra_keys[k];
    if (!*block) {
        for (int k = 0; k < zl__cfg_nunsupported && n < max; k++)
            out[n++] = zl__cfg_unsupported_keys[k].key;
        for (int k = 0; zl__cfg_other_top_keys[k] && n < max; k++)
            out[n++] = zl__cfg_other_top_keys[k];
    }
    return n;
}

/* Another block that has this key ("aio" inside zero_optimization, "loss_scale" in bf16). */
static const char *misplaced(const char *block, const char *key)
{
    static _Thread_local char where[128];
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (strcmp(e->block, block) &&
            (!strcmp(e->key, key) || (e->alias && !strcmp(e->alias, key)))) {
            snprintf(where, sizeof where, "%s", *e->block ? e->block : "the top level");
            return where;
        }
    }
    for (int i = 0; i < zl__cfg_nblocks; i++) {
        const char *p = zl__cfg_blocks[i].path, *dot = strrchr(p, '.');
        const char *last = dot ? dot + 1 : p, *parent = dot ? p : "";
        size_t plen = dot ? (size_t)(dot - p) : 0;
        if (*p && !strcmp(last, key) && (strlen(block) != plen || strncmp(block, parent, plen))) {
            snprintf(where, sizeof where, "%.*s", (int)plen, parent);
            if (!plen) snprintf(where, sizeof where, "the top level");
            return where;
        }
    }
    return NULL;
}

zl_status zl__cfg_unknown_key(zl__cfg_reader *r, const char *block, const char *key, bool strict,
                              const char *owner, unsigned type_mask)
{
    const char *cands[256];
    int n = candidates(block, type_mask, cands, 256);
    const char *sugg = zl__cfg_suggest(key, cands, n);
    const char *where = sugg ? NULL : misplaced(block, key);
    char path[256], did[160] = "", hint[200] = "";
    zl__cfg_join(path, sizeof path, r->block_alias ? r->block_alias : block, key);
    if (sugg) snprintf(did, sizeof did, " (did you mean '%s'?)", sugg);
    if (where && !strcmp(where, "the top level"))
        snprintf(hint, sizeof hint, "\nhint: '%s' is a top-level key; move it out of '%s'", key,
                 block);
    else if (where)
        snprintf(hint, sizeof hint, "\nhint: '%s' belongs in '%s', not %s%s%s", key, where,
                 *block ? "in '" : "at the top level", *block ? block : "", *block ? "'" : "");
    /* The key itself is the subject here, so the message starts after "FILE:LINE: ". */
    int line = zl__cfg_line(r, path);
    char at[300];
    if (line)
        snprintf(at, sizeof at, "%s:%d: ", r->name, line);
    else
        snprintf(at, sizeof at, "%s: ", r->name);
    char in[200] = "at the top level";
    if (*block)
        snprintf(in, sizeof in, "in '%s'", r->block_alias ? r->block_alias : block);
    if (!strict && !sugg && !where) {
        zl__cfg_warn(r, NULL, "%sunknown key '%s' %s ignored (DeepSpeed ignores it too)", at,
                     key, in);
        return ZL_OK;
    }
    if (owner)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s%s has no parameter '%s'%s (DeepSpeed: %s.__init__() got an "
                         "unexpected keyword argument '%s')%s",
                         at, owner, key, did, owner, key, hint);
    return zl_errorf(ZL_ERR_CONFIG, "%sunknown key '%s' %s%s%s%s", at, key, in, did,
                     strict ? "; DeepSpeed rejects it too (extra inputs are not permitted)"
                            : "; DeepSpeed would silently ignore it, zerolab refuses a likely "
                              "mistake",
                     hint);
}

static bool is_top_special(const char *key)
{
    if (zl__cfg_in_list(zl__cfg_other_top_keys, key)) return true;
    for (int k = 0; k < zl__cfg_nunsupported; k++)
        if (!strcmp(zl__cfg_unsupported_keys[k].key, key)) return true;
    return false;
}

zl_status zl__cfg_read_block(zl__cfg_reader *r, const json_t *obj, const char *block,
                             unsigned type_mask, const char *owner)
{
    const zl__cfg_block *b = zl__cfg_find_block(block);
    ZL_ASSERT(b != NULL);
    const char *key;
    json_t *v;
    char sub[256];
    /* Unknown keys are collected, not fatal one at a time: a file with three typos in a
     * block gets all three in one run. Other errors stop the read at once. */
    char bad[4096];
    size_t nbad_len = 0;
    int nbad = 0;
    char first_bad[2048] = "";
    zl_status bad_st = ZL_OK;
    json_object_foreach((json_t *)obj, key, v) {
        if (zl__cfg_in_list(b->extra_keys, key) || (!*block && is_top_special(key))) continue;
        int i = zl__cfg_find(block, key);
        if (i >= 0 && type_mask && !(zl__cfg_table[i].sched_mask & type_mask)) i = -1;
        if (i >= 0) {
            const zl__cfg_entry *e = &zl__cfg_table[i];
            if (e->alias && json_object_get(obj, e->key) && json_object_get(obj, e->alias) &&
                !strcmp(key, e->alias)) {
                char path[256];
                zl__cfg_join(path, sizeof path, block, key);
                return zl__cfg_fail(r, ZL_ERR_CONFIG, path,
                                    "'%s' and '%s' are the same setting; give only one", e->key,
                                    e->alias);
            }
            zl_status st = zl__cfg_read_value(r, i, key, v, ZL_CFG_FILE);
            if (st != ZL_OK) return st;
            continue;
        }
        zl__cfg_join(sub, sizeof sub, block, key);
        if (zl__cfg_find_block(sub)) {
            if (json_is_null(v)) continue; /* None: the sub-block keeps its defaults */
            zl_status st = zl__cfg_expect_object(r, v, sub);
            if (st == ZL_OK) st = zl__cfg_read_block(r, v, sub, 0, NULL);
            if (st != ZL_OK) return st;
            continue;
        }
        zl_status st = zl__cfg_unknown_key(r, block, key, b->strict, owner, type_mask);
        if (st == ZL_OK) continue;
        if (!nbad++) {
            bad_st = st;
            snprintf(first_bad, sizeof first_bad, "%s", zl_last_error());
        }
        /* "\n  message", continuation lines (hints) indented under it. */
        const char *m = zl_last_error();
        if (nbad_len < sizeof bad)
            nbad_len += (size_t)snprintf(bad + nbad_len, sizeof bad - nbad_len, "\n  ");
        for (; *m && nbad_len + 6 < sizeof bad; m++) {
            if (*m == '\n') nbad_len += (size_t)snprintf(bad + nbad_len, sizeof bad - nbad_len,
                                                          "\n    ");
            else bad[nbad_len++] = *m;
        }
        bad[nbad_len < sizeof bad ? nbad_len : sizeof bad - 1] = '\0';
    }
    if (nbad == 1) return zl_errorf(bad_st, "%s", first_bad);
    if (nbad > 1) {
        char in[200] = "at the top level";
        if (*block) snprintf(in, sizeof in, "in '%s'", r->block_alias ? r->block_alias : block);
        return zl_errorf(bad_st, "%s: %d unknown keys %s:%s", r->name, nbad, in, bad);
    }
    return ZL_OK;
}
