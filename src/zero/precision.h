/* The precision policy: what the ZeRO strategies (zero/zero.h) and the engine call for
 * anything dtype-specific, so that neither branches on dtypes.
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
 * bits when its backward is done; the vector helpers widen 16-bit buffers piecewise
 * through `scratch`. All of these are tag "cast": the CPU's stand-in for 16-bit kernels,
 * which the ledger's budget does not count. [0] of work_params/work_grads is the tie's
 * owner (the embedding: live from its forward to its backward, because the head uses
 * the tied wte in between; zl_model_tie_*), [1] any other layer. The loss scaler stays with the engine (engine/loss_scaler.h). */
#ifndef ZL_ZERO_PRECISION_H
#define ZL_ZERO_PRECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/device.h"
#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "model/model.h"
#include "optim/adamw.h"

typedef struct zl_precision {
    zl_dtype dtype, grad_dtype, comm_dtype;
    zl_device *device;
    zl_model *model;   /* layer ranges, parameter initialisation, binding */
    uint64_t seed;     /* parameter initialisation */
    zl_tensor work_params[2], work_grads[2], scratch; /* 16 bits only, tag "cast" */
} zl_precision;

/* &base[i] for elements of type t. */
static inline void *zl__at(void *base, zl_dtype t, size_t i)
{
    return (char *)base + i * zl_dtype_nbytes(t);
}

/* Set the three types (dtype: f32, f16 or bf16; the other two follow it unless fp32 is
 * asked for); the model's activations and the simulator follow dtype. */
zl_status zl_precision_init(zl_precision *p, zl_device *dev, zl_model *m, uint64_t seed,
                            zl_dtype dtype, bool grad_accum_fp32, bool comm_fp32);
/* 16 bits: allocate the "cast" buffers and point every layer's gradients at the work
 * gradients. Nothing in f32. */
zl_status zl_precision_alloc(zl_precision *p);
void zl_precision_free(zl_precision *p);

/* Whether the optimizer steps fp32 master weights (16 bits) rather than the parameters. */
static inline bool zl_precision_master_weights(const zl_precision *p) { return p->dtype != ZL_F32; }
/* Whether backward writes parameter gradients straight into the gradient store (f32),
 * rather than into the work gradients that zl_precision_flush_grads drains (16 bits). */
static inline bool zl_precision_grads_in_place(const zl_precision *p) { return p->dtype == ZL_F32; }

/* Element-wise ops on buffers of type f32, f16 or bf16 (16-bit through the scratch). */
void zl_precision_scale(zl_precision *p, void *x, zl_dtype t, float s, size_t n);
void zl_precision_add(zl_precision *p, void *y, zl_dtype yt, const void *x, zl_dtype xt, size_t n);
double zl_precision_sumsq(zl_precision *p, const void *x, zl_dtype t, size_t n);
bool zl_precision_nonfinite(zl_precision *p, const void *x, zl_dtype t, size_t n);

/* Initial values of the flat range [begin, end) into dst (type t): f32 initialisation,
 * rounded once in 16 bits, as model.half() does. */
void zl_precision_init_values(zl_precision *p, void *dst, zl_dtype t, size_t begin, size_t end);
/* Point layer l's parameters at `values` (its range, type dtype): directly in f32, as an
 * f32 copy in 16 bits. */
zl_status zl_precision_bind_layer(zl_precision *p, int l, void *values, bool backward);
/* 16 bits: after layer l's backward, round its f32 work gradient, add it into dst (type
 * dt, the layer's range) and zero it. A no-op in f32, where backward writes in place. */
void zl_precision_flush_grads(zl_precision *p, int l, void *dst, zl_dtype dt);
/* The Adam step on fp32 weights with gradients of grad_dtype (16-bit ones widened
 * through the scratch). */
void zl_precision_adam_step(zl_precision *p, zl_adamw *adam, float *weights, void *grads,
                            const zl_param_range *r, int nr, double lr, double beta1,
                            float grad_scale);

#endif
