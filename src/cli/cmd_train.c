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

#include "backends/cpu/cpu_blas.h"
#include "base/log.h"
#include "base/threads.h"
#include "cli/cli.h"
#include "comm/comm.h"
#include "comm/comm_log.h"
#include "config/config.h"
#include "core/device.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/engine.h"
#include "model/gpt_config.h"
#include "pipe/partition.h"
#include "run/run.h"
#include "sim/cost.h"
#include "sim/presets.h"

typedef struct train_args {
    const char *config_path, *model, *data, *backend, *device, *cluster, *trace;
    const char *save, *load, *tag; /* checkpoints: --save DIR, --load DIR, --tag T */
    long steps, seed, seq_len, threads, save_interval;
    long checkpoint; /* --checkpoint-activations[=k]; 0: the config's */
    long pipeline_stages; /* --pipeline-stages; 0: the config's */
    long tensor_parallel; /* --tensor-parallel; 0: the config's */
    bool sequence_parallel; /* --sequence-parallel */
    bool gpipe; /* --pipeline-schedule gpipe */
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
            "  --checkpoint-activations[=K]  keep only each segment of K layers' input (default\n"
            "                    1) and recompute it in backward (activation checkpointing)\n"
            "  --pipeline-stages S  cut the layers into S pipeline stages, one rank each, as\n"
            "                    the config's pipeline.partition says (DeepSpeed's 1F1B\n"
            "                    schedule; the ranks / S replicas are data-parallel)\n"
            "  --tensor-parallel T  split every block's heads and MLP, and the vocabulary,\n"
            "                    over T neighbouring ranks: Megatron-LM's layers\n"
            "                    (DeepSpeed's tensor_parallel.autotp_size)\n"
            "  --pipeline-schedule 1f1b|gpipe  the stages' schedule: DeepSpeed's 1F1B (default)\n"
            "                    or GPipe (all forwards, then all backwards)\n"
            "  --sequence-parallel  with --tensor-parallel: split the stream between the\n"
            "                    blocks over the tensor-parallel ranks by tokens (Megatron's\n"
            "                    sequence parallelism: 1/T of the LayerNorms' activations)\n"
            "  --backend NAME    ref (naive loops) or cpu (OpenBLAS + OpenMP; default);\n"
            "                    discrete: ref's kernels on memory the host cannot touch\n"
            "                    (a test backend: a GPU's memory rules); cuda: NVIDIA GPUs,\n"
            "                    one per rank (docs/cuda.md)\n"
            "  --threads N       OpenMP threads, at most 4 per core (default: OMP_NUM_THREADS,\n"
            "                    or the cores not busy with other work, shared among the\n"
            "                    node's ranks)\n"
            "  --device-memory N the memory budget of each rank's device, in bytes or with a\n"
            "                    unit (16GiB, 512MiB, 2.5e9); an allocation past it fails\n"
            "  --memory-report   print each rank's device memory ledger at the end\n"
            "  --verbose         also print the choices made at run time (each GEMM shape's\n"
            "                    path, OpenBLAS or oneDNN, fp32 and bf16, with the timings\n"
            "                    that chose it; ZL_GEMM_F32 and ZL_GEMM_LP pin them)\n"
            "  --device NAME     each rank impersonates this GPU: its memory is the budget,\n"
            "                    and a cost model gives every step a simulated time (also\n"
            "                    \"zerolab\": {\"device\": NAME} in the config); NAME is one\n"
            "                    of %s\n"
            "  --cluster SPEC    as --device, on a cluster of that many GPUs: GPUSxDEVICE or\n"
            "                    NODESxGPUSxDEVICE[,links] (see zerolab plan --help); its\n"
            "                    size must be the number of ranks (also \"zerolab\":\n"
            "                    {\"cluster\": SPEC} in the config)\n"
            "  --trace FILE      with --device or --cluster: Chrome trace (Perfetto) of the\n"
            "                    last step, one track per rank and stream; on --backend cuda\n"
            "                    without them: the real CUDA event times of its kernels\n"
            "  --save DIR        save a checkpoint into DIR after the last step (DeepSpeed's\n"
            "                    layout: DIR/global_step<N>/, DIR/latest; docs/checkpoints.md)\n"
            "  --save-interval N also every N optimizer steps\n"
            "  --load DIR        resume from the checkpoint DIR/latest names (any number of\n"
            "                    ranks, ZeRO stage and precision may have saved it); --steps\n"
            "                    counts the whole run's steps, those before the save included\n"
            "  --tag T           with --load: that tag instead of the latest\n"
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
           O_BUDGET, O_DEVICE, O_CLUSTER, O_TRACE, O_TIMEOUT, O_HELP, O_FILL, O_VERBOSE, O_SAVE,
           O_SAVE_INTERVAL, O_LOAD, O_TAG, O_CKPT, O_PIPE, O_TP, O_SP, O_SCHED };
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
        {"verbose", no_argument, 0, O_VERBOSE},
        {"save", required_argument, 0, O_SAVE}, {"save-interval", required_argument, 0, O_SAVE_INTERVAL},
        {"load", required_argument, 0, O_LOAD}, {"tag", required_argument, 0, O_TAG},
        {"checkpoint-activations", optional_argument, 0, O_CKPT},
        {"pipeline-stages", required_argument, 0, O_PIPE},
        {"tensor-parallel", required_argument, 0, O_TP},
        {"sequence-parallel", no_argument, 0, O_SP},
        {"pipeline-schedule", required_argument, 0, O_SCHED},
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
        case O_SAVE: a->save = optarg; break;
        case O_LOAD: a->load = optarg; break;
        case O_TAG: a->tag = optarg; break;
        case O_SAVE_INTERVAL:
            if (!parse_positive("--save-interval", optarg, INT_MAX, &a->save_interval)) return ZL_EXIT_USAGE;
            break;
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
        case O_SP: a->sequence_parallel = true; break;
        case O_SCHED:
            if (!zl_cli_parse_pipeline_schedule("train", optarg, &a->gpipe)) return ZL_EXIT_USAGE;
            break;
        case O_TP:
            if (!parse_positive("--tensor-parallel", optarg, 1 << 16, &a->tensor_parallel))
                return ZL_EXIT_USAGE;
            break;
        case O_PIPE:
            if (!parse_positive("--pipeline-stages", optarg, 1 << 16, &a->pipeline_stages))
                return ZL_EXIT_USAGE;
            break;
        case O_CKPT:
            a->checkpoint = 1;
            if (optarg && !parse_positive("--checkpoint-activations", optarg, 1 << 20, &a->checkpoint))
                return ZL_EXIT_USAGE;
            break;
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
        case O_VERBOSE: zl_log_set_level(ZL_LOG_DEBUG); break;
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
    if (a->tag && !a->load) {
        fprintf(stderr, "zerolab train: --tag names the checkpoint --load reads; give --load DIR too\n");
        return ZL_EXIT_USAGE;
    }
    if (a->save_interval && !a->save) {
        fprintf(stderr, "zerolab train: --save-interval needs --save DIR (where to save)\n");
        return ZL_EXIT_USAGE;
    }
    if ((a->save && !a->save[0]) || (a->load && !a->load[0])) {
        fprintf(stderr, "zerolab train: --save and --load take a directory, got an empty one\n");
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

/* The simulated step on rank 0's card: time, its compute and exposed communication (and
 * the compute's wait for host copies, when there was any), MFU (this rank's model FLOPs
 * over the card's dense peak at the training precision). */
/* Rank 0's simulated step; with pipeline stages, also its compute's idle share: the
 * bubble as this rank (stage 0) sees it, waiting at the start for gradients to come back
 * (docs/parallelism.md: plan --pipeline-stages gives the stages' mean). */
static void print_sim_step(const zl_timeline *mark, const zl_timeline *tl,
                           const zl_device_preset *card, double flops, zl_dtype dtype, bool piped)
{
    double t = zl_timeline_now(tl) - zl_timeline_now(mark);
    double exposed = tl->exposed_comm - mark->exposed_comm;
    double copy = tl->exposed_copy - mark->exposed_copy;
    double comm = tl->busy[ZL_STREAM_COMM] - mark->busy[ZL_STREAM_COMM];
    double mfu = t > 0 ? flops / (t * zl_device_peak_flops(card, dtype)) : 0;
    char copy_part[48] = "";
    if (copy > 0) snprintf(copy_part, sizeof copy_part, " + exposed host copy %.2f", 1e3 * copy);
    zl_print0("      simulated %s: %.2f ms/step = compute %.2f + exposed comm %.2f%s ms "
              "(comm %.2f ms) | MFU %.1f%%\n",
              card->display, 1e3 * t, 1e3 * (t - exposed - (copy > 0 ? copy : 0)), 1e3 * exposed,
              copy_part, 1e3 * comm, 100 * mfu);
    double busy = tl->busy[ZL_STREAM_COMPUTE] - mark->busy[ZL_STREAM_COMPUTE];
    if (piped && t > 0)
        zl_print0("      pipeline: rank 0 (stage 0) computes %.1f%% of the step, idle %.1f%% (the "
                  "bubble, and waits for the other stages)\n", 100 * busy / t, 100 * (1 - busy / t));
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
/* After an agreed failure: whether another rank's (the agreement's message on the ranks
 * that did not fail is "rank R failed ..."), so that each rank that failed itself reports. */
static bool failed_elsewhere(void) { return strncmp(zl_last_error(), "rank ", 5) == 0; }

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

/* The options of the library's run (src/run) from the flags: the CLI adds only the
 * built-in config, whose values the fill flags set outright. */
static void run_options(const train_args *a, zl_comm *world, zl_run_options *o)
{
    zl_run_options_init(o);
    o->config_path = a->config_path;
    if (!a->config_path) {
        o->config_text = zl_default_config_json;
        o->config_name = "<built-in config>";
    }
    /* The fill flags fill "auto" in a config file; the built-in config's values they set. */
    o->fill = a->fill;
    o->fill.override_file = !a->config_path;
    o->model = a->model;
    o->data = a->data;
    o->steps = a->steps;
    o->seed = a->seed;
    o->seq_len = (int)a->seq_len;
    o->checkpoint_activations = (int)a->checkpoint;
    o->pipeline_stages = (int)a->pipeline_stages;
    o->tensor_parallel = (int)a->tensor_parallel;
    o->sequence_parallel = a->sequence_parallel;
    o->pipeline_gpipe = a->gpipe;
    o->backend = a->backend;
    o->device = a->device;
    o->cluster = a->cluster;
    o->device_memory = a->device_memory;
    o->trace = a->trace;
    o->comm = world;
    o->interrupt = &stop_signal;
}

/* The ranks of this node that share this rank's cores (base/threads.h), of node_ranks on
 * the node: MPI's shared-memory communicator gives the node's ranks, their affinity masks
 * whether the launcher bound each to cores of its own. Collective. */
static zl_status core_sharing(zl_comm *world, int *sharing, int *node_ranks)
{
    zl_comm *node = NULL;
    zl_status st = zl_comm_split_node(world, &node);
    if (st != ZL_OK) return st;
    node->log = NULL; /* set-up, not the training's traffic */
    uint32_t *masks = calloc((size_t)node->size * ZL_THREADS_MASK_WORDS, sizeof *masks);
    if (!masks) {
        zl_comm_destroy(node);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    }
    uint32_t *mine = masks + (size_t)node->rank * ZL_THREADS_MASK_WORDS;
    zl_threads_mask(mine);
    st = zl_comm_allgather(node, masks, mine, ZL_THREADS_MASK_WORDS, ZL_I32);
    if (st == ZL_OK) *sharing = zl_threads_sharing(masks, node->size, node->rank);
    *node_ranks = node->size;
    free(masks);
    zl_comm_destroy(node);
    return st;
}

/* DeepSpeed's PipelineModule prints the cut on rank 0: "stage=s layers=n", then the
 * layers. */
static void print_stages(const zl_engine *e)
{
    const int *bounds;
    int stages = zl_engine_pipe_stages(e, &bounds);
    const zl_model *m = zl_engine_model(e);
    size_t len = zl_pipe_partition_format(m, stages, bounds, NULL, 0);
    char *text = malloc(len + 1);
    if (!text) return;
    zl_pipe_partition_format(m, stages, bounds, text, len + 1);
    zl_print0("%s", text);
    free(text);
}

static int train(const train_args *a)
{
    zl_run run;
    memset(&run, 0, sizeof run);
    zl_comm *world = NULL;
    zl_comm_log *log = NULL;
    int rc = ZL_EXIT_FAIL;
    struct sigaction old_actions[2];
    catch_stop_signals(old_actions);

    /* Threads: --threads, else OMP_NUM_THREADS, else what this machine can give each rank
     * now (base/threads.h: OpenMP's one-per-core default spins ranks and busy machines
     * against each other). */
    /* Every MPI rank is one (simulated) GPU; all of them are data-parallel for now. MPI
     * starts first: its shared-memory communicator counts the ranks on this node, and no
     * OpenMP thread exists before the count is set. */
    int sharing = 1, node_ranks = 1;
    zl_status st = zl_comm_log_create(&log);
    if (st == ZL_OK) st = zl_comm_world(&world, log);
    if (st == ZL_OK) st = core_sharing(world, &sharing, &node_ranks);
    if (st != ZL_OK) {
        rc = zl_cli_fail();
        goto done;
    }
    const char *auto_why = NULL;
    if (a->threads) omp_set_num_threads((int)a->threads);
    else if (!getenv("OMP_NUM_THREADS"))
        omp_set_num_threads(zl_threads_default(sharing, node_ranks, &auto_why));
    char oversubscribed[320];
    bool warn_threads = !auto_why && zl_threads_check(omp_get_max_threads(), sharing,
                                                      oversubscribed, sizeof oversubscribed);
    int rank = world->rank, W = world->size;
    if (a->collective_timeout >= 0) zl_comm_set_timeout(world, a->collective_timeout);
    zl_comm_set_interrupt(world, &stop_signal);
    zl_comm_set_phase(world, "set-up");

    /* The run (src/run): set-up and the memory plan fail alike on every rank, so rank 0
     * reports them; the engine's allocations can fail on one rank and not another, so
     * every rank reports those. */
    zl_run_options ro;
    run_options(a, world, &ro);
    if (zl_run_init(&run, &ro) != ZL_OK) {
        if (run.failed_at == ZL_RUN_PREFLIGHT) rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
        else rc = failed(world, run.failed_at == ZL_RUN_ENGINE || rank == 0);
        goto done;
    }
    /* What the engine cannot save or load (pipeline stages, tensor-parallel parts: engine.h)
     * it would refuse only when it got there: after the whole run for --save. Refused here,
     * before a step is trained; every rank sees the same flags and grid, so all fail
     * together and rank 0 reports. */
    if ((a->save || a->load) && zl_engine_checkpointable(run.engine) != ZL_OK) {
        const char *flag = a->save && a->load ? "--save and --load" : a->save ? "--save" : "--load";
        zl_error_wrap(ZL_ERR_UNSUPPORTED, "%s: ", flag);
        rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
        goto done;
    }
    const zl_config *cfg = run.config;
    const zl_engine_options *o = &run.options;
    const zl_device_preset *card = run.card;
    const zl_cluster *cluster = &run.cluster;
    zl_engine *engine = run.engine;

    const zl_gpt_config *mc = &run.model;
    if (warn_threads && rank == 0) fprintf(stderr, "warning: %s\n", oversubscribed);
    zl_print0("zerolab train: model %s (%.2fM params: L=%d C=%d NH=%d V=%d), backend %s, "
              "%d rank%s x %d thread%s%s%s%s\n",
              mc->name, (double)zl_gpt_config_num_params(mc) / 1e6, mc->num_layers, mc->channels,
              mc->num_heads, mc->vocab_size, run.backend, W, W > 1 ? "s" : "", omp_get_max_threads(),
              omp_get_max_threads() > 1 ? "s" : "", auto_why ? " (" : "", auto_why ? auto_why : "",
              auto_why ? ")" : "");
    if (!strcmp(run.backend, "cpu")) zl_print0("  BLAS %s\n", zl_cpu_blas_report());
    if (run.pipe_size > 1) print_stages(engine);
    if (run.pipe_size > 1)
        zl_print0("  pipeline: %d stages x %d data-parallel replica%s, %s schedule "
                  "(partition %s)\n", run.pipe_size, run.dp_size, run.dp_size == 1 ? "" : "s",
                  o->schedule == ZL_SCHEDULE_GPIPE ? "GPipe's" : "DeepSpeed's 1F1B",
                  o->pipe_partition[0] && strcmp(o->pipe_partition, "best") ? o->pipe_partition : "parameters");
    if (run.tp_size > 1)
        zl_print0("  tensor parallelism: %d ranks split each block's %d heads and MLP "
                  "(Megatron-LM's column- and row-parallel layers)%s\n", run.tp_size, mc->num_heads,
                  o->sequence_parallel ? ", sequence parallel" : "");
    zl_print0("  data %s\n", run.dataset->desc);
    zl_print0("  batch %lld = micro-batch %d x accumulation %d x data-parallel %d, sequence %d; "
              "ZeRO stage %d; %s lr %.3g; %ld step%s\n",
              (long long)cfg->train_batch_size, o->micro_batch_size, o->gradient_accumulation_steps,
              run.dp_size, o->seq_len, o->zero_stage, cfg->optimizer_name ? cfg->optimizer_name : "adamw",
              o->optimizer.lr, run.steps, run.steps == 1 ? "" : "s");
    if (card)
        zl_print0("  simulated: %d node%s x %d %s (%s within a node%s%s%s), one GPU per rank\n",
                  cluster->nodes, cluster->nodes > 1 ? "s" : "", cluster->gpus_per_node,
                  card->display, cluster->intra->name, cluster->nodes > 1 ? ", " : "",
                  cluster->nodes > 1 ? cluster->inter->name : "", cluster->nodes > 1 ? " between nodes" : "");

    if (a->load) {
        zl_engine_loaded loaded;
        if (zl_run_load(&run, a->load, a->tag, &loaded) != ZL_OK) {
            rc = failed(world, rank == 0 || !failed_elsewhere());
            goto done;
        }
        zl_print0("  resumed from %s/%s%s (saved by %d rank%s at ZeRO stage %d)\n", a->load,
                  loaded.tag, loaded.optimizer_loaded ? "" : ": the weights only, a fresh optimizer",
                  loaded.saved_dp_world_size, loaded.saved_dp_world_size == 1 ? "" : "s",
                  loaded.saved_zero_stage);
        if (loaded.optimizer_loaded)
            zl_print0("  at step %ld of %ld, lr %.3e\n", run.step, run.steps, zl_engine_get_lr(engine));
        free(loaded.client_state);
    }
    double flops_per_step = zl_run_step_flops(&run);
    double t_start = now_seconds(), t_window = t_start;
    float first_loss = NAN, loss = NAN;
    long first_step = run.step + 1;
    for (long step = first_step; step <= run.steps; step++) {
        zl_status agreed = zl_run_step(&run, &loss);
        if (agreed == ZL_ERR_INTERRUPTED) {
            rc = stopped_by_signal(world, step, run.steps);
            goto done;
        }
        if (agreed != ZL_OK) {
            rc = failed(world, run.failed_here);
            goto done;
        }
        bool print = run.steps_per_print > 0 && (step % run.steps_per_print == 0 || step == first_step);
        /* The loss reported is the global batch's: averaged over micro-steps and ranks. */
        if (print || step == run.steps) loss = zl_engine_dp_mean(engine, loss);
        if (zl_comm_health(world) != ZL_OK) goto done; /* the mean is NaN: not the loss's fault */
        if (step == first_step) first_loss = loss;
        if ((print || step == run.steps) && !isfinite(loss)) {
            zl_errorf(ZL_ERR_TRAINING, "loss became %g at step %ld\n  hint: lower the learning rate "
                      "or enable gradient_clipping", loss, step);
            rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
            goto done;
        }
        if (print) {
            double t = now_seconds(), steps_in_window = step == first_step ? 1 : (double)run.steps_per_print;
            double dt = (t - t_window) / steps_in_window;
            char scale[48] = "";
            if (cfg->fp16.enabled) snprintf(scale, sizeof scale, " | loss scale %g", zl_engine_loss_scale(engine));
            zl_print0("step %5ld/%ld | loss %.4f | lr %.3e | grad norm %.3f%s | %.1f ms/step | "
                      "%.0f tok/s | %.1f GFLOP/s\n",
                      step, run.steps, loss, zl_engine_last_lr(engine), zl_engine_grad_norm(engine), scale, 1e3 * dt,
                      (double)run.tokens_per_micro * o->gradient_accumulation_steps * run.dp_size / dt,
                      flops_per_step / dt / 1e9);
            if (card)
                print_sim_step(&run.step_mark, &run.sim.timeline, card, flops_per_step / W,
                               zl_engine_dtype(engine), run.pipe_size > 1);
            t_window = t;
        }
        if (a->save && ((a->save_interval && step % a->save_interval == 0) || step == run.steps)) {
            if (zl_run_save(&run, a->save, NULL) != ZL_OK) {
                rc = failed(world, rank == 0 || !failed_elsewhere());
                goto done;
            }
            zl_print0("saved checkpoint %s/global_step%lld\n", a->save,
                      (long long)zl_engine_global_steps(engine));
            t_window = now_seconds(); /* the save is not the next steps' time */
        }
    }
    if (first_step > run.steps)
        zl_print0("nothing to train: the checkpoint is at step %ld, --steps is %ld\n", run.step,
                  run.steps);
    zl_comm_set_phase(world, "the end-of-training reports");
    zl_comm_set_sim(world, NULL); /* the reports are not training: no simulated time */
    double elapsed = now_seconds() - t_start;
    long trained = run.steps - first_step + 1 > 0 ? run.steps - first_step + 1 : 0;
    if (trained)
        zl_print0("done: loss %.4f -> %.4f in %ld step%s, %.1f s\n", first_loss, loss, trained,
                  trained == 1 ? "" : "s", elapsed);
    if (zl_engine_skipped_steps(engine))
        zl_print0("skipped %lld of %ld optimizer steps (inf/nan gradients)\n",
                  (long long)zl_engine_skipped_steps(engine), run.steps);
    print_peaks(world, &run.device);
    if (a->print_memory) print_memory(world, &run.device);
    if (a->trace) { /* a card's simulated trace, or cuda's real one (run.c set_up) */
        if (zl_run_write_trace(&run, a->trace) != ZL_OK) {
            rc = rank == 0 ? zl_cli_fail() : ZL_EXIT_FAIL;
            goto done;
        }
        zl_print0("trace of the last step: %s (open in https://ui.perfetto.dev)\n", a->trace);
    }
    if (cfg->comms_logger.enabled && rank == 0) zl_comm_log_print(log, stdout);
    rc = ZL_EXIT_OK;
done:
    if (world) rc = end_broken_job(world, rc);
    zl_run_free(&run);
    /* Every rank has released what it holds (ZeRO-Infinity's swap files are removed there)
     * before any exits: a rank that exits non-zero first gets the others killed by the
     * launcher, possibly halfway through their clean-up. */
    if (world && world->size > 1 && zl_comm_health(world) == ZL_OK) {
        zl_sim *clock = zl_comm_set_sim(world, NULL);
        (void)zl_comm_barrier(world);
        zl_comm_set_sim(world, clock);
    }
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
