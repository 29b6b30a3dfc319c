/* Lab 05: data parallel, naive -> flat -> bucketed. The functions you write in student.c.
 *
 * Every rank of communicator c (N = c->size ranks) holds the gradients of the same model
 * computed on its own micro-batch. Your functions replace each gradient by its MEAN over
 * the ranks (sum over ranks, times 1/N), in place, as DeepSpeed's ZeRO-0 data parallelism
 * does before the optimizer step. The lab then runs the library's AdamW on them.
 *
 * The library gives you (src/comm/comm.h): zl_comm_allreduce (blocking, in place, SUM),
 * zl_comm_iallreduce + zl_comm_wait (non-blocking: start it, keep computing, wait later;
 * the buffer must stay untouched in between). Use ZL_F32 and ZL_REDUCE_SUM.
 *
 * All functions return 0 when done (LAB_NOT_DONE while TODO, -1 if a call failed). */
#ifndef LAB05_STUDENT_H
#define LAB05_STUDENT_H

#include <stddef.h>

#include "lab.h"

/* The model's gradient tensors, in the model's (forward) order: grad[i] has numel[i]
 * floats. Backward produces them in the opposite order: tensor n-1 first, 0 last. */
typedef struct dp_grads {
    int n;
    float **grad;
    const size_t *numel;
} dp_grads;

/* TASK 1. Naive: one blocking allreduce per tensor (n messages), then scale by 1/N.
 * Called after backward. */
int dp_naive(zl_comm *c, dp_grads *g);

/* TASK 2. Flat: copy every gradient into `flat` (sum of numel floats, given), ONE
 * blocking allreduce of it, then copy the means back into the tensors. Called after
 * backward. */
int dp_flat(zl_comm *c, dp_grads *g, float *flat);

/* TASK 3. Bucketed with overlap (PyTorch DDP's and DeepSpeed's way). During backward the
 * lab calls dp_bucket_ready(b, i) as soon as tensor i's gradient is final, for
 * i = n-1, n-2, ..., 0 (backward's order). Gather consecutive ready tensors into a
 * bucket (a contiguous region of `flat`); as soon as a bucket holds at least
 * bucket_bytes bytes (or the last tensor, 0, is in it), copy its gradients into its
 * region and START a non-blocking allreduce of it (zl_comm_iallreduce), then return, so
 * that the lab's backward goes on while it runs. dp_bucket_end(b), after backward, waits
 * for every bucket and copies the means back into the tensors.
 *
 * The struct is yours to use: the lab sets the first four fields (dp_bucket_begin's
 * arguments) and zeroes the rest before dp_bucket_begin. */
#define DP_MAX_BUCKETS 512
typedef struct dp_bucketer {
    zl_comm *c;
    dp_grads *g;
    float *flat;         /* sum of numel floats */
    size_t bucket_bytes; /* close a bucket once it holds at least this many bytes */
    /* your state, for example: */
    int num_buckets;
    int first[DP_MAX_BUCKETS], last[DP_MAX_BUCKETS]; /* tensors [first, last] of a bucket */
    size_t offset[DP_MAX_BUCKETS], count[DP_MAX_BUCKETS]; /* its region of flat */
    zl_comm_request req[DP_MAX_BUCKETS]; /* zero-initialised: inactive */
    int open_last;       /* the newest tensor of the bucket being filled; -1: none open */
    size_t open_bytes;   /* bytes in the bucket being filled */
    size_t used;         /* floats of flat handed out so far */
} dp_bucketer;

/* Called once before backward (b's fields already set as above). */
int dp_bucket_begin(dp_bucketer *b);
/* Tensor i's gradient is final (i = n-1 first, 0 last). */
int dp_bucket_ready(dp_bucketer *b, int i);
/* After backward: complete every bucket; afterwards every tensor holds the mean. */
int dp_bucket_end(dp_bucketer *b);

#endif
