/* io_uring through liburing: one ring of queue_depth entries per worker. */
#include "zl_build.h"

#ifdef ZL_HAVE_LIBURING

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/aio_backend.h"

static int uring_init(void **ctx, int queue_depth)
{
    struct io_uring *ring = calloc(1, sizeof *ring);
    if (!ring) return -ENOMEM;
    int rc = io_uring_queue_init((unsigned)queue_depth, ring, 0);
    if (rc < 0) {
        free(ring);
        return rc;
    }
    *ctx = ring;
    return 0;
}

static void uring_fini(void *ctx)
{
    io_uring_queue_exit(ctx);
    free(ctx);
}

static int uring_prep(void *ctx, int slot, const zl__aio_req *req)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ctx);
    if (!sqe) return -EBUSY; /* the driver never queues more than the ring holds */
    if (req->write)
        io_uring_prep_write(sqe, req->fd, req->buf, (unsigned)req->nbytes, req->offset);
    else
        io_uring_prep_read(sqe, req->fd, req->buf, (unsigned)req->nbytes, req->offset);
    io_uring_sqe_set_data(sqe, (void *)(uintptr_t)slot);
    return 0;
}

static int uring_submit(void *ctx)
{
    for (;;) {
        int rc = io_uring_submit(ctx);
        if (rc != -EINTR && rc != -EAGAIN) return rc < 0 ? rc : 0;
    }
}

static int uring_reap(void *ctx, int min, int max, int *slots, long *res)
{
    int got = 0;
    while (got < max) {
        struct io_uring_cqe *cqe;
        int rc = got < min ? io_uring_wait_cqe(ctx, &cqe) : io_uring_peek_cqe(ctx, &cqe);
        if (rc == -EINTR) continue;
        if (rc == -EAGAIN && got >= min) break;
        if (rc < 0) return got ? got : rc;
        slots[got] = (int)(uintptr_t)io_uring_cqe_get_data(cqe);
        res[got] = cqe->res;
        io_uring_cqe_seen(ctx, cqe);
        got++;
    }
    return got;
}

const zl__aio_backend_ops zl__aio_liburing = {
    .name = "liburing",
    .init = uring_init,
    .fini = uring_fini,
    .prep = uring_prep,
    .submit = uring_submit,
    .reap = uring_reap,
};

#endif
