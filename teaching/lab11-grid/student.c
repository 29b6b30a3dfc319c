/* Lab 11: your code. Each function's contract is in student.h. Replace each LAB_TODO();
 * with your code; `make lab11-check` grades them, `make lab11` runs the demo with them. */
#include <string.h>

#include "lab.h"
#include "student.h"

int student_coords(int pp, int dp, int tp, int rank, int *pipe, int *data, int *model)
{
    /* Hint: rank = (pipe * dp + data) * tp + model. Undo it with / and %. */
    (void)pp, (void)dp, (void)tp, (void)rank, (void)pipe, (void)data, (void)model;
    LAB_TODO();
}

int student_group(int pp, int dp, int tp, int rank, zl_axis axis, int *ranks, int *n)
{
    /* Hints: take rank's coordinates, then vary the one coordinate of `axis` from 0 to its
     * size - 1, keeping the other two; the ranks come out increasing. */
    (void)pp, (void)dp, (void)tp, (void)rank, (void)axis, (void)ranks, (void)n;
    LAB_TODO();
}

int student_plan_one(const lab11_problem *pb, lab11_candidate *c)
{
    /* Hints: zl_plan_request q; memset it to 0. q.model, q.options = pb->base with the
     * candidate's zero_stage, micro_batch_size, gradient_accumulation_steps. Which
     * world_size does the plan want: all the GPUs, or the data-parallel ranks (plan.h)?
     * q.tp_size, q.pipe_stages (and q.pipe_stage = -1: every stage, the worst reported);
     * the card's memory (pb->cluster->device->memory), pb->host_memory, q.gpu = true,
     * q.cluster. zl_plan_run returns ZL_ERR_OOM for "does not fit": that is an answer. */
    (void)pb, (void)c;
    LAB_TODO();
}

int student_search(const lab11_problem *pb, lab11_candidate *cands, int cap, int *n, int *winner)
{
    /* Hints: four nested loops in the order student.h gives; skip what does not divide;
     * zl_cluster_size(pb->cluster) is the GPU count. Keep the best fitting one as you go
     * (strictly faster replaces it). */
    (void)pb, (void)cands, (void)cap, (void)n, (void)winner;
    LAB_TODO();
}
