/* A run's check before it allocates (preflight.h).
 *
 * Without it a run too large for the machine allocates for minutes until the kernel kills
 * it without a word (gpt2-1.5b on a 24 GiB host: SIGKILL after 89 s), and a run past a
 * simulated card's budget allocates gigabytes of host memory before the ledger refuses
 * it. The meta backend runs the same engine with the same options in milliseconds. */
#include "run/preflight.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hostmem.h"
#include "plan/plan.h"
#include "sim/ledger.h"

#define MARGIN_FIXED_NBYTES ((size_t)64 << 20)
#define MARGIN_PEAK_DIVISOR 16

/* The host memory this rank can count on: ZL_HOST_MEMORY_AVAILABLE if set (bytes), else
 * the kernel's figure. *known false: no figure (the check is skipped). */
static zl_status host_available(double *nbytes, bool *known, char *source, size_t len)
{
    const char *env = getenv("ZL_HOST_MEMORY_AVAILABLE");
    *known = false;
    if (env) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (*env < '0' || *env > '9' || *end != '\0' || errno == ERANGE)
            return zl_errorf(ZL_ERR_INVALID, "ZL_HOST_MEMORY_AVAILABLE='%s' is not a number of "
                             "bytes\n  hint: e.g. ZL_HOST_MEMORY_AVAILABLE=17179869184 for 16 "
                             "GiB, or unset it to use the machine's figure", env);
        *nbytes = (double)v;
        *known = true;
        snprintf(source, len, "ZL_HOST_MEMORY_AVAILABLE");
        return ZL_OK;
    }
    zl_hostmem hm;
    if (zl_hostmem_available(&hm) != ZL_OK) return ZL_OK; /* not Linux: nothing to compare */
    *nbytes = (double)hm.available_nbytes;
    *known = true;
    snprintf(source, len, "%s", hm.source);
    return ZL_OK;
}

/* A number naming this machine, the same on its every rank: FNV-1a of the host name and
 * the kernel's boot id, 52 bits so that it travels exactly as a double. */
static double node_key(void)
{
    char buf[512] = "";
    if (gethostname(buf, 255) != 0) buf[0] = '\0';
    buf[255] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    size_t n = strlen(buf);
    if (f) {
        if (!fgets(buf + n, (int)(sizeof buf - n), f)) buf[n] = '\0';
        fclose(f);
    }
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)buf; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return (double)(h >> 12);
}

static zl_status check(zl_comm *world, const zl_run_preflight *p);

zl_status zl_run_preflight_check(zl_comm *world, const zl_run_preflight *p)
{
    /* Its collectives are not training: keep them out of the comms logger's summary. */
    zl_comm_log *log = world->log;
    world->log = NULL;
    zl_status st = check(world, p);
    world->log = log;
    return st;
}

static zl_status check(zl_comm *world, const zl_run_preflight *p)
{
    /* 1. The device: the plan fails where the run would, with the ledger's message. */
    zl_plan_request req;
    memset(&req, 0, sizeof req);
    req.model = *p->model;
    req.options = *p->options;
    req.world_size = p->dp_size > 0 ? p->dp_size : world->size;
    req.pipe_stages = p->pipe_stages;
    req.tp_size = p->tp_size;
    req.device_memory = p->device_memory;
    req.device_name = p->device_name;
    req.gpu = p->gpu;
    /* Pipeline stages hold different layers: every rank plans every stage (pipe_stage
     * -1: a meta run each), so that all reach the same verdict and the first stage that
     * does not fit is named alike everywhere; the host check below counts the largest. */
    req.pipe_stage = -1;
    zl_plan_result res;
    zl_status st = zl_plan_run(&req, &res);
    /* The same plan on every rank, so the same verdict; the agreement keeps a rank whose
     * plan failed otherwise (out of host memory) from leaving the others waiting below. */
    if ((st = zl_comm_agree(world, st)) != ZL_OK) return st;

    /* 2. The host. Every rank learns every rank's node and available memory, so that all
     * of them reach the same verdict (and rank 0 can word it) without another round. The
     * barrier first: each rank has loaded its data set when any of them reads the figure. */
    char source[48] = "";
    double avail = 0;
    bool known = false;
    zl_status hst = ZL_OK;
    if (world->size > 1 && (st = zl_comm_barrier(world)) != ZL_OK) return st;
    hst = host_available(&avail, &known, source, sizeof source);
    double mine[3] = {node_key(), known ? avail : -1, hst == ZL_OK ? 0 : 1}, *all = mine;
    if (world->size > 1) {
        if (!(all = malloc(3 * (size_t)world->size * sizeof *all)))
            return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        if ((st = zl_comm_allgather(world, all, mine, 3, ZL_F64)) != ZL_OK) {
            free(all);
            return st;
        }
    }
    st = zl_comm_agree(world, hst); /* a bad ZL_HOST_MEMORY_AVAILABLE on any rank */
    /* On the CPU both the accelerator's memory and the host device's (offloaded optimizer
     * state and parameters, staged micro-batches) are this machine's memory. */
    double engine = (double)res.ledger.peak_nbytes + (double)res.host.peak_nbytes;
    double per_rank = engine + engine / MARGIN_PEAK_DIVISOR + (double)MARGIN_FIXED_NBYTES +
                      (double)p->host_nbytes;
    for (int r = 0; r < world->size && st == ZL_OK; r++) {
        if (all[3 * r + 1] < 0) continue; /* unknown there */
        bool first = true; /* r is the first rank of its node: count the node once */
        int ranks = 0;
        double node_avail = all[3 * r + 1];
        for (int q = 0; q < world->size; q++)
            if (all[3 * q] == all[3 * r]) {
                if (q < r) first = false;
                ranks++;
                if (all[3 * q + 1] >= 0 && all[3 * q + 1] < node_avail) node_avail = all[3 * q + 1];
            }
        if (!first) continue;
        /* The data set is resident already, so the kernel no longer counts it available. */
        if (!getenv("ZL_HOST_MEMORY_AVAILABLE")) node_avail += ranks * (double)p->held_nbytes;
        double need = ranks * per_rank;
        if (need <= node_avail) continue;
        char b_need[32], b_rank[32], b_avail[32], b_eng[32], b_rest[32];
        char where[64] = "this machine";
        if (all[3 * r] != mine[0] || ranks < world->size)
            snprintf(where, sizeof where, "the node of rank %d", r);
        char ranks_x[64] = "1 rank";
        if (ranks > 1)
            snprintf(ranks_x, sizeof ranks_x, "%d ranks x %s", ranks,
                     zl_format_bytes(b_rank, sizeof b_rank, (size_t)per_rank));
        st = zl_errorf(ZL_ERR_NOMEM,
                       "this run needs %s of host memory (%s), %s has %s available (%s)\n"
                       "  hint: per rank, the engine's peak is %s (zerolab plan shows it by "
                       "category), plus %s for the data set, batch buffers and a margin; a "
                       "smaller model, micro-batch or --seq-len%s fits in less",
                       zl_format_bytes(b_need, sizeof b_need, (size_t)need), ranks_x, where,
                       zl_format_bytes(b_avail, sizeof b_avail, (size_t)node_avail), source,
                       zl_format_bytes(b_eng, sizeof b_eng, (size_t)engine),
                       zl_format_bytes(b_rest, sizeof b_rest, (size_t)(per_rank - engine)),
                       ranks > 1 ? ", fewer ranks on the node or a higher ZeRO stage (which "
                                   "partitions model states across ranks)" : "");
    }
    if (all != mine) free(all);
    return st;
}
