# Lab 08: mixed precision (one rank)
check_PROGRAMS += teaching/lab08-mixed-precision/lab08 teaching/solutions/lab08
teaching_lab08_mixed_precision_lab08_SOURCES = teaching/lab08-mixed-precision/lab.c teaching/lab08-mixed-precision/student.c teaching/lab08-mixed-precision/student.h
teaching_lab08_mixed_precision_lab08_LDADD = $(LAB_LIBS)
teaching_solutions_lab08_SOURCES = teaching/lab08-mixed-precision/lab.c teaching/solutions/lab08.c teaching/lab08-mixed-precision/student.h
teaching_solutions_lab08_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab08.lab
EXTRA_DIST += teaching/lab08-mixed-precision/README.md
lab08: teaching/lab08-mixed-precision/lab08$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab08-mixed-precision/lab08$(EXEEXT) demo
lab08-check: teaching/lab08-mixed-precision/lab08$(EXEEXT)
	$(LAB_RUN) 1 teaching/lab08-mixed-precision/lab08$(EXEEXT) check
.PHONY: lab08 lab08-check
