/* Lab 07: the reference solution (what the instructor shows afterwards). */
#include "lab.h"
#include "../lab07-zero23/student.h"

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

int model_state_bytes(const lab07_model *m, int stage, int N, bool bf16, lab07_state *out)
{
    size_t p16 = bf16 ? 2 : 4; /* the working dtype: parameters and gradients */
    size_t n = (size_t)N;
    size_t mine;   /* elements this rank owns */
    size_t whole;  /* elements of a full (unpartitioned) copy */
    if (stage == 3) {
        /* Per tensor: rank r owns ceil(n_i / N) of each tensor (padding per tensor), and
         * nothing is kept whole. */
        mine = 0;
        for (int i = 0; i < m->num_tensors; i++) mine += ceil_div(m->tensor_numel[i], n);
        whole = mine;
    } else {
        /* Stages 1-2: the flat vector padded to a multiple of 2N (16-bit partitions stay
         * 4-byte aligned), cut into N equal partitions. The full copies are the padded
         * vector too. */
        size_t padded = ceil_div(m->numel, 2 * n) * 2 * n;
        mine = padded / n;
        whole = padded;
    }
    out->param = p16 * (stage >= 3 ? mine : whole);   /* 2 Psi (or 4 Psi) at stages 1-2 */
    out->grad = p16 * (stage >= 2 ? mine : whole);    /* cut from stage 2 */
    out->master = 4 * mine;                           /* optimizer state: cut from stage 1 */
    out->adam_m = 4 * mine;
    out->adam_v = 4 * mine;
    return 0;
}

int gather_bytes(const lab07_model *m, int N, bool bf16, const lab07_stage3 *s, size_t *out)
{
    size_t elt = bf16 ? 2 : 4, n = (size_t)N;
    size_t block = 0, tied = 0, land = 0, keep = 0;
    /* The tie owner (the embedding) has a buffer of its own: the head uses wte at the end
     * of forward and the start of backward, so it stays gathered in between. Every other
     * layer is gathered into a block buffer as large as the largest of them. */
    for (int l = 0; l < m->num_layers; l++) {
        if (l == m->tie_owner) tied = m->layer_numel[l];
        else if (m->layer_numel[l] > block) block = m->layer_numel[l];
    }
    /* A second block buffer only when a prefetch can ever happen: more than one rank, a
     * nonzero prefetch bucket, and room for a layer beyond the one in use under
     * max_live_parameters. */
    int slots = N > 1 && s->prefetch_bucket_size > 0 && (long)block < s->max_live_parameters ? 2 : 1;
    for (int i = 0; i < m->num_tensors; i++) {
        size_t t = m->tensor_numel[i];
        size_t padded = ceil_div(t, n) * n;
        if (padded != t && padded > land) land = padded; /* uneven tensors land here */
        if ((long)t <= s->param_persistence_threshold) keep += t; /* kept whole */
    }
    *out = elt * (tied + (size_t)slots * block + land + keep);
    return 0;
}
