/* A checkpoint read as one thing (ckpt_read.h). */
#include "ckpt/ckpt_read.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt_layout.h"

/* A saved fragment: which shard holds it, where. */
typedef struct saved_fragment {
    size_t flat, numel, local;
    int shard;
} saved_fragment;

struct zl_ckpt {
    char tag[ZL_CKPT_TAG_MAX + 1];
    char path[4096];
    zl_ckpt_file *states;
    zl_ckpt_param *params;
    int num_params;
    size_t numel;
    zl_dtype dtype;
    int dp_world_size, zero_stage;
    zl_ckpt_file **shards;
    int num_shards;
    saved_fragment *frags; /* sorted by flat: they tile [0, numel) */
    int num_frags;
};

static int by_flat(const void *a, const void *b)
{
    const saved_fragment *x = a, *y = b;
    return x->flat < y->flat ? -1 : x->flat > y->flat;
}

/* The model's shape and parameter table: offsets contiguous, in order, summing to numel. */
static zl_status read_table(zl_ckpt *c)
{
    const json_t *s = zl_ckpt_file_state(c->states);
    const char *path = zl_ckpt_file_path(c->states);
    const json_t *mo = json_object_get(s, "model"), *table = json_object_get(s, "param_shapes");
    int64_t numel, world, stage;
    const char *dt;
    zl_status st;
    if (!json_is_object(mo) || !json_is_array(table))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' needs a \"model\" object and a "
                         "\"param_shapes\" array", path);
    if ((st = zl_ckpt_json_int(mo, "params_numel", path, &numel)) != ZL_OK ||
        (st = zl_ckpt_json_int(s, "dp_world_size", path, &world)) != ZL_OK ||
        (st = zl_ckpt_json_int(s, "zero_stage", path, &stage)) != ZL_OK ||
        (st = zl_ckpt_json_string(s, "dtype", path, &dt)) != ZL_OK)
        return st;
    if (numel <= 0 || world <= 0 || world > 1 << 24 || stage < 0 || stage > 3)
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': params_numel, dp_world_size or "
                         "zero_stage is out of range", path);
    if (!strcmp(dt, "fp32")) c->dtype = ZL_F32;
    else if (!strcmp(dt, "bf16")) c->dtype = ZL_BF16;
    else if (!strcmp(dt, "fp16")) c->dtype = ZL_F16;
    else return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"dtype\" is \"%s\", expected "
                          "fp32, fp16 or bf16", path, dt);
    c->numel = (size_t)numel;
    c->dp_world_size = (int)world;
    c->zero_stage = (int)stage;
    c->num_params = (int)json_array_size(table);
    c->params = calloc((size_t)c->num_params + 1, sizeof *c->params);
    if (!c->params) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading a checkpoint");
    size_t next = 0;
    for (int i = 0; i < c->num_params; i++) {
        const json_t *t = json_array_get(table, (size_t)i), *shape = json_object_get(t, "shape");
        zl_ckpt_param *p = &c->params[i];
        int64_t off;
        if ((st = zl_ckpt_json_string(t, "name", path, &p->name)) != ZL_OK ||
            (st = zl_ckpt_json_int(t, "offset", path, &off)) != ZL_OK)
            return st;
        bool ok = json_is_array(shape) && json_array_size(shape) <= 8 && off == (int64_t)next;
        p->ndim = ok ? (int)json_array_size(shape) : 0;
        p->numel = 1;
        for (int d = 0; ok && d < p->ndim; d++) {
            const json_t *e = json_array_get(shape, (size_t)d);
            ok = json_is_integer(e) && json_integer_value(e) > 0 &&
                 json_integer_value(e) <= (int64_t)c->numel &&
                 p->numel <= c->numel / (size_t)json_integer_value(e);
            if (ok) p->numel *= (size_t)(p->shape[d] = json_integer_value(e));
        }
        if (!ok || p->numel > c->numel - next)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': parameter %d (\"%s\") has a bad "
                             "shape or offset: the table must tile the flat vector in order", path,
                             i, p->name);
        p->offset = next;
        next += p->numel;
    }
    if (next != c->numel)
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': the parameters hold %zu elements, "
                         "params_numel says %zu", path, next, c->numel);
    return ZL_OK;
}

/* Open every optimizer shard the model states list, and gather their fragments. */
static zl_status open_shards(zl_ckpt *c, const json_t *list)
{
    const char *path = zl_ckpt_file_path(c->states);
    size_t numel = c->numel;
    c->num_shards = (int)json_array_size(list);
    c->shards = calloc((size_t)c->num_shards + 1, sizeof *c->shards);
    if (!c->shards) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading a checkpoint");
    int cap = 0;
    for (int r = 0; r < c->num_shards; r++) {
        const json_t *b = json_array_get(list, (size_t)r);
        if (!json_is_string(b) || zl_ckpt_check_tag(json_string_value(b)) != ZL_OK)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"optimizer_shards\" entry %d is "
                             "not a file name", path, r);
        zl_status st = zl_ckpt_file_open(&c->shards[r], c->path, json_string_value(b));
        if (st == ZL_ERR_NOT_FOUND)
            return zl_error_wrap(ZL_ERR_FORMAT, "checkpoint '%s' is incomplete (the save did not "
                                 "finish, or a file was removed: load another tag): ", c->path);
        if (st != ZL_OK) return st;
        const char *sp = zl_ckpt_file_path(c->shards[r]);
        const json_t *ss = zl_ckpt_file_state(c->shards[r]);
        const json_t *fr = json_object_get(ss, "fragments");
        /* The shard belongs to this save: its place in the layout the model states record
         * (a shard copied in from another save, or another layout, is refused here). */
        int64_t stage, count, rank, sstep, want_step;
        if ((st = zl_ckpt_json_int(ss, "zero_stage", sp, &stage)) != ZL_OK ||
            (st = zl_ckpt_json_int(ss, "partition_count", sp, &count)) != ZL_OK ||
            (st = zl_ckpt_json_int(ss, "dp_rank", sp, &rank)) != ZL_OK ||
            (st = zl_ckpt_json_int(ss, "step", sp, &sstep)) != ZL_OK ||
            (st = zl_ckpt_json_int(json_object_get(zl_ckpt_file_state(c->states), "optimizer"),
                                   "step", path, &want_step)) != ZL_OK)
            return st;
        if (stage != c->zero_stage || count != (c->zero_stage ? c->dp_world_size : count) ||
            rank != r || sstep != want_step)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' is rank %" PRId64 " of %" PRId64
                             " at ZeRO stage %" PRId64 ", step %" PRId64 ", where '%s' lists it as "
                             "rank %d of %d at stage %d, step %" PRId64 ": it is from another save"
                             "\n  hint: load another tag", sp, rank, count, stage, sstep, path, r,
                             c->dp_world_size, c->zero_stage, want_step);
        size_t tn;
        if ((st = zl_ckpt_file_tensor(c->shards[r], "fp32_flat", NULL, NULL, NULL, &tn)) != ZL_OK)
            return st;
        static const char *const moments[] = {"exp_avg", "exp_avg_sq"};
        for (int k = 0; k < 2; k++) {
            size_t mn;
            if ((st = zl_ckpt_file_tensor(c->shards[r], moments[k], NULL, NULL, NULL, &mn)) != ZL_OK)
                return st;
            if (mn != tn)
                return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"%s\" has %zu elements, "
                                 "\"fp32_flat\" %zu", sp, moments[k], mn, tn);
        }
        if (!json_is_array(fr))
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' has no \"fragments\" array", sp);
        for (size_t i = 0; i < json_array_size(fr); i++) {
            const json_t *t = json_array_get(fr, i);
            int64_t v[3] = {0, 0, 0};
            bool ok = json_is_array(t) && json_array_size(t) == 3;
            for (int k = 0; ok && k < 3; k++) {
                const json_t *x = json_array_get(t, (size_t)k);
                ok = json_is_integer(x) && (v[k] = json_integer_value(x)) >= 0;
            }
            /* Each bound against the sizes first, so that no sum below can overflow. */
            ok = ok && v[1] > 0 && (size_t)v[0] <= numel && (size_t)v[1] <= numel - (size_t)v[0] &&
                 (size_t)v[2] <= tn && (size_t)v[1] <= tn - (size_t)v[2];
            if (!ok)
                return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': fragment %zu is not [flat, "
                                 "numel, local] inside the model's %zu elements and the shard's %zu",
                                 sp, i, numel, tn);
            if (c->num_frags == cap) {
                cap = cap ? 2 * cap : 64;
                saved_fragment *f = realloc(c->frags, (size_t)cap * sizeof *f);
                if (!f) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading a checkpoint");
                c->frags = f;
            }
            c->frags[c->num_frags++] = (saved_fragment){(size_t)v[0], (size_t)v[1], (size_t)v[2], r};
        }
    }
    qsort(c->frags, (size_t)c->num_frags, sizeof *c->frags, by_flat);
    size_t next = 0;
    for (int i = 0; i < c->num_frags; i++) {
        if (c->frags[i].flat != next)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint '%s': the optimizer shards %s elements "
                             "from %zu of the flat vector", c->path,
                             c->frags[i].flat > next ? "are missing" : "hold twice the", next);
        next += c->frags[i].numel;
    }
    if (next != numel)
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint '%s': the optimizer shards hold %zu of the "
                         "model's %zu elements", c->path, next, numel);
    return ZL_OK;
}

zl_status zl_ckpt_open(zl_ckpt **out, const char *dir, const char *tag, bool universal_latest,
                       bool module_only)
{
    *out = NULL;
    zl_ckpt *c = calloc(1, sizeof *c);
    if (!c) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading a checkpoint");
    zl_status st = ZL_OK;
    const char *from = NULL; /* the file that named the tag, if none was passed */
    if (tag) {
        snprintf(c->tag, sizeof c->tag, "%.*s", ZL_CKPT_TAG_MAX, tag);
    } else {
        /* DeepSpeed's converted checkpoints are named by latest_universal; zerolab's are
         * universal as saved, and `latest` serves. */
        st = universal_latest
                 ? zl_ckpt_read_latest(dir, from = "latest_universal", c->tag, sizeof c->tag)
                 : ZL_ERR_NOT_FOUND;
        if (st != ZL_OK) st = zl_ckpt_read_latest(dir, from = "latest", c->tag, sizeof c->tag);
    }
    if (st == ZL_OK && (st = zl_ckpt_tag_dir(dir, c->tag, c->path, sizeof c->path)) != ZL_OK && from)
        st = zl_error_wrap(ZL_ERR_FORMAT, "'%s/%s' names a tag that is not there (the file was "
                           "edited or corrupted: write the tag to load into it, or pass --tag): ",
                           dir, from);
    if (st == ZL_OK) {
        st = zl_ckpt_file_open(&c->states, c->path, ZL_CKPT_MODEL_STATES);
        if (st == ZL_ERR_NOT_FOUND)
            st = zl_error_wrap(ZL_ERR_FORMAT, "'%s' is not a complete checkpoint: ", c->path);
    }
    if (st == ZL_OK) st = read_table(c);
    const json_t *shards = st == ZL_OK ? json_object_get(zl_ckpt_file_state(c->states),
                                                         "optimizer_shards") : NULL;
    if (st == ZL_OK && shards && !json_is_array(shards))
        st = zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"optimizer_shards\" is not an array",
                       zl_ckpt_file_path(c->states));
    if (st == ZL_OK && !module_only && json_array_size(shards) > 0) st = open_shards(c, shards);
    if (st != ZL_OK) {
        zl_ckpt_close(c);
        return st;
    }
    *out = c;
    return ZL_OK;
}

void zl_ckpt_close(zl_ckpt *c)
{
    if (!c) return;
    for (int r = 0; r < c->num_shards; r++) zl_ckpt_file_close(c->shards[r]);
    free(c->shards);
    free(c->frags);
    free(c->params);
    zl_ckpt_file_close(c->states);
    free(c);
}

const char *zl_ckpt_tag(const zl_ckpt *c) { return c->tag; }
const char *zl_ckpt_path(const zl_ckpt *c) { return c->path; }
const zl_ckpt_file *zl_ckpt_states(const zl_ckpt *c) { return c->states; }
size_t zl_ckpt_numel(const zl_ckpt *c) { return c->numel; }
zl_dtype zl_ckpt_dtype(const zl_ckpt *c) { return c->dtype; }
int zl_ckpt_dp_world_size(const zl_ckpt *c) { return c->dp_world_size; }
int zl_ckpt_zero_stage(const zl_ckpt *c) { return c->zero_stage; }
bool zl_ckpt_has_optimizer(const zl_ckpt *c) { return c->num_frags > 0; }
int zl_ckpt_num_shards(const zl_ckpt *c) { return c->num_shards; }
zl_ckpt_file *zl_ckpt_shard(const zl_ckpt *c, int i) { return c->shards[i]; }
int zl_ckpt_num_params(const zl_ckpt *c) { return c->num_params; }
const zl_ckpt_param *zl_ckpt_param_at(const zl_ckpt *c, int i) { return &c->params[i]; }

static zl_status check_range(const zl_ckpt *c, size_t flat, size_t n)
{
    if (flat > c->numel || n > c->numel - flat)
        return zl_errorf(ZL_ERR_INVALID, "elements [%zu, %zu) are past checkpoint '%s''s %zu",
                         flat, flat + n, c->path, c->numel);
    return ZL_OK;
}

zl_status zl_ckpt_read_state(zl_ckpt *c, const char *name, size_t flat, size_t n, zl_dtype dtype,
                             void *dst)
{
    zl_status st = check_range(c, flat, n);
    if (st != ZL_OK) return st;
    if (!zl_ckpt_has_optimizer(c))
        return zl_errorf(ZL_ERR_NOT_FOUND, "checkpoint '%s' holds no optimizer state", c->path);
    size_t esz = zl_dtype_nbytes(dtype);
    /* The first fragment that ends after flat (fragments tile the vector in order). */
    int lo = 0, hi = c->num_frags;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (c->frags[mid].flat + c->frags[mid].numel <= flat) lo = mid + 1;
        else hi = mid;
    }
    for (int i = lo; i < c->num_frags && c->frags[i].flat < flat + n; i++) {
        const saved_fragment *f = &c->frags[i];
        size_t b = f->flat > flat ? f->flat : flat;
        size_t e = f->flat + f->numel < flat + n ? f->flat + f->numel : flat + n;
        st = zl_ckpt_file_read(c->shards[f->shard], name, f->local + (b - f->flat), e - b, dtype,
                               (char *)dst + (b - flat) * esz);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

zl_status zl_ckpt_read_module(zl_ckpt *c, size_t flat, size_t n, zl_dtype dtype, void *dst)
{
    zl_status st = check_range(c, flat, n);
    if (st != ZL_OK) return st;
    size_t esz = zl_dtype_nbytes(dtype);
    for (int i = 0; i < c->num_params; i++) {
        const zl_ckpt_param *p = &c->params[i];
        size_t b = p->offset > flat ? p->offset : flat;
        size_t e = p->offset + p->numel < flat + n ? p->offset + p->numel : flat + n;
        if (b >= e) continue;
        size_t tn;
        st = zl_ckpt_file_tensor(c->states, p->name, NULL, NULL, NULL, &tn);
        if (st == ZL_OK && tn != p->numel)
            st = zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"%s\" has %zu elements, "
                           "param_shapes says %zu", zl_ckpt_file_path(c->states), p->name, tn,
                           p->numel);
        if (st == ZL_OK)
            st = zl_ckpt_file_read(c->states, p->name, b - p->offset, e - b, dtype,
                                   (char *)dst + (b - flat) * esz);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

zl_status zl_ckpt_read_fp32(zl_ckpt *c, size_t flat, size_t n, float *dst)
{
    return zl_ckpt_has_optimizer(c) ? zl_ckpt_read_state(c, "fp32_flat", flat, n, ZL_F32, dst)
                                    : zl_ckpt_read_module(c, flat, n, ZL_F32, dst);
}
