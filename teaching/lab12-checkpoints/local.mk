# Lab 12: checkpoints (2 ranks)
check_PROGRAMS += teaching/lab12-checkpoints/lab12 teaching/solutions/lab12
teaching_lab12_checkpoints_lab12_SOURCES = teaching/lab12-checkpoints/lab.c teaching/lab12-checkpoints/student.c teaching/lab12-checkpoints/student.h
teaching_lab12_checkpoints_lab12_LDADD = $(LAB_LIBS)
teaching_solutions_lab12_SOURCES = teaching/lab12-checkpoints/lab.c teaching/solutions/lab12.c teaching/lab12-checkpoints/student.h
teaching_solutions_lab12_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab12.lab
EXTRA_DIST += teaching/lab12-checkpoints/README.md
lab12: teaching/lab12-checkpoints/lab12$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab12-checkpoints/lab12$(EXEEXT) demo
lab12-check: teaching/lab12-checkpoints/lab12$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab12-checkpoints/lab12$(EXEEXT) check
.PHONY: lab12 lab12-check
