/* Host memory: how much this process may still allocate before the kernel's OOM killer
 * steps in (and ends the run with SIGKILL and no message).
 *
 * The figure is /proc/meminfo's MemAvailable (free memory plus what the kernel can
 * reclaim), or, when lower, the memory cgroup's limit minus its usage (page cache the
 * cgroup can drop, inactive_file, counted as free): v2 memory.max / memory.current of this
 * process's cgroup and each ancestor, v1 hierarchical_memory_limit / memory.usage_in_bytes.
 * It is a snapshot: other processes allocate too. */
#ifndef ZL_BASE_HOSTMEM_H
#define ZL_BASE_HOSTMEM_H

#include <stddef.h>

#include "base/status.h"

typedef struct zl_hostmem {
    size_t available_nbytes;
    /* where the figure comes from, for messages: "MemAvailable", "cgroup memory.max", ... */
    char source[48];
} zl_hostmem;

/* Read the host's available memory. ZL_ERR_NOT_FOUND when it cannot be known (no
 * /proc/meminfo: not Linux); callers then skip their check. */
zl_status zl_hostmem_available(zl_hostmem *out);

#endif
