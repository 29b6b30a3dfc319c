/* A checkpoint, read as one thing: the model states, every optimizer shard, and the flat
 * fp32 state assembled from whichever shards hold each element.
 *
 * Each shard records the fragments of the flat parameter vector it holds ([flat, numel,
 * local]: engine_ckpt.c writes them from the ZeRO strategy's zl_zero_fragment), so any
 * range of the vector can be read whatever world size and stage saved it: that is what
 * makes every zerolab checkpoint "universal". Loading an engine, `zerolab ckpt` (inspect,
 * to-fp32, reshape, compare) and tests read checkpoints through this.
 *
 * Opening checks what can be checked without reading the tensors: every file's format and
 * seal (ckpt_file.h), the parameter table, that each shard's fragments lie inside the
 * model and the shard, and that the shards' fragments tile the flat vector exactly (a
 * missing or extra shard is refused). Reads check each tensor's checksum. */
#ifndef ZL_CKPT_CKPT_READ_H
#define ZL_CKPT_CKPT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"
#include "ckpt/ckpt_file.h"

/* A parameter of the saved model: DeepSpeed's param_shapes entry, with its offset in the
 * flat vector. */
typedef struct zl_ckpt_param {
    const char *name; /* Hugging Face GPT-2 name */
    int ndim;
    int64_t shape[8];
    size_t offset, numel;
} zl_ckpt_param;

typedef struct zl_ckpt zl_ckpt;

/* Open dir's checkpoint `tag` (NULL: the tag `latest` names; with universal_latest,
 * `latest_universal` first). module_only: do not open the optimizer shards. */
zl_status zl_ckpt_open(zl_ckpt **out, const char *dir, const char *tag, bool universal_latest,
                       bool module_only);
void zl_ckpt_close(zl_ckpt *c);

const char *zl_ckpt_tag(const zl_ckpt *c);
const char *zl_ckpt_path(const zl_ckpt *c);        /* dir/tag */
const zl_ckpt_file *zl_ckpt_states(const zl_ckpt *c); /* the model states (its JSON: the engine's state) */
size_t zl_ckpt_numel(const zl_ckpt *c);            /* elements of the flat parameter vector */
zl_dtype zl_ckpt_dtype(const zl_ckpt *c);          /* the module's (the training's) dtype */
int zl_ckpt_dp_world_size(const zl_ckpt *c);
int zl_ckpt_zero_stage(const zl_ckpt *c);
/* Whether optimizer shards were opened (a checkpoint imported from elsewhere has none). */
bool zl_ckpt_has_optimizer(const zl_ckpt *c);
int zl_ckpt_num_shards(const zl_ckpt *c);
zl_ckpt_file *zl_ckpt_shard(const zl_ckpt *c, int i);
int zl_ckpt_num_params(const zl_ckpt *c);
const zl_ckpt_param *zl_ckpt_param_at(const zl_ckpt *c, int i);

/* Elements [flat, flat + n) of a state tensor ("fp32_flat": the master weights,
 * "exp_avg", "exp_avg_sq": Adam's moments) into dst as dtype, from whichever shards hold
 * them. Needs zl_ckpt_has_optimizer. */
zl_status zl_ckpt_read_state(zl_ckpt *c, const char *name, size_t flat, size_t n, zl_dtype dtype,
                             void *dst);
/* Elements [flat, flat + n) of the module's weights (the model states' tensors by name). */
zl_status zl_ckpt_read_module(zl_ckpt *c, size_t flat, size_t n, zl_dtype dtype, void *dst);
/* The best fp32 values of [flat, flat + n): the master weights when the optimizer state
 * is there, else the module's weights widened. */
zl_status zl_ckpt_read_fp32(zl_ckpt *c, size_t flat, size_t n, float *dst);

#endif
