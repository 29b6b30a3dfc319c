/* zl_config: load, parse, override, query, free. The reading itself is in config_read.c
 * (table rows), config_blocks.c and config_optim.c (block rules) and config_check.c (batch
 * triad, derived values, cross-field checks). */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "config/config_internal.h"

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
    return zl_config_parse_filled(cfg, json_text, name, dp_world_size, NULL);
}

zl_status zl_config_parse_filled(zl_config *cfg, const char *json_text, const char *name,
                                 int dp_world_size, const zl_config_fill *fill)
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
    if (st == ZL_OK) st = zl__cfg_fill(&r, fill);
    if (st == ZL_OK) st = zl__cfg_check_scheduler(&r);
    if (st == ZL_OK) zl__cfg_derive(cfg);
    if (st == ZL_OK && dp_world_size > 0) st = zl_config_resolve_batch(cfg, dp_world_size);
    if (st == ZL_OK) st = zl__cfg_finish(&r);
    json_decref(root);
    zl__cfg_reader_free(&r);
    free(text);
    return st;
}

/* What a path that is not a regular file is, for the message. */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO (named pipe)"
           : S_ISCHR(m)  ? "a device"
           : S_ISBLK(m)  ? "a device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a plain file";
}

zl_status zl_config_load(zl_config *cfg, const char *path, int dp_world_size)
{
    return zl_config_load_filled(cfg, path, dp_world_size, NULL);
}

zl_status zl_config_load_filled(zl_config *cfg, const char *path, int dp_world_size,
                                const zl_config_fill *fill)
{
    zl_config_default(cfg); /* freeable whatever happens; zl_config_parse starts over */
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever; the type is
     * checked before anything is read (a device such as /dev/zero never ends). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return zl_errorf(ZL_ERR_IO, "cannot open DeepSpeed config '%s': %s", path,
                         strerror(errno));
    struct stat sb;
    bool statted = fstat(fd, &sb) == 0;
    if (!statted || !S_ISREG(sb.st_mode)) {
        zl_status st = zl_errorf(ZL_ERR_IO,
                                 "DeepSpeed config '%s' is not a regular file (it is %s)\n"
                                 "  hint: save the config to a file and give its path",
                                 path, statted ? file_kind(sb.st_mode) : "unreadable");
        close(fd);
        return st;
    }
    if (sb.st_size > ZL_CONFIG_MAX_BYTES) {
        close(fd);
        return zl_errorf(ZL_ERR_IO,
                         "DeepSpeed config '%s' is %lld bytes, more than the %d MiB a config "
                         "may have\n  hint: is it really a DeepSpeed config?",
                         path, (long long)sb.st_size, ZL_CONFIG_MAX_BYTES >> 20);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return zl_errorf(ZL_ERR_IO, "cannot read DeepSpeed config '%s': %s", path,
                         strerror(errno));
    }
    /* Read at most the cap plus one byte: a file that grew past it is refused too. */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    bool too_big = false;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap > ZL_CONFIG_MAX_BYTES) {
            too_big = true;
            break;
        }
        size_t bigger_cap = cap * 2 > (size_t)ZL_CONFIG_MAX_BYTES + 1
                                ? (size_t)ZL_CONFIG_MAX_BYTES + 1
                                : cap * 2;
        char *bigger = realloc(buf, bigger_cap + 1);
        if (!bigger) free(buf);
        buf = bigger;
        cap = bigger_cap;
    }
    bool failed = ferror(f);
    fclose(f);
    if (!buf) return zl_errorf(ZL_ERR_NOMEM, "out of memory reading '%s'", path);
    if (failed || too_big) {
        free(buf);
        if (too_big)
            return zl_errorf(ZL_ERR_IO,
                             "DeepSpeed config '%s' is more than the %d MiB a config may have",
                             path, ZL_CONFIG_MAX_BYTES >> 20);
        return zl_errorf(ZL_ERR_IO, "cannot read DeepSpeed config '%s'", path);
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        return zl_errorf(ZL_ERR_FORMAT, "%s: contains a NUL byte; is it a text file?", path);
    }
    zl_config_free(cfg);
    zl_status st = zl_config_parse_filled(cfg, buf, path, dp_world_size, fill);
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
