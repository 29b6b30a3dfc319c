/* What the C library needs of the CUDA backend besides its op table (backends/ops.h's
 * zl_ops_cuda): plain C, no CUDA header, so src/ can include it in any build. The
 * two functions below are plain arithmetic and environment (cuda_alloc.c, built and
 * tested in every build); the rest of the backend is cuda.cu (ZL_HAVE_CUDA).
 *
 * Sizes the backend takes outside the ledger's tags, documented here (docs/building.md):
 *   ZL_CUDA_WORKSPACE_BYTES  reserved at setup: cuBLASLt's workspace and gemm_lp's 16-bit
 *                            copies of its operands (the context's `workspace`)
 *   ZL_CUDA_RESERVE_BYTES    left free when the budget is the card's free memory: NCCL's
 *                            buffers, cuBLAS's own workspace, kernels loaded lazily */
#ifndef ZL_BACKENDS_CUDA_CUDA_H
#define ZL_BACKENDS_CUDA_CUDA_H

#include <stddef.h>

#include "backends/ops.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZL_CUDA_WORKSPACE_BYTES ((size_t)256 << 20)
#define ZL_CUDA_RESERVE_BYTES ((size_t)512 << 20)

/* The local rank that picks this process's GPU (modulo the devices): the launcher's
 * MPI_LOCALRANKID (MPICH Hydra), OMPI_COMM_WORLD_LOCAL_RANK (Open MPI), SLURM_LOCALID,
 * else 0. */
int zl_cuda_local_rank(void);

/* The arena's budget for a requested one (0: none): the card's free memory less
 * ZL_CUDA_RESERVE_BYTES when none is asked, else the smaller of the two; *short_of is
 * set when the card has less than asked. Pure arithmetic, for the tests. */
size_t zl_cuda_budget(size_t asked, size_t card_free, int *short_of);

/* The arena to reserve on GPU `device` for a budget asked (0: none), given the card's
 * free bytes: zl_cuda_budget's, with a warning when the card has less than asked, and
 * ZL_ERR_OOM when it has (almost) nothing. */
zl_status zl__cuda_arena_budget(int device, size_t asked, size_t card_free, size_t *budget);

#ifdef __cplusplus
}
#endif

#endif
