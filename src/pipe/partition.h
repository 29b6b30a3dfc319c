/* Cutting the layer list into pipeline stages (DeepSpeed's PipelineModule partitioning,
 * runtime/pipe/module.py `_partition_layers`, over runtime/utils.py `partition_uniform`
 * and `partition_balanced`).
 *
 * A partition of n items into S parts is written as S + 1 boundaries, as DeepSpeed's
 * `parts` list: part s holds items [bounds[s], bounds[s+1]), bounds[0] = 0 and
 * bounds[S] = n. For the model, the items are its layers (embed, h.0 .. h.L-1, head), and
 * stage s runs layers [bounds[s], bounds[s+1]).
 *
 * The two functions on numbers are pure and reproduce DeepSpeed's results exactly, ties
 * included (tests/unit/check_pipe_partition.c lists its vectors):
 *   uniform(10, 4)                  -> 0 3 6 8 10   (the extra items go to the first parts)
 *   uniform(3, 4)                   -> 0 1 2 3 3    (more parts than items: empty last parts)
 *   balanced([1]*8, 4)              -> 0 2 4 6 8
 *   balanced([0,10,10,10,10,0], 2)  -> 0 3 6
 *   balanced([5,1,1,1,1,5], 3)      -> 0 1 5 6
 *   balanced([0,1,1,1,1,1,1,0], 3)  -> 0 3 5 8
 * The model's side (zl_pipe_partition_model) picks the weights from a method name, as
 * DeepSpeed's partition_method does, and validates everything the user wrote. */
#ifndef ZL_PIPE_PARTITION_H
#define ZL_PIPE_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "model/model.h"

/* num_items (>= 0) into num_parts (>= 1) parts whose sizes differ by at most one, the
 * larger ones first. More parts than items: one item each, then empty parts (DeepSpeed
 * does the same; zl_pipe_partition_model refuses such a cut). bounds[num_parts + 1]. */
void zl_partition_uniform(int num_items, int num_parts, int *bounds);

/* weights[num_items] (each >= 0) into num_parts (>= 1) contiguous parts, by DeepSpeed's
 * dynamic programme for the linear partition problem, which keeps for each prefix the cut
 * with the smallest spread (heaviest part minus lightest part). With num_items <=
 * num_parts it is zl_partition_uniform. Otherwise every part holds at least one item.
 *
 * The programme is DeepSpeed's, not an exact minimiser of the spread: it keeps one cut per
 * prefix and part count, so on rare inputs a cut with a smaller spread exists (weights
 * [3,2,5,6,1,8] into 5 parts: DeepSpeed and zerolab give 0 2 3 4 5 6, spread 7; 0 1 2 3 5 6
 * has spread 6). Matching DeepSpeed's stages matters more here than the last unit: a
 * checkpoint or a figure from a DeepSpeed run then names the same stages. With two parts
 * (or one) the result is exactly optimal.
 *
 * ZL_ERR_INVALID for a negative weight or a total past 2^62; ZL_ERR_NOMEM. */
zl_status zl_partition_balanced(const int64_t *weights, int num_items, int num_parts,
                                int *bounds);

/* The spread of a partition: heaviest part minus lightest part (DeepSpeed's cost). */
int64_t zl_partition_spread(const int64_t *weights, int num_parts, const int *bounds);

/* The model's layers into `stages` pipeline stages by `method` (DeepSpeed's
 * partition_method, case-insensitive), bounds[stages + 1]:
 *   "parameters"    balance each layer's parameter count; a member of a tie group counts the
 *                   tied parameter too, since its stage holds a copy of it (DeepSpeed counts
 *                   a TiedLayerSpec's module wherever it is built). "best", the pipeline
 *                   block's default "partition" value, means this: DeepSpeed stores the key
 *                   and uses PipelineModule's default, which is "parameters".
 *   "uniform"       balance the number of layers.
 *   "type:<regex>"  balance the layers whose kind name ("embed", "block", "head"; what
 *                   DeepSpeed matches against the class name) matches the POSIX extended
 *                   regex anywhere, case-insensitively: "type:block" balances the blocks.
 *                   No layer matching fails, as DeepSpeed's "found no valid layers".
 *                   The regex is all the text after "type:", as written (DeepSpeed
 *                   lower-cases it and stops at a second colon, which would break POSIX
 *                   classes such as [[:alpha:]]).
 *   "0,4,8,14"      the boundaries themselves: stages + 1 integers, from 0 to the number of
 *                   layers, strictly increasing.
 *   "profile"       ZL_ERR_UNSUPPORTED, as DeepSpeed's NotImplementedError.
 * Every stage gets at least one layer: more stages than layers is refused (DeepSpeed would
 * leave the last stages without layers, and then without parameters to train). Every
 * refusal is one message naming pipeline.partition (or pipeline.stages) and a fix:
 * ZL_ERR_CONFIG for a bad value, ZL_ERR_UNSUPPORTED for "profile", ZL_ERR_NOMEM. */
zl_status zl_pipe_partition_model(const zl_model *m, const char *method, int stages,
                                  int *bounds);

/* A layer's kind name as the partitioner and its listing see it: "embed", "block", "head". */
const char *zl_pipe_layer_kind_name(zl_layer_kind kind);

/* What DeepSpeed prints on rank 0 after partitioning, for the caller to print: per stage
 * a line "stage=<s> layers=<n>", then one line per layer, four spaces, its index
 * right-aligned in two columns, ": " and its kind name:
 *   stage=0 layers=7
 *        0: embed
 *        1: block
 * Writes at most cap bytes (NUL included) and returns the length of the whole text, as
 * snprintf does, so that a caller can size its buffer with a first call (buf NULL, cap 0). */
size_t zl_pipe_partition_format(const zl_model *m, int stages, const int *bounds, char *buf,
                                size_t cap);

#endif
