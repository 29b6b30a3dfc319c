/* Lab 03: micro-batches and recomputation. Write the three functions (student.h has the
 * contracts, README.md the background), then run `make lab03-check`. */
#include "lab.h"
#include "student.h"

int batch_triad(long train_batch, long micro, long gas, int world, long out[3])
{
    /* Hints: six cases, by which of the three are given (README's table). Infer with
     * integer division, in the order DeepSpeed does (train_batch / micro / world for the
     * accumulation steps). Then the checks: each >= 1, and the product equal to
     * train_batch_size. */
    (void)train_batch, (void)micro, (void)gas, (void)world, (void)out;
    LAB_TODO();
}

int predict_activation_bytes(const act_model *m, int micro, int gas, int interval, size_t *nbytes)
{
    /* Hints: without checkpointing, every layer's bytes for `micro` sequences. Does `gas`
     * change anything (the micro-batches run one after another)? With checkpointing:
     * the largest segment's sum, plus a stream for each segment that does not start at
     * layer 0. */
    (void)m, (void)micro, (void)gas, (void)interval, (void)nbytes;
    LAB_TODO();
}

int predict_recompute_flops(const flop_model *m, int micro, int gas, int interval, double *flops)
{
    /* Hints: one more forward of the whole model per micro-batch, and a step has `gas`
     * of them. Do the arithmetic in double. */
    (void)m, (void)micro, (void)gas, (void)interval, (void)flops;
    LAB_TODO();
}
