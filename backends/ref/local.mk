# backends/ref: naive loops, the readable specification
libzerolab_a_SOURCES += backends/ops.c backends/ops.h \
    %D%/ref.c %D%/ref.h \
    %D%/ref_gemm.c %D%/ref_embedding.c %D%/ref_layernorm.c %D%/ref_attention.c \
    %D%/ref_gelu.c %D%/ref_crossentropy.c %D%/ref_shard.c %D%/ref_adamw.c %D%/ref_vector.c
zlbackendsdir = $(zlincdir)/backends
zlbackends_HEADERS = backends/ops.h
ZL_UNIT_TESTS += tests/unit/check_ops_ref
