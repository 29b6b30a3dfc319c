/* zerolab train: read a DeepSpeed config, build the model, and train.
 *
 * Settings come from, strongest first: command-line flags, the config's "zerolab" block,
 * the built-in defaults. Without --config the built-in config (default_config.c) is used,
 * so `zerolab train` alone trains the lab model on the built-in corpus. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/train_preflight.h"
#include "comm/comm.h"
#include "comm/comm_log.h"
#include "core/device.h"
#include "core/log.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "config/config.h"
#include "engine/engine.h"
#include "model/gpt_config.h"
#include "sim/cost.h"
#include "sim/presets.h"

typedef struct train_args {
    const char *config_path, *model, *data, *backend, *device, *cluster, *trace;
    long steps, seed, seq_len, threads;
    size_t device_memory; /* 0: unlimited */
    bool print_memory;
    zl_config_fill fill; /* --micro-batch, --grad-accum, --train-batch-size, --lr, ... */
    double collective_timeout; /* seconds, 0: off; < 0: not given (ZL_COLLECTIVE_TIMEOUT or 10 min) */
} train_args;

static void train_usage(FILE *out)
{
    zl_cli_help(out,
            "usage: zerolab train [options]\n"
            "\n"
            "  --config FILE     DeepSpeed JSON config (default: the built-in lab config)\n"
            "  --model NAME|FILE model preset (%s) or model JSON (default: lab)\n"
            "  --data FILE       text file (read as bytes) or llm.c .bin token shard\n"
            "                    (default: the built-in corpus)\n"
            "  --steps N         optimizer steps (default: zerolab.steps in the config: 300\n"
            "                    in the built-in one; 100 if the config has none)\n"
            "  --seed N          parameter initialisation seed (default: 1337)\n"
            "  --seq-len T       tokens per sequence (default: min(max_seq_len, 128))\n"
            "  --backend NAME    ref (naive loops) or cpu (OpenBLAS + OpenMP; default)\n"
            "  --threads N       OpenMP threads, at most 4 per core (default: OMP_NUM_THREADS,\n"
            "                    or the cores not busy with other work, shared among the\n"
            "                    node's ranks)\n"
            "  --device-memory N the memory budget of each rank's device, in bytes or with a\n"
            "                    unit (16GiB, 512MiB, 2.5e9); an allocation past it fails\n"
            "  --memory-report   print each rank's device memory ledger at the end\n"
            "  --device NAME     each rank impersonates this GPU: its memory is the budget,\n"
            "                    and a cost model gives every step a simulated time (also\n"
            "                    \"zerolab\": {\"device\": NAME} in the config); NAME is one\n"
            "                    of %s\n"
            "  --cluster SPEC    as --device, on a cluster of that many GPUs: GPUSxDEVICE or\n"
            "                    NODESxGPUSxDEVICE[,links] (see zerolab plan --help); its\n"
            "                    size must be the number of ranks (also \"zerolab\":\n"
            "                    {\"cluster\": SPEC} in the config)\n"
            "  --trace FILE      with --device or --cluster: Chrome trace (Perfetto) of the\n"
            "                    last step, one track per rank and stream\n"
            "  --collective-timeout SECONDS\n"
            "                    how long a rank may wait in one collective before it reports\n"
            "                    a stalled rank and ends the job; 0: no limit (default 600,\n"
            "                    or ZL_COLLECTIVE_TIMEOUT; see docs/faults.md)\n"
            "%s"
            "\n"
            "Before it allocates, train runs the same engine on the meta backend (as zerolab\n"
            "plan does) and refuses a run that would pass its device's budget or the host's\n"
            "available memory (all ranks on a node together). ZL_HOST_MEMORY_AVAILABLE=BYTES\n"
            "replaces the host's figure (for tests, or where the kernel's is wrong).\n",
            zl_gpt_config_preset_names(), zl_device_preset_names(), zl_cli_fill_usage);
}

/* --collective-timeout: seconds >= 0 (fractions allowed), at most a week. */
static bool parse_timeout(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0) || v > 604800) {
        fprintf(stderr, "zerolab train: --collective-timeout expects seconds from 0 (no timeout) "
                        "to 604800 (a week), e.g. 300; got '%s'\n", s);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_positive(const char *flag, const char *s, long max, long *out)
{
    return zl_cli_parse_positive("train", flag, s, max, out);
}

/* OpenMP threads per core we allow: oversubscribing a little is a fair experiment, but
 * libgomp crashes (SIGSEGV in GOMP_parallel) asked for 100000 threads, and past a few per
 * core threads only add contention. 4 per core keeps the cap proportional to the machine
 * (a 256-core node still gets 1024). */
#define THREADS_PER_CORE 4

/* `what` ("--threads 100000", "OMP_NUM_THREADS=100000") asks for n threads: false, with
 * a message naming what the machine has, past THREADS_PER_CORE per core. */
static bool threads_in_range(const char *what, long n)
{
    int cores = omp_get_num_procs();
    if (n <= (long)THREADS_PER_CORE * cores) return true;
    fprintf(stderr, "zerolab train: %s is out of range: at most %d (%d per core); this machine "
                    "has %d core%s\n  hint: ask for %d or fewer (without --threads or OMP_NUM_THREADS, "
                    "zerolab picks)\n",
            what, THREADS_PER_CORE * cores, THREADS_PER_CORE, cores, cores == 1 ? "" : "s",
            cores);
    return false;
}

/* "16GiB", "512MiB", "64KiB", "1.5GB", "2.5e9", "1000": binary units for KiB/MiB/GiB/TiB,
 * decimal for KB/MB/GB/TB, bytes without a unit. */
static bool parse_bytes(const char *s, size_t *out)
{
    static const struct { const char *unit; double scale; } units[] = {
        {"", 1},         {"B", 1},        {"KiB", 0x1p10}, {"MiB", 0x1p20}, {"GiB", 0x1p30},
        {"TiB", 0x1p40}, {"KB", 1e3},     {"MB", 1e6},     {"GB", 1e9},     {"TB", 1e12},
    };
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].unit)) {
            double bytes = v * units[i].scale;
            if (bytes > 0x1p62) return false;
            *out = (size_t)bytes;
            return *out > 0;
        }
    return false;
}

static int parse_args(int argc, char **argv, train_args *a)
{
    enum { O_CONFIG = 1, O_MODEL, O_DATA, O_STEPS, O_SEED, O_SEQ, O_BACKEND, O_THREADS, O_MEMORY,
           O_BUDGET, O_DEVICE, O_CLUSTER, O_TRACE, O_TIMEOUT, O_HELP, O_FILL };
    static const struct option opts[] = {
        {"config", required_argument, 0, O_CONFIG},   {"model", required_argument, 0, O_MODEL},
        {"data", required_argument, 0, O_DATA},       {"steps", required_argument, 0, O_STEPS},
        {"seed", required_argument, 0, O_SEED},       {"seq-len", required_argument, 0, O_SEQ},
        {"backend", required_argument, 0, O_BACKEND}, {"threads", required_argument, 0, O_THREADS},
        {"memory-report", no_argument, 0, O_MEMORY},  {"device-memory", required_argument, 0, O_BUDGET},
        {"device", required_argument, 0, O_DEVICE},   {"trace", required_argument, 0, O_TRACE},
        {"cluster", required_argument, 0, O_CLUSTER}, {"help", no_argument, 0, O_HELP},
        {"micro-batch", required_argument, 0, O_FILL}, {"grad-accum", required_argument, 0, O_FILL},
        {"train-batch-size", required_argument, 0, O_FILL}, {"lr", required_argument, 0, O_FILL},
        {"total-steps", required_argument, 0, O_FILL}, {"warmup-steps", required_argument, 0, O_FILL},
        {"collective-timeout", required_argument, 0, O_TIMEOUT},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->seed = -1;
    a->collective_timeout = -1;
    opterr = 0;
    optind = 1;
    int c, which = 0;
    while ((c = getopt_long(argc, argv, "", opts, &which)) != -1) {
        switch (c) {
        case O_FILL: {
            char flag[32];
            snprintf(flag, sizeof flag, "--%s", opts[which].name);
            if (zl_cli_fill_flag("train", flag, optarg, &a->fill) < 0) return ZL_EXIT_USAGE;
            break;
        }
        case O_CONFIG: a->config_path = optarg; break;
        case O_MODEL: a->model = optarg; break;
        case O_DATA: a->data = optarg; break;
        case O_BACKEND: a->backend = optarg; break;
        case O_MEMORY: a->print_memory = true; break;
        case O_DEVICE: a->device = optarg; break;
        case O_CLUSTER: a->cluster = optarg; break;
        case O_TRACE: a->trace = optarg; break;
        case O_TIMEOUT: if (!parse_timeout(optarg, &a->collective_timeout)) return ZL_EXIT_USAGE; break;
        case O_BUDGET:
            if (!parse_bytes(optarg, &a->device_memory)) {
                fprintf(stderr, "zerolab train: --device-memory expects a size such as 16GiB, "
                                "512MiB or 2.5e9, got '%s'\n", optarg);
                return ZL_EXIT_USAGE;
            }
            break;
        case O_STEPS: if (!parse_positive("--steps", optarg, INT_MAX, &a->steps)) return ZL_EXIT_USAGE; break;
        case O_SEQ: if (!parse_positive("--seq-len", optarg, INT_MAX, &a->seq_len)) return ZL_EXIT_USAGE; break;
        case O_THREADS: {
            char what[64];
            if (!parse_positive("--threads", optarg, INT_MAX, &a->threads)) return ZL_EXIT_USAGE;
            snprintf(what, sizeof what, "--threads %ld", a->threads);
            if (!threads_in_range(what, a->threads)) return ZL_EXIT_USAGE;
            break;
        }
        case O_SEED: {
            char *end;
            a->seed = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || a->seed < 0) {
                fprintf(stderr, "zerolab train: --seed expects a non-negative integer, got '%s'\n", optarg);
                return ZL_EXIT_USAGE;
            }
            break;
        }
        case O_HELP: train_usage(stdout); return -1;
        default:
            fprintf(stderr, "zerolab train: unknown or incomplete option '%s'\n\n", argv[optind - 1]);
            train_usage(stderr);
            return ZL_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zerolab train: unexpected argument '%s'\n\n", argv[optind]);
        train_usage(stderr);
        return ZL_EXIT_USAGE;
    }
    if (a->device && a->cluster) {
        fprintf(stderr, "zerolab train: give --device or --cluster, not both (a cluster names "
                        "its device, e.g. --cluster 2x%s)\n", a->device);
        return ZL_EXIT_USAGE;
    }
    /* Without --threads, libgomp takes OMP_NUM_THREADS (already parsed): the same bound. */
    if (!a->threads && getenv("OMP_NUM_THREADS")) {
        char what[64];
        snprintf(what, sizeof what, "OMP_NUM_THREADS=%d", omp_get_max_threads());
        if (!threads_in_range(what, omp_get_max_threads())) return ZL_EXIT_USAGE;
    }
    if (a->device && !zl_device_preset_find(a->device)) {
        fprintf(stderr, "zerolab train: unknown --device '%s'\n  known devices: %s\n", a->device,
                zl_device_preset_names());
        return ZL_EXIT_USAGE;
    }
    return ZL_EXIT_OK;
}

/* The simulated step on rank 0's card: time, its compute and exposed communication, MFU
 * (this rank's model FLOPs over the card's dense peak at the training precision). */
static void print_sim_step(const zl_timeline *mark, const zl_timeline *tl,
                           const zl_device_preset *card, double flops, zl_dtype dtype)
{
    double t = zl_timeline_now(tl) - zl_timeline_now(mark);
    double exposed = tl->exposed_comm - mark->exposed_comm;
    double comm = tl->busy[ZL_STREAM_COMM] - mark->busy[ZL_STREAM_COMM];
    double mfu = t > 0 ? flops / (t * zl_device_peak_flops(card, dtype)) : 0;
    zl_print0("      simulated %s: %.2f ms/step = compute %.2f + exposed comm %.2f ms "
              "(comm %.2f ms) | MFU %.1f%%\n",
              card->display, 1e3 * t, 1e3 * (t - exposed), 1e3 * exposed, 1e3 * comm, 100 * mfu);
}

/* Each rank appends its spans to the trace in turn: rank 0 creates the file and opens the
 * JSON, the last rank closes it (all ranks see one file system). */
static zl_status write_trace(zl_comm *world, const zl_timeline *tl, const char *path)
{
    zl_status st = ZL_OK;
    for (int r = 0; r < world->size; r++) {
        if (r == world->rank) {
            FILE *f = fopen(path, r == 0 ? "w" : "a");
            if (!f) st = zl_errorf(ZL_ERR_IO, "cannot write the trace to '%s'", path);
            else {
                st = zl_timeline_write_trace(tl, f, r, r == 0, r == world->size - 1);
                if (fclose(f) != 0 && st == ZL_OK) st = zl_errorf(ZL_ERR_IO, "cannot write '%s'", path);
            }
        }
        zl_comm_barrier(world);
    }
    return zl_comm_agree(world, st);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Features the engine does not run yet are refused (zl_engine_check_config); these observe
 * training without changing it, so they only get a warning that their output is missing. */
static zl_status check_engine_supports(const zl_config *cfg)
{
    zl_status st = zl_engine_check_config(cfg);
    if (st != ZL_OK) return st;
    /* These observe training without changing it; say that their output will be missing. */
    static const struct { size_t off; const char *name; } observers[] = {
        {offsetof(zl_config, flops_profiler.enabled), "flops_profiler"},
        {offsetof(zl_config, tensorboard.enabled), "tensorboard"},
        {offsetof(zl_config, csv_monitor.enabled), "csv_monitor"},
        {offsetof(zl_config, wandb.enabled), "wandb"},
        {offsetof(zl_config, comet.enabled), "comet"},
        {offsetof(zl_config, wall_clock_breakdown), "wall_clock_breakdown"},
    };
    for (size_t i = 0; i < sizeof observers / sizeof observers[0]; i++)
        if (*(const bool *)((const char *)cfg + observers[i].off))
            zl_log_warn("%s: '%s' is enabled but not implemented yet: training is unchanged, "
                        "its output will be missing", cfg->name, observers[i].name);
    return ZL_OK;
}

/* The run, resolved: what the engine gets and what the banner prints. */
typedef struct run_plan {
    zl_gpt_config model;
    zl_engine_options engine;
    const char *backend;
    long steps;
    long steps_per_print;
} run_plan;

static zl_status plan_run(const train_args *a, const zl_config *cfg, run_plan *p)
{
    static const char *backend_names[] = {"ref", "cpu", "cuda"};
    memset(p, 0, sizeof *p);
    const char *model = a->model ? a->model : cfg->zerolab.model ? cfg->zerolab.model : "lab";
    zl_status st = zl_gpt_config_resolve(model, &p->model);
    if (st != ZL_OK) return st;

    p->backend = a->backend ? a->backend
                 : cfg->zerolab.backend >= 0 ? backend_names[cfg->zerolab.backend] : "cpu";
    p->steps = a->steps ? a->steps : cfg->zerolab.steps > 0 ? (long)cfg->zerolab.steps : 100;
    /* DeepSpeed's steps_per_print defaults to None (silent); a CLI run shows progress. */
    p->steps_per_print = zl_config_given(cfg, "steps_per_print") ? (long)cfg->steps_per_print : 10;

    zl_engine_options *o = &p->engine;
    int seq_len = (int)(a->seq_len ? a->seq_len
                                   : p->model.max_seq_len < 128 ? p->model.max_seq_len : 128);
    uint64_t seed =
        (uint64_t)(a->seed >= 0 ? a->seed : cfg->zerolab.seed >= 0 ? cfg->zerolab.seed : 1337);
    zl_engine_options_from_config(o, cfg, seq_len, seed, NULL); /* dp: set once the world exists */
    if (o->seq_len > p->model.max_seq_len)
        return zl_errorf(ZL_ERR_INVALID,
                         "--seq-len %d is longer than model '%s' allows (max_seq_len %d)",
                         o->seq_len, p->model.name, p->model.max_seq_len);
    return ZL_OK;
}

static zl_status load_config(const train_args *a, int dp_size, zl_config *cfg)
{
    /* The fill flags fill "auto" in a config file; the built-in config's values they set. */
    zl_config_fill fill = a->fill;
    fill.override_file = !a->config_path;
    zl_status st = a->config_path
                       ? zl_config_load_filled(cfg, a->config_path, dp_size, &fill)
                       : zl_config_parse_filled(cfg, zl_default_config_json, "<built-in config>",
                                                dp_size, &fill);
    if (st != ZL_OK) return st;
    if (zl_log_rank() == 0) zl_config_log_warnings(cfg);
    return check_engine_supports(cfg);
}

static zl_status load_data(const train_args *a, const zl_config *cfg, const zl_gpt_config *model,
                           zl_dataset *ds)
{
    const char *path = a->data ? a->data : cfg->zerolab.data;
    zl_status st = path ? zl_dataset_load(ds, path) : zl_dataset_default(ds);
    if (st != ZL_OK) return st;
    if (ds->vocab_size > model->vocab_size)
        return zl_errorf(ZL_ERR_INVALID,
                         "data %s has a vocabulary of %d tokens but model '%s' has vocab_size %d\n"
                         "  hint: pick a model whose vocabulary covers the data's tokenizer "
                         "(llm.c GPT-2 shards need vocab_size 50257, e.g. --model gpt2-124m)",
                         ds->desc, ds->vocab_size, model->name, model->vocab_size);
    return ZL_OK;
}

/* One line: every rank's peak device memory (they differ when ZeRO's padding does). */
static void print_peaks(zl_comm *world, const zl_device *dev)
{
    double *peaks = calloc((size_t)world->size, sizeof *peaks);
    if (!peaks) return;
    double mine = (double)dev->ledger.peak_nbytes;
    if (zl_comm_allgather(world, peaks, &mine, 1, ZL_F64) == ZL_OK) {
        zl_print0("peak device memory per rank:");
        for (int r = 0; r < world->size; r++) {
            char buf[32];
            zl_print0(" %s%s", zl_format_bytes(buf, sizeof buf, (size_t)peaks[r]),
                      r + 1 < world->size ? "," : "\n");
        }
    }
    free(peaks);
}

/* Each rank's ledger in turn, rank 0 first (a barrier between ranks keeps them apart). */
static void print_memory(zl_comm *world, const zl_device *dev)
{
    for (int r = 0; r < world->size; r++) {
        if (r == world->rank) {
            zl_ledger_print(&dev->ledger, stdout);
            fflush(stdout);
        }
        zl_comm_barrier(world);
    }
}

/* The cluster this run's W ranks impersonate, if any: --cluster, else --device (one node
 * of W), else the config's "cluster", else its "device". *card stays NULL without one. */
static zl_status simulated_cluster(const train_args *a, const zl_config *cfg, int W,
                                   zl_cluster *cluster, const zl_device_preset **card)
{
    const char *spec = a->cluster, *device = a->device;
    char from[160] = "--cluster";
    if (!spec && !device) {
        spec = cfg->zerolab.cluster;
        device = spec ? NULL : cfg->zerolab.device;
        snprintf(from, sizeof from, "%s: zerolab.cluster", cfg->name);
    }
    char one_node[96];
    if (!spec && device) {
        if (!zl_device_preset_find(device)) /* the flag was checked; this is the config's */
            return zl_errorf(ZL_ERR_CONFIG, "%s: zerolab.device: unknown device '%s'\n  known "
                             "devices: %s", cfg->name, device, zl_device_preset_names());
        snprintf(one_node, sizeof one_node, "%dx%s", W, device);
        spec = one_node;
    }
    if (!spec) return ZL_OK;
    zl_status st = zl_cluster_parse(spec, cluster);
    if (st != ZL_OK) return st;
    if (zl_cluster_size(cluster) != W)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s %s has %d GPUs, but this run has %d rank%s: every rank is one GPU\n"
                         "  hint: launch %d ranks (mpiexec -n %d zerolab train ...), or give a "
                         "cluster of %d GPU%s",
                         from, spec, zl_cluster_size(cluster), W, W == 1 ? "" : "s",
                         zl_cluster_size(cluster), zl_cluster_size(cluster), W, W == 1 ? "" : "s");
    *card = cluster->device;
    return ZL_OK;
}

/* ---- faults: signals, a broken world (docs/faults.md) ---------------------------- */

/* End the job with MPI_Abort after a pause of `seconds`: the launcher kills every rank at
 * once, and output a rank wrote just before (the reason) is lost unless the launcher has
 * had time to forward it. Returns only without MPI (one rank, no launcher). */
static void end_job(zl_comm *world, int code, double seconds)
{
    fflush(stdout);
    fflush(stderr);
    if (world->vt->abort) { /* there is a job to end */
        struct timespec pause = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
        while (nanosleep(&pause, &pause) != 0) {}
    }
    zl_comm_abort(world, code);
}

/* The signal that asked training to stop, or 0. A handler may only set a flag
 * (async-signal-safe); the training loop reads it between micro-steps, and the world's
 * waits read it through zl_comm_set_interrupt, so a signal also ends a wait for a rank
 * that will never come. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (stop_signal) { /* the second one: the default action, at once */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

/* SIGTERM and SIGINT, in every rank (mpiexec forwards both). Installed even where the
 * shell started us with SIGINT ignored (a background job): under a launcher that
 * forwards Ctrl-C, ignoring it would leave the job running. SA_RESTART: reads and writes
 * in progress are not cut short by the signal. */
static void catch_stop_signals(struct sigaction old[2])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    stop_signal = 0;
    sigaction(SIGTERM, &sa, &old[0]);
    sigaction(SIGINT, &sa, &old[1]);
}

static void release_stop_signals(const struct sigaction old[2])
{
    sigaction(SIGTERM, &old[0], NULL);
    sigaction(SIGINT, &old[1], NULL);
}

/* Training stopped by a signal, every rank at the same micro-step (they agreed on it).
 * The ranks agree on the signal too (a rank the launcher did not signal learns it), rank
 * 0 says where training stopped, and every rank exits 128 + signal, the shell's
 * convention (143 for SIGTERM, 130 for SIGINT). Under MPI, rank 0 then ends the job with
 * that code through MPI_Abort: MPICH 4.0's mpiexec, once it has forwarded a signal, loses
 * the ranks' exit statuses about half the time and exits 0 (seen with a plain MPI
 * program that catches SIGTERM and exits 143), while an abort's code always arrives. */
static int stopped_by_signal(zl_comm *world, long step, long steps)
{
    int32_t sig = stop_signal;
    bool healthy = zl_comm_health(world) == ZL_OK;
    if (healthy && zl_comm_allreduce(world, &sig, 1, ZL_I32, ZL_REDUCE_MAX) != ZL_OK) healthy = false;
    if (sig <= 0) return ZL_EXIT_FAIL;
    const char *name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
    if (world->rank == 0 || !healthy) {
        if (healthy || world->size == 1) fprintf(stderr, "zerolab: ");
        else fprintf(stderr, "[rank %d] zerolab: ", world->rank);
        fprintf(stderr, "interrupted by %s at step %ld of %ld; no checkpoint was written\n", name,
                step, steps);
    }
    if (world->rank == 0) end_job(world, 128 + sig, 1.0);
    return 128 + sig;
}

/* A failure at a site where one rank, or every rank, reports: on a broken world (a
 * timeout) not here, since every rank reports the world's failure at the end. */
static int failed(zl_comm *world, bool report)
{
    if (zl_comm_health(world) != ZL_OK) return ZL_EXIT_FAIL;
    return report ? zl_cli_fail() : ZL_EXIT_FAIL;
}

/* The world cannot communicate (a collective timed out, or a signal cut a wait short):
 * MPI_Finalize would wait for the stalled rank, so this rank reports and ends the whole
 * job with MPI_Abort, whose launcher kills every rank (a stopped one too) and exits with
 * rc. The other ranks waiting in the same collective started their clocks about when
 * this one did: a pause of 2 s lets them report too before the launcher kills them. */
static int end_broken_job(zl_comm *world, int rc)
{
    if (zl_comm_health(world) == ZL_OK) return rc;
    zl_cli_fail();
    end_job(world, rc != ZL_EXIT_OK ? rc : ZL_EXIT_FAIL, 2.0);
    return rc; /* no job to end (one rank without MPI) */
}

static int train(const train_args *a)
{
    zl_config cfg;
    zl_dataset ds;
    zl_loader loader;
    zl_device dev;
    zl_engine engine;
    zl_cluster cluster;
    zl_sim sim;
    memset(&sim, 0, sizeof sim);
    run_plan plan;
    zl_comm *world = NULL;
    zl_comm_log *log = NULL;
    int32_t *inputs = NULL, *targets = NULL;
    int rc = ZL_EXIT_FAIL;
    struct sigaction old_actions[2];
    catch_stop_signals(old_actions);
    memset(&cfg, 0, sizeof cfg);
    memset(&ds, 0, sizeof ds);
    memset(&engine, 0, sizeof engine);

    /* Threads: --threads, else OMP_NUM_THREADS, else what this machine can give each rank
     * now (core/threads.h: OpenMP's one-per-core default spins ranks and busy machines
     * against each other). */
    const char *auto_why = NULL;
    if (a->threads) omp_set_num_threads((int)a->threads);
    else if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(zl_threads_default(&auto_why));
    /* Every MPI rank is one (simulated) GPU; all of them are data-parallel for now. */
    zl_status st = zl_comm_log_create(&log);
    if (st == ZL_OK) st = zl_comm_world(&world, log);
    if (st != ZL_OK) {
        rc = zl_cli_fail();
        goto done;
    }
    int rank = world->rank, W = world->size;
    if (a->collective_timeout >= 0) zl_comm_set_timeout(world, a->collective_timeout);
    zl_comm_set_interrupt(world, &stop_signal);
    zl_comm_set_phase(world, "set-up");

    /* Set-up reads the same files on every rank and fails the same way everywhere, so only
     * rank 0 reports it; the agreement keeps a rank that did fail from being waited for. */
    st = load_config(a, W, &cfg);
    if (st == ZL_OK) st = plan_run(a, &cfg, &plan);
    if (st == ZL_OK) st = load_data(a, &cfg, &plan.model, &ds);
    const zl_engine_options *o = &plan.engine;
    if (st == ZL_OK) st = zl_loader_init(&loader, &ds, o->micro_batch_size, o->seq_len, rank, W);
    /* --device or --cluster: the rank is that GPU: its memory is the budget (unless
     * --device-memory), the CPU's f32 stand-ins are not held against it, and a simulated
     * clock runs on the cluster's links. */
    const zl_device_preset *card = NULL;
    if (st == ZL_OK) st = simulated_cluster(a, &cfg, W, &cluster, &card);
    if (st == ZL_OK && a->trace && !card)
        st = zl_errorf(ZL_ERR_CONFIG, "--trace needs a simulated device (--device NAME, --cluster "
                                      "SPEC, or \"zerolab\": {\"device\": NAME}): the trace "
                                      "shows simulated time");
    /* Rank 0 writes the trace first; the agreement below brings its verdict to all. */
    if (st == ZL_OK && a->trace && rank == 0) st = zl_cli_check_writable(a->trace, "--trace");
    char devname[64];
    snprintf(devname, sizeof devname, card ? "rank %d (%s)" : "rank %d", rank, card ? card->display : "");
    size_t budget = a->device_memory ? a->device_memory : card ? card->memory : 0;
    if (st == ZL_OK) st = zl_device_init(&dev, ZL_DEVICE_ACCEL, plan.backend, devname, budget);
    if (st == ZL_OK && card) {
        zl_sim_init(&sim, NULL, NULL, NULL, a->trace != NULL);
        zl_cost_attach(&sim, &cluster);
        zl_device_attach_sim(&dev, &sim);
        zl_ledger_exempt(&dev.ledger, "cast");
    }
    zl_status agreed = zl_comm_agree(world, st);
    if (agreed != ZL_OK) {
        rc = failed(world, rank == 0);
        goto done;
    }
    plan.engine.dp = world;
    /* Before any allocation: a run that cannot fit its device budget or this machine's
     * memory is refused now, not after minutes of allocating (train_preflight.c). */
    /* Checked, though the loader has bounded W x B x T by the data set: B and T come from
     * the user. The data set's bytes were checked when it was allocated. */
    size_t ntok = 0, io_nbytes = 0, host_nbytes = 0, data_nbytes = ds.ntokens * sizeof(int32_t);
    if (__builtin_mul_overflow((size_t)o->micro_batch_size, (size_t)o->seq_len, &ntok) ||
        __builtin_mul_overflow(ntok, 2 * sizeof(int32_t), &io_nbytes) || /* inputs, targets */
        __builtin_add_overflow(io_nbytes, data_nbytes, &host_nbytes))
        st = zl_errorf(ZL_ERR_INVALID, "micro-batch %d x sequence %d tokens is too large",
                       o->micro_batch_size, o->seq_len);
    zl_train_preflight pre = {
        .model = &plan.model, .options = o, .device_memory = budget,
        .device_name = card ? card->display : NULL, .gpu = card != NULL,
        .host_nbytes = host_nbytes, .held_nbytes = data_nbytes};
    if (st != ZL_OK || (st = zl_train_preflight_check(world, &pre)) != ZL_OK) {
        rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
        goto done;
    }
    /* DeepSpeed's comms_logger: every call is logged anyway; print the summary at the end,
     * and with "verbose" one line per call as it happens. */
    if (cfg.comms_logger.enabled && cfg.comms_logger.verbose && rank == 0)
        zl_comm_log_set_verbose(log, stdout);
    /* prof_all false: only the ops in prof_ops are shown. An unknown name is DeepSpeed's
     * silent no-op; here it is a warning, since the user surely meant some op. */
    if (zl_comm_log_set_filter(log, cfg.comms_logger.prof_all, cfg.comms_logger.prof_ops) != ZL_OK &&
        rank == 0)
        zl_log_warn("%s: %s", cfg.name, zl_last_error());
    /* Out of memory can hit one rank and not another: every rank reports, the ones that
     * did not fail naming the one that did. */
    if ((st = zl_engine_create(&engine, &plan.model, o, &dev)) != ZL_OK) {
        rc = failed(world, true);
        goto done;
    }
    inputs = malloc(io_nbytes / 2);  /* (B, T) */
    targets = malloc(io_nbytes / 2); /* (B, T) */
    if (!inputs || !targets) {
        fprintf(stderr, "zerolab: error: out of host memory\n");
        goto done;
    }

    const zl_gpt_config *mc = &plan.model;
    zl_print0("zerolab train: model %s (%.2fM params: L=%d C=%d NH=%d V=%d), backend %s, "
              "%d rank%s x %d thread%s%s%s%s\n",
              mc->name, (double)engine.model.params_numel / 1e6, mc->num_layers, mc->channels,
              mc->num_heads, mc->vocab_size, plan.backend, W, W > 1 ? "s" : "", omp_get_max_threads(),
              omp_get_max_threads() > 1 ? "s" : "", auto_why ? " (" : "", auto_why ? auto_why : "",
              auto_why ? ")" : "");
    zl_print0("  data %s\n", ds.desc);
    zl_print0("  batch %lld = micro-batch %d x accumulation %d x data-parallel %d, sequence %d; "
              "ZeRO stage %d; %s lr %.3g; %ld step%s\n",
              (long long)cfg.train_batch_size, o->micro_batch_size, o->gradient_accumulation_steps,
              W, o->seq_len, o->zero_stage, cfg.optimizer_name ? cfg.optimizer_name : "adamw",
              o->optimizer.lr, plan.steps, plan.steps == 1 ? "" : "s");
    if (card)
        zl_print0("  simulated: %d node%s x %d %s (%s within a node%s%s%s), one GPU per rank\n",
                  cluster.nodes, cluster.nodes > 1 ? "s" : "", cluster.gpus_per_node,
                  card->display, cluster.intra->name, cluster.nodes > 1 ? ", " : "",
                  cluster.nodes > 1 ? cluster.inter->name : "", cluster.nodes > 1 ? " between nodes" : "");

    double flops_per_step = 3.0 * zl_model_forward_flops(&engine.model, o->micro_batch_size, o->seq_len) *
                            o->gradient_accumulation_steps * W;
    double t_start = now_seconds(), t_window = t_start;
    float first_loss = NAN, loss = NAN;
    zl_timeline mark; /* the simulated clocks when the step began */
    for (long step = 1; step <= plan.steps; step++) {
        double loss_sum = 0;
        if (card) {
            sim.timeline.num_spans = 0; /* the trace keeps the last step */
            mark = sim.timeline;
        }
        for (int micro = 0; micro < o->gradient_accumulation_steps; micro++) {
            /* Named in a collective timeout's message. */
            zl_comm_set_phase(world, "step %ld of %ld, micro-step %d of %d", step, plan.steps,
                              micro + 1, o->gradient_accumulation_steps);
            zl_loader_next(&loader, inputs, targets);
            st = zl_engine_forward(&engine, inputs, targets, &loss);
            if (st == ZL_OK) st = zl_engine_backward(&engine);
            if (st == ZL_OK) st = zl_engine_step(&engine);
            /* A signal stops training here; the agreement stops every rank at this micro-step. */
            if (st == ZL_OK && stop_signal) st = zl_errorf(ZL_ERR_INTERRUPTED, "interrupted by a signal");
            zl_sim *clock = zl_sim_enter(NULL); /* the CLI's agreement is not training */
            agreed = zl_comm_agree(world, st);
            zl_sim_enter(clock);
            if (agreed == ZL_ERR_INTERRUPTED) {
                rc = stopped_by_signal(world, step, plan.steps);
                goto done;
            }
            if (agreed != ZL_OK) {
                rc = failed(world, st != ZL_OK);
                goto done;
            }
            loss_sum += loss;
        }
        bool print = plan.steps_per_print > 0 && (step % plan.steps_per_print == 0 || step == 1);
        /* The loss reported is the global batch's: averaged over micro-steps and ranks. */
        loss = (float)(loss_sum / o->gradient_accumulation_steps);
        if (print || step == plan.steps) loss = zl_engine_dp_mean(&engine, loss);
        if (zl_comm_health(world) != ZL_OK) goto done; /* the mean is NaN: not the loss's fault */
        if (step == 1) first_loss = loss;
        if ((print || step == plan.steps) && !isfinite(loss)) {
            zl_errorf(ZL_ERR_TRAINING, "loss became %g at step %ld\n  hint: lower the learning rate "
                      "or enable gradient_clipping", loss, step);
            rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
            goto done;
        }
        if (print) {
            double t = now_seconds(), steps_in_window = step == 1 ? 1 : (double)plan.steps_per_print;
            double dt = (t - t_window) / steps_in_window;
            char scale[48] = "";
            if (cfg.fp16.enabled) snprintf(scale, sizeof scale, " | loss scale %g", zl_engine_loss_scale(&engine));
            zl_print0("step %5ld/%ld | loss %.4f | lr %.3e | grad norm %.3f%s | %.1f ms/step | "
                      "%.0f tok/s | %.1f GFLOP/s\n",
                      step, plan.steps, loss, engine.lr, engine.grad_norm, scale, 1e3 * dt,
                      (double)ntok * o->gradient_accumulation_steps * W / dt,
                      flops_per_step / dt / 1e9);
            if (card) print_sim_step(&mark, &sim.timeline, card, flops_per_step / W, engine.dtype);
            t_window = t;
        }
    }
    zl_comm_set_phase(world, "the end-of-training reports");
    double elapsed = now_seconds() - t_start;
    zl_print0("done: loss %.4f -> %.4f in %ld step%s, %.1f s\n", first_loss, loss, plan.steps,
              plan.steps == 1 ? "" : "s", elapsed);
    if (engine.skipped_steps)
        zl_print0("skipped %lld of %ld optimizer steps (inf/nan gradients)\n",
                  (long long)engine.skipped_steps, plan.steps);
    print_peaks(world, &dev);
    if (a->print_memory) print_memory(world, &dev);
    if (card && a->trace) {
        if (write_trace(world, &sim.timeline, a->trace) != ZL_OK) {
            rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
            goto done;
        }
        zl_print0("trace of the last step: %s (open in https://ui.perfetto.dev)\n", a->trace);
    }
    if (cfg.comms_logger.enabled && rank == 0) zl_comm_log_print(log, stdout);
    rc = ZL_EXIT_OK;
done:
    if (world) rc = end_broken_job(world, rc);
    free(inputs);
    free(targets);
    zl_engine_destroy(&engine);
    zl_sim_free(&sim);
    zl_dataset_free(&ds);
    zl_config_free(&cfg);
    if (world) zl_comm_destroy(world);
    if (log) zl_comm_log_destroy(log);
    release_stop_signals(old_actions);
    return rc;
}

int zl_cmd_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc < 0) return ZL_EXIT_OK; /* --help */
    if (rc != ZL_EXIT_OK) return rc;
    return train(&a);
}
