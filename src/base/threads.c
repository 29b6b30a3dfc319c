/* The default thread count of a rank: see threads.h. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threads.h"

int zl_threads_choose(int cpus, int runnable, int ranks)
{
    if (cpus < 1) cpus = 1;
    if (ranks < 1) ranks = 1;
    /* Runnable tasks that are not ours: the count includes this rank, and the other ranks
     * of the node will be running too once the job starts, whether or not they are yet. */
    int others = runnable > ranks ? runnable - ranks : 0;
    int free_cpus = cpus - others;
    int n = free_cpus / ranks;
    return n >= 1 ? n : 1;
}

/* The launcher's count of this job's ranks on this node, 1 if none says. */
static int ranks_on_node(void)
{
    static const char *vars[] = {"MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long n = v ? strtol(v, &end, 10) : 0;
        if (v && *v && *end == '\0' && n >= 1 && n <= 1 << 20) return (int)n;
    }
    return 1;
}

/* Tasks runnable now on the machine (the numerator of /proc/loadavg's "4/321"), 0 if
 * unknown. */
static int runnable_now(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return 0;
    double l1, l5, l15;
    int running = 0, total = 0;
    if (fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total) != 5) running = 0;
    fclose(f);
    return running > 0 ? running : 0;
}

/* Cores in this process's affinity mask, at least 1. */
static int affinity_cpus(void)
{
    int cpus = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
    return cpus < 1 ? 1 : cpus;
}

void zl_threads_mask(uint32_t mask[ZL_THREADS_MASK_WORDS])
{
    memset(mask, 0, ZL_THREADS_MASK_WORDS * sizeof *mask);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        memset(mask, 0xff, ZL_THREADS_MASK_WORDS * sizeof *mask); /* unknown: all cores */
        return;
    }
    for (int c = 0; c < ZL_THREADS_MASK_WORDS * 32 && c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) mask[c / 32] |= 1u << (c % 32);
}

int zl_threads_sharing(const uint32_t *masks, int n, int me)
{
    const uint32_t *mine = masks + (size_t)me * ZL_THREADS_MASK_WORDS;
    int sharing = 0;
    for (int r = 0; r < n; r++) {
        const uint32_t *theirs = masks + (size_t)r * ZL_THREADS_MASK_WORDS;
        bool overlap = false;
        for (int w = 0; w < ZL_THREADS_MASK_WORDS && !overlap; w++) overlap = mine[w] & theirs[w];
        sharing += overlap || r == me;
    }
    return sharing;
}

bool zl_threads_oversubscribed(int threads, int cpus, int ranks)
{
    return (long)threads * (ranks < 1 ? 1 : ranks) > (long)(cpus < 1 ? 1 : cpus);
}

bool zl_threads_check(int threads, int ranks, char *buf, size_t size)
{
    int cpus = affinity_cpus();
    if (ranks <= 0) ranks = ranks_on_node();
    if (!zl_threads_oversubscribed(threads, cpus, ranks)) return false;
    int fit = cpus / ranks >= 1 ? cpus / ranks : 1;
    snprintf(buf, size, "%d rank%s x %d threads on %d core%s: threads wait for each other at "
             "every barrier, and a step may run several times slower\n  hint: --threads %d "
             "fits (or leave --threads and OMP_NUM_THREADS unset: zerolab then chooses)",
             ranks, ranks == 1 ? "" : "s", threads, cpus, cpus == 1 ? "" : "s", fit);
    return true;
}

int zl_threads_default(int ranks, int node_ranks, const char **why)
{
    static char text[96];
    int cpus = affinity_cpus();
    int runnable = runnable_now();
    if (ranks <= 0) ranks = node_ranks = ranks_on_node();
    /* ranks of this job bound to other cores run, but not on ours */
    if (node_ranks > ranks) runnable = runnable > node_ranks - ranks ? runnable - (node_ranks - ranks) : 0;
    int n = zl_threads_choose(cpus, runnable, ranks);
    int others = runnable > ranks ? runnable - ranks : 0;
    snprintf(text, sizeof text, "%d core%s, %d rank%s on them, %d other task%s running", cpus,
             cpus == 1 ? "" : "s", ranks, ranks == 1 ? "" : "s", others, others == 1 ? "" : "s");
    if (why) *why = text;
    return n;
}
