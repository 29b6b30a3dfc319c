/* Lab 12: checkpoints. The functions you write (student.c).
 *
 * A ZeRO-1/2 run of W data-parallel ranks saves, in DeepSpeed's layout (docs/checkpoints.md):
 *
 *   <dir>/latest                                         the tag to load ("global_step3")
 *   <dir>/<tag>/mp_rank_00_model_states.{safetensors,json}   the module's weights (bf16 or
 *                                                        fp32) and the engine's state
 *   <dir>/<tag>/zero_pp_rank_<r>_mp_rank_00_optim_states.{safetensors,json}
 *                                                        rank r's optimizer shard: its fp32
 *                                                        master weights "fp32_flat" and
 *                                                        Adam's "exp_avg", "exp_avg_sq"
 *
 * ZeRO cuts the flat parameter vector (every parameter, one after the other, numel
 * elements) as DeepSpeed's stage_1_and_2.py does: padded with zeros to a multiple of 2 x W,
 * then W equal contiguous partitions of P = padded / W elements; rank r owns flat elements
 * [r P, (r + 1) P), and the padding sits at the end of the last partition.
 *
 * The library's checkpoint reader (src/ckpt/ckpt_read.h) opens a checkpoint and its shards
 * (zl_ckpt_open, zl_ckpt_num_shards, zl_ckpt_shard, zl_ckpt_numel), and reads any range of
 * a shard's tensor (zl_ckpt_file_tensor for its size, zl_ckpt_file_read for values). */
#ifndef LAB12_STUDENT_H
#define LAB12_STUDENT_H

#include <stddef.h>

#include "lab.h"

/* zero_to_fp32: the fp32 master weights of every shard stitched into one vector of the
 * model's numel elements (zl_ckpt_numel) in flat (parameter) order, the padding dropped.
 * Read each shard's "fp32_flat" (shard r is zl_ckpt_shard(c, r), r < zl_ckpt_num_shards(c))
 * and place it by the partition rule above. out holds numel floats. */
int student_consolidate(zl_ckpt *c, float *out, size_t numel);

/* One read of a resharded load: bytes [old_offset, old_offset + nbytes) of old rank
 * old_rank's "fp32_flat" (and, at the same offsets, its exp_avg and exp_avg_sq) go to bytes
 * [new_offset, ...) of the new rank's partition. fp32: 4 bytes an element. */
typedef struct lab12_read {
    int old_rank;
    size_t old_offset, nbytes, new_offset;
} lab12_read;

/* Resume on another world size: the flat state of numel elements was saved by old_world
 * ranks; list the reads new rank new_rank of new_world needs to fill its partition (its
 * real elements: the new padding is not read), in increasing new_offset, one read per old
 * shard it overlaps. */
int student_reshard(size_t numel, int old_world, int new_world, int new_rank, lab12_read *out,
                    int cap, int *n);

#endif
