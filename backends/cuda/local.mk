# backends/cuda: built only when configure found the CUDA toolkit (nvcc, cudart, cuBLAS,
# NCCL). .cu files compile with $(NVCC); the library then links $(CUDA_LIBS).
SUFFIXES = .cu
.cu.o:
	$(AM_V_CC)$(NVCC) $(NVCCFLAGS) -I$(top_srcdir)/src -I$(top_srcdir) -I$(top_builddir) \
	    -c -o $@ $<

EXTRA_DIST += %D%/cuda_probe.cu %D%/cuda_probe.h
EXTRA_DIST += %D%/cuda_dtype.cuh
EXTRA_DIST += %D%/cuda_reduce.cuh
EXTRA_DIST += %D%/cuda_vector.cu
EXTRA_DIST += %D%/cuda_gelu.cu
EXTRA_DIST += %D%/cuda_embedding.cu
EXTRA_DIST += %D%/cuda_adamw.cu
# The kernels' 16-bit conversions are plain C too: tested on the host, GPU or not.
ZL_UNIT_TESTS += tests/unit/check_cuda_dtype
if HAVE_CUDA
libzerolab_a_SOURCES += %D%/cuda_probe.cu %D%/cuda_probe.h
libzerolab_a_SOURCES += %D%/cuda_gemm.cu
libzerolab_a_SOURCES += %D%/cuda_layernorm.cu
libzerolab_a_SOURCES += %D%/cuda_attention.cu
libzerolab_a_SOURCES += %D%/cuda_crossentropy.cu
libzerolab_a_SOURCES += %D%/cuda_vector.cu
libzerolab_a_SOURCES += %D%/cuda_gelu.cu
libzerolab_a_SOURCES += %D%/cuda_embedding.cu
libzerolab_a_SOURCES += %D%/cuda_adamw.cu
ZL_UNIT_TESTS += tests/unit/check_cuda
endif
