# backends/cpu: OpenBLAS sgemm (oneDNN per shape) + OpenMP kernels
libzerolab_a_SOURCES += %D%/cpu.c %D%/cpu.h \
    %D%/cpu_gemm.c %D%/cpu_embedding.c %D%/cpu_layernorm.c %D%/cpu_attention.c \
    %D%/cpu_gelu.c %D%/cpu_crossentropy.c %D%/cpu_adamw.c %D%/cpu_vector.c %D%/cpu_cast.c %D%/cpu_half.h \
    %D%/cpu_gemm_lp.c %D%/cpu_blas.c %D%/cpu_blas.h \
    %D%/cpu_gemm_choice.c %D%/cpu_gemm_f32.c

ZL_UNIT_TESTS += tests/unit/check_ops_cpu
ZL_UNIT_TESTS += tests/unit/check_cpu_gemm
ZL_UNIT_TESTS += tests/unit/check_cpu_gemm_lp
ZL_UNIT_TESTS += tests/unit/check_cpu_memory
ZL_UNIT_TESTS += tests/unit/check_cpu_blas
