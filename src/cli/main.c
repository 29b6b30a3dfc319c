/* zerolab: DeepSpeed's training engine in C, with simulated GPUs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
#include "core/log.h"
#include "core/status.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zerolab <command> [options]\n"
            "\n"
            "commands:\n"
            "  train     train a GPT model from a DeepSpeed config\n"
            "            (no options: the lab model on the built-in corpus)\n"
            "  config    validate a DeepSpeed config and print the resolved settings\n"
            "  plan      a run's memory and simulated step time on a GPU cluster (meta backend)\n"
            "  estimate  DeepSpeed's ZeRO-2/ZeRO-3 model-state memory estimators\n"
            "  version   print the version\n"
            "\n"
            "Run 'zerolab <command> --help' for the options of a command.\n");
}

int zl_cli_fail(void)
{
    if (zl_log_world_size() > 1)
        fprintf(stderr, "[rank %d] zerolab: error: %s\n", zl_log_rank(), zl_last_error());
    else
        fprintf(stderr, "zerolab: error: %s\n", zl_last_error());
    return ZL_EXIT_FAIL;
}

bool zl_cli_parse_positive(const char *cmd, const char *flag, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || errno == ERANGE) {
        fprintf(stderr, "zerolab %s: %s expects a positive integer, got '%s'\n", cmd, flag, s);
        return false;
    }
    if (v > max) {
        fprintf(stderr, "zerolab %s: %s %s is out of range: at most %ld\n", cmd, flag, s, max);
        return false;
    }
    *out = v;
    return true;
}

static int run(int argc, char **argv)
{
    if (argc < 2) return zl_cmd_train(argc, argv); /* the default job: train visibly */
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return zl_cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) return zl_cmd_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return zl_cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "estimate")) return zl_cmd_estimate(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("zerolab %s\n", PACKAGE_VERSION);
        return ZL_EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return ZL_EXIT_OK;
    }
    fprintf(stderr, "zerolab: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return ZL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    int rc = run(argc, argv);
    /* Output that did not arrive (a full disk, /dev/full, a closed pipe) is a failed run,
     * not a success. A command that failed already has said why: one message is enough. */
    errno = 0;
    int flushed = fflush(stdout), err = errno;
    if (flushed != 0 || ferror(stdout)) {
        if (rc == ZL_EXIT_OK) {
            fprintf(stderr, "zerolab: error: cannot write to standard output: %s\n",
                    err ? strerror(err) : "an earlier write failed, output was lost");
            rc = ZL_EXIT_FAIL;
        }
    }
    return rc;
}
