/* Swap files: one tensor's bytes in a file under nvme_path, moved by a zl_aio engine.
 *
 * A zl_swap_dir is one swap folder (e.g. <nvme_path>/zero_stage_3/float16params/rank0,
 * src/io/swap_layout.h). nvme_path must exist and be a directory this process may write
 * (a missing or read-only one is an error naming it: DeepSpeed would create it, but a
 * mistyped nvme_path then fills the wrong disk); the folders below it are created as
 * needed, and those the layer created are removed again when the dir is closed.
 *
 * A zl_swap_file is created in a dir with O_DIRECT where the filesystem allows it (the
 * page cache would otherwise hold a second copy of every swapped tensor); a filesystem
 * that refuses O_DIRECT (tmpfs, some overlay and network filesystems: open fails with
 * EINVAL) gets a buffered file, and zl_swap_file_direct says which. Its size is rounded
 * up to 4096 bytes (O_DIRECT moves whole blocks) and allocated at creation
 * (posix_fallocate), so a disk without room for it fails there, naming the file, rather
 * than in the middle of a step. Closing the file removes it.
 *
 * Reads and writes are asynchronous (queued on the engine; zl_aio_wait completes them)
 * and move whole 4096-byte blocks: the buffer must be 4096-aligned (zl_swap_pool's are)
 * and hold zl_swap_padded(nbytes) bytes, the offset must be a multiple of 4096, and the
 * transfer must lie within the file. A read of a file that was truncated behind the
 * layer's back is a short read, an error naming the file, never zeros.
 *
 * Messages name the path, what happened and a hint; nothing here prints or exits. */
#ifndef ZL_IO_SWAP_FILE_H
#define ZL_IO_SWAP_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "io/aio.h"

/* The alignment of O_DIRECT transfers, and n rounded up to it. */
#define ZL_SWAP_ALIGN ((size_t)4096)
static inline size_t zl_swap_padded(size_t nbytes)
{
    return (nbytes + ZL_SWAP_ALIGN - 1) / ZL_SWAP_ALIGN * ZL_SWAP_ALIGN;
}

typedef struct zl_swap_dir zl_swap_dir;

/* Open (creating what is missing below nvme_path) the folder nvme_path/subdir; subdir
 * may be "" for nvme_path itself. ZL_ERR_IO naming the folder when nvme_path is missing,
 * not a directory, or not writable. */
zl_status zl_swap_dir_open(zl_swap_dir **out, const char *nvme_path, const char *subdir);
/* Remove the folders this dir created (deepest first; a folder something else put files
 * in stays). NULL is a no-op. */
void zl_swap_dir_close(zl_swap_dir *dir);

/* Remove `path`, a swap folder shared with the job's other ranks (zero_stage_3 and the
 * folder above rank<R>), if it is empty: each rank calls it after closing its own folder,
 * and the last one out removes it. Two ranks closing at the same moment could each see
 * the other's folder still there, so a non-empty folder is retried for up to 0.2 s before
 * it is left (it may hold another rank's files that live on). */
void zl_swap_remove_shared(const char *path);
const char *zl_swap_dir_path(const zl_swap_dir *dir);
const char *zl_swap_dir_nvme_path(const zl_swap_dir *dir);

typedef struct zl_swap_file zl_swap_file;

/* Create (or truncate) dir/name for nbytes of data. */
zl_status zl_swap_file_create(zl_swap_file **out, const zl_swap_dir *dir, const char *name,
                              size_t nbytes);
/* Close and remove the file. The engine must not be moving its bytes (zl_aio_wait
 * first). NULL is a no-op. */
void zl_swap_file_close(zl_swap_file *file);

const char *zl_swap_file_path(const zl_swap_file *file);
size_t zl_swap_file_nbytes(const zl_swap_file *file);        /* as created */
size_t zl_swap_file_padded_nbytes(const zl_swap_file *file); /* on disk */
bool zl_swap_file_direct(const zl_swap_file *file);          /* opened with O_DIRECT */
int zl_swap_file_fd(const zl_swap_file *file);

/* Queue a write of buf's first zl_swap_padded(nbytes) bytes at `offset` (4096-aligned)
 * of the file, or a read into them. ZL_ERR_INVALID for a misaligned buffer or offset or a
 * range past the file's end. */
zl_status zl_swap_file_write(zl_swap_file *file, zl_aio *aio, const void *buf, size_t nbytes,
                             uint64_t offset);
zl_status zl_swap_file_read(zl_swap_file *file, zl_aio *aio, void *buf, size_t nbytes,
                            uint64_t offset);

#endif
