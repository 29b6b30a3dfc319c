# Lab 06: ZeRO-1 (2 ranks)
check_PROGRAMS += teaching/lab06-zero1/lab06 teaching/solutions/lab06
teaching_lab06_zero1_lab06_SOURCES = teaching/lab06-zero1/lab.c teaching/lab06-zero1/student.c teaching/lab06-zero1/student.h
teaching_lab06_zero1_lab06_LDADD = $(LAB_LIBS)
teaching_solutions_lab06_SOURCES = teaching/lab06-zero1/lab.c teaching/solutions/lab06.c teaching/lab06-zero1/student.h
teaching_solutions_lab06_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab06.lab
EXTRA_DIST += teaching/lab06-zero1/README.md
lab06: teaching/lab06-zero1/lab06$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab06-zero1/lab06$(EXEEXT) demo
lab06-check: teaching/lab06-zero1/lab06$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab06-zero1/lab06$(EXEEXT) check
.PHONY: lab06 lab06-check
