/* zl_ckpt_probe DIR OUT.safetensors [TAG]
 *
 * One forward of zerolab on a checkpoint's weights, for tests/ckpt_logits.py to compare
 * with PyTorch's on the weights `zerolab ckpt to-fp32` wrote from the same checkpoint.
 *
 * Builds an fp32 run (cpu backend, one rank, ZeRO 0) of the model the checkpoint records
 * (its "model" shape, whatever preset saved it), loads the checkpoint (any layout
 * and precision: the run's parameters are then its fp32 master weights, as to-fp32's
 * file), runs zl_engine_forward on a fixed batch of B = 2 sequences of T = min(16, maxT)
 * deterministic token ids (one target -1, ignored), and writes:
 *
 *   batch.inputs, batch.targets   I32 (B, T)
 *   probs                         F32 (B, T, V): softmax of the logits, as the head saved
 *                                 it in the slot's activations (model/head.c: lnf (N, C)
 *                                 then probs (N, V))
 *   loss                          F32 (): the forward's mean loss over the targets
 *
 * and the model's shape as metadata (model.vocab_size, ...: what pytorch_reference.py's
 * build_model reads). Run by tests/cli/check_ckpt_logits.sh; not a test itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt_read.h"
#include "ckpt/safetensors.h"
#include "data/dataset.h"
#include "engine/engine.h"
#include "model/model.h"
#include "run/run.h"

enum { PROBE_B = 2, PROBE_T_MAX = 16 };

/* The model shape the checkpoint records. */
static zl_status checkpoint_model(const char *dir, const char *tag, zl_gpt_config *cfg)
{
    zl_ckpt *c;
    zl_status st = zl_ckpt_open(&c, dir, tag, false, true);
    if (st != ZL_OK) return st;
    const json_t *mo = json_object_get(zl_ckpt_file_state(zl_ckpt_states(c)), "model");
    const char *path = zl_ckpt_file_path(zl_ckpt_states(c));
    static const char *const keys[5] = {"vocab_size", "max_seq_len", "num_layers", "num_heads",
                                        "channels"};
    int *dst[5] = {&cfg->vocab_size, &cfg->max_seq_len, &cfg->num_layers, &cfg->num_heads,
                   &cfg->channels};
    memset(cfg, 0, sizeof *cfg);
    for (int k = 0; k < 5 && st == ZL_OK; k++) {
        int64_t v;
        st = zl_ckpt_json_int(mo, keys[k], path, &v);
        if (st == ZL_OK && (v <= 0 || v > 1 << 30))
            st = zl_errorf(ZL_ERR_FORMAT, "'%s': model.%s is out of range", path, keys[k]);
        if (st == ZL_OK) *dst[k] = (int)v;
    }
    const char *name = json_string_value(json_object_get(mo, "name"));
    snprintf(cfg->name, sizeof cfg->name, "%s", name ? name : "checkpoint");
    zl_ckpt_close(c);
    return st;
}

static zl_status set_int(zl_safetensors_writer *w, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return zl_safetensors_writer_set_metadata(w, key, buf);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s DIR OUT.safetensors [TAG]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *out = argv[2], *tag = argc == 4 ? argv[3] : NULL;
    zl_gpt_config cfg;
    zl_status st = checkpoint_model(dir, tag, &cfg);
    if (st != ZL_OK) {
        fprintf(stderr, "zl_ckpt_probe: %s\n", zl_last_error());
        return 1;
    }
    const int B = PROBE_B, T = cfg.max_seq_len < PROBE_T_MAX ? cfg.max_seq_len : PROBE_T_MAX;
    const int V = cfg.vocab_size, C = cfg.channels, N = B * T;

    /* The batch: ids spread over the vocabulary; the last target ignored. */
    int32_t *inputs = malloc((size_t)N * sizeof *inputs), *targets = malloc((size_t)N * sizeof *targets);
    /* The run's loader needs data in the model's vocabulary; it is never read. */
    size_t ntok = (size_t)(B * T + 1) * 4;
    int32_t *tokens = malloc(ntok * sizeof *tokens);
    if (!inputs || !targets || !tokens) {
        fprintf(stderr, "zl_ckpt_probe: out of memory\n");
        return 1;
    }
    for (int i = 0; i < N; i++) {
        inputs[i] = (int32_t)(((int64_t)i * 7919 + 13) % V);
        targets[i] = (int32_t)(((int64_t)i * 104729 + 5) % V);
    }
    targets[N - 1] = -1;
    for (size_t i = 0; i < ntok; i++) tokens[i] = (int32_t)(i % (size_t)V);
    zl_dataset ds = {.tokens = tokens, .ntokens = ntok, .vocab_size = V};
    snprintf(ds.desc, sizeof ds.desc, "zl_ckpt_probe's tokens");

    char config[160];
    snprintf(config, sizeof config,
             "{\"train_micro_batch_size_per_gpu\": %d, \"optimizer\": {\"type\": \"AdamW\"}}", B);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = config;
    o.config_name = "zl_ckpt_probe";
    o.model_config = &cfg;
    o.dataset = &ds;
    o.seq_len = T;
    o.seed = 1;
    o.backend = "cpu";
    o.no_preflight = true;
    zl_run run;
    memset(&run, 0, sizeof run);
    zl_engine_loaded loaded;
    memset(&loaded, 0, sizeof loaded);
    float loss = 0;
    st = zl_run_init(&run, &o);
    /* The engine's load (zl_run_load would also seek the data to the saved position,
     * which this run's tokens do not have) */
    zl_engine_load_args la = {.dir = dir, .tag = tag};
    if (st == ZL_OK) st = zl_engine_load_checkpoint(run.engine, &la, &loaded);
    if (st == ZL_OK) st = zl_engine_forward(run.engine, inputs, targets, &loss);

    const zl_model *m = st == ZL_OK ? zl_engine_model(run.engine) : NULL;
    const float *probs = NULL;
    if (m) {
        /* The head is the last layer; fp32 without activation checkpointing saves its
         * activations in the current slot: lnf (N, C), then probs (N, V). */
        const zl_tensor *acts = &m->slots[m->slot].layers[m->num_layers - 1].acts;
        if (m->dtype != ZL_F32 || m->ckpt.interval != 0 ||
            acts->numel < (size_t)N * C + (size_t)N * V) {
            st = zl_errorf(ZL_ERR_INVALID, "the head's saved activations are not fp32 (lnf, probs) "
                           "of %d tokens", N);
        } else {
            probs = (const float *)acts->data + (size_t)N * C;
        }
    }
    zl_safetensors_writer *w = NULL;
    if (st == ZL_OK) st = zl_safetensors_writer_create(&w);
    int64_t tok_shape[2] = {B, T}, probs_shape[3] = {B, T, V};
    if (st == ZL_OK) st = zl_safetensors_writer_add(w, "batch.inputs", ZL_I32, 2, tok_shape, inputs);
    if (st == ZL_OK) st = zl_safetensors_writer_add(w, "batch.targets", ZL_I32, 2, tok_shape, targets);
    if (st == ZL_OK) st = zl_safetensors_writer_add(w, "probs", ZL_F32, 3, probs_shape, probs);
    if (st == ZL_OK) st = zl_safetensors_writer_add(w, "loss", ZL_F32, 0, NULL, &loss);
    if (st == ZL_OK) st = zl_safetensors_writer_set_metadata(w, "format", "zerolab ckpt probe v1");
    if (st == ZL_OK) st = zl_safetensors_writer_set_metadata(w, "tag", loaded.tag);
    if (st == ZL_OK) st = set_int(w, "model.vocab_size", cfg.vocab_size);
    if (st == ZL_OK) st = set_int(w, "model.max_seq_len", cfg.max_seq_len);
    if (st == ZL_OK) st = set_int(w, "model.num_layers", cfg.num_layers);
    if (st == ZL_OK) st = set_int(w, "model.num_heads", cfg.num_heads);
    if (st == ZL_OK) st = set_int(w, "model.channels", cfg.channels);
    if (st == ZL_OK) st = zl_safetensors_writer_write(w, out);
    if (st != ZL_OK) fprintf(stderr, "zl_ckpt_probe: %s\n", zl_last_error());
    else printf("wrote %s: forward of (%d, %d) tokens on %s/%s, loss %.6f\n", out, B, T, dir,
                loaded.tag, (double)loss);
    zl_safetensors_writer_destroy(w);
    free(loaded.client_state);
    zl_run_free(&run);
    free(tokens);
    free(targets);
    free(inputs);
    return st == ZL_OK ? 0 : 1;
}
