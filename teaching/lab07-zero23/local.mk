# Lab 07: ZeRO-2/3, the per-rank memory timeline and prefetch (two ranks)
check_PROGRAMS += teaching/lab07-zero23/lab07 teaching/solutions/lab07
teaching_lab07_zero23_lab07_SOURCES = teaching/lab07-zero23/lab.c teaching/lab07-zero23/student.c teaching/lab07-zero23/student.h
teaching_lab07_zero23_lab07_LDADD = $(LAB_LIBS)
teaching_solutions_lab07_SOURCES = teaching/lab07-zero23/lab.c teaching/solutions/lab07.c teaching/lab07-zero23/student.h
teaching_solutions_lab07_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab07.lab
EXTRA_DIST += teaching/lab07-zero23/README.md
lab07: teaching/lab07-zero23/lab07$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab07-zero23/lab07$(EXEEXT) demo
lab07-check: teaching/lab07-zero23/lab07$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab07-zero23/lab07$(EXEEXT) check
.PHONY: lab07 lab07-check
