# src/zero: ZeRO's partitioning of the flat parameter vector across data-parallel ranks
libzerolab_a_SOURCES += %D%/partition.c %D%/partition.h
zlzerodir = $(zlincdir)/zero
zlzero_HEADERS = %D%/partition.h
