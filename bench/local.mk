# bench: `make bench` (never part of `make check`)
#
# zl_bench is an EXTRA_PROGRAM: built only when `make bench` asks for it. `make bench`
# times zerolab and PyTorch training steps in the same run (bench/run.sh) and prints the
# comparison (bench/summarize.py). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for
# this command only, so OpenBLAS picks its kernel for this CPU by itself.
# ZL_BENCH_QUICK=1 make bench: a short run that checks the harness. See docs/benchmarks.md.
EXTRA_PROGRAMS = bench/zl_bench
bench_zl_bench_SOURCES = %D%/zl_bench.c %D%/op_profile.c %D%/op_profile.h
bench_zl_bench_LDADD = $(ZL_LIBS)
EXTRA_DIST += %D%/run.sh %D%/dp.sh %D%/pytorch_bench.py %D%/summarize.py
CLEANFILES += bench/zl_bench$(EXEEXT)

.PHONY: bench
bench: bench/zl_bench$(EXEEXT) zerolab$(EXEEXT) bench/convergence$(EXEEXT) bench/adam_bench$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
	    $(SHELL) $(srcdir)/bench/run.sh ./bench/zl_bench$(EXEEXT) $(srcdir)/bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MPIEXEC='$(MPIEXEC)' \
	    $(SHELL) $(srcdir)/bench/dp.sh ./zerolab$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MPIEXEC='$(MPIEXEC)' \
	    $(SHELL) $(srcdir)/bench/pipe.sh ./zerolab$(EXEEXT) pp tp
	$(MAKE) $(AM_MAKEFLAGS) bench-convergence
	$(MAKE) $(AM_MAKEFLAGS) bench-adam

# fp16 and bf16 against fp32 over 200 steps, one rank and ZeRO 1-3 on two (a table, no
# verdict; tests/mpi/check_mixed.c checks the arithmetic): `make bench-convergence`,
# BENCH_CONVERGENCE_STEPS=N for another length. About a minute. Without MPI: one rank.
EXTRA_PROGRAMS += bench/convergence
bench_convergence_SOURCES = %D%/convergence.c
bench_convergence_LDADD = $(ZL_LIBS)
CLEANFILES += bench/convergence$(EXEEXT)
.PHONY: bench-convergence
bench-convergence: bench/convergence$(EXEEXT)
	@if test -n '$(MPIEXEC)'; then \
	    echo "OMP_NUM_THREADS=1 $(MPIEXEC) -n 2 ./bench/convergence $(BENCH_CONVERGENCE_STEPS)"; \
	    OMP_NUM_THREADS=1 $(MPIEXEC) -n 2 ./bench/convergence$(EXEEXT) $(BENCH_CONVERGENCE_STEPS); \
	else \
	    ./bench/convergence$(EXEEXT) $(BENCH_CONVERGENCE_STEPS); \
	fi

# Only the ZeRO wall-clock comparison (2 MPI ranks): `make bench-dp`.
.PHONY: bench-dp
bench-dp: zerolab$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MPIEXEC='$(MPIEXEC)' \
	    $(SHELL) $(srcdir)/bench/dp.sh ./zerolab$(EXEEXT)

# Pipeline and tensor parallelism on 2 ranks (1 thread each) against one rank at 2
# threads, on the lab model (the built-in config, M = 4 and 8 micro-batches) and on
# --model small (M = 4): PP=2 against its bubble (`make bench-pipe`), TP=2 (`make
# bench-tp`), or both sharing the one-rank runs (`make bench-grid`, as `make bench`
# does). Three repeats of each run; appends to bench-results.txt. How long each takes:
# docs/benchmarks.md.
EXTRA_DIST += %D%/pipe.sh
.PHONY: bench-pipe bench-tp bench-grid
bench-pipe: zerolab$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MPIEXEC='$(MPIEXEC)' \
	    $(SHELL) $(srcdir)/bench/pipe.sh ./zerolab$(EXEEXT) pp
bench-tp: zerolab$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MPIEXEC='$(MPIEXEC)' \
	    $(SHELL) $(srcdir)/bench/pipe.sh ./zerolab$(EXEEXT) tp
bench-grid: zerolab$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MPIEXEC='$(MPIEXEC)' \
	    $(SHELL) $(srcdir)/bench/pipe.sh ./zerolab$(EXEEXT) pp tp

# How long `zerolab plan` takes at full scale: `make bench-plan`.
EXTRA_DIST += %D%/plan.sh
.PHONY: bench-plan
bench-plan: zerolab$(EXEEXT)
	$(SHELL) $(srcdir)/bench/plan.sh ./zerolab$(EXEEXT)

# sgemm vs bf16 gemm_lp (oneDNN) on GPT-2 124M's GEMM shapes, 1 and 2 threads:
# `make bench-gemm` (BENCH_GEMM_ARGS=--quick for a short run). About 5 minutes.
EXTRA_PROGRAMS += bench/gemm_lp_bench
bench_gemm_lp_bench_SOURCES = %D%/gemm_lp_bench.c
bench_gemm_lp_bench_LDADD = $(ZL_LIBS)
CLEANFILES += bench/gemm_lp_bench$(EXEEXT)
.PHONY: bench-gemm
bench-gemm: bench/gemm_lp_bench$(EXEEXT)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./bench/gemm_lp_bench$(EXEEXT) $(BENCH_GEMM_ARGS)

# CPU Adam on 100M fp32 parameters at 1 and 2 threads: GB/s at 28 bytes per parameter,
# next to the in-place memory bandwidth measured in the same process, the bf16 fused
# step, and torch.optim.AdamW on the same problem (Debian's python3-torch; skipped
# without it): `make bench-adam` (BENCH_ADAM_ARGS=--quick for a short run). About a
# minute; needs about 3 GB of memory for zerolab's arrays and 4 GB for torch's.
EXTRA_PROGRAMS += bench/adam_bench
bench_adam_bench_SOURCES = %D%/adam_bench.c
bench_adam_bench_LDADD = $(ZL_LIBS)
CLEANFILES += bench/adam_bench$(EXEEXT)
EXTRA_DIST += %D%/adam.sh %D%/adam_torch.py
.PHONY: bench-adam
bench-adam: bench/adam_bench$(EXEEXT)
	$(SHELL) $(srcdir)/bench/adam.sh ./bench/adam_bench$(EXEEXT) $(srcdir)/bench $(BENCH_ADAM_ARGS)

# NVMe swap bandwidth through src/io against fio on the same directory: `make bench-aio`
# (ZL_BENCH_AIO_DIR=/path, default /var/tmp; ZL_BENCH_AIO_NBYTES for a shorter pass).
# Writes and reads 1 GiB per backend, twice each; fio (apt-get install fio) is optional.
EXTRA_PROGRAMS += bench/aio_bench
bench_aio_bench_SOURCES = %D%/aio_bench.c %D%/fio_run.c %D%/fio_run.h
bench_aio_bench_LDADD = $(ZL_LIBS)
CLEANFILES += bench/aio_bench$(EXEEXT)
.PHONY: bench-aio
bench-aio: bench/aio_bench$(EXEEXT)
	./bench/aio_bench$(EXEEXT)

# Checkpoint save and load of gpt2-124m fp32 with Adam's state (about 2 GB of files; about
# 2.5 GB of memory) against fio's buffered sequential write (+fsync) and read on the same
# directory: `make bench-ckpt` (ZL_BENCH_CKPT_DIR=/path, default /var/tmp; as root the page
# cache is dropped before each read). fio (apt-get install fio) is optional.
EXTRA_PROGRAMS += bench/ckpt_bench
bench_ckpt_bench_SOURCES = %D%/ckpt_bench.c %D%/fio_run.c %D%/fio_run.h
bench_ckpt_bench_LDADD = $(ZL_LIBS)
CLEANFILES += bench/ckpt_bench$(EXEEXT)
.PHONY: bench-ckpt
bench-ckpt: bench/ckpt_bench$(EXEEXT)
	./bench/ckpt_bench$(EXEEXT)
