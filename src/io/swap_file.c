/* Swap folders and swap files: O_DIRECT where allowed, preallocated, removed at close. */
#define _GNU_SOURCE /* O_DIRECT */
#include "io/swap_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define MAX_CREATED 16

struct zl_swap_dir {
    char nvme_path[PATH_MAX];
    char path[PATH_MAX];
    int ncreated;
    char *created[MAX_CREATED]; /* folders this dir made, outermost first */
};

struct zl_swap_file {
    char path[PATH_MAX];
    int fd;
    bool direct;
    size_t nbytes, padded;
};

static const char *write_hint(int err)
{
    switch (err) {
    case EACCES:
    case EPERM: return "give this user write permission there, or point offload_param/"
                       "offload_optimizer.nvme_path at a directory it may write";
    case EROFS: return "that filesystem is mounted read-only; point offload_param/"
                       "offload_optimizer.nvme_path at a writable one";
    case ENOSPC:
    case EDQUOT: return "free space on that filesystem, or point offload_param/"
                        "offload_optimizer.nvme_path at a larger one";
    default: return "check the filesystem of nvme_path";
    }
}

void zl_swap_remove_shared(const char *path)
{
    for (int tries = 0; tries < 20; tries++) {
        if (rmdir(path) == 0 || (errno != ENOTEMPTY && errno != EEXIST)) return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void zl_swap_dir_close(zl_swap_dir *dir)
{
    if (!dir) return;
    for (int i = dir->ncreated - 1; i >= 0; i--) {
        /* The folders above the innermost (zero_stage_3, its optimizer or <dtype>params
         * folder) are shared with the other ranks, which may still be using them: not
         * empty there is normal, and the last rank out removes them. */
        bool shared = i < dir->ncreated - 1;
        if (rmdir(dir->created[i]) != 0 && errno != ENOENT &&
            !(shared && (errno == ENOTEMPTY || errno == EEXIST)))
            zl_log_warn("swap folder %s: not removed (%s); files left in it were not made "
                        "by this run's swap layer",
                        dir->created[i], strerror(errno));
        free(dir->created[i]);
    }
    free(dir);
}

zl_status zl_swap_dir_open(zl_swap_dir **out, const char *nvme_path, const char *subdir)
{
    *out = NULL;
    struct stat st;
    if (!nvme_path || !*nvme_path)
        return zl_errorf(ZL_ERR_CONFIG, "nvme_path is empty\n  hint: set offload_param/"
                                        "offload_optimizer.nvme_path to a directory on a "
                                        "fast local disk");
    if (stat(nvme_path, &st) != 0)
        return zl_errorf(ZL_ERR_IO, "nvme_path %s: %s\n  hint: create the directory first "
                                    "(mkdir -p %s), or point offload_param/offload_optimizer."
                                    "nvme_path at an existing one",
                         nvme_path, strerror(errno), nvme_path);
    if (!S_ISDIR(st.st_mode))
        return zl_errorf(ZL_ERR_IO, "nvme_path %s: not a directory\n  hint: point "
                                    "offload_param/offload_optimizer.nvme_path at a directory",
                         nvme_path);
    zl_swap_dir *dir = calloc(1, sizeof *dir);
    if (!dir) return zl_errorf(ZL_ERR_NOMEM, "swap folder: out of memory");
    snprintf(dir->nvme_path, sizeof dir->nvme_path, "%s", nvme_path);
    int n = snprintf(dir->path, sizeof dir->path, "%s%s%s", nvme_path,
                     subdir && *subdir ? "/" : "", subdir ? subdir : "");
    if (n < 0 || (size_t)n >= sizeof dir->path) {
        free(dir);
        return zl_errorf(ZL_ERR_INVALID, "nvme_path %s: swap folder path too long", nvme_path);
    }
    /* mkdir each component of subdir below nvme_path, remembering what we made */
    size_t base = strlen(nvme_path);
    for (char *p = dir->path + base + 1; subdir && *subdir && p <= dir->path + n; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir->path, 0755) == 0) {
            if (dir->ncreated == MAX_CREATED || !(dir->created[dir->ncreated] = strdup(dir->path))) {
                *p = saved;
                zl_swap_dir_close(dir);
                return zl_errorf(ZL_ERR_NOMEM, "swap folder: too deep or out of memory");
            }
            dir->ncreated++;
        } else if (errno != EEXIST) {
            int err = errno;
            zl_status s = zl_errorf(ZL_ERR_IO, "nvme_path %s: cannot create the swap folder "
                                               "%s: %s\n  hint: %s",
                                    nvme_path, dir->path, strerror(err), write_hint(err));
            *p = saved;
            zl_swap_dir_close(dir);
            return s;
        }
        *p = saved;
        if (saved == '\0') break;
    }
    /* An existing folder may still be read-only (root passes permission checks but not
     * a read-only mount): ask now, not at the first swap. */
    if (access(dir->path, W_OK | X_OK) != 0) {
        int err = errno;
        zl_status s = zl_errorf(ZL_ERR_IO, "nvme_path %s: swap folder %s is not writable: "
                                           "%s\n  hint: %s",
                                nvme_path, dir->path, strerror(err), write_hint(err));
        zl_swap_dir_close(dir);
        return s;
    }
    *out = dir;
    return ZL_OK;
}

const char *zl_swap_dir_path(const zl_swap_dir *dir) { return dir->path; }
const char *zl_swap_dir_nvme_path(const zl_swap_dir *dir) { return dir->nvme_path; }

zl_status zl_swap_file_create(zl_swap_file **out, const zl_swap_dir *dir, const char *name,
                              size_t nbytes)
{
    *out = NULL;
    zl_swap_file *f = calloc(1, sizeof *f);
    if (!f) return zl_errorf(ZL_ERR_NOMEM, "swap file %s: out of memory", name);
    f->fd = -1;
    int n = snprintf(f->path, sizeof f->path, "%s/%s", dir->path, name);
    if (n < 0 || (size_t)n >= sizeof f->path) {
        free(f);
        return zl_errorf(ZL_ERR_INVALID, "swap file %s/%s: path too long", dir->path, name);
    }
    f->nbytes = nbytes;
    f->padded = zl_swap_padded(nbytes);
    const int flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC;
    f->fd = open(f->path, flags | O_DIRECT, 0600);
    f->direct = f->fd >= 0;
    if (f->fd < 0 && errno == EINVAL) /* the filesystem has no O_DIRECT (tmpfs) */
        f->fd = open(f->path, flags, 0600);
    if (f->fd < 0) {
        int err = errno;
        free(f);
        return zl_errorf(ZL_ERR_IO, "nvme_path %s: cannot create swap file %s/%s: %s\n"
                                    "  hint: %s",
                         dir->nvme_path, dir->path, name, strerror(err), write_hint(err));
    }
    if (f->padded) {
        int err = posix_fallocate(f->fd, 0, (off_t)f->padded);
        if (err == EOPNOTSUPP || err == EINVAL) /* no fallocate here: size it sparse */
            err = ftruncate(f->fd, (off_t)f->padded) == 0 ? 0 : errno;
        if (err) {
            zl_status s = zl_errorf(ZL_ERR_IO, "nvme_path %s: %s allocating %zu bytes for swap "
                                               "file %s\n  hint: %s",
                                    dir->nvme_path, strerror(err), f->padded, f->path,
                                    write_hint(err));
            zl_swap_file_close(f);
            return s;
        }
    }
    *out = f;
    return ZL_OK;
}

void zl_swap_file_close(zl_swap_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (unlink(f->path) != 0 && errno != ENOENT)
        zl_log_warn("swap file %s: not removed: %s", f->path, strerror(errno));
    free(f);
}

const char *zl_swap_file_path(const zl_swap_file *f) { return f->path; }
size_t zl_swap_file_nbytes(const zl_swap_file *f) { return f->nbytes; }
size_t zl_swap_file_padded_nbytes(const zl_swap_file *f) { return f->padded; }
bool zl_swap_file_direct(const zl_swap_file *f) { return f->direct; }
int zl_swap_file_fd(const zl_swap_file *f) { return f->fd; }

static zl_status check_range(const zl_swap_file *f, const void *buf, size_t nbytes,
                             uint64_t offset, const char *what)
{
    if ((uintptr_t)buf % ZL_SWAP_ALIGN)
        return zl_errorf(ZL_ERR_INVALID, "swap file %s: %s buffer %p is not 4096-aligned "
                                         "(O_DIRECT)\n  hint: take buffers from a zl_swap_pool",
                         f->path, what, buf);
    if (offset % ZL_SWAP_ALIGN)
        return zl_errorf(ZL_ERR_INVALID, "swap file %s: %s offset %llu is not a multiple of 4096",
                         f->path, what, (unsigned long long)offset);
    if (offset > f->padded || zl_swap_padded(nbytes) > f->padded - offset)
        return zl_errorf(ZL_ERR_INVALID, "swap file %s: %s of %zu bytes at offset %llu is past "
                                         "its end (%zu bytes)",
                         f->path, what, nbytes, (unsigned long long)offset, f->padded);
    return ZL_OK;
}

zl_status zl_swap_file_write(zl_swap_file *f, zl_aio *aio, const void *buf, size_t nbytes,
                             uint64_t offset)
{
    zl_status st = check_range(f, buf, nbytes, offset, "write");
    if (st) return st;
    return zl_aio_pwrite(aio, f->fd, buf, zl_swap_padded(nbytes), offset, f->path);
}

zl_status zl_swap_file_read(zl_swap_file *f, zl_aio *aio, void *buf, size_t nbytes,
                            uint64_t offset)
{
    zl_status st = check_range(f, buf, nbytes, offset, "read");
    if (st) return st;
    return zl_aio_pread(aio, f->fd, buf, zl_swap_padded(nbytes), offset, f->path);
}
