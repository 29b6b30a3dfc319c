/* llm.c's GPT-2 model file: header checks, and the walk that maps llm.c's tensor order
 * onto zerolab's parameter table (llmc.h has the format). */
#include "ckpt/llmc.h"

#include "ckpt/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/checked.h"
#include "base/dtype.h"
#include "base/log.h"
#include "model/gpt_config.h"

/* The file is little-endian; so are the hosts zerolab builds for. A big-endian port would
 * swap bytes in read_values/write_values. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "src/ckpt/llmc.c assumes a little-endian host"
#endif

#define HEADER_NBYTES ((size_t)ZL_LLMC_HEADER_INTS * sizeof(int32_t))
/* Elements converted per write/read call: bounds the buffer, whatever the model. */
#define CHUNK_NUMEL ((size_t)1 << 16)

/* llm.c's 16 parameter tensors, in file order, as zerolab names them: "wte.weight", or
 * "h.<b>.<suffix>" for the per-layer ones (L of them back to back in the file). */
static const struct {
    const char *name;
    bool per_layer;
} llmc_tensors[] = {
    {"wte.weight", false},         {"wpe.weight", false},
    {"ln_1.weight", true},         {"ln_1.bias", true},
    {"attn.c_attn.weight", true},  {"attn.c_attn.bias", true},
    {"attn.c_proj.weight", true},  {"attn.c_proj.bias", true},
    {"ln_2.weight", true},         {"ln_2.bias", true},
    {"mlp.c_fc.weight", true},     {"mlp.c_fc.bias", true},
    {"mlp.c_proj.weight", true},   {"mlp.c_proj.bias", true},
    {"ln_f.weight", false},        {"ln_f.bias", false},
};
#define NUM_LLMC_TENSORS (sizeof llmc_tensors / sizeof *llmc_tensors)

/* The shape llm.c gives tensor `t` (per layer), in the model's dimensions: what zerolab's
 * table must also say, since neither side transposes (both are torch.nn.Linear's
 * (out, in)). wte is (V, C) here: the padding rows are not zerolab's. */
static void llmc_shape(size_t t, const zl_gpt_config *c, int64_t *d0, int64_t *d1)
{
    int64_t C = c->channels;
    static const int64_t rows_in_c[] = {0, 0, 1, 1, 3, 3, 1, 1, 1, 1, 4, 4, 1, 1, 1, 1};
    *d0 = rows_in_c[t] * C;
    *d1 = 0;
    if (t == 0) *d0 = c->vocab_size, *d1 = C;
    if (t == 1) *d0 = c->max_seq_len, *d1 = C;
    if (t == 4 || t == 6 || t == 10) *d1 = C;
    if (t == 12) *d1 = 4 * C;
}

/* The parameter that llm.c's tensor t of block b (b ignored for global tensors) is in
 * the model's table. */
static const zl_param_info *find_tensor(const zl_model *m, size_t t, const zl_layer *block)
{
    const zl_param_info *p = NULL;
    if (!llmc_tensors[t].per_layer) {
        int i = zl_model_find_param(m, llmc_tensors[t].name);
        p = i >= 0 ? &m->params[i] : NULL;
    } else {
        char prefix[32];
        int n = snprintf(prefix, sizeof prefix, "h.%d.", block->block);
        for (int i = block->first_param; !p && i < block->first_param + block->num_params; i++)
            if (!strncmp(m->params[i].name, prefix, (size_t)n) &&
                !strcmp(m->params[i].name + n, llmc_tensors[t].name))
                p = &m->params[i];
    }
    int64_t d0, d1;
    llmc_shape(t, &m->cfg, &d0, &d1);
    ZL_ASSERT(p && p->shape[0] == d0 && (p->ndim == 1 ? d1 == 0 : p->shape[1] == d1));
    return p;
}

/* One stretch of the file: `numel` values at `offset` of the flat vector, or padding
 * (offset == PADDING) that is zero in the file and absent from the model. */
#define PADDING SIZE_MAX
typedef zl_status (*segment_fn)(void *ctx, size_t offset, size_t numel);

/* Call fn on every stretch of the file after the header, in file order. */
static zl_status walk_file_order(const zl_model *m, int padded_vocab, segment_fn fn, void *ctx)
{
    size_t covered = 0;
    zl_status st = ZL_OK;
    for (size_t t = 0; st == ZL_OK && t < NUM_LLMC_TENSORS; t++) {
        if (!llmc_tensors[t].per_layer) {
            const zl_param_info *p = find_tensor(m, t, NULL);
            st = fn(ctx, p->offset, p->numel);
            covered += p->numel;
            if (st == ZL_OK && t == 0 && padded_vocab > m->cfg.vocab_size)
                st = fn(ctx, PADDING,
                        (size_t)(padded_vocab - m->cfg.vocab_size) * (size_t)m->cfg.channels);
            continue;
        }
        int b = 0;
        for (int l = 0; st == ZL_OK && l < m->num_layers; l++) {
            if (m->layers[l].kind != ZL_LAYER_BLOCK) continue;
            ZL_ASSERT(m->layers[l].block == b++); /* blocks in order: llm.c's layer order */
            const zl_param_info *p = find_tensor(m, t, &m->layers[l]);
            st = fn(ctx, p->offset, p->numel);
            covered += p->numel;
        }
        ZL_ASSERT(st != ZL_OK || b == m->cfg.num_layers);
    }
    ZL_ASSERT(st != ZL_OK || covered == m->params_numel); /* every parameter, once */
    return st;
}

int zl_llmc_padded_vocab(int vocab_size)
{
    return (int)(((int64_t)vocab_size + 127) / 128 * 128);
}

zl_llmc_header zl_llmc_header_for(const zl_gpt_config *cfg, int version)
{
    zl_llmc_header h;
    memset(&h, 0, sizeof h);
    h.version = version;
    h.cfg = *cfg;
    h.padded_vocab = zl_llmc_padded_vocab(cfg->vocab_size);
    return h;
}

static size_t elem_nbytes(int version) { return version == ZL_LLMC_VERSION_BF16 ? 2 : 4; }

/* Bytes of the whole file, or SIZE_MAX if they pass 64 bits. cfg is valid (so the
 * model's own count fits), Vp >= V. */
static size_t file_nbytes(const zl_gpt_config *cfg, int padded_vocab, int version)
{
    size_t pad = zl_sat_mul((size_t)(padded_vocab - cfg->vocab_size), (size_t)cfg->channels);
    size_t numel = zl_sat_add(zl_gpt_config_num_params(cfg), pad);
    return zl_sat_add(HEADER_NBYTES, zl_sat_mul(numel, elem_nbytes(version)));
}

/* ==== reader ========================================================================= */

typedef struct read_ctx {
    const char *path;
    int fd;
    int version;
    float *flat;
    void *buf; /* CHUNK_NUMEL elements of the file's type */
    size_t padding_nonzero;
} read_ctx;

static zl_status read_bytes(read_ctx *r, void *dst, size_t n)
{
    char *p = dst;
    while (n > 0) {
        ssize_t k = read(r->fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0)
            return zl_errorf(ZL_ERR_IO, "cannot read llm.c model file '%s': %s", r->path,
                             strerror(errno));
        if (k == 0) /* its size was checked: it shrank while we read it */
            return zl_errorf(ZL_ERR_IO, "llm.c model file '%s' ended early while being read "
                             "(was it being written?)", r->path);
        p += k;
        n -= (size_t)k;
    }
    return ZL_OK;
}

/* Read the next `numel` values of the file into flat[offset...], widened to f32; or, for
 * padding, count the ones that are not zero. */
static zl_status read_segment(void *ctx, size_t offset, size_t numel)
{
    read_ctx *r = ctx;
    size_t esize = elem_nbytes(r->version);
    if (offset != PADDING && r->version == ZL_LLMC_VERSION_F32)
        return read_bytes(r, r->flat + offset, numel * sizeof(float)); /* bits as they are */
    for (size_t done = 0; done < numel;) {
        size_t n = numel - done < CHUNK_NUMEL ? numel - done : CHUNK_NUMEL;
        zl_status st = read_bytes(r, r->buf, n * esize);
        if (st != ZL_OK) return st;
        for (size_t i = 0; i < n; i++) {
            uint32_t bits;
            if (esize == 2) bits = (uint32_t)((const uint16_t *)r->buf)[i] << 16;
            else memcpy(&bits, (const char *)r->buf + 4 * i, 4);
            if (offset == PADDING) r->padding_nonzero += bits != 0; /* -0.0 too: not written back */
            else memcpy(r->flat + offset + done + i, &bits, 4); /* bf16 -> f32: exact */
        }
        done += n;
    }
    return ZL_OK;
}

#define HDR_ERR(...) zl_errorf(ZL_ERR_FORMAT, __VA_ARGS__)
#define HINT_LLMC "\n  hint: zerolab reads the GPT-2 model files that llm.c's train_gpt2.py " \
                  "(write_model) and train_gpt2.cu write, e.g. gpt2_124M.bin"

/* What llm.c's other binary files are, by their magic, for the message that refuses one. */
static const char *other_llmc_file(int32_t magic)
{
    switch (magic) {
    case 20240327: return " (it is llm.c's debug state file, test_gpt2's input)";
    case 20240328: return " (it is llm.c's tokenizer file)";
    case 20240527: return " (it is llm.c's training state file: optimizer and data loader, "
                          "not the weights)";
    default: return "";
    }
}

/* Check the header of `path` (file_size bytes) and fill *h. */
static zl_status parse_header(const char *path, const int32_t *hd, long long file_size,
                              zl_llmc_header *h)
{
    static const char *const field[8] = {"magic",      "version", "max_seq_len (maxT)",
                                         "vocab_size (V)", "num_layers (L)", "num_heads (NH)",
                                         "channels (C)", "padded_vocab_size (Vp)"};
    if (hd[0] != ZL_LLMC_MAGIC)
        return HDR_ERR("llm.c model file '%s': header[0] (%s) is %d, expected %d: not an llm.c "
                       "GPT-2 model file%s" HINT_LLMC, path, field[0], hd[0], ZL_LLMC_MAGIC,
                       other_llmc_file(hd[0]));
    if (hd[1] != ZL_LLMC_VERSION_F32 && hd[1] != ZL_LLMC_VERSION_BF16)
        return HDR_ERR("llm.c model file '%s': header[1] (%s) is %d; zerolab reads version %d "
                       "(fp32 parameters) and %d (bf16)\n  hint: export it again with llm.c's "
                       "train_gpt2.py, which writes version 3 or 5",
                       path, field[1], hd[1], ZL_LLMC_VERSION_F32, ZL_LLMC_VERSION_BF16);
    for (int i = 2; i < 8; i++)
        if (hd[i] <= 0)
            return HDR_ERR("llm.c model file '%s': header[%d] (%s) is %d; it must be positive"
                           HINT_LLMC, path, i, field[i], hd[i]);
    for (int i = 8; i < ZL_LLMC_HEADER_INTS; i++)
        if (hd[i] != 0)
            return HDR_ERR("llm.c model file '%s': header[%d] is %d; llm.c leaves header[8] to "
                           "header[255] zero, so this file is not one zerolab knows" HINT_LLMC,
                           path, i, hd[i]);
    if (hd[6] % hd[5] != 0)
        return HDR_ERR("llm.c model file '%s': header[6] (%s) = %d is not divisible by "
                       "header[5] (%s) = %d" HINT_LLMC, path, field[6], hd[6], field[5], hd[5]);
    if (hd[7] < hd[3])
        return HDR_ERR("llm.c model file '%s': header[7] (%s) = %d is smaller than header[3] "
                       "(%s) = %d" HINT_LLMC, path, field[7], hd[7], field[3], hd[3]);

    memset(h, 0, sizeof *h);
    h->version = hd[1];
    h->cfg.max_seq_len = hd[2];
    h->cfg.vocab_size = hd[3];
    h->cfg.num_layers = hd[4];
    h->cfg.num_heads = hd[5];
    h->cfg.channels = hd[6];
    h->padded_vocab = hd[7];
    const char *base = strrchr(path, '/');
    snprintf(h->cfg.name, sizeof h->cfg.name, "%s", base ? base + 1 : path);
    if (zl_gpt_config_validate(&h->cfg) != ZL_OK) /* too large for zerolab */
        return zl_error_wrap(ZL_ERR_FORMAT, "llm.c model file '%s': header dimensions: ", path);

    size_t want = file_nbytes(&h->cfg, h->padded_vocab, h->version);
    if (want == SIZE_MAX)
        return HDR_ERR("llm.c model file '%s': the header's dimensions (Vp=%d, C=%d) overflow "
                       "a 64-bit byte count" HINT_LLMC, path, h->padded_vocab, h->cfg.channels);
    if ((unsigned long long)file_size != want)
        return HDR_ERR("llm.c model file '%s' is %lld bytes, but its header (version %d: %s; "
                       "maxT=%d V=%d L=%d NH=%d C=%d Vp=%d) implies %zu bytes: the file is %s"
                       "\n  hint: a %s file is incomplete or not the model the header describes",
                       path, file_size, h->version,
                       h->version == ZL_LLMC_VERSION_BF16 ? "bf16" : "fp32", hd[2], hd[3], hd[4],
                       hd[5], hd[6], hd[7], want,
                       (unsigned long long)file_size < want ? "truncated" : "longer (trailing bytes)",
                       (unsigned long long)file_size < want ? "truncated" : "padded");
    return ZL_OK;
}

zl_status zl_llmc_read(const char *path, zl_llmc_header *h, float **flat)
{
    *flat = NULL;
    read_ctx r = {.path = path, .fd = open(path, O_RDONLY)};
    if (r.fd < 0)
        return zl_errorf(ZL_ERR_IO, "cannot open llm.c model file '%s': %s", path,
                         strerror(errno));
    struct stat sb;
    zl_status st = ZL_OK;
    int32_t hd[ZL_LLMC_HEADER_INTS];
    if (fstat(r.fd, &sb) != 0) {
        st = zl_errorf(ZL_ERR_IO, "cannot stat llm.c model file '%s': %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = zl_errorf(ZL_ERR_IO, "llm.c model file '%s' is not a regular file", path);
    } else if ((size_t)sb.st_size < HEADER_NBYTES) {
        st = HDR_ERR("llm.c model file '%s' is %lld bytes, shorter than its %zu-byte header: "
                     "truncated, or not an llm.c model file" HINT_LLMC,
                     path, (long long)sb.st_size, HEADER_NBYTES);
    } else if ((st = read_bytes(&r, hd, HEADER_NBYTES)) == ZL_OK) {
        st = parse_header(path, hd, (long long)sb.st_size, h);
    }

    zl_model m;
    bool have_model = false;
    if (st == ZL_OK) {
        /* the table only: no device, no memory for values */
        if ((st = zl_model_create(&m, &h->cfg, NULL)) != ZL_OK)
            st = zl_error_wrap(ZL_ERR_FORMAT, "llm.c model file '%s': ", path);
        else
            have_model = true;
    }
    if (st == ZL_OK) {
        r.version = h->version;
        r.flat = malloc(m.params_numel * sizeof(float));
        r.buf = malloc(CHUNK_NUMEL * sizeof(float));
        if (!r.flat || !r.buf)
            st = zl_errorf(ZL_ERR_NOMEM, "out of host memory reading llm.c model file '%s' "
                           "(%zu parameters, %zu bytes as f32)", path, m.params_numel,
                           m.params_numel * sizeof(float));
    }
    if (st == ZL_OK) st = walk_file_order(&m, h->padded_vocab, read_segment, &r);
    if (have_model) zl_model_destroy(&m);
    close(r.fd);
    free(r.buf);
    if (st != ZL_OK) {
        free(r.flat);
        return st;
    }
    h->padding_nonzero = r.padding_nonzero;
    *flat = r.flat;
    return ZL_OK;
}

/* ==== writer ========================================================================= */

typedef struct write_ctx {
    int fd;
    int version;
    const float *flat;
    void *buf;
    int err; /* errno of the first failed write */
} write_ctx;


/* f32 -> bf16 as zl_f32_to_bf16 rounds; a value that is exactly a bf16 keeps its bits
 * (zl_f32_to_bf16 would set the quiet bit of a NaN), so bf16 files round-trip. */
static uint16_t to_bf16(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return (bits & 0xffffu) == 0 ? (uint16_t)(bits >> 16) : zl_f32_to_bf16(x);
}

static zl_status write_segment(void *ctx, size_t offset, size_t numel)
{
    write_ctx *w = ctx;
    size_t esize = elem_nbytes(w->version);
    if (offset != PADDING && w->version == ZL_LLMC_VERSION_F32)
        return zl_file_write_all(w->fd, w->flat + offset, numel * sizeof(float)) ? ZL_OK
                                                                         : (w->err = errno, ZL_ERR_IO);
    if (offset == PADDING) memset(w->buf, 0, CHUNK_NUMEL * esize);
    for (size_t done = 0; done < numel;) {
        size_t n = numel - done < CHUNK_NUMEL ? numel - done : CHUNK_NUMEL;
        if (offset != PADDING) /* bf16 */
            for (size_t i = 0; i < n; i++)
                ((uint16_t *)w->buf)[i] = to_bf16(w->flat[offset + done + i]);
        if (!zl_file_write_all(w->fd, w->buf, n * esize)) {
            w->err = errno;
            return ZL_ERR_IO;
        }
        done += n;
    }
    return ZL_OK;
}

static zl_status check_write_header(const char *path, const zl_llmc_header *h)
{
    if (h->version != ZL_LLMC_VERSION_F32 && h->version != ZL_LLMC_VERSION_BF16)
        return zl_errorf(ZL_ERR_INVALID, "cannot write llm.c model file '%s': version %d; llm.c "
                         "reads version %d (fp32) and %d (bf16)", path, h->version,
                         ZL_LLMC_VERSION_F32, ZL_LLMC_VERSION_BF16);
    if (zl_gpt_config_validate(&h->cfg) != ZL_OK)
        return zl_error_wrap(ZL_ERR_INVALID, "cannot write llm.c model file '%s': ", path);
    if (h->padded_vocab < h->cfg.vocab_size)
        return zl_errorf(ZL_ERR_INVALID, "cannot write llm.c model file '%s': padded vocabulary "
                         "%d is smaller than the vocabulary %d\n  hint: llm.c pads to a multiple "
                         "of 128 (zl_llmc_padded_vocab)", path, h->padded_vocab,
                         h->cfg.vocab_size);
    if (file_nbytes(&h->cfg, h->padded_vocab, h->version) == SIZE_MAX)
        return zl_errorf(ZL_ERR_INVALID, "cannot write llm.c model file '%s': padded vocabulary "
                         "%d x channels %d overflows", path, h->padded_vocab, h->cfg.channels);
    return ZL_OK;
}

zl_status zl_llmc_write(const char *path, const zl_llmc_header *h, const float *flat)
{
    ZL_ASSERT(flat);
    zl_status st = check_write_header(path, h);
    if (st != ZL_OK) return st;
    zl_model m;
    if ((st = zl_model_create(&m, &h->cfg, NULL)) != ZL_OK)
        return zl_error_wrap(ZL_ERR_INVALID, "cannot write llm.c model file '%s': ", path);

    int32_t hd[ZL_LLMC_HEADER_INTS] = {ZL_LLMC_MAGIC,          h->version,
                                       h->cfg.max_seq_len,     h->cfg.vocab_size,
                                       h->cfg.num_layers,      h->cfg.num_heads,
                                       h->cfg.channels,        h->padded_vocab};
    write_ctx w = {.fd = -1, .version = h->version, .flat = flat,
                   .buf = malloc(CHUNK_NUMEL * sizeof(float))};
    zl_atomic_file f;
    if (!w.buf) {
        zl_model_destroy(&m);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory writing llm.c model file '%s'", path);
    }
    st = zl_atomic_file_open(&f, path, "llm.c model file");
    if (st == ZL_OK) {
        w.fd = f.fd;
        st = zl_atomic_file_write(&f, hd, sizeof hd);
        if (st == ZL_OK && walk_file_order(&m, h->padded_vocab, write_segment, &w) != ZL_OK)
            st = zl_errorf(ZL_ERR_IO, "cannot write llm.c model file '%s' (write of '%s' failed: "
                           "%s)", path, f.tmp, strerror(w.err));
        zl_status cs = zl_atomic_file_close(&f, st == ZL_OK);
        if (st == ZL_OK) st = cs;
    }
    free(w.buf);
    zl_model_destroy(&m);
    return st;
}
