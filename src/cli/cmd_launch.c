/* zerolab launch: DeepSpeed's `deepspeed` launcher on MPICH (docs/launch.md).
 *
 *   zerolab launch [launcher options] [--] COMMAND [args...]
 *
 * The launcher's options come first, as DeepSpeed's come before its user script; the first
 * word that is not one of them (or the word after `--`) is the command: a zerolab
 * subcommand (train, plan...: every rank runs this zerolab binary), or a program if it
 * contains a '/'. The hosts (hostfile.h) and the options become one mpiexec command
 * (launch.h), printed as one shell-quoted line on stderr ("zerolab launch: running: ...")
 * and then run in place of this process (exec), so the exit status is mpiexec's. With
 * --dry-run the line goes to stdout, without the prefix, and nothing runs.
 * Exit codes: 2 for bad options and hostfile errors, 1 if mpiexec cannot be run. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "launch/hostfile.h"
#include "launch/launch.h"

#define CMD "zerolab launch"

static void usage(FILE *out)
{
    zl_cli_help(out,
        "usage: zerolab launch [options] [--] COMMAND [args...]\n"
        "\n"
        "Runs COMMAND on every slot of the hosts: DeepSpeed's launcher, on MPICH's\n"
        "mpiexec. COMMAND is a zerolab subcommand (train, plan...), or a program if it\n"
        "contains a '/'. Each rank impersonates one GPU; ranks on one host share its\n"
        "NVLink in the simulator, ranks on two hosts cross the inter-node link.\n"
        "\n"
        "options (DeepSpeed's names and defaults):\n"
        "  -H, --hostfile FILE    `host slots=N` a line (default %s;\n"
        "                         missing: a warning, and this machine only)\n"
        "  -i, --include SPEC     only these hosts/slots: NAME[:SLOT[,SLOT...]][@NAME...]\n"
        "  -e, --exclude SPEC     all but these (not with --include)\n"
        "  --num_nodes N          the first N hosts of the hostfile\n"
        "  --num_gpus N           N slots on every host (alias --num_accelerators);\n"
        "                         no hostfile: N ranks here (default: its cores)\n"
        "  --master_addr ADDR     exported as MASTER_ADDR (default: the first host)\n"
        "  --master_port PORT     exported as MASTER_PORT (default 29500)\n"
        "  --launcher NAME        mpich (the only one here, and the default)\n"
        "  --launcher_args \"...\"  words for mpiexec, right after its name\n"
        "  --bind_cores_to_rank   pin each rank to its own slice of the node's cores\n"
        "  --bind_core_list LIST  the cores to slice, e.g. 1,3-5,7 (default: all)\n"
        "  --dry-run              print the mpiexec command on stdout and run nothing\n"
        "\n"
        "Each rank runs OMP_NUM_THREADS = the node's cores / its ranks (never more\n"
        "threads than cores). .deepspeed_env (in $HOME and ., name from DS_ENV_FILE)\n"
        "and the NCCL_*, UCX_* and MV2_* variables are exported to every rank.\n"
        "ZL_MPIEXEC names the mpiexec to run (default: mpiexec on PATH).\n",
        ZL_HOSTFILE_DEFAULT);
}

typedef struct launch_args {
    const char *hostfile, *include, *exclude, *master_addr, *launcher, *launcher_args;
    const char *bind_core_list;
    int num_nodes, num_gpus, master_port;
    bool bind, dry_run;
    int first; /* argv index of COMMAND */
} launch_args;

/* An integer option (DeepSpeed: argparse type=int, so negatives parse). */
static bool int_arg(const char *flag, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < -1 || v > 1 << 24) {
        fprintf(stderr, CMD ": %s expects an integer, got '%s'\n", flag, s);
        return false;
    }
    *out = (int)v;
    return true;
}

/* Parse the launcher's options; ZL_EXIT_OK to go on, else the exit code (help: -1). */
static int parse(int argc, char **argv, launch_args *a)
{
    *a = (launch_args){.hostfile = ZL_HOSTFILE_DEFAULT, .num_nodes = -1, .num_gpus = -1,
                       .master_port = 29500, .launcher = "mpich"};
    int i = 1;
    for (; i < argc; i++) {
        char *arg = argv[i];
        if (!strcmp(arg, "--")) {
            i++;
            break;
        }
        if (arg[0] != '-') break; /* the command */
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) return -1;
        /* --flag=value or --flag value */
        char name[64];
        const char *val = NULL, *eq = strchr(arg, '=');
        if (arg[1] == '-' && eq && (size_t)(eq - arg) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        static const char *const bools[] = {"--bind_cores_to_rank", "--dry-run", "--dry_run",
                                            "--no_python", "--no_local_rank", "--no_ssh_check"};
        bool is_bool = false;
        for (size_t b = 0; b < sizeof bools / sizeof *bools; b++) is_bool |= !strcmp(name, bools[b]);
        if (is_bool) {
            if (val) {
                fprintf(stderr, CMD ": %s takes no value\n", name);
                return ZL_EXIT_USAGE;
            }
            if (!strcmp(name, "--bind_cores_to_rank")) a->bind = true;
            if (!strncmp(name, "--dry", 5)) a->dry_run = true;
            continue; /* --no_python, --no_local_rank, --no_ssh_check: nothing to do here */
        }
        static const char *const valued[] = {
            "-H", "--hostfile", "-i", "--include", "-e", "--exclude", "--num_nodes",
            "--num_gpus", "--num_accelerators", "--master_addr", "--master_port", "--launcher",
            "--launcher_args", "--bind_core_list"};
        bool known = false;
        for (size_t v = 0; v < sizeof valued / sizeof *valued; v++) known |= !strcmp(name, valued[v]);
        if (!known) {
            fprintf(stderr, CMD ": unknown option '%s'\n  hint: the launcher's options come "
                    "before the command; put `--` before a command that starts with '-'; "
                    "'zerolab launch --help' lists them\n", arg);
            return ZL_EXIT_USAGE;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, CMD ": %s needs a value\n", name);
                return ZL_EXIT_USAGE;
            }
            val = argv[++i];
        }
        if (!strcmp(name, "-H") || !strcmp(name, "--hostfile")) a->hostfile = val;
        else if (!strcmp(name, "-i") || !strcmp(name, "--include")) a->include = val;
        else if (!strcmp(name, "-e") || !strcmp(name, "--exclude")) a->exclude = val;
        else if (!strcmp(name, "--master_addr")) a->master_addr = val;
        else if (!strcmp(name, "--launcher")) a->launcher = val;
        else if (!strcmp(name, "--launcher_args")) a->launcher_args = val;
        else if (!strcmp(name, "--bind_core_list")) a->bind_core_list = val;
        else if (!strcmp(name, "--num_nodes")) {
            if (!int_arg(name, val, &a->num_nodes)) return ZL_EXIT_USAGE;
        } else if (!strcmp(name, "--master_port")) {
            if (!int_arg(name, val, &a->master_port) || a->master_port < 1 ||
                a->master_port > 65535) {
                fprintf(stderr, CMD ": --master_port expects a port, 1 to 65535, got '%s'\n", val);
                return ZL_EXIT_USAGE;
            }
        } else if (!int_arg(name, val, &a->num_gpus)) {
            return ZL_EXIT_USAGE;
        }
    }
    a->first = i;
    if (i >= argc) {
        fprintf(stderr, CMD ": no command to launch\n  hint: zerolab launch [options] [--] "
                "COMMAND [args...], e.g. zerolab launch --num_gpus 2 train --steps 10\n");
        return ZL_EXIT_USAGE;
    }
    if (strcasecmp(a->launcher, "mpich")) {
        static const char *const others[] = {"pdsh", "openmpi", "mvapich", "slurm", "impi"};
        bool theirs = false;
        for (size_t k = 0; k < sizeof others / sizeof *others; k++)
            theirs |= !strcasecmp(a->launcher, others[k]);
        if (theirs)
            fprintf(stderr, CMD ": --launcher %s: zerolab launches with MPICH's mpiexec only\n  "
                    "hint: --launcher mpich (the default), or run the %s command yourself\n",
                    a->launcher, a->launcher);
        else
            fprintf(stderr, CMD ": --launcher: Unknown launcher %s\n  hint: --launcher mpich "
                    "(the default, and the only one here)\n", a->launcher);
        return ZL_EXIT_USAGE;
    }
    return ZL_EXIT_OK;
}

/* Split --launcher_args on spaces (DeepSpeed uses shlex; a path with spaces cannot go
 * through here). */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    for (char *tok = strtok(s, " \t"); tok && n < max; tok = strtok(NULL, " \t")) words[n++] = tok;
    return n;
}

/* .deepspeed_env from $HOME then . (a later value wins); DS_ENV_FILE names the file. */
static zl_status read_env_files(char ***pairs, int *n)
{
    const char *name = getenv("DS_ENV_FILE");
    if (!name || !*name) name = ".deepspeed_env";
    const char *home = getenv("HOME");
    const char *dirs[2] = {home && *home ? home : NULL, "."};
    for (int d = 0; d < 2; d++) {
        if (!dirs[d]) continue;
        char path[4096];
        if (name[0] == '/') snprintf(path, sizeof path, "%s", name);
        else snprintf(path, sizeof path, "%s/%s", dirs[d], name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = 0;
        bool read_error = false;
        char *text = zl__launch_slurp(f, &len, &read_error);
        fclose(f);
        if (!text) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading '%s'", path);
        zl_status st = zl_launch_env_parse(text, path, pairs, n);
        free(text);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

/* The environment's NCCL_*, UCX_*, MV2_* (DeepSpeed's exported prefixes that a C program
 * reads; PYTHON* and MLFLOW* have no reader here), before the env files' lines. */
static zl_status exported_env(char ***pairs, int *n)
{
    extern char **environ;
    static const char *const prefixes[] = {"NCCL_", "UCX_", "MV2_"};
    for (char **e = environ; *e; e++) {
        bool take = false;
        for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++)
            take |= !strncmp(*e, prefixes[p], strlen(prefixes[p]));
        if (!take || !strchr(*e, '=')) continue;
        char **t = realloc(*pairs, (size_t)(*n + 1) * sizeof *t);
        if (!t || !(t[*n] = strdup(*e))) {
            if (t) *pairs = t;
            return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        }
        *pairs = t;
        (*n)++;
    }
    return ZL_OK;
}

/* `zerolab launch --rank_exec PROGRAM ARGS`: the rank-side half of binding for a program
 * that is not zerolab: main.c has pinned this process to ZL_BIND_CORES already, and the
 * program inherits the mask. */
static int rank_exec(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, CMD ": --rank_exec needs a program\n");
        return ZL_EXIT_USAGE;
    }
    execvp(argv[2], argv + 2);
    fprintf(stderr, CMD ": cannot run '%s': %s\n", argv[2], strerror(errno));
    return ZL_EXIT_FAIL;
}

int zl_cmd_launch(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--rank_exec")) return rank_exec(argc, argv);
    launch_args a;
    int rc = parse(argc, argv, &a);
    if (rc == -1) {
        usage(stdout);
        return ZL_EXIT_OK;
    }
    if (rc != ZL_EXIT_OK) return rc;

    zl_launch_pool pool = {0};
    int *cores = NULL, ncores = 0, *bind_list = NULL, nbind = 0, npairs = 0;
    char **pairs = NULL, **mpi_argv = NULL, *largs_copy = NULL, *line = NULL;
    char **command = NULL;
    bool found;
    rc = ZL_EXIT_USAGE;
    zl_status st = zl_launch_local_cores(&cores, &ncores);
    if (st != ZL_OK) {
        rc = zl_cli_fail();
        goto out;
    }
    if ((st = zl_hostfile_read(a.hostfile, &pool, &found)) != ZL_OK) goto fail;
    if (!found) {
        fprintf(stderr, CMD ": warning: Unable to find hostfile, will proceed with training with "
                "local resources only. (no %s)\n", a.hostfile);
        /* Each rank impersonates a GPU: without a hostfile, one per core this process may
         * use, or --num_gpus. */
        if ((st = zl_launch_pool_local(a.num_gpus > 0 ? a.num_gpus : ncores, &pool)) != ZL_OK)
            goto fail;
    }
    if ((st = zl_launch_pool_filter(&pool, a.include, a.exclude, a.num_nodes, a.num_gpus, found)) !=
        ZL_OK)
        goto fail;
    if (a.bind_core_list &&
        (st = zl_launch_cores_parse(a.bind_core_list, "--bind_core_list", &bind_list, &nbind)) !=
            ZL_OK)
        goto fail;
    if ((st = exported_env(&pairs, &npairs)) != ZL_OK) goto fail;
    if ((st = read_env_files(&pairs, &npairs)) != ZL_OK) goto fail;

    /* The program each rank runs: this zerolab for a subcommand. */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, CMD ": cannot find this zerolab's path (/proc/self/exe): %s\n",
                strerror(errno));
        rc = ZL_EXIT_FAIL;
        goto out;
    }
    self[len] = '\0';
    int nuser = argc - a.first;
    bool external = strchr(argv[a.first], '/') != NULL;
    /* A program that is not zerolab, bound: zerolab pins itself, then execs it. */
    bool via_self = external && a.bind;
    command = calloc((size_t)nuser + 3, sizeof *command);
    if (!command) {
        st = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        rc = zl_cli_fail();
        goto out;
    }
    int nc = 0;
    if (!external || via_self) command[nc++] = self;
    if (via_self) command[nc++] = "launch", command[nc++] = "--rank_exec";
    for (int k = a.first; k < argc; k++) command[nc++] = argv[k];

    char *largs[64];
    int nlargs = 0;
    if (a.launcher_args) {
        largs_copy = strdup(a.launcher_args);
        if (largs_copy) nlargs = split_words(largs_copy, largs, 64);
    }
    zl_launch_spec spec = {
        .mpiexec = getenv("ZL_MPIEXEC") && *getenv("ZL_MPIEXEC") ? getenv("ZL_MPIEXEC") : "mpiexec",
        .launcher_args = largs, .n_launcher_args = nlargs,
        .master_addr = a.master_addr ? a.master_addr : found ? pool.hosts[0].name : "127.0.0.1",
        .master_port = a.master_port, .genv = pairs, .ngenv = npairs, .node_cores = ncores,
        .bind = a.bind, .core_list = bind_list ? bind_list : cores,
        .ncore_list = bind_list ? nbind : ncores, .command = command, .ncommand = nc};
    if ((st = zl_launch_argv(&pool, &spec, &mpi_argv)) != ZL_OK) goto fail;
    if (!(line = zl_launch_quote(mpi_argv))) {
        st = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        rc = zl_cli_fail();
        goto out;
    }
    if (a.dry_run) {
        printf("%s\n", line);
        rc = ZL_EXIT_OK;
        goto out;
    }
    fprintf(stderr, CMD ": running: %s\n", line);
    fflush(stdout);
    fflush(stderr);
    execvp(mpi_argv[0], mpi_argv);
    if (errno == ENOENT)
        fprintf(stderr, CMD ": error: '%s' not found: MPICH's mpiexec is needed to launch\n  hint: "
                "install MPICH (apt install mpich), put its mpiexec on PATH, or name it with "
                "ZL_MPIEXEC=/path/to/mpiexec\n", mpi_argv[0]);
    else
        fprintf(stderr, CMD ": error: cannot run '%s': %s\n", mpi_argv[0], strerror(errno));
    rc = ZL_EXIT_FAIL;
    goto out;
fail:
    fprintf(stderr, CMD ": error: %s\n", zl_last_error());
    rc = ZL_EXIT_USAGE;
out:
    free(line);
    zl_launch_argv_free(mpi_argv);
    free(command);
    free(largs_copy);
    for (int k = 0; k < npairs; k++) free(pairs[k]);
    free(pairs);
    free(bind_list);
    free(cores);
    zl_launch_pool_free(&pool);
    return rc;
}
