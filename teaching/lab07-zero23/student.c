/* Lab 07: your code. Each function's contract is in student.h; README.md explains the
 * rules. Replace each LAB_TODO(); with your code and return 0. */
#include "lab.h"
#include "student.h"

int model_state_bytes(const lab07_model *m, int stage, int N, bool bf16, lab07_state *out)
{
    /* Hints:
     * - bytes per element: param and grad 4 (fp32) or 2 (bf16); master, adam.m, adam.v 4.
     * - stages 1 and 2 cut ONE flat vector: pad Psi up to a multiple of 2*N, each rank owns
     *   P = padded / N elements. Which of param/grad/master/m/v are cut at stage 1? at 2?
     * - stage 3 cuts EACH TENSOR: a rank owns ceil(n_i / N) of tensor i, summed.
     * - what does the padded vector mean for the parts that are not cut? */
    (void)m; (void)stage; (void)N; (void)bf16; (void)out;
    LAB_TODO();
}

int gather_bytes(const lab07_model *m, int N, bool bf16, const lab07_stage3 *s, size_t *out)
{
    /* Hints (src/zero/stage3.c, alloc_shards):
     * - the tie owner's layer has its own buffer; the other layers share block buffers
     *   as large as the largest of them: how many, and when is there a second one?
     * - a tensor whose numel is not a multiple of N lands in a padded landing buffer.
     * - tensors of at most the persistence threshold are kept whole in a keep buffer. */
    (void)m; (void)N; (void)bf16; (void)s; (void)out;
    LAB_TODO();
}
