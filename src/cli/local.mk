# src/cli: the zerolab command (the only code that decides exit codes)
# (main.c dispatches to the cmd_*.c subcommands, which share cli_util.c and cli_fill.c and
# never call each other; no call goes back up)
bin_PROGRAMS += zerolab
zerolab_SOURCES = %D%/main.c %D%/cli.h %D%/cli_util.c %D%/cli_util.h %D%/cli_fill.c %D%/cmd_train.c %D%/cmd_config.c %D%/cmd_plan.c %D%/cmd_estimate.c %D%/cmd_ckpt.c %D%/cmd_report.c %D%/cmd_launch.c \
    %D%/default_config.c
zerolab_LDADD = $(ZL_LIBS)
# zerolab estimate end to end (DeepSpeed's published tables, bad input)
TESTS += tests/cli/check_estimate.sh
EXTRA_DIST += tests/cli/check_estimate.sh
