/* GPT-2 shapes: presets from a lab-size model to GPT-2 1.5B, and JSON for custom ones. */
#ifndef ZL_MODEL_GPT_CONFIG_H
#define ZL_MODEL_GPT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "base/status.h"
#include "model/model.h"

/* A preset by name: "lab" (~0.1M params, byte vocabulary), "small" (the benchmark's
 * V=8192 L=4 C=256), "gpt2-124m", "gpt2-350m", "gpt2-774m", "gpt2-1.5b". */
zl_status zl_gpt_config_preset(const char *name, zl_gpt_config *cfg);

/* Parse a model JSON file. Accepts our keys (vocab_size, max_seq_len, num_layers,
 * num_heads, channels) and Hugging Face GPT-2 config.json keys (vocab_size, n_positions,
 * n_layer, n_head, n_embd). */
zl_status zl_gpt_config_load(const char *path, zl_gpt_config *cfg);

/* `spec` is a preset name, or a path ending in .json. */
zl_status zl_gpt_config_resolve(const char *spec, zl_gpt_config *cfg);

/* Largest model zerolab builds: 2^53 parameters (every count exact in a double, every byte
 * count of its states far from 64-bit overflow), at most 2^16 layers. */
#define ZL_GPT_MAX_PARAMS ((size_t)1 << 53)
#define ZL_GPT_MAX_LAYERS (1 << 16)

/* Checks: every dimension positive, channels divisible by heads, at most
 * ZL_GPT_MAX_LAYERS layers and ZL_GPT_MAX_PARAMS parameters, counted with checked
 * arithmetic (ZL_ERR_CONFIG naming the term and the dimensions that pass the limit). */
zl_status zl_gpt_config_validate(const zl_gpt_config *cfg);

/* Parameter count of the model (tied embeddings counted once); SIZE_MAX past 64 bits. */
size_t zl_gpt_config_num_params(const zl_gpt_config *cfg);

/* The presets' names, for help text: "lab, small, gpt2-124m, ...". */
const char *zl_gpt_config_preset_names(void);

#endif
