/* fio, run from a bench program, for the sequential bandwidth of a directory: the peer
 * that bench-aio and bench-ckpt compare zerolab's file I/O with (fio is optional: the
 * Debian package `fio`; without it the comparison is skipped). */
#ifndef ZL_BENCH_FIO_RUN_H
#define ZL_BENCH_FIO_RUN_H

#include <stdbool.h>
#include <stddef.h>

/* One fio job on `file`: rw "write" or "read", nbytes in blocks of bs, ioengine ("libaio",
 * "psync", ...) at queue depth iodepth, O_DIRECT or buffered, end_fsync (a buffered write
 * counts its fsync, as a write()+fsync save does). Its bandwidth in bytes/s, or < 0 when
 * fio is missing or fails. A read of a file that is not there lays it out first. */
double zl_bench_fio(const char *file, const char *rw, size_t nbytes, size_t bs, int iodepth,
                    const char *ioengine, bool direct, bool end_fsync);

/* Write back dirty pages and drop the page cache (root only: /proc/sys/vm/drop_caches), so
 * that a read comes from the disk. false when that is not allowed: reads are then served
 * from the page cache. */
bool zl_bench_drop_caches(void);

#endif
