/* DeepSpeed's hostfile and its resource filters, for `zerolab launch`.
 *
 * A hostfile names the machines of a job and how many GPUs ("slots") each has, one
 * `hostname slots=N` a line (DeepSpeed's regex: `^(\S+)\s+slots=(\d+)` on the stripped
 * line, so anything after the count is ignored); `#` lines and blank lines are skipped.
 * Each slot is one rank here (a rank impersonates a GPU).
 *
 * The filters follow DeepSpeed's runner (deepspeed/launcher/runner.py) rule for rule:
 *   --include / --exclude  NODE_SPEC[@NODE_SPEC...], NODE_SPEC = NAME[:SLOT[,SLOT...]]
 *                          ("worker-0@worker-1:0,2": all of worker-0, slots 0 and 2 of
 *                          worker-1); mutually exclusive; an unknown host or slot is an
 *                          error; hosts left without slots are dropped; the hostfile's
 *                          order is kept (it maps ranks to nodes).
 *   --num_nodes N          the first N hosts (N > 0);
 *   --num_gpus N           every host gets slots 0..N-1 (N > 0), whatever it had, as in
 *                          DeepSpeed; neither goes with --include/--exclude.
 * Where DeepSpeed accepts something that cannot run (a host with slots=0), this refuses
 * it with a message. Every error is a status with one message and a hint. */
#ifndef ZL_LAUNCH_HOSTFILE_H
#define ZL_LAUNCH_HOSTFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "base/status.h"

#define ZL_HOSTFILE_DEFAULT "/job/hostfile" /* DeepSpeed's default -H */

typedef struct zl_launch_host {
    char *name;
    int *slots; /* the slot ids this job uses on the host, in order */
    int nslots;
} zl_launch_host;

/* The hosts of a job in hostfile order: rank r runs on the host whose slots cover it. */
typedef struct zl_launch_pool {
    zl_launch_host *hosts;
    int nhosts;
} zl_launch_pool;

/* Parse hostfile text; `path` only names the file in messages. ZL_ERR_FORMAT for a bad
 * line, a duplicate host, slots=0 or no host at all. */
zl_status zl_hostfile_parse(const char *text, const char *path, zl_launch_pool *out);

/* All of f, NUL-terminated, in malloc'ed memory (its length, without the NUL, in *len;
 * *read_error set when the read failed part-way); NULL when out of memory. The reader of
 * the hostfile and of .deepspeed_env. */
char *zl__launch_slurp(FILE *f, size_t *len, bool *read_error);

/* The line syntax the hostfile and .deepspeed_env share: the next line of text at
 * *cursor that is neither blank nor a # comment, trimmed, as [*b, *e), its number (from
 * 1) in *lineno (start it at 0); false at the end of the text. */
bool zl__launch_next_line(const char **cursor, const char **b, const char **e, int *lineno);

/* Read and parse `path`. A file that does not exist is not an error (DeepSpeed then warns
 * and runs on local resources): *found = false and an empty pool. */
zl_status zl_hostfile_read(const char *path, zl_launch_pool *out, bool *found);

/* One host, "localhost", with slots 0..slots-1 (no hostfile). */
zl_status zl_launch_pool_local(int slots, zl_launch_pool *out);

/* Apply the filters in DeepSpeed's order. include/exclude: NULL or "" for none;
 * num_nodes/num_gpus: -1 for none (0 counts as given for the exclusion rule, as in
 * DeepSpeed, and then changes nothing). from_hostfile: false when the pool is the local
 * one (then --num_nodes > 1 is an error). The pool is rewritten in place. */
zl_status zl_launch_pool_filter(zl_launch_pool *pool, const char *include, const char *exclude,
                                int num_nodes, int num_gpus, bool from_hostfile);

/* Ranks in all: the sum of the hosts' slots. */
int zl_launch_pool_ranks(const zl_launch_pool *pool);

void zl_launch_pool_free(zl_launch_pool *pool);

#endif
