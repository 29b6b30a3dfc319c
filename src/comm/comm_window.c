/* The communicator window (comm_window.h): enter, the inner communicator's call, leave. */
#include "comm/comm_window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "comm/comm_internal.h"

typedef struct window {
    zl_comm *inner;
    bool own;
    zl_comm_window_hooks hooks;
} window;

static const zl_comm_vtable window_vtable;

static window *W(const zl_comm *c) { return c->impl; }
static void enter(const zl_comm *c) { W(c)->hooks.enter(W(c)->hooks.ctx); }
static void leave(const zl_comm *c) { W(c)->hooks.leave(W(c)->hooks.ctx); }

/* A started non-blocking call stays entered until its wait; a blocking or failed one
 * leaves now. */
static zl_status done(zl_comm *c, zl_status st, const zl_comm_request *req)
{
    if (!req || st != ZL_OK) leave(c);
    return st;
}

static zl_status w_allreduce(zl_comm *c, void *buf, size_t count, zl_dtype dt, zl_reduce_op op,
                             zl_comm_request *req)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->allreduce(in, buf, count, dt, op, req), req);
}

static zl_status w_reduce_scatter(zl_comm *c, void *recv, const void *send, size_t count,
                                  zl_dtype dt, zl_reduce_op op, zl_comm_request *req)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->reduce_scatter(in, recv, send, count, dt, op, req), req);
}

static zl_status w_allgather(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                             zl_comm_request *req)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->allgather(in, recv, send, count, dt, req), req);
}

static zl_status w_broadcast(zl_comm *c, void *buf, size_t count, zl_dtype dt, int root)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->broadcast(in, buf, count, dt, root), NULL);
}

static zl_status w_reduce(zl_comm *c, void *recv, const void *send, size_t count, zl_dtype dt,
                          zl_reduce_op op, int root)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->reduce(in, recv, send, count, dt, op, root), NULL);
}

static zl_status w_send(zl_comm *c, const void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->send(in, buf, count, dt, peer, tag), NULL);
}

static zl_status w_recv(zl_comm *c, void *buf, size_t count, zl_dtype dt, int peer, int tag)
{
    zl_comm *in = W(c)->inner;
    enter(c);
    return done(c, in->vt->recv(in, buf, count, dt, peer, tag), NULL);
}

static zl_status w_barrier(zl_comm *c)
{
    zl_comm *in = W(c)->inner;
    return in->vt->barrier(in);
}

static zl_status w_wait(zl_comm *c, zl_comm_request *req)
{
    zl_comm *in = W(c)->inner;
    zl_status st = in->vt->wait(in, req);
    leave(c); /* entered at the start (done) */
    return st;
}

static zl_status w_split(zl_comm *c, int color, int key, const char *name, zl_comm **out)
{
    zl_comm *in = W(c)->inner, *sub = NULL;
    zl_status st = in->vt->split(in, color, key, name, &sub);
    if (st == ZL_OK) st = zl_comm_window(sub, true, &W(c)->hooks, out);
    if (st != ZL_OK) zl_comm_destroy(sub);
    return st;
}

static zl_status w_split_node(zl_comm *c, const char *name, zl_comm **out)
{
    zl_comm *in = W(c)->inner, *sub = NULL;
    zl_status st = in->vt->split_node ? in->vt->split_node(in, name, &sub)
                                      : zl__comm_self_create(&sub, name, in->log);
    if (st == ZL_OK) st = zl_comm_window(sub, true, &W(c)->hooks, out);
    if (st != ZL_OK) zl_comm_destroy(sub);
    return st;
}

static void w_destroy(zl_comm *c)
{
    window *w = W(c);
    if (w->own) zl_comm_destroy(w->inner);
    zl__comm_guard_unref(c->guard);
    free(w);
    free(c);
}

static void w_abort(zl_comm *c, int code)
{
    zl_comm *in = W(c)->inner;
    if (in->vt->abort) in->vt->abort(in, code);
}

static const zl_comm_vtable window_vtable = {
    .name = "window",
    .allreduce = w_allreduce,
    .reduce_scatter = w_reduce_scatter,
    .allgather = w_allgather,
    .broadcast = w_broadcast,
    .reduce = w_reduce,
    .send = w_send,
    .recv = w_recv,
    .barrier = w_barrier,
    .wait = w_wait,
    .split = w_split,
    .split_node = w_split_node,
    .destroy = w_destroy,
    .abort = w_abort,
};

zl_status zl_comm_window(zl_comm *inner, bool own_inner, const zl_comm_window_hooks *hooks,
                         zl_comm **out)
{
    *out = NULL;
    ZL_ASSERT(inner && hooks && hooks->enter && hooks->leave);
    zl_comm *c = calloc(1, sizeof *c);
    window *w = calloc(1, sizeof *w);
    if (!c || !w) {
        free(c);
        free(w);
        return zl_errorf(ZL_ERR_NOMEM, "cannot allocate a window on communicator '%s'",
                         inner->name);
    }
    *w = (window){inner, own_inner, *hooks};
    c->vt = &window_vtable;
    c->rank = inner->rank;
    c->size = inner->size;
    snprintf(c->name, sizeof c->name, "%s", inner->name);
    c->log = inner->log;
    c->sim = inner->sim;
    c->stride = inner->stride;
    c->impl = w;
    c->guard = zl__comm_guard_ref(inner->guard); /* timeouts and phases are the inner's */
    *out = c;
    return ZL_OK;
}

zl_comm *zl_comm_window_inner(zl_comm *c)
{
    return c && c->vt == &window_vtable ? W(c)->inner : c;
}
