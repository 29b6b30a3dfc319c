# Lab 10: pipelines, GPipe vs 1F1B (2 ranks: the real 2-stage run)
check_PROGRAMS += teaching/lab10-pipeline/lab10 teaching/solutions/lab10
teaching_lab10_pipeline_lab10_SOURCES = teaching/lab10-pipeline/lab.c teaching/lab10-pipeline/student.c teaching/lab10-pipeline/student.h
teaching_lab10_pipeline_lab10_LDADD = $(LAB_LIBS)
teaching_solutions_lab10_SOURCES = teaching/lab10-pipeline/lab.c teaching/solutions/lab10.c teaching/lab10-pipeline/student.h
teaching_solutions_lab10_LDADD = $(LAB_LIBS)
ZL_LAB_TESTS += teaching/tests/lab10.lab
EXTRA_DIST += teaching/lab10-pipeline/README.md
lab10: teaching/lab10-pipeline/lab10$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab10-pipeline/lab10$(EXEEXT) demo
lab10-check: teaching/lab10-pipeline/lab10$(EXEEXT)
	$(LAB_RUN) 2 teaching/lab10-pipeline/lab10$(EXEEXT) check
.PHONY: lab10 lab10-check
