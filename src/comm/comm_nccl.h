/* The NCCL communicator's host-side decisions (comm_nccl.c), apart so that a unit test
 * checks them on a machine without a GPU. Not installed; built only with ZL_HAVE_CUDA.
 *
 * One NCCL communicator serves device and host buffers: zerolab also calls collectives
 * on host memory (zl_comm_agree, the simulator's clocks, small host scalars, the loader's
 * agreement). Each call looks at where its buffers live and goes to NCCL (device memory
 * of the communicator's GPU) or to the MPI communicator beside it (host memory). */
#ifndef ZL_COMM_COMM_NCCL_H
#define ZL_COMM_COMM_NCCL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/dtype.h"
#include "comm/comm.h"

/* Where a buffer lives. */
typedef enum zl__nccl_mem {
    ZL__NCCL_MEM_NONE,         /* NULL: not part of this call (a non-root's reduce output) */
    ZL__NCCL_MEM_HOST,         /* host memory, pinned or not: MPI moves it */
    ZL__NCCL_MEM_DEVICE,       /* device (or managed) memory of the communicator's GPU */
    ZL__NCCL_MEM_OTHER_DEVICE, /* device memory of another GPU: neither can move it */
} zl__nccl_mem;

/* Where a call goes. */
typedef enum zl__nccl_route {
    ZL__NCCL_NOTHING,      /* count 0: nothing to move, on every rank */
    ZL__NCCL_HOST,         /* the MPI communicator's vtable */
    ZL__NCCL_DEVICE,       /* NCCL on the communicator's stream */
    ZL__NCCL_MIXED,        /* one buffer on the host, one on the device: refused */
    ZL__NCCL_WRONG_DEVICE, /* a buffer on another GPU: refused */
    ZL__NCCL_HOST_ONLY,    /* device memory, but the communicator has no NCCL side: refused */
} zl__nccl_route;

/* p's memory, asked of the CUDA runtime (cudaPointerGetAttributes); `device` is the
 * communicator's GPU. Without a device or driver, every pointer is host memory. */
zl__nccl_mem zl__nccl_mem_of(const void *p, int device);

/* The route of a call moving `count` elements between buffers a and b (NONE: absent).
 * have_nccl: the communicator has an NCCL side (a node communicator has none). */
zl__nccl_route zl__nccl_route_of(size_t count, zl__nccl_mem a, zl__nccl_mem b, bool have_nccl);

/* NCCL's element type for zl_dtype dt (an ncclDataType_t), and how many of those one dt
 * element is. `reduces`: the call adds, or compares, elements. false when NCCL cannot:
 * u16 (token ids) has no NCCL type, so it travels as pairs of bytes and cannot be reduced. */
bool zl__nccl_dtype(zl_dtype dt, bool reduces, int *nccl_type, size_t *per_elem);

/* NCCL's reduction (an ncclRedOp_t) for op. */
int zl__nccl_redop(zl_reduce_op op);

#endif
