# src/core: status, logging, dtypes, rng, device, tensor, vector helpers
libzerolab_a_SOURCES += \
    %D%/status.c %D%/status.h \
    %D%/log.c %D%/log.h \
    %D%/dtype.c %D%/dtype.h \
    %D%/rng.c %D%/rng.h \
    %D%/device.c %D%/device.h \
    %D%/hostmem.c %D%/hostmem.h \
    %D%/threads.c %D%/threads.h \
    %D%/tensor.c %D%/tensor.h %D%/checked.h \
    %D%/vec.c %D%/vec.h
zlcoredir = $(zlincdir)/core
zlcore_HEADERS = %D%/status.h %D%/log.h %D%/dtype.h %D%/rng.h %D%/device.h %D%/tensor.h %D%/checked.h %D%/vec.h

ZL_UNIT_TESTS += tests/unit/check_dtype tests/unit/check_ledger tests/unit/check_threads
ZL_UNIT_TESTS += tests/unit/check_device_copy tests/unit/check_vec
