/* The smallest program that trains with libzerolab: the lab GPT on the built-in corpus,
 * with DeepSpeed's semantics, from a DeepSpeed config given as a string.
 *
 *   cc train_minimal.c $(pkg-config --cflags zerolab) $(pkg-config --libs --static zerolab)
 *
 * zl_run_init assembles the run (config, model, data, loader, device, engine) and refuses,
 * before it allocates, a config zerolab cannot run or a run that would not fit; set
 * o.device = "v100-16gb" to train as a simulated V100 (its memory as the budget).
 * (`make installcheck` builds and runs it against the installed library.) */
#include <stdio.h>
#include <zerolab.h>

int main(void)
{
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 8, \"gradient_clipping\": 1.0,"
                    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}}}";
    o.model = "lab"; /* a preset, or a model JSON file */
    o.seq_len = 32;
    o.seed = 1;
    o.steps = 40;
    zl_run run; /* one rank: o.comm is NULL */
    if (zl_run_init(&run, &o) != ZL_OK) {
        fprintf(stderr, "error: %s\n", zl_last_error());
        zl_run_free(&run);
        return 1;
    }
    float first = 0, loss = 0;
    for (long step = 0; step < run.steps; step++) {
        if (zl_run_step(&run, &loss) != ZL_OK) {
            fprintf(stderr, "error: %s\n", zl_last_error());
            zl_run_free(&run);
            return 1;
        }
        if (step == 0) first = loss;
    }
    printf("loss %.3f -> %.3f after %ld steps; peak device memory %zu bytes\n", first, loss,
           run.steps, run.device.ledger.peak_nbytes);
    zl_run_free(&run);
    return loss < first - 1.0f ? 0 : 1;
}
