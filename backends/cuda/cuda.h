/* What the C library needs of the CUDA backend besides its op table (backends/ops.h's
 * zl_ops_cuda): plain C, no CUDA header, so src/ can include it in any build. The
 * two functions below are plain arithmetic and environment (cuda_alloc.c, built and
 * tested in every build); the rest of the backend is cuda.cu (ZL_HAVE_CUDA), and the
 * trace of real event times at the end (cuda_trace.cu, ZL_HAVE_CUDA).
 *
 * Sizes the backend takes outside the ledger's tags, documented here (docs/building.md):
 *   ZL_CUDA_WORKSPACE_BYTES  reserved at setup: cuBLAS's workspace and gemm_lp's 16-bit
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

/* ---- --trace on a real GPU (cuda_trace.cu; built with ZL_HAVE_CUDA only) ----------------
 *
 * The traced table: zl_ops_cuda with every kernel field (gemm .. cast) wrapped between two
 * CUDA events on the compute stream; the memory and transfer fields (alloc, free, zero,
 * copy, to_host, to_device) are zl_ops_cuda's own. Its records live in the context
 * (zl_cuda_ctx's trace), created on the first call and kept, like the streams, for the
 * process: calling it again returns the same table. A record is named as the simulator
 * names the op (sim/sim.c: "gemm", "layernorm_bwd", "norm", ...), so a real and a
 * simulated trace of one run show the same names. At most ZL_CUDA_TRACE_MAX_SPANS ops are
 * kept from one reset to the next; the rest are counted as dropped. The events cost a few
 * microseconds an op: a traced run is a little slower than an untraced one. */
#define ZL_CUDA_TRACE_MAX_SPANS 50000

/* One op as it ran: seconds since the last zl_cuda_trace_reset, on the GPU's clock. */
typedef struct zl_cuda_span {
    const char *name; /* a string literal (the simulator's name for the op) */
    double start, end;
} zl_cuda_span;

/* The traced table of `cuda` (zl_ops_cuda, or the traced table itself); NULL with
 * ZL_ERR_OOM's message when the records cannot be allocated. Not thread-safe: call it
 * before the first kernel, from the thread that runs them. */
const zl_ops *zl_cuda_trace_ops(const zl_ops *cuda);

/* Forget the records and start the clock (an event on the compute stream): a step's
 * beginning. The first traced op starts it too when no reset came before. */
void zl_cuda_trace_reset(const zl_ops *traced);

/* Wait for the compute stream and convert the records since the reset, in issue order,
 * into spans[0 .. *num_spans) (at most `cap`); *dropped: the ops past the cap (the
 * table's or this one's). ZL_ERR_DEVICE if CUDA failed (zl_cuda_check's message). */
zl_status zl_cuda_trace_read(const zl_ops *traced, zl_cuda_span *spans, size_t cap,
                             size_t *num_spans, size_t *dropped);

#ifdef __cplusplus
}
#endif

#endif
