/* A communicator window: a communicator that wraps another (the same ranks, the same
 * order) and brackets each of its data calls with two callbacks, enter before and leave
 * after. For a backend whose device memory the host may touch only at certain times
 * (backends/discrete: an arena that is PROT_NONE outside its ops), the window opens the
 * memory around the inner communicator's reads and writes of it, as NCCL reads a GPU's
 * memory where MPI on the host could not.
 *
 * A non-blocking call enters at its start and leaves at its wait (the inner transport may
 * move the bytes at any MPI call in between). A request abandoned on a broken
 * communicator (comm.h, the watchdog) is never waited for: its enter is never left.
 *
 * The window shares the inner's log and watchdog; its own name, simulator and stride are
 * the inner's at creation and its own afterwards (zl_comm_set_sim on the window). Split
 * and split_node give windows around the inner's sub-communicators, with the same
 * callbacks. */
#ifndef ZL_COMM_COMM_WINDOW_H
#define ZL_COMM_COMM_WINDOW_H

#include <stdbool.h>

#include "comm/comm.h"

typedef struct zl_comm_window_hooks {
    void (*enter)(void *ctx);
    void (*leave)(void *ctx);
    void *ctx;
} zl_comm_window_hooks;

/* A window around `inner`. own_inner: destroying the window destroys inner too (else
 * inner must outlive the window). */
zl_status zl_comm_window(zl_comm *inner, bool own_inner, const zl_comm_window_hooks *hooks,
                         zl_comm **out);

/* The communicator a window wraps, or c itself when c is not a window. */
zl_comm *zl_comm_window_inner(zl_comm *c);

#endif
