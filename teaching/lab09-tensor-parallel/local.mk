# Lab 09: tensor parallelism (two ranks)
check_PROGRAMS += teaching/lab09-tensor-parallel/lab09 teaching/solutions/lab09
teaching_lab09_tensor_parallel_lab09_SOURCES = teaching/lab09-tensor-parallel/lab.c teaching/lab09-tensor-parallel/student.c teaching/lab09-tensor-parallel/student.h
teaching_lab09_tensor_parallel_lab09_LDADD = $(LAB_LIBS)
teaching_solutions_lab09_SOURCES = teaching/lab09-tensor-parallel/lab.c teaching/solutions/lab09.c teaching/lab09-tensor-parallel/student.h
teaching_solutions_lab09_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab09.lab
EXTRA_DIST += teaching/lab09-tensor-parallel/README.md
lab09: teaching/lab09-tensor-parallel/lab09$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab09-tensor-parallel/lab09$(EXEEXT) demo
lab09-check: teaching/lab09-tensor-parallel/lab09$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab09-tensor-parallel/lab09$(EXEEXT) check
.PHONY: lab09 lab09-check
