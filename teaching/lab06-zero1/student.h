/* Lab 06: ZeRO stage 1. The functions you write in student.c.
 *
 * The model's parameters are one flat vector of numel (Psi) floats; parameter i is the
 * range [offset_i, offset_i + numel_i) of it. ZeRO-1 (Rajbhandari et al., SC 2020)
 * partitions the OPTIMIZER STATE over the N data-parallel ranks: rank r keeps the fp32
 * master weights and Adam's two moments of its own shard only, updates only that shard,
 * and the ranks then allgather the updated parameters.
 *
 * Every function returns 0 when done (LAB_NOT_DONE while TODO, -1 if a call failed). */
#ifndef LAB06_STUDENT_H
#define LAB06_STUDENT_H

#include <stddef.h>

#include "lab.h"

/* TASK 1. DeepSpeed's partition of numel elements over N ranks (stage_1_and_2.py): pad
 * the flat vector to a multiple of 2 x N (the 2 keeps every shard 4-byte aligned in 16-bit
 * types, as NCCL wants), split it into N equal contiguous shards; rank r owns
 * [*begin, *end). *padded: the padded length. Shard boundaries may cut through a
 * parameter; the padding is at the end of the last shard. */
int zero1_partition(size_t numel, int N, int r, size_t *padded, size_t *begin, size_t *end);

/* TASK 2. Which parameter ranges a rank owns: intersect the n ranges `in` (one per
 * parameter, in flat coordinates, with its weight-decay flag) with the shard [begin, end),
 * drop empty pieces, and rebase them to the shard's start (offset - begin), keeping each
 * piece's decay flag. out has room for n ranges; *nout receives how many were written.
 * These are the ranges the optimizer steps on the shard. */
int zero1_owned_ranges(const zl_param_range *in, int n, size_t begin, size_t end,
                       zl_param_range *out, int *nout);

/* TASK 3. The bytes of optimizer state ONE rank holds under ZeRO-1 with mixed precision
 * (16-bit parameters and gradients, fp32 master weights and Adam's m and v), for numel
 * parameters over N ranks: master + adam.m + adam.v of its shard, padding included (the
 * shard is padded / N elements). ZeRO paper: K = 12 bytes per parameter, divided by N. */
int zero1_state_bytes(size_t numel, int N, size_t *bytes);

/* TASK 4. One ZeRO-1 optimizer step on flat fp32 buffers (all `padded` floats long):
 *   params  every rank's full copy of the parameters (equal on all ranks on entry);
 *   grads   this rank's LOCAL gradients (its own micro-batch; padding zero).
 * Afterwards params must hold, on every rank, the result of one AdamW step with the
 * gradients AVERAGED over the ranks. Do it the ZeRO-1 way:
 *   1. reduce the gradients: zl_comm_allreduce of grads, or (less traffic)
 *      zl_comm_reduce_scatter so that only your shard is summed (in place is allowed:
 *      recv == send + rank * shard);
 *   2. AdamW on YOUR SHARD only: zl_adamw_step(s->adam, params + begin, grads + begin,
 *      s->ranges, s->nranges, s->lr, s->beta1, grad_scale) where grad_scale multiplies
 *      every gradient before use (1/N makes the sum a mean); s->adam holds the shard's m
 *      and v (end - begin elements), s->ranges its owned ranges rebased to begin;
 *   3. allgather the updated shards: zl_comm_allgather(c, params, params + begin, shard,
 *      ZL_F32) (in place: send == recv + rank * shard). */
typedef struct zero1_state {
    zl_comm *c;
    size_t padded, begin, end; /* the shard [begin, end) of the padded vector */
    zl_adamw *adam;            /* AdamW state of the shard (end - begin elements) */
    const zl_param_range *ranges; /* the shard's ranges, relative to begin */
    int nranges;
    double lr, beta1;          /* this step's */
} zero1_state;
int zero1_step(const zero1_state *s, float *params, float *grads);

#endif
