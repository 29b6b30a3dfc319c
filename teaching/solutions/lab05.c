/* Lab 05, reference solution: three ways to average gradients over data-parallel ranks.
 *
 * naive     n blocking allreduces: n latencies (2(N-1) alpha each in the ring model), all
 *           after backward.
 * flat      one allreduce of everything: one latency, but all the bytes still after
 *           backward (DeepSpeed stage 0/1 at the boundary; Horovod's "tensor fusion").
 * bucketed  PyTorch DDP / DeepSpeed overlap_comm: buckets filled in backward's order,
 *           each reduced asynchronously while backward computes the earlier layers; only
 *           the last bucket's reduction is left after backward. */
#include "lab.h"
#include "../lab05-data-parallel/student.h"

#include <string.h>

static void scale(float *x, size_t n, float s)
{
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

int dp_naive(zl_comm *c, dp_grads *g)
{
    float inv = 1.0f / (float)c->size;
    for (int i = 0; i < g->n; i++) {
        if (zl_comm_allreduce(c, g->grad[i], g->numel[i], ZL_F32, ZL_REDUCE_SUM) != ZL_OK) return -1;
        scale(g->grad[i], g->numel[i], inv);
    }
    return 0;
}

int dp_flat(zl_comm *c, dp_grads *g, float *flat)
{
    size_t off = 0;
    for (int i = 0; i < g->n; i++) {
        memcpy(flat + off, g->grad[i], g->numel[i] * sizeof(float));
        off += g->numel[i];
    }
    if (zl_comm_allreduce(c, flat, off, ZL_F32, ZL_REDUCE_SUM) != ZL_OK) return -1;
    float inv = 1.0f / (float)c->size;
    off = 0;
    for (int i = 0; i < g->n; i++) {
        for (size_t k = 0; k < g->numel[i]; k++) g->grad[i][k] = flat[off + k] * inv;
        off += g->numel[i];
    }
    return 0;
}

int dp_bucket_begin(dp_bucketer *b)
{
    b->num_buckets = 0;
    b->open_last = -1;
    b->open_bytes = 0;
    b->used = 0;
    return 0;
}

/* Close the open bucket, tensors [first, open_last]: copy them into the next region of
 * flat and start its allreduce. */
static int launch(dp_bucketer *b, int first)
{
    if (b->num_buckets == DP_MAX_BUCKETS) return -1;
    int k = b->num_buckets++;
    b->first[k] = first;
    b->last[k] = b->open_last;
    b->offset[k] = b->used;
    size_t off = b->used;
    for (int i = first; i <= b->open_last; i++) {
        memcpy(b->flat + off, b->g->grad[i], b->g->numel[i] * sizeof(float));
        off += b->g->numel[i];
    }
    b->count[k] = off - b->used;
    b->used = off;
    b->open_last = -1;
    b->open_bytes = 0;
    return zl_comm_iallreduce(b->c, b->flat + b->offset[k], b->count[k], ZL_F32, ZL_REDUCE_SUM,
                              &b->req[k]) == ZL_OK ? 0 : -1;
}

int dp_bucket_ready(dp_bucketer *b, int i)
{
    if (b->open_last < 0) b->open_last = i;
    b->open_bytes += b->g->numel[i] * sizeof(float);
    if (b->open_bytes >= b->bucket_bytes || i == 0) return launch(b, i);
    return 0;
}

int dp_bucket_end(dp_bucketer *b)
{
    float inv = 1.0f / (float)b->c->size;
    for (int k = 0; k < b->num_buckets; k++) {
        if (zl_comm_wait(b->c, &b->req[k]) != ZL_OK) return -1;
        size_t off = b->offset[k];
        for (int i = b->first[k]; i <= b->last[k]; i++) {
            for (size_t e = 0; e < b->g->numel[i]; e++) b->g->grad[i][e] = b->flat[off + e] * inv;
            off += b->g->numel[i];
        }
    }
    return 0;
}
