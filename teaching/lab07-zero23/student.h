/* Lab 07: the functions you write (student.c). Read README.md first.
 *
 * Both functions predict what the library's memory ledger (sim/ledger.h) will hold on one
 * rank of N data-parallel ranks; the lab runs the real engine and compares, byte for byte. */
#ifndef LAB07_STUDENT_H
#define LAB07_STUDENT_H

#include <stdbool.h>
#include <stddef.h>

/* The model as ZeRO sees it, filled by the lab from the library's zl_model. */
typedef struct lab07_model {
    size_t numel;               /* Psi: elements of the flat parameter vector */
    int num_tensors;            /* parameter tensors, in the flat vector's order */
    const size_t *tensor_numel; /* [num_tensors] each tensor's elements */
    int num_layers;             /* layers: embed, the blocks, the head */
    const size_t *layer_numel;  /* [num_layers] each layer's parameter elements */
    int tie_owner;              /* the layer that owns the tied embedding (wte), -1: none */
} lab07_model;

/* Bytes of model state on ONE rank, under the ledger's tags. */
typedef struct lab07_state {
    size_t param;   /* "param": the working copy of the parameters (fp32, or bf16) */
    size_t grad;    /* "grad": gradients (the parameters' dtype) */
    size_t master;  /* "master": fp32 master weights */
    size_t adam_m;  /* "adam.m": Adam's first moment (fp32) */
    size_t adam_v;  /* "adam.v": Adam's second moment (fp32) */
} lab07_state;

/* Task 1. The model state of one rank at ZeRO stage `stage` (1, 2 or 3) over N ranks,
 * training in fp32 (bf16 false) or in bf16 with fp32 master weights and Adam (bf16
 * true): the ZeRO paper's (2 + 2 + K) Psi split by stage, with zerolab's padding
 * (README, "Padding"). Writes *out, returns 0. */
int model_state_bytes(const lab07_model *m, int stage, int N, bool bf16, lab07_state *out);

/* The stage-3 settings that shape the gathered parameters (DeepSpeed's names). */
typedef struct lab07_stage3 {
    long prefetch_bucket_size;        /* stage3_prefetch_bucket_size (elements) */
    long max_live_parameters;         /* stage3_max_live_parameters (elements) */
    long param_persistence_threshold; /* stage3_param_persistence_threshold (elements) */
} lab07_stage3;

/* Task 2. The peak bytes under the ledger's "gather" tag at stage 3 over N ranks: the
 * buffers whole parameters are gathered into (README, "What stage 3 gathers"). bf16: the
 * parameters are 2 bytes, else 4. Writes *out, returns 0. */
int gather_bytes(const lab07_model *m, int N, bool bf16, const lab07_stage3 *s, size_t *out);

#endif
