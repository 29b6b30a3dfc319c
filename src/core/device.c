#include "core/device.h"

#include <string.h>

#include "base/log.h"
#include "zl_build.h"

zl_status zl_device_backend_open(const char *backend, const zl_ops **out)
{
    *out = zl_ops_find(backend);
    if (!*out) {
#ifndef ZL_HAVE_CUDA
        if (!strcmp(backend, "cuda"))
            return zl_errorf(ZL_ERR_UNSUPPORTED,
                             "backend 'cuda' is not built: configure found no CUDA toolkit\n"
                             "  hint: install the CUDA toolkit with cuBLAS and NCCL, then "
                             "./configure --with-cuda[=DIR] && make; or use --backend cpu");
#endif
        return zl_errorf(ZL_ERR_NOT_FOUND, "unknown backend '%s' (available: ref, cpu, meta, "
                         "discrete%s)", backend, zl_ops_find("cuda") ? ", cuda" : "");
    }
    if ((*out)->setup) (*out)->setup(*out);
    /* A setup that failed (cuda: no driver, no device) says so here, before anything is
     * allocated. */
    return (*out)->check ? (*out)->check(*out) : ZL_OK;
}

zl_status zl_device_init(zl_device *dev, zl_device_kind kind, const char *backend,
                         const char *name, size_t budget_nbytes)
{
    memset(dev, 0, sizeof *dev);
    dev->kind = kind;
    zl_status st = zl_device_backend_open(backend, &dev->ops);
    if (st != ZL_OK) return st;
    /* The host memory of an accelerator's backend has kernels and an allocator of its own
     * (cuda: the cpu kernels on pinned memory); ref, cpu and meta use the same table. */
    if (kind == ZL_DEVICE_HOST && dev->ops->host) {
        dev->ops = dev->ops->host(dev->ops);
        if (dev->ops->setup) dev->ops->setup(dev->ops);
    }
    /* A backend that holds its memory up front (cuda's arena) sets the budget it holds. */
    if (kind == ZL_DEVICE_ACCEL && dev->ops->reserve &&
        (st = dev->ops->reserve(dev->ops, &budget_nbytes)) != ZL_OK)
        return st;
    zl_ledger_init(&dev->ledger, name, budget_nbytes);
    zl_ledger_set_placement(&dev->ledger, kind == ZL_DEVICE_HOST   ? ZL_PLACE_HOST
                                          : kind == ZL_DEVICE_NVME ? ZL_PLACE_NVME
                                                                   : ZL_PLACE_DEVICE);
    return ZL_OK;
}

zl_status zl_device_alloc(zl_device *dev, const char *tag, size_t nbytes, void **out)
{
    *out = NULL;
    const zl_ops *ops = zl_device_backend(dev);
    /* A GPU's earlier failure surfaces at the next allocation at the latest. */
    zl_status st = ops->check ? ops->check(ops) : ZL_OK;
    if (st != ZL_OK) return st;
    st = zl_ledger_alloc(&dev->ledger, tag, nbytes);
    if (st != ZL_OK) return st;
    /* A zero-byte request is legal (an empty shard) and yields NULL. */
    if (nbytes == 0) return ZL_OK;
    void *p = zl_device_backend(dev)->alloc(zl_device_backend(dev), nbytes);
    if (!p) {
        zl_ledger_free(&dev->ledger, tag, nbytes);
        char buf[32];
        return zl_errorf(ZL_ERR_NOMEM, "%s: the %s backend could not allocate %s for '%s'",
                         dev->ledger.device_name, zl_device_backend(dev)->name,
                         zl_format_bytes(buf, sizeof buf, nbytes), tag);
    }
    *out = p;
    return ZL_OK;
}

void zl_device_free(zl_device *dev, const char *tag, void *ptr, size_t nbytes)
{
    if (!ptr && nbytes) return; /* never allocated (failed or skipped): nothing recorded */
    zl_ledger_free(&dev->ledger, tag, nbytes);
    if (ptr) zl_device_backend(dev)->free(zl_device_backend(dev), ptr);
}

void zl_device_attach_sim(zl_device *dev, zl_sim *sim)
{
    zl_sim_set_inner(sim, zl_device_backend(dev));
    dev->ops = &sim->ops;
    dev->sim = sim;
}

zl_status zl_device_copy(zl_device *dst_dev, void *dst, const zl_device *src_dev, const void *src,
                         size_t nbytes)
{
    bool to_device = dst_dev->kind == ZL_DEVICE_ACCEL && src_dev->kind == ZL_DEVICE_HOST;
    bool to_host = dst_dev->kind == ZL_DEVICE_HOST && src_dev->kind == ZL_DEVICE_ACCEL;
    if (!to_device && !to_host)
        return zl_errorf(ZL_ERR_INVALID,
                         "copy from %s to %s: zl_device_copy moves data between the host and "
                         "an accelerator\n  hint: between accelerators use the communicator's "
                         "send/recv; within one device, ops->copy",
                         src_dev->ledger.device_name, dst_dev->ledger.device_name);
    const zl_device *accel = to_device ? dst_dev : src_dev;
    /* The accelerator's backend moves the bytes (ref and cpu: a memcpy, their memory is
     * the process's; cuda: cudaMemcpyAsync on its copy stream, complete at
     * zl_device_copy_wait). Meta pointers are not memory. */
    const zl_ops *ops = zl_device_backend(accel);
    if (nbytes && !ops->meta && !zl_device_backend(to_device ? src_dev : dst_dev)->meta) {
        if (to_device) ops->to_device(ops, dst, src, nbytes);
        else ops->to_host(ops, dst, src, nbytes);
        if (ops->check) {
            zl_status st = ops->check(ops);
            if (st != ZL_OK) return st;
        }
    }
    if (accel->sim) zl_sim_copy(accel->sim, to_device, (double)nbytes);
    return ZL_OK;
}

void zl_device_copy_wait(zl_device *dev)
{
    const zl_ops *ops = zl_device_backend(dev);
    if (ops->transfer_wait && !ops->meta) ops->transfer_wait(ops);
    if (dev->sim) zl_sim_copy_wait(dev->sim);
}
