# backends/discrete: ref's kernels on memory the host cannot touch (a GPU's rules), to
# find host code that reads or writes device memory (discrete.h)
libzerolab_a_SOURCES += %D%/discrete.c %D%/discrete.h
ZL_UNIT_TESTS += tests/unit/check_discrete
