/* The one-rank communicator: every collective's result is the rank's own input, so the
 * collectives are copies (nothing at all when done in place), and there is nobody to
 * send to. Non-blocking calls complete when they start. */
#include "comm/comm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy(void *dst, const void *src, size_t count, zl_dtype dt)
{
    if (dst != src && count) memmove(dst, src, count * zl_dtype_nbytes(dt));
}

static zl_status self_allreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt,
                                zl_reduce_op op, zl_comm_request *req)
{
    return ZL_OK;
}

static zl_status self_reduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                     zl_dtype dt, zl_reduce_op op, zl_comm_request *req)
{
    copy(recv, send, count, dt);
    return ZL_OK;
}

static zl_status self_allgather(zl_comm *c, void *recv, const void *send, size_t count,
                                zl_dtype dt, zl_comm_request *req)
{
    copy(recv, send, count, dt);
    return ZL_OK;
}

static zl_status self_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root)
{
    return ZL_OK;
}

static zl_status self_reduce(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                             zl_reduce_op op, int root)
{
    copy(recv, send, count, dt);
    return ZL_OK;
}

static zl_status no_peer(const zl_comm *c, const char *call)
{
    return zl_errorf(ZL_ERR_COMM,
                     "%s on communicator '%s': self communicator has no peer (a one-rank run "
                     "cannot use point-to-point transfers; launch more ranks with mpiexec)",
                     call, c->name);
}

static zl_status self_send(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer,
                           int tag)
{
    return no_peer(c, "send");
}

static zl_status self_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    return no_peer(c, "recv");
}

static zl_status self_barrier(zl_comm *c) { return ZL_OK; }

static zl_status self_wait(zl_comm *c, zl_comm_request *req) { return ZL_OK; }

static zl_status self_split(zl_comm *c, int color, int key, const char *name, zl_comm **out)
{
    return zl__comm_self_create(out, name, c->log);
}

static void self_destroy(zl_comm *c) { free(c); }

static const zl_comm_vtable self_vtable = {
    .name = "self",
    .allreduce = self_allreduce,
    .reduce_scatter = self_reduce_scatter,
    .allgather = self_allgather,
    .broadcast = self_broadcast,
    .reduce = self_reduce,
    .send = self_send,
    .recv = self_recv,
    .barrier = self_barrier,
    .wait = self_wait,
    .split = self_split,
    .destroy = self_destroy,
};

zl_status zl__comm_self_create(zl_comm **out, const char *name, zl_comm_log *log)
{
    zl_comm *c = calloc(1, sizeof *c);
    if (!c) return zl_errorf(ZL_ERR_NOMEM, "cannot allocate communicator '%s'", name);
    c->vt = &self_vtable;
    c->rank = 0;
    c->size = 1;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->log = log;
    *out = c;
    return ZL_OK;
}
