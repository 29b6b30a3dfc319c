# Lab 05: data parallel, naive -> flat -> bucketed (2 ranks)
check_PROGRAMS += teaching/lab05-data-parallel/lab05 teaching/solutions/lab05
teaching_lab05_data_parallel_lab05_SOURCES = teaching/lab05-data-parallel/lab.c teaching/lab05-data-parallel/student.c teaching/lab05-data-parallel/student.h
teaching_lab05_data_parallel_lab05_LDADD = $(LAB_LIBS)
teaching_solutions_lab05_SOURCES = teaching/lab05-data-parallel/lab.c teaching/solutions/lab05.c teaching/lab05-data-parallel/student.h
teaching_solutions_lab05_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab05.lab
EXTRA_DIST += teaching/lab05-data-parallel/README.md
lab05: teaching/lab05-data-parallel/lab05$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab05-data-parallel/lab05$(EXEEXT) demo
lab05-check: teaching/lab05-data-parallel/lab05$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab05-data-parallel/lab05$(EXEEXT) check
.PHONY: lab05 lab05-check
