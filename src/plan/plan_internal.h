/* Internal to src/plan: one stage's plan, and the timing of its last step's instructions,
 * which the pipeline planner (plan_pipe.c) lays out across the stages. */
#ifndef ZL_PLAN_PLAN_INTERNAL_H
#define ZL_PLAN_PLAN_INTERNAL_H

#include <stdbool.h>

#include "engine/schedule.h"
#include "plan/plan.h"
#include "sim/sim.h"

/* The last step's instructions as the executor ran them on the simulated clock:
 * instrs[i] ran from start[i] to end[i] (seconds; waits included). */
typedef struct zl__plan_timing {
    zl_instr *instrs;
    double *start, *end;
    int n, cap;
    bool failed;  /* out of host memory while recording */
    zl_sim *sim;  /* the clock, while recording */
} zl__plan_timing;

void zl__plan_timing_free(zl__plan_timing *t);

/* zl_plan_run for one stage (req->pipe_stage >= 0, or no pipeline); timing (may be NULL;
 * needs req->cluster) receives the last step's instructions. */
zl_status zl__plan_stage(const zl_plan_request *req, zl_plan_result *res, zl__plan_timing *timing);

/* zl_plan_run with req->pipe_stage -1: every stage, and the step across them. */
zl_status zl__plan_pipeline(const zl_plan_request *req, zl_plan_result *res);

#endif
