/* What the out-of-memory message suggests when ZeRO's kind of state dominates: the ledger
 * (sim/ledger.h) knows tags and bytes, src/zero knows which stage partitions what.
 *
 * Only remedies that exist in zerolab and would help this run: a ZeRO stage partitions
 * over data-parallel ranks, so on one rank it can only come with more GPUs, and a stage
 * already in use is not suggested again. Activation checkpointing is suggested for
 * activations when it is off (with it on, the ledger's own hint: a smaller micro-batch). */
#include <stdio.h>
#include <string.h>

#include "zero/zero.h"

/* args: the data-parallel size (0: unknown), the stage in use (-1: unknown), the
 * activation checkpointing interval (0: off) and the pipeline stages (0 or 1: none). */
static bool zero_hint(const int args[4], const char *tag, char *buf, size_t size)
{
    int dp = args[0], z = args[1], pp = args[3];
    /* A layer's activations (not the checkpoints, the backward scratch or the stream). */
    if (!strncmp(tag, "act.", 4) && strcmp(tag, "act.grad") && strcmp(tag, "act.stream")) {
        if (args[2] > 0) return false;
        snprintf(buf, size, "activations dominate: activation checkpointing keeps only each "
                 "layer's input and recomputes the rest in backward, for one more forward pass "
                 "(\"pipeline\": {\"activation_checkpoint_interval\": 1}, or "
                 "--checkpoint-activations); or lower train_micro_batch_size_per_gpu (raising "
                 "gradient_accumulation_steps keeps the global batch) or the sequence length");
        return true;
    }
    /* the ZeRO stage that partitions this kind of state, and what it is */
    int stage = 0;
    const char *what = NULL;
    if (!strncmp(tag, "adam", 4) || !strcmp(tag, "master")) stage = 1, what = "optimizer state";
    else if (!strcmp(tag, "grad") || !strcmp(tag, "bucket")) stage = 2, what = "gradients";
    else if (!strcmp(tag, "param") || !strcmp(tag, "gather")) stage = 3, what = "parameters";
    if (!what) return false; /* not ZeRO's: the ledger's own hint */
    const char *tail = !strcmp(tag, "bucket") ? ", or use a smaller reduce_bucket_size"
                       : stage == 3           ? ", or use a smaller model"
                                              : "";
    const char *verb = stage == 1 ? "dominates" : "dominate", *it = stage == 1 ? "it" : "them";
    if (pp > 1 && stage >= 2) /* DeepSpeed's pipeline engine runs ZeRO 0-1 only */
        snprintf(buf, size, "%s %s: ZeRO stages 2-3, which would partition %s, do not run with "
                 "pipeline parallelism; more pipeline stages divide each stage's share of the "
                 "model (%d now)%s%s", what, verb, it, pp,
                 z < 1 && dp > 1 ? ", and ZeRO stage 1 partitions the optimizer state" : "", tail);
    else if (z >= stage && dp > 1)
        snprintf(buf, size, "%s %s although ZeRO stage %d already partitions %s over %d "
                 "ranks: more GPUs divide %s further, or use a card with more memory%s",
                 what, verb, z, it, dp, it, tail);
    else if (dp == 1)
        snprintf(buf, size, "%s %s: on one GPU nothing partitions %s; ZeRO stage %d over N "
                 "GPUs divides %s by N (e.g. --cluster 8x<device> with \"zero_optimization\": "
                 "{\"stage\": %d}), or use a card with more memory%s",
                 what, verb, it, stage, it, stage, tail);
    else if (dp > 1)
        snprintf(buf, size, "%s %s: ZeRO stage %d partitions %s across the %d data-parallel "
                 "ranks (\"zero_optimization\": {\"stage\": %d})%s",
                 what, verb, stage, it, dp, stage, tail);
    else /* unknown data-parallel size */
        snprintf(buf, size, "%s %s: with several data-parallel ranks, ZeRO stage %d "
                 "partitions %s (\"zero_optimization\": {\"stage\": %d})%s",
                 what, verb, stage, it, stage, tail);
    return true;
}

void zl_zero_set_memory_hint(zl_ledger *l, int dp_size, int zero_stage, int checkpoint_interval,
                             int pipe_stages)
{
    zl_ledger_set_hint(l, zero_hint, dp_size, zero_stage, checkpoint_interval, pipe_stages);
}

void zl_zero_hint_memory(const zl_zero_ctx *z, int checkpoint_interval)
{
    zl_zero_set_memory_hint(&z->device->ledger, z->dp_size, z->strategy->stage, checkpoint_interval,
                            z->mp ? z->mp->size : 1);
}
