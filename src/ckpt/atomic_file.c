#include "ckpt/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool zl_file_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return false;
        if (k == 0) {
            errno = ENOSPC;
            return false;
        }
        p += k;
        n -= (size_t)k;
    }
    return true;
}

void zl_file_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

void zl_file_sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    zl_file_sync_dir(dir);
}

zl_status zl_file_write_atomic(const char *path, const zl_file_piece *pieces, int count,
                               const char *kind)
{
    size_t tmp_len = strlen(path) + 32;
    char *tmp = malloc(tmp_len);
    if (!tmp) return zl_errorf(ZL_ERR_NOMEM, "out of host memory writing %s '%s'", kind, path);
    /* Same directory as the destination, so that rename() is atomic; the pid keeps two
     * processes writing the same file from sharing a temporary. */
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
    const char *what = NULL; /* the step that failed, and its errno */
    int err = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        what = "create", err = errno;
    } else {
        for (int i = 0; i < count && !what; i++)
            if (!zl_file_write_all(fd, pieces[i].data, pieces[i].nbytes)) what = "write", err = errno;
        if (!what && fsync(fd) != 0) what = "fsync", err = errno;
        if (close(fd) != 0 && !what) what = "close", err = errno;
        if (!what && rename(tmp, path) != 0) what = "rename", err = errno;
    }
    zl_status st = ZL_OK;
    if (what) {
        st = zl_errorf(ZL_ERR_IO, "cannot write %s '%s' (%s of '%s' failed: %s)", kind, path, what,
                       tmp, strerror(err));
        if (fd >= 0) unlink(tmp);
    } else {
        zl_file_sync_parent(path);
    }
    free(tmp);
    return st;
}
