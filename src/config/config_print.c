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

/* ---- the reference: every key of the table as Markdown ------------------------------- */

static void type_text(const zl__cfg_entry *e, char *buf, size_t n)
{
    static const char *const names[] = {
        [ZL__CT_BOOL] = "bool", [ZL__CT_INT] = "int", [ZL__CT_FLOAT] = "float",
        [ZL__CT_STR] = "string", [ZL__CT_OPTBOOL] = "bool or null",
        [ZL__CT_STRLIST] = "list of strings", [ZL__CT_BETAS] = "[float, float]"};
    size_t len = 0;
    if (e->type == ZL__CT_ENUM) {
        for (int k = 0; e->choices[k] && len + 8 < n; k++)
            len += (size_t)snprintf(buf + len, n - len, "%s`\"%s\"`", k ? ", " : "one of ",
                                    e->choices[k]);
    } else {
        len = (size_t)snprintf(buf, n, "%s", names[e->type]);
    }
    bool lo = e->flags & ZL__CF_LO, hi = e->flags & ZL__CF_HI;
    if ((lo || hi) && len < n)
        len += (size_t)(lo && hi ? snprintf(buf + len, n - len, ", %.17g to %.17g", e->lo, e->hi)
                        : lo     ? snprintf(buf + len, n - len, ", >= %.17g", e->lo)
                                 : snprintf(buf + len, n - len, ", <= %.17g", e->hi));
    if ((e->flags & (ZL__CF_NULLABLE | ZL__CF_NULL_UNSET)) && e->type != ZL__CT_OPTBOOL && len < n)
        snprintf(buf + len, n - len, "%s",
                 (e->flags & ZL__CF_AUTO_NONE) ? ", or \"auto\"" : ", or null");
}

static const char *honour_text(zl__cfg_honour h)
{
    switch (h) {
    case ZL__HON_YES: return "yes";
    case ZL__HON_NO_EFFECT: return "no effect";
    case ZL__HON_REFUSED: return "refused";
    case ZL__HON_PARTLY: return "partly";
    case ZL__HON_NONE: break;
    }
    return "?";
}

zl_status zl_config_print_reference(FILE *out)
{
    zl_config cfg;
    zl_config_default(&cfg);
    char value[512], type[256], path[256];
    int undocumented = 0;
    fprintf(out,
            "# DeepSpeed config keys: the reference\n\n"
            "<!-- Generated by `zerolab config --reference` from the config reader's table\n"
            "     (src/config/config_table.c): edit the table, not this file. -->\n\n"
            "Every key zerolab's config reader knows, block by block, in the order `zerolab "
            "config`\nprints them, with its type, DeepSpeed's default (`None`: not set) and what "
            "zerolab\ndoes with it. How the file is read (comments, `\"auto\"`, aliases, the batch "
            "triad, the\nunknown-key rules) is in [config.md](config.md).\n\n"
            "The **zerolab** column: **yes**, zerolab does what DeepSpeed does with the key; **no\n"
            "effect**, the value is read and checked as DeepSpeed checks it, and training is the\n"
            "same whatever it is; **refused**, a value other than the default is an error naming\n"
            "the feature (zerolab does not build it); **partly**, some values are built and the\n"
            "others refused (the meaning says which).\n");
    const char *block = NULL;
    for (int i = 0; i < zl__cfg_ntable; i++) {
        const zl__cfg_entry *e = &zl__cfg_table[i];
        if (!block || strcmp(block, e->block)) {
            block = e->block;
            if (*block)
                fprintf(out, "\n## `%s`\n\n", block);
            else
                fprintf(out, "\n## Top level\n\n");
            const zl__cfg_block *b = zl__cfg_find_block(block);
            if (b) {
                fprintf(out, "%s", b->strict ? "An unknown key here is an error, as in DeepSpeed."
                                             : "An unknown key here is a warning (an error when "
                                               "it looks like a typo of a known key).");
                for (int k = 0; b->extra_keys && b->extra_keys[k]; k++)
                    fprintf(out, "%s`%s`", k ? ", " : " Also read here (see config.md): ",
                            b->extra_keys[k]);
                fprintf(out, "\n\n");
            }
            fprintf(out, "| key | type | default | zerolab | meaning |\n|---|---|---|---|---|\n");
        }
        /* The table's default, before the reader infers anything from other keys
         * (overlap_comm, communication_data_type). */
        if ((e->flags & ZL__CF_NULL_UNSET) ||
            ((e->type == ZL__CT_ENUM || e->type == ZL__CT_OPTBOOL) && e->def < 0))
            snprintf(value, sizeof value, "%s",
                     (e->flags & ZL__CF_AUTO_NONE) ? "\"auto\"" : "None");
        else
            value_text(&cfg, e, value, sizeof value);
        type_text(e, type, sizeof type);
        fprintf(out, "| `%s` | %s | `%s` | %s | %s",
                zl__cfg_join(path, sizeof path, e->block, e->key), type, value,
                honour_text(e->honour), e->doc ? e->doc : "(undocumented)");
        if (e->alias) fprintf(out, " (also spelt `%s`)", e->alias);
        if (e->sched_mask) {
            fprintf(out, " [");
            for (int t = 0, k = 0; t < 32; t++)
                if (e->sched_mask & (1u << t))
                    fprintf(out, "%s%s", k++ ? ", " : "",
                            zl_lr_schedule_name((zl_lr_schedule_type)t));
            fprintf(out, "]");
        }
        fprintf(out, " |\n");
        if (!e->doc || e->honour == ZL__HON_NONE) undocumented++;
    }
    fprintf(out, "\n## DeepSpeed features zerolab refuses\n\n"
                 "Accepted when absent or off; an error naming the feature when on.\n\n"
                 "| key | refused when | feature |\n|---|---|---|\n");
    for (int k = 0; k < zl__cfg_nunsupported; k++) {
        const zl__cfg_unsupported *u = &zl__cfg_unsupported_keys[k];
        fprintf(out, "| `%s` | %s | %s |\n", u->key,
                u->rule == ZL__UNSUP_ENABLED    ? "any `\"enabled\": true` inside"
                : u->rule == ZL__UNSUP_NONEMPTY ? "not empty"
                                                : "`true`",
                u->what);
    }
    fprintf(out, "\nRead and accepted with no effect on training:");
    for (int k = 0; zl__cfg_other_top_keys[k]; k++)
        fprintf(out, "%s`%s`", k ? ", " : " ", zl__cfg_other_top_keys[k]);
    fprintf(out, ".\n");
    zl_config_free(&cfg);
    if (undocumented)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%d config setting%s without a meaning or honoured state\n  hint: end "
                         "each row of src/config/config_table.c with DOC(...)",
                         undocumented, undocumented == 1 ? "" : "s");
    return ZL_OK;
}
