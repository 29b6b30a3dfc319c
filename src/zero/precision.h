/* The precision policy: what the ZeRO strategies (zero/zero.h) and the engine call for
 * anything dtype-specific, so that neither branches on dtypes: the storage, compute and
 * reduction types, the fp32 master weights, and fp16's loss scaler.
 *
 * Three types (DeepSpeed's "fp16"/"bf16", "data_types.grad_accum_dtype" and
 * "communication_data_type"):
 *   dtype       parameters and activations (f32, f16 or bf16)
 *   grad_dtype  gradient accumulation ("grad")
 *   comm_dtype  gradient reductions (staging buffers, "bucket")
 * Under 16 bits each rank's optimizer partition keeps fp32 master weights
 * (zl_precision_master_weights).
 *
 * Kernels compute in f32 (backends/ops.h). In 16 bits the layer in use gets f32 copies
 * of its parameters (work_params) and writes f32 gradients (work_grads), rounded to 16
 * bits when its backward is done; the vector helpers (core/vec.h) widen 16-bit buffers
 * piecewise through `scratch`. All of these are tag "cast": the CPU's stand-in for 16-bit kernels,
 * which the ledger's budget does not count. [0] of work_params/work_grads is the tie's
 * owner (the embedding: live from its forward to its backward, because the head uses
 * the tied wte in between; zl_model_tie_*), [1] any other layer.
 *
 * The loss scale (fp16 only; DeepSpeed never scales bf16) multiplies the gradient that
 * starts backward (zl_precision_loss_scale). At the accumulation boundary, DeepSpeed's
 * ZeRO order:
 *   1. inf/nan in this rank's share of the reduced gradients, agreed across the ranks
 *      (fp16 always; bf16 with check_grad_overflow): zl_precision_check_overflow;
 *   2. the scaler's update (zero/loss_scaler.h); an overflowing step is skipped: the
 *      engine zeroes the gradients, leaves the LR schedule, counts skipped_steps;
 *   3. the global norm of the scaled gradients, divided by the scale;
 *   4. the optimizer on the fp32 master partition with gradients multiplied by
 *      1 / (scale * max(1, (norm + 1e-6) / clip)), i.e. unscaled and clipped in one pass;
 *   5. the master partition rounded into the 16-bit parameters, and allgathered. */
#ifndef ZL_ZERO_PRECISION_H
#define ZL_ZERO_PRECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"
#include "comm/comm.h"
#include "core/device.h"
#include "core/tensor.h"
#include "core/vec.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "zero/loss_scaler.h"

/* Mixed precision ("fp16", "bf16", "communication_data_type", "data_types"): DeepSpeed's
 * keys (the engine's options carry them as zl_engine_precision). A zeroed struct is fp32
 * training. Under 16 bits the model's parameters, activations and their gradients are
 * stored in `dtype` and each rank's optimizer partition keeps fp32 master weights; fp16
 * scales the loss (zero/loss_scaler.h). */
typedef struct zl_precision_options {
    zl_dtype dtype;          /* ZL_F32, ZL_F16 (fp16.enabled) or ZL_BF16 (bf16.enabled) */
    bool grad_accum_fp32;    /* data_types.grad_accum_dtype "fp32" (default: dtype) */
    bool comm_fp32;          /* communication_data_type "fp32" (default: dtype) */
    bool check_grad_overflow; /* bf16: skip a step whose gradients hold inf/nan (fp16 always) */
    /* fp16's loss scaler, DeepSpeed's keys; when all five numbers are zero (a zeroed
     * struct), DeepSpeed's defaults: dynamic, 2^16, window 1000, hysteresis 2, min 1. */
    double loss_scale;       /* 0 dynamic, > 0 static */
    int64_t initial_scale_power, loss_scale_window, hysteresis;
    bool consecutive_hysteresis;
    double min_loss_scale;
} zl_precision_options;

typedef struct zl_precision {
    zl_dtype dtype, grad_dtype, comm_dtype;
    bool check_grad_overflow; /* bf16: the boundary scans for inf/nan (fp16 always does) */
    zl_device *device;
    zl_model *model;   /* layer ranges, parameter initialisation, binding */
    uint64_t seed;     /* parameter initialisation */
    zl_tensor work_params[2], work_grads[2], scratch; /* 16 bits only, tag "cast" */
    zl_vec_ctx vec;    /* the vector helpers' device and scratch */
    zl_loss_scaler scaler; /* fp16: the loss scale (static or dynamic); others: 1 */
    bool overflow;         /* the last boundary found inf/nan gradients */
    /* Where the boundary reads this rank's share of the reduced gradient (the overflow
     * scan, the norm): NULL, on `device` in grad_dtype; else on this host device,
     * widened to f32 (ZeRO-2 with offload: zl_precision_own_grads_on_host). */
    zl_device *own_host;
} zl_precision;

/* Set the three types (o->dtype: f32, f16 or bf16; the other two follow it unless fp32 is
 * asked for) and the loss scaler: fp16's from o's keys (DeepSpeed's defaults when all are
 * zero), of the ZeRO optimizers' kind when zero_optimizer, else FP16_Optimizer's; a
 * constant 1 for the others. The model's activations and the simulator follow dtype. */
zl_status zl_precision_init(zl_precision *p, zl_device *dev, zl_model *m, uint64_t seed,
                            const zl_precision_options *o, bool zero_optimizer);
/* 16 bits: allocate the "cast" buffers and point every layer's gradients at the work
 * gradients. Nothing in f32. */
zl_status zl_precision_alloc(zl_precision *p);
void zl_precision_free(zl_precision *p);

/* Whether the optimizer steps fp32 master weights (16 bits) rather than the parameters. */
static inline bool zl_precision_master_weights(const zl_precision *p) { return p->dtype != ZL_F32; }
/* Whether backward writes parameter gradients straight into the gradient store (f32),
 * rather than into the work gradients that zl_precision_flush_grads drains (16 bits). */
static inline bool zl_precision_grads_in_place(const zl_precision *p) { return p->dtype == ZL_F32; }

/* Element-wise ops on buffers of type f32, f16 or bf16 (core/vec.h, 16-bit through the
 * policy's scratch). */
static inline void zl_precision_scale(zl_precision *p, void *x, zl_dtype t, float s, size_t n)
{
    zl_vec_scale(&p->vec, x, t, s, n);
}
static inline void zl_precision_add(zl_precision *p, void *y, zl_dtype yt, const void *x,
                                    zl_dtype xt, size_t n)
{
    zl_vec_add(&p->vec, y, yt, x, xt, n);
}
static inline double zl_precision_sumsq(zl_precision *p, const void *x, zl_dtype t, size_t n)
{
    return zl_vec_sumsq(&p->vec, x, t, n);
}
static inline bool zl_precision_nonfinite(zl_precision *p, const void *x, zl_dtype t, size_t n)
{
    return zl_vec_nonfinite(&p->vec, x, t, n);
}

/* This rank's share of the reduced gradient is kept on `host`, widened to f32, rather
 * than on the device in grad_dtype (ZeRO-2 with offload): zl_precision_check_overflow and
 * zl_precision_own_sumsq read it there with the host's kernels. */
static inline void zl_precision_own_grads_on_host(zl_precision *p, zl_device *host)
{
    p->own_host = host;
}
/* The sum of squares of this rank's share (own, n elements; where own_grads_on_host
 * says), in double: the same number wherever it is kept. */
double zl_precision_own_sumsq(zl_precision *p, const void *own, size_t n);

/* The loss scale the next backward multiplies its starting gradient by (fp16; 1 otherwise). */
static inline double zl_precision_loss_scale(const zl_precision *p) { return p->scaler.cur_scale; }
/* Steps 1-2 of the boundary (file comment): scan this rank's share of the reduced
 * gradients (own: n elements of grad_dtype) for inf/nan when the precision checks, agree
 * by MAX over dp (NULL: one rank) and mp (the other pipeline stages; NULL: none), update
 * the loss scaler, and log DeepSpeed's messages on dp rank 0. *skip: this step must not
 * update. ZL_ERR_TRAINING (on every rank, as all agree) when fp16's ZeRO scaler would go
 * below its minimum. Collective over dp and mp. */
zl_status zl_precision_check_overflow(zl_precision *p, zl_comm *dp, zl_comm *mp, const void *own,
                                      size_t n, bool *skip);

/* Initial values of the flat range [begin, end) into dst (type t): f32 initialisation,
 * rounded once in 16 bits, as model.half() does. */
void zl_precision_init_values(zl_precision *p, void *dst, zl_dtype t, size_t begin, size_t end);
/* Point layer l's parameters at `values` (its range, type dtype): directly in f32, as an
 * f32 copy in 16 bits. */
zl_status zl_precision_bind_layer(zl_precision *p, int l, void *values, bool backward);
/* 16 bits: after layer l's backward, round its f32 work gradient, add it into dst (type
 * dt, the layer's range) and zero it. A no-op in f32, where backward writes in place. */
void zl_precision_flush_grads(zl_precision *p, int l, void *dst, zl_dtype dt);
/* The Adam step on fp32 weights with gradients of grad_dtype (read as such by the
 * kernel). params: NULL (fp32: the weights are the parameters), or the 16-bit parameters
 * (type dtype, indexed as weights) that the stepped weights are rounded into in the same
 * pass (step 5 of the boundary, before any allgather). */
void zl_precision_adam_step(zl_precision *p, zl_adamw *adam, float *weights, void *params,
                            void *grads, const zl_param_range *r, int nr, double lr,
                            double beta1, float grad_scale);

#endif
