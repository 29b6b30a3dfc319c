/* Lab 06: write the ZeRO-1 pieces here (student.h has their contracts). */
#include "lab.h"
#include "student.h"

int zero1_partition(size_t numel, int N, int r, size_t *padded, size_t *begin, size_t *end)
{
    /* Hints: round numel up to a multiple of 2 * N; each shard is padded / N; rank r's
     * shard starts at r times that. Read src/zero/partition.h if you are stuck. */
    (void)numel; (void)N; (void)r; (void)padded; (void)begin; (void)end;
    LAB_TODO();
}

int zero1_owned_ranges(const zl_param_range *in, int n, size_t begin, size_t end,
                       zl_param_range *out, int *nout)
{
    /* Hints: for each range, clamp [offset, offset + numel) to [begin, end); skip it if
     * nothing is left; else write it with offset - begin. Keep the decay flag. */
    (void)in; (void)n; (void)begin; (void)end; (void)out; (void)nout;
    LAB_TODO();
}

int zero1_state_bytes(size_t numel, int N, size_t *bytes)
{
    /* Hints: master, m and v are fp32 (4 bytes each) for every element of one shard;
     * the shard is padded / N (use your zero1_partition). */
    (void)numel; (void)N; (void)bytes;
    LAB_TODO();
}

int zero1_step(const zero1_state *s, float *params, float *grads)
{
    /* Hints: three library calls (student.h lists them): reduce the gradients, step the
     * shard with zl_adamw_step (grad_scale 1/N), allgather the parameters. Check each
     * zl_comm_* status. */
    (void)s; (void)params; (void)grads;
    LAB_TODO();
}
