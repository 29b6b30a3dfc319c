/* safetensors files: the tensor container zerolab's checkpoints and test fixtures use, so
 * that Python tools (the `safetensors` package, torch) read them as they are.
 *
 * Layout (https://github.com/huggingface/safetensors, "Format"):
 *
 *   8 bytes   N, the header length, unsigned little-endian
 *   N bytes   a JSON object, UTF-8, padded with spaces:
 *               {"__metadata__": {"key": "value", ...},            optional, strings only
 *                "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *                ...}
 *   the rest  the data section: tensor bytes, row-major, little-endian, at [begin, end)
 *             relative to the start of the data section
 *
 * As in the reference implementation, the tensors must tile the data section exactly:
 * no overlap, no gap, nothing past its end; end - begin must equal numel * element size;
 * and a scalar has shape [] (one element). The reader enforces all of it, and every error
 * is a ZL_ERR_FORMAT whose message names the file, the tensor and the offending values.
 *
 * The writer lays tensors out by decreasing element size (then in the order they were
 * added) and pads the header to a multiple of 8 bytes, as the Python package does, so
 * every tensor of a file it writes starts at an offset aligned for its element type. It
 * writes atomically: a temporary file in the same directory, fsync, rename over the
 * destination, fsync of the directory. A reader never sees a half-written file. */
#ifndef ZL_CKPT_SAFETENSORS_H
#define ZL_CKPT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"

#define ZL_SAFETENSORS_MAX_DIMS 8
/* The reference implementation refuses headers above 100 MB; so does the reader. */
#define ZL_SAFETENSORS_MAX_HEADER_NBYTES 100000000u

/* ---- writer ----------------------------------------------------------------------- */

typedef struct zl_safetensors_writer zl_safetensors_writer;

/* A new, empty writer (ZL_ERR_NOMEM if the host is out of memory). */
zl_status zl_safetensors_writer_create(zl_safetensors_writer **out);

/* Add a tensor of `dtype` (F32, F16, BF16, I32 or U16), shape (ndim entries, 0..8; ndim 0
 * is a scalar), whose bytes are at `data` (host memory, row-major). The data are NOT
 * copied: they must stay valid and unchanged until zl_safetensors_writer_write returns.
 * ZL_ERR_INVALID for an empty, reserved ("__metadata__") or duplicate name, or a bad
 * shape. */
zl_status zl_safetensors_writer_add(zl_safetensors_writer *w, const char *name, zl_dtype dtype,
                                    int ndim, const int64_t *shape, const void *data);

/* Set a "__metadata__" entry (strings only, as the format requires); setting a key again
 * replaces its value. */
zl_status zl_safetensors_writer_set_metadata(zl_safetensors_writer *w, const char *key,
                                             const char *value);

/* Write everything added so far to `path`, atomically (see above). ZL_ERR_IO names the
 * path and the system error; on failure the destination is left as it was and no
 * temporary file remains. The writer can be written again or destroyed afterwards. */
zl_status zl_safetensors_writer_write(zl_safetensors_writer *w, const char *path);

void zl_safetensors_writer_destroy(zl_safetensors_writer *w);

/* Streaming, for files larger than the memory at hand (`zerolab ckpt to-fp32`): declare
 * every tensor (shape only), open (the header goes to a temporary file), put each
 * tensor's bytes in the layout order (zl_safetensors_writer_stream_due names the next;
 * another name is refused), then close: with commit, fsync and rename over the
 * destination, as zl_safetensors_writer_write; without, the temporary file is removed.
 * Destroying an open writer closes it without commit. */
zl_status zl_safetensors_writer_declare(zl_safetensors_writer *w, const char *name, zl_dtype dtype,
                                        int ndim, const int64_t *shape);
zl_status zl_safetensors_writer_stream_open(zl_safetensors_writer *w, const char *path);
const char *zl_safetensors_writer_stream_due(const zl_safetensors_writer *w);
zl_status zl_safetensors_writer_stream_put(zl_safetensors_writer *w, const char *name, const void *data);
zl_status zl_safetensors_writer_stream_close(zl_safetensors_writer *w, bool commit);

/* ---- reader ----------------------------------------------------------------------- */

typedef struct zl_safetensors_tensor {
    const char *name;
    char dtype[8];       /* the file's dtype name: "F32", "BF16", "I64", ... */
    zl_dtype zl_type;    /* the same as a zerolab dtype, or ZL_DTYPE_COUNT if zerolab has
                          * none (BOOL, U8, I8, F8_*, I16, U32, F64, I64, U64) */
    size_t elem_nbytes;
    int ndim;
    int64_t shape[ZL_SAFETENSORS_MAX_DIMS];
    size_t numel;
    size_t offset;       /* begin, relative to the data section */
    size_t nbytes;
    /* The bytes, inside the reader's mapping of the file (valid until close). Aligned to
     * the element size in files this writer made; possibly not in others' files, so
     * prefer zl_safetensors_read, which copies. */
    const void *data;
} zl_safetensors_tensor;

typedef struct zl_safetensors zl_safetensors;

/* Open and validate a file (it is mapped read-only, not read into memory). ZL_ERR_IO if
 * it cannot be opened or mapped, ZL_ERR_FORMAT if it is not a well-formed safetensors
 * file; both messages name the path. */
zl_status zl_safetensors_open(zl_safetensors **out, const char *path);
void zl_safetensors_close(zl_safetensors *st);

const char *zl_safetensors_path(const zl_safetensors *st);

/* Tensors in data-section order. */
int zl_safetensors_num_tensors(const zl_safetensors *st);
const zl_safetensors_tensor *zl_safetensors_tensor_at(const zl_safetensors *st, int i);
/* By name; NULL if the file has no such tensor. */
const zl_safetensors_tensor *zl_safetensors_find(const zl_safetensors *st, const char *name);

/* Copy tensor `name` into dst as `numel` elements of `dtype`. Float tensors (F32, F16,
 * BF16) convert to any float dtype (round to nearest even); other types must match
 * exactly. ZL_ERR_NOT_FOUND if the tensor is missing, ZL_ERR_FORMAT if its element
 * count or type does not fit; the messages name the file, the tensor, and both sides. */
zl_status zl_safetensors_read(const zl_safetensors *st, const char *name, zl_dtype dtype,
                              void *dst, size_t numel);

/* "__metadata__": the value of key, or NULL; and the entries in file order. */
const char *zl_safetensors_metadata(const zl_safetensors *st, const char *key);
int zl_safetensors_num_metadata(const zl_safetensors *st);
const char *zl_safetensors_metadata_key(const zl_safetensors *st, int i);

/* The file's dtype name for a zerolab dtype ("F32", "F16", "BF16", "I32", "U16"). */
const char *zl_safetensors_dtype_name(zl_dtype dtype);

#endif
