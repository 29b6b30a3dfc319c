# backends/ref: naive loops, the readable specification
libzerolab_a_SOURCES += backends/ops.c backends/ops.h \
    %D%/ref.c
zlbackendsdir = $(zlincdir)/backends
zlbackends_HEADERS = backends/ops.h
