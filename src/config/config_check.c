/* What DeepSpeed computes and checks after reading the blocks: the batch-size triad
 * (config.py _set_batch_related_parameters / _batch_assertion, section 0.1 of the reference),
 * derived values, and _do_error_check's cross-field assertions.
 *
 * The triad uses Python's floor division, so a non-divisible inference (TB=30, MB=4, W=8)
 * floors the gradient accumulation to 0 and then fails DeepSpeed's own assertion with the
 * same numbers DeepSpeed prints. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "base/log.h"
#include "config/config_internal.h"

static zl_config_origin *origin(zl_config *cfg, const char *path)
{
    int i = zl__cfg_find_path(path);
    ZL_ASSERT(i >= 0);
    return &cfg->origin[i];
}

static bool is_given(zl_config_source s)
{
    return s == ZL_CFG_FILE || s == ZL_CFG_ALIAS || s == ZL_CFG_CLI;
}

static void infer(zl_config_origin *o, const char *from)
{
    bool was_auto = o->source == ZL_CFG_AUTO || (o->source == ZL_CFG_INFERRED && o->was_auto);
    *o = (zl_config_origin){ZL_CFG_INFERRED, o->line, from, was_auto};
}

void zl__cfg_derive(zl_config *cfg)
{
    /* overlap_comm: None -> true for stage 3 only (zero/config.py validator). */
    zl_config_origin *o = origin(cfg, "zero_optimization.overlap_comm");
    if (cfg->zero.overlap_comm < 0 || o->source == ZL_CFG_INFERRED) {
        cfg->zero.overlap_comm = cfg->zero.stage == 3;
        infer(o, "zero_optimization.stage");
    }
    /* communication_data_type: None -> the training precision. */
    o = origin(cfg, "communication_data_type");
    if (cfg->communication_data_type < 0 || o->source == ZL_CFG_INFERRED) {
        cfg->communication_data_type = cfg->fp16.enabled   ? ZL_CFG_FP16
                                       : cfg->bf16.enabled ? ZL_CFG_BF16
                                                           : ZL_CFG_FP32;
        /* Say what it was inferred from: the training precision, not "fp16/bf16". */
        infer(o, cfg->fp16.enabled   ? "fp16, the model's type (fp16.enabled)"
                 : cfg->bf16.enabled ? "bf16, the model's type (bf16.enabled)"
                                     : "fp32, the model's type (neither fp16 nor bf16 enabled)");
    }
    /* The flops profiler needs the wall-clock timers, so DeepSpeed turns them on. */
    o = origin(cfg, "wall_clock_breakdown");
    if (cfg->flops_profiler.enabled && !cfg->wall_clock_breakdown) {
        cfg->wall_clock_breakdown = true;
        infer(o, "flops_profiler.enabled");
    } else if (!cfg->flops_profiler.enabled && o->source == ZL_CFG_INFERRED) {
        cfg->wall_clock_breakdown = false;
        *o = (zl_config_origin){ZL_CFG_DEFAULT, 0, NULL, false};
    }
    /* WarmupLR without warmup_max_lr warms up to the optimizer's lr. */
    o = origin(cfg, "scheduler.params.warmup_max_lr");
    cfg->scheduler.warmup_max_lr_given = is_given(o->source);
    /* "auto" there is HF's learning_rate, which is optimizer.params.lr (they must match). */
    bool was_auto = o->source == ZL_CFG_AUTO || o->was_auto;
    if ((cfg->scheduler.type == ZL_LR_WARMUP ||
         (cfg->scheduler.type == ZL_LR_WARMUP_DECAY && was_auto)) &&
        !cfg->scheduler.warmup_max_lr_given) {
        cfg->scheduler.warmup_max_lr = cfg->optimizer.lr;
        infer(o, "optimizer.params.lr");
    }
}

/* ---- batch triad -------------------------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b)
{
    if (b == 0) return 0; /* Python raises ZeroDivisionError; the > 0 assertion reports it */
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* "NAME:LINE: " for a batch key given in the file, else "NAME: ". */
static const char *where(const zl_config *cfg, const zl_config_origin *o)
{
    static _Thread_local char buf[512];
    if (o->line > 0)
        snprintf(buf, sizeof buf, "%s:%d: ", cfg->name, o->line);
    else
        snprintf(buf, sizeof buf, "%s: ", cfg->name);
    return buf;
}

/* a * b * c in 64 bits; false if the product (or a partial one) overflows. */
static bool mul3(int64_t a, int64_t b, int64_t c, int64_t *out)
{
    int64_t ab;
    return !__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, out);
}

static zl_status product_overflow(const zl_config *cfg, const zl_config_origin *o, int64_t mb,
                                  int64_t gas, int64_t w)
{
    return zl_errorf(ZL_ERR_CONFIG,
                     "%strain_batch_size = micro batch * gradient_accumulation_steps * world "
                     "size = %lld * %lld * %lld does not fit in 64 bits\nhint: these are "
                     "per-step sample counts; use realistic values (a few thousand at most)",
                     where(cfg, o), (long long)mb, (long long)gas, (long long)w);
}

/* An inferred micro batch or accumulation count the engine's int cannot hold. */
static zl_status too_big_for_int(const zl_config *cfg, const zl_config_origin *o,
                                 const zl_config_origin *at, const char *key, int64_t v)
{
    return zl_errorf(ZL_ERR_CONFIG,
                     "%s%s would be %lld (%s), but it must be at most %d\nhint: give "
                     "train_micro_batch_size_per_gpu and gradient_accumulation_steps explicitly",
                     where(cfg, at), key, (long long)v, o->alias ? o->alias : "inferred", INT_MAX);
}

zl_status zl_config_resolve_batch(zl_config *cfg, int dp_world_size)
{
    if (dp_world_size < 1)
        return zl_errorf(ZL_ERR_INVALID, "data-parallel world size must be >= 1, got %d",
                         dp_world_size);
    const int64_t w = dp_world_size;
    zl_config_origin *otb = origin(cfg, "train_batch_size");
    zl_config_origin *omb = origin(cfg, "train_micro_batch_size_per_gpu");
    zl_config_origin *ogas = origin(cfg, "gradient_accumulation_steps");
    bool tb = is_given(otb->source), mb = is_given(omb->source), gas = is_given(ogas->source);
    int64_t *TB = &cfg->train_batch_size, *MB = &cfg->train_micro_batch_size_per_gpu;
    int64_t *GAS = &cfg->gradient_accumulation_steps;

    if (tb && mb && gas) {
        /* nothing to infer */
    } else if (tb && mb) {
        *GAS = floordiv(floordiv(*TB, *MB), w);
        infer(ogas, "train_batch_size // train_micro_batch_size_per_gpu // world_size");
    } else if (tb && gas) {
        *MB = floordiv(floordiv(*TB, w), *GAS);
        infer(omb, "train_batch_size // world_size // gradient_accumulation_steps");
    } else if (mb && gas) {
        if (!mul3(*MB, *GAS, w, TB)) return product_overflow(cfg, omb, *MB, *GAS, w);
        infer(otb, "micro batch * gradient_accumulation_steps * world_size");
    } else if (tb) {
        *GAS = 1;
        *MB = floordiv(*TB, w);
        infer(ogas, "train_batch_size alone");
        infer(omb, "train_batch_size // world_size");
    } else if (mb) {
        if (!mul3(*MB, 1, w, TB)) return product_overflow(cfg, omb, *MB, 1, w);
        *GAS = 1;
        infer(otb, "micro batch * world_size");
        infer(ogas, "train_micro_batch_size_per_gpu alone");
    } else {
        /* "auto" that nothing filled: say which flag fills it. */
        const zl_config_origin *auto_o = omb->source == ZL_CFG_AUTO ? omb
                                         : otb->source == ZL_CFG_AUTO ? otb
                                                                      : NULL;
        if (auto_o)
            return zl_errorf(ZL_ERR_CONFIG,
                             "%s%s is \"auto\" and nothing filled it, so neither "
                             "train_batch_size nor train_micro_batch_size_per_gpu is known\n"
                             "hint: give %s N (the Hugging Face Trainer fills it from %s)",
                             where(cfg, auto_o),
                             auto_o == omb ? "train_micro_batch_size_per_gpu" : "train_batch_size",
                             auto_o == omb ? "--micro-batch" : "--train-batch-size",
                             auto_o == omb ? "per_device_train_batch_size"
                                           : "world x micro x accumulation");
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s: Either train_batch_size or train_micro_batch_size_per_gpu needs "
                         "to be provided\nhint: add \"train_micro_batch_size_per_gpu\": N "
                         "(per-GPU batch) to the config",
                         cfg->name);
    }
    cfg->dp_world_size = dp_world_size;
    if (*TB <= 0)
        return zl_errorf(ZL_ERR_CONFIG, "%sTrain batch size: %lld has to be greater than 0",
                         where(cfg, otb), (long long)*TB);
    if (*MB <= 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%sMicro batch size per gpu: %lld has to be greater than 0%s",
                         where(cfg, is_given(omb->source) ? omb : otb), (long long)*MB,
                         is_given(omb->source) ? ""
                                               : "\nhint: train_batch_size is smaller than the "
                                                 "world size times gradient_accumulation_steps");
    if (*GAS <= 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%sGradient accumulation steps: %lld has to be greater than 0%s",
                         where(cfg, is_given(ogas->source) ? ogas : otb), (long long)*GAS,
                         is_given(ogas->source)
                             ? ""
                             : "\nhint: train_batch_size must be at least micro batch x world size "
                               "(and a multiple of it)");
    /* Inferred from train_batch_size, they may not fit where the engine keeps them. */
    if (*MB > INT_MAX)
        return too_big_for_int(cfg, omb, otb, "train_micro_batch_size_per_gpu", *MB);
    if (*GAS > INT_MAX)
        return too_big_for_int(cfg, ogas, otb, "gradient_accumulation_steps", *GAS);
    int64_t product;
    if (!mul3(*MB, *GAS, w, &product)) return product_overflow(cfg, otb, *MB, *GAS, w);
    if (*TB != product)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%sCheck batch related parameters. train_batch_size is not equal to "
                         "micro_batch_per_gpu * gradient_acc_step * world_size %lld != %lld * "
                         "%lld * %lld\nhint: give two of the three and let DeepSpeed infer the "
                         "third, or make train_batch_size a multiple of micro batch x world size",
                         where(cfg, otb), (long long)*TB, (long long)*MB, (long long)*GAS,
                         (long long)w);
    return ZL_OK;
}

/* ---- _do_error_check -------------------------------------------------------------------- */

zl_status zl__cfg_finish(zl__cfg_reader *r)
{
    zl_config *cfg = r->cfg;
    zl__cfg_derive(cfg);
    bool zero_1_3 = cfg->zero.stage >= 1 && cfg->zero.stage <= 3;
    if (cfg->fp16.fp16_master_weights_and_grads && !zero_1_3)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "fp16.fp16_master_weights_and_grads",
                            "Fp16_master_weights_and_grads is only supported with ZeRO Stage 1, "
                            "2, or 3.");
    if (cfg->bf16.bf16_master_weights_and_grads && !zero_1_3)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "bf16.bf16_master_weights_and_grads",
                            "Bf16_master_weights_and_grads is only supported with ZeRO Stage 1, "
                            "2, or 3.");
    if (cfg->bf16.bf16_optimizer_states && !zero_1_3)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "bf16.bf16_optimizer_states",
                            "bf16_optimizer_states is only supported with ZeRO Stage 1, 2, or 3.");
    if (cfg->bf16.bf16_optimizer_states && !cfg->bf16.bf16_master_weights_and_grads)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "bf16.bf16_optimizer_states",
                            "bf16_optimizer_states requires bf16_master_weights_and_grads to be "
                            "enabled.");
    if (cfg->gradient_allreduce_op == ZL_ALLREDUCE_SUM && cfg->zero.stage == 3)
        return zl__cfg_fail(r, ZL_ERR_CONFIG, "gradient_allreduce_op",
                            "gradient_allreduce_op='sum' is not supported with ZeRO stage 3");
    /* DeepSpeed needs the client's optimizer then; zerolab trains with its default. */
    if (!cfg->optimizer_given)
        zl__cfg_warn(r, NULL,
                     "%s: no \"optimizer\" block: zerolab trains with AdamW (FusedAdam's "
                     "defaults: betas (%g, %g), eps %g, weight_decay %g) at lr %g%s",
                     cfg->name, cfg->optimizer.beta1, cfg->optimizer.beta2, cfg->optimizer.eps,
                     cfg->optimizer.weight_decay, cfg->optimizer.lr,
                     zl_config_given(cfg, "optimizer.params.lr") ? " (--lr)" : " (the default)");
    if (cfg->vocabulary_size > 0 && cfg->vocabulary_size % 8 != 0)
        zl__cfg_warn(r, "vocabulary_size",
                     "DeepSpeedConfig: vocabulary size %lld is not aligned to 8, may import "
                     "tensor core utilization.",
                     (long long)cfg->vocabulary_size);
    return ZL_OK;
}
