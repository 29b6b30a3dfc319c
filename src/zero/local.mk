# src/zero: ZeRO's stages as strategies over the data-parallel group (zero/zero.h), the
# partitioning of the flat parameter vector, and the precision policy the stages call
# (types, master weights, the fp16 loss scaler).
libzerolab_a_SOURCES += %D%/partition.c %D%/partition.h \
    %D%/precision.c %D%/precision.h %D%/loss_scaler.c %D%/loss_scaler.h \
    %D%/zero.c %D%/zero.h %D%/zero_internal.h %D%/reduce.c %D%/replicated.c \
    %D%/offload.c %D%/offload_nvme.c %D%/offload_nvme_param.c %D%/stage0.c %D%/stage1.c %D%/stage2.c %D%/stage2_overlap.c %D%/stage3.c \
    %D%/memory_hint.c
zlzerodir = $(zlincdir)/zero
zlzero_HEADERS = %D%/partition.h %D%/precision.h %D%/loss_scaler.h %D%/zero.h
ZL_UNIT_TESTS += tests/unit/check_loss_scaler
