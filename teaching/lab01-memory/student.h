/* Lab 01: where the memory goes. The functions you write, in student.c.
 *
 * A GPT-2 model (zerolab's: pre-LayerNorm blocks, learned positions, the token embedding
 * tied to the output layer, no dropout) is trained with AdamW on one simulated GPU. You
 * predict, byte for byte, what the device holds, and the lab compares your numbers with
 * the library's memory ledger (sim/ledger.h), which records every allocation by tag:
 * "param", "grad", "master", "adam.m", "adam.v", and "act.<layer>" for the activations a
 * layer keeps for its backward. */
#ifndef LAB01_STUDENT_H
#define LAB01_STUDENT_H

#include <stdbool.h>
#include <stddef.h>

/* One training setup: the model's shape, the micro-batch, the precision. */
typedef struct mem_setup {
    int vocab_size;  /* V: rows of the token embedding (wte, tied to the output layer) */
    int max_seq_len; /* rows of the position embedding (wpe): parameters only */
    int num_layers;  /* L transformer blocks */
    int num_heads;   /* NH attention heads; C % NH == 0 */
    int channels;    /* C = d_model (always even in this lab) */
    int micro_batch; /* B sequences per micro-batch */
    int seq_len;     /* T tokens per sequence (T <= max_seq_len) */
    /* false: fp32 everything. true: mixed precision (bf16 or fp16: same bytes): parameters,
     * gradients and activations in 16 bits, plus the optimizer's fp32 master weights, with
     * Adam's moments in fp32 too. Statistics (LayerNorm mean/rstd, per-token losses) stay
     * fp32 in both. */
    bool mixed;
} mem_setup;

/* What one rank's device holds, in bytes (each is one ledger tag's peak). */
typedef struct mem_bytes {
    size_t params;      /* "param": the model's weights, in the training dtype */
    size_t grads;       /* "grad": one gradient per weight, in the training dtype */
    size_t master;      /* "master": fp32 copy of the weights (0 when training in fp32) */
    size_t adam_m;      /* "adam.m": Adam's first moment, fp32 */
    size_t adam_v;      /* "adam.v": Adam's second moment, fp32 */
    size_t activations; /* the sum of "act.embed", "act.h.0".."act.h.L-1", "act.head": what
                         * the forward of ONE micro-batch saves for its backward */
    size_t total;       /* the sum of the six above */
} mem_bytes;

/* Task 1. The number of parameters Ψ of the model in *numel (tied embedding counted once).
 * Return 0, or LAB_NOT_DONE. */
int count_params(const mem_setup *s, size_t *numel);

/* Task 2. The bytes of activations one micro-batch saves for backward (see README for what
 * each layer keeps), in *nbytes. Return 0. */
int predict_activations(const mem_setup *s, size_t *nbytes);

/* Task 3. All of mem_bytes for setup s (use the two functions above). Return 0. */
int predict_memory(const mem_setup *s, mem_bytes *out);

/* The lab's question "does micro-batch b fit on the card?": 1 yes, 0 no (out of memory),
 * < 0 something else went wrong (stop and return it). It builds the whole run with the
 * library for micro-batch b; b must be in [1, b_max]. */
typedef int (*fits_fn)(void *ctx, int b);

/* Task 4. The largest micro-batch b in [1, b_max] with fits(ctx, b) == 1 in *b_largest (0
 * when not even b = 1 fits). Memory grows with b, so fits is 1 up to the threshold and 0
 * after it. Each call builds a run: find the answer in O(log b_max) calls (doubling, then
 * bisection), not by trying every b. Return 0, or the negative value fits returned. */
int find_oom_threshold(fits_fn fits, void *ctx, int b_max, int *b_largest);

#endif
