# src/comm: communicators (self, mpi), the process topology, the comms logger
# comm_op.{c,h}: the ops and their names, below both comm.c and comm_log.c (no cycle).
libzerolab_a_SOURCES += \
    %D%/comm.c %D%/comm.h %D%/comm_internal.h \
    %D%/comm_self.c %D%/comm_virtual.c %D%/comm_window.c %D%/comm_window.h \
    %D%/comm_op.c %D%/comm_op.h %D%/comm_log.c %D%/comm_log.h \
    %D%/topology.c %D%/topology.h
# The MPI communicator only when configure found MPICH (automake distributes it anyway).
if HAVE_MPI
libzerolab_a_SOURCES += %D%/comm_mpi.c
endif
# The NCCL communicator only with the CUDA toolkit (configure's --with-cuda). Its host-side
# decisions (comm_nccl.h) are unit-tested here; the collectives by the GPU test, which
# exits 77 without a device (tests/gpu/check_nccl.c says how to run it).
EXTRA_DIST += %D%/comm_nccl.c %D%/comm_nccl.h
if HAVE_CUDA
libzerolab_a_SOURCES += %D%/comm_nccl.c %D%/comm_nccl.h
ZL_UNIT_TESTS += tests/unit/check_comm_nccl
ZL_MPI_CHECKS += tests/gpu/check_nccl
ZL_MPI_TESTS += tests/gpu/nccl-np1.mpi tests/gpu/nccl-np2.mpi
endif
EXTRA_DIST += tests/gpu/nccl-np1.mpi tests/gpu/nccl-np2.mpi
zlcommdir = $(zlincdir)/comm
zlcomm_HEADERS = %D%/comm.h %D%/comm_op.h %D%/comm_log.h %D%/topology.h %D%/comm_window.h

ZL_UNIT_TESTS += tests/unit/check_topology tests/unit/check_comm_self
# MPI tests (see tests/local.mk), under mpiexec at 2, 3 and 4 ranks.
ZL_MPI_CHECKS += tests/mpi/check_comm_mpi
ZL_MPI_TESTS += tests/mpi/comm-np2.mpi tests/mpi/comm-np3.mpi tests/mpi/comm-np4.mpi
# The collective watchdog (timeouts, the interrupt flag), at 2 ranks.
ZL_MPI_CHECKS += tests/mpi/check_watchdog
ZL_MPI_TESTS += tests/mpi/watchdog-np2.mpi
