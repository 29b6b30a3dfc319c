# tests: Check-based unit tests. Each module's fragment appends its test programs to
# ZL_UNIT_TESTS; they all link the library and the shared helpers in check_util.c.
if HAVE_CHECK
check_PROGRAMS += $(ZL_UNIT_TESTS)
TESTS += $(ZL_UNIT_TESTS)
noinst_LIBRARIES = tests/libzltest.a
tests_libzltest_a_SOURCES = tests/unit/check_util.c tests/unit/check_util.h
endif

# End-to-end tests of the zerolab command (shell scripts; $ZEROLAB points at the binary).
TEST_EXTENSIONS = .sh .mpi
SH_LOG_COMPILER = $(SHELL)
# One line a script, so that adding one never touches another's line.
TESTS += tests/cli/check_cli.sh
TESTS += tests/cli/check_build.sh
TESTS += tests/cli/check_readme.sh
TESTS += tests/cli/check_config_cli.sh
TESTS += tests/cli/check_plan_cli.sh
TESTS += tests/cli/check_faults.sh
TESTS += tests/cli/check_unbuilt.sh
TESTS += tests/cli/check_floors.sh
TESTS += tests/cli/check_nvme_faults.sh
TESTS += tests/cli/check_pnvme_faults.sh
TESTS += tests/cli/check_ckpt_logits.sh
TESTS += tests/cli/check_ckpt_tools.sh
TESTS += tests/cli/check_report.sh
TESTS += tests/cli/check_launch.sh
TESTS += tests/cli/check_config_reference.sh
TESTS += tests/cli/check_tutorial.sh
TESTS += tests/cli/check_two_hosts.sh
TESTS += tests/cli/check_discrete.sh
TESTS += tests/cli/check_cuda_cli.sh
EXTRA_DIST += tests/cli/check_cli.sh tests/cli/check_build.sh tests/cli/check_readme.sh
EXTRA_DIST += tests/cli/check_config_cli.sh
EXTRA_DIST += tests/cli/check_plan_cli.sh
EXTRA_DIST += tests/cli/check_faults.sh
EXTRA_DIST += tests/cli/check_unbuilt.sh
EXTRA_DIST += tests/cli/check_floors.sh
EXTRA_DIST += tests/cli/check_nvme_faults.sh tests/cli/nvme_faults.sh
EXTRA_DIST += tests/cli/check_pnvme_faults.sh
EXTRA_DIST += tests/cli/check_ckpt_logits.sh
EXTRA_DIST += tests/cli/check_ckpt_tools.sh
EXTRA_DIST += tests/cli/check_report.sh
EXTRA_DIST += tests/cli/check_launch.sh
EXTRA_DIST += tests/cli/check_config_reference.sh
EXTRA_DIST += tests/cli/check_tutorial.sh
EXTRA_DIST += tests/cli/check_two_hosts.sh tests/cli/netns_exec.sh
EXTRA_DIST += tests/cli/check_discrete.sh
EXTRA_DIST += examples

# MPI tests. A module's fragment appends a program tests/mpi/check_NAME to ZL_MPI_CHECKS
# and data files tests/mpi/NAME-npN.mpi (one line: the program's path) to ZL_MPI_TESTS;
# each data file is one test (PASS: tests/mpi/NAME-np2.mpi), the program under mpiexec
# with N ranks, through tests/run-mpi.sh (timeout, OMP_NUM_THREADS=1, exit 77 without
# MPI). The N is in the file name because automake names a test's log after it minus the
# extension. The programs use zl_test_run_mpi. Without MPI they are neither built nor
# listed (but distributed).
AM_CPPFLAGS += -I$(top_srcdir)/tests/unit # check_util.h, from tests/mpi/ too
if HAVE_CHECK
if HAVE_MPI
check_PROGRAMS += $(ZL_MPI_CHECKS)
TESTS += $(ZL_MPI_TESTS)
endif
endif
EXTRA_DIST += tests/run-mpi.sh $(ZL_MPI_TESTS)
MPI_LOG_COMPILER = env MPIEXEC='$(MPIEXEC)' $(SHELL) $(srcdir)/tests/run-mpi.sh

# ZeRO-Offload of the optimizer (src/zero/offload.c) against the same runs without it.
ZL_MPI_CHECKS += tests/mpi/check_offload
ZL_MPI_TESTS += tests/mpi/offload-np1.mpi tests/mpi/offload-np2.mpi
# ZeRO stage 3 at parameter-tensor granularity, and offload_param (src/zero/stage3.c).
ZL_MPI_CHECKS += tests/mpi/check_zero3
ZL_MPI_TESTS += tests/mpi/zero3-np1.mpi tests/mpi/zero3-np2.mpi
# A traced GPT-3 175B ZeRO-3 plan: allgathers per tensor, some under compute.
ZL_UNIT_TESTS += tests/unit/check_plan_zero3
# Activation checkpointing: its ledger, RNG position and plan (FLOPs, 2sbh).
ZL_UNIT_TESTS += tests/unit/check_actckpt
# Activation checkpointing (model/model.h zl_model_ckpt): the same bits as without it.
ZL_MPI_CHECKS += tests/mpi/check_actckpt
ZL_MPI_TESTS += tests/mpi/actckpt-np1.mpi tests/mpi/actckpt-np2.mpi
# ZeRO-Infinity's optimizer swapping (src/zero/offload_nvme.c): the same, with swap files.
ZL_MPI_CHECKS += tests/mpi/check_nvme
ZL_MPI_TESTS += tests/mpi/nvme-np1.mpi tests/mpi/nvme-np2.mpi
# ZeRO-Infinity's parameter swapping (src/zero/offload_nvme_param.c).
ZL_MPI_CHECKS += tests/mpi/check_pnvme
ZL_MPI_TESTS += tests/mpi/pnvme-np1.mpi tests/mpi/pnvme-np2.mpi
# 1,000 random corruptions of a checkpoint's files, each refused with a message naming the
# file (src/ckpt/ckpt_file.c, src/engine/engine_ckpt.c).
ZL_UNIT_TESTS += tests/unit/check_ckpt_fuzz
# Checkpoints: exact resume on the same layout, and resume on another (docs/testing.md).
TESTS += tests/cli/check_resume.sh
EXTRA_DIST += tests/cli/check_resume.sh
# Checkpoints: SIGKILL at random moments of saves leaves `latest` loadable, bit for bit.
TESTS += tests/cli/check_ckpt_crash.sh
EXTRA_DIST += tests/cli/check_ckpt_crash.sh
# Checkpoints: a full or read-only filesystem, an uncreatable directory: a message, exit 1,
# the previous checkpoint intact.
TESTS += tests/cli/check_ckpt_full.sh
EXTRA_DIST += tests/cli/check_ckpt_full.sh
# Checkpoints through the library: save and load on every rank, bit for bit; a save on one
# rank only fails at the collective timeout, naming save_checkpoint (np 2).
ZL_MPI_CHECKS += tests/mpi/check_ckpt_mpi
ZL_MPI_TESTS += tests/mpi/ckpt-np1.mpi tests/mpi/ckpt-np2.mpi
# The 3-D grid against one rank: PP=2, PP=3 on an uneven split, PP=2 x DP=2 with ZeRO-1,
# TP=2, TP=2 x DP=2, PP=2 x TP=2; bf16, activation checkpointing; DeepSpeed's refusals.
ZL_MPI_CHECKS += tests/mpi/check_grid
ZL_MPI_TESTS += tests/mpi/grid-np2.mpi tests/mpi/grid-np3.mpi tests/mpi/grid-np4.mpi
# Pipeline parallelism through the command: PP=2 on 2 ranks prints one rank's losses, the
# config's pipeline block and DeepSpeed's layout, the refusals (stages, ZeRO-2/3).
TESTS += tests/cli/check_pipeline.sh
EXTRA_DIST += tests/cli/check_pipeline.sh
EXTRA_DIST += tests/cli/check_cuda_cli.sh
