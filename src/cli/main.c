/* zerolab: DeepSpeed's training engine in C, with simulated GPUs.
 *
 * This file is only dispatch: the subcommands (cmd_*.c) and the helpers they share
 * (cli_util.c) never call back into it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "launch/launch.h"
#include "zl_build.h" /* PACKAGE_VERSION */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zerolab <command> [options]\n"
            "\n"
            "commands:\n"
            "  train     train a GPT model from a DeepSpeed config\n"
            "            (no command: train, with the options given; none: the lab\n"
            "            model on the built-in corpus)\n"
            "  config    validate a DeepSpeed config and print the resolved settings\n"
            "  plan      a run's memory and simulated step time on a GPU cluster\n"
            "            (the meta backend: nothing allocated)\n"
            "  estimate  DeepSpeed's ZeRO-2/ZeRO-3 model-state memory estimators\n"
            "  ckpt      inspect, convert (to fp32, llm.c), reshape and compare checkpoints\n"
            "  report    what this build has and can use here, and the environment\n"
            "  launch    run a command on the hosts of a DeepSpeed hostfile (mpiexec)\n"
            "  version   print the version\n"
            "\n"
            "Run 'zerolab <command> --help' for the options of a command.\n");
}

static int run(int argc, char **argv)
{
    if (argc < 2) return zl_cmd_train(argc, argv); /* the default job: train visibly */
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return zl_cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) return zl_cmd_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return zl_cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "estimate")) return zl_cmd_estimate(argc - 1, argv + 1);
    if (!strcmp(cmd, "ckpt")) return zl_cmd_ckpt(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return zl_cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "launch")) return zl_cmd_launch(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("zerolab %s\n", PACKAGE_VERSION);
        return ZL_EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return ZL_EXIT_OK;
    }
    /* Options without a command are train's, as no command at all is: `zerolab --steps 20`. */
    if (cmd[0] == '-') return zl_cmd_train(argc, argv);
    fprintf(stderr, "zerolab: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return ZL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /* A rank of `zerolab launch --bind_cores_to_rank`: pinned before any thread starts. */
    if (zl_launch_bind_from_env() != ZL_OK) return zl_cli_fail();
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
