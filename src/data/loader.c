/* Data-parallel batch loader over an in-memory token stream (layout: see loader.h). */
#include "data/loader.h"

#include <string.h>

#include "base/log.h"

zl_status zl_loader_init(zl_loader *l, const zl_dataset *ds, int B, int T, int rank,
                         int world_size)
{
    memset(l, 0, sizeof *l);
    if (B < 1 || T < 1)
        return zl_errorf(ZL_ERR_INVALID,
                         "data loader: micro-batch size %d and sequence length %d must both "
                         "be at least 1",
                         B, T);
    if (world_size < 1 || rank < 0 || rank >= world_size)
        return zl_errorf(ZL_ERR_INVALID,
                         "data loader: rank %d is not in a data-parallel group of size %d",
                         rank, world_size);
    /* Checked: W x B x T comes from the user and can pass 2^64 (2^20 ranks x 2^22 x 2^22
     * wrapped to 0 and was accepted); no data set holds that many tokens anyway. */
    size_t global;
    if (__builtin_mul_overflow((size_t)world_size, (size_t)B, &global) ||
        __builtin_mul_overflow(global, (size_t)T, &global) || global == SIZE_MAX)
        return zl_errorf(ZL_ERR_INVALID,
                         "data loader: one global batch (data-parallel size %d x micro-batch %d "
                         "x sequence %d) has more than 2^64 tokens\n  hint: use a smaller "
                         "micro-batch or sequence length", world_size, B, T);
    if (ds->ntokens < global + 1)
        return zl_errorf(ZL_ERR_INVALID,
                         "data loader: dataset %s has %zu tokens, but one global batch needs "
                         "%zu (data-parallel size %d x micro-batch %d x sequence %d, plus 1 "
                         "for the shifted targets); hint: use a smaller micro-batch or "
                         "sequence length, or more data",
                         ds->desc, ds->ntokens, global + 1, world_size, B, T);
    l->ds = ds;
    l->B = B;
    l->T = T;
    l->rank = rank;
    l->world_size = world_size;
    l->global_ntokens = global;
    return ZL_OK;
}

void zl_loader_next(zl_loader *l, int32_t *inputs, int32_t *targets)
{
    ZL_ASSERT(l->ds != NULL);
    /* Wrap before reading, as llm.c does: the next global batch plus one target token
     * must fit, so every rank of a global batch wraps at the same call. */
    if (l->pos + l->global_ntokens + 1 > l->ds->ntokens) {
        l->pos = 0;
        l->epoch++;
    }
    size_t n = (size_t)l->B * (size_t)l->T;
    const int32_t *src = l->ds->tokens + l->pos + (size_t)l->rank * n;
    memcpy(inputs, src, n * sizeof(int32_t));     // (B, T)
    memcpy(targets, src + 1, n * sizeof(int32_t)); // (B, T)
    l->pos += l->global_ntokens;
}

void zl_loader_reset(zl_loader *l)
{
    l->pos = 0;
    l->epoch = 0;
}

size_t zl_loader_position(const zl_loader *l) { return l->pos; }

uint64_t zl_loader_epoch(const zl_loader *l) { return l->epoch; }

zl_status zl_loader_seek(zl_loader *l, size_t pos, uint64_t epoch)
{
    /* A loader never reports a position at or past the end (see zl_loader_next). */
    if (pos >= l->ds->ntokens)
        return zl_errorf(ZL_ERR_INVALID,
                         "data loader: position %zu is not inside of dataset %s (%zu "
                         "tokens); hint: the checkpoint was made with other data",
                         pos, l->ds->desc, l->ds->ntokens);
    l->pos = pos;
    l->epoch = epoch;
    return ZL_OK;
}
