# backends/cpu: OpenBLAS sgemm + OpenMP kernels
libzerolab_a_SOURCES += %D%/cpu.c
