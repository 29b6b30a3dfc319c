# src/data: datasets (llm.c shards, bytes, the built-in corpus) and the batch loader
libzerolab_a_SOURCES += \
    %D%/dataset.c %D%/dataset.h \
    %D%/corpus.c \
    %D%/loader.c %D%/loader.h
zldatadir = $(zlincdir)/data
zldata_HEADERS = %D%/dataset.h %D%/loader.h

ZL_UNIT_TESTS += tests/unit/check_data
