# Lab 03: micro-batches and recomputation (one rank)
check_PROGRAMS += teaching/lab03-accumulation/lab03 teaching/solutions/lab03
teaching_lab03_accumulation_lab03_SOURCES = teaching/lab03-accumulation/lab.c teaching/lab03-accumulation/student.c teaching/lab03-accumulation/student.h
teaching_lab03_accumulation_lab03_LDADD = $(LAB_LIBS)
teaching_solutions_lab03_SOURCES = teaching/lab03-accumulation/lab.c teaching/solutions/lab03.c teaching/lab03-accumulation/student.h
teaching_solutions_lab03_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab03.lab
EXTRA_DIST += teaching/lab03-accumulation/README.md
lab03: teaching/lab03-accumulation/lab03$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab03-accumulation/lab03$(EXEEXT) demo
lab03-check: teaching/lab03-accumulation/lab03$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab03-accumulation/lab03$(EXEEXT) check
.PHONY: lab03 lab03-check
