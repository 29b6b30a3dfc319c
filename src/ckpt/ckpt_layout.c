/* A checkpoint's directory layout and the renames that commit a save (ckpt_layout.h). */
#define _GNU_SOURCE /* renameat2 */
#include "ckpt/ckpt_layout.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/atomic_file.h"

zl_status zl_ckpt_check_tag(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > ZL_CKPT_TAG_MAX)
        return zl_errorf(ZL_ERR_INVALID, "checkpoint tag \"%.40s\" must have 1 to %d characters",
                         tag, ZL_CKPT_TAG_MAX);
    if (tag[0] == '.')
        return zl_errorf(ZL_ERR_INVALID, "checkpoint tag \"%s\" must not start with '.' (zerolab "
                         "stages saves in hidden directories)", tag);
    for (size_t i = 0; i < n; i++)
        if (tag[i] == '/' || !isprint((unsigned char)tag[i]))
            return zl_errorf(ZL_ERR_INVALID, "checkpoint tag \"%s\" is a directory name: it cannot "
                             "hold '/' or unprintable characters", tag);
    return ZL_OK;
}

void zl_ckpt_optim_base(char *buf, size_t len, int rank, bool bf16)
{
    snprintf(buf, len, "%szero_pp_rank_%d_mp_rank_00_optim_states", bf16 ? "bf16_" : "", rank);
}

zl_status zl_ckpt_mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return zl_errorf(ZL_ERR_INVALID, "checkpoint directory path is too long: %.60s...", dir);
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return zl_errorf(ZL_ERR_IO, "cannot create checkpoint directory '%s': %s", path,
                                 strerror(errno));
            if (end) break;
            *p = '/';
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return zl_errorf(ZL_ERR_IO, "checkpoint directory '%s' is not a directory", dir);
    return ZL_OK;
}

/* Remove a directory of files (one level: what a checkpoint tag holds). */
static void remove_files_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *ent;
        while ((ent = readdir(d))) {
            if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
            char f[4096];
            snprintf(f, sizeof f, "%s/%s", path, ent->d_name);
            unlink(f);
        }
        closedir(d);
    }
    rmdir(path);
}

static void stage_path(char *buf, size_t len, const char *dir, const char *tag)
{
    snprintf(buf, len, "%s/.%s.partial", dir, tag);
}

/* `latest` temporaries of saves killed while they wrote it (atomic_file.h names them
 * "latest.tmp.<pid>"): the save under way is the directory's only writer. */
static void remove_stale_latest(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (strncmp(ent->d_name, "latest.tmp.", 11) && strncmp(ent->d_name, "latest_universal.tmp.", 21))
            continue;
        char f[4096];
        snprintf(f, sizeof f, "%s/%s", dir, ent->d_name);
        unlink(f);
    }
    closedir(d);
}

zl_status zl_ckpt_stage(const char *dir, const char *tag, char *buf, size_t len)
{
    zl_status st = zl_ckpt_mkdirs(dir);
    if (st != ZL_OK) return st;
    remove_stale_latest(dir);
    stage_path(buf, len, dir, tag);
    remove_files_dir(buf); /* a save of this tag that was killed */
    if (mkdir(buf, 0755) != 0)
        return zl_errorf(ZL_ERR_IO, "cannot create '%s' to save checkpoint \"%s\" in: %s", buf, tag,
                         strerror(errno));
    return ZL_OK;
}

void zl_ckpt_unstage(const char *dir, const char *tag)
{
    char path[4096];
    stage_path(path, sizeof path, dir, tag);
    remove_files_dir(path);
}

zl_status zl_ckpt_commit(const char *dir, const char *tag, bool latest)
{
    char staged[4096], final[4096];
    stage_path(staged, sizeof staged, dir, tag);
    snprintf(final, sizeof final, "%s/%s", dir, tag);
    zl_file_sync_dir(staged); /* the files' names are durable before the directory moves */
    if (rename(staged, final) != 0) {
        if (errno != EEXIST && errno != ENOTEMPTY && errno != EISDIR)
            return zl_errorf(ZL_ERR_IO, "cannot rename '%s' to '%s': %s", staged, final, strerror(errno));
        /* A tag of this name exists: swap the two atomically, so that `latest` (which may
         * name this tag) never points at a missing or half-replaced directory. */
        if (renameat2(AT_FDCWD, staged, AT_FDCWD, final, RENAME_EXCHANGE) != 0) {
            /* A file system without the exchange: move the old one aside first. Killed
             * between the two renames, the tag is missing; zl_ckpt_tag_dir then finds it
             * under its old name. */
            char old[4096];
            snprintf(old, sizeof old, "%s/.%s.old", dir, tag);
            remove_files_dir(old);
            if (rename(final, old) != 0 || rename(staged, final) != 0)
                return zl_errorf(ZL_ERR_IO, "cannot replace checkpoint '%s': %s", final,
                                 strerror(errno));
            zl_file_sync_dir(dir);
            remove_files_dir(old);
        } else {
            zl_file_sync_dir(dir);
            remove_files_dir(staged); /* the old tag, now under the staging name */
        }
    }
    zl_file_sync_dir(dir);
    if (!latest) return ZL_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/latest", dir);
    zl_file_piece piece = {tag, strlen(tag)};
    return zl_file_write_atomic(path, &piece, 1, "checkpoint file");
}

zl_status zl_ckpt_read_latest(const char *dir, const char *file, char *tag, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return zl_errorf(ZL_ERR_NOT_FOUND, "Unable to find %s file at %s, if trying to load "
                             "latest checkpoint please ensure this file exists or pass an explicit "
                             "checkpoint tag when loading a checkpoint\n  hint: pass --tag, or "
                             "--load a directory a save wrote", file, path);
        return zl_errorf(ZL_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    }
    char line[ZL_CKPT_TAG_MAX + 64] = "";
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *s = line;
    while (*s && isspace((unsigned char)*s)) s++;
    char *e = s + strcspn(s, "\r\n");
    while (e > s && isspace((unsigned char)e[-1])) e--;
    *e = '\0';
    zl_status st = zl_ckpt_check_tag(s);
    if (st != ZL_OK)
        return zl_error_wrap(ZL_ERR_FORMAT, "'%s' does not name a checkpoint tag: ", path);
    snprintf(tag, len, "%s", s);
    return ZL_OK;
}

zl_status zl_ckpt_tag_dir(const char *dir, const char *tag, char *buf, size_t len)
{
    zl_status st = zl_ckpt_check_tag(tag);
    if (st != ZL_OK) return st;
    snprintf(buf, len, "%s/%s", dir, tag);
    struct stat sb;
    if (stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode)) return ZL_OK;
    /* A replacement killed between its two renames (zl_ckpt_commit's fallback). */
    char old[4096];
    snprintf(old, sizeof old, "%s/.%s.old", dir, tag);
    if (stat(old, &sb) == 0 && S_ISDIR(sb.st_mode) && rename(old, buf) == 0) return ZL_OK;
    return zl_errorf(ZL_ERR_NOT_FOUND, "checkpoint tag \"%s\" not found: '%s' is not a directory",
                     tag, buf);
}
