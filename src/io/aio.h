/* Asynchronous file I/O for ZeRO-Infinity's swap files, configured like DeepSpeed's
 * top-level `aio` block.
 *
 * A zl_aio engine moves (file, offset, buffer, nbytes) transfers between host memory and
 * files without blocking the caller: zl_aio_pread / zl_aio_pwrite queue a transfer and
 * return; zl_aio_wait blocks until everything queued so far has completed and returns
 * the first failure. Each transfer is cut into `intra_op_parallelism` contiguous slices,
 * one per worker thread, and each slice into `block_size` requests, of which at most
 * `queue_depth` are in flight per worker, as in DeepSpeed's async_io op:
 *
 *     transfer [offset, offset + nbytes)
 *       -> slices, 4096-aligned, one per worker           (intra_op_parallelism)
 *       -> requests of block_size, <= queue_depth in flight (queue_depth)
 *
 * Backends (configure's --with-aio picks what is built; zl_aio_create may force one):
 *   liburing  io_uring: one ring of queue_depth entries per worker (Linux 5.1+);
 *   libaio    the kernel's native AIO (io_setup/io_submit), what DeepSpeed uses;
 *   threads   no library: intra_op_parallelism x queue_depth threads doing blocking
 *             pread/pwrite of block_size each, so as many requests are in flight.
 * `single_submit` submits each request by itself instead of a batch; `overlap_events`
 * refills the queue as each request completes instead of after the whole batch (the
 * meanings of DeepSpeed's flags; the threads backend has no batches and ignores both).
 *
 * Errors are never a wrong number: a read that finds the end of the file before the
 * bytes asked for (a swap file truncated behind the engine's back) is an error, as is a
 * write the disk has no room for (ENOSPC) or any I/O error. zl_aio_wait's message names
 * the file, the operation, the bytes and the offset, with a hint.
 *
 * Alignment is the caller's business: a file opened with O_DIRECT needs buffers, offsets
 * and lengths aligned to 4096 (src/io/swap_file.h does that); with buffered files any
 * value works.
 *
 * An engine is used by one thread at a time (the one that submits and waits); its
 * workers are its own. */
#ifndef ZL_IO_AIO_H
#define ZL_IO_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* DeepSpeed's `aio` block (runtime/swap_tensor/constants.py), with its defaults. */
typedef struct zl_aio_config {
    size_t block_size;        /* bytes per request; 1048576 */
    int queue_depth;          /* requests in flight per worker; 8 */
    int intra_op_parallelism; /* worker threads per transfer; 1 (`thread_count` before
                                 DeepSpeed PR #7056, which now ignores that key) */
    bool single_submit;       /* submit requests one by one; false */
    bool overlap_events;      /* refill as requests complete; true */
    bool use_gds;             /* GPUDirect Storage; false (zl_aio_config_check refuses true) */
} zl_aio_config;

/* Fill DeepSpeed's defaults. The config reader (src/config) starts from these. */
void zl_aio_config_default(zl_aio_config *cfg);

/* ZL_ERR_CONFIG naming the `aio.<key>` that is out of range: block_size must be a
 * positive multiple of 4096 (O_DIRECT's alignment), queue_depth 1..1024,
 * intra_op_parallelism 1..256; use_gds true is ZL_ERR_UNSUPPORTED (not built). */
zl_status zl_aio_config_check(const zl_aio_config *cfg);

typedef enum zl_aio_backend {
    ZL_AIO_AUTO = 0, /* the first built of liburing, libaio, threads that starts */
    ZL_AIO_LIBURING,
    ZL_AIO_LIBAIO,
    ZL_AIO_THREADS,
} zl_aio_backend;

/* "auto", "liburing", "libaio", "threads". */
const char *zl_aio_backend_str(zl_aio_backend backend);
/* Whether this build has the backend (threads and auto: always). */
bool zl_aio_backend_built(zl_aio_backend backend);

typedef struct zl_aio zl_aio;

/* Start an engine and its workers. A forced backend that is not built is
 * ZL_ERR_UNSUPPORTED; one the kernel refuses (io_uring disabled by sysctl or a seccomp
 * filter, aio-max-nr exhausted) is ZL_ERR_IO with the reason. With ZL_AIO_AUTO a refusal
 * moves on to the next backend. */
zl_status zl_aio_create(zl_aio **out, const zl_aio_config *cfg, zl_aio_backend backend);
/* Waits for what is in flight, then stops the workers. NULL is a no-op. */
void zl_aio_destroy(zl_aio *aio);

/* The backend that runs, "liburing", "libaio" or "threads", for reports. */
const char *zl_aio_backend_name(const zl_aio *aio);
const zl_aio_config *zl_aio_get_config(const zl_aio *aio);

/* Queue a read of nbytes at `offset` of the open file `fd` into buf (or a write from
 * it). `path` names the file in error messages (copied). buf must stay valid and
 * untouched until zl_aio_wait returns. nbytes 0 is a no-op. */
zl_status zl_aio_pread(zl_aio *aio, int fd, void *buf, size_t nbytes, uint64_t offset,
                       const char *path);
zl_status zl_aio_pwrite(zl_aio *aio, int fd, const void *buf, size_t nbytes, uint64_t offset,
                        const char *path);

/* Block until every transfer queued so far has completed. *completed (may be NULL) gets
 * the number of transfers completed since the last wait. Returns ZL_OK, or ZL_ERR_IO with
 * the first failure's message (later transfers still ran to completion or failure; the
 * data of a failed read is not to be used). */
zl_status zl_aio_wait(zl_aio *aio, size_t *completed);

#endif
