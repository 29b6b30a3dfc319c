/* The kernel's native AIO through libaio (what DeepSpeed's async_io op uses): one
 * io_context of queue_depth events per worker. */
#include "zl_build.h"

#ifdef ZL_HAVE_LIBAIO

#include <errno.h>
#include <libaio.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/aio_backend.h"

typedef struct libaio_ctx {
    io_context_t io;
    int queue_depth;
    int nqueued;
    struct iocb *iocbs;    /* [queue_depth], one per slot */
    struct iocb **pending; /* [queue_depth], queued and not yet submitted */
    struct io_event *events;
} libaio_ctx;

static void libaio_fini(void *p)
{
    libaio_ctx *c = p;
    if (!c) return;
    if (c->io) io_destroy(c->io);
    free(c->iocbs);
    free(c->pending);
    free(c->events);
    free(c);
}

static int libaio_init(void **ctx, int queue_depth)
{
    libaio_ctx *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->queue_depth = queue_depth;
    c->iocbs = calloc((size_t)queue_depth, sizeof *c->iocbs);
    c->pending = calloc((size_t)queue_depth, sizeof *c->pending);
    c->events = calloc((size_t)queue_depth, sizeof *c->events);
    if (!c->iocbs || !c->pending || !c->events) {
        libaio_fini(c);
        return -ENOMEM;
    }
    int rc = io_setup(queue_depth, &c->io); /* returns -errno, does not set errno */
    if (rc < 0) {
        c->io = 0;
        libaio_fini(c);
        return rc;
    }
    *ctx = c;
    return 0;
}

static int libaio_prep(void *p, int slot, const zl__aio_req *req)
{
    libaio_ctx *c = p;
    if (c->nqueued >= c->queue_depth) return -EBUSY;
    struct iocb *cb = &c->iocbs[slot];
    if (req->write)
        io_prep_pwrite(cb, req->fd, req->buf, req->nbytes, (long long)req->offset);
    else
        io_prep_pread(cb, req->fd, req->buf, req->nbytes, (long long)req->offset);
    cb->data = (void *)(uintptr_t)slot;
    c->pending[c->nqueued++] = cb;
    return 0;
}

static int libaio_submit(void *p)
{
    libaio_ctx *c = p;
    int done = 0;
    while (done < c->nqueued) {
        int rc = io_submit(c->io, c->nqueued - done, c->pending + done);
        if (rc == -EINTR || rc == -EAGAIN || rc == 0) continue; /* EAGAIN: retry later */
        if (rc < 0) {
            c->nqueued = 0;
            return rc;
        }
        done += rc;
    }
    c->nqueued = 0;
    return 0;
}

static int libaio_reap(void *p, int min, int max, int *slots, long *res)
{
    libaio_ctx *c = p;
    if (max > c->queue_depth) max = c->queue_depth;
    int got;
    do got = io_getevents(c->io, min, max, c->events, NULL);
    while (got == -EINTR);
    if (got < 0) return got;
    for (int i = 0; i < got; i++) {
        slots[i] = (int)(uintptr_t)c->events[i].data;
        res[i] = (long)c->events[i].res; /* negative errno on failure */
    }
    return got;
}

const zl__aio_backend_ops zl__aio_libaio = {
    .name = "libaio",
    .init = libaio_init,
    .fini = libaio_fini,
    .prep = libaio_prep,
    .submit = libaio_submit,
    .reap = libaio_reap,
};

#endif
