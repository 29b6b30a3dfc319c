/* A training run, assembled (run.h).
 *
 * The order is the one a failure should be found in: everything that reads the user's
 * input (config, model, data, cluster, trace path) first and agreed across ranks, then
 * the memory plan (milliseconds, no byte allocated), then the engine's allocations (the
 * only step that can take minutes). */
#include "zl_build.h" /* ZL_HAVE_CUDA */

#include "run/run.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "backends/cuda/cuda.h"
#include "backends/discrete/discrete.h"
#include "comm/comm_log.h"
#include "comm/comm_window.h"
#include "comm/topology.h"
#include "launch/launch.h"
#include "run/preflight.h"
#include "sim/cost.h"

void zl_run_options_init(zl_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = -1;
}

zl_status zl_run_check_config(const zl_config *cfg)
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

/* ---- set-up: the user's input, read and checked ------------------------------------ */

/* The pipeline's stages: --pipeline-stages, else the config's pipeline.stages ("auto" or
 * absent: 1); they must divide the world, whose quotient is the data-parallel size. */
static zl_status grid(zl_run *run, const zl_run_options *o, const zl_config *cfg, int W)
{
    int pp = o->pipeline_stages > 0 ? o->pipeline_stages
             : cfg->pipeline.stages > 0 ? (int)cfg->pipeline.stages : 1;
    const char *from = o->pipeline_stages > 0 ? "--pipeline-stages" : "pipeline.stages";
    if (pp > W || W % pp != 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s %d does not divide the %d rank%s of this run: every data-parallel "
                         "replica needs one rank per stage\n  hint: launch a multiple of %d "
                         "ranks (mpiexec -n %d ...), or use fewer stages", from, pp, W,
                         W == 1 ? "" : "s", pp, pp);
    long long tp = o->tensor_parallel > 0 ? o->tensor_parallel
                   : cfg->tensor_parallel.autotp_size > 1 ? (long long)cfg->tensor_parallel.autotp_size
                                                          : 1;
    const char *tfrom = o->tensor_parallel > 0 ? "--tensor-parallel" : "tensor_parallel.autotp_size";
    int per_stage = W / pp; /* a stage's ranks: data-parallel x tensor-parallel */
    if (tp > per_stage || per_stage % tp != 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s %lld does not divide the %d rank%s of each pipeline stage (%d "
                         "rank%s, %d stage%s): every data-parallel replica of a stage needs %lld "
                         "tensor-parallel ranks\n  hint: launch a multiple of %lld ranks, or use "
                         "a tensor-parallel size that divides %d", tfrom, tp, per_stage,
                         per_stage == 1 ? "" : "s", W, W == 1 ? "" : "s", pp, pp == 1 ? "" : "s",
                         tp, tp * pp, per_stage);
    run->pipe_size = pp;
    run->tp_size = (int)tp;
    run->dp_size = W / (pp * (int)tp);
    return ZL_OK;
}

static zl_status load_config(zl_run *run, const zl_run_options *o, int W)
{
    if (o->config) {
        run->config = o->config; /* borrowed; never freed here */
        zl_status st = grid(run, o, run->config, W);
        if (st == ZL_OK && run->dp_size != W && run->config->dp_world_size != run->dp_size)
            st = zl_errorf(ZL_ERR_INVALID, "zl_run_options.config was resolved for %d "
                           "data-parallel ranks, but %d ranks in %d pipeline stages of %d "
                           "tensor-parallel ranks are %d\n  hint: resolve it with "
                           "zl_config_resolve_batch(cfg, %d)", run->config->dp_world_size, W,
                           run->pipe_size, run->tp_size, run->dp_size, run->dp_size);
        return st != ZL_OK ? st : zl_run_check_config(run->config);
    }
    /* Read first, the batch triad resolved once the grid says how many ranks are
     * data-parallel (DeepSpeed: train_batch_size = micro x accumulation x DP). */
    zl_status st;
    if (o->config_path) st = zl_config_load_filled(&run->own_config, o->config_path, 0, &o->fill);
    else if (o->config_text)
        st = zl_config_parse_filled(&run->own_config, o->config_text,
                                    o->config_name ? o->config_name : "<string>", 0, &o->fill);
    else
        st = zl_errorf(ZL_ERR_INVALID, "a run needs a DeepSpeed config\n  hint: set "
                       "zl_run_options.config, .config_path or .config_text");
    run->config = &run->own_config;
    if (st == ZL_OK) st = grid(run, o, run->config, W);
    if (st == ZL_OK) st = zl_config_resolve_batch(&run->own_config, run->dp_size);
    if (st != ZL_OK) return st;
    if (zl_log_rank() == 0) zl_config_log_warnings(run->config);
    return zl_run_check_config(run->config);
}

/* The model, the backend, the step count and the engine's options. */
static zl_status resolve(zl_run *run, const zl_run_options *a)
{
    static const char *backend_names[] = {"ref", "cpu", "cuda", "discrete"};
    const zl_config *cfg = run->config;
    zl_status st = ZL_OK;
    if (a->model_config) run->model = *a->model_config;
    else {
        const char *model = a->model ? a->model : cfg->zerolab.model ? cfg->zerolab.model : "lab";
        st = zl_gpt_config_resolve(model, &run->model);
    }
    if (st != ZL_OK) return st;

    run->backend = a->backend ? a->backend
                   : cfg->zerolab.backend >= 0 ? backend_names[cfg->zerolab.backend] : "cpu";
    run->steps = a->steps ? a->steps : cfg->zerolab.steps > 0 ? (long)cfg->zerolab.steps : 100;
    /* DeepSpeed's steps_per_print defaults to None (silent); a run shows progress. */
    run->steps_per_print = zl_config_given(cfg, "steps_per_print") ? (long)cfg->steps_per_print : 10;

    int seq_len = a->seq_len == ZL_RUN_SEQ_LEN_MODEL ? run->model.max_seq_len
                  : a->seq_len ? a->seq_len
                  : run->model.max_seq_len < 128 ? run->model.max_seq_len : 128;
    uint64_t seed =
        (uint64_t)(a->seed >= 0 ? a->seed : cfg->zerolab.seed >= 0 ? cfg->zerolab.seed : 1337);
    zl_engine_options_from_config(&run->options, cfg, seq_len, seed, NULL); /* dp: once agreed */
    /* --checkpoint-activations, else the "zerolab" block's, else the pipeline's interval. */
    if (a->checkpoint_activations > 0) run->options.checkpoint_interval = a->checkpoint_activations;
    else if (cfg->zerolab.checkpoint_activations > 0)
        run->options.checkpoint_interval = (int)cfg->zerolab.checkpoint_activations;
    run->options.sequence_parallel = a->sequence_parallel;
    if (a->pipeline_gpipe) run->options.schedule = ZL_SCHEDULE_GPIPE;
    /* The layers' cut: DeepSpeed's partition_method ("best", the block's default, is
     * "parameters"). */
    snprintf(run->options.pipe_partition, sizeof run->options.pipe_partition, "%s",
             cfg->pipeline.partition ? cfg->pipeline.partition : "");
    if (run->options.seq_len > run->model.max_seq_len)
        return zl_errorf(ZL_ERR_INVALID,
                         "--seq-len %d is longer than model '%s' allows (max_seq_len %d)",
                         run->options.seq_len, run->model.name, run->model.max_seq_len);
    return ZL_OK;
}

static zl_status load_data(zl_run *run, const zl_run_options *a)
{
    const zl_config *cfg = run->config;
    if (a->dataset) run->dataset = a->dataset;
    else {
        const char *path = a->data ? a->data : cfg->zerolab.data;
        zl_status st = path ? zl_dataset_load(&run->own_dataset, path)
                            : zl_dataset_default(&run->own_dataset);
        run->dataset = &run->own_dataset;
        if (st != ZL_OK) return st;
    }
    const zl_dataset *ds = run->dataset;
    if (ds->vocab_size > run->model.vocab_size)
        return zl_errorf(ZL_ERR_INVALID,
                         "data %s has a vocabulary of %d tokens but model '%s' has vocab_size %d\n"
                         "  hint: pick a model whose vocabulary covers the data's tokenizer "
                         "(llm.c GPT-2 shards need vocab_size 50257, e.g. --model gpt2-124m)",
                         ds->desc, ds->vocab_size, run->model.name, run->model.vocab_size);
    return ZL_OK;
}

/* The hosts `zerolab launch` put this run's W ranks on (ZL_LAUNCH_NODES, "H1:K1,H2:K2",
 * in rank order; launch/launch.h): *nodes x *per_node, or *nodes = 0 when unset or when
 * the hosts' slots differ (the simulated cluster has equal nodes: a warning, and one node
 * of W as without the launcher). An environment read here, not in the CLI, because every
 * program that builds a run (train, bench, the labs) runs under the launcher alike. */
static zl_status launch_nodes(const zl_run *run, int W, int *nodes, int *per_node)
{
    *nodes = 0;
    const char *value = getenv("ZL_LAUNCH_NODES");
    if (!value || !*value) return ZL_OK;
    int counts[1024], n, sum = 0;
    zl_status st = zl_launch_nodes_parse(value, counts, 1024, &n);
    if (st != ZL_OK) return st;
    bool equal = true;
    for (int i = 0; i < n; i++) {
        sum += counts[i];
        equal &= counts[i] == counts[0];
    }
    if (sum != W)
        return zl_errorf(ZL_ERR_CONFIG, "ZL_LAUNCH_NODES=%s places %d ranks, but this run has "
                         "%d\n  hint: `zerolab launch` sets it for the ranks it starts; unset it "
                         "(unset ZL_LAUNCH_NODES) when running mpiexec by hand", value, sum, W);
    if (!equal) {
        if (run->comm->rank == 0)
            zl_log_warn("the hosts have unequal slots (ZL_LAUNCH_NODES=%s): the simulator's "
                        "nodes are all alike, so it simulates one node of %d GPUs; give every "
                        "host the same slots=N to simulate the hosts as nodes", value, W);
        return ZL_OK;
    }
    *nodes = n;
    *per_node = counts[0];
    return ZL_OK;
}

/* The cluster this run's W ranks impersonate, if any: --cluster, else --device (one node
 * of W, or the launcher's hosts as nodes: launch_nodes), else the config's "cluster", else
 * its "device". A cluster spec given is what is simulated, even where the launcher's hosts
 * differ (simulating a larger cluster than the machines at hand is the simulator's job):
 * a warning then. run->card stays NULL without. */
static zl_status simulated_cluster(zl_run *run, const zl_run_options *a)
{
    const zl_config *cfg = run->config;
    int W = run->comm->size;
    const char *spec = a->cluster, *device = a->device;
    char from[160] = "--cluster";
    if (!spec && !device) {
        spec = cfg->zerolab.cluster;
        device = spec ? NULL : cfg->zerolab.device;
        snprintf(from, sizeof from, "%s: zerolab.cluster", cfg->name);
    }
    int hosts = 0, per_host = 0;
    zl_status lst = launch_nodes(run, W, &hosts, &per_host);
    if (lst != ZL_OK) return lst;
    char one_node[96];
    if (!spec && device) {
        if (!zl_device_preset_find(device))
            return a->device ? zl_errorf(ZL_ERR_CONFIG, "unknown --device '%s'\n  known devices: %s",
                                         device, zl_device_preset_names())
                             : zl_errorf(ZL_ERR_CONFIG, "%s: zerolab.device: unknown device '%s'\n"
                                         "  known devices: %s", cfg->name, device,
                                         zl_device_preset_names());
        if (hosts > 1) snprintf(one_node, sizeof one_node, "%dx%dx%s", hosts, per_host, device);
        else snprintf(one_node, sizeof one_node, "%dx%s", W, device);
        spec = one_node;
    }
    if (!spec) return ZL_OK;
    zl_status st = zl_cluster_parse(spec, &run->cluster);
    if (st != ZL_OK) return st;
    if (hosts > 1 && spec != one_node && run->comm->rank == 0 &&
        (run->cluster.nodes != hosts || run->cluster.gpus_per_node != per_host))
        zl_log_warn("%s %s simulates %d node%s of %d GPUs, but zerolab launch put the ranks on "
                    "%d hosts of %d: the simulator follows %s (give --device instead to "
                    "simulate the hosts as nodes)", from, spec, run->cluster.nodes,
                    run->cluster.nodes == 1 ? "" : "s", run->cluster.gpus_per_node, hosts,
                    per_host, from);
    if (zl_cluster_size(&run->cluster) != W)
        return zl_errorf(ZL_ERR_CONFIG,
                         "%s %s has %d GPUs, but this run has %d rank%s: every rank is one GPU\n"
                         "  hint: launch %d ranks (mpiexec -n %d zerolab train ...), or give a "
                         "cluster of %d GPU%s",
                         from, spec, zl_cluster_size(&run->cluster), W, W == 1 ? "" : "s",
                         zl_cluster_size(&run->cluster), zl_cluster_size(&run->cluster), W,
                         W == 1 ? "" : "s");
    run->card = run->cluster.device;
    return ZL_OK;
}

zl_status zl_run_check_writable(const char *path, const char *flag)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0666);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return zl_errorf(ZL_ERR_IO, "cannot write '%s' (%s): %s\n  hint: %s names a file in a "
                         "directory that exists and is writable", path, flag,
                         errno == ENXIO ? "a FIFO with no reader" : strerror(errno), flag);
    close(fd);
    if (created) unlink(path);
    return ZL_OK;
}

static zl_status configure(zl_run *run, const zl_run_options *a, int world_size)
{
    zl_status st = load_config(run, a, world_size);
    return st == ZL_OK ? resolve(run, a) : st;
}

zl_status zl_run_configure(zl_run *run, const zl_run_options *a, int world_size)
{
    memset(run, 0, sizeof *run);
    zl_status st = configure(run, a, world_size);
    if (st != ZL_OK) {
        zl_run_free(run);
        run->failed_at = ZL_RUN_SETUP;
    }
    return st;
}

/* Everything read from the user, on this rank: not yet agreed. */
static zl_status set_up(zl_run *run, const zl_run_options *a)
{
    int rank = run->comm->rank, W = run->comm->size;
    zl_status st = configure(run, a, W);
    /* The backend can run here (cuda: built, a driver, a device) before anything is read
     * or allocated. Not in configure: plan reads a config that names cuda on any machine. */
    const zl_ops *backend = NULL;
    if (st == ZL_OK) st = zl_device_backend_open(run->backend, &backend);
    if (st == ZL_OK) st = load_data(run, a);
    const zl_engine_options *o = &run->options;
    /* The stages and tensor-parallel ranks of one replica read the same data: the loader
     * shards by replica. */
    if (st == ZL_OK) {
        zl_topology t;
        if ((st = zl_topology_init(&t, W, run->pipe_size, run->tp_size)) == ZL_OK)
            st = zl_loader_init(&run->loader, run->dataset, o->micro_batch_size, o->seq_len,
                                zl_topology_coords(&t, rank).data, run->dp_size);
    }
    /* A card: the rank is that GPU: its memory is the budget (unless device_memory), the
     * CPU's f32 stand-ins are not held against it, and a simulated clock runs on the
     * cluster's links. */
    if (st == ZL_OK) st = simulated_cluster(run, a);
    /* Without a card, cuda's trace is of real CUDA event times (cuda_trace.cu); with one,
     * the device's ops are the simulator's and the trace is the simulated one, as on the
     * other backends (one clock per trace: docs/cuda.md). */
    bool real_trace = false;
#ifdef ZL_HAVE_CUDA
    real_trace = st == ZL_OK && a->trace && !run->card && !strcmp(run->backend, "cuda");
#endif
    if (st == ZL_OK && a->trace && !run->card && !real_trace)
        st = zl_errorf(ZL_ERR_CONFIG, "--trace needs a simulated device (--device NAME, --cluster "
                                      "SPEC, or \"zerolab\": {\"device\": NAME}): the trace "
                                      "shows simulated time");
    /* Rank 0 writes the trace first; the agreement brings its verdict to all. */
    if (st == ZL_OK && a->trace && rank == 0) st = zl_run_check_writable(a->trace, "--trace");
    if (st != ZL_OK) return st;
    const zl_device_preset *card = run->card;
    char devname[64];
    snprintf(devname, sizeof devname, card ? "rank %d (%s)" : "rank %d", rank, card ? card->display : "");
    run->device_memory = a->device_memory ? a->device_memory : card ? card->memory : 0;
    st = zl_device_init(&run->device, ZL_DEVICE_ACCEL, run->backend, devname, run->device_memory);
    if (st != ZL_OK) return st;
    /* What the backend holds is the budget (cuda: the card's free memory less a reserve,
     * or less than asked when the card has less: ops.h, reserve). */
    run->device_memory = run->device.ledger.budget_nbytes;
    run->has_device = true;
#ifdef ZL_HAVE_CUDA
    /* before the engine's first kernel: every one of them is timed */
    if (real_trace) {
        const zl_ops *traced = zl_cuda_trace_ops(run->device.ops);
        if (!traced)
            return zl_errorf(ZL_ERR_NOMEM, "--trace: no host memory for the CUDA events' records");
        run->device.ops = traced;
        run->real_trace = true;
    }
#endif
    /* The rank's pinned host memory, on the accelerator's backend, whose host table
     * (ops.h, host) has the kernels and the allocator for it: cuda's pinned memory and
     * cpu kernels, discrete's ordinary memory; its budget: run.h, host_memory. */
    snprintf(devname, sizeof devname, "rank %d host", rank);
    st = zl_device_init(&run->host, ZL_DEVICE_HOST, run->backend, devname,
                        a->host_memory);
    if (st != ZL_OK) return st;
    run->has_host = true;
    if (card) {
        zl_sim_init(&run->sim, NULL, NULL, NULL, a->trace != NULL);
        run->has_sim = true;
        zl_cost_attach(&run->sim, &run->cluster);
        zl_device_attach_sim(&run->device, &run->sim);
        zl_ledger_exempt(&run->device.ledger, "cast");
    }
    return ZL_OK;
}

/* The comms logger as the config asks (DeepSpeed's comms_logger): every call is logged
 * anyway; "verbose" prints one line per call as it happens (rank 0, stdout), and
 * prof_all false shows only the ops in prof_ops. */
static void configure_comms_logger(zl_run *run)
{
    zl_comm_log *log = run->comm->log;
    const zl_config *cfg = run->config;
    if (!log) return;
    if (cfg->comms_logger.enabled && cfg->comms_logger.verbose && run->comm->rank == 0)
        zl_comm_log_set_verbose(log, stdout);
    /* An unknown name is DeepSpeed's silent no-op; here a warning: the user meant some op. */
    if (zl_comm_log_set_filter(log, cfg->comms_logger.prof_all, cfg->comms_logger.prof_ops) != ZL_OK &&
        run->comm->rank == 0)
        zl_log_warn("%s: %s", cfg->name, zl_last_error());
}

/* The communicator for collectives on this run's device memory, given the one for host
 * memory (the same ranks): host_comm itself where the device's memory is the host's (ref,
 * cpu); on cuda an NCCL communicator over its ranks (comm_nccl.c); for the discrete
 * backend a window that opens its arena around each call (comm/comm_window.h), as NCCL
 * reads a GPU's memory. own: destroying *out destroys
 * host_comm too (when *out is not host_comm itself). */
static zl_status device_comm(const zl_run *run, zl_comm *host_comm, bool own, zl_comm **out)
{
    *out = host_comm;
    if (!host_comm) return ZL_OK;
#ifdef ZL_HAVE_CUDA
    /* a GPU's buffers move with NCCL; host buffers still go through host_comm */
    if (!strcmp(run->backend, "cuda"))
        return zl_comm_nccl(out, host_comm, own, zl_device_backend(&run->device), NULL);
#endif
    if (strcmp(run->backend, "discrete")) return ZL_OK;
    static const zl_comm_window_hooks arena = {zl_discrete_enter, zl_discrete_leave, NULL};
    return zl_comm_window(host_comm, own, &arena, out);
}

/* The engine's communicators (options.dp, pipe, tp, mp) as device communicators: the
 * grid's groups replaced by theirs (owning them), the world's kept in device_world. */
static zl_status device_comms(zl_run *run)
{
    zl_comm **groups[] = {&run->pipe, &run->data, &run->tp, &run->mp};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        zl_comm *dev;
        zl_status st = device_comm(run, *groups[i], true, &dev);
        if (st != ZL_OK) return st;
        *groups[i] = dev;
    }
    zl_comm *world;
    zl_status st = device_comm(run, run->comm, false, &world);
    if (st != ZL_OK) return st;
    if (world != run->comm) run->device_world = world;
    run->options.dp = run->data ? run->data : world;
    run->options.pipe = run->pipe;
    run->options.tp = run->tp;
    run->options.mp = run->mp;
    return ZL_OK;
}

static zl_status build(zl_run *run, const zl_run_options *a)
{
    if (a->threads > 0) omp_set_num_threads(a->threads);
    if (a->comm) run->comm = a->comm;
    else {
        zl_status st = zl_comm_self(&run->comm, NULL);
        if (st != ZL_OK) return run->failed_at = ZL_RUN_SETUP, st;
        run->own_comm = true;
    }
    /* Set-up reads the same input on every rank and fails the same way everywhere; the
     * agreement keeps a rank that did fail from being waited for. */
    zl_status st = zl_comm_agree(run->comm, set_up(run, a));
    if (st != ZL_OK) return run->failed_at = ZL_RUN_SETUP, st;
    run->options.dp = run->comm;
    if (run->pipe_size > 1 || run->tp_size > 1) { /* the grid's groups (comm/topology.h) */
        zl_topology t;
        int r = run->comm->rank;
        if ((st = zl_topology_init(&t, run->comm->size, run->pipe_size, run->tp_size)) == ZL_OK)
            st = zl_comm_split(run->comm, zl_topology_group_color(&t, ZL_AXIS_PIPE, r),
                               zl_topology_coords(&t, r).pipe, "pipe", &run->pipe);
        if (st == ZL_OK)
            st = zl_comm_split(run->comm, zl_topology_group_color(&t, ZL_AXIS_DATA, r),
                               zl_topology_coords(&t, r).data, "data", &run->data);
        if (st == ZL_OK)
            st = zl_comm_split(run->comm, zl_topology_group_color(&t, ZL_AXIS_MODEL, r),
                               zl_topology_coords(&t, r).model, "model", &run->tp);
        if (st == ZL_OK) /* the ranks of one data-parallel index: pipe x model */
            st = zl_comm_split(run->comm, zl_topology_coords(&t, r).data, r, "model-parallel",
                               &run->mp);
        if (st != ZL_OK) return run->failed_at = ZL_RUN_SETUP, st;
        /* where each axis' members sit, for the simulator's links: model innermost */
        zl_comm_set_stride(run->tp, 1);
        zl_comm_set_stride(run->data, run->tp_size);
        zl_comm_set_stride(run->pipe, run->tp_size * run->dp_size);
        run->options.dp = run->data;
        run->options.pipe = run->pipe;
        run->options.tp = run->tp;
        run->options.mp = run->mp;
    }
    if ((st = device_comms(run)) != ZL_OK) return run->failed_at = ZL_RUN_SETUP, st;
    run->options.host = &run->host;
    const zl_engine_options *o = &run->options;

    /* Before any allocation: a run that cannot fit its device budget or this machine's
     * memory is refused now, not after minutes of allocating (preflight.c). Checked,
     * though the loader has bounded W x B x T by the data set: B and T come from the user.
     * The data set's bytes were checked when it was allocated. */
    size_t ntok = 0, io_nbytes = 0, host_nbytes = 0;
    size_t data_nbytes = run->dataset->ntokens * sizeof(int32_t);
    if (__builtin_mul_overflow((size_t)o->micro_batch_size, (size_t)o->seq_len, &ntok) ||
        /* the engine's host staging of a micro-batch: inputs, targets */
        __builtin_mul_overflow(ntok, 2 * sizeof(int32_t), &io_nbytes) ||
        __builtin_add_overflow(io_nbytes, data_nbytes, &host_nbytes))
        return run->failed_at = ZL_RUN_PREFLIGHT,
               zl_errorf(ZL_ERR_INVALID, "micro-batch %d x sequence %d tokens is too large",
                         o->micro_batch_size, o->seq_len);
    run->tokens_per_micro = ntok;
    if (!a->no_preflight) {
        zl_run_preflight pre = {
            .model = &run->model, .options = o, .device_memory = run->device_memory,
            .device_name = run->card ? run->card->display : NULL, .gpu = run->card != NULL,
            .host_nbytes = host_nbytes, .held_nbytes = data_nbytes, .dp_size = run->dp_size,
            .pipe_stages = run->pipe_size, .tp_size = run->tp_size};
        if ((st = zl_run_preflight_check(run->comm, &pre)) != ZL_OK)
            return run->failed_at = ZL_RUN_PREFLIGHT, st;
    }
    configure_comms_logger(run);

    /* Out of memory can hit one rank and not another: each rank has its own message. */
    run->failed_at = ZL_RUN_ENGINE;
    /* The engine's collectives run on the simulated card's links (the checks above did not). */
    if (run->has_sim) {
        zl_comm_set_sim(run->comm, &run->sim);
        if (run->pipe) zl_comm_set_sim(run->pipe, &run->sim);
        if (run->data) zl_comm_set_sim(run->data, &run->sim);
        if (run->tp) zl_comm_set_sim(run->tp, &run->sim);
        if (run->mp) zl_comm_set_sim(run->mp, &run->sim);
        if (run->device_world) zl_comm_set_sim(run->device_world, &run->sim);
    }
    if ((st = zl_engine_create(&run->engine, &run->model, o, &run->device)) != ZL_OK) return st;
    run->failed_at = ZL_RUN_OK;
    return ZL_OK;
}

zl_status zl_run_init(zl_run *run, const zl_run_options *a)
{
    memset(run, 0, sizeof *run);
    run->interrupt = a->interrupt;
    zl_status st = build(run, a);
    if (st != ZL_OK) {
        zl_run_phase at = run->failed_at;
        zl_run_free(run);
        run->failed_at = at;
    }
    return st;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What zl_run_step gives the engine's executor: the loader as its batch source (which
 * also reports a signal to stop), and an observer that names the phase for a collective
 * timeout and times the instructions. */
typedef struct run_step {
    zl_run *run;
    int micro;               /* micro-batches loaded so far */
    const zl_instr *running; /* the instruction under way (NULL: none yet) */
    double since;            /* when it started */
} run_step;

static zl_status run_next_batch(void *ctx, int32_t *inputs, int32_t *targets)
{
    run_step *rs = ctx;
    zl_run *run = rs->run;
    /* A signal stops training here; the executor's agreement stops every rank alike. */
    if (run->interrupt && *run->interrupt)
        return zl_errorf(ZL_ERR_INTERRUPTED, "interrupted by a signal");
    zl_loader_next(&run->loader, inputs, targets);
    return ZL_OK;
}

static void run_observe(void *ctx, const zl_instr *in)
{
    run_step *rs = ctx;
    zl_run *run = rs->run;
    double now = wall_now();
    if (rs->running) { /* the last instruction's wall time, by phase (loading: none) */
        double dt = now - rs->since;
        switch (rs->running->kind) {
        case ZL_LOAD_MICRO_BATCH: break;
        case ZL_FORWARD_PASS: run->wall_forward_s += dt; break;
        case ZL_BACKWARD_PASS: run->wall_backward_s += dt; break;
        default: run->wall_step_s += dt; break; /* the reductions and the optimizer */
        }
    }
    rs->running = in;
    rs->since = now;
    if (in && in->kind == ZL_LOAD_MICRO_BATCH) /* named in a collective timeout's message */
        zl_comm_set_phase(run->comm, "step %ld of %ld, micro-step %d of %d", run->step, run->steps,
                          ++rs->micro, run->options.gradient_accumulation_steps);
}

zl_status zl_run_step(zl_run *run, float *loss)
{
    run->failed_here = false;
    run->wall_forward_s = run->wall_backward_s = run->wall_step_s = 0;
    run->step++;
    if (run->has_sim) {
        run->sim.timeline.num_spans = 0; /* the trace keeps the last step */
        run->step_mark = run->sim.timeline;
    }
#ifdef ZL_HAVE_CUDA
    if (run->real_trace) zl_cuda_trace_reset(run->device.ops); /* likewise, real time */
#endif
    /* One optimizer step as the engine's schedule (engine/schedule.h), run by its executor. */
    run_step rs = {run, 0, NULL, 0};
    zl_engine_set_instr_observer(run->engine, run_observe, &rs);
    zl_status st = zl_engine_train_batch(run->engine, run_next_batch, &rs, loss);
    zl_engine_set_instr_observer(run->engine, NULL, NULL);
    /* Failures past the loading (the minimum loss scale, a broken communicator) are
     * every rank's already; this agreement only makes sure of it. */
    zl_status agreed = zl_comm_agree(run->comm, st); /* untimed: not training */
    if (agreed != ZL_OK) run->failed_here = st != ZL_OK && zl_engine_failed_here(run->engine);
    /* (zl_comm_agree keeps a failed rank's own message; the others name it.) */
    return agreed;
}

zl_status zl_run_save(zl_run *run, const char *dir, const char *tag)
{
    /* The resolved config, as `zerolab config --json` prints it. */
    char *config = NULL;
    size_t config_len = 0;
    FILE *mem = open_memstream(&config, &config_len);
    if (mem) {
        if (zl_config_print_json(run->config, mem) != ZL_OK) config_len = 0;
        fclose(mem);
    }
    char client[256];
    snprintf(client, sizeof client,
             "{\"data_sampler\": {\"position_tokens\": %zu, \"epoch\": %llu, \"seq_len\": %d}}",
             zl_loader_position(&run->loader), (unsigned long long)zl_loader_epoch(&run->loader),
             run->options.seq_len);
    zl_engine_save_args a = {
        .dir = dir,
        .tag = tag,
        .client_state = client,
        .ds_config = config && config_len ? config : NULL,
        .tag_validation = run->config->checkpoint.tag_validation,
        .node_local = run->config->checkpoint.use_node_local_storage,
    };
    zl_status st = zl_engine_save_checkpoint(run->engine, &a);
    free(config);
    return st;
}

/* The data's position from a checkpoint's client state (absent in one imported from
 * elsewhere: the data starts at its beginning). */
static zl_status seek_data(zl_run *run, const char *client)
{
    if (!client) return ZL_OK;
    json_error_t err;
    json_t *c = json_loads(client, 0, &err);
    const json_t *ds = json_object_get(c, "data_sampler");
    zl_status st = ZL_OK;
    if (ds) {
        const json_t *pos = json_object_get(ds, "position_tokens"), *ep = json_object_get(ds, "epoch");
        if (!json_is_integer(pos) || !json_is_integer(ep) || json_integer_value(pos) < 0 ||
            json_integer_value(ep) < 0)
            st = zl_errorf(ZL_ERR_FORMAT, "the checkpoint's data_sampler needs non-negative "
                           "\"position_tokens\" and \"epoch\"");
        else if ((st = zl_loader_seek(&run->loader, (size_t)json_integer_value(pos),
                                      (uint64_t)json_integer_value(ep))) != ZL_OK)
            st = zl_error_wrap(ZL_ERR_INVALID, "the checkpoint's data position does not fit this "
                               "run's data (resume with the data it was trained on, --data): ");
    }
    json_decref(c);
    return st;
}

zl_status zl_run_load(zl_run *run, const char *dir, const char *tag, zl_engine_loaded *loaded)
{
    zl_engine_loaded own;
    if (!loaded) loaded = &own;
    zl_engine_load_args a = {
        .dir = dir,
        .tag = tag,
        .universal_latest = run->config->checkpoint.load_universal,
    };
    zl_status st = zl_engine_load_checkpoint(run->engine, &a, loaded);
    if (st == ZL_OK) st = zl_comm_agree(run->comm, seek_data(run, loaded->client_state));
    if (st == ZL_OK && loaded->optimizer_loaded) run->step = (long)zl_engine_global_steps(run->engine);
    if (loaded == &own) free(own.client_state);
    return st;
}

double zl_run_step_flops(const zl_run *run)
{
    const zl_engine_options *o = &run->options;
    return 3.0 * zl_model_whole_forward_flops(zl_engine_model(run->engine), o->micro_batch_size, o->seq_len) *
           o->gradient_accumulation_steps * run->dp_size; /* every stage's layers, once per replica */
}

void zl__run_trace_spans(zl_timeline *tl, const zl_cuda_span *spans, size_t num_spans,
                         size_t dropped)
{
    for (size_t i = 0; i < num_spans; i++) {
        /* In issue order on one stream, so each starts at or after the last one's end: its
         * own start is the `ready` that places it where it ran. */
        double seconds = spans[i].end > spans[i].start ? spans[i].end - spans[i].start : 0.0;
        zl_timeline_run(tl, ZL_STREAM_COMPUTE, spans[i].name, seconds, spans[i].start);
    }
    tl->dropped_spans += dropped;
}

/* This rank's real trace of the last step (cuda without a card) into *tl, a recording
 * timeline. */
static zl_status real_timeline(zl_run *run, zl_timeline *tl)
{
    zl_timeline_init(tl, true);
    tl->measured = true;
#ifdef ZL_HAVE_CUDA
    zl_cuda_span *spans = malloc(ZL_CUDA_TRACE_MAX_SPANS * sizeof *spans);
    if (!spans) return zl_errorf(ZL_ERR_NOMEM, "--trace: no host memory to read the CUDA events");
    size_t num = 0, dropped = 0;
    zl_status st = zl_cuda_trace_read(run->device.ops, spans, ZL_CUDA_TRACE_MAX_SPANS, &num, &dropped);
    if (st == ZL_OK) zl__run_trace_spans(tl, spans, num, dropped);
    free(spans);
    return st;
#else
    (void)run;
    return ZL_OK;
#endif
}

zl_status zl_run_write_trace(zl_run *run, const char *path)
{
    zl_comm *world = run->comm;
    zl_sim *clock = zl_comm_set_sim(world, NULL); /* writing the trace is not training */
    zl_status st = ZL_OK;
    /* the simulated timeline, or the real one (cuda without a card: real CUDA event times) */
    zl_timeline real;
    bool traced = run->has_sim || run->real_trace;
    if (!traced)
        st = zl_errorf(ZL_ERR_INVALID, "a trace needs a simulated device (--device NAME or "
                       "--cluster SPEC): the trace shows simulated time");
    else if (!run->has_sim)
        st = real_timeline(run, &real); /* every rank reads its GPU's before any writes */
    const zl_timeline *tl = run->has_sim ? &run->sim.timeline : &real;
    if (traced) st = zl_comm_agree(world, st);
    bool write = traced && st == ZL_OK; /* the same on every rank: each reaches each barrier */
    for (int r = 0; r < world->size && write; r++) {
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
    if (traced && !run->has_sim) zl_timeline_free(&real);
    zl_comm_set_sim(world, clock);
    return zl_comm_agree(world, st);
}

void zl_run_free(zl_run *run)
{
    zl_engine_destroy(run->engine);
    run->engine = NULL;
    if (run->has_sim && run->comm) zl_comm_set_sim(run->comm, NULL); /* it may outlive the run */
    zl_comm_destroy(run->device_world); /* before the world it wraps */
    run->device_world = NULL;
    zl_comm_destroy(run->mp);
    zl_comm_destroy(run->tp);
    zl_comm_destroy(run->data);
    zl_comm_destroy(run->pipe);
    run->data = run->pipe = run->tp = run->mp = NULL;
    /* The devices hold nothing once the engine is gone (their ledgers are plain structs);
     * the host device goes after the engine, which held it. */
    if (run->has_host) run->options.host = NULL;
    run->has_host = false;
    if (run->has_sim) zl_sim_free(&run->sim);
    run->has_sim = false;
    zl_dataset_free(&run->own_dataset);
    run->dataset = NULL;
    if (run->config == &run->own_config) zl_config_free(&run->own_config);
    run->config = NULL;
    if (run->own_comm && run->comm) zl_comm_destroy(run->comm);
    run->own_comm = false;
    run->comm = NULL;
    run->card = NULL;
}
