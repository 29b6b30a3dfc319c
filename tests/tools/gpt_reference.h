/* The PyTorch reference fixture's setup, shared by the program that exports zerolab's
 * initial weights (tests/tools/zl_export_init.c) and the test that compares against the
 * fixture (tests/unit/check_pytorch.c), so the two cannot drift apart. The exporter
 * writes these values into the file's metadata, tests/pytorch_reference.py trains with
 * them, and check_pytorch checks the fixture's metadata against them again.
 *
 * Model: V=96, maxT=16, L=2, NH=2, C=32 (29,056 parameters). Batch B=2, T=12.
 * Training: 10 optimizer steps, one micro-batch each (gradient_accumulation_steps 1),
 * a different batch every step; AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on 2-D
 * parameters only), gradient clipping at global norm 1.0, and DeepSpeed's WarmupLR from
 * 1e-3 to 1e-2 over 4 steps (log warmup), so that the lr changes during the run. */
#ifndef ZL_TESTS_GPT_REFERENCE_H
#define ZL_TESTS_GPT_REFERENCE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/rng.h"
#include "config/optim_settings.h"
#include "engine/engine.h"
#include "model/model.h"
#include "optim/lr_schedule.h"

#define GPTREF_FIXTURE "gpt_reference.safetensors"
#define GPTREF_SEED 20240611u   /* parameter initialisation */
#define GPTREF_DATA_SEED 777u   /* token ids */
#define GPTREF_B 2
#define GPTREF_T 12
#define GPTREF_STEPS 10

static inline void gptref_model_config(zl_gpt_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->name, sizeof cfg->name, "pytorch-reference");
    cfg->vocab_size = 96;
    cfg->max_seq_len = 16;
    cfg->num_layers = 2;
    cfg->num_heads = 2;
    cfg->channels = 32;
}

static inline void gptref_engine_options(zl_engine_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->micro_batch_size = GPTREF_B;
    opt->gradient_accumulation_steps = 1;
    opt->seq_len = GPTREF_T;
    opt->gradient_clipping = 1.0;
    opt->seed = GPTREF_SEED;
    zl_optimizer_params_default(&opt->optimizer, ZL_OPTIMIZER_ADAMW);
    opt->optimizer.type = ZL_OPTIMIZER_ADAMW;
    opt->optimizer.adam_w_mode = true;
    opt->optimizer.bias_correction = true;
    opt->optimizer.lr = 1e-2;
    opt->optimizer.beta1 = 0.9;
    opt->optimizer.beta2 = 0.95;
    opt->optimizer.eps = 1e-8;
    opt->optimizer.weight_decay = 0.1;
    zl_lr_schedule_params_default(&opt->scheduler, ZL_LR_WARMUP);
    opt->scheduler.warmup_min_lr = 1e-3;
    opt->scheduler.warmup_max_lr = 1e-2;
    opt->scheduler.warmup_max_lr_given = true;
    opt->scheduler.warmup_num_steps = 4;
    opt->scheduler.warmup_type = ZL_WARMUP_LOG;
}

/* The token ids of every step: inputs and targets (GPTREF_STEPS, B, T). Each row is a
 * random sequence of T+1 tokens, inputs its first T and targets its last T (next-token
 * prediction). Two targets per step are -1 (ignored), at positions that move with the
 * step, so the loss is a mean over 22 of the 24 tokens. */
static inline void gptref_batches(int32_t *inputs, int32_t *targets, int vocab_size)
{
    for (int s = 0; s < GPTREF_STEPS; s++)
        for (int b = 0; b < GPTREF_B; b++) {
            int32_t seq[GPTREF_T + 1];
            for (int t = 0; t <= GPTREF_T; t++)
                seq[t] = (int32_t)(zl_rng_bits(GPTREF_DATA_SEED, (uint64_t)(s * GPTREF_B + b),
                                               (uint64_t)t) % (uint64_t)vocab_size);
            int32_t *in = inputs + ((size_t)s * GPTREF_B + b) * GPTREF_T;
            int32_t *tg = targets + ((size_t)s * GPTREF_B + b) * GPTREF_T;
            for (int t = 0; t < GPTREF_T; t++) {
                in[t] = seq[t];
                tg[t] = seq[t + 1];
            }
        }
    for (int s = 0; s < GPTREF_STEPS; s++) {
        targets[(size_t)s * GPTREF_B * GPTREF_T + (size_t)(s % GPTREF_T)] = -1;          /* row 0 */
        targets[((size_t)s * GPTREF_B + 1) * GPTREF_T + (size_t)(GPTREF_T - 1)] = -1;    /* row 1, last */
    }
}

#endif
