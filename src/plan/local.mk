# src/plan: what a run would hold, from the engine on the meta backend (zerolab plan)
libzerolab_a_SOURCES += %D%/plan.c %D%/plan.h %D%/plan_pipe.c %D%/plan_search.c %D%/plan_internal.h
zlplandir = $(zlincdir)/plan
zlplan_HEADERS = %D%/plan.h

# The plan's ledger against real runs' ledgers, at 1, 2 and 3 ranks.
ZL_MPI_CHECKS += tests/mpi/check_plan
ZL_MPI_TESTS += tests/mpi/plan-np1.mpi tests/mpi/plan-np2.mpi tests/mpi/plan-np3.mpi
# Pipelines: every stage planned, the bubble against (S-1)/(M+S-1), the stages' memory.
ZL_UNIT_TESTS += tests/unit/check_plan_pipe
# Tensor parallelism: Korthikanti et al.'s per-layer activations, Megatron's 175B TP 8 x PP 16.
ZL_UNIT_TESTS += tests/unit/check_plan_tp
# The ZeRO paper's per-GPU model states for 7.5B parameters on 64 GPUs.
ZL_UNIT_TESTS += tests/unit/check_plan_zero
# ZeRO-Offload's host ledger against DeepSpeed's estimators; the ZeRO-Offload paper's 13B
# on one V100-32GB.
ZL_UNIT_TESTS += tests/unit/check_plan_offload
# The paper's claim itself: 13B, ZeRO-2 with the optimizer on the host, on one V100-32GB.
ZL_UNIT_TESTS += tests/unit/check_plan_offload_claim
# The search (zl_plan_search) against the same setups planned one by one.
ZL_UNIT_TESTS += tests/unit/check_plan_search

# A traced 2-rank ZeRO-2 run: overlap_comm visible in the Chrome trace.
ZL_MPI_CHECKS += tests/mpi/check_trace
ZL_MPI_TESTS += tests/mpi/trace-np2.mpi
