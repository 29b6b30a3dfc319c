# sim: the simulated device (ledger now; presets, cost model and timeline later)
libzerolab_a_SOURCES += %D%/ledger.c %D%/ledger.h
zlsimdir = $(zlincdir)/sim
zlsim_HEADERS = %D%/ledger.h
