/* A model is an ordered list of layers, and a table of named parameters.
 *
 * The engine, not the model, walks the list: forward from the first layer to the last,
 * backward in reverse. That is what lets ZeRO-3 gather one layer's parameters just before
 * it runs, activation checkpointing recompute one layer, and the pipeline cut the list
 * into stages, all without the layers knowing.
 *
 * Parameters live in flat buffers. The table gives each parameter a name, a shape and an
 * offset into the flat (unsharded) parameter vector, in a canonical order that never
 * depends on parallelism. Layers do not hold data pointers of their own: they read their
 * parameters through model->param_ptr[i] and write gradients through model->grad_ptr[i],
 * which the engine points wherever the values currently are (a slice of the flat buffer,
 * or a buffer that ZeRO-3 has just gathered).
 *
 * The residual stream between layers is (B, T, C). The first layer takes token ids, the
 * last produces per-token losses. */
#ifndef ZL_MODEL_MODEL_H
#define ZL_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "core/device.h"
#include "core/tensor.h"

/* Shape of a GPT-2 style model. */
typedef struct zl_gpt_config {
    char name[64];
    int vocab_size;  /* V */
    int max_seq_len; /* maxT: rows of the position table */
    int num_layers;  /* L */
    int num_heads;   /* NH */
    int channels;    /* C; C % NH == 0 */
} zl_gpt_config;

#define ZL_PARAM_NAME_LEN 48
#define ZL_MAX_PARAM_DIMS 2

/* How a parameter is split across a tensor-parallel group (Megatron-LM's layers;
 * zl_model_set_tensor_parallel). The table declares it for every parameter, with or
 * without a group: it is the layer's layout, which checkpoints and plans read. */
typedef enum zl_split {
    ZL_SPLIT_NONE, /* every rank holds all of it (LayerNorms, the row-parallel biases) */
    ZL_SPLIT_ROWS, /* dim 0, made of split_parts equal blocks (the fused QKV: 3), of which
                    * rank r holds the r-th t-th of each: column-parallel weights, biases */
    ZL_SPLIT_COLS, /* dim 1: rank r holds columns [r K/t, (r+1) K/t): row-parallel weights */
    ZL_SPLIT_VOCAB, /* dim 0, the vocabulary: rank r holds rows [r c, min(V, (r+1) c)) with
                     * c = ceil(V/t), the last rank fewer when t does not divide V (Megatron
                     * pads the vocabulary instead, which changes the model) */
} zl_split;

/* How a parameter is initialised: GPT-2's scheme (as in nanoGPT/llm.c). */
typedef enum zl_param_init {
    ZL_INIT_NORMAL,          /* N(0, 0.02^2) */
    ZL_INIT_NORMAL_RESIDUAL, /* N(0, (0.02/sqrt(2L))^2): projections into the residual stream */
    ZL_INIT_ZEROS,
    ZL_INIT_ONES,
} zl_param_init;

typedef struct zl_param_info {
    char name[ZL_PARAM_NAME_LEN]; /* Hugging Face GPT-2 names, e.g. "h.3.attn.c_attn.weight" */
    int ndim;
    int64_t shape[ZL_MAX_PARAM_DIMS];
    size_t numel;
    size_t offset;       /* element offset in the flat parameter vector */
    zl_param_init init;
    bool weight_decay;   /* GPT-2 convention: 2-D weights decay; biases and LayerNorm do not */
    /* Read only as a GEMM's B operand (the blocks' Linear weights): a 16-bit model feeds
     * its stored values to gemm_lp (param16_ptr) and makes no f32 copy of it. */
    bool gemm_only;
    int layer;           /* index of the owning layer */
    /* Its place in the whole model, whatever part of it this zl_model holds (a pipeline
     * stage's: zl_model_set_stage): the index in the whole table, which is the stream its
     * initial values are drawn from, and the offset in the whole flat vector. */
    int model_index;
    size_t model_offset;
    /* Tensor parallelism: the split, and the whole parameter's shape (shape is this rank's
     * part of it). */
    zl_split split;
    int split_parts;
    int64_t model_shape[ZL_MAX_PARAM_DIMS];
} zl_param_info;

typedef enum zl_layer_kind { ZL_LAYER_EMBED, ZL_LAYER_BLOCK, ZL_LAYER_HEAD } zl_layer_kind;

struct zl_model;

/* What a layer kind implements. Pointers into the model's buffers are passed in; the
 * layer allocates nothing while it runs. */
typedef struct zl_layer_vtable {
    /* Forward one micro-batch. inp: (B,T,C) residual stream, or NULL for the first layer
     * (which reads the current slot's inputs). Saves what backward needs in the layer's
     * activations of the current slot and returns its output (B,T,C) there; the last layer
     * returns NULL and writes the slot's losses. */
    const float *(*forward)(struct zl_model *m, int layer, const float *inp);
    /* Backward: inp is the same input forward saw; dout (B,T,C) is the gradient of the
     * layer's output (NULL for the last layer, which starts from the loss); dinp (B,T,C)
     * receives the gradient of its input (overwritten, not accumulated; NULL for the first
     * layer). Parameter gradients are accumulated (+=) into model->grad_ptr. */
    void (*backward)(struct zl_model *m, int layer, const float *inp, const float *dout,
                     float *dinp);
    /* Floating-point operations of one forward pass over (B, T); backward is twice this. */
    double (*flops)(const struct zl_model *m, int layer, int B, int T);
    /* Floats of activations saved for backward at (B, T), of which the last
     * act_stats_numel are statistics kept in f32 whatever the model's precision
     * (LayerNorm's mean and rstd, the per-token losses; NULL: none). */
    size_t (*act_numel)(const struct zl_model *m, int layer, int B, int T);
    size_t (*act_stats_numel)(const struct zl_model *m, int layer, int B, int T);
    /* Floats of temporary space backward needs at (B, T); one buffer of the largest
     * layer's need is shared, since layers run backward one at a time. */
    size_t (*scratch_numel)(const struct zl_model *m, int layer, int B, int T);
} zl_layer_vtable;

typedef struct zl_layer {
    zl_layer_kind kind;
    const zl_layer_vtable *vt;
    char name[32];     /* "embed", "h.0" ... "h.11", "head"; activations are tagged "act.<name>" */
    int block;         /* block index for ZL_LAYER_BLOCK, else -1 */
    int first_param;   /* the parameters this layer owns: [first_param, first_param + num_params) */
    int num_params;
} zl_layer;

/* What one layer saved in one slot. */
typedef struct zl_layer_acts {
    zl_tensor acts;    /* saved activations, (act_numel - act_stats_numel) elements of the
                        * model's dtype */
    zl_tensor stats;   /* (act_stats_numel) f32, the same tag */
    const float *out;  /* f32: output of the last forward (B,T,C), inside acts; the next
                        * layer's input, which its backward needs again */
    size_t out_offset; /* where out sits in acts (elements) */
} zl_layer_acts;

/* One micro-batch in flight (DeepSpeed's pipeline buffer, `buffer_id`): its tokens, and
 * everything its forward saved for its backward. A slot is filled by a forward and read by
 * the backward of the same micro-batch; with several slots, several micro-batches can be
 * between their forward and their backward (a pipeline stage's 1F1B holds up to the
 * number of stages). The layers run on the model's current slot (zl_model_use_slot). */
typedef struct zl_act_slot {
    int32_t *inputs;        /* (B,T) token ids: device memory, tag "input" */
    int32_t *targets;       /* (B,T), -1 = ignore */
    int num_targets;        /* targets >= 0 in this micro-batch */
    float *losses;          /* (B,T) per-token loss, written by the head's forward */
    zl_layer_acts *layers;  /* [num_layers] */
    /* Activation checkpointing (zl_model_set_checkpointing): each segment's input
     * (B,T,C) in the model's dtype, tag "act_ckpt", on the checkpoint store (NULL data
     * for a segment that starts at layer 0: its input is the tokens), and the RNG
     * position its forward started at; [num_segments]. NULL when checkpointing is off. */
    zl_tensor *ckpt_inputs;
    uint64_t *ckpt_rng;
    /* A pipeline stage after the first: the activation received from the stage before,
     * (B,T,C) in the model's dtype, tag "act.pipe_in": its first layer's input, kept until
     * that layer's backward (DeepSpeed's pipe_buffers["inputs"]). */
    zl_tensor pipe_in;
} zl_act_slot;

/* Activation checkpointing (DeepSpeed's checkpointing.checkpoint over segments of
 * `interval` layers, pipeline.activation_checkpoint_interval). The layers [first, last)
 * are cut into segments [first + j*k, min(first + (j+1)*k, last)). Forward keeps only
 * each segment's input (per slot, tag "act_ckpt"); every layer of every segment computes
 * into ONE segment-sized area shared by all slots and segments (tag "act.segment"), so
 * that backward, which recomputes a segment's forward from its input just before the
 * segment's backward, finds the layers' activations there. Off (interval 0): the layout
 * of one buffer per layer and slot, unchanged. */
typedef struct zl_model_ckpt {
    int interval;          /* k: layers per segment; 0: off */
    int first, last;       /* the layers the segments cover */
    int num_segments;
    zl_device *store;      /* where the segment inputs live: the accelerator, or the host
                            * device (cpu_checkpointing: copies charged to the host link) */
    zl_tensor acts, stats; /* one segment's activations (model dtype) and statistics (f32) */
    size_t *offset, *stats_offset; /* [num_layers]: each layer's place in acts / stats */
    /* A host store: the segment input's stop on the accelerator, (B,T,C) model dtype,
     * tag "act_ckpt", between the host copy and the segment's first layer. */
    zl_tensor staging;
    bool recomputing;      /* the engine is recomputing a segment (ZeRO-3's prefetch
                            * follows that order: zl_model_next_layer) */
} zl_model_ckpt;

/* Tied parameters (DeepSpeed's TiedLayerSpec): one parameter that several layers use. The
 * owner layer holds it in the parameter table; each member reads it through
 * param_ptr[param] and adds its gradient into grad_ptr[param]. The members come after the
 * owner in forward, so in backward they run first and the owner last: the tied gradient is
 * complete when the owner's backward returns, and is reduced once, with the owner's.
 * GPT-2 ties the token embedding (owned by "embed") with the LM head. Code that must know
 * about a tie reads these groups (zl_model_tie_*), never "the first" or "the last" layer. */
#define ZL_TIE_MAX_MEMBERS 4
#define ZL_MAX_TIES 1 /* GPT-2's; the ZeRO strategies keep one owner's staging (src/zero) */
typedef struct zl_tie_group {
    char name[32];   /* "wte" */
    int param;       /* the tied parameter's index in the parameter table */
    size_t numel;    /* its elements */
    int owner;       /* the layer that owns it */
    int num_members; /* layers that use it besides the owner */
    int members[ZL_TIE_MAX_MEMBERS];
    /* A member bound to a copy of its own (as a pipeline stage that holds the head but not
     * the embedding does): f32 values and gradient of the parameter's numel, set by the
     * engine; NULL: the member shares the owner's binding (param_ptr/grad_ptr[param]).
     * The copies' gradients are summed with the owner's once per step (ReduceTiedGrads). */
    float *copy_values[ZL_TIE_MAX_MEMBERS], *copy_grads[ZL_TIE_MAX_MEMBERS];
    /* On a pipeline stage (zl_model_set_stage), which of these layers the stage holds. A
     * stage without the owner has no entry for the parameter (param is -1): each member it
     * holds must be bound to a copy. */
    bool owner_here;
    bool member_here[ZL_TIE_MAX_MEMBERS];
} zl_tie_group;

typedef struct zl_model {
    zl_gpt_config cfg;
    zl_device *device;

    int num_layers;    /* L + 2 */
    zl_layer *layers;
    int num_params;
    zl_param_info *params;
    size_t params_numel; /* elements of the flat parameter vector */
    /* The layers this model holds, [stage_first, stage_last): all of them, unless it is a
     * pipeline stage (zl_model_set_stage). The parameter table, the flat vector and the
     * activations then hold those layers' only; the layer list stays whole, so layer
     * indices and names are the whole model's. model_numel: the whole model's flat vector
     * (params_numel without stages). */
    int stage_first, stage_last;
    size_t model_numel;
    /* Tensor parallelism (zl_model_set_tensor_parallel): the group (NULL: none), its size
     * t (1: none) and this rank's place in it. The blocks then run Megatron-LM's layers
     * on NH/t heads and 4C/t hidden units: column-parallel QKV and c_fc, row-parallel
     * projections whose partial sums are allreduced over tp (Megatron's g), and the
     * gradients of their inputs allreduced in backward (its f). comm_status: the first
     * failure of such an allreduce (a layer cannot return one; the engine checks it after
     * each layer). */
    struct zl_comm *tp;
    int tp_size, tp_rank;
    zl_status comm_status;
    zl_tensor tp_wire; /* (B,T,C) in the 16-bit dtype, "tp.buffer": what a 16-bit allreduce sends */
    /* Sequence parallelism (Korthikanti et al., with tensor parallelism): the residual
     * stream between the blocks, and the LayerNorms and residual adds on it, are split
     * over the tensor-parallel group by token rows: rank r holds rows [r N/t, (r+1) N/t) of
     * the N = B*T (B,T,C) stream's rows (Megatron splits the sequence of its (T,B,C)
     * layout; the token rows of a (B,T,C) layout are the same thing). A block gathers its
     * LayerNorm's output before the column-parallel layer and reduce-scatters the
     * row-parallel layer's partial sums (in place of the allreduces), and the parameters
     * every rank holds whole get partial gradients, summed over the group at the boundary
     * (zl_engine). stream_rows: the rows of the stream this rank holds (N, or N/t).
     * tp_full: (N,C) f32, "tp.gather": a gathered LayerNorm output. */
    bool seq_parallel;
    int stream_rows;
    zl_tensor tp_full;
    int num_ties;
    zl_tie_group ties[ZL_MAX_TIES];

    /* Storage precision of parameters, activations and their gradients (ZL_F32, ZL_F16 or
     * ZL_BF16; set by the engine). Kernels compute in f32; under a 16-bit type every
     * tensor a layer produces is rounded to it as the op writes it (ops->round), so the
     * values, overflows and underflows are those of a model stored in 16 bits, and GEMMs
     * run as gemm_lp, with f32 accumulation, as tensor cores do. LayerNorm's mean and
     * rstd and the per-token losses stay f32, as in PyTorch. */
    zl_dtype dtype;

    /* Set by the engine before running layers. */
    float **param_ptr; /* [num_params] */
    float **grad_ptr;  /* [num_params] */
    /* [num_params]: the parameter's values as stored in `dtype` (16 bits), bound with
     * zl_model_bind_layer_params16; NULL in f32. GEMMs read their weights from here. */
    const void **param16_ptr;
    /* [num_params]: the gradient behind grad_ptr[i] is dead (zl_model_mark_grads_fresh):
     * the first kernel of the next backward that writes it overwrites it instead of adding.
     * All false unless the engine marks them. */
    bool *grad_fresh;

    /* Micro-batch state, allocated by zl_model_alloc_activations for (B, T) and
     * num_slots micro-batches in flight; layers run on slots[slot]. */
    int B, T;
    int num_slots;
    zl_act_slot *slots; /* [num_slots] */
    int slot;           /* the current slot (zl_model_use_slot) */
    float loss_grad;   /* d(objective)/d(each token's loss), set by the engine before backward */
    zl_tensor scratch; /* backward scratch shared by all layers (tag "act.grad") */
    /* 16 bits: layers compute in f32, in act_work (the largest layer's acts), and their
     * saved activations are stored in 16 bits after forward and widened again before
     * backward; act_in holds the f32 input (B,T,C) of the layer that runs. Tag "cast". */
    zl_tensor act_work, act_in;
    zl_model_ckpt ckpt;
    /* The RNG position: advanced by one per layer forward call (the engine's), so that a
     * layer that draws random numbers (dropout, once there is one) draws them at
     * (seed, rng_pos). A recomputed segment runs from the position its first forward
     * started at, so it sees the same stream. */
    uint64_t rng_pos;
} zl_model;

/* Build the layer list and the parameter table for a GPT-2 style model (no memory for
 * parameters or activations yet). Fails with ZL_ERR_CONFIG on inconsistent shapes. */
zl_status zl_model_create(zl_model *m, const zl_gpt_config *cfg, zl_device *dev);
void zl_model_destroy(zl_model *m);

/* Split the model over the tensor-parallel group tp (Megatron-LM's layout, the
 * parameters' split), right after zl_model_create, before zl_model_set_stage and any
 * allocation: every split parameter takes this rank's shape and the table is laid out
 * again. The blocks split heads and MLP units; the token embedding (and so the head's
 * logits and cross-entropy) splits the vocabulary. ZL_ERR_CONFIG unless t divides the
 * heads and the channels, and is at most the vocabulary. */
zl_status zl_model_set_tensor_parallel(zl_model *m, struct zl_comm *tp);
/* This rank's words [*v0, *v1) of the vocabulary: all of it without tensor parallelism. */
void zl_model_vocab_range(const zl_model *m, int *v0, int *v1);
/* Sequence parallelism over the tensor-parallel group (model.h, seq_parallel), after
 * zl_model_set_tensor_parallel and before the activations are allocated; needs t > 1, and
 * zl_model_alloc_activations then needs B*T divisible by t. */
void zl_model_set_sequence_parallel(zl_model *m);
/* The residual stream's elements on this rank: stream_rows x C. */
static inline size_t zl_model_stream_numel(const zl_model *m)
{
    return (size_t)m->stream_rows * (size_t)m->cfg.channels;
}
/* The first of this rank's stream rows in the micro-batch's N (0 without sequence
 * parallelism). */
static inline size_t zl_model_stream_row0(const zl_model *m)
{
    return m->seq_parallel ? (size_t)m->tp_rank * (size_t)m->stream_rows : 0;
}
/* The index in the whole (unsplit) parameter p of element e of this rank's part of it:
 * what initialisation draws, and how a test compares a part with a one-rank run. */
size_t zl_model_param_whole_index(const zl_model *m, const zl_param_info *p, size_t e);

/* Make m the pipeline stage that holds layers [first, last) of the whole model (before
 * anything is allocated for it): the parameter table keeps those layers' parameters,
 * renumbered from 0 in the same order, with offsets into the stage's own flat vector
 * (model_index and model_offset keep their place in the whole model, so initial values
 * and checkpoints see the whole model's); the other layers keep their place in the list
 * with no parameters; activations are allocated for [first, last) only. A tie whose owner
 * is elsewhere loses its parameter entry (param -1): its members here read a copy. */
void zl_model_set_stage(zl_model *m, int first, int last);
/* Is layer l one of this model's (a stage's)? */
static inline bool zl_model_has_layer(const zl_model *m, int l)
{
    return l >= m->stage_first && l < m->stage_last;
}
/* A stage after the first: the current slot's received activation (act.pipe_in) as its
 * first layer's f32 input (in 16 bits widened into act_in: valid until the next layer's
 * input replaces it). */
const float *zl_model_stage_input(zl_model *m);
/* A stage before the last: the current slot's last layer's output as it goes to the next
 * stage, in the model's dtype (B,T,C): the f32 output, or the 16-bit stored bits. */
const void *zl_model_stage_output(zl_model *m);

/* Largest element count of one layer's activations and scratch: 2^60, so that their
 * bytes (at most 8 per element) fit in 64 bits. */
#define ZL_MODEL_MAX_ACT_NUMEL ((size_t)1 << 60)

/* Allocate num_slots slots (zl_act_slot) for micro-batch (B, T) through the device: each
 * layer's activations, tagged "act.<layer>", and the inputs/targets ("input"); plus the
 * backward scratch, shared by all slots. ZL_ERR_INVALID (naming B, T and the layer) when
 * B*T passes INT_MAX or a layer's element counts pass ZL_MODEL_MAX_ACT_NUMEL. The current
 * slot is 0. */
zl_status zl_model_alloc_activations(zl_model *m, int B, int T, int num_slots);

/* Turn activation checkpointing on, before zl_model_alloc_activations: segments of
 * `interval` layers (> 0) over [first, last), their inputs kept on `store` (the model's
 * device, or a host device). */
void zl_model_set_checkpointing(zl_model *m, int interval, int first, int last, zl_device *store);
/* Segment j's layers [*begin, *end); the segment that holds layer l. */
void zl_model_ckpt_segment(const zl_model *m, int j, int *begin, int *end);
int zl_model_ckpt_segment_of(const zl_model *m, int l);
/* Forward reaches layer l, the first of its segment, with input x (NULL at layer 0):
 * keep x as the segment's input (and the RNG position), and return the input layer l
 * reads (a copy of x out of the shared area, which layer l may overwrite). */
const float *zl_model_ckpt_save(zl_model *m, int l, const float *x);
/* Before recomputing the segment that starts at layer l: its saved input, back on the
 * accelerator (copied from the host store and waited for), for layer l's forward; NULL
 * at layer 0. Sets m->rng_pos to the segment's saved position. */
const float *zl_model_ckpt_restore(zl_model *m, int l);
/* The layer that runs after layer l in the engine's order (forward: l+1; backward: l-1),
 * with checkpointing: a recomputed segment runs forward then backward, then the segment
 * before it is recomputed; -1: none (or l itself). */
int zl_model_next_layer(const zl_model *m, int l, bool backward);

/* Run the layers on slot s (0 <= s < num_slots) from now on. */
void zl_model_use_slot(zl_model *m, int s);
/* The current slot. */
static inline zl_act_slot *zl_model_slot(zl_model *m) { return &m->slots[m->slot]; }

/* The engine's walk over the layers. After layer l's forward returned `out`: keep its
 * activations (16 bits: store them) and return the next layer's input. Before layer l's
 * backward: make its activations available (16 bits: widen them) and return its input
 * (NULL for the first layer). */
const float *zl_model_after_forward(zl_model *m, int l, const float *out);
const float *zl_model_before_backward(zl_model *m, int l);

/* Copy one micro-batch from `host` (the host device) into the current slot, checking
 * every id against the vocabulary first (ZL_ERR_INVALID names the first bad one). tokens
 * (2, B, T): the inputs, then the targets (-1: none), laid out as the slot holds them, so
 * that one zl_device_copy moves both; the accelerator's compute must zl_device_copy_wait
 * before it reads them. */
zl_status zl_model_set_batch(zl_model *m, const zl_device *host, const int32_t *tokens);
/* The check zl_model_set_batch makes first, alone: every id of tokens (2, B, T) inside the
 * vocabulary (ZL_ERR_INVALID names the first bad one); *num_targets (may be NULL): the
 * targets >= 0. */
zl_status zl_model_check_batch(const zl_model *m, const int32_t *tokens, int *num_targets);

/* Fill params[begin, end) of the flat parameter vector with their initial values for
 * `seed`. Element e of parameter p is a pure function of (seed, p, e): any slice equals
 * the same slice of the full initialisation. */
void zl_model_init_params(const zl_model *m, float *params, size_t begin, size_t end,
                          uint64_t seed);

/* Point param_ptr/grad_ptr at slices of full flat buffers. */
void zl_model_bind_flat(zl_model *m, float *params, float *grads);

/* A layer's own parameters are contiguous in the flat vector: [*begin, *end). */
void zl_model_layer_range(const zl_model *m, int layer, size_t *begin, size_t *end);

/* Point one layer's param_ptr (or grad_ptr) at `base`, a buffer laid out as the layer's
 * flat range: what ZeRO-3's gathered parameters and ZeRO-2/3's staged gradients are. */
void zl_model_bind_layer_params(zl_model *m, int layer, float *base);
void zl_model_bind_layer_grads(zl_model *m, int layer, float *base);
/* Point one layer's param16_ptr at `base`, its flat range stored in the model's 16-bit
 * dtype: where the GEMMs read the weights from (param_ptr then holds f32 copies of the
 * other parameters only: gemm_only ones are not copied). */
void zl_model_bind_layer_params16(zl_model *m, int layer, const void *base);

/* Gradients without a pass over memory (PyTorch's zero_grad(set_to_none=True)): mark every
 * gradient behind grad_ptr dead, so that the next backward's first write to each one
 * overwrites it (a weight gradient's GEMM runs with beta = 0, a kernel that adds zeroes
 * its small gradient first). Only for gradients bound in place as f32 for the whole
 * accumulation (the engine's stages 0-1 in fp32): a rebinding would carry the flags to
 * other memory. */
void zl_model_mark_grads_fresh(zl_model *m);
/* Zero the gradients still marked fresh (no backward wrote them since the mark) and clear
 * the marks: before anything reads the gradients as a whole. */
void zl_model_settle_grads(zl_model *m);
/* The same for parameter `param` only. */
void zl_model_settle_grad(zl_model *m, int param);

/* The tie group that `layer` owns, or NULL. */
const zl_tie_group *zl_model_tie_owned_by(const zl_model *m, int layer);
/* The tie group of which `layer` is a member (not the owner), or NULL. */
const zl_tie_group *zl_model_tie_used_by(const zl_model *m, int layer);
/* The tied parameter's values and gradient as member layer `layer` sees them: its own copy,
 * or the owner's binding. */
float *zl_model_tie_values(const zl_model *m, int layer);
float *zl_model_tie_grads(const zl_model *m, int layer);
/* The tied parameter's stored 16-bit values for member `layer` (the owner's binding,
 * param16_ptr), or NULL: f32 model, or a member with a copy of its own (f32). */
const void *zl_model_tie_values16(const zl_model *m, int layer);
/* The beta for a GEMM that adds member `layer`'s product into zl_model_tie_grads: 0 once
 * on a fresh shared gradient (zl_model_mark_grads_fresh), else 1. A copy's gradient is
 * never fresh: the engine zeroes copies itself. */
float zl_model_tie_grad_beta(zl_model *m, int layer);
/* The member of g that runs backward first (the one latest in forward): where the tied
 * gradient starts to collect. */
int zl_model_tie_first_backward(const zl_tie_group *g);

/* Find a parameter by name; -1 if none. */
int zl_model_find_param(const zl_model *m, const char *name);

/* The logits (B,T,V) of the last forward. Valid only until backward, which reuses their
 * memory (they live in the backward scratch, not in the saved activations). */
const float *zl_model_logits(const zl_model *m);

/* Mean loss over the current slot's tokens with a target (after its forward). */
float zl_model_mean_loss(const zl_model *m);

/* FLOPs of this rank's forward pass over (B, T), all layers (a tensor-parallel rank's
 * share of each block: 1/t of it). */
double zl_model_forward_flops(const zl_model *m, int B, int T);
/* The whole model's forward FLOPs over (B, T), however it is split: what MFU counts. */
double zl_model_whole_forward_flops(const zl_model *m, int B, int T);

/* Layer vtables, one per kind (src/model/embed.c, block.c, head.c). */
extern const zl_layer_vtable zl_embed_layer;
extern const zl_layer_vtable zl_block_layer;
extern const zl_layer_vtable zl_head_layer;

#endif
