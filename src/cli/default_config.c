/* The configuration `zerolab train` runs without --config: an ordinary DeepSpeed JSON
 * config (plus zerolab's own block), so `zerolab config` can show how it resolves and a
 * student can copy it as a starting point. Tuned for the lab model on the built-in corpus:
 * the loss falls from ln(256) = 5.5 to about 2 in a few seconds on two cores. */
#include "cli/cli.h"

const char zl_default_config_json[] =
    "{\n"
    "  \"train_micro_batch_size_per_gpu\": 16,\n"
    "  \"gradient_accumulation_steps\": 1,\n"
    "  \"steps_per_print\": 25,\n"
    "  \"gradient_clipping\": 1.0,\n"
    "  \"optimizer\": {\n"
    "    \"type\": \"AdamW\",\n"
    "    \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95], \"eps\": 1e-8, \"weight_decay\": 0.1}\n"
    "  },\n"
    "  \"scheduler\": {\n"
    "    \"type\": \"WarmupCosineLR\",\n"
    "    \"params\": {\"total_num_steps\": 300, \"warmup_num_steps\": 30, \"warmup_type\": \"linear\",\n"
    "               \"cos_min_ratio\": 0.1}\n"
    "  },\n"
    "  \"zerolab\": {\"model\": \"lab\", \"steps\": 300, \"seed\": 1337}\n"
    "}\n";
