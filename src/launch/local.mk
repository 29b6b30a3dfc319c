# src/launch: `zerolab launch`'s hostfile, filters and mpiexec command (pure; src/cli runs it)
libzerolab_a_SOURCES += %D%/hostfile.c %D%/hostfile.h %D%/launch.c %D%/launch.h
zllaunchdir = $(zlincdir)/launch
zllaunch_HEADERS = %D%/hostfile.h %D%/launch.h

# DeepSpeed's hostfile, --include/--exclude/--num_*, and the exact mpiexec vector.
ZL_UNIT_TESTS += tests/unit/check_hostfile
