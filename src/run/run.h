/* A training run, assembled: from a DeepSpeed config, a model, data and a few options to
 * the devices, simulator, engine and loader that train, with the refusal of every feature
 * zerolab does not run yet and the up-front memory plan (src/run/preflight.h) done first.
 * `zerolab train`, the documented example, bench and tests build their runs here; none
 * wires config, model, device and engine by hand.
 *
 *   zl_run_options o;
 *   zl_run_options_init(&o);
 *   o.config_text = "{\"train_micro_batch_size_per_gpu\": 8}";
 *   o.model = "lab";
 *   zl_run run;
 *   if (zl_run_init(&run, &o) != ZL_OK) { puts(zl_last_error()); zl_run_free(&run); ... }
 *   for (long s = 1; s <= run.steps; s++) zl_run_step(&run, &loss);
 *   zl_run_free(&run);
 *
 * Handles are explicit and nothing is global: the caller owns the zl_run struct (do not
 * copy or move it once initialised: the simulator points into it) and the communicator
 * it passes; the run owns everything it built (config, data set, devices, simulator,
 * engine, batch buffers). Every failure is a status with one message (zl_last_error()).
 *
 * Collective: with a communicator of W ranks, every rank calls zl_run_init and
 * zl_run_step, and every rank gets the same status (a failure on one rank is agreed). */
#ifndef ZL_RUN_RUN_H
#define ZL_RUN_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "comm/comm.h"
#include "config/config.h"
#include "core/device.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/engine.h"
#include "model/gpt_config.h"
#include "sim/presets.h"
#include "sim/sim.h"

#define ZL_RUN_SEQ_LEN_MODEL (-1)

/* What a run is made from. zl_run_options_init gives the defaults; a field left at its
 * default takes the config's "zerolab" block, then the built-in default. Messages name
 * the command-line flags of `zerolab train`, which set the fields of the same names. */
typedef struct zl_run_options {
    /* The DeepSpeed config, one of (checked in this order): */
    const zl_config *config;   /* already resolved for the communicator's size (borrowed:
                                * it must outlive the run) */
    const char *config_path;   /* a JSON file */
    const char *config_text;   /* JSON text, named config_name in messages */
    const char *config_name;   /* NULL: "<string>" */
    zl_config_fill fill;       /* fills "auto" as the HF Trainer does (config/config.h) */

    /* The model: a resolved description, or a preset name / model JSON file; neither:
     * the config's zerolab.model, else "lab". */
    const zl_gpt_config *model_config;
    const char *model;

    /* The data: a data set (borrowed), or a file (text as bytes, or an llm.c shard);
     * neither: the config's zerolab.data, else the built-in corpus. */
    const zl_dataset *dataset;
    const char *data;

    long steps;          /* optimizer steps (0: zerolab.steps, else 100) */
    long seed;           /* parameter initialisation (< 0: zerolab.seed, else 1337) */
    int checkpoint_activations; /* activation checkpointing, layers per segment (0: the
                          * config's pipeline.activation_checkpoint_interval) */
    /* Pipeline stages (--pipeline-stages; 0: the config's pipeline.stages, "auto" or
     * absent: 1). The world is then a pipe x data grid (comm/topology.h): rank r is stage
     * r / (W / stages) of data-parallel replica r % (W / stages), the batch triad is
     * resolved for W / stages data-parallel ranks, and the layers are cut by the config's
     * pipeline.partition. */
    int pipeline_stages;
    /* Tensor parallelism (--tensor-parallel; 0: the config's tensor_parallel.autotp_size,
     * 0 or 1: none): the grid becomes pipe x data x model (model innermost, so a
     * tensor-parallel group is neighbouring ranks, one node's), each block's heads and MLP
     * units split over the model axis (Megatron-LM's layers). */
    int tensor_parallel;
    /* Sequence parallelism with tensor parallelism (--sequence-parallel): the stream between
     * the blocks split over the tensor-parallel group by token rows (engine.h). */
    bool sequence_parallel;
    /* The pipeline's schedule (--pipeline-schedule): DeepSpeed's 1F1B (the default) or
     * GPipe (all forwards, then all backwards: M micro-batches' activations per stage; for
     * teaching). */
    bool pipeline_gpipe;
    int seq_len;         /* tokens per sequence (0: min(max_seq_len, 128);
                          * ZL_RUN_SEQ_LEN_MODEL: the model's max_seq_len) */
    const char *backend; /* "ref", "cpu", "cuda" (NULL: zerolab.backend, else "cpu") */
    int threads;         /* OpenMP threads (0: leave the process's setting) */
    /* The GPU each rank impersonates: a device preset (one node of W), or a cluster spec
     * of W GPUs; neither: the config's zerolab.cluster, then zerolab.device; none: no
     * simulated card (an unlimited device, no simulated clock). */
    const char *device, *cluster;
    size_t device_memory; /* each rank's budget in bytes (0: the card's memory, or none) */
    /* Each rank's host device budget in bytes (pinned host memory, DeepSpeed's offload
     * target; 0: unlimited). Unlimited by default: the node's memory is shared by its
     * ranks, and on the CPU backends by their accelerators too, and the preflight
     * (preflight.h) already refuses, before any allocation, a run whose ranks together
     * need more than the machine has (plan peak + data + batches, times the ranks on the
     * node); a per-rank split of that figure would refuse runs the node can hold. A budget
     * of its own matters once offload pins large state there: then set this. */
    size_t host_memory;
    const char *trace;    /* a Chrome trace will be written here (zl_run_write_trace): the
                           * simulator keeps spans, and the path is checked up front */
    bool no_preflight;    /* skip the up-front plan of device and host memory */
    zl_comm *comm;        /* the data-parallel world (borrowed); NULL: one rank */
    /* Set (by a signal handler) to stop: zl_run_step ends with ZL_ERR_INTERRUPTED at the
     * next micro-step, on every rank alike. NULL: none. */
    const volatile sig_atomic_t *interrupt;
} zl_run_options;

/* Where zl_run_init failed, for the caller's report: set-up and preflight failures are
 * agreed and worded alike on every rank (report them once); the engine's allocation can
 * fail on one rank and not another, so every rank has its own message then. */
typedef enum zl_run_phase {
    ZL_RUN_OK = 0,
    ZL_RUN_SETUP,     /* config, model, data, loader, cluster, device */
    ZL_RUN_PREFLIGHT, /* the plan of device and host memory refused the run */
    ZL_RUN_ENGINE,    /* zl_engine_create (out of memory on some rank) */
} zl_run_phase;

/* A run. Read its fields; change none of them. */
typedef struct zl_run {
    const zl_config *config;    /* the resolved config (owned unless options.config) */
    zl_gpt_config model;        /* the model's shape */
    zl_engine_options options;  /* what the engine got (dp: the communicator) */
    const char *backend;        /* "ref", "cpu", "cuda" */
    long steps;                 /* optimizer steps asked for */
    long steps_per_print;       /* the config's steps_per_print, else 10 */
    long step;                  /* optimizer steps taken by zl_run_step */
    const zl_dataset *dataset;  /* the data (owned unless options.dataset) */
    zl_loader loader;           /* this rank's micro-batches */
    zl_comm *comm;              /* the world: options.comm, or the run's own single rank */
    /* The grid: pipeline stages, tensor-parallel size and the data-parallel size (comm's
     * size / (pipe_size x tp_size)), and this rank's groups along each axis, and mp, the
     * ranks sharing its data-parallel index (the engine's options.pipe, tp, dp and mp;
     * owned, NULL without stages or tensor parallelism: then options.dp is comm). */
    int pipe_size, tp_size, dp_size;
    zl_comm *pipe, *data, *tp, *mp;
    /* The world's device communicator (run.c device_comm; owned), where it is not comm
     * itself: options.dp without a grid. NULL: comm is. */
    zl_comm *device_world;
    /* The simulated card (NULL: none), the cluster of the run's ranks, and the clock. */
    const zl_device_preset *card;
    zl_cluster cluster;
    zl_sim sim;
    zl_timeline step_mark;      /* the clocks when the last zl_run_step began (with a card) */
    zl_device device;           /* the accelerator: budget and ledger */
    size_t device_memory;       /* its budget (0: none) */
    /* The rank's host device (pinned host memory, "rank R host", the accelerator's
     * backend, budget options.host_memory): what the engine gets as options.host, to stage
     * micro-batches in and copy them to the accelerator (core/device.h). */
    zl_device host;
    zl_engine *engine;          /* the engine (owned) */
    size_t tokens_per_micro;    /* B * T */
    zl_run_phase failed_at;     /* after a failed zl_run_init: where (else ZL_RUN_OK) */
    bool failed_here;           /* after a failed zl_run_step: this rank's own failure (its
                                 * message is zl_last_error()), not another rank's */
    /* The last zl_run_step's wall-clock seconds by phase, summed over its micro-steps:
     * forward, backward and optimizer step (DeepSpeed's wall_clock_breakdown timers; the
     * loader and the ranks' agreement are in none). What bench/zl_bench.c reports. */
    double wall_forward_s, wall_backward_s, wall_step_s;
    /* internal */
    zl_dataset own_dataset;
    zl_config own_config;
    bool own_comm, has_device, has_host, has_sim;
    bool real_trace; /* cuda without a card: device.ops is the traced table (cuda.h) */
    const volatile sig_atomic_t *interrupt;
} zl_run;

/* The defaults: every field unset, seed < 0 (the config's, else 1337). */
void zl_run_options_init(zl_run_options *o);

/* Assemble the run on every rank of options->comm: load and resolve the config (filling
 * "auto"), refuse what the engine does not run yet (zl_run_check_config), resolve the
 * model, load the data, make the loader, the simulated cluster and card, the device with
 * its budget, the host device and the simulator; then plan the run's device and host memory (preflight.h)
 * and refuse one that cannot fit; then create the engine. On failure everything built is
 * released, run->failed_at says where, and zl_run_free is still safe. Collective. */
zl_status zl_run_init(zl_run *run, const zl_run_options *options);

/* The first stage of zl_run_init alone, on this process (no communicator, device or
 * data): the config loaded and resolved for world_size ranks, the feature check
 * (zl_run_check_config), the model, and the engine's options (run->options, dp NULL),
 * backend and steps. What `zerolab plan` shares with `zerolab train`, so that both read a
 * config the same way and refuse the same configs with the same messages. Free with
 * zl_run_free; on failure it is already released (failed_at ZL_RUN_SETUP). */
zl_status zl_run_configure(zl_run *run, const zl_run_options *options, int world_size);

/* Refuse what a config asks that zerolab does not run yet (zl_engine_check_config: by
 * name, with a hint), and warn about observers (profilers, monitors) whose output will be
 * missing. train and plan both call it, so they refuse the same configs alike. */
zl_status zl_run_check_config(const zl_config *cfg);

/* One optimizer step: zl_engine_train_batch over gradient_accumulation_steps
 * micro-batches from the loader (the engine's schedule, run by its executor). *loss: the
 * mean of this rank's micro-batch losses (not averaged over ranks: zl_engine_dp_mean does
 * that, collectively). The ranks agree at every LoadMicroBatch and at the end; on failure
 * run->failed_here says whether this rank failed itself. ZL_ERR_INTERRUPTED when
 * options.interrupt was set, at the next micro-batch's loading. With a card the trace
 * keeps only this step's spans, and run->step_mark holds the clocks at its start.
 * Collective. */
zl_status zl_run_step(zl_run *run, float *loss);

/* Save the run (DeepSpeed's save_checkpoint, engine/engine.h): the engine's state, with
 * the data's position ("data_sampler": tokens consumed, epoch) as client state and the
 * resolved config as ds_config; the config's "checkpoint" block (tag_validation,
 * use_node_local_storage) applies. tag NULL: "global_step<N>". Collective. */
zl_status zl_run_save(zl_run *run, const char *dir, const char *tag);

/* Resume the run from a checkpoint of any data-parallel size, ZeRO stage and precision
 * (zl_engine_load_checkpoint): the engine's state, the data's position (in tokens of the
 * stream, so the same samples come next whatever the world size), and run->step (the
 * optimizer steps taken, so that `steps` counts the whole run's steps, as DeepSpeed's
 * global_steps does). tag NULL: the tag `latest` names. `loaded` may be NULL.
 * Collective. */
zl_status zl_run_load(zl_run *run, const char *dir, const char *tag, zl_engine_loaded *loaded);

/* Model FLOPs of one optimizer step over all ranks (forward and backward: 3x forward). */
double zl_run_step_flops(const zl_run *run);

/* Write the simulated timeline as a Chrome trace: each rank appends its spans in turn
 * (rank 0 creates the file, the last rank closes the JSON). Needs a card, or the cuda
 * backend run with options.trace: then the last step's real CUDA event times (its compute
 * stream's ops, as cuda.h's traced table recorded them). Collective. */
zl_status zl_run_write_trace(zl_run *run, const char *path);

/* A real trace's spans (cuda.h's zl_cuda_span, seconds since the step began) onto tl's
 * compute stream where they ran; `dropped` (past the records' cap) added to its dropped
 * spans. Pure: the tests give it made-up spans. */
struct zl_cuda_span;
void zl__run_trace_spans(zl_timeline *tl, const struct zl_cuda_span *spans, size_t num_spans,
                         size_t dropped);

/* Release everything the run built. Safe on a zeroed, failed or already freed run. */
void zl_run_free(zl_run *run);

/* Can `path` (given by `flag`, for messages) be written? Asked before a long run, not
 * after it: opened for writing without truncating it (O_NONBLOCK, so a FIFO without a
 * reader fails instead of blocking) and removed again if this check created it.
 * ZL_ERR_IO with the reason. zl_run_init checks --trace with it; plan does too. */
zl_status zl_run_check_writable(const char *path, const char *flag);

#endif
