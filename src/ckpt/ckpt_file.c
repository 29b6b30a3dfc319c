/* One checkpoint file: a safetensors file and the JSON that describes it (ckpt_file.h). */
#include "ckpt/ckpt_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <xxhash.h>

#include "base/log.h"
#include "ckpt/atomic_file.h"
#include "ckpt/safetensors.h"
#include "zl_build.h" /* PACKAGE_VERSION */

uint64_t zl_ckpt_hash(const void *data, size_t n) { return XXH3_64bits(data, n); }

void zl_ckpt_hash_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016" PRIx64, h); }

/* ---- JSON helpers ---------------------------------------------------------------------- */

zl_status zl_ckpt_json_int(const json_t *obj, const char *key, const char *path, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"%s\" is %s, expected an integer",
                         path, key, v ? "not an integer" : "missing");
    *out = (int64_t)json_integer_value(v);
    return ZL_OK;
}

zl_status zl_ckpt_json_real(const json_t *obj, const char *key, const char *path, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"%s\" is %s, expected a number",
                         path, key, v ? "not a number" : "missing");
    *out = json_number_value(v);
    return ZL_OK;
}

zl_status zl_ckpt_json_string(const json_t *obj, const char *key, const char *path,
                              const char **out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': \"%s\" is %s, expected a string",
                         path, key, v ? "not a string" : "missing");
    *out = json_string_value(v);
    return ZL_OK;
}

/* ---- sealed JSON: the file's own checksum as its last member --------------------------
 *
 * A checkpoint's JSON ends with  ,\n "json_xxh3": "<16 hex digits>"\n}\n  where the digits
 * are the XXH3 of every byte before that comma. Any changed, added or removed byte (a
 * flipped bit, an edited number, a truncation) is then caught before the JSON is believed,
 * while the file stays plain JSON that any reader loads. */
static const char SEAL[] = ",\n \"json_xxh3\": \"";

zl_status zl_ckpt_json_write(const char *path, const json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!text) return zl_errorf(ZL_ERR_NOMEM, "out of host memory writing '%s'", path);
    size_t n = strlen(text);
    /* text is "{...\n}": the seal goes before the closing "\n}". */
    ZL_ASSERT(n >= 3 && text[n - 1] == '}' && text[n - 2] == '\n');
    n -= 2;
    char tail[64], hex[17];
    zl_ckpt_hash_hex(zl_ckpt_hash(text, n), hex);
    snprintf(tail, sizeof tail, "%s%s\"\n}\n", SEAL, hex);
    zl_file_piece pieces[2] = {{text, n}, {tail, strlen(tail)}};
    zl_status st = zl_file_write_atomic(path, pieces, 2, "checkpoint state");
    free(text);
    return st;
}

/* Read a sealed JSON file whole and check its seal; then parse it. */
zl_status zl_ckpt_json_load(const char *path, json_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return zl_errorf(errno == ENOENT ? ZL_ERR_NOT_FOUND : ZL_ERR_IO,
                         "cannot open checkpoint file '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= ((size_t)1 << 30)) break; /* a state file is kilobytes: refuse a huge one */
            cap = cap ? 2 * cap : 65536;
            char *b = realloc(buf, cap + 1);
            if (!b) break;
            buf = b;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    bool err = ferror(f) || !buf || len == cap;
    fclose(f);
    if (err) {
        free(buf);
        return zl_errorf(ZL_ERR_IO, "cannot read checkpoint file '%s'", path);
    }
    buf[len] = '\0';
    /* The seal: the last SEAL, then exactly 16 hex digits, a quote, "\n}\n", the end. */
    size_t sl = sizeof SEAL - 1, tail = sl + 16 + 4;
    const char *seal = NULL;
    if (len >= tail && !memcmp(buf + len - tail, SEAL, sl) && !memcmp(buf + len - 4, "\"\n}\n", 4))
        seal = buf + len - tail;
    char hex[17];
    if (seal) zl_ckpt_hash_hex(zl_ckpt_hash(buf, (size_t)(seal - buf)), hex);
    if (!seal || memcmp(seal + sl, hex, 16)) {
        free(buf);
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' is %s\n  hint: the file was "
                         "truncated, corrupted or edited; load another tag", path,
                         seal ? "corrupted: its bytes do not match the checksum it ends with"
                              : "not complete: it does not end with its checksum (json_xxh3)");
    }
    json_error_t jerr;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!json_is_object(v)) {
        json_decref(v);
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' is not a JSON object (line %d: %s)",
                         path, jerr.line, jerr.text);
    }
    *out = v;
    return ZL_OK;
}

/* XXH3 of a safetensors file's first 8 + N bytes (its length word and header): the part
 * the tensors' own checksums do not cover. */
static zl_status header_hash(const char *path, uint64_t *h, size_t *data_start)
{
    FILE *f = fopen(path, "rb");
    if (!f) return zl_errorf(ZL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    unsigned char len8[8];
    uint64_t n = 0;
    bool ok = fread(len8, 1, 8, f) == 8;
    for (int i = 0; ok && i < 8; i++) n |= (uint64_t)len8[i] << (8 * i);
    char *buf = ok && n <= ZL_SAFETENSORS_MAX_HEADER_NBYTES ? malloc(8 + n) : NULL;
    ok = buf && fread(buf + 8, 1, n, f) == n;
    fclose(f);
    if (ok) {
        memcpy(buf, len8, 8);
        *h = zl_ckpt_hash(buf, 8 + n);
        if (data_start) *data_start = 8 + (size_t)n;
    }
    free(buf);
    return ok ? ZL_OK
              : zl_errorf(ZL_ERR_FORMAT, "'%s' is not a complete safetensors file: its header is "
                          "cut short or too large", path);
}

/* ---- writing ---------------------------------------------------------------------------- */

struct zl_ckpt_writer {
    zl_safetensors_writer *st;
    json_t *state;
    json_t *tensors; /* name -> {dtype, shape, data pointer and bytes until the write} */
    struct pending {
        const void *data;
        size_t nbytes;
    } *pending;
    int num, cap;
};

zl_status zl_ckpt_writer_create(zl_ckpt_writer **out)
{
    zl_ckpt_writer *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w || zl_safetensors_writer_create(&w->st) != ZL_OK || !(w->state = json_object()) ||
        !(w->tensors = json_object())) {
        zl_ckpt_writer_destroy(w);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory for a checkpoint writer");
    }
    *out = w;
    return ZL_OK;
}

void zl_ckpt_writer_destroy(zl_ckpt_writer *w)
{
    if (!w) return;
    zl_safetensors_writer_destroy(w->st);
    json_decref(w->state);
    json_decref(w->tensors);
    free(w->pending);
    free(w);
}

json_t *zl_ckpt_writer_state(zl_ckpt_writer *w) { return w->state; }

zl_status zl_ckpt_writer_add(zl_ckpt_writer *w, const char *name, zl_dtype dtype, int ndim,
                             const int64_t *shape, const void *data)
{
    zl_status st = zl_safetensors_writer_add(w->st, name, dtype, ndim, shape, data);
    if (st != ZL_OK) return st;
    if (w->num == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        struct pending *p = realloc(w->pending, (size_t)cap * sizeof *p);
        if (!p) return zl_errorf(ZL_ERR_NOMEM, "out of host memory for a checkpoint writer");
        w->pending = p, w->cap = cap;
    }
    size_t numel = 1;
    json_t *jshape = json_array();
    for (int d = 0; d < ndim; d++) {
        numel *= (size_t)shape[d];
        json_array_append_new(jshape, json_integer(shape[d]));
    }
    w->pending[w->num++] = (struct pending){data, numel * zl_dtype_nbytes(dtype)};
    json_t *t = json_object();
    json_object_set_new(t, "dtype", json_string(zl_safetensors_dtype_name(dtype)));
    json_object_set_new(t, "shape", jshape);
    json_object_set_new(w->tensors, name, t);
    return ZL_OK;
}

zl_status zl_ckpt_writer_write(zl_ckpt_writer *w, const char *dir, const char *base)
{
    size_t len = strlen(dir) + strlen(base) + 32;
    char *path = malloc(len);
    if (!path) return zl_errorf(ZL_ERR_NOMEM, "out of host memory writing a checkpoint");
    /* The checksums, in the order the tensors were added (json objects keep that order). */
    const char *name;
    json_t *t;
    int i = 0;
    json_object_foreach(w->tensors, name, t) {
        char hex[17];
        zl_ckpt_hash_hex(zl_ckpt_hash(w->pending[i].data, w->pending[i].nbytes), hex);
        json_object_set_new(t, "xxh3", json_string(hex));
        i++;
    }
    snprintf(path, len, "%s/%s.safetensors", dir, base);
    zl_status st = zl_safetensors_writer_write(w->st, path);
    struct stat sb;
    if (st == ZL_OK && stat(path, &sb) != 0)
        st = zl_errorf(ZL_ERR_IO, "cannot stat '%s' after writing it: %s", path, strerror(errno));
    if (st == ZL_OK) {
        /* The writer's keys first, so that `head` shows what the file is. */
        json_t *doc = json_object();
        json_t *sf = json_object();
        char file[strlen(base) + 16];
        snprintf(file, sizeof file, "%s.safetensors", base);
        json_object_set_new(doc, "format", json_string(ZL_CKPT_FORMAT));
        json_object_set_new(doc, "format_version", json_integer(ZL_CKPT_FORMAT_VERSION));
        json_object_set_new(doc, "zerolab_version", json_string(PACKAGE_VERSION));
        json_object_set_new(sf, "file", json_string(file));
        json_object_set_new(sf, "nbytes", json_integer((json_int_t)sb.st_size));
        uint64_t hh = 0;
        char hex[17];
        st = header_hash(path, &hh, NULL);
        zl_ckpt_hash_hex(hh, hex);
        json_object_set_new(sf, "header_xxh3", json_string(hex));
        json_object_set_new(doc, "safetensors", sf);
        json_object_set(doc, "tensors", w->tensors);
        json_object_update_missing(doc, w->state);
        snprintf(path, len, "%s/%s.json", dir, base);
        if (st == ZL_OK) st = zl_ckpt_json_write(path, doc);
        json_decref(doc);
    }
    free(path);
    return st;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The safetensors reader validates the header (and maps the file without touching its
 * data); the data are read with pread(2) on a descriptor of our own, in chunks, so that
 * reading a checkpoint costs memory for what the caller asked for and no more (a mapped
 * file's pages would count towards the process's resident memory until unmapped). */
struct zl_ckpt_file {
    char *json_path, *st_path;
    json_t *doc;
    zl_safetensors *st;
    int fd;
    size_t data_start; /* file offset of the data section: 8 + the header's length */
    const json_t *tensors;
    json_t *verified; /* names whose checksum was checked */
};

enum { CHUNK_NBYTES = 8 << 20 }; /* pread and hash 8 MiB at a time */

void zl_ckpt_file_close(zl_ckpt_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->json_path);
    free(f->st_path);
    json_decref(f->doc);
    json_decref(f->verified);
    zl_safetensors_close(f->st);
    free(f);
}

const json_t *zl_ckpt_file_state(const zl_ckpt_file *f) { return f->doc; }
const char *zl_ckpt_file_path(const zl_ckpt_file *f) { return f->json_path; }

/* The JSON says what the safetensors file must hold: check that it does, tensor by
 * tensor, both ways. */
static zl_status check_pair(zl_ckpt_file *f, const char *st_path)
{
    const char *p = f->json_path;
    const char *name;
    const json_t *t;
    json_object_foreach((json_t *)f->tensors, name, t) {
        const zl_safetensors_tensor *x = zl_safetensors_find(f->st, name);
        if (!x)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' lists tensor \"%s\", which '%s' "
                             "does not hold", p, name, st_path);
        const json_t *dt = json_object_get(t, "dtype"), *shape = json_object_get(t, "shape");
        const json_t *hash = json_object_get(t, "xxh3");
        if (!json_is_string(dt) || !json_is_array(shape) || !json_is_string(hash) ||
            strlen(json_string_value(hash)) != 16)
            return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': tensor \"%s\" needs \"dtype\", "
                             "\"shape\" and a 16-digit \"xxh3\"", p, name);
        bool same = !strcmp(json_string_value(dt), x->dtype) &&
                    json_array_size(shape) == (size_t)x->ndim;
        for (int d = 0; same && d < x->ndim; d++) {
            const json_t *e = json_array_get(shape, (size_t)d);
            same = json_is_integer(e) && json_integer_value(e) == x->shape[d];
        }
        if (!same)
            return zl_errorf(ZL_ERR_FORMAT, "tensor \"%s\" of '%s' is not the dtype and shape that "
                             "'%s' records", name, st_path, p);
    }
    if ((size_t)zl_safetensors_num_tensors(f->st) != json_object_size(f->tensors))
        return zl_errorf(ZL_ERR_FORMAT, "'%s' holds %d tensors where '%s' lists %zu", st_path,
                         zl_safetensors_num_tensors(f->st), p, json_object_size(f->tensors));
    return ZL_OK;
}

zl_status zl_ckpt_file_open(zl_ckpt_file **out, const char *dir, const char *base)
{
    *out = NULL;
    zl_ckpt_file *f = calloc(1, sizeof *f);
    size_t len = strlen(dir) + strlen(base) + 32;
    if (f) f->fd = -1;
    if (!f || !(f->st_path = malloc(len)) || !(f->json_path = malloc(len)) ||
        !(f->verified = json_object())) {
        zl_ckpt_file_close(f);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory opening a checkpoint file");
    }
    char *st_path = f->st_path;
    snprintf(f->json_path, len, "%s/%s.json", dir, base);
    snprintf(st_path, len, "%s/%s.safetensors", dir, base);
    const char *p = f->json_path, *fmt = NULL, *file = NULL;
    int64_t version = 0, nbytes = 0;
    zl_status st = zl_ckpt_json_load(p, &f->doc);
    if (st == ZL_OK && (st = zl_ckpt_json_string(f->doc, "format", p, &fmt)) == ZL_OK &&
        strcmp(fmt, ZL_CKPT_FORMAT))
        st = zl_errorf(ZL_ERR_FORMAT, "'%s' is not a zerolab checkpoint file (format \"%s\")", p, fmt);
    if (st == ZL_OK && (st = zl_ckpt_json_int(f->doc, "format_version", p, &version)) == ZL_OK &&
        version != ZL_CKPT_FORMAT_VERSION)
        st = zl_errorf(ZL_ERR_FORMAT, "'%s' has checkpoint format version %" PRId64 "; this zerolab "
                       "reads version %d\n  hint: load it with the zerolab version that wrote it",
                       p, version, ZL_CKPT_FORMAT_VERSION);
    const json_t *sf = st == ZL_OK ? json_object_get(f->doc, "safetensors") : NULL;
    f->tensors = st == ZL_OK ? json_object_get(f->doc, "tensors") : NULL;
    if (st == ZL_OK && (!json_is_object(sf) || !json_is_object(f->tensors)))
        st = zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' has no \"safetensors\" or \"tensors\" "
                       "object", p);
    if (st == ZL_OK && (st = zl_ckpt_json_string(sf, "file", p, &file)) == ZL_OK &&
        strcmp(file, strrchr(st_path, '/') + 1))
        st = zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s' describes '%s', not '%s'", p, file, st_path);
    if (st == ZL_OK) st = zl_ckpt_json_int(sf, "nbytes", p, &nbytes);
    struct stat sb;
    if (st == ZL_OK && stat(st_path, &sb) != 0)
        st = zl_errorf(errno == ENOENT ? ZL_ERR_NOT_FOUND : ZL_ERR_IO,
                       "checkpoint file '%s' is missing its tensors '%s': %s", p, st_path,
                       strerror(errno));
    if (st == ZL_OK && sb.st_size != nbytes)
        st = zl_errorf(ZL_ERR_FORMAT, "'%s' is %lld bytes where '%s' records %" PRId64 ": the file "
                       "was truncated or replaced\n  hint: load another tag", st_path,
                       (long long)sb.st_size, p, nbytes);
    const char *want_hh = NULL;
    uint64_t hh = 0;
    char hex[17];
    if (st == ZL_OK) st = zl_ckpt_json_string(sf, "header_xxh3", p, &want_hh);
    if (st == ZL_OK) st = header_hash(st_path, &hh, &f->data_start);
    zl_ckpt_hash_hex(hh, hex);
    if (st == ZL_OK && strcmp(hex, want_hh))
        st = zl_errorf(ZL_ERR_FORMAT, "the header of '%s' is corrupted: it hashes to %s, '%s' "
                       "records %s\n  hint: load another tag", st_path, hex, p, want_hh);
    if (st == ZL_OK) st = zl_safetensors_open(&f->st, st_path);
    if (st == ZL_OK) st = check_pair(f, st_path);
    if (st == ZL_OK && (f->fd = open(st_path, O_RDONLY | O_CLOEXEC)) < 0)
        st = zl_errorf(ZL_ERR_IO, "cannot open '%s': %s", st_path, strerror(errno));
    if (st != ZL_OK) {
        zl_ckpt_file_close(f);
        return st;
    }
    *out = f;
    return ZL_OK;
}

zl_status zl_ckpt_file_tensor(const zl_ckpt_file *f, const char *name, zl_dtype *dtype,
                              int *ndim, int64_t shape[8], size_t *numel)
{
    const zl_safetensors_tensor *x = zl_safetensors_find(f->st, name);
    if (!x)
        return zl_errorf(ZL_ERR_NOT_FOUND, "checkpoint file '%s' has no tensor \"%s\"",
                         f->json_path, name);
    if (dtype) *dtype = x->zl_type;
    if (ndim) *ndim = x->ndim;
    if (shape) memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
    if (numel) *numel = x->numel;
    return ZL_OK;
}

/* nbytes from the data section's offset `off` into dst. */
static zl_status pread_all(const zl_ckpt_file *f, size_t off, void *dst, size_t nbytes)
{
    char *p = dst;
    off += f->data_start;
    while (nbytes > 0) {
        ssize_t k = pread(f->fd, p, nbytes, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return zl_errorf(ZL_ERR_IO, "cannot read '%s' at byte %zu: %s", f->st_path, off,
                             k == 0 ? "the file ends early" : strerror(errno));
        p += k, off += (size_t)k, nbytes -= (size_t)k;
    }
    return ZL_OK;
}

/* Read tensor x's bytes [b, b + nbytes) in chunks: each chunk is hashed into h (when not
 * NULL) and handed to put(ctx, chunk, offset in the range, bytes). Reads in place when
 * direct (the chunk's destination is dst itself), else through one chunk buffer. */
typedef struct range_sink {
    char *dst;          /* the caller's buffer, in its dtype */
    zl_dtype from, to;  /* the file's and the caller's types */
    size_t esz;         /* the file's element size */
} range_sink;

static zl_status read_range(const zl_ckpt_file *f, const zl_safetensors_tensor *x, size_t b,
                            size_t nbytes, XXH3_state_t *h, range_sink *sink)
{
    bool direct = sink && sink->from == sink->to;
    char *buf = direct ? NULL : malloc(nbytes < CHUNK_NBYTES ? (nbytes ? nbytes : 1) : CHUNK_NBYTES);
    if (!direct && !buf) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading '%s'", f->st_path);
    zl_status st = ZL_OK;
    for (size_t done = 0; done < nbytes && st == ZL_OK;) {
        size_t k = nbytes - done < CHUNK_NBYTES ? nbytes - done : CHUNK_NBYTES;
        char *chunk = direct ? sink->dst + done : buf;
        st = pread_all(f, x->offset + b + done, chunk, k);
        if (st != ZL_OK) break;
        if (h) XXH3_64bits_update(h, chunk, k);
        if (sink && !direct)
            zl_convert(sink->dst + done / sink->esz * zl_dtype_nbytes(sink->to), sink->to, chunk,
                       sink->from, k / sink->esz);
        done += k;
    }
    free(buf);
    return st;
}

zl_status zl_ckpt_file_verify(zl_ckpt_file *f, const char *name)
{
    const zl_safetensors_tensor *x = zl_safetensors_find(f->st, name);
    if (!x)
        return zl_errorf(ZL_ERR_NOT_FOUND, "checkpoint file '%s' has no tensor \"%s\"",
                         f->json_path, name);
    /* A read of nothing verifies the whole tensor first (below), and reads nothing more. */
    return zl_ckpt_file_read(f, name, 0, 0, x->zl_type, NULL);
}

zl_status zl_ckpt_file_verify_all(zl_ckpt_file *f)
{
    for (int i = 0; i < zl_safetensors_num_tensors(f->st); i++) {
        zl_status st = zl_ckpt_file_verify(f, zl_safetensors_tensor_at(f->st, i)->name);
        if (st != ZL_OK) return st;
    }
    return ZL_OK;
}

int zl_ckpt_file_num_tensors(const zl_ckpt_file *f) { return zl_safetensors_num_tensors(f->st); }
const char *zl_ckpt_file_tensor_name(const zl_ckpt_file *f, int i)
{
    return zl_safetensors_tensor_at(f->st, i)->name;
}

zl_status zl_ckpt_file_read(zl_ckpt_file *f, const char *name, size_t begin, size_t n,
                            zl_dtype dtype, void *dst)
{
    const zl_safetensors_tensor *x = zl_safetensors_find(f->st, name);
    if (!x)
        return zl_errorf(ZL_ERR_NOT_FOUND, "checkpoint file '%s' has no tensor \"%s\"",
                         f->json_path, name);
    if (begin > x->numel || n > x->numel - begin)
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': elements [%zu, %zu) of tensor \"%s\" "
                         "are past its %zu elements", f->json_path, begin, begin + n, name, x->numel);
    bool is_float = dtype == ZL_F32 || dtype == ZL_F16 || dtype == ZL_BF16;
    bool src_float = x->zl_type == ZL_F32 || x->zl_type == ZL_F16 || x->zl_type == ZL_BF16;
    if (x->zl_type != dtype && !(is_float && src_float))
        return zl_errorf(ZL_ERR_FORMAT, "checkpoint file '%s': tensor \"%s\" is %s, expected %s",
                         f->json_path, name, x->dtype, zl_safetensors_dtype_name(dtype));
    range_sink sink = {dst, x->zl_type, dtype, x->elem_nbytes};
    bool whole = begin == 0 && n == x->numel && n > 0;
    zl_status st = ZL_OK;
    if (!json_object_get(f->verified, name)) {
        /* The checksum covers the whole tensor: verified while reading it when the whole
         * tensor is asked for (the usual case), else in a pass of its own first. */
        XXH3_state_t *h = XXH3_createState();
        if (!h) return zl_errorf(ZL_ERR_NOMEM, "out of host memory reading '%s'", f->st_path);
        XXH3_64bits_reset(h);
        st = read_range(f, x, 0, x->nbytes, h, whole ? &sink : NULL);
        char hex[17];
        zl_ckpt_hash_hex(XXH3_64bits_digest(h), hex);
        XXH3_freeState(h);
        if (st != ZL_OK) return st;
        const char *want = json_string_value(
            json_object_get(json_object_get(f->tensors, name), "xxh3"));
        if (strcmp(hex, want))
            return zl_errorf(ZL_ERR_FORMAT, "tensor \"%s\" of '%s' is corrupted: its bytes hash to "
                             "%s, '%s' records %s\n  hint: load another tag", name, f->st_path,
                             hex, f->json_path, want);
        json_object_set_new(f->verified, name, json_true());
        if (whole) return ZL_OK;
    }
    if (n == 0) return ZL_OK;
    return read_range(f, x, begin * x->elem_nbytes, n * x->elem_nbytes, NULL, &sink);
}
