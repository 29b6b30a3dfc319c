# src/cli: the zerolab command (the only code that decides exit codes)
bin_PROGRAMS += zerolab
zerolab_SOURCES = %D%/main.c %D%/cli.h %D%/cmd_train.c %D%/train_preflight.c %D%/train_preflight.h %D%/cmd_config.c %D%/cmd_plan.c %D%/cmd_estimate.c \
    %D%/default_config.c
zerolab_LDADD = $(ZL_LIBS)
# zerolab estimate end to end (DeepSpeed's published tables, bad input)
TESTS += tests/cli/check_estimate.sh
EXTRA_DIST += tests/cli/check_estimate.sh
