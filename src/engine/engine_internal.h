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

#endif
