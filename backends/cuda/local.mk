# backends/cuda: built only when configure found the CUDA toolkit (nvcc, cudart, cuBLAS,
# NCCL). .cu files compile with $(NVCC); the library then links $(CUDA_LIBS).
SUFFIXES = .cu
.cu.o:
	$(AM_V_CC)$(NVCC) $(NVCCFLAGS) -I$(top_srcdir)/src -I$(top_srcdir) -I$(top_builddir) \
	    -c -o $@ $<

EXTRA_DIST += %D%/cuda_probe.cu %D%/cuda_probe.h %D%/cuda.cu %D%/cuda_ops.h
EXTRA_DIST += %D%/cuda_dtype.cuh
EXTRA_DIST += %D%/cuda_reduce.cuh
# The kernels' 16-bit conversions are plain C too: tested on the host, GPU or not.
ZL_UNIT_TESTS += tests/unit/check_cuda_dtype
# The allocator's bookkeeping is plain C, built and tested in every build (no CUDA needed).
libzerolab_a_SOURCES += %D%/cuda_alloc.c %D%/cuda_alloc.h %D%/cuda.h
ZL_UNIT_TESTS += tests/unit/check_cuda_alloc
if HAVE_CUDA
libzerolab_a_SOURCES += %D%/cuda_probe.cu %D%/cuda_probe.h
libzerolab_a_SOURCES += %D%/cuda.cu %D%/cuda_ops.h
libzerolab_a_SOURCES += %D%/cuda_gemm.cu
libzerolab_a_SOURCES += %D%/cuda_layernorm.cu
libzerolab_a_SOURCES += %D%/cuda_attention.cu
libzerolab_a_SOURCES += %D%/cuda_crossentropy.cu
libzerolab_a_SOURCES += %D%/cuda_vector.cu
libzerolab_a_SOURCES += %D%/cuda_gelu.cu
libzerolab_a_SOURCES += %D%/cuda_embedding.cu
libzerolab_a_SOURCES += %D%/cuda_adamw.cu
libzerolab_a_SOURCES += %D%/cuda_trace.cu
ZL_UNIT_TESTS += tests/unit/check_cuda
ZL_UNIT_TESTS += tests/unit/check_cuda_runtime
endif
