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
# The git revision `zerolab report` prints, zl_revision.h in the build directory: taken at
# build time, not configure time, so it follows every commit; rewritten only when it
# changes, so an unchanged tree recompiles nothing. "unknown" where the source is not a
# git checkout (a tarball) or git is missing. The hash alone (no tag names), as
# `git rev-parse --short HEAD`, with "-dirty" while tracked files differ from it.
src/cli/cmd_report.$(OBJEXT): zl_revision.h
zl_revision.h: zl-revision-force
	$(AM_V_GEN)rev=unknown; \
	if test -e $(top_srcdir)/.git; then \
	  rev=`git -C $(top_srcdir) describe --always --dirty --exclude='*' 2>/dev/null` || rev=unknown; \
	  test -n "$$rev" || rev=unknown; \
	fi; \
	echo "#define ZL_GIT_REVISION \"$$rev\"" >$@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
.PHONY: zl-revision-force
zl-revision-force:
CLEANFILES += zl_revision.h
