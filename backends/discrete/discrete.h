/* The discrete backend: ref's kernels on memory the host cannot touch, as a GPU's.
 *
 * On a GPU, host code cannot dereference device memory: every read or write from the host
 * goes through ops->to_host / ops->to_device (zl_device_copy), and a collective on device
 * memory goes through a device-aware communicator (NCCL). ref and cpu cannot catch a
 * place that forgets, because their device memory is host memory. This backend can: its
 * device memory is one arena (mmap, PROT_NONE) that opens (READ|WRITE) only
 *   - while one of its ops runs (each op is ref's, through zl_ops_ref, between an open
 *     and a close),
 *   - while its transfers move their bytes: at transfer_wait, as a GPU's copy stream's
 *     do by then (to_host / to_device only queue them and poison their destinations with
 *     NaN bytes, so a read before zl_device_copy_wait reads NaN: discrete.c),
 *   - while a collective of a communicator window runs on it (comm/comm_window.h, with
 *     zl_discrete_enter / zl_discrete_leave as the callbacks; a non-blocking one keeps it
 *     open until its wait).
 * Any other access from host code is a SIGSEGV at the exact line (gdb or ASan shows it).
 * Every op also checks that its device pointers are inside the arena: a device kernel
 * run on host memory is a bug as well (on a GPU, an illegal address), and panics with
 * the op and the argument's name.
 *
 * The results are ref's, bit for bit: the same kernels run, so a discrete run's losses
 * equal `--backend ref`'s. It is a test backend: slow (two mprotect calls per op) and
 * single-threaded.
 *
 * The arena's size: ZL_DISCRETE_MEMORY (bytes, or with a K/M/G suffix), else 1 GiB of
 * address space, reserved with MAP_NORESERVE so that it costs nothing until touched. An
 * allocation that does not fit fails (ZL_ERR_NOMEM from zl_device_alloc). */
#ifndef ZL_BACKENDS_DISCRETE_DISCRETE_H
#define ZL_BACKENDS_DISCRETE_DISCRETE_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/ops.h"

#define ZL_DISCRETE_DEFAULT_MEMORY ((size_t)1 << 30)

extern const zl_ops zl_ops_discrete;

/* Open the arena (nested: counted) and close it when the count returns to 0. The
 * communicator window's callbacks; ctx is ignored (one arena per process). */
void zl_discrete_enter(void *ctx);
void zl_discrete_leave(void *ctx);

/* Whether p points into the arena (for tests and the window's checks). */
bool zl_discrete_owns(const void *p);

/* Bytes of the arena handed out now (for tests of the allocator). */
size_t zl_discrete_in_use(void);

#endif
