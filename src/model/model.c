/* Building a GPT-2 model: the layer list, the parameter table, initialisation, and the
 * per-micro-batch buffers. */
#include "model/model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/checked.h"
#include "base/log.h"
#include "base/rng.h"
#include "comm/comm.h"
#include "model/gpt_config.h"
#include "model/gpt_layers.h"

typedef struct table_builder {
    zl_model *m;
    size_t offset;
} table_builder;

static void add_param(table_builder *tb, int layer, const char *name, int64_t d0, int64_t d1,
                      zl_param_init init)
{
    zl_model *m = tb->m;
    zl_param_info *p = &m->params[m->num_params++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    p->offset = tb->offset;
    p->init = init;
    p->weight_decay = p->ndim == 2; /* nanoGPT's rule: every 2-D tensor decays */
    p->layer = layer;
    p->model_index = m->num_params - 1;
    p->model_offset = tb->offset;
    p->split = ZL_SPLIT_NONE;
    p->split_parts = 1;
    p->model_shape[0] = d0;
    p->model_shape[1] = d1;
    tb->offset += p->numel;
}

static void add_layer(zl_model *m, zl_layer_kind kind, const zl_layer_vtable *vt, int block,
                      const char *name, int first_param)
{
    zl_layer *l = &m->layers[m->num_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->vt = vt;
    l->block = block;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->first_param = first_param;
    l->num_params = m->num_params - first_param;
}

zl_status zl_model_create(zl_model *m, const zl_gpt_config *cfg, zl_device *dev)
{
    zl_status st = zl_gpt_config_validate(cfg);
    if (st != ZL_OK) return st;
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->device = dev;
    int L = cfg->num_layers;
    int64_t V = cfg->vocab_size, maxT = cfg->max_seq_len, C = cfg->channels;

    /* at most 12 x 2^16 + 4 tensors (zl_gpt_config_validate caps num_layers) */
    size_t max_params = EMBED_NUM_PARAMS + (size_t)L * BLOCK_NUM_PARAMS + HEAD_NUM_PARAMS;
    m->params = calloc(max_params, sizeof *m->params);
    m->layers = calloc((size_t)L + 2, sizeof *m->layers);
    m->param_ptr = calloc(max_params, sizeof *m->param_ptr);
    m->grad_ptr = calloc(max_params, sizeof *m->grad_ptr);
    m->grad_fresh = calloc(max_params, sizeof *m->grad_fresh);
    m->param16_ptr = calloc(max_params, sizeof *m->param16_ptr);
    if (!m->params || !m->layers || !m->param_ptr || !m->grad_ptr || !m->grad_fresh ||
        !m->param16_ptr) {
        zl_model_destroy(m);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory building model '%s'", cfg->name);
    }

    /* Hugging Face GPT-2 parameter names; Linear weights stored (out, in) as in
     * torch.nn.Linear (HF's Conv1D stores them transposed). */
    table_builder tb = {m, 0};
    int first = m->num_params;
    add_param(&tb, 0, "wte.weight", V, C, ZL_INIT_NORMAL);
    m->params[m->num_params - 1].split = ZL_SPLIT_VOCAB; /* vocabulary-parallel */
    add_param(&tb, 0, "wpe.weight", maxT, C, ZL_INIT_NORMAL);
    add_layer(m, ZL_LAYER_EMBED, &zl_embed_layer, -1, "embed", first);

    for (int b = 0; b < L; b++) {
        char n[ZL_PARAM_NAME_LEN], lname[32];
        int layer = m->num_layers;
        first = m->num_params;
#define ADD(suffix, d0, d1, init) \
    (snprintf(n, sizeof n, "h.%d.%s", b, suffix), add_param(&tb, layer, n, d0, d1, init))
        ADD("ln_1.weight", C, 0, ZL_INIT_ONES);
        ADD("ln_1.bias", C, 0, ZL_INIT_ZEROS);
        ADD("attn.c_attn.weight", 3 * C, C, ZL_INIT_NORMAL);
        ADD("attn.c_attn.bias", 3 * C, 0, ZL_INIT_ZEROS);
        ADD("attn.c_proj.weight", C, C, ZL_INIT_NORMAL_RESIDUAL);
        ADD("attn.c_proj.bias", C, 0, ZL_INIT_ZEROS);
        ADD("ln_2.weight", C, 0, ZL_INIT_ONES);
        ADD("ln_2.bias", C, 0, ZL_INIT_ZEROS);
        ADD("mlp.c_fc.weight", 4 * C, C, ZL_INIT_NORMAL);
        ADD("mlp.c_fc.bias", 4 * C, 0, ZL_INIT_ZEROS);
        ADD("mlp.c_proj.weight", C, 4 * C, ZL_INIT_NORMAL_RESIDUAL);
        ADD("mlp.c_proj.bias", C, 0, ZL_INIT_ZEROS);
#undef ADD
        static const int linear_weights[] = {BLOCK_QKV_W, BLOCK_ATTPROJ_W, BLOCK_FC_W,
                                             BLOCK_FCPROJ_W};
        for (size_t i = 0; i < sizeof linear_weights / sizeof *linear_weights; i++)
            m->params[first + linear_weights[i]].gemm_only = true;
        /* Megatron-LM's split: c_attn and c_fc by output (column-parallel; c_attn's rows
         * are Q, K, V, each split apart), the projections by input (row-parallel). */
        static const struct { int k; zl_split split; int parts; } splits[] = {
            {BLOCK_QKV_W, ZL_SPLIT_ROWS, 3},   {BLOCK_QKV_B, ZL_SPLIT_ROWS, 3},
            {BLOCK_ATTPROJ_W, ZL_SPLIT_COLS, 1}, {BLOCK_FC_W, ZL_SPLIT_ROWS, 1},
            {BLOCK_FC_B, ZL_SPLIT_ROWS, 1},    {BLOCK_FCPROJ_W, ZL_SPLIT_COLS, 1}};
        for (size_t i = 0; i < sizeof splits / sizeof *splits; i++) {
            m->params[first + splits[i].k].split = splits[i].split;
            m->params[first + splits[i].k].split_parts = splits[i].parts;
        }
        snprintf(lname, sizeof lname, "h.%d", b);
        add_layer(m, ZL_LAYER_BLOCK, &zl_block_layer, b, lname, first);
    }

    first = m->num_params;
    add_param(&tb, L + 1, "ln_f.weight", C, 0, ZL_INIT_ONES);
    add_param(&tb, L + 1, "ln_f.bias", C, 0, ZL_INIT_ZEROS);
    add_layer(m, ZL_LAYER_HEAD, &zl_head_layer, -1, "head", first);

    /* GPT-2's one tie: the head's output projection is the token embedding. */
    zl_tie_group *tie = &m->ties[m->num_ties++];
    snprintf(tie->name, sizeof tie->name, "wte");
    tie->param = m->layers[0].first_param + EMBED_WTE;
    tie->owner = 0;
    tie->numel = m->params[tie->param].numel;
    tie->owner_here = true;
    tie->member_here[tie->num_members] = true;
    tie->members[tie->num_members++] = m->num_layers - 1;

    m->params_numel = m->model_numel = tb.offset;
    m->tp_size = 1;
    m->stage_first = 0;
    m->stage_last = m->num_layers;
    ZL_ASSERT(m->params_numel == zl_gpt_config_num_params(cfg));
    return ZL_OK;
}

zl_status zl_model_set_tensor_parallel(zl_model *m, struct zl_comm *tp)
{
    ZL_ASSERT(m->B == 0 && m->tp_size == 1 && m->stage_first == 0 &&
              m->stage_last == m->num_layers && "before zl_model_set_stage and any allocation");
    int t = tp ? tp->size : 1;
    if (t <= 1) return ZL_OK;
    const zl_gpt_config *c = &m->cfg;
    if (t > c->vocab_size)
        return zl_errorf(ZL_ERR_CONFIG, "tensor parallelism %d is more than model '%s''s "
                         "vocabulary of %d words, which it splits", t, c->name, c->vocab_size);
    if (c->num_heads % t || c->channels % t)
        return zl_errorf(ZL_ERR_CONFIG,
                         "tensor parallelism %d must divide model '%s''s %d attention heads and "
                         "%d channels (each rank holds whole heads, Megatron-LM's rule)\n  hint: "
                         "use a tensor-parallel size that divides %d", t, c->name, c->num_heads,
                         c->channels, c->num_heads);
    m->tp = tp;
    m->tp_size = t;
    m->tp_rank = tp->rank;
    int v0, v1;
    zl_model_vocab_range(m, &v0, &v1);
    size_t offset = 0;
    for (int i = 0; i < m->num_params; i++) {
        zl_param_info *p = &m->params[i];
        if (p->split == ZL_SPLIT_ROWS) p->shape[0] = p->model_shape[0] / t;
        else if (p->split == ZL_SPLIT_COLS) p->shape[1] = p->model_shape[1] / t;
        else if (p->split == ZL_SPLIT_VOCAB) p->shape[0] = v1 - v0;
        p->numel = (size_t)p->shape[0] * (size_t)(p->ndim == 2 ? p->shape[1] : 1);
        p->offset = p->model_offset = offset;
        offset += p->numel;
    }
    m->params_numel = m->model_numel = offset;
    for (int g = 0; g < m->num_ties; g++) m->ties[g].numel = m->params[m->ties[g].param].numel;
    return ZL_OK;
}

void zl_model_set_sequence_parallel(zl_model *m)
{
    ZL_ASSERT(m->B == 0 && m->tp_size > 1 && "after the tensor-parallel group, before activations");
    m->seq_parallel = true;
}

void zl_model_vocab_range(const zl_model *m, int *v0, int *v1)
{
    int V = m->cfg.vocab_size, t = m->tp_size > 1 ? m->tp_size : 1, c = (V + t - 1) / t;
    *v0 = m->tp_size > 1 ? m->tp_rank * c : 0;
    *v1 = *v0 + c < V ? *v0 + c : V;
}

size_t zl_model_param_whole_index(const zl_model *m, const zl_param_info *p, size_t e)
{
    if (p->split == ZL_SPLIT_NONE || m->tp_size <= 1) return e;
    if (p->split == ZL_SPLIT_VOCAB) { /* a contiguous block of rows */
        int v0, v1;
        zl_model_vocab_range(m, &v0, &v1);
        return (size_t)v0 * (size_t)p->shape[1] + e;
    }
    size_t cols = p->ndim == 2 ? (size_t)p->shape[1] : 1, row = e / cols, col = e % cols;
    size_t whole_cols = p->ndim == 2 ? (size_t)p->model_shape[1] : 1;
    if (p->split == ZL_SPLIT_COLS) return row * whole_cols + (size_t)m->tp_rank * cols + col;
    /* ROWS: local row `row` is in block b of the parts, at j inside this rank's share */
    size_t share = (size_t)p->shape[0] / (size_t)p->split_parts; /* rows per block here */
    size_t b = row / share, j = row % share;
    size_t whole_row = b * share * (size_t)m->tp_size + (size_t)m->tp_rank * share + j;
    return whole_row * whole_cols + col;
}

void zl_model_set_stage(zl_model *m, int first, int last)
{
    ZL_ASSERT(m->B == 0 && m->stage_first == 0 && m->stage_last == m->num_layers &&
              "a stage is set once, before anything is allocated");
    ZL_ASSERT(0 <= first && first < last && last <= m->num_layers);
    /* The kept parameters, renumbered in order; offsets from the stage's first one. */
    int *index = malloc((size_t)m->num_params * sizeof *index); /* old -> new, or -1 */
    ZL_ASSERT(index != NULL); /* a few KiB at most (model.c's table is bounded) */
    int n = 0;
    size_t base = 0, numel = 0;
    for (int i = 0; i < m->num_params; i++) {
        bool keep = m->params[i].layer >= first && m->params[i].layer < last;
        index[i] = keep ? n : -1;
        if (!keep) continue;
        if (n == 0) base = m->params[i].offset;
        m->params[n] = m->params[i];
        m->params[n].offset -= base;
        numel += m->params[n].numel;
        n++;
    }
    for (int l = 0; l < m->num_layers; l++) {
        zl_layer *layer = &m->layers[l];
        bool here = l >= first && l < last;
        layer->first_param = here && layer->num_params ? index[layer->first_param] : 0;
        if (!here) layer->num_params = 0;
    }
    for (int t = 0; t < m->num_ties; t++) {
        zl_tie_group *g = &m->ties[t];
        g->owner_here = g->owner >= first && g->owner < last;
        g->param = g->owner_here ? index[g->param] : -1;
        for (int k = 0; k < g->num_members; k++)
            g->member_here[k] = g->members[k] >= first && g->members[k] < last;
    }
    free(index);
    m->num_params = n;
    m->params_numel = numel;
    m->stage_first = first;
    m->stage_last = last;
}

static void free_slots(zl_model *m)
{
    size_t ntok = (size_t)m->B * m->T;
    for (int s = 0; s < m->num_slots && m->slots; s++) {
        zl_act_slot *slot = &m->slots[s];
        for (int l = 0; slot->layers && l < m->num_layers; l++) {
            zl_tensor_free(&slot->layers[l].stats);
            zl_tensor_free(&slot->layers[l].acts);
        }
        free(slot->layers);
        for (int j = 0; slot->ckpt_inputs && j < m->ckpt.num_segments; j++)
            zl_tensor_free(&slot->ckpt_inputs[j]);
        free(slot->ckpt_inputs);
        free(slot->ckpt_rng);
        zl_tensor_free(&slot->pipe_in);
        if (slot->inputs) zl_device_free(m->device, "input", slot->inputs, 2 * ntok * sizeof(int32_t));
    }
    free(m->slots);
    m->slots = NULL;
    m->num_slots = 0;
}

void zl_model_destroy(zl_model *m)
{
    free_slots(m);
    zl_tensor_free(&m->ckpt.staging);
    zl_tensor_free(&m->ckpt.stats);
    zl_tensor_free(&m->ckpt.acts);
    free(m->ckpt.offset);
    free(m->ckpt.stats_offset);
    zl_tensor_free(&m->tp_full);
    zl_tensor_free(&m->tp_wire);
    zl_tensor_free(&m->act_in);
    zl_tensor_free(&m->act_work);
    zl_tensor_free(&m->scratch);
    free(m->params);
    free(m->layers);
    free(m->param_ptr);
    free(m->grad_ptr);
    free(m->grad_fresh);
    free(m->param16_ptr);
    memset(m, 0, sizeof *m);
}

/* Elements of layer l's saved activations in the model's dtype, and of its f32 stats. */
static void act_numels(const zl_model *m, int l, int B, int T, size_t *acts, size_t *stats)
{
    const zl_layer *layer = &m->layers[l];
    size_t total = layer->vt->act_numel(m, l, B, T);
    *stats = layer->vt->act_stats_numel ? layer->vt->act_stats_numel(m, l, B, T) : 0;
    *acts = total - *stats;
}

/* A checkpointed slot: its layers' activations are views of the shared segment area, and
 * it keeps each segment's input ("act_ckpt", on the store) and RNG position. */
static zl_status alloc_slot_checkpointed(zl_model *m, zl_act_slot *slot)
{
    const zl_model_ckpt *c = &m->ckpt;
    for (int l = c->first; l < c->last; l++) {
        zl_layer_acts *a = &slot->layers[l];
        size_t n, ns;
        act_numels(m, l, m->B, m->T, &n, &ns);
        int64_t shape = (int64_t)n, sshape = (int64_t)ns;
        a->acts = zl_tensor_view(&c->acts, c->offset[l], 1, &shape);
        if (ns) a->stats = zl_tensor_view(&c->stats, c->stats_offset[l], 1, &sshape);
    }
    slot->ckpt_inputs = calloc((size_t)c->num_segments, sizeof *slot->ckpt_inputs);
    slot->ckpt_rng = calloc((size_t)c->num_segments, sizeof *slot->ckpt_rng);
    if (!slot->ckpt_inputs || !slot->ckpt_rng) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    int64_t shape[2] = {m->stream_rows, m->cfg.channels}; /* a stream tensor */
    for (int j = 0; j < c->num_segments; j++) {
        int begin, end;
        zl_model_ckpt_segment(m, j, &begin, &end);
        if (begin == 0) continue; /* the tokens, which the slot keeps anyway */
        zl_status st = zl_tensor_alloc(&slot->ckpt_inputs[j], c->store, "act_ckpt", m->dtype, 2, shape);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

/* The shared area of one segment (the largest), each layer's offset in it, and with a
 * host store the accelerator's staging buffer. */
static zl_status alloc_segment_area(zl_model *m)
{
    zl_model_ckpt *c = &m->ckpt;
    c->offset = calloc((size_t)m->num_layers, sizeof *c->offset);
    c->stats_offset = calloc((size_t)m->num_layers, sizeof *c->stats_offset);
    if (!c->offset || !c->stats_offset) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    size_t acts = 0, stats = 0;
    for (int j = 0; j < c->num_segments; j++) {
        int begin, end;
        zl_model_ckpt_segment(m, j, &begin, &end);
        size_t sa = 0, ss = 0;
        for (int l = begin; l < end; l++) {
            size_t n, ns;
            act_numels(m, l, m->B, m->T, &n, &ns);
            c->offset[l] = sa;
            c->stats_offset[l] = ss;
            sa += n;
            ss += ns;
        }
        if (sa > acts) acts = sa;
        if (ss > stats) stats = ss;
    }
    int64_t na = (int64_t)acts, ns = (int64_t)stats;
    zl_status st = zl_tensor_alloc(&c->acts, m->device, "act.segment", m->dtype, 1, &na);
    if (st == ZL_OK && stats) st = zl_tensor_alloc(&c->stats, m->device, "act.segment", ZL_F32, 1, &ns);
    if (st == ZL_OK && c->store != m->device) {
        int64_t shape[2] = {m->stream_rows, m->cfg.channels};
        st = zl_tensor_alloc(&c->staging, m->device, "act_ckpt", m->dtype, 2, shape);
    }
    return st;
}

void zl_model_set_checkpointing(zl_model *m, int interval, int first, int last, zl_device *store)
{
    ZL_ASSERT(m->B == 0 && "checkpointing is set before the activations are allocated");
    ZL_ASSERT(interval > 0 && 0 <= first && first < last && last <= m->num_layers);
    m->ckpt.interval = interval;
    m->ckpt.first = first;
    m->ckpt.last = last;
    m->ckpt.num_segments = (last - first + interval - 1) / interval;
    m->ckpt.store = store ? store : m->device;
}

void zl_model_ckpt_segment(const zl_model *m, int j, int *begin, int *end)
{
    const zl_model_ckpt *c = &m->ckpt;
    *begin = c->first + j * c->interval;
    *end = *begin + c->interval < c->last ? *begin + c->interval : c->last;
}

int zl_model_ckpt_segment_of(const zl_model *m, int l) { return (l - m->ckpt.first) / m->ckpt.interval; }

/* Is layer l the first of a segment? */
static bool segment_start(const zl_model *m, int l)
{
    return m->ckpt.interval > 0 && l >= m->ckpt.first && (l - m->ckpt.first) % m->ckpt.interval == 0;
}

/* The accelerator's copy of the input of the segment that starts at l (model dtype). */
static const void *segment_input(const zl_model *m, int l)
{
    const zl_tensor *c = &zl_model_slot((zl_model *)m)->ckpt_inputs[zl_model_ckpt_segment_of(m, l)];
    return m->ckpt.store != m->device ? m->ckpt.staging.data : c->data;
}

const float *zl_model_ckpt_save(zl_model *m, int l, const float *x)
{
    ZL_ASSERT(segment_start(m, l));
    zl_act_slot *slot = zl_model_slot(m);
    int j = zl_model_ckpt_segment_of(m, l);
    slot->ckpt_rng[j] = m->rng_pos;
    if (!x) return NULL; /* layer 0 reads the tokens */
    zl_tensor *c = &slot->ckpt_inputs[j];
    bool host = m->ckpt.store != m->device;
    size_t nbytes = zl_tensor_nbytes(c);
    const zl_ops *ops = m->device->ops; /* a device-side copy: the simulator charges it */
    zl_status st;
    if (m->dtype == ZL_F32) {
        /* x is the previous layer's output in the shared area, where layer l may compute */
        float *dst = host ? zl_tensor_f32(&m->ckpt.staging) : zl_tensor_f32(c);
        /* The previous segment's input may still be on its way to the host from here. */
        if (host) zl_device_copy_wait(m->device);
        ops->copy(ops, dst, x, nbytes);
        if (host) {
            st = zl_device_copy(m->ckpt.store, c->data, m->device, dst, nbytes);
            ZL_ASSERT(st == ZL_OK); /* host <-> accelerator: the one pair it refuses not */
        }
        return dst;
    }
    /* 16 bits: x is act_in, the widened copy of the previous layer's stored output, which
     * sits in its activations (in the shared area) as stored, or of the activation a
     * stage received: keep those bits. */
    const void *src;
    if (l == m->stage_first) {
        src = slot->pipe_in.data;
    } else {
        ZL_ASSERT(l - 1 >= m->ckpt.first);
        const zl_layer_acts *prev = &slot->layers[l - 1];
        src = (const char *)prev->acts.data + prev->out_offset * zl_dtype_nbytes(m->dtype);
    }
    if (host) {
        st = zl_device_copy(m->ckpt.store, c->data, m->device, src, nbytes);
        ZL_ASSERT(st == ZL_OK);
        zl_device_copy_wait(m->device); /* layer l's compute overwrites the shared area */
    } else
        ops->copy(ops, c->data, src, nbytes);
    return x;
}

const float *zl_model_ckpt_restore(zl_model *m, int l)
{
    ZL_ASSERT(segment_start(m, l));
    zl_act_slot *slot = zl_model_slot(m);
    int j = zl_model_ckpt_segment_of(m, l);
    m->rng_pos = slot->ckpt_rng[j];
    if (l == 0) return NULL;
    const zl_tensor *c = &slot->ckpt_inputs[j];
    if (m->ckpt.store != m->device) {
        zl_status st = zl_device_copy(m->device, m->ckpt.staging.data, m->ckpt.store, c->data,
                                      zl_tensor_nbytes(c));
        ZL_ASSERT(st == ZL_OK);
        zl_device_copy_wait(m->device); /* the segment's first layer reads it */
    }
    const void *in = segment_input(m, l);
    if (m->dtype == ZL_F32) return in;
    const zl_ops *ops = zl_device_backend(m->device); /* the CPU's widening: not simulated */
    ops->cast(ops, m->act_in.data, ZL_F32, in, m->dtype, zl_model_stream_numel(m));
    return zl_tensor_f32(&m->act_in);
}

int zl_model_next_layer(const zl_model *m, int l, bool backward)
{
    const zl_model_ckpt *c = &m->ckpt;
    int n = backward ? l - 1 : l + 1;
    if (c->interval > 0 && l >= c->first && l < c->last) {
        int begin, end;
        zl_model_ckpt_segment(m, zl_model_ckpt_segment_of(m, l), &begin, &end);
        if (!backward && (c->recomputing || l == c->last - 1) && l == end - 1)
            /* the segment's last recomputed layer: its backward comes next (the same
             * layer); the forward's last layer: the last segment's recompute */
            n = c->recomputing ? l : begin;
        else if (backward && l == begin && l > c->first) /* the segment before: recomputed */
            zl_model_ckpt_segment(m, zl_model_ckpt_segment_of(m, l - 1), &n, &end);
    }
    return n == l || n < 0 || n >= m->num_layers ? -1 : n;
}

/* One slot: every layer's activations, and the tokens. */
static zl_status alloc_slot(zl_model *m, zl_act_slot *slot)
{
    slot->layers = calloc((size_t)m->num_layers, sizeof *slot->layers);
    if (!slot->layers) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    zl_status st;
    if (m->ckpt.interval > 0 && (st = alloc_slot_checkpointed(m, slot)) != ZL_OK) return st;
    for (int l = m->stage_first; l < m->stage_last && !m->ckpt.interval; l++) {
        const zl_layer *layer = &m->layers[l];
        zl_layer_acts *a = &slot->layers[l];
        char tag[ZL_LEDGER_TAG_LEN];
        snprintf(tag, sizeof tag, "act.%s", layer->name);
        size_t total = layer->vt->act_numel(m, l, m->B, m->T);
        size_t stats = layer->vt->act_stats_numel ? layer->vt->act_stats_numel(m, l, m->B, m->T) : 0;
        int64_t n = (int64_t)(total - stats), ns = (int64_t)stats;
        if ((st = zl_tensor_alloc(&a->acts, m->device, tag, m->dtype, 1, &n)) != ZL_OK) return st;
        if (stats && (st = zl_tensor_alloc(&a->stats, m->device, tag, ZL_F32, 1, &ns)) != ZL_OK)
            return st;
    }
    if (m->stage_first > 0) {
        int64_t shape[2] = {m->stream_rows, m->cfg.channels};
        if ((st = zl_tensor_alloc(&slot->pipe_in, m->device, "act.pipe_in", m->dtype, 2, shape)) != ZL_OK)
            return st;
    }
    /* inputs and targets share one allocation: (2, B, T) int32 */
    size_t ntok = (size_t)m->B * m->T;
    void *tok;
    if ((st = zl_device_alloc(m->device, "input", 2 * ntok * sizeof(int32_t), &tok)) != ZL_OK)
        return st;
    slot->inputs = tok;
    slot->targets = slot->inputs + ntok;
    return ZL_OK;
}

zl_status zl_model_alloc_activations(zl_model *m, int B, int T, int num_slots)
{
    if (B <= 0 || T <= 0)
        return zl_errorf(ZL_ERR_INVALID, "micro-batch shape must be positive (B=%d, T=%d)", B, T);
    if (num_slots <= 0)
        return zl_errorf(ZL_ERR_INVALID, "activation slots must be positive, got %d", num_slots);
    if (T > m->cfg.max_seq_len)
        return zl_errorf(ZL_ERR_INVALID,
                         "sequence length %d is longer than model '%s' allows (max_seq_len %d)\n"
                         "  hint: use a shorter --seq-len or a model with more positions",
                         T, m->cfg.name, m->cfg.max_seq_len);
    /* the kernels index rows with int N = B*T */
    if ((int64_t)B * T > INT_MAX)
        return zl_errorf(ZL_ERR_INVALID,
                         "micro-batch %d x sequence %d = %lld tokens is more than %d per micro-batch\n"
                         "  hint: lower train_micro_batch_size_per_gpu or --seq-len",
                         B, T, (long long)B * T, INT_MAX);
    ZL_ASSERT(m->B == 0 && "activations are allocated once");
    for (int l = m->stage_first; l < m->stage_last; l++) {
        const zl_layer *layer = &m->layers[l];
        size_t n = zl_sat_add(layer->vt->act_numel(m, l, B, T), layer->vt->scratch_numel(m, l, B, T));
        if (n > ZL_MODEL_MAX_ACT_NUMEL)
            return zl_errorf(ZL_ERR_INVALID,
                             "model '%s' at micro-batch %d x sequence %d: layer %s's activations "
                             "(%s elements) do not fit in 64-bit sizes\n"
                             "  hint: lower train_micro_batch_size_per_gpu or --seq-len",
                             m->cfg.name, B, T, layer->name,
                             n == SIZE_MAX ? "more than 2^64" : "more than 2^60");
    }
    if (m->seq_parallel && ((int64_t)B * T) % m->tp_size != 0)
        return zl_errorf(ZL_ERR_INVALID,
                         "sequence parallelism splits the micro-batch's %lld tokens (micro-batch %d "
                         "x sequence %d) over %d tensor-parallel ranks: they do not divide\n  "
                         "hint: use a micro-batch or --seq-len whose product is a multiple of %d",
                         (long long)B * T, B, T, m->tp_size, m->tp_size);
    m->B = B;
    m->T = T;
    m->stream_rows = m->seq_parallel ? B * T / m->tp_size : B * T;
    m->slots = calloc((size_t)num_slots, sizeof *m->slots);
    if (!m->slots) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    m->num_slots = num_slots;
    m->slot = 0;
    zl_status st;
    if (m->ckpt.interval > 0 && (st = alloc_segment_area(m)) != ZL_OK) return st;
    for (int s = 0; s < num_slots; s++)
        if ((st = alloc_slot(m, &m->slots[s])) != ZL_OK) return st;
    /* What one layer at a time needs, shared by the slots: backward's scratch, and in 16
     * bits the f32 work copies of the running layer's activations and input. */
    size_t scratch = 0, work = 0;
    for (int l = m->stage_first; l < m->stage_last; l++) {
        const zl_layer *layer = &m->layers[l];
        size_t total = layer->vt->act_numel(m, l, B, T);
        size_t stats = layer->vt->act_stats_numel ? layer->vt->act_stats_numel(m, l, B, T) : 0;
        if (total - stats > work) work = total - stats;
        size_t s = layer->vt->scratch_numel(m, l, B, T);
        if (s > scratch) scratch = s;
    }
    int64_t snumel = (int64_t)scratch;
    if ((st = zl_tensor_alloc(&m->scratch, m->device, "act.grad", ZL_F32, 1, &snumel)) != ZL_OK)
        return st;
    if (m->tp_size > 1 && m->dtype != ZL_F32) {
        int64_t shape[3] = {B, T, m->cfg.channels};
        if ((st = zl_tensor_alloc(&m->tp_wire, m->device, "tp.buffer", m->dtype, 3, shape)) != ZL_OK)
            return st;
    }
    if (m->seq_parallel) {
        int64_t shape[3] = {B, T, m->cfg.channels};
        if ((st = zl_tensor_alloc(&m->tp_full, m->device, "tp.gather", ZL_F32, 3, shape)) != ZL_OK)
            return st;
    }
    if (m->dtype != ZL_F32) {
        int64_t wn = (int64_t)work, in = (int64_t)zl_model_stream_numel(m);
        if ((st = zl_tensor_alloc(&m->act_work, m->device, "cast", ZL_F32, 1, &wn)) != ZL_OK ||
            (st = zl_tensor_alloc(&m->act_in, m->device, "cast", ZL_F32, 1, &in)) != ZL_OK)
            return st;
    }
    return ZL_OK;
}

void zl_model_use_slot(zl_model *m, int s)
{
    ZL_ASSERT(s >= 0 && s < m->num_slots);
    m->slot = s;
}

const float *zl_model_after_forward(zl_model *m, int l, const float *out)
{
    zl_layer_acts *a = &zl_model_slot(m)->layers[l];
    if (m->dtype == ZL_F32) return a->out = out;
    /* Every value in the work buffer was rounded as it was written: the store is exact.
     * These moves are the CPU's (a GPU's kernels write 16 bits directly), so they go to
     * the backend itself, past a simulated clock (zl_device_backend). */
    const zl_ops *ops = zl_device_backend(m->device);
    const float *work = zl_tensor_f32(&m->act_work);
    a->out_offset = out ? (size_t)(out - work) : 0;
    ops->cast(ops, a->acts.data, m->dtype, work, ZL_F32, a->acts.numel);
    if (!out) return NULL;
    float *in = zl_tensor_f32(&m->act_in); /* the next layer's input: out, out of the way */
    ops->copy(ops, in, out, zl_model_stream_numel(m) * sizeof(float));
    return a->out = in;
}

const float *zl_model_before_backward(zl_model *m, int l)
{
    const zl_layer_acts *acts = zl_model_slot(m)->layers;
    /* A segment's first layer: its input is the segment's saved one (the previous layer's
     * place in the shared area holds this segment's recomputed activations now). A
     * stage's first layer: the activation it received. */
    bool saved = l > 0 && segment_start(m, l);
    bool received = l > 0 && l == m->stage_first;
    const void *pipe_in = zl_model_slot(m)->pipe_in.data;
    if (m->dtype == ZL_F32)
        return saved ? segment_input(m, l) : received ? pipe_in : l ? acts[l - 1].out : NULL;
    const zl_ops *ops = zl_device_backend(m->device); /* the CPU's moves: not simulated */
    ops->cast(ops, m->act_work.data, ZL_F32, acts[l].acts.data, m->dtype, acts[l].acts.numel);
    if (l == 0) return NULL;
    if (saved || received) {
        ops->cast(ops, m->act_in.data, ZL_F32, saved ? segment_input(m, l) : pipe_in, m->dtype,
                  zl_model_stream_numel(m));
        return zl_tensor_f32(&m->act_in);
    }
    const zl_layer_acts *prev = &acts[l - 1];
    size_t esz = zl_dtype_nbytes(m->dtype);
    ops->cast(ops, m->act_in.data, ZL_F32, (const char *)prev->acts.data + prev->out_offset * esz,
              m->dtype, zl_model_stream_numel(m));
    return zl_tensor_f32(&m->act_in);
}

zl_status zl_model_check_batch(const zl_model *m, const int32_t *tokens, int *num_targets)
{
    size_t n = (size_t)m->B * m->T;
    const int32_t *inputs = tokens, *targets = tokens + n;
    int V = m->cfg.vocab_size, count = 0;
    if (m->device->ops->meta) { /* shapes only: a plan's tokens are never read */
        if (num_targets) *num_targets = (int)n;
        return ZL_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (inputs[i] < 0 || inputs[i] >= V || targets[i] >= V)
            return zl_errorf(ZL_ERR_INVALID,
                             "token id %d at position %zu is outside model '%s''s vocabulary "
                             "(vocab_size %d)\n  hint: the data and the model must use the same "
                             "tokenizer (byte-level text needs vocab_size >= 256)",
                             inputs[i] < 0 || inputs[i] >= V ? inputs[i] : targets[i], i,
                             m->cfg.name, V);
        count += targets[i] >= 0;
    }
    if (num_targets) *num_targets = count;
    return ZL_OK;
}

zl_status zl_model_set_batch(zl_model *m, const zl_device *host, const int32_t *tokens)
{
    int count;
    zl_status st = zl_model_check_batch(m, tokens, &count);
    if (st != ZL_OK) return st;
    zl_act_slot *slot = zl_model_slot(m);
    size_t n = (size_t)m->B * m->T;
    if ((st = zl_device_copy(m->device, slot->inputs, host, tokens, 2 * n * sizeof(int32_t))) != ZL_OK)
        return st;
    slot->num_targets = count;
    return ZL_OK;
}

void zl_model_init_params(const zl_model *m, float *params, size_t begin, size_t end,
                          uint64_t seed)
{
    float residual_std = 0.02f / sqrtf(2.0f * (float)m->cfg.num_layers);
    for (int i = 0; i < m->num_params; i++) {
        const zl_param_info *p = &m->params[i];
        size_t lo = p->offset > begin ? p->offset : begin;
        size_t hi = p->offset + p->numel < end ? p->offset + p->numel : end;
        for (size_t j = lo; j < hi; j++) {
            /* the element of the whole parameter: a tensor-parallel part draws what one
             * rank would for those elements */
            size_t e = zl_model_param_whole_index(m, p, j - p->offset);
            float v;
            switch (p->init) {
            /* the whole model's stream of the parameter: a stage draws what one rank would */
            case ZL_INIT_NORMAL: v = 0.02f * zl_rng_normal(seed, (uint64_t)p->model_index, e); break;
            case ZL_INIT_NORMAL_RESIDUAL:
                v = residual_std * zl_rng_normal(seed, (uint64_t)p->model_index, e);
                break;
            case ZL_INIT_ONES: v = 1.0f; break;
            default: v = 0.0f; break;
            }
            params[j - begin] = v;
        }
    }
}

void zl_model_bind_flat(zl_model *m, float *params, float *grads)
{
    for (int i = 0; i < m->num_params; i++) {
        m->param_ptr[i] = params + m->params[i].offset;
        m->grad_ptr[i] = grads ? grads + m->params[i].offset : NULL;
    }
}

void zl_model_layer_range(const zl_model *m, int layer, size_t *begin, size_t *end)
{
    const zl_layer *l = &m->layers[layer];
    if (l->num_params == 0) { /* a layer of another stage */
        *begin = *end = 0;
        return;
    }
    const zl_param_info *last = &m->params[l->first_param + l->num_params - 1];
    *begin = m->params[l->first_param].offset;
    *end = last->offset + last->numel;
}

static void bind_layer(zl_model *m, int layer, float **ptrs, float *base)
{
    const zl_layer *l = &m->layers[layer];
    size_t begin = m->params[l->first_param].offset;
    for (int k = l->first_param; k < l->first_param + l->num_params; k++)
        ptrs[k] = base + (m->params[k].offset - begin);
}

void zl_model_bind_layer_params(zl_model *m, int layer, float *base)
{
    bind_layer(m, layer, m->param_ptr, base);
}

void zl_model_bind_layer_grads(zl_model *m, int layer, float *base)
{
    bind_layer(m, layer, m->grad_ptr, base);
}

void zl_model_bind_layer_params16(zl_model *m, int layer, const void *base)
{
    const zl_layer *l = &m->layers[layer];
    size_t begin = m->params[l->first_param].offset;
    for (int k = l->first_param; k < l->first_param + l->num_params; k++)
        m->param16_ptr[k] = (const uint16_t *)base + (m->params[k].offset - begin);
}

const zl_tie_group *zl_model_tie_owned_by(const zl_model *m, int layer)
{
    for (int t = 0; t < m->num_ties; t++)
        if (m->ties[t].owner == layer) return &m->ties[t];
    return NULL;
}

const zl_tie_group *zl_model_tie_used_by(const zl_model *m, int layer)
{
    for (int t = 0; t < m->num_ties; t++)
        for (int k = 0; k < m->ties[t].num_members; k++)
            if (m->ties[t].members[k] == layer) return &m->ties[t];
    return NULL;
}

/* The member index k of `layer` in its tie group, or -1. */
static int member_index(const zl_tie_group *g, int layer)
{
    for (int k = 0; k < g->num_members; k++)
        if (g->members[k] == layer) return k;
    return -1;
}

void zl_model_mark_grads_fresh(zl_model *m)
{
    for (int i = 0; i < m->num_params; i++) m->grad_fresh[i] = m->grad_ptr[i] != NULL;
}

void zl_model_settle_grad(zl_model *m, int param)
{
    if (!m->grad_fresh[param]) return;
    m->grad_fresh[param] = false;
    m->device->ops->zero(m->device->ops, m->grad_ptr[param],
                         m->params[param].numel * sizeof(float));
}

void zl_model_settle_grads(zl_model *m)
{
    for (int i = 0; i < m->num_params; i++) zl_model_settle_grad(m, i);
}

float *zl_model_tie_values(const zl_model *m, int layer)
{
    const zl_tie_group *g = zl_model_tie_used_by(m, layer);
    int k = member_index(g, layer);
    return g->copy_values[k] ? g->copy_values[k] : m->param_ptr[g->param];
}

float *zl_model_tie_grads(const zl_model *m, int layer)
{
    const zl_tie_group *g = zl_model_tie_used_by(m, layer);
    int k = member_index(g, layer);
    return g->copy_grads[k] ? g->copy_grads[k] : m->grad_ptr[g->param];
}

const void *zl_model_tie_values16(const zl_model *m, int layer)
{
    const zl_tie_group *g = zl_model_tie_used_by(m, layer);
    return g->copy_values[member_index(g, layer)] ? NULL : m->param16_ptr[g->param];
}

float zl_model_tie_grad_beta(zl_model *m, int layer)
{
    const zl_tie_group *g = zl_model_tie_used_by(m, layer);
    if (g->copy_grads[member_index(g, layer)] || !m->grad_fresh[g->param]) return 1.0f;
    m->grad_fresh[g->param] = false;
    return 0.0f;
}

int zl_model_tie_first_backward(const zl_tie_group *g)
{
    int first = g->owner;
    for (int k = 0; k < g->num_members; k++)
        if (g->members[k] > first) first = g->members[k];
    return first;
}

int zl_model_find_param(const zl_model *m, const char *name)
{
    for (int i = 0; i < m->num_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

const float *zl_model_stage_input(zl_model *m)
{
    ZL_ASSERT(m->stage_first > 0);
    const zl_tensor *in = &zl_model_slot(m)->pipe_in;
    if (m->dtype == ZL_F32) return zl_tensor_f32(in);
    const zl_ops *ops = zl_device_backend(m->device); /* the CPU's widening: not simulated */
    ops->cast(ops, m->act_in.data, ZL_F32, in->data, m->dtype, (size_t)in->numel);
    return zl_tensor_f32(&m->act_in);
}

const void *zl_model_stage_output(zl_model *m)
{
    ZL_ASSERT(m->stage_last < m->num_layers);
    const zl_layer_acts *a = &zl_model_slot(m)->layers[m->stage_last - 1];
    if (m->dtype == ZL_F32) return a->out;
    return (const char *)a->acts.data + a->out_offset * zl_dtype_nbytes(m->dtype);
}

const float *zl_model_logits(const zl_model *m) { return zl_tensor_f32(&m->scratch); }

float zl_model_mean_loss(const zl_model *m)
{
    if (m->device->ops->meta) return NAN; /* no values on the meta backend */
    /* every rank has every token's loss (the head sums them over a tensor-parallel group) */
    const zl_act_slot *slot = &m->slots[m->slot];
    size_t n = (size_t)m->B * m->T;
    /* The losses are device memory: read back in pieces (a GPU's would be one reduction
     * kernel and a scalar; this keeps ref's order of the sum, so the bits). */
    const zl_ops *ops = zl_device_backend(m->device);
    float piece[1024];
    double sum = 0;
    for (size_t i = 0; i < n; i += 1024) {
        size_t len = n - i < 1024 ? n - i : 1024;
        zl_device_read(ops, piece, slot->losses + i, len * sizeof(float));
        for (size_t j = 0; j < len; j++) sum += piece[j];
    }
    return slot->num_targets ? (float)(sum / slot->num_targets) : 0.0f;
}

double zl_model_forward_flops(const zl_model *m, int B, int T)
{
    double f = 0;
    for (int l = 0; l < m->num_layers; l++) f += m->layers[l].vt->flops(m, l, B, T);
    return f;
}

double zl_model_whole_forward_flops(const zl_model *m, int B, int T)
{
    /* The layers' flops read the shape and the tensor-parallel size only: the same model
     * with a group of one is the whole model. */
    zl_model whole = *m;
    whole.tp_size = 1;
    return zl_model_forward_flops(&whole, B, T);
}
