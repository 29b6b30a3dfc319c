/* The smallest program that trains with libzerolab: the lab GPT on the built-in corpus,
 * with DeepSpeed's semantics, from a DeepSpeed config given as a string.
 *
 *   cc train_minimal.c $(pkg-config --cflags zerolab) $(pkg-config --libs --static zerolab)
 *
 * (`make installcheck` builds and runs it against the installed library.) */
#include <stdio.h>
#include <stdlib.h>
#include <zerolab.h>

static int fail(void)
{
    fprintf(stderr, "error: %s\n", zl_last_error());
    return 1;
}

int main(void)
{
    const char *json = "{\"train_micro_batch_size_per_gpu\": 8, \"gradient_clipping\": 1.0,"
                       " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}}}";
    zl_config cfg;
    zl_gpt_config model;
    zl_dataset data;
    zl_loader loader;
    zl_device dev;
    zl_engine engine;
    if (zl_config_parse(&cfg, json, "example", 1) != ZL_OK) return fail();
    if (zl_gpt_config_preset("lab", &model) != ZL_OK) return fail();
    if (zl_dataset_default(&data) != ZL_OK) return fail();

    zl_engine_options opt; /* sequence length 32, seed 1, one rank */
    zl_engine_options_from_config(&opt, &cfg, 32, 1, NULL);
    if (zl_loader_init(&loader, &data, opt.micro_batch_size, opt.seq_len, 0, 1) != ZL_OK) return fail();
    if (zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "rank 0", 0) != ZL_OK) return fail();
    if (zl_engine_create(&engine, &model, &opt, &dev) != ZL_OK) return fail();

    int32_t inputs[8 * 32], targets[8 * 32];
    float first = 0, loss = 0;
    for (int step = 0; step < 40; step++) {
        zl_loader_next(&loader, inputs, targets);
        if (zl_engine_forward(&engine, inputs, targets, &loss) != ZL_OK) return fail();
        zl_engine_backward(&engine);
        zl_engine_step(&engine);
        if (step == 0) first = loss;
    }
    printf("loss %.3f -> %.3f after 40 steps; peak device memory %zu bytes\n", first, loss,
           dev.ledger.peak_nbytes);
    zl_engine_destroy(&engine);
    zl_dataset_free(&data);
    zl_config_free(&cfg);
    return loss < first - 1.0f ? 0 : 1;
}
