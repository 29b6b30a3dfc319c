/* Lab 03: micro-batches and recomputation. The functions you write, in student.c. */
#ifndef LAB03_STUDENT_H
#define LAB03_STUDENT_H

#include <stddef.h>

/* Task 1. DeepSpeed's batch triad: train_batch_size = micro_batch x gradient_accumulation
 * x world_size. Given the values a config sets (0: not given) and the data-parallel world
 * size, fill the missing ones as DeepSpeed does (README: which one is inferred from which,
 * with integer division) and check the result. On success write out[0] = train_batch_size,
 * out[1] = micro batch per GPU, out[2] = gradient accumulation steps and return 0; return 1
 * when DeepSpeed would refuse the config (nothing given, a value < 1 after inference, or a
 * product that does not match). */
int batch_triad(long train_batch, long micro, long gas, int world, long out[3]);

/* The model's activations, as lab 01 counted them, per layer and per sequence (fp32):
 * layer 0 is the embedding, 1..L the blocks, L+1 the head (the lab fills this from the
 * library's ledger of a one-sequence run). Activations are linear in the micro-batch. */
typedef struct act_model {
    int num_layers;            /* L + 2: embedding, L blocks, head */
    const size_t *layer_bytes; /* [num_layers]: bytes one sequence keeps for each layer */
    size_t stream_bytes;       /* bytes of one sequence's residual stream (T x C x 4) */
} act_model;

/* Task 2. The activation bytes a run keeps at its peak with micro-batch `micro`, `gas`
 * accumulation steps and activation checkpointing every `interval` layers (0: off).
 * Checkpointing cuts the whole list of layers (embedding, blocks, head) into segments of
 * `interval` consecutive layers; it keeps the input of every segment except the first
 * (whose input is the tokens) and, at a time, the activations of one segment, recomputed
 * just before its backward (one area, the size of the largest segment). Write the bytes
 * in *nbytes; return 0. */
int predict_activation_bytes(const act_model *m, int micro, int gas, int interval, size_t *nbytes);

/* The model's shape, for FLOPs. */
typedef struct flop_model {
    int num_layers; /* L blocks */
    int channels;   /* C */
    int vocab_size; /* V */
    int seq_len;    /* T */
} flop_model;

/* Task 3. The extra floating-point operations activation checkpointing (interval > 0)
 * costs in ONE optimizer step of `gas` micro-batches of `micro` sequences: every layer's
 * forward runs once more before the backward. Count a multiply-add as 2 FLOPs and only
 * the matrix products (README: per block 24 N C^2 + 4 B T^2 C, the head 2 N C V, with N
 * = B T). 0 when interval is 0. Write *flops; return 0. */
int predict_recompute_flops(const flop_model *m, int micro, int gas, int interval, double *flops);

#endif
