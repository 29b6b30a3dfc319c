/* What `zerolab ckpt` does to checkpoints (ckpt_tools.h). */
#include "ckpt/ckpt_tools.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt_file.h"
#include "ckpt/ckpt_layout.h"
#include "ckpt/llmc.h"
#include "ckpt/safetensors.h"
#include "model/gpt_config.h"
#include "model/model.h"

static const char *const STATE_TENSORS[] = {"fp32_flat", "exp_avg", "exp_avg_sq"};

/* ---- the model, as the model states record it ------------------------------------------ */

json_t *zl_ckpt_model_json(const zl_model *m)
{
    const zl_gpt_config *c = &m->cfg;
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:I}", "name", c->name, "vocab_size",
                     c->vocab_size, "max_seq_len", c->max_seq_len, "num_layers", c->num_layers,
                     "num_heads", c->num_heads, "channels", c->channels, "params_numel",
                     (json_int_t)m->params_numel);
}

json_t *zl_ckpt_param_table_json(const zl_model *m)
{
    json_t *a = json_array();
    for (int i = 0; i < m->num_params; i++) {
        const zl_param_info *p = &m->params[i];
        json_t *shape = json_array();
        for (int d = 0; d < p->ndim; d++) json_array_append_new(shape, json_integer(p->shape[d]));
        json_array_append_new(a, json_pack("{s:s, s:o, s:I}", "name", p->name, "shape", shape,
                                           "offset", (json_int_t)p->offset));
    }
    return a;
}

/* The model states' keys that the writer sets (ckpt_file.h), dropped from a copy. */
static json_t *copy_states(const zl_ckpt *c)
{
    json_t *s = json_deep_copy(zl_ckpt_file_state(zl_ckpt_states(c)));
    static const char *const writer_keys[] = {"format", "format_version", "zerolab_version",
                                              "safetensors", "tensors", "json_xxh3"};
    for (size_t i = 0; s && i < sizeof writer_keys / sizeof *writer_keys; i++)
        json_object_del(s, writer_keys[i]);
    return s;
}

/* ---- verify --------------------------------------------------------------------------- */

static zl_status verify_file(zl_ckpt_file *f, size_t *tensors, size_t *nbytes)
{
    for (int i = 0; i < zl_ckpt_file_num_tensors(f); i++) {
        const char *name = zl_ckpt_file_tensor_name(f, i);
        size_t numel;
        zl_dtype t;
        zl_status st = zl_ckpt_file_tensor(f, name, &t, NULL, NULL, &numel);
        if (st == ZL_OK) st = zl_ckpt_file_verify(f, name);
        if (st != ZL_OK) return st;
        *tensors += 1;
        *nbytes += numel * zl_dtype_nbytes(t);
    }
    return ZL_OK;
}

zl_status zl_ckpt_verify(zl_ckpt *c, size_t *tensors, size_t *nbytes)
{
    size_t t = 0, b = 0;
    zl_status st = verify_file((zl_ckpt_file *)zl_ckpt_states(c), &t, &b);
    for (int r = 0; r < zl_ckpt_num_shards(c) && st == ZL_OK; r++)
        st = verify_file(zl_ckpt_shard(c, r), &t, &b);
    if (tensors) *tensors = t;
    if (nbytes) *nbytes = b;
    return st;
}

/* ---- to-fp32 -------------------------------------------------------------------------- */

zl_status zl_ckpt_to_fp32(zl_ckpt *c, const char *out_path, size_t *peak_nbytes)
{
    zl_safetensors_writer *w;
    zl_status st = zl_safetensors_writer_create(&w);
    if (st != ZL_OK) return st;
    size_t largest = 0;
    for (int i = 0; i < zl_ckpt_num_params(c) && st == ZL_OK; i++) {
        const zl_ckpt_param *p = zl_ckpt_param_at(c, i);
        st = zl_safetensors_writer_declare(w, p->name, ZL_F32, p->ndim, p->shape);
        if (p->numel > largest) largest = p->numel;
    }
    char source[64];
    snprintf(source, sizeof source, "zerolab checkpoint %.40s", zl_ckpt_tag(c));
    if (st == ZL_OK) st = zl_safetensors_writer_set_metadata(w, "format", "pt");
    if (st == ZL_OK) st = zl_safetensors_writer_set_metadata(w, "source", source);
    /* One tensor at a time through one buffer: the file's layout keeps the table's order
     * (all fp32), so each parameter is read and written in turn. */
    float *buf = st == ZL_OK ? malloc((largest ? largest : 1) * sizeof *buf) : NULL;
    if (st == ZL_OK && !buf) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory for a %zu-element "
                                            "tensor", largest);
    if (st == ZL_OK) st = zl_safetensors_writer_stream_open(w, out_path);
    for (int i = 0; i < zl_ckpt_num_params(c) && st == ZL_OK; i++) {
        const zl_ckpt_param *p = zl_ckpt_param_at(c, i);
        st = zl_ckpt_read_fp32(c, p->offset, p->numel, buf);
        if (st == ZL_OK) st = zl_safetensors_writer_stream_put(w, p->name, buf);
    }
    zl_status cs = zl_safetensors_writer_stream_close(w, st == ZL_OK);
    if (st == ZL_OK) st = cs;
    free(buf);
    zl_safetensors_writer_destroy(w);
    if (peak_nbytes) *peak_nbytes = largest * sizeof(float);
    return st;
}

/* ---- writing a checkpoint from the tools ----------------------------------------------- */

/* The model states of `states` (JSON, not the writer's keys) with the module's weights
 * (module: the whole flat vector in dtype, named by the table) into dir/base. */
static zl_status write_states(const char *dir, json_t *states, const zl_ckpt_param *params,
                              int num_params, zl_dtype dtype, const void *module)
{
    zl_ckpt_writer *w;
    zl_status st = zl_ckpt_writer_create(&w);
    size_t esz = zl_dtype_nbytes(dtype);
    for (int i = 0; i < num_params && st == ZL_OK; i++)
        st = zl_ckpt_writer_add(w, params[i].name, dtype, params[i].ndim, params[i].shape,
                                (const char *)module + params[i].offset * esz);
    if (st == ZL_OK) {
        json_object_update(zl_ckpt_writer_state(w), states);
        st = zl_ckpt_writer_write(w, dir, ZL_CKPT_MODEL_STATES);
    }
    zl_ckpt_writer_destroy(w);
    return st;
}

/* Rank r's fragments and state length for `world` ranks at `stage` (zero/partition.h for
 * stages 0-2, zero/stage3.c's per-tensor chunks for 3); returns how many. */
static int zl_ckpt_fragments(const zl_ckpt *c, int world, int stage, int r, bool fp32,
                            zl_ckpt_fragment *out, size_t *shard_numel)
{
    size_t numel = zl_ckpt_numel(c);
    if (stage == 3) {
        size_t local = 0;
        int k = 0;
        for (int i = 0; i < zl_ckpt_num_params(c); i++) {
            const zl_ckpt_param *p = zl_ckpt_param_at(c, i);
            size_t chunk = (p->numel + (size_t)world - 1) / (size_t)world;
            size_t first = (size_t)r * chunk;
            size_t n = first >= p->numel ? 0 : (p->numel - first < chunk ? p->numel - first : chunk);
            if (n) out[k++] = (zl_ckpt_fragment){p->offset + first, n, local};
            local += chunk;
        }
        *shard_numel = local;
        return k;
    }
    /* Stages 0-2: the vector padded to a multiple of 2 x world, in equal partitions; stage 0
     * in fp32 steps the parameters themselves and its state has exactly numel elements. */
    int parts = stage == 0 ? 1 : world;
    size_t padded = (numel + 2 * (size_t)parts - 1) / (2 * (size_t)parts) * (2 * (size_t)parts);
    size_t P = padded / (size_t)parts, begin = (size_t)r * P;
    *shard_numel = stage == 0 && fp32 ? numel : P;
    size_t n = begin >= numel ? 0 : (numel - begin < P ? numel - begin : P);
    if (!n) return 0;
    out[0] = (zl_ckpt_fragment){begin, n, 0};
    return 1;
}

zl_status zl_ckpt_write_optim_shard(const char *dir, const zl_ckpt_shard_state *sh)
{
    zl_ckpt_writer *w;
    zl_status st = zl_ckpt_writer_create(&w);
    int64_t len = (int64_t)sh->numel;
    const float *t[3] = {sh->fp32, sh->exp_avg, sh->exp_avg_sq};
    for (int k = 0; k < 3 && st == ZL_OK; k++)
        st = zl_ckpt_writer_add(w, STATE_TENSORS[k], ZL_F32, 1, &len, t[k]);
    if (st == ZL_OK) {
        json_t *s = zl_ckpt_writer_state(w), *frags = json_array();
        for (int i = 0; i < sh->num_frags; i++)
            json_array_append_new(frags, json_pack("[I,I,I]", (json_int_t)sh->frags[i].flat,
                                                   (json_int_t)sh->frags[i].numel,
                                                   (json_int_t)sh->frags[i].local));
        json_object_set_new(s, "zero_stage", json_integer(sh->stage));
        json_object_set_new(s, "dp_rank", json_integer(sh->rank));
        json_object_set_new(s, "partition_count", json_integer(sh->world));
        json_object_set_new(s, "step", json_integer(sh->step));
        json_object_set_new(s, "fragments", frags);
        char base[128];
        zl_ckpt_optim_base(base, sizeof base, sh->rank, sh->bf16);
        st = zl_ckpt_writer_write(w, dir, base);
    }
    zl_ckpt_writer_destroy(w);
    return st;
}

/* Rank r's optimizer shard of the target layout into dir. */
static zl_status write_shard(zl_ckpt *c, const char *dir, int world, int stage, int r,
                             int64_t step)
{
    bool fp32 = zl_ckpt_dtype(c) == ZL_F32;
    int cap = zl_ckpt_num_params(c) + 1;
    zl_ckpt_fragment *f = malloc((size_t)cap * sizeof *f);
    size_t n = 0;
    int nf = f ? zl_ckpt_fragments(c, world, stage, r, fp32, f, &n) : 0;
    float *t[3] = {NULL, NULL, NULL};
    zl_status st = f ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "out of host memory reshaping a checkpoint");
    for (int k = 0; k < 3 && st == ZL_OK; k++)
        if (!(t[k] = calloc(n ? n : 1, sizeof(float))))
            st = zl_errorf(ZL_ERR_NOMEM, "out of host memory for a %zu-element shard", n);
    for (int i = 0; i < nf && st == ZL_OK; i++)
        for (int k = 0; k < 3 && st == ZL_OK; k++)
            st = zl_ckpt_read_state(c, STATE_TENSORS[k], f[i].flat, f[i].numel, ZL_F32,
                                    t[k] + f[i].local);
    zl_ckpt_shard_state sh = {r, world, stage, step, zl_ckpt_dtype(c) == ZL_BF16, n, t[0], t[1], t[2],
                        f, nf};
    if (st == ZL_OK) st = zl_ckpt_write_optim_shard(dir, &sh);
    for (int k = 0; k < 3; k++) free(t[k]);
    free(f);
    return st;
}

/* The module's weights, whole, in the checkpoint's dtype (malloc'd). */
static zl_status read_module_whole(zl_ckpt *c, void **out)
{
    size_t nbytes = zl_ckpt_numel(c) * zl_dtype_nbytes(zl_ckpt_dtype(c));
    *out = malloc(nbytes ? nbytes : 1);
    if (!*out) return zl_errorf(ZL_ERR_NOMEM, "out of host memory for the module's %zu bytes", nbytes);
    zl_status st = zl_ckpt_read_module(c, 0, zl_ckpt_numel(c), zl_ckpt_dtype(c), *out);
    if (st != ZL_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

zl_status zl_ckpt_reshape(zl_ckpt *c, const char *out_dir, int world_size, int stage)
{
    if (world_size < 1 || world_size > 1 << 20 || stage < 0 || stage > 3)
        return zl_errorf(ZL_ERR_INVALID, "reshape: world size %d and stage %d: expected a world "
                         "size from 1 and a ZeRO stage 0 to 3", world_size, stage);
    if (!zl_ckpt_has_optimizer(c))
        return zl_errorf(ZL_ERR_INVALID, "checkpoint '%s' holds the weights only: there is no "
                         "optimizer state to reshape\n  hint: --load it into a run of any layout",
                         zl_ckpt_path(c));
    const char *tag = zl_ckpt_tag(c);
    char stage_dir[4096];
    int64_t step = 0;
    json_t *states = copy_states(c);
    zl_status st = states ? zl_ckpt_json_int(json_object_get(states, "optimizer"), "step",
                                             zl_ckpt_file_path(zl_ckpt_states(c)), &step)
                          : zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    if (st == ZL_OK) st = zl_ckpt_stage(out_dir, tag, stage_dir, sizeof stage_dir);
    int writers = stage == 0 ? 1 : world_size;
    for (int r = 0; r < writers && st == ZL_OK; r++)
        st = write_shard(c, stage_dir, world_size, stage, r, step);
    void *module = NULL;
    if (st == ZL_OK) st = read_module_whole(c, &module);
    if (st == ZL_OK) {
        json_t *shards = json_array();
        for (int r = 0; r < writers; r++) {
            char base[128];
            zl_ckpt_optim_base(base, sizeof base, r, zl_ckpt_dtype(c) == ZL_BF16);
            json_array_append_new(shards, json_string(base));
        }
        json_object_set_new(states, "dp_world_size", json_integer(world_size));
        json_object_set_new(states, "zero_stage", json_integer(stage));
        json_object_set_new(states, "optimizer_shards", shards);
        /* The param table is the checkpoint's (verified on open). */
        zl_ckpt_param *params = malloc(((size_t)zl_ckpt_num_params(c) + 1) * sizeof *params);
        for (int i = 0; params && i < zl_ckpt_num_params(c); i++) params[i] = *zl_ckpt_param_at(c, i);
        st = params ? write_states(stage_dir, states, params, zl_ckpt_num_params(c),
                                   zl_ckpt_dtype(c), module)
                    : zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        free(params);
    }
    free(module);
    json_decref(states);
    if (st == ZL_OK) st = zl_ckpt_commit(out_dir, tag, true);
    if (st != ZL_OK) zl_ckpt_unstage(out_dir, tag);
    return st;
}

/* ---- compare -------------------------------------------------------------------------- */

static zl_status compare_models(const zl_ckpt *a, const zl_ckpt *b)
{
    if (zl_ckpt_num_params(a) != zl_ckpt_num_params(b) || zl_ckpt_numel(a) != zl_ckpt_numel(b))
        return zl_errorf(ZL_ERR_INVALID, "'%s' and '%s' are checkpoints of different models (%zu "
                         "and %zu parameters)", zl_ckpt_path(a), zl_ckpt_path(b), zl_ckpt_numel(a),
                         zl_ckpt_numel(b));
    for (int i = 0; i < zl_ckpt_num_params(a); i++)
        if (strcmp(zl_ckpt_param_at(a, i)->name, zl_ckpt_param_at(b, i)->name) ||
            zl_ckpt_param_at(a, i)->numel != zl_ckpt_param_at(b, i)->numel)
            return zl_errorf(ZL_ERR_INVALID, "'%s' and '%s' are checkpoints of different models "
                             "(parameter %d: \"%s\" and \"%s\")", zl_ckpt_path(a), zl_ckpt_path(b),
                             i, zl_ckpt_param_at(a, i)->name, zl_ckpt_param_at(b, i)->name);
    return ZL_OK;
}

zl_status zl_ckpt_compare(zl_ckpt *a, zl_ckpt *b, bool state, double rtol, double atol,
                          zl_ckpt_diff *out)
{
    memset(out, 0, sizeof *out);
    zl_status st = compare_models(a, b);
    if (st != ZL_OK) return st;
    if (state && (!zl_ckpt_has_optimizer(a) || !zl_ckpt_has_optimizer(b)))
        return zl_errorf(ZL_ERR_INVALID, "comparing optimizer state needs it in both checkpoints");
    size_t largest = 1;
    for (int i = 0; i < zl_ckpt_num_params(a); i++)
        if (zl_ckpt_param_at(a, i)->numel > largest) largest = zl_ckpt_param_at(a, i)->numel;
    float *x = malloc(largest * sizeof *x), *y = malloc(largest * sizeof *y);
    if (!x || !y) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory comparing checkpoints");
    for (int k = 0; k < (state ? 3 : 1) && st == ZL_OK; k++)
        for (int i = 0; i < zl_ckpt_num_params(a) && st == ZL_OK; i++) {
            const zl_ckpt_param *p = zl_ckpt_param_at(a, i);
            st = k == 0 ? zl_ckpt_read_fp32(a, p->offset, p->numel, x)
                        : zl_ckpt_read_state(a, STATE_TENSORS[k], p->offset, p->numel, ZL_F32, x);
            if (st == ZL_OK)
                st = k == 0 ? zl_ckpt_read_fp32(b, p->offset, p->numel, y)
                            : zl_ckpt_read_state(b, STATE_TENSORS[k], p->offset, p->numel, ZL_F32, y);
            for (size_t j = 0; st == ZL_OK && j < p->numel; j++) {
                double d = fabs((double)x[j] - (double)y[j]);
                if (!(d == d)) d = INFINITY; /* a NaN on one side is a difference */
                if (isnan(x[j]) && isnan(y[j])) d = 0;
                if (d > atol + rtol * fabs((double)y[j])) out->beyond++;
                if (d > out->max_abs || (d == INFINITY && !out->param)) {
                    out->max_abs = d;
                    out->at_ref = fabs((double)y[j]);
                    out->param = p->name;
                    out->index = j;
                }
            }
        }
    free(x);
    free(y);
    return st;
}

/* ---- llm.c ----------------------------------------------------------------------------- */

zl_status zl_ckpt_import_llmc(const char *bin_path, const char *out_dir, const char *tag,
                              size_t *padding_nonzero)
{
    if (!tag) tag = "llmc";
    zl_status st = zl_ckpt_check_tag(tag);
    if (st != ZL_OK) return st;
    zl_llmc_header h;
    float *flat = NULL;
    if ((st = zl_llmc_read(bin_path, &h, &flat)) != ZL_OK) return st;
    if (padding_nonzero) *padding_nonzero = h.padding_nonzero;
    zl_model m;
    bool have_model = false;
    zl_dtype dt = h.version == ZL_LLMC_VERSION_BF16 ? ZL_BF16 : ZL_F32;
    snprintf(h.cfg.name, sizeof h.cfg.name, "llm.c %s", strrchr(bin_path, '/') ? strrchr(bin_path, '/') + 1 : bin_path);
    if ((st = zl_model_create(&m, &h.cfg, NULL)) == ZL_OK) have_model = true;
    /* The module in the file's precision: each value was a bf16 widened exactly, so its
     * high half is the file's bits (zl_convert would quiet a signalling NaN). In place:
     * element i's 2 bytes land where elements up to i were already read. */
    if (st == ZL_OK && dt == ZL_BF16)
        for (size_t i = 0; i < m.params_numel; i++) {
            uint32_t bits;
            memcpy(&bits, &flat[i], 4);
            ((uint16_t *)flat)[i] = (uint16_t)(bits >> 16);
        }
    zl_ckpt_param *params = have_model ? calloc((size_t)m.num_params + 1, sizeof *params) : NULL;
    if (st == ZL_OK && !params) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    for (int i = 0; st == ZL_OK && i < m.num_params; i++) {
        const zl_param_info *p = &m.params[i];
        params[i] = (zl_ckpt_param){p->name, p->ndim, {p->shape[0], p->shape[1]}, p->offset, p->numel};
    }
    char stage_dir[4096];
    if (st == ZL_OK) st = zl_ckpt_stage(out_dir, tag, stage_dir, sizeof stage_dir);
    if (st == ZL_OK) {
        /* A start, not a resume: counters at zero, no optimizer state (the engine starts
         * a fresh optimizer from these weights, as DeepSpeed's load_module_only). */
        json_t *s = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:o, s:o, s:[], "
                              "s:{s:s, s:i, s:f}, s:{s:i, s:f}, s:{s:b, s:f, s:i, s:i, s:i}}",
                              "tag", tag, "global_steps", 0, "global_samples", 0, "micro_steps", 0,
                              "skipped_steps", 0, "dp_world_size", 1, "mp_world_size", 1,
                              "zero_stage", 0, "dtype", dt == ZL_BF16 ? "bf16" : "fp32",
                              "model", zl_ckpt_model_json(&m), "param_shapes",
                              zl_ckpt_param_table_json(&m), "optimizer_shards", "optimizer",
                              "type", "none", "step", 0, "lr", 0.0, "lr_scheduler",
                              "last_batch_iteration", -1, "lr", 0.0, "loss_scaler", "dynamic", 0,
                              "cur_scale", 1.0, "cur_hysteresis", 0, "cur_iter", 0,
                              "last_overflow_iter", -1);
        json_object_set_new(s, "source", json_string(bin_path));
        /* llm.c's padded vocabulary, so that an export writes the file it came from. */
        json_object_set_new(s, "llmc_padded_vocab", json_integer(h.padded_vocab));
        st = s ? write_states(stage_dir, s, params, m.num_params, dt, flat)
               : zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        json_decref(s);
    }
    if (st == ZL_OK) st = zl_ckpt_commit(out_dir, tag, true);
    else if (have_model) zl_ckpt_unstage(out_dir, tag);
    free(params);
    if (have_model) zl_model_destroy(&m);
    free(flat);
    return st;
}

zl_status zl_ckpt_export_llmc(zl_ckpt *c, const char *bin_path, int version)
{
    const json_t *mo = json_object_get(zl_ckpt_file_state(zl_ckpt_states(c)), "model");
    const char *path = zl_ckpt_file_path(zl_ckpt_states(c));
    zl_gpt_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int64_t v[5];
    static const char *const keys[5] = {"vocab_size", "max_seq_len", "num_layers", "num_heads",
                                        "channels"};
    for (int k = 0; k < 5; k++) {
        zl_status st = zl_ckpt_json_int(mo, keys[k], path, &v[k]);
        if (st != ZL_OK) return st;
        if (v[k] <= 0 || v[k] > 1 << 30)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': model.%s is out of range", path,
                             keys[k]);
    }
    snprintf(cfg.name, sizeof cfg.name, "export");
    cfg.vocab_size = (int)v[0], cfg.max_seq_len = (int)v[1], cfg.num_layers = (int)v[2];
    cfg.num_heads = (int)v[3], cfg.channels = (int)v[4];
    if (version == 0)
        version = zl_ckpt_dtype(c) == ZL_BF16 ? ZL_LLMC_VERSION_BF16 : ZL_LLMC_VERSION_F32;
    if (version != ZL_LLMC_VERSION_F32 && version != ZL_LLMC_VERSION_BF16)
        return zl_errorf(ZL_ERR_INVALID, "llm.c model files are version %d (fp32) or %d (bf16), "
                         "not %d", ZL_LLMC_VERSION_F32, ZL_LLMC_VERSION_BF16, version);
    if (zl_gpt_config_num_params(&cfg) != zl_ckpt_numel(c))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint '%s' is not a GPT-2 model of the shape it "
                         "records", zl_ckpt_path(c));
    float *flat = malloc(zl_ckpt_numel(c) * sizeof *flat);
    if (!flat) return zl_errorf(ZL_ERR_NOMEM, "out of host memory for the model's weights");
    zl_status st = zl_ckpt_read_fp32(c, 0, zl_ckpt_numel(c), flat);
    zl_llmc_header h = zl_llmc_header_for(&cfg, version);
    const json_t *vp = json_object_get(zl_ckpt_file_state(zl_ckpt_states(c)), "llmc_padded_vocab");
    if (json_is_integer(vp) && json_integer_value(vp) >= cfg.vocab_size &&
        json_integer_value(vp) <= (json_int_t)cfg.vocab_size + (1 << 20))
        h.padded_vocab = (int)json_integer_value(vp); /* imported: the file's own padding */
    if (st == ZL_OK) st = zl_llmc_write(bin_path, &h, flat);
    free(flat);
    return st;
}
