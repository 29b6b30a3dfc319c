# src/io: asynchronous file I/O for ZeRO-Infinity's NVMe swap files (floor 1: it includes
# only src/base). An engine over liburing, libaio or threads (configure's --with-aio), the
# swap folders and files (O_DIRECT, DeepSpeed's layout) and the pinned buffer pool.
libzerolab_a_SOURCES += \
    %D%/aio.c %D%/aio.h %D%/aio_backend.h \
    %D%/aio_liburing.c %D%/aio_libaio.c \
    %D%/swap_layout.c %D%/swap_layout.h \
    %D%/swap_file.c %D%/swap_file.h \
    %D%/swap_pool.c %D%/swap_pool.h
zliodir = $(zlincdir)/io
zlio_HEADERS = %D%/aio.h %D%/swap_layout.h %D%/swap_file.h %D%/swap_pool.h
AM_CPPFLAGS += $(AIO_CFLAGS)
ZL_LIBS += $(AIO_LIBS)

ZL_UNIT_TESTS += tests/unit/check_aio
