/* Filling Hugging Face "auto" values from the caller (zl_config_fill, config.h).
 *
 * The HF Trainer writes its TrainingArguments into the DeepSpeed config before DeepSpeed
 * reads it: fill_match puts a value where the config says "auto" and collects every
 * concrete value that differs ("Please correct the following DeepSpeed config values that
 * mismatch TrainingArguments values"); fill_only sets warmup_min_lr to 0. Here the config
 * is already read, and each row's origin tells what the file said: ZL_CFG_AUTO ("auto"),
 * ZL_CFG_FILE / ZL_CFG_ALIAS (a concrete value) or ZL_CFG_DEFAULT (absent). A filled value
 * becomes ZL_CFG_CLI, its origin naming the flag. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "config/config_internal.h"

/* The keys zl_config_fill fills, their flag in the CLI and HF's TrainingArguments name. */
typedef struct fill_key {
    const char *path, *flag, *hf;
} fill_key;

static const fill_key fill_keys[] = {
    {"train_micro_batch_size_per_gpu", "--micro-batch", "per_device_train_batch_size"},
    {"gradient_accumulation_steps", "--grad-accum", "gradient_accumulation_steps"},
    {"train_batch_size", "--train-batch-size", "world size x micro batch x accumulation"},
    {"optimizer.params.lr", "--lr", "learning_rate"},
    {"scheduler.params.warmup_max_lr", "--lr", "learning_rate"},
    {"scheduler.params.total_num_steps", "--total-steps", "num_training_steps"},
    {"scheduler.params.warmup_num_steps", "--warmup-steps", "warmup_steps"},
};
enum { K_MB, K_GAS, K_TB, K_LR, K_WMAX, K_TOTAL, K_WARMUP, K_COUNT };

/* Does the row matter for this config? Scheduler params only for the chosen schedule. */
static bool applies(const zl_config *cfg, int row)
{
    const zl__cfg_entry *e = &zl__cfg_table[row];
    if (strcmp(e->block, "scheduler.params")) return true;
    return cfg->scheduler_given && (e->sched_mask & (1u << cfg->scheduler.type));
}

static bool concrete(const zl_config_origin *o)
{
    return o->source == ZL_CFG_FILE || o->source == ZL_CFG_ALIAS || o->source == ZL_CFG_CLI;
}

typedef struct fill_state {
    zl__cfg_reader *r;
    const zl_config_fill *fill;
    char mismatch[2048];
    size_t len;
    int nmismatch;
} fill_state;

/* One key: fill it, or record a mismatch. `v` is the given value as JSON. */
static zl_status fill_one(fill_state *s, int k, json_t *v)
{
    zl__cfg_reader *r = s->r;
    zl_config *cfg = r->cfg;
    const fill_key *fk = &fill_keys[k];
    int i = zl__cfg_find_path(fk->path);
    ZL_ASSERT(i >= 0);
    const zl__cfg_entry *e = &zl__cfg_table[i];
    zl_config_origin before = cfg->origin[i];
    zl_status st = ZL_OK;
    if (!v) return zl_errorf(ZL_ERR_NOMEM, "out of memory");
    if (!applies(cfg, i)) goto done;
    if (concrete(&before) && !s->fill->override_file) {
        const void *p = zl__cfg_ptr(cfg, e->off);
        bool same = e->type == ZL__CT_INT ? *(const int64_t *)p == json_integer_value(v)
                                          : *(const double *)p == json_number_value(v);
        if (!same && s->len < sizeof s->mismatch) {
            char have[64], at[300] = "";
            if (e->type == ZL__CT_INT)
                snprintf(have, sizeof have, "%lld", (long long)*(const int64_t *)p);
            else
                snprintf(have, sizeof have, "%.10g", *(const double *)p);
            if (before.line) snprintf(at, sizeof at, "%s:%d: ", r->name, before.line);
            char want[64];
            if (e->type == ZL__CT_INT)
                snprintf(want, sizeof want, "%lld", (long long)json_integer_value(v));
            else
                snprintf(want, sizeof want, "%.10g", json_number_value(v));
            s->len += (size_t)snprintf(s->mismatch + s->len, sizeof s->mismatch - s->len,
                                       "\n  %s%s is %s in the config, %s gives %s", at,
                                       fk->path, have, fk->flag, want);
            s->nmismatch++;
        }
        goto done;
    }
    st = zl__cfg_read_value(r, i, e->key, v, ZL_CFG_CLI);
    if (st == ZL_OK)
        cfg->origin[i] = (zl_config_origin){ZL_CFG_CLI, before.line, fk->flag,
                                            before.source == ZL_CFG_AUTO || before.was_auto};
done:
    json_decref(v);
    return st;
}

/* The built-in config with a triad flag: the flags are the triad now. The built-in micro
 * batch stays only when no flag says what the micro batch is (then --grad-accum alone
 * scales the global batch). */
static void clear_triad(zl_config *cfg, const zl_config_fill *f)
{
    static const char *const triad[] = {"train_batch_size", "train_micro_batch_size_per_gpu",
                                        "gradient_accumulation_steps"};
    for (int k = 0; k < 3; k++) {
        if (k == 1 && !f->micro_batch && !f->train_batch_size) continue;
        int i = zl__cfg_find_path(triad[k]);
        *(int64_t *)zl__cfg_ptr(cfg, zl__cfg_table[i].off) = 0;
        cfg->origin[i] = (zl_config_origin){ZL_CFG_DEFAULT, 0, NULL, false};
    }
}

zl_status zl__cfg_fill(zl__cfg_reader *r, const zl_config_fill *fill)
{
    static const zl_config_fill none;
    zl_config *cfg = r->cfg;
    if (!fill) fill = &none;
    fill_state s = {.r = r, .fill = fill};
    zl_status st = ZL_OK;

    if (fill->override_file && (fill->micro_batch || fill->grad_accum || fill->train_batch_size))
        clear_triad(cfg, fill);
    if (fill->micro_batch) st = fill_one(&s, K_MB, json_integer(fill->micro_batch));
    if (st == ZL_OK && fill->grad_accum) st = fill_one(&s, K_GAS, json_integer(fill->grad_accum));
    if (st == ZL_OK && fill->train_batch_size)
        st = fill_one(&s, K_TB, json_integer(fill->train_batch_size));
    if (st == ZL_OK && fill->has_lr) st = fill_one(&s, K_LR, json_real(fill->lr));
    if (st == ZL_OK && fill->has_lr) st = fill_one(&s, K_WMAX, json_real(fill->lr));
    if (st == ZL_OK && fill->total_steps)
        st = fill_one(&s, K_TOTAL, json_integer(fill->total_steps));
    if (st == ZL_OK && fill->has_warmup_steps)
        st = fill_one(&s, K_WARMUP, json_integer(fill->warmup_steps));
    if (st != ZL_OK) return st;
    if (s.nmismatch)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s: %d config value%s disagree%s with the command line (the Hugging "
                         "Face Trainer refuses %s too):%s\n  hint: set %s to \"auto\" in the "
                         "config so that the flags fill %s, or leave the flags out",
                         r->name, s.nmismatch, s.nmismatch == 1 ? "" : "s",
                         s.nmismatch == 1 ? "s" : "", s.nmismatch == 1 ? "it" : "them",
                         s.mismatch, s.nmismatch == 1 ? "it" : "them",
                         s.nmismatch == 1 ? "it" : "them");

    /* Flags that found nothing to fill: say so rather than drop them silently. */
    const char *sched = zl_lr_schedule_name(cfg->scheduler.type);
    int itotal = zl__cfg_find_path(fill_keys[K_TOTAL].path);
    int iwarm = zl__cfg_find_path(fill_keys[K_WARMUP].path);
    if (fill->total_steps && !applies(cfg, itotal))
        zl__cfg_warn(r, NULL, "%s: --total-steps has no effect: %s has no total_num_steps",
                     r->name, cfg->scheduler_given ? sched : "the config has no scheduler, so it");
    if (fill->has_warmup_steps && !applies(cfg, iwarm))
        zl__cfg_warn(r, NULL, "%s: --warmup-steps has no effect: %s has no warmup_num_steps",
                     r->name, cfg->scheduler_given ? sched : "the config has no scheduler, so it");

    /* HF's fill_only: "auto" in warmup_min_lr is 0 (the row's default already). */
    /* Unfilled "auto": every one in one message. The triad is inferred instead (see config.h)
     * and warmup_max_lr follows optimizer.params.lr (zl__cfg_derive). */
    char unfilled[2048];
    size_t len = 0;
    int n = 0;
    /* The triad can be inferred unless neither the micro batch nor the global batch is known:
     * then its "auto" keys are unfilled too. */
    const zl_config_origin *omb = &cfg->origin[zl__cfg_find_path(fill_keys[K_MB].path)];
    const zl_config_origin *otb = &cfg->origin[zl__cfg_find_path(fill_keys[K_TB].path)];
    bool triad_unknown = !concrete(omb) && !concrete(otb);
    for (int k = 0; k < K_COUNT; k++) {
        if (k == K_WMAX || (k <= K_TB && !triad_unknown)) continue;
        int i = zl__cfg_find_path(fill_keys[k].path);
        const zl_config_origin *o = &cfg->origin[i];
        if (o->source != ZL_CFG_AUTO || !applies(cfg, i) || len >= sizeof unfilled) continue;
        char at[300] = "";
        if (o->line) snprintf(at, sizeof at, "%s:%d: ", r->name, o->line);
        len += (size_t)snprintf(unfilled + len, sizeof unfilled - len,
                                "\n  %s%s is \"auto\": give %s (the Hugging Face Trainer fills "
                                "it from %s)",
                                at, fill_keys[k].path, fill_keys[k].flag, fill_keys[k].hf);
        n++;
    }
    if (n)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s: %d \"auto\" value%s that nothing filled:%s\n  hint: give the "
                         "flag%s named, or write %s into the config",
                         r->name, n, n == 1 ? "" : "s", unfilled, n == 1 ? "" : "s",
                         n == 1 ? "a value" : "values");
    return ZL_OK;
}
