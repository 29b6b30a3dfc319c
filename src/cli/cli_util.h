/* The helpers zerolab's subcommands share, below them in the cli room: they know no
 * subcommand (cli_util.c). Only this directory decides exit codes: 0 success, 1 a run
 * that failed (the message says why), 2 bad usage. */
#ifndef ZL_CLI_CLI_UTIL_H
#define ZL_CLI_CLI_UTIL_H

#include <stdbool.h>
#include <stdio.h>

#include "base/status.h"

#define ZL_EXIT_OK 0
#define ZL_EXIT_FAIL 1
#define ZL_EXIT_USAGE 2

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
/* --pipeline-schedule's value: "1f1b" (DeepSpeed's, *gpipe false) or "gpipe"; else a
 * message on stderr naming the command and false. */
bool zl_cli_parse_pipeline_schedule(const char *cmd, const char *s, bool *gpipe);

#endif
