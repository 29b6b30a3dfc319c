/* A device: a backend (which kernels run) plus a memory ledger (what is held, against
 * which budget). Every allocation the engine makes goes through zl_device_alloc, which
 * records it in the ledger before the backend allocates; there is no other path.
 *
 * On ref and cpu the memory is host memory; on cuda it is VRAM. In both cases the budget
 * is the card the rank impersonates (or really is), so a run on a laptop fails where the
 * same run on a V100 would, with the same message. Host memory for offload and NVMe swap
 * space are devices of their own kind, with ledgers of their own.
 *
 * The host device is DeepSpeed's pinned host memory: where ZeRO-Offload keeps optimizer
 * state and parameters. It has its own budget (the node's RAM a rank may pin), and its
 * ledger reports itself as host memory. On the cpu and ref backends it is ordinary
 * memory, as the accelerator's is; on meta it holds shapes only. Data moves between it
 * and an accelerator with zl_device_copy, which a simulated card charges to its host link
 * (PCIe) on the host-copy stream; ops->copy stays within one device. */
#ifndef ZL_CORE_DEVICE_H
#define ZL_CORE_DEVICE_H

#include <stddef.h>

#include "backends/ops.h"
#include "base/status.h"
#include "sim/ledger.h"
#include "sim/sim.h"

typedef enum zl_device_kind {
    ZL_DEVICE_ACCEL, /* a GPU, real or simulated */
    ZL_DEVICE_HOST,  /* CPU memory (offload target) */
    ZL_DEVICE_NVME,  /* swap files (ZeRO-Infinity) */
} zl_device_kind;

typedef struct zl_device {
    zl_device_kind kind;
    const zl_ops *ops;  /* what the engine calls: the backend, or its simulator's timed table */
    zl_ledger ledger;
    zl_sim *sim;        /* the simulated GPU's clock, or NULL (not owned) */
} zl_device;

/* backend: "ref", "cpu", "meta" or "cuda". name: for messages, e.g. "rank 0
 * (V100-16GB)", "rank 0 host". budget_nbytes: 0 for unlimited (cuda: the card's free
 * memory less a reserve; a budget over it is lowered to it, with a warning: ops.h,
 * reserve). The kind sets the ledger's placement (ZL_DEVICE_HOST: host memory) and, on
 * cuda, the table: a host device runs the cpu kernels on pinned memory (ops.h, host).
 * Fails (ZL_ERR_DEVICE) when the backend cannot run here: cuda without a device. */
/* The backend named, set up: ZL_ERR_NOT_FOUND for an unknown name, ZL_ERR_UNSUPPORTED for
 * "cuda" in a build without it, ZL_ERR_DEVICE when it cannot run here (cuda: no driver, no
 * device; CUDA's message). What a run checks before it reads its data (run.c). */
zl_status zl_device_backend_open(const char *backend, const zl_ops **out);

zl_status zl_device_init(zl_device *dev, zl_device_kind kind, const char *backend,
                         const char *name, size_t budget_nbytes);

/* Put a simulator in front of the device's backend: its kernels run as before and are
 * charged simulated time (sim/sim.h). dev->ops becomes &sim->ops, whose functions find
 * the simulator in their table (self->ctx): whoever holds the device holds its clock.
 * Collectives are charged through the communicator instead (zl_comm_set_sim). */
void zl_device_attach_sim(zl_device *dev, zl_sim *sim);

/* The backend that really holds the memory and runs the kernels. */
static inline const zl_ops *zl_device_backend(const zl_device *dev)
{
    return dev->sim ? dev->sim->inner : dev->ops;
}

/* Allocate nbytes of zeroed device memory under `tag`. On failure *out is NULL and the
 * status is ZL_ERR_OOM (over budget, with the ledger's report) or ZL_ERR_NOMEM. */
zl_status zl_device_alloc(zl_device *dev, const char *tag, size_t nbytes, void **out);

/* Free memory from zl_device_alloc: tag and nbytes must be the ones it was allocated
 * with (sized release keeps the ledger exact without a lookup table). NULL is a no-op. */
void zl_device_free(zl_device *dev, const char *tag, void *ptr, size_t nbytes);

/* Copy nbytes from src on src_dev to dst on dst_dev, between the host device and an
 * accelerator, either way (ZL_ERR_INVALID for any other pair: one accelerator to another
 * is a communicator's send/recv). On meta (either side) nothing moves. The copy is
 * asynchronous, in the real process as on a simulated card (whose host-copy stream is
 * charged: sim/sim.h, zl_sim_copy): it starts once the compute issued before it is done
 * and runs beside the compute issued after it, so until zl_device_copy_wait nothing may
 * read dst (host code or kernels) and nothing may write src (backends/ops.h, to_host). */
zl_status zl_device_copy(zl_device *dst_dev, void *dst, const zl_device *src_dev, const void *src,
                         size_t nbytes);

/* Every copy to or from accelerator dev issued so far is complete: the host may read what
 * came to it, and the compute issued after this call sees what went to the device (cuda:
 * the host waits for the copy stream and the compute stream for its event; ops.h,
 * transfer_wait). */
void zl_device_copy_wait(zl_device *dev);

/* Host code reading or writing device memory for itself, right away (a loss, values to
 * initialise, a checkpoint's bytes): the transfer and its wait (ops.h, transfer_wait), on
 * the table given (the backend's: not charged to a simulated link). Also completes the
 * zl_device_copy transfers issued before it. */
static inline void zl_device_read(const zl_ops *ops, void *host, const void *dev, size_t nbytes)
{
    ops->to_host(ops, host, dev, nbytes);
    if (ops->transfer_wait) ops->transfer_wait(ops);
}

static inline void zl_device_write(const zl_ops *ops, void *dev, const void *host, size_t nbytes)
{
    ops->to_device(ops, dev, host, nbytes);
    if (ops->transfer_wait) ops->transfer_wait(ops);
}

#endif
