/* The engine's accessors (engine/engine.h): what tools and tests read of an opaque
 * engine. */
#include "engine/engine_internal.h"

const zl_engine_options *zl_engine_get_options(const zl_engine *e) { return &e->opt; }
const zl_model *zl_engine_model(const zl_engine *e) { return &e->model; }
zl_device *zl_engine_device(const zl_engine *e) { return e->device; }
const zl_ledger *zl_engine_nvme_ledger(const zl_engine *e) { return &e->nvme_ledger; }
zl_dtype zl_engine_dtype(const zl_engine *e) { return e->prec.dtype; }
int64_t zl_engine_micro_steps(const zl_engine *e) { return e->micro_steps; }
int64_t zl_engine_global_steps(const zl_engine *e) { return e->global_steps; }
int64_t zl_engine_global_samples(const zl_engine *e) { return e->global_samples; }
int64_t zl_engine_skipped_steps(const zl_engine *e) { return e->skipped_steps; }
double zl_engine_grad_norm(const zl_engine *e) { return e->grad_norm; }
double zl_engine_last_lr(const zl_engine *e) { return e->lr; }
float zl_engine_loss(const zl_engine *e) { return e->loss; }
double zl_engine_loss_scale(const zl_engine *e) { return zl_precision_loss_scale(&e->prec); }

bool zl_engine_failed_here(const zl_engine *e) { return e->failed_here; }

void zl_engine_set_instr_observer(zl_engine *e, void (*observe)(void *ctx, const zl_instr *in),
                                  void *ctx)
{
    e->instr_observer = observe;
    e->instr_observer_ctx = ctx;
}

int zl_engine_pipe_stages(const zl_engine *e, const int **bounds)
{
    if (bounds) *bounds = e->bounds;
    return e->num_stages;
}
