/* `zerolab launch`'s command: from the job's hosts (hostfile.h) and the launcher's options
 * to the argv of MPICH's mpiexec (hydra). Pure functions (nothing runs here), so the
 * exact vector is unit-tested; src/cli/cmd_launch.c runs it.
 *
 * The command, for hosts H1 (K1 slots) ... Hn (Kn slots):
 *   mpiexec [--launcher_args words] -hosts H1:K1,...,Hn:Kn
 *           -genv ZL_LAUNCH_NODES H1:K1,...,Hn:Kn -genv MASTER_ADDR A -genv MASTER_PORT P
 *           [-genv NAME VALUE ...]                        (exports, .deepspeed_env)
 *           -n K1 -env ZL_LAUNCH_NODE 0 -env OMP_NUM_THREADS T1 PROGRAM ARGS
 *         : -n K2 -env ZL_LAUNCH_NODE 1 -env OMP_NUM_THREADS T2 PROGRAM ARGS ...
 * hydra fills the -hosts list in order, Ki ranks on host Hi, and hands the MPMD sections
 * their ranks in order, so section i runs on host i: ranks 0..K1-1 on H1, and so on.
 * (hydra refuses -host/-hosts inside a section: "duplicate host file or host list
 * setting", so the hosts are one global list.) Ti = cores of a node / Ki, at least 1: the
 * ranks of a node never oversubscribe its cores. A node's cores are this machine's (its
 * affinity mask): remote hosts are assumed to be alike.
 *
 * With --bind_cores_to_rank each rank gets a section of its own (-n 1) that adds
 * -env ZL_BIND_CORES LIST: local rank j of a node with K ranks gets the j-th of K equal
 * contiguous slices of the core list (--bind_core_list, else this machine's cores), and
 * OMP_NUM_THREADS = the slice's size, as DeepSpeed's launcher does with numactl -C. The
 * zerolab process pins itself to ZL_BIND_CORES as it starts (zl_launch_bind_from_env). */
#ifndef ZL_LAUNCH_LAUNCH_H
#define ZL_LAUNCH_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "launch/hostfile.h"

typedef struct zl_launch_spec {
    const char *mpiexec;               /* the launcher's program, e.g. "mpiexec" */
    char *const *launcher_args;        /* --launcher_args split on spaces, after mpiexec */
    int n_launcher_args;
    const char *master_addr;           /* exported as MASTER_ADDR (DeepSpeed's) */
    int master_port;                   /* exported as MASTER_PORT */
    char *const *genv;                 /* NAME=VALUE for every rank, in this order */
    int ngenv;
    int node_cores;                    /* cores of a node (>= 1) */
    bool bind;                         /* --bind_cores_to_rank */
    const int *core_list;              /* the cores to slice when binding */
    int ncore_list;
    char *const *command;              /* the program each rank runs, then its arguments */
    int ncommand;
} zl_launch_spec;

/* The mpiexec argv, NULL-terminated, in *argv (free with zl_launch_argv_free). Errors:
 * binding with fewer cores than a node's ranks ("At least one core needs to be assigned
 * to each rank"). */
zl_status zl_launch_argv(const zl_launch_pool *pool, const zl_launch_spec *spec, char ***argv);
void zl_launch_argv_free(char **argv);

/* "H1:K1,H2:K2" (ZL_LAUNCH_NODES) into buf; false if it does not fit. */
bool zl_launch_nodes_format(const zl_launch_pool *pool, char *buf, size_t size);

/* ZL_LAUNCH_NODES back: the slots of each node in *counts (up to max), their number in
 * *nnodes. ZL_ERR_INVALID for a malformed value. */
zl_status zl_launch_nodes_parse(const char *value, int *counts, int max, int *nnodes);

/* DeepSpeed's core list syntax, "1,3-5,7" -> 1 3 4 5 7 (malloc'ed into *cores). `what`
 * names the flag or variable in messages. */
zl_status zl_launch_cores_parse(const char *s, const char *what, int **cores, int *n);
/* The inverse, compact ("0-3,6"), into buf. */
void zl_launch_cores_format(const int *cores, int n, char *buf, size_t size);

/* The lines of a .deepspeed_env file: NAME=VALUE (spaces around both are stripped, as in
 * DeepSpeed), # comments and blank lines skipped; appended as "NAME=VALUE" strings to
 * *pairs (a later NAME replaces an earlier one). `path` names the file in messages. */
zl_status zl_launch_env_parse(const char *text, const char *path, char ***pairs, int *npairs);

/* One shell-quoted line of argv (malloc'ed; NULL if out of memory). */
char *zl_launch_quote(char *const *argv);

/* This process's cores (its affinity mask, ascending) into *cores (malloc'ed). */
zl_status zl_launch_local_cores(int **cores, int *n);

/* If ZL_BIND_CORES is set (by `zerolab launch --bind_cores_to_rank`), pin this process to
 * those cores; ZL_OK and nothing done when unset. */
zl_status zl_launch_bind_from_env(void);

#endif
