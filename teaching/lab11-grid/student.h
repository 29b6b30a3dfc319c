/* Lab 11: the 3-D grid and a plan search. The functions you write (student.c).
 *
 * A world of pp x dp x tp ranks is laid out as DeepSpeed's PipeModelDataParallelTopology
 * and Megatron do (src/comm/topology.h): pipe outermost, model (tensor parallel) innermost,
 * so the ranks of one tensor-parallel group are neighbours, on one node.
 *
 * The search asks zerolab's planner (src/plan/plan.h: zl_plan_run, what `zerolab plan`
 * calls) about each setup: the engine runs on the meta backend as rank 0 of a virtual
 * world, so the memory is the real engine's, byte for byte, and the step is simulated. */
#ifndef LAB11_STUDENT_H
#define LAB11_STUDENT_H

#include <stdbool.h>

#include "lab.h"

/* The coordinates of `rank` in a pp x dp x tp grid. */
int student_coords(int pp, int dp, int tp, int rank, int *pipe, int *data, int *model);

/* The ranks of `rank`'s group along `axis` (ZL_AXIS_PIPE: same data and model coordinates;
 * ZL_AXIS_DATA: same pipe and model; ZL_AXIS_MODEL: same pipe and data), in increasing
 * order, into ranks[] (room for 64), and *n their count. */
int student_group(int pp, int dp, int tp, int rank, zl_axis axis, int *ranks, int *n);

/* The question: which setup of `model` fits and trains fastest on `cluster`? */
typedef struct lab11_problem {
    zl_gpt_config model;       /* the model (e.g. a 6.7B GPT) */
    zl_engine_options base;    /* the engine's options from the config (bf16, AdamW,
                                * seq_len, checkpoint_interval...): every candidate starts
                                * from a copy of them */
    const zl_cluster *cluster; /* nodes x GPUs per node of one card */
    int global_batch;          /* sequences per optimizer step, whatever the setup:
                                * micro x accumulation x dp */
    size_t host_memory;        /* bytes of host memory per rank */
} lab11_problem;

/* One setup and what the plan says of it. */
typedef struct lab11_candidate {
    int tp, pp, dp, zero, micro, gas;  /* the choices (dp = GPUs / (tp x pp), gas =
                                        * global_batch / (dp x micro)) */
    bool fits;                         /* the plan's verdict (status ZL_OK, not ZL_ERR_OOM) */
    double peak_gib;                   /* the worst stage's device peak, GiB (the budgeted
                                        * peak: zl_plan_device_ledger(r)->budgeted_peak_nbytes) */
    double step_s, tokens_per_s;       /* simulated: result step_seconds, tokens_per_second */
} lab11_candidate;

/* Plan one setup: fill a zl_plan_request for candidate c (its tp, pp, dp, zero, micro, gas
 * set) and run zl_plan_run; write c's fits, peak_gib, step_s, tokens_per_s. Return 0, or
 * the plan's status when it failed other than by not fitting. */
int student_plan_one(const lab11_problem *pb, lab11_candidate *c);

/* The search: every candidate, in this order of loops (outermost first):
 *   tp in {1, 2, 4, 8}, pp in {1, 2, 4, 8} (both dividing the GPUs together, pp dividing
 *   the layers), zero in 0..3 (with pp > 1 only 0 and 1: DeepSpeed's pipelines take ZeRO
 *   0-1), micro in {1, 2, 4, 8} (dividing global_batch / dp),
 * each planned with student_plan_one, into cands[0 .. *n-1] (room for cap); *winner the
 * index of the fastest (tokens/s) that fits (the first of equals), -1 if none fits. */
int student_search(const lab11_problem *pb, lab11_candidate *cands, int cap, int *n, int *winner);

#endif
