/* Files that are either wholly there or not there at all.
 *
 * A checkpoint must survive the process being killed at any instant (a job's time limit,
 * an out-of-memory kill, a node failure). So every file is written to a temporary name in
 * the same directory, fsync'd, and renamed over its destination (rename is atomic within a
 * file system), and then the directory is fsync'd so that the rename itself is durable.
 * A reader sees the old file or the new one, never a mix. */
#ifndef ZL_CKPT_ATOMIC_FILE_H
#define ZL_CKPT_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* A file being written under a temporary name: open, write (as often as needed), then
 * close with commit (fsync, rename over the destination, fsync of the directory) or
 * without (the temporary file is removed). Messages name the destination, the step that
 * failed and the system's reason. */
typedef struct zl_atomic_file {
    int fd;
    char *path, *tmp;
    const char *kind; /* "safetensors file", ... for messages */
    size_t written, kicked; /* bytes written, and up to where the disk writing was started */
} zl_atomic_file;

zl_status zl_atomic_file_open(zl_atomic_file *f, const char *path, const char *kind);
zl_status zl_atomic_file_write(zl_atomic_file *f, const void *buf, size_t nbytes);
zl_status zl_atomic_file_close(zl_atomic_file *f, bool commit);

/* One piece of the file's contents, written in order. */
typedef struct zl_file_piece {
    const void *data;
    size_t nbytes;
} zl_file_piece;

/* Write the pieces to `path` atomically. `kind` names the file in messages ("safetensors
 * file", "checkpoint state"). ZL_ERR_IO with the step that failed and the system's reason
 * (a full disk is "No space left on device"); the destination is then as it was and the
 * temporary file is removed. */
zl_status zl_file_write_atomic(const char *path, const zl_file_piece *pieces, int count,
                               const char *kind);

/* write(2) until all n bytes are written; false with errno set (a write that makes no
 * progress reports ENOSPC, as the kernel does for a full disk). */
bool zl_file_write_all(int fd, const void *buf, size_t n);

/* fsync a directory, so that renames and creations in it are durable. Best effort: some
 * file systems refuse fsync on directories, and the files themselves are on disk. */
void zl_file_sync_dir(const char *dir);
/* The same for the directory that holds `path`. */
void zl_file_sync_parent(const char *path);

#endif
