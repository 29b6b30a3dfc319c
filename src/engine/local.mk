# src/engine: the training engine
libzerolab_a_SOURCES += %D%/engine.c %D%/engine.h %D%/engine_internal.h \
    %D%/engine_options.c %D%/engine_access.c %D%/engine_ties.c %D%/engine_pipe.c %D%/engine_ckpt.c %D%/schedule.c %D%/schedule.h
zlenginedir = $(zlincdir)/engine
zlengine_HEADERS = %D%/engine.h %D%/schedule.h
ZL_UNIT_TESTS += tests/unit/check_schedule

# Data parallelism and ZeRO against single-rank training, at 2, 3 (uneven partitions) and 4 ranks.
ZL_MPI_CHECKS += tests/mpi/check_dp
ZL_MPI_TESTS += tests/mpi/dp-np2.mpi tests/mpi/dp-np3.mpi tests/mpi/dp-np4.mpi
# Mixed precision on one rank and on two with ZeRO 0-3 (fp16 loss scaling, bf16, ledger).
ZL_MPI_CHECKS += tests/mpi/check_mixed
ZL_MPI_TESTS += tests/mpi/mixed-np2.mpi
