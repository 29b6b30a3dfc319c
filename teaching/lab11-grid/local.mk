# Lab 11: the 3-D grid and a plan search (1 rank: plans only)
check_PROGRAMS += teaching/lab11-grid/lab11 teaching/solutions/lab11
teaching_lab11_grid_lab11_SOURCES = teaching/lab11-grid/lab.c teaching/lab11-grid/student.c teaching/lab11-grid/student.h
teaching_lab11_grid_lab11_LDADD = $(LAB_LIBS)
teaching_solutions_lab11_SOURCES = teaching/lab11-grid/lab.c teaching/solutions/lab11.c teaching/lab11-grid/student.h
teaching_solutions_lab11_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab11.lab
EXTRA_DIST += teaching/lab11-grid/README.md
lab11: teaching/lab11-grid/lab11$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab11-grid/lab11$(EXEEXT) demo
lab11-check: teaching/lab11-grid/lab11$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab11-grid/lab11$(EXEEXT) check
.PHONY: lab11 lab11-check
