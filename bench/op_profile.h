/* Where a training step's time goes, op by op.
 *
 * op_profile_wrap() returns a copy of a backend's op table whose kernels time each call
 * (wall clock around the real kernel, which runs unchanged) and count the FLOPs of the
 * matmuls in it. Installing it as a device's ops table (dev->ops) profiles everything the
 * engine and the model run on that device, without touching either. GEMMs are further
 * split by shape, so a slow shape stands out.
 *
 * The profile is for a separate, short pass: the timing calls cost a few microseconds per
 * op, which the headline figures should not carry. Not thread-safe: ops are called from
 * the main thread only (kernels parallelise inside). */
#ifndef ZL_BENCH_OP_PROFILE_H
#define ZL_BENCH_OP_PROFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "backends/ops.h"

typedef enum op_kind {
    OP_GEMM, OP_BIAS_FWD, OP_BIAS_BWD, OP_EMBED_FWD, OP_EMBED_BWD, OP_LAYERNORM_FWD,
    OP_LAYERNORM_BWD, OP_ATTENTION_FWD, OP_ATTENTION_BWD, OP_GELU_FWD, OP_GELU_BWD,
    OP_RESIDUAL, OP_XENT_FWD, OP_XENT_BWD, OP_ADAMW, OP_SUMSQ, OP_ZERO, OP_COPY, OP_CAST,
    OP_ROUND, OP_DRAIN, OP_OTHER,
    OP_NUM_KINDS
} op_kind;

typedef struct op_stat {
    double seconds;
    double flops; /* matmul FLOPs (gemm, and the attention products over the full T x T) */
    long calls;
} op_stat;

#define OP_MAX_GEMM_SHAPES 64

typedef struct gemm_shape_stat {
    int m, n, k;
    bool trans_a, trans_b, beta_nonzero;
    op_stat s;
} gemm_shape_stat;

typedef struct op_profile {
    op_stat ops[OP_NUM_KINDS];
    gemm_shape_stat gemm[OP_MAX_GEMM_SHAPES];
    int num_gemm_shapes;
} op_profile;

/* A profiling copy of `real`; statistics accumulate in the global profile below. */
const zl_ops *op_profile_wrap(const zl_ops *real);
void op_profile_reset(void);
const op_profile *op_profile_get(void);
const char *op_kind_name(op_kind k);

/* Print the profile of `steps` steps: one machine-readable line per op kind and per GEMM
 * shape (prefixed with `prefix`, e.g. "bench zerolab-op config=small threads=2"), then a
 * human table. step_seconds: the total wall time of those steps, for the "other" share. */
void op_profile_print(FILE *out, const char *op_prefix, const char *gemm_prefix, int steps,
                      double step_seconds);

#endif
