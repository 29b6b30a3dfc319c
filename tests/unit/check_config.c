/* The DeepSpeed config reader: defaults, batch triad, "auto", aliases and deprecations,
 * unknown keys, syntax errors, duplicates, unsupported features, optimizer and scheduler
 * rules, printing.
 *
 * Expected values are DeepSpeed 0.19.6's documented constants and messages (reference doc
 * sections 0-1, 3.3, 3.5, 4, 7) and numbers worked out by hand from its formulas; every error
 * test checks the message text: file, line, key and suggestion. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "base/status.h"
#include "config/config.h"
#include "engine/engine.h"

#define NAME "t.json"

/* Parse `text` (named t.json); returns the status and leaves cfg to free. */
static zl_status parse(zl_config *cfg, const char *text, int dp)
{
    zl_error_clear();
    return zl_config_parse(cfg, text, NAME, dp);
}

/* The last error contains every non-NULL fragment (printed on failure). */
#define ck_msg_has(...)                                                                     \
    do {                                                                                    \
        const char *frags_[] = {__VA_ARGS__, NULL};                                         \
        for (int k_ = 0; frags_[k_]; k_++)                                                   \
            ck_assert_msg(strstr(zl_last_error(), frags_[k_]) != NULL,                      \
                          "message lacks \"%s\":\n%s", frags_[k_], zl_last_error());         \
    } while (0)

/* Parse must fail with `st`; the config is freed. */
static void expect_fail(const char *text, int dp, zl_status st)
{
    zl_config cfg;
    zl_status got = parse(&cfg, text, dp);
    zl_config_free(&cfg);
    ck_assert_msg(got == st, "expected %s, got %s: %s", zl_status_str(st), zl_status_str(got),
                  zl_last_error());
}

static zl_config_source src_of(const zl_config *cfg, const char *name)
{
    const zl_config_origin *o = zl_config_origin_of(cfg, name);
    ck_assert_msg(o != NULL, "no setting %s", name);
    return o->source;
}

static bool has_warning(const zl_config *cfg, const char *frag)
{
    for (int i = 0; i < cfg->nwarnings; i++)
        if (strstr(cfg->warnings[i], frag)) return true;
    return false;
}

/* ---- defaults and the batch triad ----------------------------------------------------- */

START_TEST(test_config_empty_defaults)
{
    zl_config cfg;
    ck_assert_int_eq(parse(&cfg, "{}", 0), ZL_OK); /* triad left for later */
    ck_assert_int_eq(zl_config_set(&cfg, "train_micro_batch_size_per_gpu", "4"), ZL_OK);
    ck_assert_int_eq(zl_config_resolve_batch(&cfg, 2), ZL_OK);
    ck_assert_int_eq(cfg.train_batch_size, 8); /* MB only: TB = MB * W, GAS = 1 */
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 1);
    ck_assert_int_eq(src_of(&cfg, "train_micro_batch_size_per_gpu"), ZL_CFG_CLI);
    ck_assert_int_eq(src_of(&cfg, "train_batch_size"), ZL_CFG_INFERRED);
    /* Top level (constants.py; gradient_clipping 1.0 since v0.19.5, steps_per_print None). */
    ck_assert_int_eq(cfg.steps_per_print, 0);
    ck_assert(!zl_config_given(&cfg, "steps_per_print"));
    ck_assert(cfg.gradient_clipping == 1.0);
    ck_assert(!cfg.prescale_gradients && cfg.gradient_predivide_factor == 1.0);
    ck_assert_int_eq(cfg.communication_data_type, ZL_CFG_FP32); /* None -> fp32 without fp16 */
    ck_assert_int_eq(cfg.gradient_allreduce_op, ZL_ALLREDUCE_MEAN);
    ck_assert(!cfg.wall_clock_breakdown && !cfg.memory_breakdown && !cfg.dump_state);
    ck_assert(cfg.managed_gradient_accumulation && cfg.zero_force_ds_cpu_optimizer);
    ck_assert(!cfg.optimizer_given && !cfg.scheduler_given);
    ck_assert_int_eq(cfg.scheduler.type, ZL_LR_CONSTANT);
    /* fp16 / bf16 (precision_config.py, loss_scaler.py) */
    ck_assert(!cfg.fp16.enabled && cfg.fp16.loss_scale == 0.0);
    ck_assert_int_eq(cfg.fp16.initial_scale_power, 16);
    ck_assert_int_eq(cfg.fp16.loss_scale_window, 1000);
    ck_assert_int_eq(cfg.fp16.hysteresis, 2);
    ck_assert_int_eq(cfg.fp16.min_loss_scale, 1);
    ck_assert(!cfg.bf16.enabled && cfg.bf16.check_grad_overflow && !cfg.bf16.immediate_grad_update);
    /* zero_optimization code defaults (zero/config.py) */
    const zl_config_zero *z = &cfg.zero;
    ck_assert_int_eq(z->stage, 0);
    ck_assert(z->contiguous_gradients && z->reduce_scatter && z->allgather_partitions);
    ck_assert_int_eq(z->overlap_comm, 0); /* None -> false below stage 3 */
    ck_assert_int_eq(z->reduce_bucket_size, 500000000);
    ck_assert_int_eq(z->allgather_bucket_size, 500000000);
    ck_assert_int_eq(z->prefetch_bucket_size, 50000000); /* 5e7, not the docs' 5e8 */
    ck_assert_int_eq(z->param_persistence_threshold, 100000);
    ck_assert_int_eq(z->model_persistence_threshold, INT64_MAX); /* sys.maxsize */
    ck_assert_int_eq(z->max_live_parameters, 1000000000);
    ck_assert_int_eq(z->max_reuse_distance, 1000000000);
    ck_assert_int_eq(z->sub_group_size, 1000000000);
    ck_assert_int_eq(z->zero_hpz_partition_size, 1);
    ck_assert_int_eq(z->mics_shard_size, -1);
    ck_assert_int_eq(z->offload_optimizer.device, ZL_OFFLOAD_NONE);
    ck_assert(z->offload_optimizer.pin_memory && z->offload_param.pin_memory); /* PR #8207 */
    ck_assert_int_eq(z->offload_optimizer.buffer_count, 4);
    ck_assert_int_eq(z->offload_param.buffer_count, 5);
    ck_assert_int_eq(z->offload_param.buffer_size, 100000000);
    ck_assert_int_eq(z->offload_param.max_in_cpu, 1000000000);
    ck_assert(z->offload_optimizer.ratio == 1.0 && z->offload_optimizer.nvme_path == NULL);
    /* aio, activation checkpointing, pipeline, checkpoint, profilers, monitors */
    ck_assert_int_eq(cfg.aio.block_size, 1048576);
    ck_assert_int_eq(cfg.aio.queue_depth, 8);
    ck_assert_int_eq(cfg.aio.intra_op_parallelism, 1);
    ck_assert(cfg.aio.overlap_events && !cfg.aio.single_submit && !cfg.aio.use_gds);
    ck_assert(!cfg.activation_checkpointing.partition_activations);
    ck_assert_int_eq(cfg.activation_checkpointing.number_checkpoints, 0);
    ck_assert_int_eq(cfg.pipeline.stages, 0); /* "auto" */
    ck_assert_str_eq(cfg.pipeline.partition, "best");
    ck_assert(cfg.pipeline.pipe_partitioned && cfg.pipeline.grad_partitioned);
    ck_assert(cfg.pipeline.use_reentrant && !cfg.pipeline.seed_layers);
    ck_assert_int_eq(cfg.pipeline.activation_checkpoint_interval, 0);
    ck_assert_int_eq(cfg.checkpoint.tag_validation, ZL_TAG_WARN);
    ck_assert(!cfg.checkpoint.load_universal && cfg.checkpoint.checkpoint_serialization);
    ck_assert(!cfg.flops_profiler.enabled && cfg.flops_profiler.detailed);
    ck_assert_int_eq(cfg.flops_profiler.profile_step, 1);
    ck_assert_int_eq(cfg.flops_profiler.module_depth, -1);
    ck_assert_int_eq(cfg.flops_profiler.top_modules, 1);
    ck_assert(!cfg.comms_logger.enabled && cfg.comms_logger.prof_all);
    ck_assert_str_eq(cfg.tensorboard.job_name, "DeepSpeedJobName");
    ck_assert_str_eq(cfg.csv_monitor.output_path, "");
    ck_assert_str_eq(cfg.wandb.project, "deepspeed");
    ck_assert_int_eq(cfg.comet.samples_log_interval, 100);
    ck_assert(cfg.throughput_timer_enabled && cfg.throughput_timer_synchronized);
    ck_assert(cfg.zerolab.model == NULL && cfg.zerolab.backend == -1 && cfg.zerolab.seed == -1);
    ck_assert_int_eq(cfg.nwarnings, 1); /* only the note saying which optimizer trains */
    ck_assert(has_warning(&cfg, "no \"optimizer\" block"));
    zl_config_free(&cfg);

    /* zl_config_default + a micro batch is the same as an empty file. */
    zl_config d;
    zl_config_default(&d);
    ck_assert_int_eq(zl_config_set(&d, "train_micro_batch_size_per_gpu", "4"), ZL_OK);
    ck_assert_int_eq(zl_config_resolve_batch(&d, 2), ZL_OK);
    ck_assert_int_eq(d.train_batch_size, 8);
    ck_assert(d.gradient_clipping == 1.0 && d.zero.reduce_bucket_size == 500000000);
    zl_config_free(&d);
}
END_TEST

/* One row per case of section 0.1: -1 = not given. */
static const struct triad_row {
    int64_t tb, mb, gas;
    int w;
    int64_t want_tb, want_mb, want_gas;
} triad_rows[] = {
    {16, 2, 4, 2, 16, 2, 4},   /* all three: nothing inferred */
    {32, 4, -1, 2, 32, 4, 4},  /* TB + MB: GAS = (32 // 4) // 2 */
    {32, -1, 2, 4, 32, 4, 2},  /* TB + GAS: MB = (32 // 4) // 2 */
    {-1, 4, 2, 3, 24, 4, 2},   /* MB + GAS: TB = 4 * 2 * 3 */
    {32, -1, -1, 4, 32, 8, 1}, /* TB only: GAS = 1, MB = 32 // 4 */
    {-1, 4, -1, 8, 32, 4, 1},  /* MB only: TB = 4 * 8, GAS = 1 */
};

START_TEST(test_config_triad_inference)
{
    for (size_t k = 0; k < sizeof triad_rows / sizeof triad_rows[0]; k++) {
        const struct triad_row *r = &triad_rows[k];
        char text[256] = "{\"steps_per_print\": 1";
        if (r->tb >= 0)
            sprintf(text + strlen(text), ", \"train_batch_size\": %lld", (long long)r->tb);
        if (r->mb >= 0)
            sprintf(text + strlen(text), ", \"train_micro_batch_size_per_gpu\": %lld",
                    (long long)r->mb);
        if (r->gas >= 0)
            sprintf(text + strlen(text), ", \"gradient_accumulation_steps\": %lld",
                    (long long)r->gas);
        strcat(text, "}");
        zl_config cfg;
        ck_assert_msg(parse(&cfg, text, r->w) == ZL_OK, "row %zu: %s", k, zl_last_error());
        ck_assert_int_eq(cfg.train_batch_size, r->want_tb);
        ck_assert_int_eq(cfg.train_micro_batch_size_per_gpu, r->want_mb);
        ck_assert_int_eq(cfg.gradient_accumulation_steps, r->want_gas);
        ck_assert_int_eq(src_of(&cfg, "train_batch_size"),
                         r->tb >= 0 ? ZL_CFG_FILE : ZL_CFG_INFERRED);
        ck_assert_int_eq(src_of(&cfg, "gradient_accumulation_steps"),
                         r->gas >= 0 ? ZL_CFG_FILE : ZL_CFG_INFERRED);
        ck_assert_int_eq(cfg.dp_world_size, r->w);
        zl_config_free(&cfg);
    }
}
END_TEST

START_TEST(test_config_triad_assertions)
{
    expect_fail("{}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ": Either train_batch_size or train_micro_batch_size_per_gpu needs to be "
                    "provided");
    expect_fail("{\"gradient_accumulation_steps\": 4}", 1, ZL_ERR_CONFIG); /* GAS alone */
    ck_msg_has("Either train_batch_size or train_micro_batch_size_per_gpu");
    expect_fail("{\"train_micro_batch_size_per_gpu\": 4,\n \"train_batch_size\": 0}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: Train batch size: 0 has to be greater than 0");
    expect_fail("{\"train_batch_size\": 8,\n \"train_micro_batch_size_per_gpu\": 0}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: Micro batch size per gpu: 0 has to be greater than 0");
    /* TB=30, MB=4, W=8: GAS = (30 // 4) // 8 = 7 // 8 = 0. */
    expect_fail("{\"train_batch_size\": 30, \"train_micro_batch_size_per_gpu\": 4}", 8,
                ZL_ERR_CONFIG);
    ck_msg_has(NAME ":1: Gradient accumulation steps: 0 has to be greater than 0");
    expect_fail("{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": 4,\n"
                " \"gradient_accumulation_steps\": 3}",
                2, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":1: Check batch related parameters. train_batch_size is not equal to "
                    "micro_batch_per_gpu * gradient_acc_step * world_size 32 != 4 * 3 * 2");
    /* Python floors toward -inf: TB=8, GAS=-3, W=1 -> MB = 8 // -3 = -3 (C would give -2). */
    expect_fail("{\"train_batch_size\": 8, \"gradient_accumulation_steps\": -3}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("Micro batch size per gpu: -3 has to be greater than 0");
    /* Floor division: TB=33, MB=4, W=2 -> GAS = 8 // 2 = 4, then 33 != 4 * 4 * 2. */
    expect_fail("{\"train_batch_size\": 33, \"train_micro_batch_size_per_gpu\": 4}", 2,
                ZL_ERR_CONFIG);
    ck_msg_has("33 != 4 * 4 * 2");
}
END_TEST

START_TEST(test_config_auto_values)
{
    zl_config cfg;
    const char *text = "{\"train_batch_size\": 16, \"train_micro_batch_size_per_gpu\": \"auto\",\n"
                       " \"gradient_accumulation_steps\": \"auto\", \"gradient_clipping\": "
                       "\"auto\",\n"
                       " \"fp16\": {\"enabled\": \"auto\", \"loss_scale\": \"auto\"},\n"
                       " \"zero_optimization\": {\"stage\": 2, \"reduce_bucket_size\": \"auto\",\n"
                       "   \"offload_optimizer\": {\"device\": \"auto\"}},\n"
                       " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"eps\": \"auto\"}}}";
    ck_assert_msg(parse(&cfg, text, 2) == ZL_OK, "%s", zl_last_error());
    /* Batch keys: "auto" = not given, so TB only: GAS 1, MB = 16 // 2. */
    ck_assert_int_eq(cfg.train_micro_batch_size_per_gpu, 8);
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 1);
    const zl_config_origin *o = zl_config_origin_of(&cfg, "train_micro_batch_size_per_gpu");
    ck_assert(o->source == ZL_CFG_INFERRED && o->was_auto && o->line == 1);
    /* Elsewhere: dropped, so DeepSpeed's default. */
    ck_assert(cfg.gradient_clipping == 1.0);
    ck_assert_int_eq(src_of(&cfg, "gradient_clipping"), ZL_CFG_AUTO);
    ck_assert(!cfg.fp16.enabled && cfg.fp16.loss_scale == 0.0);
    ck_assert_int_eq(src_of(&cfg, "fp16.enabled"), ZL_CFG_AUTO);
    ck_assert_int_eq(cfg.zero.reduce_bucket_size, 500000000);
    ck_assert_int_eq(src_of(&cfg, "zero_optimization.reduce_bucket_size"), ZL_CFG_AUTO);
    ck_assert_int_eq(cfg.zero.offload_optimizer.device, ZL_OFFLOAD_NONE);
    ck_assert(cfg.optimizer.eps == 1e-8);
    ck_assert_int_eq(src_of(&cfg, "optimizer.params.eps"), ZL_CFG_AUTO);
    zl_config_free(&cfg);
}
END_TEST

/* Integers land in fields of a fixed width: a value past the field is refused with the key,
 * the line and the allowed range, never truncated (4294967297 used to become 1). */
START_TEST(test_config_integer_ranges)
{
    expect_fail("{\"steps_per_print\": 1,\n \"train_micro_batch_size_per_gpu\": 4294967297}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: train_micro_batch_size_per_gpu: 4294967297 is out of range",
               "[1, 2147483647]");
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1,\n \"gradient_accumulation_steps\": "
                "4294967297}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: gradient_accumulation_steps: 4294967297 is out of range",
               "[1, 2147483647]");
    /* A string past int64 saturated in strtoll; a real past int64 was "not an integer". */
    expect_fail("{\"zero_optimization\": {\n \"reduce_bucket_size\": \"99999999999999999999\"}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: zero_optimization.reduce_bucket_size: \"99999999999999999999\" is out "
                    "of range");
    expect_fail("{\"zero_optimization\": {\"reduce_bucket_size\": 1e19}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("zero_optimization.reduce_bucket_size: 1e19 is out of range");
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1, \"zerolab\": {\"steps\": 4294967297}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("zerolab.steps: 4294967297 is out of range", "[1, 2147483647]");
    /* The command line goes through the same check. */
    zl_config cfg;
    ck_assert_int_eq(parse(&cfg, "{}", 0), ZL_OK);
    ck_assert_int_eq(zl_config_set(&cfg, "gradient_accumulation_steps", "4294967297"),
                     ZL_ERR_CONFIG);
    ck_msg_has("gradient_accumulation_steps: 4294967297 is out of range");
    zl_config_free(&cfg);
    /* The largest values that fit are accepted. */
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 2147483647}", 1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert_int_eq(cfg.train_batch_size, 2147483647);
    zl_config_free(&cfg);
}
END_TEST

/* train_batch_size = micro x gas x world size in checked 64-bit arithmetic (signed overflow
 * was undefined behaviour, UBSan at config_check.c:116), and an inferred micro batch or
 * accumulation that does not fit the engine's int is refused. */
START_TEST(test_config_triad_overflow)
{
    expect_fail("{\"train_micro_batch_size_per_gpu\": 2147483647,\n"
                " \"gradient_accumulation_steps\": 2147483647}",
                2147483647, ZL_ERR_CONFIG);
    ck_msg_has("train_batch_size", "2147483647 * 2147483647 * 2147483647",
               "does not fit in 64 bits");
    expect_fail("{\"train_batch_size\": 9000000000000000000,\n"
                " \"train_micro_batch_size_per_gpu\": 2147483647,\n"
                " \"gradient_accumulation_steps\": 2147483647}",
                2147483647, ZL_ERR_CONFIG);
    ck_msg_has("does not fit in 64 bits");
    /* TB only, W = 1: the micro batch would be 2^40. */
    expect_fail("{\"train_batch_size\": 1099511627776}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":1: ", "train_micro_batch_size_per_gpu", "1099511627776",
               "at most 2147483647");
    expect_fail("{\"train_batch_size\": 1099511627776, \"train_micro_batch_size_per_gpu\": 1}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("gradient_accumulation_steps", "1099511627776", "at most 2147483647");
}
END_TEST

/* "auto" filled as the Hugging Face Trainer fills it (HfTrainerDeepSpeedConfig). */
static const char *const hf_config =
    "{\"train_batch_size\": \"auto\",\n"
    " \"train_micro_batch_size_per_gpu\": \"auto\",\n"
    " \"gradient_accumulation_steps\": \"auto\",\n"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": \"auto\"}},\n"
    " \"scheduler\": {\"type\": \"WarmupDecayLR\", \"params\": {\"warmup_min_lr\": \"auto\",\n"
    "   \"warmup_max_lr\": \"auto\", \"warmup_num_steps\": \"auto\",\n"
    "   \"total_num_steps\": \"auto\"}}}";

START_TEST(test_config_fill_auto)
{
    zl_config cfg;
    zl_config_fill f = {.micro_batch = 4, .grad_accum = 2, .has_lr = true, .lr = 3e-4,
                        .total_steps = 500, .has_warmup_steps = true, .warmup_steps = 5};
    zl_error_clear();
    ck_assert_msg(zl_config_parse_filled(&cfg, hf_config, NAME, 2, &f) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_int_eq(cfg.train_micro_batch_size_per_gpu, 4);
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 2);
    ck_assert_int_eq(cfg.train_batch_size, 16); /* auto, inferred: 4 * 2 * 2 */
    ck_assert(cfg.optimizer.lr == 3e-4 && cfg.scheduler.warmup_max_lr == 3e-4);
    ck_assert(cfg.scheduler.warmup_min_lr == 0);
    ck_assert_int_eq(cfg.scheduler.total_num_steps, 500);
    ck_assert_int_eq(cfg.scheduler.warmup_num_steps, 5);
    const zl_config_origin *o = zl_config_origin_of(&cfg, "optimizer.params.lr");
    ck_assert(o->source == ZL_CFG_CLI && o->was_auto && o->line == 4);
    ck_assert_str_eq(o->alias, "--lr");
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    zl_config_print(&cfg, mf);
    fclose(mf);
    ck_assert_msg(strstr(buf, " 4 (auto, filled by --micro-batch)\n") != NULL, "%s", buf);
    free(buf);
    zl_config_free(&cfg);

    /* Concrete values that differ: every mismatch in one error, with its line. */
    f = (zl_config_fill){.micro_batch = 8, .has_lr = true, .lr = 3e-4};
    zl_error_clear();
    ck_assert_int_eq(zl_config_parse_filled(&cfg, "{\"train_micro_batch_size_per_gpu\": 4,\n"
                                                  " \"optimizer\": {\"type\": \"Adam\",\n"
                                                  "  \"params\": {\"lr\": 1e-4}}}",
                                            NAME, 1, &f),
                     ZL_ERR_CONFIG);
    zl_config_free(&cfg);
    ck_msg_has("2 config values disagree with the command line",
               "\n  " NAME ":1: train_micro_batch_size_per_gpu is 4 in the config, --micro-batch "
               "gives 8",
               "\n  " NAME ":3: optimizer.params.lr is 0.0001 in the config, --lr gives 0.0003",
               "set them to \"auto\"");
    /* Equal values are no mismatch; an absent key is set. */
    f = (zl_config_fill){.micro_batch = 4, .grad_accum = 3};
    ck_assert_msg(zl_config_parse_filled(&cfg, "{\"train_micro_batch_size_per_gpu\": 4}", NAME, 1,
                                         &f) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 3);
    ck_assert_int_eq(cfg.train_batch_size, 12);
    zl_config_free(&cfg);

    /* Unfilled "auto": one error naming each key's line and flag. */
    f = (zl_config_fill){.micro_batch = 1};
    zl_error_clear();
    ck_assert_int_eq(zl_config_parse_filled(&cfg, hf_config, NAME, 1, &f), ZL_ERR_CONFIG);
    zl_config_free(&cfg);
    ck_msg_has("3 \"auto\" values that nothing filled",
               NAME ":4: optimizer.params.lr is \"auto\": give --lr",
               NAME ":6: scheduler.params.warmup_num_steps is \"auto\": give --warmup-steps",
               NAME ":7: scheduler.params.total_num_steps is \"auto\": give --total-steps");
    expect_fail(hf_config, 1, ZL_ERR_CONFIG); /* nothing given: the triad's too */
    ck_msg_has("6 \"auto\" values that nothing filled",
               NAME ":1: train_batch_size is \"auto\": give --train-batch-size",
               NAME ":2: train_micro_batch_size_per_gpu is \"auto\": give --micro-batch",
               NAME ":3: gradient_accumulation_steps is \"auto\": give --grad-accum");
    expect_fail("{\"train_micro_batch_size_per_gpu\": \"auto\"}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":1: train_micro_batch_size_per_gpu is \"auto\": give --micro-batch");
    /* warmup_max_lr "auto" follows the optimizer's lr when --lr is not given. */
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"optimizer\": {\"type\": "
                              "\"Adam\", \"params\": {\"lr\": 5e-4}}, \"scheduler\": {\"type\": "
                              "\"WarmupDecayLR\", \"params\": {\"warmup_max_lr\": \"auto\", "
                              "\"total_num_steps\": 10}}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert(cfg.scheduler.warmup_max_lr == 5e-4);
    zl_config_free(&cfg);
}
END_TEST

/* override_file (the CLI's built-in config): flags replace concrete values. */
START_TEST(test_config_fill_override)
{
    const char *builtin = "{\"train_micro_batch_size_per_gpu\": 16, \"gradient_accumulation_steps\""
                          ": 1, \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}},"
                          " \"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": "
                          "{\"total_num_steps\": 300, \"warmup_num_steps\": 30}}}";
    zl_config cfg;
    zl_config_fill f = {.train_batch_size = 64, .has_lr = true, .lr = 1e-3, .total_steps = 50,
                        .override_file = true};
    ck_assert_msg(zl_config_parse_filled(&cfg, builtin, NAME, 2, &f) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_int_eq(cfg.train_batch_size, 64); /* TB alone: GAS 1, MB 64 // 2 */
    ck_assert_int_eq(cfg.train_micro_batch_size_per_gpu, 32);
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 1);
    ck_assert(cfg.optimizer.lr == 1e-3);
    ck_assert_int_eq(cfg.scheduler.total_num_steps, 50);
    zl_config_free(&cfg);
    /* --grad-accum alone keeps the built-in micro batch. */
    f = (zl_config_fill){.grad_accum = 4, .override_file = true};
    ck_assert_msg(zl_config_parse_filled(&cfg, builtin, NAME, 1, &f) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_int_eq(cfg.train_micro_batch_size_per_gpu, 16);
    ck_assert_int_eq(cfg.train_batch_size, 64);
    zl_config_free(&cfg);
}
END_TEST

/* ---- aliases, deprecations, legacy forms ----------------------------------------------- */

START_TEST(test_config_aliases_and_deprecated_keys)
{
    zl_config cfg;
    /* stage3_ keys and their pydantic field names are the same setting. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"zero_optimization\":"
                                 " {\"stage\": 3, \"prefetch_bucket_size\": 7,\n"
                                 " \"stage3_max_live_parameters\": 11}}",
                           1),
                     ZL_OK);
    ck_assert_int_eq(cfg.zero.prefetch_bucket_size, 7);
    const zl_config_origin *o =
        zl_config_origin_of(&cfg, "zero_optimization.stage3_prefetch_bucket_size");
    ck_assert(o->source == ZL_CFG_ALIAS && !strcmp(o->alias, "prefetch_bucket_size"));
    ck_assert_int_eq(cfg.zero.max_live_parameters, 11);
    ck_assert_int_eq(src_of(&cfg, "zero_optimization.stage3_max_live_parameters"), ZL_CFG_FILE);
    ck_assert_int_eq(cfg.zero.overlap_comm, 1); /* None -> true at stage 3 */
    zl_config_free(&cfg);
    expect_fail("{\"zero_optimization\": {\"stage3_prefetch_bucket_size\": 1,\n"
                " \"prefetch_bucket_size\": 2}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2:", "'stage3_prefetch_bucket_size' and 'prefetch_bucket_size'");

    /* cpu_offload -> offload_optimizer {device: cpu}, with DeepSpeed's warning. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1,\n"
                                 " \"zero_optimization\": {\"stage\": 2,\n"
                                 "  \"cpu_offload\": true, \"cpu_offload_use_pin_memory\": true,\n"
                                 "  \"stage3_gather_fp16_weights_on_model_save\": true}}",
                           1),
                     ZL_OK);
    ck_assert_int_eq(cfg.zero.offload_optimizer.device, ZL_OFFLOAD_CPU);
    o = zl_config_origin_of(&cfg, "zero_optimization.offload_optimizer.device");
    ck_assert(o->source == ZL_CFG_ALIAS && !strcmp(o->alias, "cpu_offload") && o->line == 3);
    ck_assert(has_warning(&cfg, NAME ":3: zero_optimization.cpu_offload: Config parameter "
                                     "cpu_offload is deprecated use offload_optimizer instead"));
    ck_assert(has_warning(&cfg, "Config parameter cpu_offload_use_pin_memory is deprecated use "
                                "offload_param or offload_optimizer instead"));
    ck_assert(cfg.zero.gather_16bit_weights_on_model_save);
    ck_assert(has_warning(&cfg, "Config parameter stage3_gather_fp16_weights_on_model_save is "
                                "deprecated use gather_16bit_weights_on_model_save instead"));
    zl_config_free(&cfg);
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"zero_optimization\":"
                                 " {\"stage\": 3, \"cpu_offload_param\": true}}",
                           1),
                     ZL_OK);
    ck_assert_int_eq(cfg.zero.offload_param.device, ZL_OFFLOAD_CPU);
    zl_config_free(&cfg);
    /* Old and new key together is DeepSpeed's assertion. */
    expect_fail("{\"zero_optimization\": {\"stage\": 2,\n \"cpu_offload\": true,\n"
                " \"offload_optimizer\": {\"device\": \"cpu\"}}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: zero_optimization.cpu_offload: Cannot provide deprecated parameter "
                    "'cpu_offload' and replacing parameter 'offload_optimizer' together");
    expect_fail("{\"zero_optimization\": {\"stage3_gather_fp16_weights_on_model_save\": true,"
                " \"stage3_gather_16bit_weights_on_model_save\": true}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has("Cannot provide deprecated parameter 'stage3_gather_fp16_weights_on_model_save' "
               "and replacing parameter 'gather_16bit_weights_on_model_save' together");

    /* "bfloat16" is the old name of "bf16"; "zero_optimization": true is stage 1. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1,\n"
                                 " \"bfloat16\": {\"enabled\": true},\n"
                                 " \"zero_optimization\": true, \"allgather_size\": 2e8}",
                           1),
                     ZL_OK);
    ck_assert(cfg.bf16.enabled);
    o = zl_config_origin_of(&cfg, "bf16.enabled");
    ck_assert(o->source == ZL_CFG_ALIAS && !strcmp(o->alias, "bfloat16") && o->line == 2);
    ck_assert_int_eq(cfg.communication_data_type, ZL_CFG_BF16); /* None -> bf16 */
    ck_assert_int_eq(cfg.zero.stage, 1);
    ck_assert_int_eq(cfg.zero.allgather_bucket_size, 200000000);
    ck_assert_int_eq(src_of(&cfg, "zero_optimization.stage"), ZL_CFG_ALIAS);
    ck_assert(has_warning(&cfg, NAME ":3: zero_optimization: the boolean form is deprecated"));
    zl_config_free(&cfg);
}
END_TEST

START_TEST(test_config_fp16_bf16_conflict)
{
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1,\n \"fp16\": {\"enabled\": true},\n"
                " \"bf16\": {\"enabled\": true}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":3: bf16.enabled: bfloat16 and fp16 modes cannot be simultaneously enabled",
               "fp16.enabled at line 2");
}
END_TEST

/* ---- unknown keys -------------------------------------------------------------------------- */

START_TEST(test_config_unknown_key_in_zero_block)
{
    zl_config cfg;
    zl_error_clear();
    ck_assert_int_eq(zl_config_load(&cfg, zl_test_data("config/typo_zero.json"), 1),
                     ZL_ERR_CONFIG);
    zl_config_free(&cfg);
    ck_msg_has("typo_zero.json:6: unknown key 'overlap_comn' in 'zero_optimization' (did you "
               "mean 'overlap_comm'?)",
               "DeepSpeed rejects it too");
    /* Nested pydantic block, and a key that belongs to another block. */
    expect_fail("{\"zero_optimization\": {\"stage\": 3,\n \"offload_param\": {\"devcie\": "
                "\"cpu\"}}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: unknown key 'devcie' in 'zero_optimization.offload_param' (did you "
                    "mean 'device'?)");
    expect_fail("{\"zero_optimization\": {\"stage\": 3,\n \"aio\": {\"block_size\": 1}}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: unknown key 'aio' in 'zero_optimization'",
               "hint: 'aio' is a top-level key; move it out of 'zero_optimization'");
    expect_fail("{\"bf16\": {\"enabled\": true, \"loss_scale\": 0}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("unknown key 'loss_scale' in 'bf16'", "'loss_scale' belongs in 'fp16'");
    /* A key nothing like a valid one is still an error in a pydantic block. */
    expect_fail("{\"fp16\": {\"enabled\": true, \"zzz\": 1}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("unknown key 'zzz' in 'fp16'");
}
END_TEST

START_TEST(test_config_top_level_typo)
{
    zl_config cfg;
    zl_error_clear();
    ck_assert_int_eq(zl_config_load(&cfg, zl_test_data("config/typo_top.json"), 1),
                     ZL_ERR_CONFIG);
    zl_config_free(&cfg);
    ck_msg_has("typo_top.json:5: unknown key 'train_batch_szie' at the top level (did you mean "
               "'train_batch_size'?)");
    expect_fail("{\"micro_batch_size_per_gpu\": 4}", 1, ZL_ERR_CONFIG);
    ck_msg_has("(did you mean 'train_micro_batch_size_per_gpu'?)");
    expect_fail("{\"train_micro_batch_size_per_gpu\": 4,\n \"stage\": 2}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: unknown key 'stage' at the top level",
               "'stage' belongs in 'zero_optimization'");
    /* Far from every key: DeepSpeed ignores it, zerolab warns with file, line and name. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 4,\n \"my_notes\": "
                                 "\"x\"}",
                           1),
                     ZL_OK);
    ck_assert(has_warning(&cfg, NAME ":2: unknown key 'my_notes' at the top level ignored"));
    zl_config_free(&cfg);
    /* Plain-dict blocks (DeepSpeed ignores unknown keys): typo -> error, stranger -> warning. */
    expect_fail("{\"activation_checkpointing\": {\"partition_activation\": true}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("unknown key 'partition_activation' in 'activation_checkpointing' (did you mean "
               "'partition_activations'?)");
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 4, \"pipeline\": "
                                 "{\"my_flag\": 1}}",
                           1),
                     ZL_OK);
    ck_assert(has_warning(&cfg, "unknown key 'my_flag' in 'pipeline' ignored"));
    zl_config_free(&cfg);
}
END_TEST

/* Every bad key of a block in one run, each with its line and suggestion. */
START_TEST(test_config_all_unknown_keys_at_once)
{
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1,\n \"zero_optimization\": {\"stage\": 2,\n"
                "  \"overlap_comn\": true,\n  \"reduce_bucket_szie\": 5e8,\n"
                "  \"contiguous_gradient\": true}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ": 3 unknown keys in 'zero_optimization':",
               "\n  " NAME ":3: unknown key 'overlap_comn' in 'zero_optimization' (did you mean "
               "'overlap_comm'?)",
               "\n  " NAME ":4: unknown key 'reduce_bucket_szie' in 'zero_optimization' (did you "
               "mean 'reduce_bucket_size'?)",
               "\n  " NAME ":5: unknown key 'contiguous_gradient' in 'zero_optimization' (did you "
               "mean 'contiguous_gradients'?)");
}
END_TEST

/* ---- text level ---------------------------------------------------------------------------- */

START_TEST(test_config_syntax_error_line_column)
{
    zl_config cfg;
    zl_error_clear();
    ck_assert_int_eq(zl_config_load(&cfg, zl_test_data("config/syntax.json"), 1), ZL_ERR_CONFIG);
    zl_config_free(&cfg);
    /* Line 3 is `  "fp16": {"enabled" true}`: the missing ':' is detected at the token `true`,
     * columns 22-25; jansson reports the column where the offending token ends. */
    ck_msg_has("syntax.json:3:25: ':' expected near 'true'");
    expect_fail("{\"a\": 1 /* never closed", 1, ZL_ERR_FORMAT);
    ck_msg_has(NAME ":1:9: unterminated /* comment");
    /* Line counting continues through a closed multi-line comment. */
    expect_fail("{\n/* one\n two */\n \"a\": 1, /* open", 1, ZL_ERR_FORMAT);
    ck_msg_has(NAME ":4:10: unterminated /* comment");
    expect_fail("[1, 2]", 1, ZL_ERR_CONFIG);
    ck_msg_has("must be a JSON object");
}
END_TEST

START_TEST(test_config_comments_and_trailing_commas)
{
    zl_config cfg;
    ck_assert_msg(zl_config_load(&cfg, zl_test_data("config/hjson.json"), 2) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_int_eq(cfg.train_micro_batch_size_per_gpu, 8);
    ck_assert_int_eq(cfg.train_batch_size, 32); /* 8 * 2 * 2 */
    ck_assert_int_eq(cfg.zero.stage, 1);
    ck_assert_int_eq(cfg.zero.reduce_bucket_size, 50000000);
    ck_assert_str_eq(cfg.comms_logger.prof_ops, "all_reduce,all_gather");
    /* Comment markers inside strings are data. */
    ck_assert_str_eq(cfg.tensorboard.output_path, "runs//tb");
    ck_assert_str_eq(cfg.tensorboard.job_name, "a/*b*/c#d");
    /* Lines survive the comment removal: "stage" is on line 9 of the file. */
    ck_assert_int_eq(zl_config_origin_of(&cfg, "zero_optimization.stage")->line, 9);
    zl_config_free(&cfg);
    /* A type error after a multi-line comment still names the right line. */
    expect_fail("{/* one\n two\n three */ \"train_micro_batch_size_per_gpu\": 1,\n"
                " \"fp16\": {\"enabled\": \"maybe\"},}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":4: fp16.enabled: expected true or false, got \"maybe\"");
}
END_TEST

START_TEST(test_config_duplicate_keys)
{
    zl_config cfg;
    zl_error_clear();
    ck_assert_int_eq(zl_config_load(&cfg, zl_test_data("config/duplicate.json"), 1),
                     ZL_ERR_CONFIG);
    zl_config_free(&cfg);
    ck_msg_has("duplicate.json:6: Duplicate keys in DeepSpeed config: ['stage']",
               "in 'zero_optimization'; first given at line 4");
    expect_fail("{\"fp16\": {}, \"steps_per_print\": 1,\n \"fp16\": {}, \"steps_per_print\": 2}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: Duplicate keys in DeepSpeed config: ['fp16', 'steps_per_print']");
}
END_TEST

/* Only regular files are read (a FIFO would block in open, /dev/zero never ends), and only up
 * to a size cap. */
START_TEST(test_config_reads_only_regular_files)
{
    zl_config cfg;
    zl_error_clear();
    ck_assert_int_eq(zl_config_load(&cfg, "/dev/zero", 1), ZL_ERR_IO);
    zl_config_free(&cfg);
    ck_msg_has("'/dev/zero'", "not a regular file", "a device");
    ck_assert_int_eq(zl_config_load(&cfg, "/", 1), ZL_ERR_IO);
    zl_config_free(&cfg);
    ck_msg_has("'/'", "a directory");
    char dir[] = "/tmp/zl_cfg_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char fifo[64], big[64];
    snprintf(fifo, sizeof fifo, "%s/fifo.json", dir);
    snprintf(big, sizeof big, "%s/big.json", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(zl_config_load(&cfg, fifo, 1), ZL_ERR_IO); /* no writer: must not block */
    zl_config_free(&cfg);
    ck_msg_has("fifo.json", "a FIFO");
    /* A sparse file one byte past the cap: refused from its size, nothing read. */
    FILE *f = fopen(big, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), (off_t)64 * 1024 * 1024 + 1), 0);
    fclose(f);
    ck_assert_int_eq(zl_config_load(&cfg, big, 1), ZL_ERR_IO);
    zl_config_free(&cfg);
    ck_msg_has("big.json", "64 MiB");
    unlink(fifo);
    unlink(big);
    rmdir(dir);
}
END_TEST

/* 200,000 keys: the duplicate check and the key-line lookups were quadratic (250 s). The
 * harness timeout is the guard; the test asserts the parse completes and still finds a
 * duplicate at the very end. */
START_TEST(test_config_many_keys)
{
    const int n = 200000;
    size_t cap = (size_t)n * 32 + 256, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len, "{\"train_micro_batch_size_per_gpu\": 1,\n"
                                                   " \"pipeline\": {\"stages\": 1},\n"
                                                   " \"notes\": {");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\"k%d\": %d", i ? ",\n" : "", i, i);
    strcpy(text + len, "}}");
    zl_config cfg;
    ck_assert_msg(parse(&cfg, text, 1) == ZL_OK, "%s", zl_last_error());
    ck_assert(has_warning(&cfg, "unknown key 'notes' at the top level ignored"));
    zl_config_free(&cfg);
    /* The same, with the first key repeated last. */
    strcpy(text + len, ",\n\"k0\": 1}}");
    expect_fail(text, 1, ZL_ERR_CONFIG);
    ck_msg_has("Duplicate keys in DeepSpeed config: ['k0'] (in 'notes'; first given at line 3)");
    /* 200,000 unknown keys at the top level: each is a warning, none is slow. */
    len = (size_t)snprintf(text, cap, "{\"train_micro_batch_size_per_gpu\": 1");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, ",\n\"my_key_%d\": %d", i, i);
    strcpy(text + len, "}");
    ck_assert_msg(parse(&cfg, text, 1) == ZL_OK, "%s", zl_last_error());
    ck_assert(has_warning(&cfg, NAME ":200001: unknown key 'my_key_199999'"));
    zl_config_free(&cfg);
    free(text);
}
END_TEST

/* Keys are compared decoded: "\u0065" is "e", so these two are the same key. */
START_TEST(test_config_duplicate_escaped_key)
{
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1,\n \"gradient_accumulation_steps\": 1,\n"
                " \"gradient_accumulation_st\\u0065ps\": 2}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":3: Duplicate keys in DeepSpeed config: ['gradient_accumulation_steps']",
               "first given at line 2");
    /* A surrogate pair (U+1F600) and a two-byte character decode as jansson decodes them. */
    expect_fail("{\"fp16\": {\"\\u00e9\": 1,\n \"\\u00E9\": 2}}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: Duplicate keys in DeepSpeed config: ['\xc3\xa9']");
    expect_fail("{\"notes\": {\"\\ud83d\\ude00\": 1,\n \"\xf0\x9f\x98\x80\": 2}}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: Duplicate keys in DeepSpeed config: ['\xf0\x9f\x98\x80']");
    /* An escaped key that is a real setting is read and its line found. */
    zl_config cfg;
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1,\n"
                                 " \"gradient_accumulation_st\\u0065ps\": 2}",
                           1),
                     ZL_OK);
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 2);
    ck_assert_int_eq(zl_config_origin_of(&cfg, "gradient_accumulation_steps")->line, 2);
    zl_config_free(&cfg);
}
END_TEST

/* Nesting deeper than the key index follows is an error, and nothing it held leaks (ASan). */
START_TEST(test_config_too_deep)
{
    char text[1024] = "{\"notes\": ";
    for (int i = 0; i < 100; i++) strcat(text, "[");
    for (int i = 0; i < 100; i++) strcat(text, "]");
    strcat(text, "}");
    expect_fail(text, 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":1: config nested too deeply");
}
END_TEST

/* ---- unsupported features ------------------------------------------------------------------ */

START_TEST(test_config_unsupported_features)
{
    static const char *const on[][2] = {
        {"\"elasticity\": {\"enabled\": true}", "elastic training"},
        {"\"sparse_attention\": {\"mode\": \"fixed\"}", "sparse attention"},
        {"\"sparse_gradients\": true", "sparse (CSR) embedding gradients"},
        {"\"curriculum_learning\": {\"enabled\": true}", "curriculum learning"},
        {"\"data_efficiency\": {\"data_sampling\": {\"enabled\": true}}", "data efficiency"},
        {"\"compile\": {\"deepcompile\": true}", "DeepCompile"},
        {"\"hybrid_engine\": {\"enabled\": true}", "hybrid engine"},
        {"\"amp\": {\"enabled\": true, \"opt_level\": \"O1\"}", "Apex AMP"},
        {"\"progressive_layer_drop\": {\"enabled\": true}", "progressive layer drop"},
        {"\"zero_optimization\": {\"stage\": 3, \"zero_quantized_weights\": true}",
         "zero_quantized_weights"},
        {"\"zero_optimization\": {\"stage\": 3, \"zero_hpz_partition_size\": 8}", "hpZ"},
        {"\"zero_optimization\": {\"stage\": 3, \"mics_shard_size\": 8}", "MiCS"},
        {"\"sequence_parallel_size\": 2", "Ulysses"},
    };
    for (size_t k = 0; k < sizeof on / sizeof on[0]; k++) {
        char text[256];
        snprintf(text, sizeof text, "{\"train_micro_batch_size_per_gpu\": 1,\n %s}", on[k][0]);
        expect_fail(text, 1, ZL_ERR_UNSUPPORTED);
        ck_msg_has(NAME ":2:", on[k][1], "zerolab does not implement");
    }
    /* Present but off: accepted. */
    zl_config cfg;
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"elasticity\": "
                              "{\"enabled\": false}, \"sparse_gradients\": false, "
                              "\"tensor_parallel\": {\"autotp_size\": 0}, \"amp\": {\"enabled\": "
                              "false}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    zl_config_free(&cfg);
    /* AutoTP's size is tensor parallelism (run/run.h), read; its other keys are DeepSpeed's
     * (accepted) and a stranger is refused, as pydantic refuses it */
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"tensor_parallel\": "
                              "{\"autotp_size\": 2, \"tp_overlap_comm\": false}}", 1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert_int_eq(cfg.tensor_parallel.autotp_size, 2);
    zl_config_free(&cfg);
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1, \"tensor_parallel\": {\"autotp\": 2}}", 1,
                ZL_ERR_CONFIG);
}
END_TEST

/* Where zerolab was stricter or looser than DeepSpeed by mistake. */
START_TEST(test_config_compile_ac_optimizer_notes)
{
    /* compile: pydantic keys checked, all unknown ones at once. */
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1,\n \"compile\": {\"enabled\": false,\n"
                "  \"backnd\": \"inductor\", \"zzz\": 1}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":3: 2 unknown keys in 'compile'",
               "unknown key 'backnd' in 'compile' (did you mean 'backend'?)",
               "unknown key 'zzz' in 'compile'");
    zl_config cfg;
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"compile\": {\"enabled\": "
                              "false, \"backend\": \"inductor\", \"kwargs\": {}}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    zl_config_free(&cfg);
    /* activation_checkpointing: valid DeepSpeed whatever it asks, and the engine runs it
     * (engine/engine_options.c); what turns checkpointing on is
     * pipeline.activation_checkpoint_interval, so a block without it gets a note saying
     * so, and partition_activations at model-parallel size 1 one saying it does nothing. */
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1,\n \"activation_checkpointing\": {\n"
                              "  \"partition_activations\": true}}", 1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert_int_eq(zl_engine_check_config(&cfg), ZL_OK);
    ck_assert(has_warning(&cfg, "activation_checkpointing: configures how activations are "
                                "checkpointed, but nothing turns it on"));
    ck_assert(has_warning(&cfg, "activation_checkpoint_interval"));
    zl_config_free(&cfg);
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"activation_checkpointing\": "
                                 "{\"number_checkpoints\": 4, \"cpu_checkpointing\": true, "
                                 "\"partition_activations\": true},"
                                 " \"pipeline\": {\"activation_checkpoint_interval\": 2}}", 1), ZL_OK);
    ck_assert_int_eq(zl_engine_check_config(&cfg), ZL_OK);
    ck_assert(has_warning(&cfg, "partition_activations: partitions the checkpoints"));
    ck_assert(!has_warning(&cfg, "nothing turns it on"));
    {
        zl_engine_options eo;
        zl_engine_options_from_config(&eo, &cfg, 32, 1, NULL);
        ck_assert_int_eq(eo.checkpoint_interval, 2);
        ck_assert(eo.cpu_checkpointing);
    }
    zl_config_free(&cfg);
    /* pipeline.stages > 1 runs pipeline parallelism, with ZeRO 0-1 only (DeepSpeed's
     * assertion): the engine's check refuses stage 2 by the stages' line. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1,\n \"pipeline\": {\"stages\": 2}}", 1),
                     ZL_OK);
    ck_assert_int_eq(zl_engine_check_config(&cfg), ZL_OK);
    zl_config_free(&cfg);
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1,\n \"pipeline\": {\"stages\": 2},\n"
                                 " \"zero_optimization\": {\"stage\": 2}}", 1),
                     ZL_OK);
    ck_assert_int_eq(zl_engine_check_config(&cfg), ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism");
    zl_config_free(&cfg);
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"optimizer\": {\"type\": "
                              "\"AdamW\"}, \"activation_checkpointing\": {\"partition_activations\":"
                              " false, \"cpu_checkpointing\": false, \"number_checkpoints\": null}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert(has_warning(&cfg, "activation_checkpointing: configures how"));
    zl_config_free(&cfg);
    /* No optimizer block: one line saying what trains. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1}", 1), ZL_OK);
    ck_assert(has_warning(&cfg, NAME ": no \"optimizer\" block: zerolab trains with AdamW"));
    ck_assert(has_warning(&cfg, "at lr 0.001 (the default)"));
    zl_config_free(&cfg);
}
END_TEST

/* ---- optimizer and scheduler --------------------------------------------------------------- */

static void parse_optimizer(zl_config *cfg, const char *opt)
{
    char text[512];
    snprintf(text, sizeof text, "{\"train_micro_batch_size_per_gpu\": 1, \"optimizer\": %s}", opt);
    ck_assert_msg(parse(cfg, text, 1) == ZL_OK, "%s: %s", opt, zl_last_error());
}

START_TEST(test_config_optimizer_adam_w_mode)
{
    zl_config cfg;
    /* "Adam" is lower-cased and means AdamW unless adam_w_mode is false. */
    parse_optimizer(&cfg, "{\"type\": \"Adam\", \"params\": {\"lr\": 0.0006}}");
    ck_assert_str_eq(cfg.optimizer_name, "adam");
    ck_assert_int_eq(cfg.optimizer.type, ZL_OPTIMIZER_ADAM);
    ck_assert(cfg.optimizer.adam_w_mode && cfg.optimizer.lr == 0.0006);
    ck_assert(cfg.optimizer.beta1 == 0.9 && cfg.optimizer.beta2 == 0.999);
    ck_assert(cfg.optimizer.eps == 1e-8 && cfg.optimizer.weight_decay == 0.0);
    ck_assert(cfg.optimizer.bias_correction);
    zl_config_free(&cfg);
    parse_optimizer(&cfg, "{\"type\": \"ADAM\", \"params\": {\"adam_w_mode\": false}}");
    ck_assert_str_eq(cfg.optimizer_name, "adam");
    ck_assert(!cfg.optimizer.adam_w_mode); /* classic Adam with L2 */
    zl_config_free(&cfg);
    /* AdamW is AdamW whatever adam_w_mode says. */
    parse_optimizer(&cfg, "{\"type\": \"AdamW\", \"params\": {\"adam_w_mode\": false, \"betas\": "
                          "[0.8, 0.95]}}");
    ck_assert_int_eq(cfg.optimizer.type, ZL_OPTIMIZER_ADAMW);
    ck_assert(cfg.optimizer.adam_w_mode);
    ck_assert_int_eq(src_of(&cfg, "optimizer.params.adam_w_mode"), ZL_CFG_INFERRED);
    ck_assert(cfg.optimizer.beta1 == 0.8 && cfg.optimizer.beta2 == 0.95);
    zl_config_free(&cfg);
    /* torch_adam builds torch.optim.AdamW, whose weight_decay default is 0.01. */
    parse_optimizer(&cfg, "{\"type\": \"AdamW\", \"params\": {\"torch_adam\": true}}");
    ck_assert(cfg.optimizer_torch_adam && cfg.optimizer.weight_decay == 0.01);
    zl_config_free(&cfg);
    /* Other optimizers DeepSpeed knows are named as unsupported. */
    const char *unsup[] = {"Lamb", "OneBitAdam", "Lion", "SGD", "Adagrad"};
    for (int k = 0; k < 5; k++) {
        char text[160];
        snprintf(text, sizeof text, "{\"optimizer\": {\"type\": \"%s\"}}", unsup[k]);
        expect_fail(text, 1, ZL_ERR_UNSUPPORTED);
        ck_msg_has("optimizer.type", unsup[k], "not implemented by zerolab");
    }
    expect_fail("{\"optimizer\": {\"type\": \"AdamWW\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("unknown optimizer type 'AdamWW' (did you mean 'AdamW'?)",
               "module 'torch.optim' has no attribute 'AdamWW'");
    expect_fail("{\"optimizer\": {\"type\": \"AdamW\",\n \"params\": {\"learning_rate\": 1}}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: FusedAdam has no parameter 'learning_rate'",
               "unexpected keyword argument 'learning_rate'");
    /* An adjacent transposition is one edit: "tpye" is close to "type" (4 letters allow 1). */
    expect_fail("{\"optimizer\": {\"tpye\": \"AdamW\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("unknown key 'tpye' in 'optimizer' (did you mean 'type'?)");
    expect_fail("{\"optimizer\": {\"params\": {\"lr\": 1}}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("optimizer: the block has no \"type\"");
}
END_TEST

START_TEST(test_config_max_grad_norm_message)
{
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1,\n \"optimizer\": {\"type\": \"Adam\",\n"
                "  \"params\": {\"lr\": 0.001, \"max_grad_norm\": 1.0}}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":3: optimizer.params.max_grad_norm: 'max_grad_norm' is not supported as an "
                    "optimizer parameter, please switch to using the deepspeed parameter "
                    "'gradient_clipping'");
}
END_TEST

START_TEST(test_config_scheduler_names_and_params)
{
    zl_config cfg;
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"scheduler\": {\"type\": "
                              "\"WarmupDecayLR\", \"params\": {\"total_num_steps\": 5000, "
                              "\"warmup_max_lr\": 0.01, \"warmup_num_steps\": 100, "
                              "\"warmup_type\": \"linear\"}}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert_int_eq(cfg.scheduler.type, ZL_LR_WARMUP_DECAY);
    ck_assert_int_eq(cfg.scheduler.total_num_steps, 5000);
    ck_assert_int_eq(cfg.scheduler.warmup_num_steps, 100);
    ck_assert_int_eq(cfg.scheduler.warmup_type, ZL_WARMUP_LINEAR);
    ck_assert(cfg.scheduler.warmup_max_lr == 0.01 && cfg.scheduler.warmup_max_lr_given);
    zl_config_free(&cfg);
    /* WarmupLR warms up to the optimizer's lr when warmup_max_lr is not given. */
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"optimizer\": "
                                 "{\"type\": \"AdamW\", \"params\": {\"lr\": 0.0003}}, "
                                 "\"scheduler\": {\"type\": \"WarmupLR\", \"params\": "
                                 "{\"warmup_type\": \"cosine\"}}}",
                           1),
                     ZL_OK);
    ck_assert(!cfg.scheduler.warmup_max_lr_given && cfg.scheduler.warmup_max_lr == 0.0003);
    ck_assert_int_eq(cfg.scheduler.warmup_type, ZL_WARMUP_LOG); /* unknown -> log, warned */
    ck_assert(has_warning(&cfg, "Using unknown warmup_type: cosine. The increasing function is "
                                "set to default (log)"));
    zl_config_free(&cfg);
    expect_fail("{\"scheduler\": {\"type\": \"WarmupLRR\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("scheduler.type: DeepSpeed does not recognize LR scheduler WarmupLRR (did you mean "
               "'WarmupLR'?)");
    expect_fail("{\"scheduler\": {\"type\": \"StepLR\", \"params\": {\"step_size\": 10}}}", 1,
                ZL_ERR_UNSUPPORTED);
    ck_msg_has("torch.optim.lr_scheduler.StepLR");
    /* A parameter of another schedule is a TypeError in DeepSpeed. */
    expect_fail("{\"scheduler\": {\"type\": \"WarmupLR\",\n \"params\": {\"total_num_steps\": 9}}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: WarmupLR has no parameter 'total_num_steps'",
               "WarmupLR.__init__() got an unexpected keyword argument 'total_num_steps'");
    expect_fail("{\"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": {\"warmup_num_steps\":"
                " 10}}}",
                1, ZL_ERR_CONFIG);
    ck_msg_has("WarmupCosineLR.__init__() missing required argument: 'total_num_steps'");
    expect_fail("{\"scheduler\": {\"type\": \"OneCycle\", \"params\": {}}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("OneCycle.__init__() missing required arguments: 'cycle_min_lr' and "
               "'cycle_max_lr'");
    /* warmup_num_steps 0 or negative: DeepSpeed uses max(2, n), no error. */
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"scheduler\": {\"type\": "
                              "\"WarmupLR\", \"params\": {\"warmup_num_steps\": 0}}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    ck_assert_int_eq(cfg.scheduler.warmup_num_steps, 0);
    zl_config_free(&cfg);
    ck_assert_msg(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"scheduler\": {\"type\": "
                              "\"WarmupDecayLR\", \"params\": {\"warmup_num_steps\": -3, "
                              "\"total_num_steps\": 10}}}",
                        1) == ZL_OK,
                  "%s", zl_last_error());
    zl_config_free(&cfg);
}
END_TEST

/* ---- files, types, values -------------------------------------------------------------------- */

START_TEST(test_config_missing_file)
{
    zl_config cfg;
    zl_error_clear();
    ck_assert_int_eq(zl_config_load(&cfg, "/nonexistent/ds_config.json", 1), ZL_ERR_IO);
    zl_config_free(&cfg);
    ck_msg_has("'/nonexistent/ds_config.json'", "No such file");
}
END_TEST

START_TEST(test_config_type_errors)
{
    expect_fail("{\"zero_optimization\": {\n \"stage\": \"two\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has(NAME ":2: zero_optimization.stage: expected an integer, got \"two\"");
    expect_fail("{\"zero_optimization\": {\"stage\": 4}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("zero_optimization.stage: 4 is not a ZeRO stage");
    expect_fail("{\"zero_optimization\": {\"reduce_bucket_size\": 1.5}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("reduce_bucket_size: expected an integer, got 1.5");
    expect_fail("{\"zero_optimization\": {\"stage\": 2, \"offload_optimizer\": true}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("zero_optimization.offload_optimizer: expected an object {...}, got true");
    expect_fail("{\"zero_optimization\": {\"offload_optimizer\": {\"device\": \"gpu\"}}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("offload_optimizer.device: expected one of \"none\", \"cpu\", \"nvme\", got "
               "\"gpu\"");
    expect_fail("{\"zero_optimization\": {\"offload_param\": {\"device\": \"nvm\"}}}", 1,
                ZL_ERR_CONFIG);
    ck_msg_has("got \"nvm\" (did you mean \"nvme\"?)");
    expect_fail("{\"fp16\": {\"loss_scale\": -1}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("fp16.loss_scale must be >= 0 (0 enables dynamic loss scaling)");
    expect_fail("{\"gradient_allreduce_op\": \"max\"}", 1, ZL_ERR_CONFIG);
    ck_msg_has("Invalid gradient_allreduce_op. Supported operations: ['mean', 'sum']. Got: 'max'");
    expect_fail("{\"communication_data_type\": \"fp64\"}", 1, ZL_ERR_CONFIG);
    ck_msg_has("Invalid communication_data_type. Supported data types: ['fp16', 'bf16', 'fp32']");
    expect_fail("{\"checkpoint\": {\"tag_validation\": \"Loud\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("invalid tag_validation value of Loud");
    expect_fail("{\"train_micro_batch_size_per_gpu\": 1, \"zero_optimization\": {\"stage\": 3}, "
                "\"gradient_allreduce_op\": \"sum\"}",
                1, ZL_ERR_CONFIG);
    ck_msg_has("gradient_allreduce_op='sum' is not supported with ZeRO stage 3");
    /* pydantic's lax coercions that real configs rely on. */
    zl_config cfg;
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"zero_optimization\":"
                                 " {\"stage\": \"2\", \"allgather_bucket_size\": 2e8}, "
                                 "\"checkpoint\": {\"tag_validation\": \"fail\"}}",
                           1),
                     ZL_OK);
    ck_assert_int_eq(cfg.zero.stage, 2);
    ck_assert_int_eq(cfg.zero.allgather_bucket_size, 200000000);
    ck_assert_int_eq(cfg.checkpoint.tag_validation, ZL_TAG_FAIL);
    zl_config_free(&cfg);
}
END_TEST

START_TEST(test_config_zero2_fixture_and_zerolab_block)
{
    zl_config cfg;
    ck_assert_msg(zl_config_load(&cfg, zl_test_data("config/zero2.json"), 4) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_int_eq(cfg.gradient_accumulation_steps, 4); /* 64 // 4 // 4 */
    ck_assert_int_eq(cfg.steps_per_print, 100);
    ck_assert(cfg.fp16.enabled && cfg.communication_data_type == ZL_CFG_FP16);
    ck_assert_int_eq(cfg.zero.stage, 2);
    ck_assert_int_eq(cfg.zero.overlap_comm, 1);
    ck_assert_int_eq(cfg.zero.reduce_bucket_size, 200000000);
    ck_assert_int_eq(cfg.zero.offload_optimizer.device, ZL_OFFLOAD_CPU);
    ck_assert_int_eq(cfg.optimizer.type, ZL_OPTIMIZER_ADAMW);
    ck_assert(cfg.optimizer.lr == 3e-5 && cfg.optimizer.beta1 == 0.8);
    ck_assert_int_eq(cfg.scheduler.type, ZL_LR_WARMUP);
    ck_assert_int_eq(cfg.nwarnings, 0);
    zl_config_free(&cfg);

    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 1, \"zerolab\": {\"model\":"
                                 " \"gpt2-small\", \"backend\": \"cpu\", \"seed\": 7, \"data\": "
                                 "\"tiny.bin\", \"steps\": 50, \"device\": \"V100-16GB\", "
                                 "\"cluster\": \"2x8xa100-80gb\", \"checkpoint_activations\": 2}}",
                           1),
                     ZL_OK);
    ck_assert_str_eq(cfg.zerolab.model, "gpt2-small");
    ck_assert_int_eq(cfg.zerolab.backend, ZL_BACKEND_CPU);
    ck_assert_int_eq(cfg.zerolab.seed, 7);
    ck_assert_str_eq(cfg.zerolab.data, "tiny.bin");
    ck_assert_int_eq(cfg.zerolab.steps, 50);
    ck_assert_str_eq(cfg.zerolab.device, "V100-16GB");
    ck_assert_str_eq(cfg.zerolab.cluster, "2x8xa100-80gb");
    ck_assert_int_eq(cfg.zerolab.checkpoint_activations, 2);
    zl_config_free(&cfg);
    expect_fail("{\"zerolab\": {\"modle\": \"x\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("unknown key 'modle' in 'zerolab' (did you mean 'model'?)");
    expect_fail("{\"zerolab\": {\"backend\": \"tpu\"}}", 1, ZL_ERR_CONFIG);
    ck_msg_has("zerolab.backend: expected one of \"ref\", \"cpu\", \"cuda\", \"discrete\", got \"tpu\"");
}
END_TEST

START_TEST(test_config_set_overrides)
{
    zl_config cfg;
    ck_assert_int_eq(parse(&cfg, "{\"train_micro_batch_size_per_gpu\": 2}", 0), ZL_OK);
    ck_assert_int_eq(zl_config_set(&cfg, "zero_optimization.stage", "3"), ZL_OK);
    ck_assert_int_eq(cfg.zero.overlap_comm, 1); /* re-derived */
    ck_assert_int_eq(zl_config_set(&cfg, "zero_optimization.offload_optimizer.device", "cpu"),
                     ZL_OK);
    ck_assert_int_eq(cfg.zero.offload_optimizer.device, ZL_OFFLOAD_CPU);
    ck_assert_int_eq(zl_config_set(&cfg, "gradient_accumulation_steps", "3"), ZL_OK);
    ck_assert_int_eq(zl_config_resolve_batch(&cfg, 2), ZL_OK);
    ck_assert_int_eq(cfg.train_batch_size, 12);
    ck_assert_int_eq(zl_config_set(&cfg, "gradient_accumulation_steps", "1"), ZL_OK);
    ck_assert_int_eq(zl_config_resolve_batch(&cfg, 2), ZL_OK); /* inferred TB is recomputed */
    ck_assert_int_eq(cfg.train_batch_size, 4);
    ck_assert_int_eq(src_of(&cfg, "zero_optimization.stage"), ZL_CFG_CLI);
    ck_assert_int_eq(zl_config_set(&cfg, "zero_optimization.stagee", "1"), ZL_ERR_NOT_FOUND);
    ck_msg_has("no DeepSpeed setting named 'zero_optimization.stagee' (did you mean "
               "'zero_optimization.stage'?)");
    ck_assert_int_eq(zl_config_set(&cfg, "fp16.enabled", "perhaps"), ZL_ERR_CONFIG);
    ck_msg_has("fp16.enabled: expected true or false, got \"perhaps\"");
    zl_config_free(&cfg);
}
END_TEST

START_TEST(test_config_print_provenance)
{
    zl_config cfg;
    ck_assert_int_eq(parse(&cfg, "{\"train_batch_size\": 32, \"train_micro_batch_size_per_gpu\": "
                                 "\"auto\", \"gradient_clipping\": \"auto\",\n"
                                 " \"zero_optimization\": {\"stage\": 2, \"cpu_offload\": true}}",
                           4),
                     ZL_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    zl_config_print(&cfg, f);
    fclose(f);
    ck_assert_msg(!strncmp(buf, "DeepSpeedEngine configuration:\n", 31), "%s", buf);
    /* "  name <dots> value (source)", all values in one column. */
    char *tb = strstr(buf, "\n  train_batch_size ..");
    ck_assert_ptr_nonnull(tb);
    char *eol = strchr(tb + 1, '\n');
    ck_assert_msg(!strncmp(eol - strlen(" 32 (file)"), " 32 (file)", 10), "%.80s", tb + 1);
    char *gas = strstr(buf, "\n  gradient_accumulation_steps ..");
    ck_assert_ptr_nonnull(gas);
    ck_assert_int_eq((int)(strstr(tb, " 32 (file)") - tb),
                     (int)(strstr(gas, " 1 (inferred") - gas));
    ck_assert_ptr_nonnull(strstr(buf, " 8 (auto, inferred"));          /* MB: 32 // 4 */
    ck_assert_ptr_nonnull(strstr(buf, "\n  gradient_clipping ."));
    ck_assert_ptr_nonnull(strstr(buf, " 1.0 (auto)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "zero_optimization.offload_optimizer.device ."));
    ck_assert_ptr_nonnull(strstr(buf, " \"cpu\" (alias: cpu_offload)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "zero_optimization.reduce_bucket_size ."));
    ck_assert_ptr_nonnull(strstr(buf, " 500000000 (default)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "warnings:\n  " NAME ":2: zero_optimization.cpu_offload:"));
    /* fp32 run: the label says what the type was inferred from. */
    const char *cdt = strstr(buf, "communication_data_type .");
    ck_assert_ptr_nonnull(cdt);
    ck_assert_msg(strstr(cdt, "\"fp32\" (inferred: fp32, the model's type") != NULL, "%.160s", cdt);
    free(buf);
    zl_config_free(&cfg);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_config_empty_defaults);
    tcase_add_test(tc, test_config_triad_inference);
    tcase_add_test(tc, test_config_triad_assertions);
    tcase_add_test(tc, test_config_auto_values);
    tcase_add_test(tc, test_config_fill_auto);
    tcase_add_test(tc, test_config_fill_override);
    tcase_add_test(tc, test_config_integer_ranges);
    tcase_add_test(tc, test_config_triad_overflow);
    tcase_add_test(tc, test_config_aliases_and_deprecated_keys);
    tcase_add_test(tc, test_config_fp16_bf16_conflict);
    tcase_add_test(tc, test_config_unknown_key_in_zero_block);
    tcase_add_test(tc, test_config_top_level_typo);
    tcase_add_test(tc, test_config_all_unknown_keys_at_once);
    tcase_add_test(tc, test_config_syntax_error_line_column);
    tcase_add_test(tc, test_config_comments_and_trailing_commas);
    tcase_add_test(tc, test_config_duplicate_keys);
    tcase_add_test(tc, test_config_reads_only_regular_files);
    tcase_add_test(tc, test_config_many_keys);
    tcase_add_test(tc, test_config_duplicate_escaped_key);
    tcase_add_test(tc, test_config_too_deep);
    tcase_add_test(tc, test_config_unsupported_features);
    tcase_add_test(tc, test_config_compile_ac_optimizer_notes);
    tcase_add_test(tc, test_config_optimizer_adam_w_mode);
    tcase_add_test(tc, test_config_max_grad_norm_message);
    tcase_add_test(tc, test_config_scheduler_names_and_params);
    tcase_add_test(tc, test_config_missing_file);
    tcase_add_test(tc, test_config_type_errors);
    tcase_add_test(tc, test_config_zero2_fixture_and_zerolab_block);
    tcase_add_test(tc, test_config_set_overrides);
    tcase_add_test(tc, test_config_print_provenance);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(config_suite)
