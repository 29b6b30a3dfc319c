/* zerolab's command line: one file per subcommand (cmd_*.c), dispatched by main.c. The
 * helpers they share are in cli_util.h, below them; nothing here calls back into main.c. */
#ifndef ZL_CLI_CLI_H
#define ZL_CLI_CLI_H

#include "cli/cli_util.h"

int zl_cmd_train(int argc, char **argv);
int zl_cmd_config(int argc, char **argv);
int zl_cmd_plan(int argc, char **argv);
int zl_cmd_estimate(int argc, char **argv);
int zl_cmd_ckpt(int argc, char **argv);
int zl_cmd_report(int argc, char **argv);
int zl_cmd_launch(int argc, char **argv);

/* The DeepSpeed config `zerolab train` uses when given none (default_config.c). */
extern const char zl_default_config_json[];

/* The flags that fill Hugging Face "auto" values (zl_config_fill, config/config.h), shared
 * by train and config: --micro-batch N, --grad-accum N, --train-batch-size N, --lr X,
 * --total-steps N, --warmup-steps N (cli_fill.c). zl_cli_fill_flag: 1 if `flag` is one
 * of them and `arg` is valid (stored in *fill), 0 if it is not one of them, -1 with a
 * message on stderr for a bad value. zl_cli_fill_usage: their lines for --help. */
struct zl_config_fill;
int zl_cli_fill_flag(const char *cmd, const char *flag, const char *arg,
                     struct zl_config_fill *fill);
extern const char zl_cli_fill_usage[];

#endif
