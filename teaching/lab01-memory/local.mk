# Lab 01: where the memory goes (one rank)
check_PROGRAMS += teaching/lab01-memory/lab01 teaching/solutions/lab01
teaching_lab01_memory_lab01_SOURCES = teaching/lab01-memory/lab.c teaching/lab01-memory/student.c teaching/lab01-memory/student.h
teaching_lab01_memory_lab01_LDADD = $(LAB_LIBS)
teaching_solutions_lab01_SOURCES = teaching/lab01-memory/lab.c teaching/solutions/lab01.c teaching/lab01-memory/student.h
teaching_solutions_lab01_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab01.lab
EXTRA_DIST += teaching/lab01-memory/README.md
lab01: teaching/lab01-memory/lab01$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab01-memory/lab01$(EXEEXT) demo
lab01-check: teaching/lab01-memory/lab01$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab01-memory/lab01$(EXEEXT) check
.PHONY: lab01 lab01-check
