/* Lab 11: the reference solution (what an instructor shows afterwards). */
#include <string.h>

#include "lab.h"
#include "../lab11-grid/student.h"

/* rank = (pipe * dp + data) * tp + model: model innermost. */
int student_coords(int pp, int dp, int tp, int rank, int *pipe, int *data, int *model)
{
    (void)pp;
    *model = rank % tp;
    *data = (rank / tp) % dp;
    *pipe = rank / (tp * dp);
    return 0;
}

int student_group(int pp, int dp, int tp, int rank, zl_axis axis, int *ranks, int *n)
{
    int p, d, m;
    student_coords(pp, dp, tp, rank, &p, &d, &m);
    int size = axis == ZL_AXIS_PIPE ? pp : axis == ZL_AXIS_DATA ? dp : tp;
    for (int i = 0; i < size; i++) {
        int pi = axis == ZL_AXIS_PIPE ? i : p, di = axis == ZL_AXIS_DATA ? i : d,
            mi = axis == ZL_AXIS_MODEL ? i : m;
        ranks[i] = (pi * dp + di) * tp + mi;
    }
    *n = size;
    return 0;
}

/* The plan runs rank 0 of ONE data-parallel group (world_size = dp), of one tensor-parallel
 * group (tp_size) and every pipeline stage (pipe_stages, pipe_stage -1). */
int student_plan_one(const lab11_problem *pb, lab11_candidate *c)
{
    static zl_plan_result r; /* large: six ledgers */
    zl_plan_request q;
    memset(&q, 0, sizeof q);
    q.model = pb->model;
    q.options = pb->base;
    q.options.zero_stage = c->zero;
    q.options.micro_batch_size = c->micro;
    q.options.gradient_accumulation_steps = c->gas;
    q.world_size = c->dp;
    q.tp_size = c->tp;
    q.pipe_stages = c->pp;
    q.pipe_stage = -1;
    q.device_memory = pb->cluster->device->memory;
    q.host_memory = pb->host_memory;
    q.device_name = pb->cluster->device->display;
    q.gpu = true;
    q.cluster = pb->cluster;
    zl_status st = zl_plan_run(&q, &r);
    if (st != ZL_OK && st != ZL_ERR_OOM) return (int)st;
    c->fits = st == ZL_OK;
    c->peak_gib = (double)zl_plan_device_ledger(&r)->budgeted_peak_nbytes / (1 << 30);
    c->step_s = r.step_seconds;
    c->tokens_per_s = r.tokens_per_second;
    return 0;
}

int student_search(const lab11_problem *pb, lab11_candidate *cands, int cap, int *n, int *winner)
{
    static const int sizes[] = {1, 2, 4, 8};
    int W = zl_cluster_size(pb->cluster), k = 0, best = -1;
    for (int ti = 0; ti < 4; ti++)
        for (int pi = 0; pi < 4; pi++) {
            int tp = sizes[ti], pp = sizes[pi];
            if (W % (tp * pp) || pb->model.num_layers % pp) continue;
            int dp = W / (tp * pp);
            if (pb->global_batch % dp) continue;
            for (int zero = 0; zero <= (pp > 1 ? 1 : 3); zero++)
                for (int mi = 0; mi < 4; mi++) {
                    int micro = sizes[mi];
                    if ((pb->global_batch / dp) % micro) continue;
                    if (k == cap) return -1;
                    lab11_candidate *c = &cands[k];
                    *c = (lab11_candidate){tp, pp, dp, zero, micro, pb->global_batch / (dp * micro),
                                           false, 0, 0, 0};
                    int rc = student_plan_one(pb, c);
                    if (rc) return rc;
                    if (c->fits && (best < 0 || c->tokens_per_s > cands[best].tokens_per_s))
                        best = k;
                    k++;
                }
        }
    *n = k;
    *winner = best;
    return 0;
}
