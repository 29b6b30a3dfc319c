/* Host memory available to this process: MemAvailable, capped by the memory cgroup. */
#include "base/hostmem.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first line of `path` as an unsigned number; false if missing or not a number
 * ("max" in cgroup v2 means no limit, also false). */
static bool read_u64(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fscanf(f, "%" SCNu64, out) == 1;
    fclose(f);
    return ok;
}

/* The value of `key` in a "key value" file (memory.stat) or "Key: value kB" (meminfo). */
static bool read_key(const char *path, const char *key, uint64_t *out)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[256];
    size_t n = strlen(key);
    bool ok = false;
    while (!ok && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && (line[n] == ' ' || line[n] == ':'))
            ok = sscanf(line + n + 1, " %" SCNu64, out) == 1;
    fclose(f);
    return ok;
}

/* Is `name` one of the comma-separated controllers in `list` ("cpu,cpuacct")? */
static bool has_controller(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        if (!comma) return false;
        p = comma + 1;
    }
}

/* This process's cgroup path in hierarchy `controller` ("" for v2's unified "0::"
 * line), e.g. "/user.slice/session-1.scope"; false if there is none. */
static bool cgroup_path(const char *controller, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = '\0';
        const char *ctrls = a + 1;
        if (*controller ? !has_controller(ctrls, controller) : *ctrls != '\0') continue;
        b[1 + strcspn(b + 1, "\n")] = '\0';
        snprintf(out, outlen, "%s", b + 1);
        found = true;
    }
    fclose(f);
    return found;
}

/* limit - (usage - inactive_file) of one cgroup directory, if it has a limit. */
static bool cgroup_room(const char *dir, const char *limit_file, const char *usage_file,
                        const char *inactive_key, uint64_t *room)
{
    char p[1200];
    uint64_t limit, usage, inactive = 0;
    snprintf(p, sizeof p, "%s/%s", dir, limit_file);
    if (!strcmp(limit_file, "memory.stat") ? !read_key(p, "hierarchical_memory_limit", &limit)
                                           : !read_u64(p, &limit))
        return false;
    snprintf(p, sizeof p, "%s/%s", dir, usage_file);
    if (!read_u64(p, &usage)) return false;
    snprintf(p, sizeof p, "%s/memory.stat", dir);
    if (read_key(p, inactive_key, &inactive) && inactive < usage) usage -= inactive;
    if (limit >= (UINT64_C(1) << 60)) return false; /* v1 writes "unlimited" as ~2^63 */
    *room = limit > usage ? limit - usage : 0;
    return true;
}

/* The tightest cgroup room: v2 walks the cgroup and its ancestors (a limit may sit on a
 * parent); v1's hierarchical_memory_limit already folds them in. Where /proc/self/cgroup's
 * path is not visible (a container's cgroup namespace), the mount's root is this cgroup. */
static bool cgroup_available(uint64_t *room, const char **source)
{
    char path[1024], dir[1200];
    bool any = false;
    uint64_t r;
    if (cgroup_path("", path, sizeof path)) {
        for (;;) {
            snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", path);
            if (cgroup_room(dir, "memory.max", "memory.current", "inactive_file", &r) &&
                (!any || r < *room)) {
                *room = r, any = true;
                *source = "cgroup memory.max";
            }
            char *slash = strrchr(path, '/');
            if (!slash || slash == path) break;
            *slash = '\0';
        }
        if (!any && cgroup_room("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file", &r))
            *room = r, any = true, *source = "cgroup memory.max";
    }
    if (cgroup_path("memory", path, sizeof path)) {
        snprintf(dir, sizeof dir, "/sys/fs/cgroup/memory%s", strcmp(path, "/") ? path : "");
        if ((cgroup_room(dir, "memory.stat", "memory.usage_in_bytes", "total_inactive_file", &r) ||
             cgroup_room("/sys/fs/cgroup/memory", "memory.stat", "memory.usage_in_bytes",
                         "total_inactive_file", &r)) &&
            (!any || r < *room))
            *room = r, any = true, *source = "cgroup memory limit";
    }
    return any;
}

zl_status zl_hostmem_available(zl_hostmem *out)
{
    memset(out, 0, sizeof *out);
    uint64_t kib;
    if (!read_key("/proc/meminfo", "MemAvailable", &kib))
        return zl_errorf(ZL_ERR_NOT_FOUND, "cannot read MemAvailable from /proc/meminfo");
    uint64_t avail = kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024, room;
    const char *source = "MemAvailable";
    const char *cg_source = NULL;
    if (cgroup_available(&room, &cg_source) && room < avail) avail = room, source = cg_source;
    out->available_nbytes = avail > SIZE_MAX ? SIZE_MAX : (size_t)avail;
    snprintf(out->source, sizeof out->source, "%s", source);
    return ZL_OK;
}
