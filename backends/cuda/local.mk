# backends/cuda: built only when configure found the CUDA toolkit (nvcc, cudart, cuBLAS,
# NCCL). .cu files compile with $(NVCC); the library then links $(CUDA_LIBS).
SUFFIXES = .cu
.cu.o:
	$(AM_V_CC)$(NVCC) $(NVCCFLAGS) -I$(top_srcdir)/src -I$(top_srcdir) -I$(top_builddir) \
	    -c -o $@ $<

EXTRA_DIST += %D%/cuda_probe.cu %D%/cuda_probe.h
if HAVE_CUDA
libzerolab_a_SOURCES += %D%/cuda_probe.cu %D%/cuda_probe.h
libzerolab_a_SOURCES += %D%/cuda_gemm.cu
libzerolab_a_SOURCES += %D%/cuda_layernorm.cu
libzerolab_a_SOURCES += %D%/cuda_attention.cu
libzerolab_a_SOURCES += %D%/cuda_crossentropy.cu
ZL_UNIT_TESTS += tests/unit/check_cuda
endif
