/* A tensor: a typed, shaped view of device memory, with the tag it is accounted under.
 *
 * There is no autograd: each layer writes its backward by hand, so what is stored, when,
 * and for how long is explicit. A tensor either owns its memory (zl_tensor_alloc, freed
 * with zl_tensor_free) or is a view into a flat buffer (zl_tensor_view), which is how
 * parameters, gradients and ZeRO partitions are laid out. */
#ifndef ZL_CORE_TENSOR_H
#define ZL_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "core/device.h"

#define ZL_MAX_DIMS 4

typedef struct zl_tensor {
    void *data;
    zl_dtype dtype;
    int ndim;
    int64_t shape[ZL_MAX_DIMS];
    size_t numel;
    zl_device *device;
    char tag[ZL_LEDGER_TAG_LEN];
    bool owns; /* true: allocated by zl_tensor_alloc and released by zl_tensor_free */
} zl_tensor;

/* Allocate a zeroed tensor on dev under tag. shape has ndim (1..4) non-negative entries.
 * ZL_ERR_INVALID (naming the tag and shape) if its byte count would not fit in 64 bits. */
zl_status zl_tensor_alloc(zl_tensor *t, zl_device *dev, const char *tag, zl_dtype dtype,
                          int ndim, const int64_t *shape);
/* Release an owned tensor (views: only reset). Safe on a zeroed struct. */
void zl_tensor_free(zl_tensor *t);

/* A view of `numel(shape)` elements of `base`, starting at element `offset`. */
zl_tensor zl_tensor_view(const zl_tensor *base, size_t offset, int ndim, const int64_t *shape);

static inline size_t zl_tensor_nbytes(const zl_tensor *t)
{
    return t->numel * zl_dtype_nbytes(t->dtype);
}
static inline float *zl_tensor_f32(const zl_tensor *t) { return (float *)t->data; }

/* Product of a shape; 0 for ndim 0; SIZE_MAX if it does not fit in size_t. */
size_t zl_shape_numel(int ndim, const int64_t *shape);

/* "(4, 128, 768)" into buf. */
char *zl_shape_str(char *buf, size_t buflen, int ndim, const int64_t *shape);

#endif
