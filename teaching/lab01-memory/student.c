/* Lab 01: where the memory goes. Write the four functions (student.h has the contracts,
 * README.md the background), then run `make lab01-check`. */
#include "lab.h"
#include "student.h"

int count_params(const mem_setup *s, size_t *numel)
{
    /* Hints: list the weights of GPT-2 layer by layer: wte (V,C), wpe (maxT,C); per block
     * ln_1 (weight, bias), c_attn (3C,C) + bias, attn c_proj (C,C) + bias, ln_2, mlp c_fc
     * (4C,C) + bias, mlp c_proj (C,4C) + bias; then ln_f. The output layer is wte again.
     * Do the arithmetic in size_t. */
    (void)s;
    (void)numel;
    LAB_TODO();
}

int predict_activations(const mem_setup *s, size_t *nbytes)
{
    /* Hints: N = B*T tokens. Count elements per layer from the README's table (embed,
     * each block, head), in the training dtype (4 or 2 bytes), except the statistics,
     * which are fp32 always. The attention probabilities are (B, NH, T, T): the term that
     * grows with T^2. */
    (void)s;
    (void)nbytes;
    LAB_TODO();
}

int predict_memory(const mem_setup *s, mem_bytes *out)
{
    /* Hints: bytes per parameter: fp32 trains with 4 (weight) + 4 (grad) + 4 + 4 (Adam);
     * mixed precision with 2 + 2 + 4 (master) + 4 + 4: ZeRO's 2Ψ + 2Ψ + 12Ψ = 16Ψ. */
    (void)s;
    (void)out;
    LAB_TODO();
}

int find_oom_threshold(fits_fn fits, void *ctx, int b_max, int *b_largest)
{
    /* Hints: first handle fits(ctx, 1) != 1. Then double b while fits(ctx, b) == 1 (and
     * b stays <= b_max): the answer lies in [last good, first bad). Bisect that interval,
     * keeping the invariant "lo fits, hi does not". Pass fits' negative values on. */
    (void)fits;
    (void)ctx;
    (void)b_max;
    (void)b_largest;
    LAB_TODO();
}
