/* The flags that fill Hugging Face "auto" values (zl_config_fill, config/config.h), shared
 * by `zerolab train` and `zerolab config`; declared in cli.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"

const char zl_cli_fill_usage[] =
    "  --micro-batch N       train_micro_batch_size_per_gpu\n"
    "  --grad-accum N        gradient_accumulation_steps\n"
    "  --train-batch-size N  train_batch_size\n"
    "  --lr X                optimizer.params.lr (and a warmup schedule's warmup_max_lr)\n"
    "  --total-steps N       scheduler.params.total_num_steps\n"
    "  --warmup-steps N      scheduler.params.warmup_num_steps\n"
    "                        these six fill \"auto\" values as the Hugging Face Trainer\n"
    "                        does; a config value that differs is an error; with the\n"
    "                        built-in config they simply set the values\n";

int zl_cli_fill_flag(const char *cmd, const char *flag, const char *arg, zl_config_fill *fill)
{
    static const struct {
        const char *flag;
        long long max;
    } ints[] = {{"--micro-batch", INT_MAX},      {"--grad-accum", INT_MAX},
                {"--train-batch-size", INT64_MAX}, {"--total-steps", INT64_MAX},
                {"--warmup-steps", INT64_MAX}};
    if (!strcmp(flag, "--lr")) {
        char *end;
        errno = 0;
        double x = strtod(arg, &end);
        if (*arg == '\0' || *end != '\0' || !isfinite(x) || x < 0 || errno == ERANGE) {
            fprintf(stderr, "zerolab %s: --lr expects a learning rate (a number >= 0, e.g. 3e-4), "
                            "got '%s'\n", cmd, arg);
            return -1;
        }
        fill->has_lr = true;
        fill->lr = x;
        return 1;
    }
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        if (strcmp(flag, ints[k].flag)) continue;
        bool warmup = !strcmp(flag, "--warmup-steps"); /* 0 is a valid warmup */
        char *end;
        errno = 0;
        long long v = strtoll(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < (warmup ? 0 : 1) || errno == ERANGE) {
            fprintf(stderr, "zerolab %s: %s expects a %s integer, got '%s'\n", cmd, flag,
                    warmup ? "non-negative" : "positive", arg);
            return -1;
        }
        if (v > ints[k].max) {
            fprintf(stderr, "zerolab %s: %s %s is out of range: at most %lld\n", cmd, flag, arg,
                    ints[k].max);
            return -1;
        }
        switch (k) {
        case 0: fill->micro_batch = v; break;
        case 1: fill->grad_accum = v; break;
        case 2: fill->train_batch_size = v; break;
        case 3: fill->total_steps = v; break;
        default:
            fill->has_warmup_steps = true;
            fill->warmup_steps = v;
        }
        return 1;
    }
    return 0;
}
