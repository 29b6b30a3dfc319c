/* Internal to src/engine, and to the tests that look inside an engine. Where gradients,
 * parameters and optimizer state live is the ZeRO strategy's business (zero/zero.h);
 * dtype-specific work is the precision policy's (zero/precision.h). */
#ifndef ZL_ENGINE_ENGINE_INTERNAL_H
#define ZL_ENGINE_ENGINE_INTERNAL_H

#include "engine/engine.h"

static inline int zl__engine_dp_size(const zl_engine *e) { return e->opt.dp ? e->opt.dp->size : 1; }
static inline int zl__engine_dp_rank(const zl_engine *e) { return e->opt.dp ? e->opt.dp->rank : 0; }

/* This rank's share of the reduced gradient: pointer and elements (for norms and checks). */
static inline void *zl__engine_own_grads(zl_engine *e, size_t *n)
{
    return e->zero.strategy->own_grads(&e->zero, n);
}
static inline double zl__vec_sumsq(zl_engine *e, const void *x, zl_dtype t, size_t n)
{
    return zl_precision_sumsq(&e->prec, x, t, n);
}
static inline bool zl__vec_nonfinite(zl_engine *e, const void *x, zl_dtype t, size_t n)
{
    return zl_precision_nonfinite(&e->prec, x, t, n);
}

/* Make layer l's parameters available to it (engine.c): the strategy's, in f32. */
zl_status zl__engine_use_layer(zl_engine *e, int l, bool backward);

/* Ties whose members keep copies of their own (engine_ties.c; opt.tie_copies). */
zl_status zl__engine_ties_alloc(zl_engine *e);
void zl__engine_ties_free(zl_engine *e);
zl_status zl__engine_ties_sync_values(zl_engine *e);
zl_status zl__engine_reduce_tied_grads(zl_engine *e);
void zl__engine_ties_zero_grads(zl_engine *e);

/* Mixed precision (engine_precision.c): the policy's types and buffers, the loss scaler. */
zl_status zl__engine_precision_init(zl_engine *e);
void zl__engine_precision_free(zl_engine *e);
/* The overflow check and the loss scaler's update at the boundary; own: this rank's
 * share of the reduced gradients (n elements of grad_dtype). */
zl_status zl__engine_check_overflow(zl_engine *e, const void *own, size_t n, bool *skip);

#endif
