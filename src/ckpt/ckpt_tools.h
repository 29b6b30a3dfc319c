/* What `zerolab ckpt` does to checkpoints, as library calls (labs and tests use them too).
 *
 *   verify      every tensor of every file against its checksum
 *   to_fp32     DeepSpeed's zero_to_fp32: one safetensors file of fp32 weights by name
 *               (Hugging Face GPT-2 names, zerolab's (out, in) layout), streamed one tensor
 *               at a time, so that the memory it needs is about the largest tensor, not
 *               twice the model as zero_to_fp32.py's
 *   reshape     rewrite a checkpoint for another data-parallel size and ZeRO stage, with
 *               the shards a run of that layout would write (zerolab loads any layout
 *               without this: it is for tools that expect one file per rank)
 *   compare     two checkpoints' fp32 weights (and optionally Adam's moments) within a
 *               tolerance
 *   llm.c       import an llm.c GPT-2 model file as a checkpoint of weights only (training
 *               starts a fresh optimizer from it), and export a checkpoint's weights as one
 *
 * Everything reads through ckpt_read.h (any layout, every byte checked) and writes
 * through ckpt_file.h and ckpt_layout.h (atomic files, the tag staged then committed). */
#ifndef ZL_CKPT_CKPT_TOOLS_H
#define ZL_CKPT_CKPT_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "ckpt/ckpt_read.h"

struct zl_model;
/* The model's shape ("model") and parameter table ("param_shapes": name, shape, offset in
 * the flat vector, DeepSpeed's param_shapes with zerolab's offsets), as the model states
 * record them; new references. */
json_t *zl_ckpt_model_json(const struct zl_model *m);
json_t *zl_ckpt_param_table_json(const struct zl_model *m);

/* A piece of the flat parameter vector a shard holds: numel elements from flat offset
 * `flat`, at element `local` of the shard's tensors (ckpt_read.h). */
typedef struct zl_ckpt_fragment {
    size_t flat, numel, local;
} zl_ckpt_fragment;

/* One rank's optimizer shard: its fp32 master weights and Adam's moments (numel each, as
 * the rank keeps them), the fragments that place them, and the layout it belongs to. */
typedef struct zl_ckpt_shard_state {
    int rank, world, stage; /* dp_rank, partition_count, zero_stage */
    int64_t step;           /* Adam's step */
    bool bf16;              /* the "bf16_" prefix of the file name */
    size_t numel;
    const float *fp32, *exp_avg, *exp_avg_sq;
    const zl_ckpt_fragment *frags;
    int num_frags;
} zl_ckpt_shard_state;

/* Write the shard as "[bf16_]zero_pp_rank_<R>_mp_rank_00_optim_states" into dir: the one
 * place the shard's format is written (the engine's save and reshape both call it). */
zl_status zl_ckpt_write_optim_shard(const char *dir, const zl_ckpt_shard_state *sh);

/* Check every tensor's checksum; *tensors and *nbytes (either may be NULL) count what was
 * checked. */
zl_status zl_ckpt_verify(zl_ckpt *c, size_t *tensors, size_t *nbytes);

/* The fp32 weights into a safetensors file at out_path (atomically). *peak_nbytes (may be
 * NULL): the largest buffer it held. */
zl_status zl_ckpt_to_fp32(zl_ckpt *c, const char *out_path, size_t *peak_nbytes);

/* The checkpoint as `world_size` data-parallel ranks at ZeRO `stage`, into out_dir (its tag
 * and `latest`). */
zl_status zl_ckpt_reshape(zl_ckpt *c, const char *out_dir, int world_size, int stage);

typedef struct zl_ckpt_diff {
    double max_abs;         /* the largest |a - b| */
    double at_ref;          /* |b| where it is */
    const char *param;      /* the parameter it is in (the first checkpoint's name) */
    size_t index;           /* the element inside it */
    size_t beyond;          /* elements with |a - b| > atol + rtol * |b| */
} zl_ckpt_diff;

/* Compare a's fp32 weights (state: also exp_avg and exp_avg_sq) with b's. ZL_ERR_INVALID
 * when the models differ. */
zl_status zl_ckpt_compare(zl_ckpt *a, zl_ckpt *b, bool state, double rtol, double atol,
                          zl_ckpt_diff *out);

/* An llm.c GPT-2 model file as a checkpoint of weights only under out_dir/tag (NULL:
 * "llmc"), `latest` naming it; *padding_nonzero: nonzero padding elements dropped. */
zl_status zl_ckpt_import_llmc(const char *bin_path, const char *out_dir, const char *tag,
                              size_t *padding_nonzero);
/* A checkpoint's fp32 weights as an llm.c model file: version 3 (fp32) or 5 (bf16); 0:
 * 5 for a bf16 checkpoint, else 3. */
zl_status zl_ckpt_export_llmc(zl_ckpt *c, const char *bin_path, int version);

#endif
