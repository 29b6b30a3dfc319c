# src/optim: Adam/AdamW over flat buffers, DeepSpeed's LR schedules
libzerolab_a_SOURCES += \
    %D%/param_range.c %D%/param_range.h \
    %D%/adamw.c %D%/adamw.h \
    %D%/lr_schedule.c %D%/lr_schedule.h
zloptimdir = $(zlincdir)/optim
zloptim_HEADERS = %D%/param_range.h %D%/adamw.h %D%/lr_schedule.h
ZL_UNIT_TESTS += tests/unit/check_lr_schedule tests/unit/check_adamw
