/* DeepSpeed's memory estimators for model states, without a model or a GPU.
 *
 * DeepSpeed's estimate_zero2_model_states_mem_needs_all_cold (runtime/zero/stage_1_and_2.py)
 * and estimate_zero3_model_states_mem_needs_all_cold (runtime/zero/stage3.py) reproduced:
 * the same formulas (in the same floating-point order, truncated to whole bytes as Python's
 * int() does), the same rows in the same order, and the same printed table, so the numbers
 * equal DeepSpeed's to the last printed digit. These are closed-form estimates of
 * parameters, gradients and optimizer states only (no activations, no buffers); `zerolab
 * plan` is the engine's own, allocation-exact answer.
 *
 * Notation as in DeepSpeed: P total parameters, L parameters of the largest layer,
 * g GPUs per node, n nodes, total_gpus = n*g, abf the additional buffer factor (1.5).
 *
 *   ZeRO-2, offload_optimizer=cpu:   GPU 2P                      CPU P*max(4*total_gpus, 16)*abf
 *   ZeRO-2, offload_optimizer=none:  GPU 2P + int(18P/total_gpus) CPU P*4*g*abf
 *   ZeRO-3 (LLM = 4L, gf = 1/n; zero_init=1 | 0):
 *     param+opt offloaded:  GPU LLM                       CPU P*18*gf*abf | P*max(4g, 18gf)*abf
 *     opt offloaded:        GPU LLM + int(2P/total_gpus)  CPU P*16*gf*abf | P*max(4g, 16gf)*abf
 *     nothing offloaded:    GPU LLM + int(18P/total_gpus) CPU L*4*g*abf   | P*4*g*abf
 *
 * Nothing here allocates, prints unless asked (to the FILE* given), or exits. */
#ifndef ZL_SIM_ESTIMATE_H
#define ZL_SIM_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

/* DeepSpeed's default additional_buffer_factor. */
#define ZL_ESTIMATE_DEFAULT_BUFFER_FACTOR 1.5

/* Largest parameter count accepted: 2^53, below which every count is exact in a double
 * (DeepSpeed's arithmetic is Python floats). */
#define ZL_ESTIMATE_MAX_PARAMS (INT64_C(1) << 53)

typedef struct zl_estimate_request {
    int stage;                       /* 2 or 3 */
    int64_t total_params;            /* P */
    int64_t largest_layer_params;    /* L (ZeRO-3 only) */
    int gpus_per_node;               /* g, DeepSpeed's default 1 */
    int nodes;                       /* n, DeepSpeed's default 1 */
    double additional_buffer_factor; /* abf, DeepSpeed's default 1.5 */
    /* ZeRO-2 per-GPU memory without offload by DeepSpeed's formula before PR #5099 (June
     * 2024): 4P + int(16P/total_gpus), the one behind the 15.93GB its docs still show.
     * Default false: today's 2P + int(18P/total_gpus). */
    bool zero2_legacy;
} zl_estimate_request;

/* One row of the table: the options and the bytes per CPU (host) and per GPU. */
typedef struct zl_estimate_row {
    bool offload_optimizer; /* offload_optimizer=cpu (else none) */
    bool offload_param;     /* ZeRO-3: offload_param=cpu (else none) */
    bool zero_init;         /* ZeRO-3: model built under deepspeed.zero.Init */
    int64_t cpu_bytes, gpu_bytes;
} zl_estimate_row;

#define ZL_ESTIMATE_MAX_ROWS 6

typedef struct zl_estimate_table {
    int stage;
    int num_rows;                   /* 2 (ZeRO-2) or 6 (ZeRO-3) */
    zl_estimate_row rows[ZL_ESTIMATE_MAX_ROWS];
    int64_t largest_layer_memory;   /* ZeRO-3: 4L bytes, the gathered layer's fp16 params and grads */
} zl_estimate_table;

/* DeepSpeed's defaults: stage 3, one node of one GPU, abf 1.5, counts zero. */
void zl_estimate_request_init(zl_estimate_request *r);

/* Checks a request: stage 2 or 3; 1 <= P <= 2^53; for ZeRO-3 1 <= L <= P; g, n >= 1
 * and g*n <= 2^31; abf finite and > 0. ZL_ERR_INVALID with a message naming the value. */
zl_status zl_estimate_validate(const zl_estimate_request *r);

/* DeepSpeed's estimate_zero2_model_states_mem_needs: one row's bytes. */
void zl_estimate_zero2(int64_t total_params, int gpus_per_node, int nodes, bool cpu_offload,
                       double additional_buffer_factor, bool legacy, int64_t *cpu_bytes,
                       int64_t *gpu_bytes);

/* DeepSpeed's estimate_zero3_model_states_mem_needs: one row's bytes, and 4L. */
void zl_estimate_zero3(int64_t total_params, int64_t largest_layer_params, int gpus_per_node,
                       int nodes, bool cpu_offload, bool cpu_offload_params, bool zero_init,
                       double additional_buffer_factor, int64_t *cpu_bytes, int64_t *gpu_bytes,
                       int64_t *largest_layer_memory);

/* Every row of the stage's table, in DeepSpeed's order: ZeRO-2 offload_optimizer cpu,
 * none; ZeRO-3 (param cpu, opt cpu, zero_init 1), (.., 0), (param none, opt cpu, 1), (.., 0),
 * (param none, opt none, 1), (.., 0). Validates the request first; ZL_ERR_INVALID if a
 * byte count reaches 2^63. */
zl_status zl_estimate_compute(const zl_estimate_request *r, zl_estimate_table *t);

/* The options column of a row, as DeepSpeed formats it ("cpu" padded to 4 characters):
 *   "offload_optimizer=cpu " or "offload_optimizer=none" (ZeRO-2),
 *   "offload_param=cpu , offload_optimizer=cpu , zero_init=1" (ZeRO-3). */
void zl_estimate_format_options(int stage, const zl_estimate_row *row, char *buf, size_t size);

/* One table line without the newline: " {cpu/2**30:7.2f}GB | {gpu/2**30:6.2f}GB | {options}",
 * e.g. "   71.69GB |   0.12GB | offload_param=cpu , offload_optimizer=cpu , zero_init=1". */
void zl_estimate_format_row(int stage, const zl_estimate_row *row, char *buf, size_t size);

/* DeepSpeed's printout: the three header lines ("Estimated memory needed ...", "HW: Setup
 * with ...", "SW: Model with ...M total params[, ...M largest layer params]."), the column
 * header "  per CPU  |  per GPU |   Options" and the rows. Validates the request first;
 * ZL_ERR_IO if writing fails. */
zl_status zl_estimate_print(const zl_estimate_request *r, FILE *out);

/* A parameter count from text: a non-negative number, optionally with an exponent or one
 * suffix K (1e3), M (1e6), B or G (1e9), T (1e12), either case: "2851000000", "2851e6",
 * "2.851e9", "2851M", "2.851B". The value must be a whole number (after the suffix) no larger
 * than 2^53. ZL_ERR_INVALID with a message quoting the text otherwise. */
zl_status zl_estimate_parse_count(const char *text, int64_t *count);

/* A parameter tensor, named as in PyTorch's state_dict ("h.3.attn.c_attn.weight"). */
typedef struct zl_estimate_tensor {
    const char *name;
    int64_t numel;
} zl_estimate_tensor;

/* DeepSpeed's model_to_params for a model given as its parameter table: the total (each
 * tensor once), and the largest layer, the largest sum over the tensors of one module,
 * a module being everything before a name's last '.' (as PyTorch's
 * m.parameters(recurse=False) over model.modules()). Sums saturate at INT64_MAX, which
 * zl_estimate_validate refuses. */
void zl_estimate_count_params(const zl_estimate_tensor *tensors, size_t n, int64_t *total,
                              int64_t *largest_layer);

#endif
