/* fio from bench programs (fio_run.h). */
#define _DEFAULT_SOURCE /* sync */
#include "fio_run.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double zl_bench_fio(const char *file, const char *rw, size_t nbytes, size_t bs, int iodepth,
                    const char *ioengine, bool direct, bool end_fsync)
{
    if (system("command -v fio >/dev/null 2>&1") != 0) return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "fio --name=zl-bench --filename=%s --rw=%s --bs=%zu --iodepth=%d --ioengine=%s "
             "--direct=%d --end_fsync=%d --size=%zu --numjobs=1 --output-format=json 2>/dev/null",
             file, rw, bs, iodepth, ioengine, direct ? 1 : 0, end_fsync ? 1 : 0, nbytes);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    json_error_t err;
    json_t *root = json_loadf(p, JSON_DISABLE_EOF_CHECK, &err);
    int rc = pclose(p);
    double bw = -1;
    if (root && rc == 0) {
        json_t *job = json_array_get(json_object_get(root, "jobs"), 0);
        json_t *b = json_object_get(json_object_get(job, strcmp(rw, "write") ? "read" : "write"),
                                    "bw_bytes");
        if (json_is_number(b)) bw = json_number_value(b);
    }
    json_decref(root);
    return bw;
}

bool zl_bench_drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, "1", 1) == 1; /* 1: the page cache (not dentries and inodes) */
    close(fd);
    return ok;
}
