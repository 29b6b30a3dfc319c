/* zl_config: load, parse, override, query, free. The reading itself is in config_read.c
 * (table rows), config_blocks.c and config_optim.c (block rules) and config_check.c (batch
 * triad, derived values, cross-field checks). */
#include "engine/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "engine/config_internal.h"

void zl_config_default(zl_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    zl__cfg_set_defaults(cfg);
    cfg->optimizer.type = ZL_OPTIMIZER_ADAM; /* meaningful only with optimizer_given */
    cfg->scheduler.type = ZL_LR_CONSTANT;
    zl__cfg_derive(cfg);
}

void zl_config_free(zl_config *cfg)
{
    zl__cfg_free_strings(cfg);
    free(cfg->name);
    free(cfg->optimizer_name);
    for (int i = 0; i < cfg->nwarnings; i++) free(cfg->warnings[i]);
    free(cfg->warnings);
    cfg->name = cfg->optimizer_name = NULL;
    cfg->warnings = NULL;
    cfg->nwarnings = 0;
}

/* Every block in the order DeepSpeed's DeepSpeedConfig reads them, after the generic pass
 * over the top level (scalars and plain blocks). */
static zl_status read_root(zl__cfg_reader *r, const json_t *root)
{
    zl_status st = zl__cfg_read_block(r, root, "", 0, NULL);
    if (st == ZL_OK) st = zl__cfg_read_zero(r, root);
    if (st == ZL_OK) st = zl__cfg_read_precision(r, root);
    if (st == ZL_OK) st = zl__cfg_read_optimizer(r, root);
    if (st == ZL_OK) st = zl__cfg_read_scheduler(r, root);
    if (st == ZL_OK) st = zl__cfg_check_unsupported(r, root);
    return st;
}

zl_status zl_config_parse(zl_config *cfg, const char *json_text, const char *name,
                          int dp_world_size)
{
    ZL_ASSERT(json_text != NULL);
    zl_config_default(cfg);
    if (!name) name = "<string>";
    cfg->name = strdup(name);
    /* Skip a UTF-8 byte order mark; hjson (and editors on Windows) accept one. */
    if (!strncmp(json_text, "\xEF\xBB\xBF", 3)) json_text += 3;
    char *text = strdup(json_text);
    if (!cfg->name || !text) {
        free(text);
        return zl_errorf(ZL_ERR_NOMEM, "out of memory reading config %s", name);
    }
    zl__cfg_reader r = {.cfg = cfg, .name = cfg->name};
    json_t *root = NULL;
    zl_status st = zl__cfg_strip(text, cfg->name);
    if (st == ZL_OK) st = zl__cfg_load_json(&r, text, &root);
    if (st == ZL_OK) st = read_root(&r, root);
    if (st == ZL_OK) zl__cfg_derive(cfg);
    if (st == ZL_OK && dp_world_size > 0) st = zl_config_resolve_batch(cfg, dp_world_size);
    if (st == ZL_OK) st = zl__cfg_finish(&r);
    json_decref(root);
    zl__cfg_reader_free(&r);
    free(text);
    return st;
}

zl_status zl_config_load(zl_config *cfg, const char *path, int dp_world_size)
{
    zl_config_default(cfg); /* freeable whatever happens; zl_config_parse starts over */
    FILE *f = fopen(path, "rb");
    if (!f)
        return zl_errorf(ZL_ERR_IO, "cannot open DeepSpeed config '%s': %s", path,
                         strerror(errno));
    size_t cap = 1 << 14, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger) free(buf);
        buf = bigger;
    }
    bool failed = ferror(f);
    fclose(f);
    if (!buf) return zl_errorf(ZL_ERR_NOMEM, "out of memory reading '%s'", path);
    if (failed) {
        free(buf);
        return zl_errorf(ZL_ERR_IO, "cannot read DeepSpeed config '%s'", path);
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        return zl_errorf(ZL_ERR_FORMAT, "%s: contains a NUL byte; is it a text file?", path);
    }
    zl_config_free(cfg);
    zl_status st = zl_config_parse(cfg, buf, path, dp_world_size);
    free(buf);
    return st;
}

zl_status zl_config_set(zl_config *cfg, const char *name, const char *value)
{
    int i = zl__cfg_find_path(name);
    if (i < 0) {
        const char *cands[ZL_CONFIG_MAX_SETTINGS];
        static _Thread_local char paths[ZL_CONFIG_MAX_SETTINGS][128];
        for (int k = 0; k < zl__cfg_ntable; k++) {
            zl__cfg_join(paths[k], sizeof paths[k], zl__cfg_table[k].block, zl__cfg_table[k].key);
            cands[k] = paths[k];
        }
        const char *s = zl__cfg_suggest(name, cands, zl__cfg_ntable);
        return zl_errorf(ZL_ERR_NOT_FOUND, "no DeepSpeed setting named '%s'%s%s%s", name,
                         s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
    json_error_t err;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &err);
    if (!v) v = json_string(value); /* a bare word: cpu, WARN, ... */
    if (!v) return zl_errorf(ZL_ERR_NOMEM, "out of memory");
    zl__cfg_reader r = {.cfg = cfg, .name = "command line"};
    zl_status st = zl__cfg_read_value(&r, i, zl__cfg_table[i].key, v, ZL_CFG_CLI);
    json_decref(v);
    if (st == ZL_OK) zl__cfg_derive(cfg);
    return st;
}

const zl_config_origin *zl_config_origin_of(const zl_config *cfg, const char *name)
{
    int i = zl__cfg_find_path(name);
    return i < 0 ? NULL : &cfg->origin[i];
}

bool zl_config_given(const zl_config *cfg, const char *name)
{
    const zl_config_origin *o = zl_config_origin_of(cfg, name);
    return o && (o->source == ZL_CFG_FILE || o->source == ZL_CFG_ALIAS || o->source == ZL_CFG_CLI);
}

void zl_config_log_warnings(const zl_config *cfg)
{
    for (int i = 0; i < cfg->nwarnings; i++) zl_log_warn("%s", cfg->warnings[i]);
}
