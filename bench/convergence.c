/* bench/convergence: 200 steps of the lab model on the built-in corpus in fp16 (with loss
 * scaling) and bf16, on one rank and on the data-parallel ranks with ZeRO 1-3 (and bf16's
 * reduction and accumulation types), each against fp32's loss. It prints a table and
 * asserts nothing: how far a 16-bit run's loss lands from fp32's after 200 steps depends
 * on the rounding of every step, and so on the compiler's flags and the machine. The
 * tests (tests/mpi/check_mixed.c) check the arithmetic instead: N ranks against one, bit
 * for bit where it is the same.
 *
 *   mpiexec -n 2 bench/convergence [STEPS]     (`make bench-convergence`; STEPS: 200)
 *
 * Every rank runs the single-rank trainings too, on its own device; rank 0 prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "run/run.h"

static zl_comm *world;

/* The built-in `zerolab train` recipe (src/cli/default_config.c: the 300-step cosine it
 * defines) with a precision block appended. */
static const char recipe[] =
    "{\"train_micro_batch_size_per_gpu\": %d, \"gradient_accumulation_steps\": 1,"
    " \"gradient_clipping\": 1.0,"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3, \"betas\": [0.9, 0.95],"
    "   \"eps\": 1e-8, \"weight_decay\": 0.1}},"
    " \"scheduler\": {\"type\": \"WarmupCosineLR\", \"params\": {\"total_num_steps\": 300,"
    "   \"warmup_num_steps\": 30, \"warmup_type\": \"linear\", \"cos_min_ratio\": 0.1}},"
    " \"zero_optimization\": {\"stage\": %d}%s%s}";

static void die(const char *what)
{
    fprintf(stderr, "convergence: %s: %s\n", what, zl_last_error());
    exit(1);
}

/* Train `steps` steps at a global batch of 16 sequences of 64 tokens; returns the mean
 * of the global batch's loss over the last 10 steps, and the skipped steps. */
static double train(const char *precision, int stage, zl_comm *dp, int steps, long long *skipped)
{
    int W = dp ? dp->size : 1;
    char json[2048];
    snprintf(json, sizeof json, recipe, 16 / W, stage, precision[0] ? ", " : "", precision);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = json;
    o.config_name = "<bench>";
    o.model = "lab";
    o.seq_len = 64;
    o.seed = 1337;
    o.comm = dp; /* NULL: this rank alone */
    zl_run run;
    if (zl_run_init(&run, &o) != ZL_OK) die("set-up");
    double tail = 0;
    for (int step = 0; step < steps; step++) {
        float loss;
        if (zl_run_step(&run, &loss) != ZL_OK) die("training");
        if (W > 1) loss = zl_engine_dp_mean(run.engine, loss);
        if (step >= steps - 10) tail += loss / 10.0;
    }
    *skipped = zl_engine_skipped_steps(run.engine);
    zl_run_free(&run);
    return tail;
}

#define FP16 "\"fp16\": {\"enabled\": true}"
#define BF16 "\"bf16\": {\"enabled\": true}"

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 200;
    if (steps < 10) {
        fprintf(stderr, "usage: convergence [STEPS >= 10]\n");
        return 2;
    }
    if (zl_comm_world(&world, NULL) != ZL_OK) die("MPI");
    zl_log_set_level(ZL_LOG_WARN); /* the loss scaler's overflow messages */
    static const struct {
        const char *name, *precision;
        int stage;
        bool dp;
    } runs[] = {
        {"bf16", BF16, 0, false},
        {"fp16", FP16, 0, false},
        {"bf16", BF16, 1, true},
        {"fp16", FP16, 1, true},
        {"bf16", BF16, 2, true},
        {"fp16", FP16, 2, true},
        {"bf16", BF16, 3, true},
        {"fp16", FP16, 3, true},
        {"bf16+fp32 accumulation", BF16 ", \"data_types\": {\"grad_accum_dtype\": \"fp32\"}", 1, true},
        {"bf16+fp32 communication", BF16 ", \"communication_data_type\": \"fp32\"", 2, true},
    };
    long long skipped;
    double ref = train("", 0, NULL, steps, &skipped);
    if (world->rank == 0) {
        printf("bench convergence: lab model, %d steps, global batch 16 x 64 tokens; mean loss of the last 10 steps\n", steps);
        printf("  %-26s %-7s %5s %8s %8s %8s\n", "precision", "ranks", "stage", "loss", "vs fp32", "skipped");
        printf("  %-26s %-7d %5d %8.4f %8s %8d\n", "fp32", 1, 0, ref, "", 0);
    }
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double got = train(runs[i].precision, runs[i].stage, runs[i].dp ? world : NULL, steps, &skipped);
        if (world->rank == 0)
            printf("  %-26s %-7d %5d %8.4f %+7.2f%% %8lld\n", runs[i].name, runs[i].dp ? world->size : 1,
                   runs[i].stage, got, 100 * (got - ref) / ref, skipped);
        fflush(stdout);
    }
    zl_comm_destroy(world);
    return 0;
}
