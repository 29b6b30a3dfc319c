/* One checkpoint file: tensors in <base>.safetensors, state in <base>.json.
 *
 * A checkpoint (ckpt_layout.h) is a directory of such pairs: the model states (rank 0) and
 * one optimizer shard per data-parallel rank, as DeepSpeed lays them out. The tensors are
 * safetensors, so Python reads them as they are; the state is JSON, so a person reads it
 * with `cat`. The JSON also describes the safetensors file it goes with:
 *
 *   {"format": "zerolab-checkpoint", "format_version": 1, "zerolab_version": "0.1.0",
 *    "safetensors": {"file": "<base>.safetensors", "nbytes": 1234,
 *                    "header_xxh3": "0123456789abcdef"},
 *    "tensors": {"<name>": {"dtype": "F32", "shape": [768], "xxh3": "0123456789abcdef"}},
 *    ... the state the caller added ...,
 *    "json_xxh3": "0123456789abcdef"}
 *
 * so a reader can tell a complete, intact pair from a truncated, corrupted or mismatched
 * one: the JSON's bytes must match its seal (json_xxh3, below) and be of this format, the
 * safetensors file must be a valid file of exactly `nbytes` whose length word and header
 * hash to header_xxh3, hold exactly the tensors listed with their dtypes and shapes, and
 * every tensor's bytes must hash to its XXH3-64 (verified the first time a tensor is
 * read). So every byte of both files is covered. Every failure is one ZL_ERR_FORMAT (or ZL_ERR_IO) message naming the file and
 * what is wrong. The safetensors file is written first and the JSON last, each atomically
 * (temporary file, fsync, rename), so a JSON that exists describes a file that was
 * completely written. */
#ifndef ZL_CKPT_CKPT_FILE_H
#define ZL_CKPT_CKPT_FILE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"

#define ZL_CKPT_FORMAT "zerolab-checkpoint"
#define ZL_CKPT_FORMAT_VERSION 1

/* XXH3-64 of n bytes (libxxhash), and as the 16 lowercase hex digits the JSON holds. */
uint64_t zl_ckpt_hash(const void *data, size_t n);
void zl_ckpt_hash_hex(uint64_t h, char out[17]);

/* ---- writing ------------------------------------------------------------------------ */

typedef struct zl_ckpt_writer zl_ckpt_writer;

zl_status zl_ckpt_writer_create(zl_ckpt_writer **out);
/* Add a tensor (host memory, row-major; not copied: it must stay valid and unchanged
 * until zl_ckpt_writer_write returns). Its checksum is taken at the write. */
zl_status zl_ckpt_writer_add(zl_ckpt_writer *w, const char *name, zl_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
/* The JSON object the state goes in (borrowed: the writer owns it). The keys above are
 * the writer's and are set at the write. */
json_t *zl_ckpt_writer_state(zl_ckpt_writer *w);
/* Write dir/base.safetensors, then dir/base.json, each atomically. ZL_ERR_IO names the
 * file and the system's reason (a full disk: ENOSPC); nothing half-written remains. */
zl_status zl_ckpt_writer_write(zl_ckpt_writer *w, const char *dir, const char *base);
void zl_ckpt_writer_destroy(zl_ckpt_writer *w);

/* ---- reading ------------------------------------------------------------------------ */

typedef struct zl_ckpt_file zl_ckpt_file;

/* Open dir/base.json and dir/base.safetensors and check that they belong together (see
 * above; checksums are checked when read). */
zl_status zl_ckpt_file_open(zl_ckpt_file **out, const char *dir, const char *base);
void zl_ckpt_file_close(zl_ckpt_file *f);

/* The JSON object (borrowed), and the file's path for messages ("dir/base.json"). */
const json_t *zl_ckpt_file_state(const zl_ckpt_file *f);
const char *zl_ckpt_file_path(const zl_ckpt_file *f);

/* A tensor's shape and type as the file has them; ZL_ERR_NOT_FOUND names the file if it
 * has no such tensor. */
zl_status zl_ckpt_file_tensor(const zl_ckpt_file *f, const char *name, zl_dtype *dtype,
                              int *ndim, int64_t shape[8], size_t *numel);
/* Elements [begin, begin + n) of tensor `name`, converted to `dtype` (float types convert
 * among themselves, rounding to nearest even). The tensor's checksum is verified on its
 * first read; a mismatch is ZL_ERR_FORMAT naming the file and the tensor. */
zl_status zl_ckpt_file_read(zl_ckpt_file *f, const char *name, size_t begin, size_t n,
                            zl_dtype dtype, void *dst);
/* Verify tensor `name`'s checksum without keeping its values (a pass over its bytes), and
 * every tensor not verified by a read yet (a loader that needed only some tensors still
 * refuses a file with a corrupted one). */
zl_status zl_ckpt_file_verify(zl_ckpt_file *f, const char *name);
zl_status zl_ckpt_file_verify_all(zl_ckpt_file *f);
/* The tensors, in the file's order. */
int zl_ckpt_file_num_tensors(const zl_ckpt_file *f);
const char *zl_ckpt_file_tensor_name(const zl_ckpt_file *f, int i);

/* ---- JSON helpers that name the file and the key in their errors --------------------- */

/* An integer / number / string member of obj (the file's path for the message). */
zl_status zl_ckpt_json_int(const json_t *obj, const char *key, const char *path, int64_t *out);
zl_status zl_ckpt_json_real(const json_t *obj, const char *key, const char *path, double *out);
zl_status zl_ckpt_json_string(const json_t *obj, const char *key, const char *path,
                              const char **out);
/* Sealed JSON: an object written with its own checksum as its last member,
 * "json_xxh3": the XXH3 of every byte before it, so that any change to the file (a flipped
 * bit, an edit, a truncation) is caught while it stays plain JSON for other readers.
 * Write: atomically (temporary file, fsync, rename, directory fsync). Load: ZL_ERR_IO if
 * it cannot be read, ZL_ERR_FORMAT naming the file if the seal does not match or the text
 * is not an object. */
zl_status zl_ckpt_json_write(const char *path, const json_t *object);
zl_status zl_ckpt_json_load(const char *path, json_t **out);

#endif
