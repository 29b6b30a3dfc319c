# src/base: the ground floor, below the backends and the simulator: statuses and their
# messages, logging, dtypes and 16-bit rounding, the counter-based RNG, checked
# arithmetic, the host's memory and thread counts. It includes nothing of zerolab's above.
libzerolab_a_SOURCES += \
    %D%/status.c %D%/status.h \
    %D%/log.c %D%/log.h \
    %D%/dtype.c %D%/dtype.h \
    %D%/rng.c %D%/rng.h \
    %D%/hostmem.c %D%/hostmem.h \
    %D%/threads.c %D%/threads.h \
    %D%/checked.h
zlbasedir = $(zlincdir)/base
zlbase_HEADERS = %D%/status.h %D%/log.h %D%/dtype.h %D%/rng.h %D%/checked.h

ZL_UNIT_TESTS += tests/unit/check_dtype tests/unit/check_threads
