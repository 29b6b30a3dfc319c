/* The "optimizer" and "scheduler" blocks.
 *
 * DeepSpeed lower-cases an optimizer type if it is one of its own names, otherwise looks it
 * up in torch.optim (case-sensitive); zerolab runs Adam and AdamW and names every other
 * recognised type as unsupported. Params are keyword arguments of a constructor in
 * DeepSpeed, so an unknown one is a TypeError there and an error here. Schedulers: the five
 * classes of lr_schedules.py (exact names), torch.optim.lr_scheduler names are recognised
 * as unsupported, anything else is "DeepSpeed does not recognize LR scheduler X". */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static const char *const ds_optimizers[] = {"adagrad", "adam", "adamw", "lamb", "onebitadam",
                                            "zerooneadam", "onebitlamb", "muadam", "muadamw",
                                            "musgd", "lion", "muon", NULL};
static const char *const torch_optimizers[] = {"Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW",
                                               "Adamax", "ASGD", "LBFGS", "Muon", "NAdam",
                                               "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam",
                                               NULL};
static const char *const ds_schedulers[] = {"constant", "WarmupLR", "WarmupDecayLR",
                                            "WarmupCosineLR", "OneCycle", "LRRangeTest", NULL};
static const char *const torch_schedulers[] = {
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau",
    "CyclicLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR", NULL};

static int index_of(const char *const *list, const char *s)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], s)) return i;
    return -1;
}

static bool given(const zl_config *cfg, const char *path)
{
    int i = zl__cfg_find_path(path);
    zl_config_source s = cfg->origin[i].source;
    return s == ZL_CFG_FILE || s == ZL_CFG_ALIAS || s == ZL_CFG_CLI;
}

/* The block's "type" as a string, or an error naming the block. */
static zl_status read_type(zl__cfg_reader *r, const json_t *blk, const char *block,
                           const char *example, const char **out)
{
    const json_t *t = json_object_get(blk, "type");
    char path[64];
    snprintf(path, sizeof path, "%s.type", block);
    if (!t || json_is_null(t))
        return zl__cfg_fail(r, ZL_ERR_CONFIG, block,
                            "the block has no \"type\", so DeepSpeed would ignore it and its "
                            "params\nhint: add \"type\": \"%s\"",
                            example);
    if (!json_is_string(t))
        return zl__cfg_fail(r, ZL_ERR_CONFIG, path, "expected a string, got %s",
                            zl__cfg_show(t));
    *out = json_string_value(t);
    return ZL_OK;
}

static zl_status read_optimizer_type(zl__cfg_reader *r, const char *type)
{
    zl_config *cfg = r->cfg;
    char lower[64];
    size_t n = 0;
    for (; type[n] && n < sizeof lower - 1; n++) lower[n] = (char)tolower((unsigned char)type[n]);
    lower[n] = '\0';
    bool ds_name = index_of(ds_optimizers, lower) >= 0;
    const char *name = ds_name ? lower : type;
    if (!strcmp(name, "adam") || !strcmp(name, "adamw")) {
        cfg->optimizer.type = !strcmp(name, "adamw") ? ZL_OPTIMIZER_ADAMW : ZL_OPTIMIZER_ADAM;
        cfg->optimizer_name = strdup(name);
        return cfg->optimizer_name ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "out of memory");
    }
    if (ds_name || index_of(torch_optimizers, type) >= 0) {
        char what[128];
        snprintf(what, sizeof what, "the '%s' optimizer (%s)", type,
                 ds_name ? "a DeepSpeed optimizer" : "torch.optim");
        return zl__cfg_fail(r, ZL_ERR_UNSUPPORTED, "optimizer.type",
                            "%s is not implemented by zerolab\nhint: use \"Adam\" or \"AdamW\"",
                            what);
    }
    const char *cands[40];
    int nc = 0;
    for (int i = 0; torch_optimizers[i]; i++) cands[nc++] = torch_optimizers[i];
    const char *s = zl__cfg_suggest(type, cands, nc);
    char did[80] = "";
    if (s) snprintf(did, sizeof did, " (did you mean '%s'?)", s);
    return zl__cfg_fail(r, ZL_ERR_CONFIG, "optimizer.type",
                        "unknown optimizer type '%s'%s; DeepSpeed: module 'torch.optim' has no "
                        "attribute '%s'\nhint: zerolab supports \"Adam\" and \"AdamW\"",
                        type, did, type);
}

/* The keyword arguments DeepSpeed passes on but zerolab has no setting for. */
static zl_status read_param_extras(zl__cfg_reader *r, const json_t *params, const char *owner)
{
    const json_t *v = json_object_get(params, "max_grad_norm");
    if (v) {
        char clip[64] = "1.0";
        if (json_is_number(v)) snprintf(clip, sizeof clip, "%g", json_number_value(v));
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "optimizer.params.max_grad_norm",
                            "'max_grad_norm' is not supported as an optimizer parameter, please "
                            "switch to using the deepspeed parameter 'gradient_clipping'\nhint: "
                            "remove it and set \"gradient_clipping\": %s at the top level",
                            clip);
    }
    static const char *const bools[] = {"amsgrad", "set_grad_none", "fp32_optimizer_states"};
    for (int k = 0; k < 3; k++) {
        char path[64];
        snprintf(path, sizeof path, "optimizer.params.%s", bools[k]);
        v = json_object_get(params, bools[k]);
        if (!v || zl__cfg_is_auto(v)) continue;
        if (!json_is_boolean(v))
            return zl__cfg_fail(r, ZL_ERR_CONFIG, path, "expected true or false, got %s",
                                zl__cfg_show(v));
        if (k == 0 && json_is_true(v))
            return zl__cfg_fail(r, ZL_ERR_UNSUPPORTED, path,
                                "the AMSGrad variant is not implemented by zerolab (%s: FusedAdam "
                                "does not support it either)\nhint: remove amsgrad",
                                owner);
        if (k == 2 && json_is_false(v))
            return zl__cfg_fail(r, ZL_ERR_UNSUPPORTED, path,
                                "16-bit optimizer states in CPU Adam are not implemented by "
                                "zerolab\nhint: remove fp32_optimizer_states");
    }
    return ZL_OK;
}

zl_status zl__cfg_read_optimizer(zl__cfg_reader *r, const json_t *root)
{
    zl_config *cfg = r->cfg;
    const json_t *o = json_object_get(root, "optimizer");
    if (!o || json_is_null(o)) return ZL_OK;
    const char *type;
    zl_status st = zl__cfg_expect_object(r, o, "optimizer");
    if (st == ZL_OK) st = zl__cfg_read_block(r, o, "optimizer", 0, NULL);
    if (st == ZL_OK) st = read_type(r, o, "optimizer", "AdamW", &type);
    if (st == ZL_OK) st = read_optimizer_type(r, type);
    if (st != ZL_OK) return st;
    cfg->optimizer_given = true;

    const json_t *params = json_object_get(o, "params");
    if (!params || json_is_null(params)) params = NULL;
    else if ((st = zl__cfg_expect_object(r, params, "optimizer.params")) != ZL_OK) return st;
    /* The class DeepSpeed would build, for messages about its keyword arguments. */
    const json_t *ta = params ? json_object_get(params, "torch_adam") : NULL;
    bool adamw = cfg->optimizer.type == ZL_OPTIMIZER_ADAMW;
    const json_t *awm = params ? json_object_get(params, "adam_w_mode") : NULL;
    if (!awm || !json_is_false(awm)) adamw = true;
    const char *owner = json_is_true(ta) ? (adamw ? "AdamW" : "Adam")
                        : cfg->zero.offload_optimizer.device != ZL_OFFLOAD_NONE
                            ? "DeepSpeedCPUAdam"
                            : "FusedAdam";
    if (params) {
        if ((st = read_param_extras(r, params, owner)) != ZL_OK) return st;
        if ((st = zl__cfg_read_block(r, params, "optimizer.params", 0, owner)) != ZL_OK) return st;
        if (json_is_true(ta) && json_object_get(params, "bias_correction"))
            return zl__cfg_fail(r, ZL_ERR_CONFIG, "optimizer.params.bias_correction",
                                "torch.optim.%s has no parameter 'bias_correction' (DeepSpeed: "
                                "%s.__init__() got an unexpected keyword argument "
                                "'bias_correction')\nhint: remove it or torch_adam",
                                owner, owner);
    }
    /* DeepSpeed: effective AdamW = (type == "adamw") or adam_w_mode (default true). */
    if (cfg->optimizer.type == ZL_OPTIMIZER_ADAMW && !cfg->optimizer.adam_w_mode) {
        int i = zl__cfg_find_path("optimizer.params.adam_w_mode");
        cfg->optimizer.adam_w_mode = true;
        cfg->origin[i] = (zl_config_origin){ZL_CFG_INFERRED, cfg->origin[i].line,
                                            "optimizer.type AdamW", false};
    }
    /* torch.optim.AdamW's own default weight decay is 0.01, not FusedAdam's 0. */
    if (cfg->optimizer_torch_adam && cfg->optimizer.adam_w_mode &&
        !given(cfg, "optimizer.params.weight_decay")) {
        int i = zl__cfg_find_path("optimizer.params.weight_decay");
        cfg->optimizer.weight_decay = 0.01;
        cfg->origin[i] = (zl_config_origin){ZL_CFG_INFERRED, 0, "torch.optim.AdamW default",
                                            false};
    }
    return ZL_OK;
}

/* ---- scheduler ------------------------------------------------------------------------- */

zl_status zl__cfg_read_scheduler(zl__cfg_reader *r, const json_t *root)
{
    zl_config *cfg = r->cfg;
    const json_t *s = json_object_get(root, "scheduler");
    if (!s || json_is_null(s)) return ZL_OK;
    const char *type;
    zl_status st = zl__cfg_expect_object(r, s, "scheduler");
    if (st == ZL_OK) st = zl__cfg_read_block(r, s, "scheduler", 0, NULL);
    if (st == ZL_OK) st = read_type(r, s, "scheduler", "WarmupLR", &type);
    if (st != ZL_OK) return st;
    int t = index_of(ds_schedulers, type);
    if (t <= 0) {
        if (index_of(torch_schedulers, type) >= 0)
            return zl__cfg_fail(r, ZL_ERR_UNSUPPORTED, "scheduler.type",
                                "the torch.optim.lr_scheduler.%s schedule is not implemented by "
                                "zerolab\nhint: use WarmupLR, WarmupDecayLR, WarmupCosineLR, "
                                "OneCycle or LRRangeTest",
                                type);
        const char *sugg = zl__cfg_suggest(type, ds_schedulers + 1, 5);
        char did[80] = "";
        if (sugg) snprintf(did, sizeof did, " (did you mean '%s'?)", sugg);
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "scheduler.type",
                            "DeepSpeed does not recognize LR scheduler %s%s\nhint: the schedules "
                            "are WarmupLR, WarmupDecayLR, WarmupCosineLR, OneCycle and LRRangeTest",
                            type, did);
    }
    cfg->scheduler.type = (zl_lr_schedule_type)t;
    cfg->scheduler_given = true;
    const json_t *params = json_object_get(s, "params");
    if (params && !json_is_null(params)) {
        if ((st = zl__cfg_expect_object(r, params, "scheduler.params")) != ZL_OK) return st;
        st = zl__cfg_read_block(r, params, "scheduler.params", 1u << t, type);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

/* The schedule's required constructor arguments, once "auto" is filled (zl__cfg_fill). */
zl_status zl__cfg_check_scheduler(zl__cfg_reader *r)
{
    zl_config *cfg = r->cfg;
    if (!cfg->scheduler_given) return ZL_OK;
    int t = (int)cfg->scheduler.type;
    const char *type = zl_lr_schedule_name(cfg->scheduler.type);
    /* Required constructor arguments (Python: "missing required positional argument"). */
    const zl_lr_schedule_params *p = &cfg->scheduler;
    const char *missing = NULL;
    if ((t == ZL_LR_WARMUP_DECAY || t == ZL_LR_WARMUP_COSINE) && p->total_num_steps < 0)
        missing = "'total_num_steps'";
    if (t == ZL_LR_ONE_CYCLE && isnan(p->cycle_min_lr))
        missing = isnan(p->cycle_max_lr) ? "'cycle_min_lr' and 'cycle_max_lr'" : "'cycle_min_lr'";
    else if (t == ZL_LR_ONE_CYCLE && isnan(p->cycle_max_lr))
        missing = "'cycle_max_lr'";
    if (missing)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "scheduler.params",
                            "%s.__init__() missing required argument%s: %s\nhint: add %s to "
                            "scheduler.params",
                            type, strstr(missing, " and ") ? "s" : "", missing, missing);
    if ((t == ZL_LR_WARMUP_DECAY || t == ZL_LR_WARMUP_COSINE) &&
        p->total_num_steps < p->warmup_num_steps)
        zl__cfg_warn(r, "scheduler.params.total_num_steps",
                     "total_num_steps %lld is less than warmup_num_steps %lld",
                     (long long)p->total_num_steps, (long long)p->warmup_num_steps);
    return ZL_OK;
}
