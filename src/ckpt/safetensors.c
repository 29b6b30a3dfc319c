/* safetensors writer and reader (format and rules: safetensors.h). */
#include "ckpt/safetensors.h"

#include "ckpt/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The format's dtype names and element sizes. F4-style sub-byte types are left out: the
 * reader reports them as unknown. */
static const struct {
    const char *name;
    size_t nbytes;
    zl_dtype zl_type;
} dtype_table[] = {
    {"BOOL", 1, ZL_DTYPE_COUNT}, {"U8", 1, ZL_DTYPE_COUNT},      {"I8", 1, ZL_DTYPE_COUNT},
    {"F8_E5M2", 1, ZL_DTYPE_COUNT}, {"F8_E4M3", 1, ZL_DTYPE_COUNT},
    {"I16", 2, ZL_DTYPE_COUNT},  {"U16", 2, ZL_U16},             {"F16", 2, ZL_F16},
    {"BF16", 2, ZL_BF16},        {"I32", 4, ZL_I32},             {"U32", 4, ZL_DTYPE_COUNT},
    {"F32", 4, ZL_F32},          {"F64", 8, ZL_DTYPE_COUNT},     {"I64", 8, ZL_DTYPE_COUNT},
    {"U64", 8, ZL_DTYPE_COUNT},
};
#define NUM_DTYPES (sizeof dtype_table / sizeof dtype_table[0])

const char *zl_safetensors_dtype_name(zl_dtype dtype)
{
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (dtype_table[i].zl_type == dtype) return dtype_table[i].name;
    return "?";
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* "(2, 3)"; "()" for a scalar. */
static const char *shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < len) snprintf(buf + k, len - k, ")");
    return buf;
}

/* numel and nbytes of a shape, false on size_t overflow. */
static bool shape_nbytes(int ndim, const int64_t *shape, size_t elem, size_t *numel, size_t *nbytes)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        size_t s = (size_t)shape[d];
        if (s && n > SIZE_MAX / s) return false;
        n *= s;
    }
    if (n > SIZE_MAX / elem) return false;
    *numel = n;
    *nbytes = n * elem;
    return true;
}

/* ==== writer ========================================================================= */

typedef struct writer_entry {
    char *name;
    zl_dtype dtype;
    int ndim;
    int64_t shape[ZL_SAFETENSORS_MAX_DIMS];
    size_t nbytes;
    const void *data;
} writer_entry;

struct zl_safetensors_writer {
    writer_entry *entries;
    int num_entries, cap_entries;
    json_t *metadata; /* object of strings, in insertion order */
    /* Streaming (zl_safetensors_writer_stream_*): the temporary file, the layout order
     * and the next tensor of it that is due. */
    zl_atomic_file file;
    bool open;
    int *order;
    int next;
};

zl_status zl_safetensors_writer_create(zl_safetensors_writer **out)
{
    zl_safetensors_writer *w = calloc(1, sizeof *w);
    if (w) w->metadata = json_object();
    if (!w || !w->metadata) {
        free(w);
        *out = NULL;
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory creating a safetensors writer");
    }
    *out = w;
    return ZL_OK;
}

void zl_safetensors_writer_destroy(zl_safetensors_writer *w)
{
    if (!w) return;
    if (w->open) (void)zl_safetensors_writer_stream_close(w, false);
    for (int i = 0; i < w->num_entries; i++) free(w->entries[i].name);
    free(w->entries);
    json_decref(w->metadata);
    free(w);
}

static zl_status add_entry(zl_safetensors_writer *w, const char *name, zl_dtype dtype, int ndim,
                           const int64_t *shape, const void *data, bool declared);

zl_status zl_safetensors_writer_add(zl_safetensors_writer *w, const char *name, zl_dtype dtype,
                                    int ndim, const int64_t *shape, const void *data)
{
    return add_entry(w, name, dtype, ndim, shape, data, false);
}

zl_status zl_safetensors_writer_declare(zl_safetensors_writer *w, const char *name, zl_dtype dtype,
                                        int ndim, const int64_t *shape)
{
    return add_entry(w, name, dtype, ndim, shape, NULL, true);
}

static zl_status add_entry(zl_safetensors_writer *w, const char *name, zl_dtype dtype, int ndim,
                           const int64_t *shape, const void *data, bool declared)
{
    if (!name || !*name || !strcmp(name, "__metadata__"))
        return zl_errorf(ZL_ERR_INVALID, "safetensors: invalid tensor name '%s' (empty, or the "
                         "reserved \"__metadata__\")", name ? name : "(null)");
    if ((unsigned)dtype >= ZL_DTYPE_COUNT)
        return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' has an invalid dtype %d",
                         name, (int)dtype);
    if (ndim < 0 || ndim > ZL_SAFETENSORS_MAX_DIMS)
        return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' has %d dimensions "
                         "(0 to %d supported)", name, ndim, ZL_SAFETENSORS_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0)
            return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' has a negative "
                             "dimension %lld", name, (long long)shape[d]);
    for (int i = 0; i < w->num_entries; i++)
        if (!strcmp(w->entries[i].name, name))
            return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' added twice", name);
    size_t numel, nbytes;
    if (!shape_nbytes(ndim, shape, zl_dtype_nbytes(dtype), &numel, &nbytes))
        return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' is too large", name);
    if (nbytes && !data && !declared)
        return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' has no data", name);

    if (w->num_entries == w->cap_entries) {
        int cap = w->cap_entries ? 2 * w->cap_entries : 16;
        writer_entry *e = realloc(w->entries, (size_t)cap * sizeof *e);
        if (!e) return zl_errorf(ZL_ERR_NOMEM, "out of host memory adding tensor '%s'", name);
        w->entries = e;
        w->cap_entries = cap;
    }
    writer_entry *e = &w->entries[w->num_entries];
    memset(e, 0, sizeof *e);
    if (!(e->name = dup_str(name)))
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory adding tensor '%s'", name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->nbytes = nbytes;
    e->data = data;
    w->num_entries++;
    return ZL_OK;
}

zl_status zl_safetensors_writer_set_metadata(zl_safetensors_writer *w, const char *key,
                                             const char *value)
{
    json_t *v = json_string(value);
    if (!v || json_object_set_new(w->metadata, key, v) != 0)
        return zl_errorf(ZL_ERR_INVALID, "safetensors: cannot set metadata '%s' (not UTF-8?)", key);
    return ZL_OK;
}

/* Layout order: larger elements first, so that every offset is a multiple of its own
 * element size (all sizes are powers of two); ties keep the order of addition. */
static int *layout_order(const zl_safetensors_writer *w)
{
    int *order = malloc(((size_t)w->num_entries + 1) * sizeof *order);
    if (!order) return NULL;
    int k = 0;
    for (size_t elem = 8; elem >= 1; elem /= 2)
        for (int i = 0; i < w->num_entries; i++)
            if (zl_dtype_nbytes(w->entries[i].dtype) == elem) order[k++] = i;
    return order;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes; *len is its length. */
static char *build_header(const zl_safetensors_writer *w, const int *order, size_t *len)
{
    json_t *root = json_object();
    if (!root) return NULL;
    bool ok = true;
    if (json_object_size(w->metadata) > 0)
        ok = json_object_set(root, "__metadata__", w->metadata) == 0;
    size_t offset = 0;
    for (int k = 0; ok && k < w->num_entries; k++) {
        const writer_entry *e = &w->entries[order[k]];
        json_t *shape = json_array();
        for (int d = 0; shape && d < e->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)e->shape[d]));
        json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", zl_safetensors_dtype_name(e->dtype),
                              "shape", shape, "data_offsets", (json_int_t)offset,
                              (json_int_t)(offset + e->nbytes));
        ok = t && json_object_set_new(root, e->name, t) == 0;
        offset += e->nbytes;
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *h = realloc(text, padded + 1);
    if (!h) {
        free(text);
        return NULL;
    }
    memset(h + n, ' ', padded - n);
    h[padded] = '\0';
    *len = padded;
    return h;
}

zl_status zl_safetensors_writer_write(zl_safetensors_writer *w, const char *path)
{
    int *order = layout_order(w);
    size_t header_len = 0;
    char *header = order ? build_header(w, order, &header_len) : NULL;
    zl_file_piece *pieces = malloc(((size_t)w->num_entries + 2) * sizeof *pieces);
    zl_status st;
    unsigned char len8[8];
    if (!header || !pieces) {
        st = zl_errorf(ZL_ERR_NOMEM, "out of host memory writing safetensors file '%s'", path);
    } else {
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
        pieces[0] = (zl_file_piece){len8, 8};
        pieces[1] = (zl_file_piece){header, header_len};
        for (int k = 0; k < w->num_entries; k++) {
            const writer_entry *e = &w->entries[order[k]];
            pieces[2 + k] = (zl_file_piece){e->data, e->nbytes};
        }
        st = zl_file_write_atomic(path, pieces, w->num_entries + 2, "safetensors file");
    }
    free(pieces);
    free(order);
    free(header);
    return st;
}

/* ---- streaming ---------------------------------------------------------------------- */

zl_status zl_safetensors_writer_stream_open(zl_safetensors_writer *w, const char *path)
{
    size_t header_len = 0;
    w->order = layout_order(w);
    char *header = w->order ? build_header(w, w->order, &header_len) : NULL;
    if (!header) {
        free(w->order);
        w->order = NULL;
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory writing safetensors file '%s'", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    zl_status st = zl_atomic_file_open(&w->file, path, "safetensors file");
    w->open = st == ZL_OK;
    if (st == ZL_OK) st = zl_atomic_file_write(&w->file, len8, 8);
    if (st == ZL_OK) st = zl_atomic_file_write(&w->file, header, header_len);
    free(header);
    w->next = 0;
    if (st != ZL_OK) (void)zl_safetensors_writer_stream_close(w, false);
    return st;
}

zl_status zl_safetensors_writer_stream_put(zl_safetensors_writer *w, const char *name, const void *data)
{
    if (!w->open || w->next >= w->num_entries)
        return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' put with no tensor due", name);
    const writer_entry *e = &w->entries[w->order[w->next]];
    if (strcmp(e->name, name))
        return zl_errorf(ZL_ERR_INVALID, "safetensors: tensor '%s' put where '%s' is due", name, e->name);
    zl_status st = zl_atomic_file_write(&w->file, data, e->nbytes);
    if (st == ZL_OK) w->next++;
    return st;
}

const char *zl_safetensors_writer_stream_due(const zl_safetensors_writer *w)
{
    return w->open && w->next < w->num_entries ? w->entries[w->order[w->next]].name : NULL;
}

zl_status zl_safetensors_writer_stream_close(zl_safetensors_writer *w, bool commit)
{
    zl_status st = ZL_OK;
    if (commit && w->next != w->num_entries)
        st = zl_errorf(ZL_ERR_INVALID, "safetensors: '%s' closed with %d of %d tensors written",
                       w->file.path, w->next, w->num_entries);
    zl_status cs = zl_atomic_file_close(&w->file, commit && st == ZL_OK);
    w->open = false;
    free(w->order);
    w->order = NULL;
    return st != ZL_OK ? st : cs;
}

/* ==== reader ========================================================================= */

struct zl_safetensors {
    char *path;
    void *map;
    size_t map_nbytes;
    const unsigned char *data; /* the data section */
    size_t data_nbytes;
    zl_safetensors_tensor *tensors; /* sorted by offset */
    int num_tensors;
    char **meta_keys, **meta_values;
    int num_metadata;
};

const char *zl_safetensors_path(const zl_safetensors *st) { return st->path; }
int zl_safetensors_num_tensors(const zl_safetensors *st) { return st->num_tensors; }
int zl_safetensors_num_metadata(const zl_safetensors *st) { return st->num_metadata; }

const zl_safetensors_tensor *zl_safetensors_tensor_at(const zl_safetensors *st, int i)
{
    return i >= 0 && i < st->num_tensors ? &st->tensors[i] : NULL;
}

const zl_safetensors_tensor *zl_safetensors_find(const zl_safetensors *st, const char *name)
{
    for (int i = 0; i < st->num_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char *zl_safetensors_metadata(const zl_safetensors *st, const char *key)
{
    for (int i = 0; i < st->num_metadata; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

const char *zl_safetensors_metadata_key(const zl_safetensors *st, int i)
{
    return i >= 0 && i < st->num_metadata ? st->meta_keys[i] : NULL;
}

void zl_safetensors_close(zl_safetensors *st)
{
    if (!st) return;
    if (st->map) munmap(st->map, st->map_nbytes);
    for (int i = 0; i < st->num_tensors; i++) free((char *)st->tensors[i].name);
    for (int i = 0; i < st->num_metadata; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
    free(st);
}

#define FORMAT_ERR(st, ...) zl_error_wrap(zl_errorf(ZL_ERR_FORMAT, __VA_ARGS__), \
                                          "safetensors file '%s': ", (st)->path)

/* A JSON value that must be a non-negative integer. */
static bool get_size(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry into *t. */
static zl_status parse_tensor(zl_safetensors *st, const char *name, const json_t *v,
                              zl_safetensors_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (!json_is_object(v))
        return FORMAT_ERR(st, "tensor '%s': entry is not an object with dtype, shape and "
                          "data_offsets", name);
    const json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
    const json_t *offsets = json_object_get(v, "data_offsets");
    if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets))
        return FORMAT_ERR(st, "tensor '%s': needs \"dtype\" (a string), \"shape\" and "
                          "\"data_offsets\" (arrays)", name);
    const char *dt = json_string_value(dtype);
    size_t k;
    for (k = 0; k < NUM_DTYPES; k++)
        if (!strcmp(dt, dtype_table[k].name)) break;
    if (k == NUM_DTYPES)
        return FORMAT_ERR(st, "tensor '%s': unknown dtype '%s' (safetensors dtypes: BOOL, U8, "
                          "I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, "
                          "U64)", name, dt);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt);
    t->zl_type = dtype_table[k].zl_type;
    t->elem_nbytes = dtype_table[k].nbytes;

    size_t ndim = json_array_size(shape);
    if (ndim > ZL_SAFETENSORS_MAX_DIMS)
        return FORMAT_ERR(st, "tensor '%s': %zu dimensions (at most %d supported)", name, ndim,
                          ZL_SAFETENSORS_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t d = 0; d < ndim; d++)
        if (!get_size(json_array_get(shape, d), &t->shape[d]))
            return FORMAT_ERR(st, "tensor '%s': shape entry %zu is not a non-negative integer",
                              name, d);

    int64_t begin, end;
    if (json_array_size(offsets) != 2 || !get_size(json_array_get(offsets, 0), &begin) ||
        !get_size(json_array_get(offsets, 1), &end))
        return FORMAT_ERR(st, "tensor '%s': data_offsets must be two non-negative integers "
                          "[begin, end]", name);
    if (end < begin)
        return FORMAT_ERR(st, "tensor '%s': data_offsets [%lld, %lld] end before they begin",
                          name, (long long)begin, (long long)end);
    if ((uint64_t)end > st->data_nbytes)
        return FORMAT_ERR(st, "tensor '%s': data_offsets [%lld, %lld] reach past the end of the "
                          "data section (%zu bytes; is the file truncated?)", name,
                          (long long)begin, (long long)end, st->data_nbytes);
    char sbuf[160];
    if (!shape_nbytes(t->ndim, t->shape, t->elem_nbytes, &t->numel, &t->nbytes) ||
        t->nbytes != (size_t)(end - begin))
        return FORMAT_ERR(st, "tensor '%s': shape %s of %s needs %zu bytes, but data_offsets "
                          "[%lld, %lld] hold %lld", name,
                          shape_str(sbuf, sizeof sbuf, t->ndim, t->shape), dt, t->nbytes,
                          (long long)begin, (long long)end, (long long)(end - begin));
    t->offset = (size_t)begin;
    t->data = st->data + begin;
    if (!(t->name = dup_str(name))) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    return ZL_OK;
}

static zl_status parse_metadata(zl_safetensors *st, const json_t *meta)
{
    if (!json_is_object(meta))
        return FORMAT_ERR(st, "\"__metadata__\" is not an object of strings");
    size_t n = json_object_size(meta);
    st->meta_keys = calloc(n + 1, sizeof *st->meta_keys);
    st->meta_values = calloc(n + 1, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)meta, key, v) {
        if (!json_is_string(v))
            return FORMAT_ERR(st, "\"__metadata__\" entry '%s' is not a string (the format "
                              "allows strings only)", key);
        st->meta_keys[st->num_metadata] = dup_str(key);
        st->meta_values[st->num_metadata] = dup_str(json_string_value(v));
        if (!st->meta_keys[st->num_metadata] || !st->meta_values[st->num_metadata])
            return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        st->num_metadata++;
    }
    return ZL_OK;
}

static int by_offset(const void *a, const void *b)
{
    const zl_safetensors_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    /* empty tensors first at a shared offset: they overlap nothing */
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* The tensors, sorted by offset, must tile [0, data_nbytes) exactly. */
static zl_status check_tiling(zl_safetensors *st)
{
    size_t pos = 0;
    const zl_safetensors_tensor *prev = NULL;
    for (int i = 0; i < st->num_tensors; i++) {
        const zl_safetensors_tensor *t = &st->tensors[i];
        if (t->offset < pos)
            return FORMAT_ERR(st, "tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap",
                              prev->name, prev->offset, prev->offset + prev->nbytes, t->name,
                              t->offset, t->offset + t->nbytes);
        if (t->offset > pos)
            return FORMAT_ERR(st, "bytes [%zu, %zu) of the data section belong to no tensor "
                              "(a gap before '%s')", pos, t->offset, t->name);
        if (t->nbytes) {
            pos = t->offset + t->nbytes;
            prev = t;
        }
    }
    if (pos != st->data_nbytes)
        return FORMAT_ERR(st, "bytes [%zu, %zu) at the end of the data section belong to no "
                          "tensor", pos, st->data_nbytes);
    return ZL_OK;
}

static zl_status parse_header(zl_safetensors *st, const char *text, size_t len)
{
    json_error_t jerr;
    /* Duplicate names would make lookups ambiguous: reject them, as the reference does. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return FORMAT_ERR(st, "header is not valid JSON: %s (header line %d, column %d)",
                          jerr.text, jerr.line, jerr.column);
    zl_status s = ZL_OK;
    if (!json_is_object(root)) {
        s = FORMAT_ERR(st, "header is not a JSON object");
        goto out;
    }
    size_t n = json_object_size(root);
    st->tensors = calloc(n + 1, sizeof *st->tensors);
    if (!st->tensors) {
        s = zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) s = parse_metadata(st, v);
        else if ((s = parse_tensor(st, key, v, &st->tensors[st->num_tensors])) == ZL_OK)
            st->num_tensors++;
        if (s != ZL_OK) goto out;
    }
    qsort(st->tensors, (size_t)st->num_tensors, sizeof *st->tensors, by_offset);
    s = check_tiling(st);
out:
    json_decref(root);
    return s;
}

zl_status zl_safetensors_open(zl_safetensors **out, const char *path)
{
    *out = NULL;
    zl_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = dup_str(path))) {
        free(st);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory opening '%s'", path);
    }
    zl_status s = ZL_OK;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        s = zl_errorf(ZL_ERR_IO, "cannot open safetensors file '%s': %s", path, strerror(errno));
        goto fail;
    }
    size_t file_nbytes = (size_t)sb.st_size;
    if (file_nbytes < 8) {
        s = FORMAT_ERR(st, "file is %zu bytes, shorter than the 8-byte header length "
                       "(truncated, or not a safetensors file)", file_nbytes);
        goto fail;
    }
    st->map = mmap(NULL, file_nbytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        s = zl_errorf(ZL_ERR_IO, "cannot map safetensors file '%s': %s", path, strerror(errno));
        goto fail;
    }
    st->map_nbytes = file_nbytes;
    close(fd);
    fd = -1;

    const unsigned char *bytes = st->map;
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++) header_len |= (uint64_t)bytes[i] << (8 * i);
    if (header_len > ZL_SAFETENSORS_MAX_HEADER_NBYTES) {
        s = FORMAT_ERR(st, "header length %llu is over the format's limit of %u bytes (not a "
                       "safetensors file?)", (unsigned long long)header_len,
                       ZL_SAFETENSORS_MAX_HEADER_NBYTES);
        goto fail;
    }
    if (header_len > file_nbytes - 8) {
        s = FORMAT_ERR(st, "header length %llu is larger than the %zu bytes that follow it "
                       "(truncated, or not a safetensors file)", (unsigned long long)header_len,
                       file_nbytes - 8);
        goto fail;
    }
    if (header_len == 0 || bytes[8] != '{') {
        s = FORMAT_ERR(st, "header does not start with '{' (not a safetensors file?)");
        goto fail;
    }
    st->data = bytes + 8 + header_len;
    st->data_nbytes = file_nbytes - 8 - (size_t)header_len;
    if ((s = parse_header(st, (const char *)bytes + 8, (size_t)header_len)) != ZL_OK) goto fail;
    *out = st;
    return ZL_OK;
fail:
    if (fd >= 0) close(fd);
    zl_safetensors_close(st);
    return s;
}

static bool is_float(zl_dtype t) { return t == ZL_F32 || t == ZL_F16 || t == ZL_BF16; }

zl_status zl_safetensors_read(const zl_safetensors *st, const char *name, zl_dtype dtype,
                              void *dst, size_t numel)
{
    const zl_safetensors_tensor *t = zl_safetensors_find(st, name);
    if (!t)
        return zl_errorf(ZL_ERR_NOT_FOUND, "safetensors file '%s' has no tensor '%s'", st->path,
                         name);
    char sbuf[160];
    if (t->numel != numel)
        return FORMAT_ERR(st, "tensor '%s' has shape %s (%zu elements), expected %zu elements",
                          name, shape_str(sbuf, sizeof sbuf, t->ndim, t->shape), t->numel, numel);
    if (t->zl_type == dtype) {
        if (t->nbytes) memcpy(dst, t->data, t->nbytes);
        return ZL_OK;
    }
    if (!is_float(t->zl_type) || !is_float(dtype))
        return FORMAT_ERR(st, "tensor '%s' is %s, which cannot be read as %s", name, t->dtype,
                          zl_dtype_name(dtype));
    /* Convert through an aligned bounce buffer: t->data may be unaligned in files written
     * by other tools. */
    float buf[1024];
    size_t chunk = sizeof buf / t->elem_nbytes, out_elem = zl_dtype_nbytes(dtype);
    for (size_t i = 0; i < numel; i += chunk) {
        size_t n = numel - i < chunk ? numel - i : chunk;
        memcpy(buf, (const char *)t->data + i * t->elem_nbytes, n * t->elem_nbytes);
        zl_convert((char *)dst + i * out_elem, dtype, buf, t->zl_type, n);
    }
    return ZL_OK;
}
