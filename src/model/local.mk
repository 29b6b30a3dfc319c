# src/model: the GPT-2 model as an ordered list of layers
libzerolab_a_SOURCES += \
    %D%/model.c %D%/model.h \
    %D%/gpt_config.c %D%/gpt_config.h \
    %D%/gpt_layers.h %D%/linear.c \
    %D%/embed.c %D%/block.c %D%/head.c
zlmodeldir = $(zlincdir)/model
zlmodel_HEADERS = %D%/model.h %D%/gpt_config.h
ZL_UNIT_TESTS += tests/unit/check_model
