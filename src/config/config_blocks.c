/* Block rules beyond the generic table read: zero_optimization (legacy boolean form,
 * deprecated keys, ZeRO++/MiCS/partial offload), fp16/bf16 (the "bfloat16" alias, the
 * conflict assertion, dynamic-scaler checks), and DeepSpeed features zerolab does not
 * implement, which must never be ignored silently when they would change training. */
#include <string.h>

#include "config/config_internal.h"

static int line_of(const zl__cfg_reader *r, const char *block, const char *key)
{
    char path[256];
    return zl__cfg_line(r, zl__cfg_join(path, sizeof path, block, key));
}

static zl_status unsupported(zl__cfg_reader *r, const char *path, const char *what,
                             const char *fix)
{
    return zl__cfg_fail(r, ZL_ERR_UNSUPPORTED,
                        path, "%s is a DeepSpeed feature zerolab does not implement\nhint: %s",
                        what, fix);
}

/* Mark row `path` as set from another key of the file (deprecated or legacy form). */
static void set_origin_alias(zl__cfg_reader *r, const char *row_path, const char *alias,
                             int line)
{
    int i = zl__cfg_find_path(row_path);
    if (i >= 0) r->cfg->origin[i] = (zl_config_origin){ZL_CFG_ALIAS, line, alias, false};
}

/* ---- zero_optimization ------------------------------------------------------------------ */

/* "zero_optimization": true|false, DeepSpeed's oldest form: stage 1 with the top-level
 * allgather_size as bucket size. */
static zl_status read_zero_legacy(zl__cfg_reader *r, const json_t *root, bool on)
{
    zl_config *cfg = r->cfg;
    int line = zl__cfg_line(r, "zero_optimization");
    cfg->zero.stage = on ? 1 : 0;
    set_origin_alias(r, "zero_optimization.stage", on ? "zero_optimization: true"
                                                      : "zero_optimization: false", line);
    const json_t *ag = json_object_get(root, "allgather_size");
    if (on && ag && !zl__cfg_is_auto(ag)) {
        if (!json_is_number(ag) || json_number_value(ag) < 0)
            return zl__cfg_fail(r, ZL_ERR_CONFIG, "allgather_size",
                                "expected a non-negative integer, got %s", zl__cfg_show(ag));
        cfg->zero.allgather_bucket_size = (int64_t)json_number_value(ag);
        set_origin_alias(r, "zero_optimization.allgather_bucket_size", "allgather_size",
                         zl__cfg_line(r, "allgather_size"));
    }
    zl__cfg_warn(r, "zero_optimization",
                 "the boolean form is deprecated (%s means ZeRO stage %d); write "
                 "\"zero_optimization\": {\"stage\": %d}",
                 on ? "true" : "false", on ? 1 : 0, on ? 1 : 0);
    return ZL_OK;
}

typedef struct deprecated_key {
    const char *old_key;
    const char *new_key;   /* as DeepSpeed's message names it */
    const char *row;       /* row set from the old value; NULL = warning only */
    const char *const given_as[3]; /* keys that count as "the new parameter was given" */
} deprecated_key;

static const deprecated_key deprecated[] = {
    {"cpu_offload", "offload_optimizer", "zero_optimization.offload_optimizer.device",
     {"offload_optimizer", NULL}},
    {"cpu_offload_param", "offload_param", "zero_optimization.offload_param.device",
     {"offload_param", NULL}},
    {"cpu_offload_use_pin_memory", "offload_param or offload_optimizer", NULL, {NULL}},
    {"stage3_gather_fp16_weights_on_model_save", "gather_16bit_weights_on_model_save",
     "zero_optimization.stage3_gather_16bit_weights_on_model_save",
     {"stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save", NULL}},
};

static zl_status read_deprecated(zl__cfg_reader *r, const json_t *z)
{
    for (size_t k = 0; k < sizeof deprecated / sizeof deprecated[0]; k++) {
        const deprecated_key *d = &deprecated[k];
        const json_t *v = json_object_get(z, d->old_key);
        if (!v || zl__cfg_is_auto(v)) continue;
        char path[256];
        zl__cfg_join(path, sizeof path, "zero_optimization", d->old_key);
        bool on = false;
        if (!json_is_null(v) && !json_is_boolean(v))
            return zl__cfg_fail(r, ZL_ERR_CONFIG, path, "expected true or false, got %s",
                                zl__cfg_show(v));
        on = json_is_true(v);
        zl__cfg_warn(r, path, "Config parameter %s is deprecated use %s instead", d->old_key,
                     d->new_key);
        if (!d->row) continue;
        for (int g = 0; d->given_as[g]; g++)
            if (json_object_get(z, d->given_as[g]))
                return zl__cfg_fail(r, ZL_ERR_CONFIG, path,
                                    "Cannot provide deprecated parameter '%s' and replacing "
                                    "parameter '%s' together\nhint: remove '%s'",
                                    d->old_key, d->new_key, d->old_key);
        int i = zl__cfg_find_path(d->row);
        void *p = zl__cfg_ptr(r->cfg, zl__cfg_table[i].off);
        if (zl__cfg_table[i].type == ZL__CT_ENUM)
            *(int *)p = on ? ZL_OFFLOAD_CPU : ZL_OFFLOAD_NONE; /* cpu_offload: true -> cpu */
        else
            *(bool *)p = on;
        r->cfg->origin[i] = (zl_config_origin){ZL_CFG_ALIAS, zl__cfg_line(r, path), d->old_key,
                                               false};
    }
    return ZL_OK;
}

/* ZeRO++, MiCS, ZenFlow, partial and super offload: accepted only at their defaults. */
static zl_status check_zero_features(zl__cfg_reader *r, const json_t *z)
{
    const zl_config_zero *c = &r->cfg->zero;
    static const char *const zpp[] = {"zero_quantized_weights",
                                      "zero_quantized_nontrainable_weights",
                                      "zero_quantized_gradients"};
    const bool zpp_on[] = {c->zero_quantized_weights, c->zero_quantized_nontrainable_weights,
                           c->zero_quantized_gradients};
    char path[256], what[128];
    for (int k = 0; k < 3; k++) {
        if (!zpp_on[k]) continue;
        snprintf(what, sizeof what, "ZeRO++ quantization (%s)", zpp[k]);
        return unsupported(r, zl__cfg_join(path, sizeof path, "zero_optimization", zpp[k]), what,
                           "set it to false");
    }
    if (c->zero_hpz_partition_size > 1)
        return unsupported(r, "zero_optimization.zero_hpz_partition_size",
                           "ZeRO++ hierarchical partitioning (hpZ)", "set it to 1");
    if (c->mics_shard_size > 0)
        return unsupported(r, "zero_optimization.mics_shard_size", "MiCS sharding",
                           "remove mics_shard_size (default -1)");
    if (c->mics_hierarchical_params_gather)
        return unsupported(r, "zero_optimization.mics_hierarchical_params_gather",
                           "MiCS hierarchical gather", "set it to false");
    static const char *const objs[][2] = {{"zeropp_loco_param", "ZeRO++ LoCo"},
                                          {"zenflow", "ZenFlow"},
                                          {"leaf_module", "ZeRO-3 leaf modules"}};
    for (int k = 0; k < 3; k++) {
        const json_t *v = json_object_get(z, objs[k][0]);
        if (!v || json_is_null(v) || zl__cfg_is_auto(v) ||
            (json_is_object(v) && json_object_size(v) == 0))
            continue;
        return unsupported(r, zl__cfg_join(path, sizeof path, "zero_optimization", objs[k][0]),
                           objs[k][1], "remove the key");
    }
    const json_t *ls1 = json_object_get(z, "legacy_stage1");
    if (ls1 && !json_is_boolean(ls1) && !zl__cfg_is_auto(ls1))
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "zero_optimization.legacy_stage1",
                            "expected true or false, got %s", zl__cfg_show(ls1));
    if (json_is_true(ls1))
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "zero_optimization.legacy_stage1",
                            "The deprecated version of ZeRO Stage 1 is not supported in deepspeed "
                            ">= 0.5.9\nhint: remove legacy_stage1");
    const zl_config_offload_optimizer *oo = &c->offload_optimizer;
    if (oo->ratio < 1.0 && c->stage != 3)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "zero_optimization.offload_optimizer.ratio",
                            "Partial offloading only supported for ZeRO Stage 3.");
    if (oo->ratio < 1.0)
        return unsupported(r, "zero_optimization.offload_optimizer.ratio",
                           "partial optimizer offload (ratio < 1)", "remove ratio (default 1.0)");
    if (oo->super_offload)
        return unsupported(r, "zero_optimization.offload_optimizer.super_offload",
                           "SuperOffload", "set it to false");
    if (c->offload_param.device != ZL_OFFLOAD_NONE && c->stage < 3)
        zl__cfg_warn(r, "zero_optimization.offload_param",
                     "offload_param only applies to ZeRO stage 3 and is ignored at stage %lld "
                     "(as in DeepSpeed)",
                     (long long)c->stage);
    if (c->elastic_checkpoint && c->stage == 3)
        zl__cfg_warn(r, "zero_optimization.elastic_checkpoint",
                     "ZeRO-3 elastic checkpointing is deprecated and no longer supported. Use "
                     "Universal Checkpointing instead.");
    return ZL_OK;
}

zl_status zl__cfg_read_zero(zl__cfg_reader *r, const json_t *root)
{
    const json_t *z = json_object_get(root, "zero_optimization");
    if (!z || json_is_null(z)) return ZL_OK;
    if (json_is_boolean(z)) return read_zero_legacy(r, root, json_is_true(z));
    zl_status st = zl__cfg_expect_object(r, z, "zero_optimization");
    if (st == ZL_OK) st = zl__cfg_read_block(r, z, "zero_optimization", 0, NULL);
    if (st == ZL_OK) st = read_deprecated(r, z);
    if (st == ZL_OK) st = check_zero_features(r, z);
    return st;
}

/* ---- fp16 / bf16 ------------------------------------------------------------------------ */

zl_status zl__cfg_read_precision(zl__cfg_reader *r, const json_t *root)
{
    zl_config *cfg = r->cfg;
    const json_t *old = json_object_get(root, "bfloat16");
    if (old && json_object_get(root, "bf16")) {
        zl__cfg_warn(r, "bfloat16",
                     "'bfloat16' is ignored because 'bf16' is also given (DeepSpeed reads only "
                     "'bf16' then)");
    } else if (old && !json_is_null(old)) {
        /* DeepSpeed's old name for the bf16 block. */
        zl_status st = zl__cfg_expect_object(r, old, "bfloat16");
        if (st != ZL_OK) return st;
        r->block_alias = "bfloat16";
        st = zl__cfg_read_block(r, old, "bf16", 0, NULL);
        r->block_alias = NULL;
        if (st != ZL_OK) return st;
    }
    if (cfg->fp16.enabled && cfg->bf16.enabled) {
        const char *bf = old && !json_object_get(root, "bf16") ? "bfloat16" : "bf16";
        char path[32];
        snprintf(path, sizeof path, "%s.enabled", bf);
        return zl__cfg_fail(r, ZL_ERR_CONFIG, path,
                            "bfloat16 and fp16 modes cannot be simultaneously enabled "
                            "(fp16.enabled at line %d, %s.enabled at line %d)\nhint: enable "
                            "only one of them",
                            line_of(r, "fp16", "enabled"), bf, line_of(r, bf, "enabled"));
    }
    /* DeepSpeed's dynamic loss scaler divides by the window and halves down to the minimum. */
    if (cfg->fp16.enabled && cfg->fp16.loss_scale == 0) {
        if (cfg->fp16.loss_scale_window <= 0)
            return zl__cfg_fail(r, ZL_ERR_CONFIG, "fp16.loss_scale_window",
                                "must be > 0 for dynamic loss scaling, got %lld",
                                (long long)cfg->fp16.loss_scale_window);
        if (cfg->fp16.min_loss_scale <= 0)
            return zl__cfg_fail(r, ZL_ERR_CONFIG, "fp16.min_loss_scale",
                                "must be > 0 for dynamic loss scaling, got %lld",
                                (long long)cfg->fp16.min_loss_scale);
    }
    return ZL_OK;
}

/* ---- features zerolab does not implement --------------------------------------------------- */

/* Any "enabled" (or DeepCompile's "deepcompile") set to true, at any depth. */
static bool any_enabled(const json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) if (any_enabled(it)) return true;
        return false;
    }
    if (!json_is_object(v)) return false;
    const char *k;
    json_t *it;
    json_object_foreach((json_t *)v, k, it) {
        if ((!strcmp(k, "enabled") || !strcmp(k, "deepcompile")) && json_is_true(it)) return true;
        if (any_enabled(it)) return true;
    }
    return false;
}

static bool nonempty(const char *key, const json_t *v)
{
    if (json_is_object(v)) return json_object_size(v) > 0 && !zl__cfg_is_auto(v);
    return !json_is_null(v) && !json_is_false(v);
}

/* DeepSpeed validates "compile" with pydantic (extra="forbid"): its keys are those of
 * compile/config.py's CompileConfig, plus enabled/backend/kwargs of the torch.compile
 * wrapper (runtime/compiler.py). Every unknown key is named, in one error. */
static const char *const compile_keys[] = {
    "enabled", "backend", "kwargs", "deepcompile", "free_activation",
    "free_activation_threshold", "offload_activation", "offload_opt_states", "double_buffer",
    "symmetric_memory", "debug_log", "offload_parameters", "sync_before_reduce",
    "sync_after_reduce", "sync_before_allgather", "sync_after_allgather",
    "keep_int_input_tensors", "keep_all_input_tensors", "passes", NULL};

static zl_status check_compile_keys(zl__cfg_reader *r, const json_t *c)
{
    if (!json_is_object(c)) return ZL_OK;
    int ncand = 0;
    while (compile_keys[ncand]) ncand++;
    char list[2048] = "";
    size_t len = 0;
    int nbad = 0, first_line = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c, key, v) {
        if (zl__cfg_in_list(compile_keys, key)) continue;
        char path[256];
        int line = zl__cfg_line(r, zl__cfg_join(path, sizeof path, "compile", key));
        const char *sugg = zl__cfg_suggest(key, compile_keys, ncand);
        if (!nbad++) first_line = line;
        if (len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len,
                                    "\n  %s:%d: unknown key '%s' in 'compile'%s%s%s", r->name,
                                    line, key, sugg ? " (did you mean '" : "", sugg ? sugg : "",
                                    sugg ? "'?)" : "");
    }
    if (!nbad) return ZL_OK;
    return zl_errorf(ZL_ERR_CONFIG,
                     "%s:%d: %d unknown key%s in 'compile'; DeepSpeed rejects %s too (extra "
                     "inputs are not permitted):%s",
                     r->name, first_line, nbad, nbad == 1 ? "" : "s", nbad == 1 ? "it" : "them",
                     list);
}

/* activation_checkpointing says how activations are checkpointed; whether they are is
 * pipeline.activation_checkpoint_interval's (or zerolab train --checkpoint-activations):
 * the engine walks the layers itself, so there is no model code to call checkpoint().
 * A block without the interval would silently do nothing: say how to turn it on. */
static void note_activation_checkpointing(zl__cfg_reader *r, const json_t *root)
{
    const json_t *ac = json_object_get(root, "activation_checkpointing");
    if (!ac || json_is_null(ac)) return;
    if (r->cfg->pipeline.activation_checkpoint_interval > 0 ||
        r->cfg->zerolab.checkpoint_activations > 0) {
        if (r->cfg->activation_checkpointing.partition_activations)
            zl__cfg_warn(r, "activation_checkpointing.partition_activations",
                         "partitions the checkpoints across model-parallel ranks: with "
                         "model-parallel size 1 there is nothing to partition (no effect)");
        return;
    }
    zl__cfg_warn(r, "activation_checkpointing",
                 "configures how activations are checkpointed, but nothing turns it on\n"
                 "  hint: set \"pipeline\": {\"activation_checkpoint_interval\": 1} (layers "
                 "per segment) or \"zerolab\": {\"checkpoint_activations\": 1}, or pass "
                 "--checkpoint-activations to zerolab train/plan");
}

zl_status zl__cfg_check_unsupported(zl__cfg_reader *r, const json_t *root)
{
    zl_status cst = check_compile_keys(r, json_object_get(root, "compile"));
    if (cst == ZL_OK) note_activation_checkpointing(r, root);
    if (cst != ZL_OK) return cst;
    for (int k = 0; k < zl__cfg_nunsupported; k++) {
        const zl__cfg_unsupported *u = &zl__cfg_unsupported_keys[k];
        const json_t *v = json_object_get(root, u->key);
        if (!v) continue;
        bool on = u->rule == ZL__UNSUP_ENABLED    ? any_enabled(v)
                  : u->rule == ZL__UNSUP_NONEMPTY ? nonempty(u->key, v)
                                                  : json_is_true(v);
        if (on) {
            char fix[160];
            snprintf(fix, sizeof fix, "remove \"%s\" (or disable it) to train without %s", u->key,
                     u->what);
            return unsupported(r, u->key, u->what, fix);
        }
    }
    const zl_config *cfg = r->cfg;
    if (cfg->sequence_parallel_size > 1)
        return unsupported(r, "sequence_parallel_size", "Ulysses sequence parallelism",
                           "set it to 1");
    if (cfg->aio.use_gds)
        return unsupported(r, "aio.use_gds", "GPUDirect Storage", "set it to false");
    /* thread_count: intra_op_parallelism's name before DeepSpeed PR #7056 (Feb 2025),
     * which now ignores it; the configs written for the DeepSpeed before it (and its docs,
     * still) mean the worker threads by it, so zerolab reads it as an alias unless the new
     * name is given too, and says so. */
    const json_t *aio = json_object_get(root, "aio");
    const json_t *tc = json_is_object(aio) ? json_object_get(aio, "thread_count") : NULL;
    if (tc) {
        if (json_object_get(aio, "intra_op_parallelism") || !json_is_integer(tc) ||
            json_integer_value(tc) < 1 || json_integer_value(tc) > 256)
            zl__cfg_warn(r, "aio.thread_count",
                         "thread_count was renamed intra_op_parallelism (DeepSpeed PR #7056) and "
                         "is ignored here; use intra_op_parallelism (1..256)");
        else {
            r->cfg->aio.intra_op_parallelism = json_integer_value(tc);
            zl__cfg_warn(r, "aio.thread_count",
                         "thread_count was renamed intra_op_parallelism (DeepSpeed PR #7056, "
                         "which ignores the old name); read as intra_op_parallelism %lld: "
                         "rename it", (long long)json_integer_value(tc));
        }
    }
    return ZL_OK;
}
