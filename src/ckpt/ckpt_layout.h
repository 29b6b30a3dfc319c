/* Where a checkpoint's files go: DeepSpeed's directory layout, and the renames that make a
 * save all-or-nothing.
 *
 *   <save_dir>/latest                                      the tag to load, written last
 *   <save_dir>/<tag>/mp_rank_00_model_states.{safetensors,json}
 *                                                          the module's weights (rank 0)
 *                                                          and the engine's state
 *   <save_dir>/<tag>/[bf16_]zero_pp_rank_<R>_mp_rank_00_optim_states.{safetensors,json}
 *                                                          rank R's optimizer state
 *
 * A save writes everything into <save_dir>/.<tag>.partial; once every rank's files are
 * there, one rank renames that directory to <tag> (exchanging it atomically with an older
 * <tag> of the same name, whose files are then removed) and only then rewrites `latest`.
 * Killed at any point, the save leaves `latest` naming a complete tag: the new one or the
 * one before. */
#ifndef ZL_CKPT_CKPT_LAYOUT_H
#define ZL_CKPT_CKPT_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

#define ZL_CKPT_TAG_MAX 128
#define ZL_CKPT_MODEL_STATES "mp_rank_00_model_states"

/* A tag is a directory name: 1 to ZL_CKPT_TAG_MAX printable characters, no '/', not
 * starting with '.'. ZL_ERR_INVALID says which rule it breaks. */
zl_status zl_ckpt_check_tag(const char *tag);

/* "[bf16_]zero_pp_rank_<R>_mp_rank_00_optim_states" (DeepSpeed's name, the prefix when
 * bf16 is enabled). */
void zl_ckpt_optim_base(char *buf, size_t len, int rank, bool bf16);

/* mkdir -p; ZL_ERR_IO names the directory that could not be made. */
zl_status zl_ckpt_mkdirs(const char *dir);

/* The staging directory of a save of `tag` under dir, made empty (an older one, left by a
 * save that was killed, is removed first, and so are temporaries of `latest` such a save
 * left); its path into buf. */
zl_status zl_ckpt_stage(const char *dir, const char *tag, char *buf, size_t len);
/* Make the staged tag the tag (see above) and, if `latest`, point `latest` at it. */
zl_status zl_ckpt_commit(const char *dir, const char *tag, bool latest);
/* Remove a staging directory after a failed save (best effort). */
void zl_ckpt_unstage(const char *dir, const char *tag);

/* The tag `latest` names (its first line, whitespace trimmed). ZL_ERR_NOT_FOUND when
 * there is no such file, with DeepSpeed's advice. `file`: "latest", or "latest_universal". */
zl_status zl_ckpt_read_latest(const char *dir, const char *file, char *tag, size_t len);

/* dir/<tag> as a path into buf, after checking that the tag's directory exists. */
zl_status zl_ckpt_tag_dir(const char *dir, const char *tag, char *buf, size_t len);

#endif
