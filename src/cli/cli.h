/* zerolab's command line: one file per subcommand. Only this directory decides exit
 * codes: 0 success, 1 a run that failed (the message says why), 2 bad usage. */
#ifndef ZL_CLI_CLI_H
#define ZL_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "core/status.h"

#define ZL_EXIT_OK 0
#define ZL_EXIT_FAIL 1
#define ZL_EXIT_USAGE 2

int zl_cmd_train(int argc, char **argv);
int zl_cmd_config(int argc, char **argv);
int zl_cmd_plan(int argc, char **argv);
int zl_cmd_estimate(int argc, char **argv);

/* The DeepSpeed config `zerolab train` uses when given none (default_config.c). */
extern const char zl_default_config_json[];

/* Help text, printf-style, with every line wrapped at ZL_CLI_HELP_COLUMNS (lists such
 * as the model presets and devices grow); a wrapped option's description continues under
 * its first column. Every line ends with a newline, the last one too. */
#define ZL_CLI_HELP_COLUMNS 80
void zl_cli_help(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "zerolab: error: <zl_last_error()>" to stderr and return ZL_EXIT_FAIL. */
int zl_cli_fail(void);

/* A positive integer flag of command `cmd`, at most `max`: false, with "zerolab CMD: FLAG
 * expects a positive integer, got 'S'" on stderr, for 0, negatives and anything not a
 * number, and "... is out of range: at most MAX" above max (never truncated: a value that
 * lands in an int must pass INT_MAX or less). */
bool zl_cli_parse_positive(const char *cmd, const char *flag, const char *s, long max, long *out);

/* The flags that fill Hugging Face "auto" values (zl_config_fill, config/config.h), shared
 * by train and config: --micro-batch N, --grad-accum N, --train-batch-size N, --lr X,
 * --total-steps N, --warmup-steps N (cmd_config.c). zl_cli_fill_flag: 1 if `flag` is one
 * of them and `arg` is valid (stored in *fill), 0 if it is not one of them, -1 with a
 * message on stderr for a bad value. zl_cli_fill_usage: their lines for --help. */
struct zl_config_fill;
int zl_cli_fill_flag(const char *cmd, const char *flag, const char *arg,
                     struct zl_config_fill *fill);
extern const char zl_cli_fill_usage[];

/* Can `path` (given by `flag`) be written? Asked before a long run, not after it: opened for
 * writing without truncating it (O_NONBLOCK, so a FIFO without a reader fails instead of
 * blocking) and removed again if this check created it. ZL_ERR_IO with the reason. */
zl_status zl_cli_check_writable(const char *path, const char *flag);

#endif
