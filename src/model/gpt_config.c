#include "model/gpt_config.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "base/checked.h"

static const zl_gpt_config presets[] = {
    /* name        V      maxT  L   NH  C */
    {"lab",        256,   64,   2,  4,  64},   /* ~0.12M params: seconds per step on a laptop */
    {"small",      8192,  128,  4,  4,  256},  /* the benchmark's "small" */
    {"gpt2-124m",  50257, 1024, 12, 12, 768},
    {"gpt2-350m",  50257, 1024, 24, 16, 1024},
    {"gpt2-774m",  50257, 1024, 36, 20, 1280},
    {"gpt2-1.5b",  50257, 1024, 48, 25, 1600},
};
#define NUM_PRESETS (sizeof presets / sizeof presets[0])

const char *zl_gpt_config_preset_names(void)
{
    return "lab, small, gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1.5b";
}

/* The parameter count with checked arithmetic: false and *what names the first term past
 * ZL_GPT_MAX_PARAMS (or past 64 bits). */
static bool count_params(const zl_gpt_config *c, size_t *total, const char **what, size_t *term)
{
    size_t V = (size_t)c->vocab_size, T = (size_t)c->max_seq_len, C = (size_t)c->channels;
    size_t L = (size_t)c->num_layers;
    /* per block: 2 LayerNorms (4C) + qkv (3C*C + 3C) + proj (C*C + C) + fc (4C*C + 4C)
     * + fc proj (4C*C + C) = 12C^2 + 13C; plus wte, wpe and the final LayerNorm. */
    size_t wte = zl_sat_mul(V, C), wpe = zl_sat_mul(T, C);
    size_t block = zl_sat_add(zl_sat_mul(12, zl_sat_mul(C, C)), zl_sat_mul(13, C));
    size_t blocks = zl_sat_mul(L, block);
    size_t sum = zl_sat_add(zl_sat_add(wte, wpe), zl_sat_add(blocks, zl_sat_mul(2, C)));
    *total = sum;
    const struct { const char *what; size_t n; } terms[] = {
        {"vocab_size x channels (the token embedding)", wte},
        {"max_seq_len x channels (the position embedding)", wpe},
        {"12 x channels^2 + 13 x channels (one block)", block},
        {"num_layers x the parameters of one block", blocks},
        {"the total", sum},
    };
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++)
        if (terms[i].n > ZL_GPT_MAX_PARAMS) {
            *what = terms[i].what;
            *term = terms[i].n;
            return false;
        }
    return true;
}

zl_status zl_gpt_config_validate(const zl_gpt_config *c)
{
    if (c->vocab_size <= 0 || c->max_seq_len <= 0 || c->num_layers <= 0 || c->num_heads <= 0 ||
        c->channels <= 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "model '%s': every dimension must be positive (vocab_size %d, max_seq_len %d, "
                         "num_layers %d, num_heads %d, channels %d)",
                         c->name, c->vocab_size, c->max_seq_len, c->num_layers, c->num_heads,
                         c->channels);
    if (c->channels % c->num_heads)
        return zl_errorf(ZL_ERR_CONFIG,
                         "model '%s': channels (%d) must be divisible by num_heads (%d)", c->name,
                         c->channels, c->num_heads);
    /* the parameter table has 12 tensors per block (an int count) and a layer per block */
    if (c->num_layers > ZL_GPT_MAX_LAYERS)
        return zl_errorf(ZL_ERR_CONFIG,
                         "model '%s': num_layers %d is more than zerolab builds (at most %d)\n"
                         "  hint: GPT-3 175B has 96 layers; check num_layers (n_layer)",
                         c->name, c->num_layers, ZL_GPT_MAX_LAYERS);
    size_t total, term;
    const char *what;
    if (!count_params(c, &total, &what, &term)) {
        char n[32];
        if (term == SIZE_MAX) snprintf(n, sizeof n, "more than 2^64");
        else snprintf(n, sizeof n, "%zu", term);
        return zl_errorf(ZL_ERR_CONFIG,
                         "model '%s': %s is %s parameters (vocab_size %d, max_seq_len %d, "
                         "num_layers %d, channels %d), past the limit of 2^53\n"
                         "  hint: check the dimensions; GPT-3 175B has channels 12288 and "
                         "96 layers",
                         c->name, what, n, c->vocab_size, c->max_seq_len, c->num_layers,
                         c->channels);
    }
    return ZL_OK;
}

zl_status zl_gpt_config_preset(const char *name, zl_gpt_config *cfg)
{
    for (size_t i = 0; i < NUM_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) {
            *cfg = presets[i];
            return ZL_OK;
        }
    return zl_errorf(ZL_ERR_NOT_FOUND,
                     "unknown model '%s'\n  hint: use one of %s, or a model JSON file (*.json)",
                     name, zl_gpt_config_preset_names());
}

/* One integer field under either of two names (ours, then Hugging Face's). */
static zl_status get_dim(json_t *root, const char *path, const char *key, const char *hf_key,
                         int *out)
{
    json_t *v = json_object_get(root, key);
    const char *used = key;
    if (!v && hf_key) {
        v = json_object_get(root, hf_key);
        used = hf_key;
    }
    if (!v)
        return zl_errorf(ZL_ERR_CONFIG, "%s: missing key '%s'%s%s%s", path, key,
                         hf_key ? " (or '" : "", hf_key ? hf_key : "", hf_key ? "')" : "");
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 30))
        return zl_errorf(ZL_ERR_CONFIG, "%s: '%s' must be a positive integer", path, used);
    *out = (int)json_integer_value(v);
    return ZL_OK;
}

zl_status zl_gpt_config_load(const char *path, zl_gpt_config *cfg)
{
    json_error_t err;
    FILE *f = fopen(path, "r");
    if (!f) return zl_errorf(ZL_ERR_IO, "cannot open model file '%s': %s", path, strerror(errno));
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    if (!root)
        return zl_errorf(ZL_ERR_CONFIG, "%s:%d:%d: %s", path, err.line, err.column, err.text);
    zl_status st = ZL_ERR_CONFIG;
    if (!json_is_object(root)) {
        zl_errorf(ZL_ERR_CONFIG, "%s: a model file must hold a JSON object", path);
        goto done;
    }
    /* A Hugging Face config.json names its architecture; zerolab builds GPT-2 blocks only
     * (LayerNorm, a GELU MLP of 4x channels, learned positions, tied embeddings), so any
     * other one, Llama's GQA/SwiGLU/RMSNorm included, is refused rather than misread. */
    json_t *type = json_object_get(root, "model_type");
    if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "gpt2"))) {
        st = zl_errorf(ZL_ERR_UNSUPPORTED,
                       "%s: model_type '%s' is not supported: zerolab builds GPT-2 models only\n"
                       "  hint: describe a GPT-2-shaped model of similar size with vocab_size, "
                       "n_positions, n_layer, n_head and n_embd",
                       path, json_is_string(type) ? json_string_value(type) : "?");
        goto done;
    }
    json_t *inner = json_object_get(root, "n_inner"); /* GPT-2's MLP width; null: 4 x n_embd */
    json_t *embd = json_object_get(root, "n_embd");
    if (inner && !json_is_null(inner) &&
        !(json_is_integer(embd) && json_integer_value(inner) == 4 * json_integer_value(embd))) {
        st = zl_errorf(ZL_ERR_UNSUPPORTED,
                       "%s: n_inner must be null or 4 x n_embd: zerolab's MLP is 4 x channels wide",
                       path);
        goto done;
    }
    memset(cfg, 0, sizeof *cfg);
    json_t *name = json_object_get(root, "name");
    snprintf(cfg->name, sizeof cfg->name, "%s",
             json_is_string(name) ? json_string_value(name) : path);
    if ((st = get_dim(root, path, "vocab_size", NULL, &cfg->vocab_size)) != ZL_OK) goto done;
    if ((st = get_dim(root, path, "max_seq_len", "n_positions", &cfg->max_seq_len)) != ZL_OK) goto done;
    if ((st = get_dim(root, path, "num_layers", "n_layer", &cfg->num_layers)) != ZL_OK) goto done;
    if ((st = get_dim(root, path, "num_heads", "n_head", &cfg->num_heads)) != ZL_OK) goto done;
    if ((st = get_dim(root, path, "channels", "n_embd", &cfg->channels)) != ZL_OK) goto done;
    st = zl_gpt_config_validate(cfg);
done:
    json_decref(root);
    return st;
}

zl_status zl_gpt_config_resolve(const char *spec, zl_gpt_config *cfg)
{
    size_t n = strlen(spec);
    if (n > 5 && !strcmp(spec + n - 5, ".json")) return zl_gpt_config_load(spec, cfg);
    return zl_gpt_config_preset(spec, cfg);
}

size_t zl_gpt_config_num_params(const zl_gpt_config *c)
{
    size_t total, term;
    const char *what;
    count_params(c, &total, &what, &term);
    return total; /* SIZE_MAX if it does not fit: zl_gpt_config_validate refuses such a model */
}
