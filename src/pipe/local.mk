# src/pipe: pipeline parallelism. The partitioning of the layer list into stages
# (DeepSpeed's partition_method); schedules as data and the executor come next.
libzerolab_a_SOURCES += %D%/partition.c %D%/partition.h
zlpipedir = $(zlincdir)/pipe
zlpipe_HEADERS = %D%/partition.h
# DeepSpeed's partition vectors, brute-force optimality, the model's methods and errors.
ZL_UNIT_TESTS += tests/unit/check_pipe_partition
