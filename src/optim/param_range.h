/* A range of a flat parameter buffer that the optimizer steps with one setting of weight
 * decay. The model's parameter table gives one range per parameter (GPT-2 convention:
 * decay on 2-D weights, none on biases and LayerNorm); adjacent ranges with the same flag
 * may be merged, since the optimizer is element-wise. */
#ifndef ZL_OPTIM_PARAM_RANGE_H
#define ZL_OPTIM_PARAM_RANGE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct zl_param_range {
    size_t offset; /* first element, relative to the buffer the optimizer is given */
    size_t numel;
    bool decay;    /* apply weight_decay to these elements */
} zl_param_range;

/* Intersect `in` (n ranges over the full flat buffer) with the shard [begin, end) and
 * rebase the pieces to the shard's start, dropping empty ones: what a ZeRO rank steps on
 * its own partition. `out` has room for n ranges. Returns the number written. */
int zl_param_ranges_clip(zl_param_range *out, const zl_param_range *in, int n, size_t begin,
                         size_t end);

#endif
