/* Saving and loading the engine (DeepSpeed's save_checkpoint / load_checkpoint), in
 * DeepSpeed's layout (ckpt/ckpt_layout.h) with safetensors tensors and JSON state
 * (ckpt/ckpt_file.h).
 *
 * What each file holds:
 *   mp_rank_00_model_states   the module's weights by name, in the training dtype
 *                             (gathered at stage 3); the engine's counters, the LR
 *                             schedule, the loss scaler, the optimizer's settings and step,
 *                             the model's shape and parameter table, the list of optimizer
 *                             shards, the DeepSpeed config and the caller's client state.
 *   [bf16_]zero_pp_rank_R_... rank R's optimizer state: its fp32 master weights ("fp32_flat")
 *                             and Adam's moments ("exp_avg", "exp_avg_sq") as the rank keeps
 *                             them, and the fragments that say which elements of the flat
 *                             parameter vector each one is (zl_zero_fragment). Stage 0
 *                             keeps the optimizer whole on every rank: rank 0 writes one.
 *
 * Any layout loads ("universal"): a loading rank asks its strategy which elements of the
 * flat vector it keeps (its fragments, whatever the stage and world size), and copies
 * each from the saved fragments that overlap it, in whichever shard they are. The
 * parameters follow from the fp32 master weights (rounded to the run's dtype), or are
 * taken from the module's weights bit for bit when the dtype is the same. Saved and
 * loaded tensors are read and written in place: no copy of the state is made.
 *
 * Both are collective over the data-parallel group, with the ranks agreeing on the status
 * after every phase, so that a full disk or a corrupted file on one rank fails every rank
 * with a message instead of leaving the others waiting. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "ckpt/ckpt_file.h"
#include "ckpt/ckpt_layout.h"
#include "ckpt/ckpt_read.h"
#include "ckpt/ckpt_tools.h"
#include "engine/engine_internal.h"

#define PATH_LEN 4096

static zl_status agree(zl_engine *e, zl_status st)
{
    return e->opt.dp ? zl_comm_agree(e->opt.dp, st) : st;
}

static const char *dtype_label(zl_dtype t)
{
    return t == ZL_BF16 ? "bf16" : t == ZL_F16 ? "fp16" : "fp32";
}

/* ---- the tag, the same on every rank -------------------------------------------------- */

/* checkpoint.tag_validation: compare the tag's hash across ranks (min and max of its two
 * halves, exact in doubles). */
static zl_status validate_tag(zl_engine *e, const char *tag, int mode)
{
    if (!e->opt.dp || e->opt.dp->size == 1 || mode == 1 /* IGNORE */) return ZL_OK;
    uint64_t h = zl_ckpt_hash(tag, strlen(tag));
    double v[4] = {(double)(h & 0xffffffffu), (double)(h >> 32), -(double)(h & 0xffffffffu),
                   -(double)(h >> 32)};
    zl_status st = zl_comm_allreduce(e->opt.dp, v, 4, ZL_F64, ZL_REDUCE_MAX);
    if (st != ZL_OK) return st;
    bool same = v[0] == -v[2] && v[1] == -v[3];
    if (same) return ZL_OK;
    if (mode == 2 /* FAIL */)
        return zl_errorf(ZL_ERR_INVALID, "checkpoint tag \"%s\" is not the same on every rank "
                         "(checkpoint.tag_validation is FAIL)\n  hint: pass every rank the same tag",
                         tag);
    zl_log_warn("checkpoint tag \"%s\" is not the same on every rank", tag);
    return ZL_OK;
}

/* ---- the host's copies of device tensors ---------------------------------------------
 *
 * A checkpoint's files are written and read by the host, which cannot address an
 * accelerator's memory (a GPU's): a tensor on one is moved through a host copy (on ref
 * and cpu, a memcpy). A tensor on the host device (offload) is used in place. */

static bool on_host(const zl_tensor *t) { return !t->device || t->device->kind != ZL_DEVICE_ACCEL; }

/* A host view of t's bytes: t->data itself, or a malloc'd copy (*own, freed by the
 * caller; NULL and *own NULL when out of host memory). */
static void *host_view(const zl_tensor *t, void **own)
{
    *own = NULL;
    size_t nbytes = t->numel * zl_dtype_nbytes(t->dtype);
    if (on_host(t) || !t->data || !nbytes) return t->data;
    const zl_ops *ops = zl_device_backend(t->device);
    if (!(*own = malloc(nbytes))) return NULL;
    zl_device_read(ops, *own, t->data, nbytes);
    return *own;
}

/* After writing into a host_view of t: the copy back to the device, and the copy's end. */
static void host_view_commit(const zl_tensor *t, void *own)
{
    if (!own) return;
    const zl_ops *ops = zl_device_backend(t->device);
    zl_device_write(ops, t->data, own, t->numel * zl_dtype_nbytes(t->dtype));
    free(own);
}

/* ---- saving --------------------------------------------------------------------------- */

static zl_zero_fragment *fragments_of(zl_engine *e, bool params, int *n)
{
    *n = zl_zero_fragments(&e->zero, params, NULL, 0);
    zl_zero_fragment *f = malloc(((size_t)*n + 1) * sizeof *f);
    if (f) zl_zero_fragments(&e->zero, params, f, *n);
    return f;
}

/* This rank's shard: its master weights and moments as it keeps them. */
static zl_status write_optim_shard(zl_engine *e, const char *dir)
{
    int nf;
    zl_zero_fragment *zf = fragments_of(e, false, &nf);
    zl_ckpt_fragment *f = zf ? malloc(((size_t)nf + 1) * sizeof *f) : NULL;
    for (int i = 0; f && i < nf; i++) f[i] = (zl_ckpt_fragment){zf[i].flat, zf[i].numel, zf[i].local};
    void *own[3];
    void *master = host_view(zl_zero_master(&e->zero), &own[0]);
    void *m = host_view(&e->adam.m, &own[1]), *v = host_view(&e->adam.v, &own[2]);
    zl_ckpt_shard_state sh = {zl__engine_dp_rank(e), zl__engine_dp_size(e), e->opt.zero_stage,
                        e->adam.step, e->prec.dtype == ZL_BF16, e->adam.numel,
                        master, m, v, f, nf};
    bool copied = (master || !zl_zero_master(&e->zero)->data) && (m || !e->adam.m.data) &&
                  (v || !e->adam.v.data);
    zl_status st = f && copied ? zl_ckpt_write_optim_shard(dir, &sh)
                               : zl_errorf(ZL_ERR_NOMEM, "out of host memory saving a checkpoint");
    for (int i = 0; i < 3; i++) free(own[i]);
    free(f);
    free(zf);
    return st;
}

static json_t *engine_state_json(const zl_engine *e, const char *tag)
{
    json_t *s = json_object();
    const zl_optimizer_params *op = &e->adam.p;
    json_object_set_new(s, "tag", json_string(tag));
    json_object_set_new(s, "global_steps", json_integer(e->global_steps));
    json_object_set_new(s, "global_samples", json_integer(e->global_samples));
    json_object_set_new(s, "micro_steps", json_integer(e->micro_steps));
    json_object_set_new(s, "skipped_steps", json_integer(e->skipped_steps));
    json_object_set_new(s, "dp_world_size", json_integer(zl__engine_dp_size(e)));
    json_object_set_new(s, "mp_world_size", json_integer(1));
    json_object_set_new(s, "zero_stage", json_integer(e->opt.zero_stage));
    json_object_set_new(s, "dtype", json_string(dtype_label(e->prec.dtype)));
    json_object_set_new(s, "model", zl_ckpt_model_json(&e->model));
    json_object_set_new(s, "param_shapes", zl_ckpt_param_table_json(&e->model));
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(op->adam_w_mode ? "AdamW" : "Adam"));
    json_object_set_new(o, "step", json_integer(e->adam.step));
    json_object_set_new(o, "lr", json_real(e->lr));
    json_object_set_new(o, "beta1", json_real(op->beta1));
    json_object_set_new(o, "beta2", json_real(op->beta2));
    json_object_set_new(o, "eps", json_real(op->eps));
    json_object_set_new(o, "weight_decay", json_real(op->weight_decay));
    json_object_set_new(s, "optimizer", o);
    json_t *lr = json_object();
    json_object_set_new(lr, "last_batch_iteration", json_integer(e->lr_schedule.last_batch_iteration));
    json_object_set_new(lr, "lr", json_real(e->lr_schedule.lr));
    json_object_set_new(s, "lr_scheduler", lr);
    const zl_loss_scaler *ls = &e->prec.scaler;
    json_t *sc = json_object();
    json_object_set_new(sc, "dynamic", json_boolean(ls->dynamic));
    json_object_set_new(sc, "cur_scale", json_real(ls->cur_scale));
    json_object_set_new(sc, "cur_hysteresis", json_integer(ls->cur_hysteresis));
    json_object_set_new(sc, "cur_iter", json_integer(ls->cur_iter));
    json_object_set_new(sc, "last_overflow_iter", json_integer(ls->last_overflow_iter));
    json_object_set_new(s, "loss_scaler", sc);
    json_t *rng = json_object();
    json_object_set_new(rng, "seed", json_integer((json_int_t)e->opt.seed));
    /* The stream's position: what a dropout mask would be drawn from next (model.h). */
    json_object_set_new(rng, "position", json_integer((json_int_t)e->model.rng_pos));
    json_object_set_new(s, "rng", rng);
    return s;
}

/* The text of a JSON object the caller passed, or a clear error. */
static zl_status parse_object(const char *text, const char *what, json_t **out)
{
    *out = NULL;
    if (!text) return ZL_OK;
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    if (!json_is_object(v)) {
        json_decref(v);
        return zl_errorf(ZL_ERR_INVALID, "the %s to save is not a JSON object (%s)", what,
                         v ? "another JSON value" : err.text);
    }
    *out = v;
    return ZL_OK;
}

/* What each rank's backend chose by measuring (the cpu backend: each GEMM shape's path,
 * ops.h choices_save), gathered from every rank: a JSON array of texts, one per rank, or
 * NULL when the backend chooses nothing. Kept in the model states, so that a resumed rank
 * computes as the rank it resumes did (restore_choices). Collective. */
static zl_status gather_choices(zl_engine *e, json_t **out)
{
    *out = NULL;
    const zl_ops *ops = zl_device_backend(e->device);
    if (!ops->choices_save) return ZL_OK;
    int32_t len = (int32_t)ops->choices_save(ops, NULL, 0);
    zl_status st = ZL_OK;
    int W = zl__engine_dp_size(e);
    if (W > 1) st = zl_comm_allreduce(e->opt.dp, &len, 1, ZL_I32, ZL_REDUCE_MAX);
    size_t slot = ((size_t)len + 3) / 4 * 4; /* whole int32s for the allgather */
    char *all = st == ZL_OK ? calloc((size_t)W, slot) : NULL;
    char *mine = all ? all + (size_t)zl__engine_dp_rank(e) * slot : NULL;
    if (st == ZL_OK && !all) st = zl_errorf(ZL_ERR_NOMEM, "out of host memory saving a checkpoint");
    if (st == ZL_OK) ops->choices_save(ops, mine, slot);
    if (st == ZL_OK && W > 1)
        st = zl_comm_allgather(e->opt.dp, all, mine, slot / 4, ZL_I32);
    if (st == ZL_OK) {
        *out = json_array();
        for (int r = 0; r < W; r++) {
            all[(size_t)r * slot + slot - 1] = '\0';
            json_array_append_new(*out, json_string(all + (size_t)r * slot));
        }
    }
    free(all);
    return st;
}

/* This rank's saved choices into its backend: its own rank's when the world size is the
 * saved one, else rank 0's (another layout computes otherwise anyway). Choices the
 * backend has made already stay: none have been made before the first step. */
static void restore_choices(zl_engine *e, const zl_ckpt *c)
{
    const zl_ops *ops = zl_device_backend(e->device);
    const json_t *all = json_object_get(zl_ckpt_file_state(zl_ckpt_states(c)), "backend_choices");
    if (!ops->choices_load || !json_is_array(all) || json_array_size(all) == 0) return;
    size_t r = json_array_size(all) == (size_t)zl__engine_dp_size(e) ? (size_t)zl__engine_dp_rank(e) : 0;
    const json_t *text = json_array_get(all, r);
    if (json_is_string(text)) {
        int n = ops->choices_load(ops, json_string_value(text));
        if (n) zl_log_debug("took %d run-time choices (GEMM paths) from the checkpoint", n);
    }
}

/* Rank 0's (or each node's first rank's) model states: the module's weights by name. */
static zl_status write_model_states(zl_engine *e, const char *dir, const char *tag,
                                    const zl_engine_save_args *a, const void *module,
                                    json_t *choices)
{
    const zl_model *m = &e->model;
    zl_ckpt_writer *w;
    zl_status st = zl_ckpt_writer_create(&w);
    if (st != ZL_OK) return st;
    size_t esz = zl_dtype_nbytes(e->prec.dtype);
    for (int i = 0; i < m->num_params && st == ZL_OK; i++) {
        const zl_param_info *p = &m->params[i];
        st = zl_ckpt_writer_add(w, p->name, e->prec.dtype, p->ndim, p->shape,
                                (const char *)module + p->offset * esz);
    }
    json_t *client = NULL, *config = NULL;
    if (st == ZL_OK) st = parse_object(a->client_state, "client state", &client);
    if (st == ZL_OK) st = parse_object(a->ds_config, "DeepSpeed config", &config);
    if (st == ZL_OK) {
        json_t *s = zl_ckpt_writer_state(w);
        json_t *es = engine_state_json(e, tag);
        json_object_update(s, es);
        json_decref(es);
        json_t *shards = json_array();
        int writers = e->opt.zero_stage == 0 ? 1 : zl__engine_dp_size(e);
        for (int r = 0; r < writers; r++) {
            char base[128];
            zl_ckpt_optim_base(base, sizeof base, r, e->prec.dtype == ZL_BF16);
            json_array_append_new(shards, json_string(base));
        }
        json_object_set_new(s, "optimizer_shards", shards);
        if (config) json_object_set(s, "ds_config", config);
        if (choices) json_object_set(s, "backend_choices", choices);
        if (client) json_object_set(s, "client_state", client);
        st = zl_ckpt_writer_write(w, dir, ZL_CKPT_MODEL_STATES);
    }
    json_decref(client);
    json_decref(config);
    zl_ckpt_writer_destroy(w);
    return st;
}

/* What the engine cannot save or load yet: the strategy's refusals (zero/zero.h), and
 * pipeline stages and tensor-parallel parts, whose files DeepSpeed lays out per layer
 * (layer_NN-model_states) and per model-parallel rank (mp_rank_NN). */
zl_status zl_engine_checkpointable(const zl_engine *e)
{
    if (e->model.tp_size > 1)
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "checkpoints of tensor-parallel runs are not built yet (%d ranks): "
                         "DeepSpeed writes one mp_rank_NN file per tensor-parallel rank, which "
                         "zerolab does not write or read\n  hint: train without tensor "
                         "parallelism to save or load", e->model.tp_size);
    if (zl__engine_piped(e))
        return zl_errorf(ZL_ERR_UNSUPPORTED,
                         "checkpoints of pipeline-parallel runs are not built yet (%d stages): "
                         "DeepSpeed writes them per layer, a layout zerolab does not write or "
                         "read\n  hint: train without pipeline stages to save or load",
                         e->num_stages);
    return zl_zero_check_checkpointable(&e->zero);
}

zl_status zl_engine_save_checkpoint(zl_engine *e, const zl_engine_save_args *a)
{
    zl_comm *dp = e->opt.dp;
    if (dp) zl_comm_set_phase(dp, "save_checkpoint (every rank must call it)");
    char tag[ZL_CKPT_TAG_MAX + 1];
    if (a->tag) snprintf(tag, sizeof tag, "%.*s", ZL_CKPT_TAG_MAX, a->tag);
    else snprintf(tag, sizeof tag, "global_step%" PRId64, e->global_steps);
    zl_status st = zl_engine_checkpointable(e);
    if (st == ZL_OK && (!a->dir || !a->dir[0]))
        st = zl_errorf(ZL_ERR_INVALID, "save_checkpoint: the directory is empty\n  hint: pass a "
                       "directory to save into (--save DIR)");
    if (st == ZL_OK && a->tag) st = zl_ckpt_check_tag(a->tag);
    if (st == ZL_OK && e->micro_steps % e->opt.gradient_accumulation_steps != 0)
        st = zl_errorf(ZL_ERR_INVALID, "save_checkpoint at micro-step %" PRId64 ", inside an "
                       "accumulation of %d: the gradients accumulated so far are not saved\n"
                       "  hint: save after the optimizer step", e->micro_steps,
                       e->opt.gradient_accumulation_steps);
    if ((st = agree(e, st)) != ZL_OK) return st;
    if ((st = agree(e, validate_tag(e, tag, a->tag_validation))) != ZL_OK) return st;

    /* Who writes the shared files: rank 0, or each node's first rank when every node has
     * its own storage (checkpoint.use_node_local_storage). */
    bool leader = zl__engine_dp_rank(e) == 0;
    zl_comm *node = NULL;
    if (a->node_local && dp && dp->size > 1) {
        if ((st = agree(e, zl_comm_split_node(dp, &node))) != ZL_OK) return st;
        leader = node->rank == 0;
    }
    char stage_dir[PATH_LEN];
    snprintf(stage_dir, sizeof stage_dir, "%s/.%s.partial", a->dir, tag);
    if (leader) st = zl_ckpt_stage(a->dir, tag, stage_dir, sizeof stage_dir);
    st = agree(e, st);

    /* The module's weights: the parameters as they are at stages 0-2; stage 3 gathers
     * them (collective: every rank takes part). */
    void *module_own = NULL;
    void *module = e->opt.zero_stage == 3 ? NULL : host_view(&e->params, &module_own);
    if (e->opt.zero_stage != 3 && !module && e->params.data)
        st = zl_errorf(ZL_ERR_NOMEM, "out of host memory copying the module to save");
    float *gathered = NULL;
    if (st == ZL_OK && e->opt.zero_stage == 3) {
        gathered = malloc(e->model.params_numel * sizeof *gathered);
        st = gathered ? zl_engine_gather_params(e, gathered)
                      : zl_errorf(ZL_ERR_NOMEM, "out of host memory gathering the module to save");
        if (st == ZL_OK && e->prec.dtype != ZL_F32) /* in place: narrower, front to back */
            zl_convert(gathered, e->prec.dtype, gathered, ZL_F32, e->model.params_numel);
        module = gathered;
        st = agree(e, st);
    }
    json_t *choices = NULL;
    if (st == ZL_OK) st = agree(e, gather_choices(e, &choices));
    if (st == ZL_OK) {
        if (e->opt.zero_stage != 0 || zl__engine_dp_rank(e) == 0) st = write_optim_shard(e, stage_dir);
        if (st == ZL_OK && leader) st = write_model_states(e, stage_dir, tag, a, module, choices);
        st = agree(e, st);
    }
    json_decref(choices);
    free(gathered);
    free(module_own);
    if (st == ZL_OK && leader) st = zl_ckpt_commit(a->dir, tag, !a->no_latest);
    st = agree(e, st);
    if (st != ZL_OK && leader) zl_ckpt_unstage(a->dir, tag);
    if (node) zl_comm_destroy(node);
    if (dp) zl_comm_set_phase(dp, NULL);
    if (st == ZL_OK) zl_log_debug("saved checkpoint %s/%s", a->dir, tag);
    return st;
}

/* ---- loading -------------------------------------------------------------------------- */

/* The saved model must be this model: same shape, same parameter table. */
static zl_status check_model(const zl_engine *e, const zl_ckpt *c)
{
    const zl_model *m = &e->model;
    const char *path = zl_ckpt_file_path(zl_ckpt_states(c));
    const json_t *mo = json_object_get(zl_ckpt_file_state(zl_ckpt_states(c)), "model");
    const struct { const char *key; int64_t want; } dims[] = {
        {"vocab_size", m->cfg.vocab_size}, {"max_seq_len", m->cfg.max_seq_len},
        {"num_layers", m->cfg.num_layers}, {"num_heads", m->cfg.num_heads},
        {"channels", m->cfg.channels}, {"params_numel", (int64_t)m->params_numel}};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        int64_t v;
        zl_status st = zl_ckpt_json_int(mo, dims[i].key, path, &v);
        if (st != ZL_OK) return st;
        if (v != dims[i].want)
            return zl_errorf(ZL_ERR_INVALID, "checkpoint '%s' is of another model: its %s is %" PRId64
                             ", this run's model '%s' has %" PRId64 "\n  hint: train the model it "
                             "was saved from (--model)", zl_ckpt_path(c), dims[i].key, v,
                             m->cfg.name, dims[i].want);
    }
    if (zl_ckpt_num_params(c) != m->num_params)
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' lists %d parameters, the model has %d",
                         path, zl_ckpt_num_params(c), m->num_params);
    for (int i = 0; i < m->num_params; i++) {
        const zl_ckpt_param *p = zl_ckpt_param_at(c, i);
        if (strcmp(p->name, m->params[i].name) || p->offset != m->params[i].offset)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': parameter %d is \"%s\" at %zu, "
                             "this model's is \"%s\" at %zu", path, i, p->name, p->offset,
                             m->params[i].name, m->params[i].offset);
    }
    return ZL_OK;
}

/* The engine's counters, schedule, scaler and optimizer step from the model states. */
static zl_status restore_engine_state(zl_engine *e, const zl_ckpt *c)
{
    const json_t *s = zl_ckpt_file_state(zl_ckpt_states(c));
    const char *path = zl_ckpt_file_path(zl_ckpt_states(c));
    int64_t gs, gsamp, ms, sk, lbi, step, hyst, iter, last;
    double lr, scale;
    const json_t *o = json_object_get(s, "optimizer"), *sched = json_object_get(s, "lr_scheduler");
    const json_t *sc = json_object_get(s, "loss_scaler");
    zl_status st;
    if ((st = zl_ckpt_json_int(s, "global_steps", path, &gs)) != ZL_OK ||
        (st = zl_ckpt_json_int(s, "global_samples", path, &gsamp)) != ZL_OK ||
        (st = zl_ckpt_json_int(s, "micro_steps", path, &ms)) != ZL_OK ||
        (st = zl_ckpt_json_int(s, "skipped_steps", path, &sk)) != ZL_OK ||
        (st = zl_ckpt_json_int(o, "step", path, &step)) != ZL_OK ||
        (st = zl_ckpt_json_real(o, "lr", path, &lr)) != ZL_OK ||
        (st = zl_ckpt_json_int(sched, "last_batch_iteration", path, &lbi)) != ZL_OK ||
        (st = zl_ckpt_json_real(sc, "cur_scale", path, &scale)) != ZL_OK ||
        (st = zl_ckpt_json_int(sc, "cur_hysteresis", path, &hyst)) != ZL_OK ||
        (st = zl_ckpt_json_int(sc, "cur_iter", path, &iter)) != ZL_OK ||
        (st = zl_ckpt_json_int(sc, "last_overflow_iter", path, &last)) != ZL_OK)
        return st;
    if (gs < 0 || gs > INT64_MAX / 1024 || gsamp < 0 || ms < 0 || sk < 0 || step < 0 || lbi < -1 ||
        !(scale > 0) || !isfinite(scale) || !isfinite(lr))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': a counter is negative or a scale "
                         "is not a positive number", path);
    if (!zl_ckpt_has_optimizer(c)) return ZL_OK; /* the weights only: a fresh start */
    e->global_steps = gs;
    e->global_samples = gsamp;
    /* At the boundary, as saved, in this run's accumulation. */
    e->micro_steps = gs * e->opt.gradient_accumulation_steps;
    e->skipped_steps = sk;
    e->adam.step = step;
    const json_t *pos = json_object_get(json_object_get(s, "rng"), "position");
    if (json_is_integer(pos) && json_integer_value(pos) >= 0)
        e->model.rng_pos = (uint64_t)json_integer_value(pos);
    e->lr = lr;
    zl_lr_schedule_set_iteration(&e->lr_schedule, lbi);
    /* fp16's scaler, when both runs have a dynamic one; bf16 and fp32 keep their 1. */
    zl_loss_scaler *ls = &e->prec.scaler;
    if (e->prec.dtype == ZL_F16 && ls->dynamic && json_is_true(json_object_get(sc, "dynamic"))) {
        ls->cur_scale = scale;
        ls->cur_hysteresis = hyst;
        ls->cur_iter = iter;
        ls->last_overflow_iter = last;
    }
    return ZL_OK;
}

/* This rank's master weights, moments and parameters from the checkpoint. */
static zl_status restore_values(zl_engine *e, zl_ckpt *c)
{
    zl_dtype t = e->prec.dtype;
    const zl_tensor *master = zl_zero_master(&e->zero);
    bool optimizer = zl_ckpt_has_optimizer(c);
    int nf;
    zl_zero_fragment *f = fragments_of(e, false, &nf);
    /* Read into host copies of the tensors (what no fragment covers keeps its values),
     * then sent back to the device. */
    void *own[3];
    float *hm = host_view(master, &own[0]), *am = NULL, *av = NULL;
    if (optimizer) am = host_view(&e->adam.m, &own[1]), av = host_view(&e->adam.v, &own[2]);
    else own[1] = own[2] = NULL;
    zl_status st = f && (hm || !master->data) &&
                   (!optimizer || ((am || !e->adam.m.data) && (av || !e->adam.v.data)))
                       ? ZL_OK : zl_errorf(ZL_ERR_NOMEM, "out of host memory loading a checkpoint");
    for (int i = 0; i < nf && st == ZL_OK; i++) {
        /* Without optimizer state, DeepSpeed's rule: the masters come from the weights. */
        st = zl_ckpt_read_fp32(c, f[i].flat, f[i].numel, hm + f[i].local);
        if (st == ZL_OK && optimizer)
            st = zl_ckpt_read_state(c, "exp_avg", f[i].flat, f[i].numel, ZL_F32, am + f[i].local);
        if (st == ZL_OK && optimizer)
            st = zl_ckpt_read_state(c, "exp_avg_sq", f[i].flat, f[i].numel, ZL_F32,
                                    av + f[i].local);
    }
    if (st == ZL_OK) {
        host_view_commit(master, own[0]);
        host_view_commit(&e->adam.m, own[1]);
        host_view_commit(&e->adam.v, own[2]);
    } else
        for (int i = 0; i < 3; i++) free(own[i]);
    free(f);
    /* The parameters: the module's own bits when it has this run's dtype (stage 0 in fp32
     * has no separate master: the parameters are it, already read); else the fp32 master
     * weights rounded to it, as a step rounds them. */
    if (st == ZL_OK && master != &e->params) {
        f = fragments_of(e, true, &nf);
        void *pown;
        char *params = host_view(&e->params, &pown);
        if (!f || (!params && e->params.data))
            st = zl_errorf(ZL_ERR_NOMEM, "out of host memory loading a checkpoint");
        size_t esz = zl_dtype_nbytes(t);
        for (int i = 0; i < nf && st == ZL_OK; i++) {
            void *dst = params + f[i].local * esz;
            st = zl_ckpt_dtype(c) == t || !optimizer
                     ? zl_ckpt_read_module(c, f[i].flat, f[i].numel, t, dst)
                     : zl_ckpt_read_state(c, "fp32_flat", f[i].flat, f[i].numel, t, dst);
        }
        if (st == ZL_OK) host_view_commit(&e->params, pown);
        else free(pown);
        free(f);
    }
    return st;
}

static zl_status load_local(zl_engine *e, const zl_engine_load_args *a, zl_engine_loaded *out)
{
    zl_ckpt *c = NULL;
    zl_status st = zl_ckpt_open(&c, a->dir, a->tag, a->universal_latest, a->module_only);
    if (st == ZL_OK) st = check_model(e, c);
    if (st == ZL_OK) st = restore_engine_state(e, c);
    if (st == ZL_OK) st = restore_values(e, c);
    /* The tensors no value came from (stage 0 in fp32 takes the parameters from the master
     * weights, not the module) are checked too: a corrupted file is refused whole. */
    if (st == ZL_OK) st = zl_ckpt_file_verify_all((zl_ckpt_file *)zl_ckpt_states(c));
    if (st == ZL_OK) restore_choices(e, c);
    if (st == ZL_OK && out) {
        const json_t *client = json_object_get(zl_ckpt_file_state(zl_ckpt_states(c)), "client_state");
        snprintf(out->tag, sizeof out->tag, "%s", zl_ckpt_tag(c));
        out->saved_dp_world_size = zl_ckpt_dp_world_size(c);
        out->saved_zero_stage = zl_ckpt_zero_stage(c);
        out->optimizer_loaded = zl_ckpt_has_optimizer(c);
        out->client_state = json_is_object(client) ? json_dumps(client, JSON_COMPACT) : NULL;
    }
    if (st == ZL_OK) zl_log_debug("loaded checkpoint %s", zl_ckpt_path(c));
    zl_ckpt_close(c);
    return st;
}

zl_status zl_engine_load_checkpoint(zl_engine *e, const zl_engine_load_args *a,
                                    zl_engine_loaded *out)
{
    if (out) memset(out, 0, sizeof *out);
    zl_comm *dp = e->opt.dp;
    if (dp) zl_comm_set_phase(dp, "load_checkpoint (every rank must call it)");
    zl_status st = zl_engine_checkpointable(e);
    if (st == ZL_OK && (!a->dir || !a->dir[0]))
        st = zl_errorf(ZL_ERR_INVALID, "load_checkpoint: the directory is empty\n  hint: pass the "
                       "directory a save wrote (--load DIR)");
    if (st == ZL_OK && e->micro_steps % e->opt.gradient_accumulation_steps != 0)
        st = zl_errorf(ZL_ERR_INVALID, "load_checkpoint inside an accumulation of %d micro-steps"
                       "\n  hint: load before training, or after an optimizer step",
                       e->opt.gradient_accumulation_steps);
    if (st == ZL_OK) st = load_local(e, a, out);
    st = agree(e, st);
    /* Stage 3's gathered copies and the tie's copies come from the new values. */
    if (st == ZL_OK) st = agree(e, zl_zero_params_changed(&e->zero));
    if (st == ZL_OK) st = zl__engine_ties_sync_values(e);
    if (st != ZL_OK && out) {
        free(out->client_state);
        out->client_state = NULL;
    }
    if (dp) zl_comm_set_phase(dp, NULL);
    return st;
}
