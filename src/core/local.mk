# src/core: the device floor, above the backends and the simulator: a device (a backend,
# a ledger, a simulator's clock), tensors allocated through it, copies between devices,
# and the dtype-generic vector helpers. The ground floor below both is src/base.
libzerolab_a_SOURCES += \
    %D%/device.c %D%/device.h \
    %D%/tensor.c %D%/tensor.h \
    %D%/vec.c %D%/vec.h
zlcoredir = $(zlincdir)/core
zlcore_HEADERS = %D%/device.h %D%/tensor.h %D%/vec.h

ZL_UNIT_TESTS += tests/unit/check_ledger tests/unit/check_device_copy tests/unit/check_vec
