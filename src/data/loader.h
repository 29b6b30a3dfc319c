/* Batches for training, data-parallel aware.
 *
 * Each call to zl_loader_next fills inputs (B, T) and targets (B, T) for this rank's
 * micro-batch: B rows of T consecutive tokens, targets shifted by one token.
 *
 * Layout. A *global batch* is world_size * B * T consecutive tokens starting at the
 * loader's position p. Rank r takes the r-th chunk of B * T tokens,
 *     tokens[p + r*B*T ... p + (r+1)*B*T]     (B*T + 1 tokens: the +1 feeds the targets),
 * row b being tokens[p + (r*B + b)*T ...]. So world_size ranks with micro-batch B see,
 * row for row, exactly what one rank with micro-batch world_size*B sees: rank 0's rows
 * first, then rank 1's, and so on. Every rank then advances p by world_size*B*T, one
 * global batch per call (per micro-step: gradient accumulation calls next once per
 * micro-step and so also consumes consecutive global batches).
 *
 * Wrap-around. Before filling a batch, if the global batch at p would run past the end
 * (p + world_size*B*T + 1 > ntokens), p goes back to 0 and the epoch count goes up. This
 * is what llm.c's DataLoader does (without shuffling, with one shard): a shard holds
 * (ntokens - 1) / (world_size*B*T) global batches, and the tail that does not fill a
 * batch is skipped each epoch.
 *
 * The loader only reads the dataset, which must outlive it. */
#ifndef ZL_DATA_LOADER_H
#define ZL_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "data/dataset.h"

typedef struct zl_loader {
    const zl_dataset *ds;
    int B, T;              /* micro-batch size and sequence length of this rank */
    int rank, world_size;  /* data-parallel rank and degree */
    size_t global_ntokens; /* world_size * B * T: tokens consumed per call */
    size_t pos;            /* start of the next global batch, in tokens */
    uint64_t epoch;        /* completed passes over the data (wrap-arounds) */
} zl_loader;

/* Check sizes and start at position 0. ZL_ERR_INVALID if B, T or the ranks are out of
 * range, or the dataset is shorter than one global batch plus one token. */
zl_status zl_loader_init(zl_loader *l, const zl_dataset *ds, int B, int T, int rank,
                         int world_size);

/* Fill this rank's micro-batch: inputs (B, T), targets (B, T), caller-provided. */
void zl_loader_next(zl_loader *l, int32_t *inputs, int32_t *targets);

/* Back to the start of the data (position 0, epoch 0). */
void zl_loader_reset(zl_loader *l);

/* State for checkpoints. The position is in tokens of the whole stream, so it stays
 * meaningful when resuming with another world size that keeps world_size * B fixed. */
size_t zl_loader_position(const zl_loader *l);
uint64_t zl_loader_epoch(const zl_loader *l);
/* Restore a saved state; ZL_ERR_INVALID if pos is not inside the dataset. */
zl_status zl_loader_seek(zl_loader *l, size_t pos, uint64_t epoch);

#endif
