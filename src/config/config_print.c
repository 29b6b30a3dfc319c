/* `zerolab config FILE`: every resolved setting, DeepSpeed-style
 *     DeepSpeedEngine configuration:
 *       train_batch_size ........ 32 (inferred: ...)
 * DeepSpeed pads names with dots to column 29; zerolab's names are dotted paths and can be
 * longer, so the column is 29 or the longest name plus one, whichever is wider. Values are
 * printed as JSON (true, "cpu", null as None) so they can be pasted back into a config. */
#include <math.h>
#include <string.h>

#include "config/config_internal.h"

static const char *source_text(const zl_config_origin *o, char *buf, size_t n)
{
    switch (o->source) {
    case ZL_CFG_DEFAULT: return "(default)";
    case ZL_CFG_FILE: return "(file)";
    case ZL_CFG_AUTO: return "(auto)";
    case ZL_CFG_CLI:
        if (!o->alias) return "(command line)";
        snprintf(buf, n, "(%s %s)", o->was_auto ? "auto, filled by" : "command line:", o->alias);
        return buf;
    case ZL_CFG_ALIAS: snprintf(buf, n, "(alias: %s)", o->alias ? o->alias : "?"); return buf;
    case ZL_CFG_INFERRED:
        snprintf(buf, n, "(%sinferred%s%s)", o->was_auto ? "auto, " : "", o->alias ? ": " : "",
                 o->alias ? o->alias : "");
        return buf;
    }
    return "";
}

static void value_text(const zl_config *cfg, const zl__cfg_entry *e, char *buf, size_t n)
{
    const void *p = (const char *)cfg + e->off;
    const char *none = (e->flags & ZL__CF_AUTO_NONE) ? "\"auto\"" : "None";
    switch (e->type) {
    case ZL__CT_BOOL: snprintf(buf, n, "%s", *(const bool *)p ? "true" : "false"); break;
    case ZL__CT_OPTBOOL: {
        int v = *(const int *)p;
        snprintf(buf, n, "%s", v < 0 ? none : v ? "true" : "false");
        break;
    }
    case ZL__CT_INT: {
        int64_t v = *(const int64_t *)p;
        if ((e->flags & ZL__CF_NULLABLE) && v == (int64_t)e->def)
            snprintf(buf, n, "%s", none);
        else
            snprintf(buf, n, "%lld", (long long)v);
        break;
    }
    case ZL__CT_FLOAT: {
        double v = *(const double *)p;
        if (isnan(v)) {
            snprintf(buf, n, "%s", none);
        } else {
            snprintf(buf, n, "%.10g", v);
            if (!strpbrk(buf, ".en") && strlen(buf) + 2 < n) strcat(buf, ".0"); /* 1.0, not 1 */
        }
        break;
    }
    case ZL__CT_ENUM: {
        int v = *(const int *)p;
        if (v < 0)
            snprintf(buf, n, "%s", none);
        else
            snprintf(buf, n, "\"%s\"", e->choices[v]);
        break;
    }
    case ZL__CT_STR: {
        const char *s = *(char *const *)p;
        if (!s)
            snprintf(buf, n, "%s", none);
        else
            snprintf(buf, n, (e->flags & ZL__CF_SECRET) ? "\"***\"" : "\"%s\"", s);
        break;
    }
    case ZL__CT_STRLIST: {
        const char *s = *(char *const *)p;
        size_t len = (size_t)snprintf(buf, n, "[");
        for (const char *c = s; c && *c && len + 4 < n;) {
            size_t w = strcspn(c, ",");
            len += (size_t)snprintf(buf + len, n - len, "%s\"%.*s\"", c == s ? "" : ", ", (int)w,
                                    c);
            c += w + (c[w] == ',');
        }
        if (len + 1 < n) snprintf(buf + len, n - len, "]");
        break;
    }
    case ZL__CT_BETAS:
        snprintf(buf, n, "[%.10g, %.10g]", *(const double *)p,
                 *(const double *)((const char *)cfg + e->off2));
        break;
    }
}

/* Rows that do not apply to this config: optimizer params without an optimizer block,
 * parameters of schedules other than the chosen one. */
static bool applies(const zl_config *cfg, const zl__cfg_entry *e)
{
    if (!strncmp(e->block, "optimizer", 9)) return cfg->optimizer_given;
    if (!strcmp(e->block, "scheduler.params"))
        return cfg->scheduler_given && (e->sched_mask & (1u << cfg->scheduler.type));
    return true;
}

static void line(FILE *out, int width, const char *name, const char *value, const char *src)
{
    int dots = width - (int)strlen(name);
    fprintf(out, "  %s %.*s %s%s%s\n", name, dots > 0 ? dots : 0,
            "......................................................................", value,
            *src ? " " : "", src);
}

void zl_config_print(const zl_config *cfg, FILE *out)
{
    char name[256], value[512], src[256];
    int width = 29;
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        int len = (int)strlen(zl__cfg_join(name, sizeof name, e->block, e->key));
        if (len + 1 > width) width = len + 1;
    }
    fprintf(out, "DeepSpeedEngine configuration:\n");
    if (cfg->name) line(out, width, "config_file", cfg->name, "");
    bool opt_done = false, sched_done = false;
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (!opt_done && !strncmp(e->block, "optimizer", 9)) {
            opt_done = true;
            if (cfg->optimizer_name) snprintf(value, sizeof value, "\"%s\"", cfg->optimizer_name);
            line(out, width, "optimizer.type", cfg->optimizer_name ? value : "None",
                 cfg->optimizer_given ? "(file)" : "(default)");
        }
        if (!sched_done && !strncmp(e->block, "scheduler", 9)) {
            sched_done = true;
            snprintf(value, sizeof value, "\"%s\"", zl_lr_schedule_name(cfg->scheduler.type));
            line(out, width, "scheduler.type", cfg->scheduler_given ? value : "None",
                 cfg->scheduler_given ? "(file)" : "(default)");
        }
        if (!applies(cfg, e)) continue;
        value_text(cfg, e, value, sizeof value);
        line(out, width, zl__cfg_join(name, sizeof name, e->block, e->key), value,
             source_text(&cfg->origin[i], src, sizeof src));
        if (i == 2) { /* after the batch triad: the world size it was resolved with */
            snprintf(value, sizeof value, "%d", cfg->dp_world_size);
            line(out, width, "world_size", cfg->dp_world_size ? value : "None",
                 cfg->dp_world_size ? "(caller: data-parallel size)" : "(not resolved yet)");
        }
    }
    if (cfg->nwarnings) fprintf(out, "warnings:\n");
    for (int i = 0; i < cfg->nwarnings; i++) fprintf(out, "  %s\n", cfg->warnings[i]);
}

/* The object at dotted path `block` under root, created on the way ("" is root). */
static json_t *block_object(json_t *root, const char *block)
{
    json_t *obj = root;
    char part[128];
    for (const char *c = block; *c;) {
        size_t w = strcspn(c, ".");
        if (w >= sizeof part) return NULL;
        memcpy(part, c, w);
        part[w] = '\0';
        json_t *next = json_object_get(obj, part);
        if (!next) {
            next = json_object();
            if (!next || json_object_set_new(obj, part, next) != 0) return NULL;
        }
        obj = next;
        c += w + (c[w] == '.');
    }
    return obj;
}

/* value_text already writes JSON (None as the word None): read it back as a value. */
static json_t *value_json(const zl_config *cfg, const zl__cfg_entry *e)
{
    char text[512];
    value_text(cfg, e, text, sizeof text);
    if (!strcmp(text, "None")) return json_null();
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

zl_status zl_config_print_json(const zl_config *cfg, FILE *out)
{
    json_t *root = json_object();
    bool ok = root != NULL;
    for (int i = 0; ok && i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (!applies(cfg, e)) continue;
        /* The type comes first in its block, as a config is written. */
        if (!strncmp(e->block, "optimizer", 9) && !json_object_get(root, "optimizer")) {
            json_t *o = block_object(root, "optimizer");
            ok = o && cfg->optimizer_name &&
                 json_object_set_new(o, "type", json_string(cfg->optimizer_name)) == 0;
        }
        if (!strncmp(e->block, "scheduler", 9) && !json_object_get(root, "scheduler")) {
            json_t *o = block_object(root, "scheduler");
            ok = ok && o &&
                 json_object_set_new(o, "type",
                                     json_string(zl_lr_schedule_name(cfg->scheduler.type))) == 0;
        }
        json_t *obj = block_object(root, e->block), *v = value_json(cfg, e);
        ok = obj && v && json_object_set_new(obj, e->key, v) == 0;
    }
    if (!ok) {
        json_decref(root);
        return zl_errorf(ZL_ERR_NOMEM, "out of memory printing the config as JSON");
    }
    /* An activation_checkpointing block of defaults is left out: given, the block draws a
     * note that nothing turns checkpointing on, which a config that never had one would
     * then get when read back. */
    const zl_config_activation_checkpointing *ac = &cfg->activation_checkpointing;
    if (!ac->partition_activations && !ac->cpu_checkpointing && !ac->contiguous_memory_optimization &&
        !ac->number_checkpoints && !ac->synchronize_checkpoint_boundary && !ac->profile)
        json_object_del(root, "activation_checkpointing");
    /* Ten significant digits, as the table view prints them: 3e-05, not 3.0000000000000001e-05. */
    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (rc != 0 || fputc('\n', out) == EOF)
        return zl_errorf(ZL_ERR_IO, "cannot write the config as JSON");
    return ZL_OK;
}
