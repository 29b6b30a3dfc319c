# src/run: a run assembled from a resolved config (devices, simulator, model, engine,
# loader, the feature check and the up-front memory plan); train, bench, the example and
# tests build their runs here
libzerolab_a_SOURCES += %D%/run.c %D%/run.h %D%/preflight.c %D%/preflight.h
zlrundir = $(zlincdir)/run
zlrun_HEADERS = %D%/run.h %D%/preflight.h

# A run from a config on one rank: trains, refuses unbuilt features, preflight, card, trace.
ZL_UNIT_TESTS += tests/unit/check_run
