# Lab 02: backward by hand (one rank)
check_PROGRAMS += teaching/lab02-backward/lab02 teaching/solutions/lab02
teaching_lab02_backward_lab02_SOURCES = teaching/lab02-backward/lab.c teaching/lab02-backward/student.c teaching/lab02-backward/student.h
teaching_lab02_backward_lab02_LDADD = $(LAB_LIBS)
teaching_solutions_lab02_SOURCES = teaching/lab02-backward/lab.c teaching/solutions/lab02.c teaching/lab02-backward/student.h
teaching_solutions_lab02_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab02.lab
EXTRA_DIST += teaching/lab02-backward/README.md
lab02: teaching/lab02-backward/lab02$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab02-backward/lab02$(EXEEXT) demo
lab02-check: teaching/lab02-backward/lab02$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab02-backward/lab02$(EXEEXT) check
.PHONY: lab02 lab02-check
