# src/config: the DeepSpeed configuration reader, JSON in, resolved options out (config.h;
# the rest is private to config*.c), and the optimizer and LR-scheduler settings it
# resolves (optim_settings.h). A floor below optim, zero, model and the engine: it
# includes only base/.
libzerolab_a_SOURCES += \
    %D%/config.c %D%/config.h %D%/config_internal.h \
    %D%/config_json.c %D%/config_read.c %D%/config_keys.c %D%/config_table.c \
    %D%/config_blocks.c %D%/config_optim.c %D%/config_check.c %D%/config_fill.c %D%/config_print.c \
    %D%/optim_settings.c %D%/optim_settings.h
zlconfigdir = $(zlincdir)/config
zlconfig_HEADERS = %D%/config.h %D%/optim_settings.h

ZL_UNIT_TESTS += tests/unit/check_config
