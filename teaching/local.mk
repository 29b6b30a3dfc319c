# teaching: twelve labs (teaching/README.md). Each lab's folder has its own fragment,
# which builds two programs from the same lab.c: teaching/labNN-NAME/labNN with the
# student's student.c (make labNN, make labNN-check), and teaching/solutions/labNN with the
# reference solution, and lists teaching/tests/labNN.lab (one line: NP SOLUTION STUDENT).
# make check grades every lab's solution (each .lab file is one test, through
# teaching/run-lab.sh) and checks that every skeleton fails readably (check_skeletons.sh).
# The labs use the library as a student's program would: <zerolab.h> and libzerolab.a.
check_LIBRARIES = teaching/liblab.a
teaching_liblab_a_SOURCES = teaching/common/lab.c teaching/common/lab.h
AM_CPPFLAGS += -I$(top_srcdir)/teaching/common
LAB_LIBS = teaching/liblab.a $(ZL_LIBS)
LAB_RUN = env MPIEXEC='$(MPIEXEC)' $(SHELL) $(srcdir)/teaching/run-lab.sh
TEST_EXTENSIONS += .lab
LAB_LOG_COMPILER = env MPIEXEC='$(MPIEXEC)' $(SHELL) $(srcdir)/teaching/run-lab.sh
ZL_LAB_TESTS =
EXTRA_DIST += teaching/README.md teaching/run-lab.sh teaching/check_skeletons.sh

include teaching/lab01-memory/local.mk
include teaching/lab02-backward/local.mk
include teaching/lab03-accumulation/local.mk
include teaching/lab04-collectives/local.mk
include teaching/lab05-data-parallel/local.mk
include teaching/lab06-zero1/local.mk
include teaching/lab07-zero23/local.mk
include teaching/lab08-mixed-precision/local.mk
include teaching/lab09-tensor-parallel/local.mk
include teaching/lab10-pipeline/local.mk
include teaching/lab11-grid/local.mk
include teaching/lab12-checkpoints/local.mk

TESTS += $(ZL_LAB_TESTS) teaching/check_skeletons.sh
EXTRA_DIST += $(ZL_LAB_TESTS)
clean-local: clean-labs
clean-labs:
	rm -rf lab-out teaching/tests/*.out
.PHONY: clean-labs
