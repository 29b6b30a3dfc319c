# src/engine: the training engine
libzerolab_a_SOURCES += %D%/engine.c %D%/engine.h
zlenginedir = $(zlincdir)/engine
zlengine_HEADERS = %D%/engine.h
