/* zl_export_init OUT.safetensors
 *
 * Writes the input of tests/pytorch_reference.py: zerolab's initial parameters of the
 * reference model (tests/tools/gpt_reference.h) under their Hugging Face GPT-2 names,
 * Linear weights (out, in) as torch.nn.Linear stores them; the token ids of every training
 * step ("batch.inputs", "batch.targets", I32 (steps, B, T), -1 = ignored target); and
 * the model shape, seed and training hyperparameters as metadata. The parameters come
 * from a real engine (ref backend), so they are exactly what a training run starts from.
 *
 * Run by `make fixtures`; not a test. */
#include <stdio.h>
#include <stdlib.h>

#include "ckpt/safetensors.h"
#include "core/device.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* the parameter buffer, written as is */
#include "tests/tools/gpt_reference.h"

static zl_status set_int(zl_safetensors_writer *w, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return zl_safetensors_writer_set_metadata(w, key, buf);
}

/* %.17g round-trips a double exactly through Python's float(). */
static zl_status set_double(zl_safetensors_writer *w, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return zl_safetensors_writer_set_metadata(w, key, buf);
}

static zl_status write_metadata(zl_safetensors_writer *w, const zl_gpt_config *c,
                                const zl_engine_options *o)
{
    zl_status st = ZL_OK;
#define TRY(x) if (st == ZL_OK) st = (x)
    TRY(zl_safetensors_writer_set_metadata(w, "format", "zerolab gpt reference input v1"));
    TRY(set_int(w, "model.vocab_size", c->vocab_size));
    TRY(set_int(w, "model.max_seq_len", c->max_seq_len));
    TRY(set_int(w, "model.num_layers", c->num_layers));
    TRY(set_int(w, "model.num_heads", c->num_heads));
    TRY(set_int(w, "model.channels", c->channels));
    TRY(set_int(w, "seed", (long long)o->seed));
    TRY(set_int(w, "data_seed", GPTREF_DATA_SEED));
    TRY(set_int(w, "micro_batch_size", o->micro_batch_size));
    TRY(set_int(w, "seq_len", o->seq_len));
    TRY(set_int(w, "gradient_accumulation_steps", o->gradient_accumulation_steps));
    TRY(set_int(w, "steps", GPTREF_STEPS));
    TRY(zl_safetensors_writer_set_metadata(w, "optimizer.type", "AdamW"));
    TRY(set_double(w, "optimizer.lr", o->optimizer.lr));
    TRY(set_double(w, "optimizer.beta1", o->optimizer.beta1));
    TRY(set_double(w, "optimizer.beta2", o->optimizer.beta2));
    TRY(set_double(w, "optimizer.eps", o->optimizer.eps));
    TRY(set_double(w, "optimizer.weight_decay", o->optimizer.weight_decay));
    TRY(set_double(w, "gradient_clipping", o->gradient_clipping));
    TRY(zl_safetensors_writer_set_metadata(w, "scheduler.type",
                                           zl_lr_schedule_name(o->scheduler.type)));
    TRY(set_double(w, "scheduler.warmup_min_lr", o->scheduler.warmup_min_lr));
    TRY(set_double(w, "scheduler.warmup_max_lr", o->scheduler.warmup_max_lr));
    TRY(set_int(w, "scheduler.warmup_num_steps", o->scheduler.warmup_num_steps));
    TRY(zl_safetensors_writer_set_metadata(
        w, "scheduler.warmup_type", o->scheduler.warmup_type == ZL_WARMUP_LOG ? "log" : "linear"));
#undef TRY
    return st;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
        return 2;
    }
    zl_gpt_config cfg;
    zl_engine_options opt;
    gptref_model_config(&cfg);
    gptref_engine_options(&opt);

    static int32_t inputs[GPTREF_STEPS * GPTREF_B * GPTREF_T];
    static int32_t targets[GPTREF_STEPS * GPTREF_B * GPTREF_T];
    gptref_batches(inputs, targets, cfg.vocab_size);

    zl_device dev;
    zl_engine *e;
    zl_safetensors_writer *w = NULL;
    zl_status st = zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "export", 0);
    if (st == ZL_OK) st = zl_engine_create(&e, &cfg, &opt, &dev);
    if (st != ZL_OK) {
        fprintf(stderr, "zl_export_init: %s\n", zl_last_error());
        return 1;
    }
    const zl_model *m = &e->model;
    const float *params = zl_tensor_f32(&e->params);
    st = zl_safetensors_writer_create(&w);
    for (int i = 0; st == ZL_OK && i < m->num_params; i++) {
        const zl_param_info *p = &m->params[i];
        st = zl_safetensors_writer_add(w, p->name, ZL_F32, p->ndim, p->shape, params + p->offset);
    }
    int64_t tok_shape[3] = {GPTREF_STEPS, GPTREF_B, GPTREF_T};
    if (st == ZL_OK) st = zl_safetensors_writer_add(w, "batch.inputs", ZL_I32, 3, tok_shape, inputs);
    if (st == ZL_OK) st = zl_safetensors_writer_add(w, "batch.targets", ZL_I32, 3, tok_shape, targets);
    if (st == ZL_OK) st = write_metadata(w, &cfg, &opt);
    if (st == ZL_OK) st = zl_safetensors_writer_write(w, argv[1]);
    if (st != ZL_OK) fprintf(stderr, "zl_export_init: %s\n", zl_last_error());
    else printf("wrote %s: %d parameters (%zu values), %d steps of (%d, %d) tokens\n", argv[1],
                m->num_params, m->params_numel, GPTREF_STEPS, GPTREF_B, GPTREF_T);
    zl_safetensors_writer_destroy(w);
    zl_engine_destroy(e);
    return st == ZL_OK ? 0 : 1;
}
