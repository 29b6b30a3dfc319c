/* DeepSpeed's folder layout and file names for swapped tensors (ZeRO-Infinity), so a
 * swap folder of zerolab reads like DeepSpeed's (runtime/swap_tensor/):
 *
 *   <nvme_path>/zero_stage_3/<dtype>params/rank<R>/<id>_param.tensor.swp
 *       stage-3 parameter partitions (offload_param.device nvme); <dtype> is PyTorch's
 *       name of the model dtype: float16params, bfloat16params, float32params
 *   <nvme_path>/zero_stage_3/optimizer/rank<R>/<id>.tensor.swp
 *       fp32 master partition and each optimizer state (offload_optimizer.device nvme),
 *       one file per tensor
 *   <nvme_path>/zero_stage_3/optimizer/rank<R>/<id>_gradient_<offset>_<numel>.tensor.swp
 *       a swapped gradient slice of parameter <id>: <offset> and <numel> in elements
 *
 * <R> is the global rank. DeepSpeed's <id> is a Python object id; zerolab's is the
 * tensor's index in its table. The functions write into `out` (cap bytes) and return
 * ZL_ERR_INVALID when it does not fit or the dtype has no swap folder. */
#ifndef ZL_IO_SWAP_LAYOUT_H
#define ZL_IO_SWAP_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"

/* "zero_stage_3/float16params/rank0" (relative to nvme_path). */
zl_status zl_swap_param_subdir(char *out, size_t cap, zl_dtype dtype, int rank);
/* "zero_stage_3/optimizer/rank0". */
zl_status zl_swap_optimizer_subdir(char *out, size_t cap, int rank);

/* "<id>_param.tensor.swp" */
zl_status zl_swap_param_file_name(char *out, size_t cap, int64_t id);
/* "<id>.tensor.swp" */
zl_status zl_swap_optimizer_file_name(char *out, size_t cap, int64_t id);
/* "<id>_gradient_<offset>_<numel>.tensor.swp" */
zl_status zl_swap_gradient_file_name(char *out, size_t cap, int64_t id, int64_t offset,
                                     int64_t numel);

#endif
