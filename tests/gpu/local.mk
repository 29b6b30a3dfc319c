# tests/gpu: the checks a GPU machine runs (tests/gpu/run.sh runs them all, with the GPU
# training comparisons and the benchmark; docs/cuda.md).
#
# check_ops: every op of backends/ops.h on the backend named by ZL_TEST_BACKEND against
# ref. It is plain C (no Check), so that a GPU machine without Check still builds it, and
# it touches the backend's memory only through its ops. make check runs it twice: on cpu
# (here: so the harness itself is tested on every build) and on cuda (exit 77, a skip,
# without a CUDA build or without a device).
check_PROGRAMS += tests/gpu/check_ops
tests_gpu_check_ops_SOURCES = tests/gpu/check_ops.c
tests_gpu_check_ops_LDADD = $(ZL_LIBS)
TESTS += tests/gpu/ops-cpu.sh
TESTS += tests/gpu/ops-cuda.sh
EXTRA_DIST += tests/gpu/ops-cpu.sh tests/gpu/ops-cuda.sh tests/gpu/run.sh tests/gpu/torch_mfu.py
