#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "base/checked.h"
#include "base/log.h"

size_t zl_shape_numel(int ndim, const int64_t *shape)
{
    if (ndim == 0) return 0;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n = zl_sat_mul(n, (size_t)shape[i]);
    return n;
}

char *zl_shape_str(char *buf, size_t buflen, int ndim, const int64_t *shape)
{
    size_t off = (size_t)snprintf(buf, buflen, "(");
    for (int i = 0; i < ndim && off < buflen; i++)
        off += (size_t)snprintf(buf + off, buflen - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < buflen) snprintf(buf + off, buflen - off, ")");
    return buf;
}

static void set_shape(zl_tensor *t, int ndim, const int64_t *shape)
{
    ZL_ASSERT(ndim >= 1 && ndim <= ZL_MAX_DIMS);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        ZL_ASSERT(shape[i] >= 0);
        t->shape[i] = shape[i];
    }
    t->numel = zl_shape_numel(ndim, shape);
}

zl_status zl_tensor_alloc(zl_tensor *t, zl_device *dev, const char *tag, zl_dtype dtype,
                          int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    set_shape(t, ndim, shape);
    size_t nbytes;
    if (t->numel == SIZE_MAX || !zl_checked_mul(t->numel, zl_dtype_nbytes(dtype), &nbytes)) {
        char buf[96];
        zl_shape_str(buf, sizeof buf, ndim, shape);
        memset(t, 0, sizeof *t);
        return zl_errorf(ZL_ERR_INVALID, "tensor '%s' of shape %s is too large: its size in bytes "
                         "does not fit in 64 bits", tag, buf);
    }
    t->dtype = dtype;
    t->device = dev;
    snprintf(t->tag, sizeof t->tag, "%s", tag);
    zl_status st = zl_device_alloc(dev, tag, zl_tensor_nbytes(t), &t->data);
    if (st != ZL_OK) {
        memset(t, 0, sizeof *t);
        return st;
    }
    t->owns = true;
    return ZL_OK;
}

void zl_tensor_free(zl_tensor *t)
{
    if (t->owns) zl_device_free(t->device, t->tag, t->data, zl_tensor_nbytes(t));
    memset(t, 0, sizeof *t);
}

zl_tensor zl_tensor_view(const zl_tensor *base, size_t offset, int ndim, const int64_t *shape)
{
    zl_tensor v;
    memset(&v, 0, sizeof v);
    set_shape(&v, ndim, shape);
    ZL_ASSERT(v.numel <= base->numel && offset <= base->numel - v.numel);
    v.dtype = base->dtype;
    v.device = base->device;
    v.data = (char *)base->data + offset * zl_dtype_nbytes(base->dtype);
    memcpy(v.tag, base->tag, sizeof v.tag);
    return v;
}
