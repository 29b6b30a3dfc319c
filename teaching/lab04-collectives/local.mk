# Lab 04: collectives from scratch (4 ranks)
check_PROGRAMS += teaching/lab04-collectives/lab04 teaching/solutions/lab04
teaching_lab04_collectives_lab04_SOURCES = teaching/lab04-collectives/lab.c teaching/lab04-collectives/student.c teaching/lab04-collectives/student.h
teaching_lab04_collectives_lab04_LDADD = $(LAB_LIBS)
teaching_solutions_lab04_SOURCES = teaching/lab04-collectives/lab.c teaching/solutions/lab04.c teaching/lab04-collectives/student.h
teaching_solutions_lab04_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab04.lab
EXTRA_DIST += teaching/lab04-collectives/README.md
lab04: teaching/lab04-collectives/lab04$(EXEEXT)
	$(LAB_RUN) 4 teaching/lab04-collectives/lab04$(EXEEXT) demo
lab04-check: teaching/lab04-collectives/lab04$(EXEEXT)
	$(LAB_RUN) 4 teaching/lab04-collectives/lab04$(EXEEXT) check
.PHONY: lab04 lab04-check
