/* The engine's backends (internal to src/io).
 *
 * A queue backend (liburing, libaio) is a small table the engine's request driver
 * (aio.c) calls from one worker thread: queue a request into a slot, submit what is
 * queued, reap completions. The driver owns the slots (at most queue_depth), splits a
 * slice into block_size requests, resubmits the rest of a request that completed short,
 * and turns results into errors; a backend only talks to the kernel. The threads
 * backend needs no table: its workers call pread/pwrite themselves. */
#ifndef ZL_IO_AIO_BACKEND_H
#define ZL_IO_AIO_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zl__aio_req {
    bool write;
    int fd;
    char *buf;
    size_t nbytes;
    uint64_t offset;
} zl__aio_req;

typedef struct zl__aio_backend_ops {
    const char *name;
    /* A context with room for queue_depth requests in flight; negative errno on failure. */
    int (*init)(void **ctx, int queue_depth);
    void (*fini)(void *ctx);
    /* Queue (not yet submit) request `req` as slot `slot`. Negative errno on failure. */
    int (*prep)(void *ctx, int slot, const zl__aio_req *req);
    /* Submit everything queued; negative errno on failure. */
    int (*submit)(void *ctx);
    /* Wait for at least `min` completions (at most `max`); slots[i] completed with
     * res[i] (bytes, or negative errno). Returns the count, or a negative errno. */
    int (*reap)(void *ctx, int min, int max, int *slots, long *res);
} zl__aio_backend_ops;

#ifdef ZL_HAVE_LIBURING
extern const zl__aio_backend_ops zl__aio_liburing;
#endif
#ifdef ZL_HAVE_LIBAIO
extern const zl__aio_backend_ops zl__aio_libaio;
#endif

#endif
