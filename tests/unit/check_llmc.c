/* llm.c's GPT-2 model files: files written here by hand, as llm.c's train_gpt2.py
 * (write_model) writes them, read into zerolab's parameter table and written back
 * byte for byte; and the malformed files the reader must refuse with a message naming
 * the file and the field. */
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/dtype.h"
#include "base/rng.h"
#include "check_util.h"
#include "ckpt/ckpt_read.h"
#include "ckpt/ckpt_tools.h"
#include "ckpt/llmc.h"
#include "engine/engine.h"
#include "model/gpt_config.h"
#include "run/run.h"

static void make_tmpdir(void) { zl_test_tmpdir_make("llmc"); }
#define tmpdir zl_test_tmpdir()
#define tmp_path zl_test_tmp_path
#define count_files_with zl_test_tmp_count
#define remove_tmpdir zl_test_tmpdir_remove

/* ---- an llm.c file, written independently of zl_llmc_write ------------------------- */

/* The tiny model of these tests, in llm.c's header terms. */
enum { T_MAXT = 16, T_V = 67, T_VP = 128, T_L = 2, T_NH = 2, T_C = 8 };

/* llm.c's 16 tensors and their element counts (train_gpt2.c, fill_in_parameter_sizes). */
enum { WTE, WPE, LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB, LN2W, LN2B, FCW, FCB, FCPROJW,
       FCPROJB, LNFW, LNFB, NUM_TENSORS };

static size_t tensor_numel(int t, int maxT, int Vp, int L, int C)
{
    size_t c = (size_t)C, l = (size_t)L;
    /* the per-layer vectors, in multiples of C (the rest are handled by name below) */
    static const int per_layer_c[] = {[LN1W] = 1, [LN1B] = 1, [QKVB] = 3, [ATTPROJB] = 1,
                                      [LN2W] = 1, [LN2B] = 1, [FCB] = 4, [FCPROJB] = 1};
    switch (t) {
    case WTE: return (size_t)Vp * c;
    case WPE: return (size_t)maxT * c;
    case QKVW: return l * 3 * c * c;
    case ATTPROJW: return l * c * c;
    case FCW: return l * 4 * c * c;
    case FCPROJW: return l * c * 4 * c;
    case LNFW: case LNFB: return c;
    default: return l * (size_t)per_layer_c[t] * c;
    }
}

/* The file's values, as the raw element bits of the file's type (uint32 for fp32, the
 * high half for bf16), tensor by tensor. */
typedef struct llmc_file {
    int version;
    uint32_t *t[NUM_TENSORS];
    size_t n[NUM_TENSORS];
} llmc_file;

/* Random values (the padding rows of wte zero), with a few that must survive exactly:
 * -0.0, infinities, a signalling NaN with a payload, a subnormal. */
static void llmc_fill(llmc_file *f, int version, uint64_t seed)
{
    f->version = version;
    for (int t = 0; t < NUM_TENSORS; t++) {
        f->n[t] = tensor_numel(t, T_MAXT, T_VP, T_L, T_C);
        f->t[t] = calloc(f->n[t], sizeof(uint32_t));
        ck_assert_ptr_nonnull(f->t[t]);
        size_t n = t == WTE ? (size_t)T_V * T_C : f->n[t];
        for (size_t i = 0; i < n; i++) {
            float x = zl_rng_uniform(seed, (uint64_t)t, i) * 2.0f - 1.0f;
            uint32_t bits;
            memcpy(&bits, &x, 4);
            f->t[t][i] = version == ZL_LLMC_VERSION_BF16 ? zl_f32_to_bf16(x) : bits;
        }
    }
    bool bf = version == ZL_LLMC_VERSION_BF16;
    f->t[QKVB][3] = bf ? 0x8000u : 0x80000000u;    /* -0.0 */
    f->t[WPE][5] = bf ? 0x7f80u : 0x7f800000u;     /* +inf */
    f->t[FCW][7] = bf ? 0x7f81u : 0x7f800001u;     /* signalling NaN */
    f->t[LN2B][1] = bf ? 0x0001u : 0x00000001u;    /* smallest subnormal */
}

static void llmc_free(llmc_file *f)
{
    for (int t = 0; t < NUM_TENSORS; t++) free(f->t[t]);
}

static int32_t *llmc_header(int32_t hd[256], int version)
{
    memset(hd, 0, 256 * sizeof *hd);
    hd[0] = 20240326, hd[1] = version, hd[2] = T_MAXT, hd[3] = T_V, hd[4] = T_L;
    hd[5] = T_NH, hd[6] = T_C, hd[7] = T_VP;
    return hd;
}

/* The file as llm.c writes it: header (256 int32), then the 16 tensors in order. */
static const char *llmc_write_file(const char *name, const llmc_file *f, const int32_t *hd)
{
    const char *path = tmp_path(name);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(hd, 4, 256, fp), 256);
    for (int t = 0; t < NUM_TENSORS; t++)
        for (size_t i = 0; i < f->n[t]; i++) {
            if (f->version == ZL_LLMC_VERSION_BF16) {
                uint16_t v = (uint16_t)f->t[t][i];
                ck_assert_uint_eq(fwrite(&v, 2, 1, fp), 1);
            } else {
                ck_assert_uint_eq(fwrite(&f->t[t][i], 4, 1, fp), 1);
            }
        }
    ck_assert_int_eq(fclose(fp), 0);
    return path;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return b;
}

static void assert_same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert_uint_eq(na, nb);
    size_t first = na;
    for (size_t i = 0; i < na && first == na; i++)
        if (x[i] != y[i]) first = i;
    ck_assert_msg(first == na, "'%s' and '%s' differ first at byte %zu", a, b, first);
    free(x);
    free(y);
}

/* ---- round trip ---------------------------------------------------------------------- */

/* In a fresh tmpdir: the test model's file of `version` with values from `seed` (in *f),
 * read by zl_llmc_read into *h and *flat; returns its path. */
static const char *read_test_file(int version, uint64_t seed, llmc_file *f, zl_llmc_header *h,
                                  float **flat)
{
    make_tmpdir();
    llmc_fill(f, version, seed);
    int32_t hd[256];
    const char *in = llmc_write_file("in.bin", f, llmc_header(hd, version));
    *flat = NULL;
    ck_assert_msg(zl_llmc_read(in, h, flat) == ZL_OK, "%s", zl_last_error());
    return in;
}

static void round_trip(int version)
{
    llmc_file f;
    zl_llmc_header h;
    float *flat;
    const char *in = read_test_file(version, 7, &f, &h, &flat);
    ck_assert_int_eq(h.version, version);
    ck_assert_int_eq(h.cfg.vocab_size, T_V);
    ck_assert_int_eq(h.cfg.max_seq_len, T_MAXT);
    ck_assert_int_eq(h.cfg.num_layers, T_L);
    ck_assert_int_eq(h.cfg.num_heads, T_NH);
    ck_assert_int_eq(h.cfg.channels, T_C);
    ck_assert_int_eq(h.padded_vocab, T_VP);
    ck_assert_uint_eq(h.padding_nonzero, 0);
    ck_assert_str_eq(h.cfg.name, "in.bin");

    const char *out = tmp_path("out.bin");
    ck_assert_msg(zl_llmc_write(out, &h, flat) == ZL_OK, "%s", zl_last_error());
    assert_same_bytes(in, out);
    ck_assert_int_eq(count_files_with(".tmp"), 0);
    free(flat);
    llmc_free(&f);
    remove_tmpdir();
}

START_TEST(test_llmc_fp32_read_then_write_is_byte_identical) { round_trip(ZL_LLMC_VERSION_F32); }
END_TEST

START_TEST(test_llmc_bf16_read_then_write_is_byte_identical) { round_trip(ZL_LLMC_VERSION_BF16); }
END_TEST

/* ---- values land at zerolab's names -------------------------------------------------- */

/* Element (i, j) of zerolab parameter `name` (cols j of a 2-D one; j = 0 for 1-D). */
static float at(const zl_model *m, const float *flat, const char *name, int64_t i, int64_t j)
{
    int p = zl_model_find_param(m, name);
    ck_assert_msg(p >= 0, "no parameter '%s'", name);
    const zl_param_info *pi = &m->params[p];
    int64_t cols = pi->ndim == 2 ? pi->shape[1] : 1;
    ck_assert(i < pi->shape[0] && j < cols);
    return flat[pi->offset + (size_t)(i * cols + j)];
}

/* llm.c's element, widened to f32. */
static float want(const llmc_file *f, int t, size_t idx)
{
    uint32_t bits = f->version == ZL_LLMC_VERSION_BF16 ? f->t[t][idx] << 16 : f->t[t][idx];
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static void check_values(int version)
{
    llmc_file f;
    zl_llmc_header h;
    float *flat;
    read_test_file(version, 11, &f, &h, &flat);
    zl_model m;
    ck_assert_int_eq(zl_model_create(&m, &h.cfg, NULL), ZL_OK);
    const size_t C = T_C;
#define EQ(got, t, idx) ck_assert_msg(memcmp(&(float){got}, &(float){want(&f, t, idx)}, 4) == 0, \
                                      "%s: %g, want %g", #got, (double)(got), (double)want(&f, t, idx))
    EQ(at(&m, flat, "wte.weight", 66, 7), WTE, 66 * C + 7);
    EQ(at(&m, flat, "wte.weight", 3, 2), WTE, 3 * C + 2);
    EQ(at(&m, flat, "wpe.weight", 15, 5), WPE, 15 * C + 5);
    EQ(at(&m, flat, "h.0.ln_1.weight", 4, 0), LN1W, 0 * C + 4);
    EQ(at(&m, flat, "h.1.ln_1.bias", 6, 0), LN1B, 1 * C + 6);
    /* c_attn.weight (3C, C): llm.c's qkvw (L, 3C, C), no transpose */
    EQ(at(&m, flat, "h.1.attn.c_attn.weight", 17, 3), QKVW, 1 * 3 * C * C + 17 * C + 3);
    EQ(at(&m, flat, "h.0.attn.c_attn.weight", 23, 7), QKVW, 0 * 3 * C * C + 23 * C + 7);
    EQ(at(&m, flat, "h.1.attn.c_attn.bias", 20, 0), QKVB, 1 * 3 * C + 20);
    EQ(at(&m, flat, "h.1.attn.c_proj.weight", 2, 6), ATTPROJW, 1 * C * C + 2 * C + 6);
    EQ(at(&m, flat, "h.0.attn.c_proj.bias", 1, 0), ATTPROJB, 0 * C + 1);
    EQ(at(&m, flat, "h.1.ln_2.weight", 5, 0), LN2W, 1 * C + 5);
    EQ(at(&m, flat, "h.0.ln_2.bias", 1, 0), LN2B, 0 * C + 1);
    EQ(at(&m, flat, "h.1.mlp.c_fc.weight", 31, 4), FCW, 1 * 4 * C * C + 31 * C + 4);
    EQ(at(&m, flat, "h.1.mlp.c_fc.bias", 29, 0), FCB, 1 * 4 * C + 29);
    /* c_proj.weight (C, 4C) */
    EQ(at(&m, flat, "h.0.mlp.c_proj.weight", 7, 30), FCPROJW, 0 * 4 * C * C + 7 * 4 * C + 30);
    EQ(at(&m, flat, "h.1.mlp.c_proj.weight", 3, 9), FCPROJW, 1 * 4 * C * C + 3 * 4 * C + 9);
    EQ(at(&m, flat, "h.1.mlp.c_proj.bias", 0, 0), FCPROJB, 1 * C + 0);
    EQ(at(&m, flat, "ln_f.weight", 2, 0), LNFW, 2);
    EQ(at(&m, flat, "ln_f.bias", 7, 0), LNFB, 7);
#undef EQ
    /* and every element, through the table: each llm.c value exactly once */
    size_t seen = 0;
    for (int t = 0; t < NUM_TENSORS; t++) seen += t == WTE ? (size_t)T_V * C : f.n[t];
    ck_assert_uint_eq(seen, m.params_numel);
    zl_model_destroy(&m);
    free(flat);
    llmc_free(&f);
    remove_tmpdir();
}

START_TEST(test_llmc_values_land_at_zerolab_names_fp32) { check_values(ZL_LLMC_VERSION_F32); }
END_TEST

START_TEST(test_llmc_values_land_at_zerolab_names_bf16) { check_values(ZL_LLMC_VERSION_BF16); }
END_TEST

/* ---- writer ---------------------------------------------------------------------------- */

/* A zerolab model written as bf16: every value rounded to nearest even as src/base's
 * conversion does, padding zero, and llm.c's padding by default. */
START_TEST(test_llmc_write_rounds_bf16_and_pads_with_zeros)
{
    make_tmpdir();
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    size_t n = zl_gpt_config_num_params(&cfg);
    float *flat = malloc(n * sizeof *flat);
    ck_assert_ptr_nonnull(flat);
    zl_test_fill_uniform(flat, n, 3, -2.0f, 2.0f);
    zl_llmc_header h = zl_llmc_header_for(&cfg, ZL_LLMC_VERSION_BF16);
    ck_assert_int_eq(h.padded_vocab, (cfg.vocab_size + 127) / 128 * 128);
    ck_assert_int_eq(zl_llmc_padded_vocab(50257), 50304);
    ck_assert_int_eq(zl_llmc_padded_vocab(128), 128);
    const char *path = tmp_path("lab_bf16.bin");
    ck_assert_msg(zl_llmc_write(path, &h, flat) == ZL_OK, "%s", zl_last_error());

    size_t nb;
    unsigned char *b = slurp(path, &nb);
    size_t C = (size_t)cfg.channels, pad = (size_t)(h.padded_vocab - cfg.vocab_size) * C;
    ck_assert_uint_eq(nb, 1024 + 2 * (n + pad));
    int32_t hd[8];
    memcpy(hd, b, sizeof hd);
    ck_assert_int_eq(hd[0], 20240326);
    ck_assert_int_eq(hd[1], 5);
    ck_assert_int_eq(hd[7], h.padded_vocab);
    const uint16_t *v = (const uint16_t *)(b + 1024);
    zl_model m;
    ck_assert_int_eq(zl_model_create(&m, &cfg, NULL), ZL_OK);
    const zl_param_info *wte = &m.params[zl_model_find_param(&m, "wte.weight")];
    for (size_t i = 0; i < wte->numel; i++) ck_assert_uint_eq(v[i], zl_f32_to_bf16(flat[wte->offset + i]));
    for (size_t i = 0; i < pad; i++) ck_assert_uint_eq(v[wte->numel + i], 0);
    /* the first layer's ln_1.weight comes right after wpe */
    const zl_param_info *wpe = &m.params[zl_model_find_param(&m, "wpe.weight")];
    const zl_param_info *ln1 = &m.params[zl_model_find_param(&m, "h.0.ln_1.weight")];
    size_t at_ln1 = wte->numel + pad + wpe->numel;
    ck_assert_uint_eq(v[at_ln1], zl_f32_to_bf16(flat[ln1->offset]));
    zl_model_destroy(&m);

    /* read back: the values are the rounded ones */
    zl_llmc_header h2;
    float *back = NULL;
    ck_assert_msg(zl_llmc_read(path, &h2, &back) == ZL_OK, "%s", zl_last_error());
    for (size_t i = 0; i < n; i++) ck_assert(back[i] == zl_round_bf16(flat[i]));
    free(back);
    free(b);
    free(flat);
    remove_tmpdir();
}
END_TEST

START_TEST(test_llmc_write_refuses_bad_headers_and_reports_io)
{
    make_tmpdir();
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &cfg), ZL_OK);
    float *flat = calloc(zl_gpt_config_num_params(&cfg), sizeof *flat);
    ck_assert_ptr_nonnull(flat);
    const char *path = tmp_path("w.bin");

    zl_llmc_header h = zl_llmc_header_for(&cfg, 4);
    ck_assert_int_eq(zl_llmc_write(path, &h, flat), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "w.bin"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "version 4"));

    h = zl_llmc_header_for(&cfg, ZL_LLMC_VERSION_F32);
    h.padded_vocab = cfg.vocab_size - 1;
    ck_assert_int_eq(zl_llmc_write(path, &h, flat), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "padded vocabulary"));

    h = zl_llmc_header_for(&cfg, ZL_LLMC_VERSION_F32);
    h.cfg.num_heads = 3; /* lab's C is not a multiple of 3 */
    ck_assert_int_ne(cfg.channels % 3, 0);
    ck_assert_int_eq(zl_llmc_write(path, &h, flat), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "w.bin"));

    /* a directory that does not exist: ZL_ERR_IO naming the path, nothing left behind */
    const char *bad = tmp_path("missing/w.bin");
    h = zl_llmc_header_for(&cfg, ZL_LLMC_VERSION_F32);
    ck_assert_int_eq(zl_llmc_write(bad, &h, flat), ZL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "missing/w.bin"));

    /* an existing file is replaced whole; no temporary remains */
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    fputs("old", fp);
    fclose(fp);
    ck_assert_msg(zl_llmc_write(path, &h, flat) == ZL_OK, "%s", zl_last_error());
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq((size_t)sb.st_size, 1024 + 4 * (zl_gpt_config_num_params(&cfg) +
                                                      (size_t)(h.padded_vocab - cfg.vocab_size) *
                                                          (size_t)cfg.channels));
    ck_assert_int_eq(count_files_with(".tmp"), 0);
    free(flat);
    remove_tmpdir();
}
END_TEST

/* Nonzero padding is not the model's: read, counted, written back as zeros. */
START_TEST(test_llmc_nonzero_padding_is_counted_and_dropped)
{
    make_tmpdir();
    llmc_file f;
    llmc_fill(&f, ZL_LLMC_VERSION_F32, 5);
    float one = 1.0f;
    memcpy(&f.t[WTE][(size_t)T_V * T_C + 3], &one, 4);
    f.t[WTE][(size_t)T_VP * T_C - 1] = 0x80000000u; /* -0.0: not zero bits either */
    int32_t hd[256];
    const char *in = llmc_write_file("pad.bin", &f, llmc_header(hd, ZL_LLMC_VERSION_F32));
    zl_llmc_header h;
    float *flat = NULL;
    ck_assert_msg(zl_llmc_read(in, &h, &flat) == ZL_OK, "%s", zl_last_error());
    ck_assert_uint_eq(h.padding_nonzero, 2);
    const char *out = tmp_path("pad_out.bin");
    ck_assert_int_eq(zl_llmc_write(out, &h, flat), ZL_OK);
    f.t[WTE][(size_t)T_V * T_C + 3] = 0;
    f.t[WTE][(size_t)T_VP * T_C - 1] = 0;
    assert_same_bytes(llmc_write_file("pad_zero.bin", &f, hd), out);
    free(flat);
    llmc_free(&f);
    remove_tmpdir();
}
END_TEST

/* ---- malformed files -------------------------------------------------------------------- */

/* Reading `path` fails with `want`, the message names the file and holds each of the
 * NULL-terminated substrings, and *flat stays NULL. */
static void expect_refused(const char *path, zl_status want_st, ...)
{
    zl_llmc_header h;
    float *flat = (float *)1;
    zl_status st = zl_llmc_read(path, &h, &flat);
    ck_assert_msg(st == want_st, "'%s': status %d, want %d (%s)", path, st, want_st,
                  zl_last_error());
    ck_assert_ptr_null(flat);
    const char *msg = zl_last_error();
    ck_assert_msg(strstr(msg, path), "message does not name '%s': %s", path, msg);
    va_list ap;
    va_start(ap, want_st);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(msg, s), "message lacks '%s': %s", s, msg);
    va_end(ap);
}

static void truncate_to(const char *path, off_t n) { ck_assert_int_eq(truncate(path, n), 0); }

START_TEST(test_llmc_rejects_malformed_files)
{
    make_tmpdir();
    llmc_file f;
    llmc_fill(&f, ZL_LLMC_VERSION_F32, 9);
    int32_t hd[256];
    const char *p;

    /* truncated: one byte short, inside the header, empty */
    p = llmc_write_file("short.bin", &f, llmc_header(hd, 3));
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    truncate_to(p, sb.st_size - 1);
    expect_refused(p, ZL_ERR_FORMAT, "truncated", "header", NULL);
    truncate_to(p, 1000);
    expect_refused(p, ZL_ERR_FORMAT, "1000 bytes", "header", NULL);
    truncate_to(p, 0);
    expect_refused(p, ZL_ERR_FORMAT, "0 bytes", NULL);

    /* trailing bytes */
    p = llmc_write_file("long.bin", &f, llmc_header(hd, 3));
    FILE *fp = fopen(p, "ab");
    fputc(0, fp);
    fclose(fp);
    expect_refused(p, ZL_ERR_FORMAT, "trailing", NULL);

    /* wrong magic (llm.c's state file's), version 4 */
    llmc_header(hd, 3)[0] = 20240327;
    expect_refused(llmc_write_file("magic.bin", &f, hd), ZL_ERR_FORMAT, "header[0]", "magic",
                   "20240326", "debug state file", NULL);
    llmc_header(hd, 4);
    expect_refused(llmc_write_file("v4.bin", &f, hd), ZL_ERR_FORMAT, "header[1]", "version", "4",
                   NULL);

    /* C not divisible by NH */
    llmc_header(hd, 3)[5] = 3;
    expect_refused(llmc_write_file("heads.bin", &f, hd), ZL_ERR_FORMAT, "header[6]",
                   "header[5]", "divisible", NULL);
    /* a dimension that is not positive */
    llmc_header(hd, 3)[4] = 0;
    expect_refused(llmc_write_file("nolayers.bin", &f, hd), ZL_ERR_FORMAT, "header[4]",
                   "num_layers", "positive", NULL);
    llmc_header(hd, 3)[3] = -67;
    expect_refused(llmc_write_file("negv.bin", &f, hd), ZL_ERR_FORMAT, "header[3]",
                   "vocab_size", NULL);
    /* Vp < V */
    llmc_header(hd, 3)[7] = 64;
    expect_refused(llmc_write_file("vp.bin", &f, hd), ZL_ERR_FORMAT, "header[7]", "smaller",
                   NULL);
    /* huge dimensions: past zerolab's model limits, and past 64 bits of bytes */
    llmc_header(hd, 3)[6] = INT_MAX - 1, hd[5] = 1;
    expect_refused(llmc_write_file("hugec.bin", &f, hd), ZL_ERR_FORMAT, "header dimensions",
                   NULL);
    llmc_header(hd, 3)[4] = INT_MAX;
    expect_refused(llmc_write_file("hugel.bin", &f, hd), ZL_ERR_FORMAT, "header dimensions",
                   NULL);
    llmc_header(hd, 3)[7] = INT_MAX; /* fine dimensions, a file far too short for them */
    expect_refused(llmc_write_file("hugevp.bin", &f, hd), ZL_ERR_FORMAT, "truncated", NULL);
    /* a reserved header int */
    llmc_header(hd, 3)[200] = 1;
    expect_refused(llmc_write_file("reserved.bin", &f, hd), ZL_ERR_FORMAT, "header[200]",
                   NULL);

    /* not there, not a file */
    expect_refused(tmp_path("absent.bin"), ZL_ERR_IO, "cannot open", NULL);
    expect_refused(tmpdir, ZL_ERR_IO, "not a regular file", NULL);

    llmc_free(&f);
    remove_tmpdir();
}
END_TEST

/* Random damage to a valid file: each result is a clean refusal naming the file, or a
 * successful read (a flipped value byte is still a well-formed file). Never a crash. */
START_TEST(test_llmc_fuzzed_files_never_crash)
{
    make_tmpdir();
    llmc_file f;
    llmc_fill(&f, ZL_LLMC_VERSION_BF16, 13);
    int32_t hd[256];
    const char *good = llmc_write_file("good.bin", &f, llmc_header(hd, 5));
    size_t n;
    unsigned char *orig = slurp(good, &n);
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    int refused = 0, read_ok = 0;
    for (uint64_t trial = 0; trial < 300; trial++) {
        memcpy(b, orig, n);
        size_t len = n;
        uint64_t r = zl_rng_bits(99, trial, 0);
        switch (r % 4) {
        case 0: /* a header int set to a random value (often small, to pass some checks) */
        {
            int32_t v = (int32_t)zl_rng_bits(99, trial, 1);
            if (zl_rng_bits(99, trial, 2) & 1) v %= 300;
            size_t k = zl_rng_bits(99, trial, 3) % 8;
            memcpy(b + 4 * k, &v, 4);
            break;
        }
        case 1: /* a random byte anywhere flipped */
            b[zl_rng_bits(99, trial, 1) % n] ^= (unsigned char)(1 + zl_rng_bits(99, trial, 2) % 255);
            break;
        case 2: /* truncated at a random point */
            len = zl_rng_bits(99, trial, 1) % n;
            break;
        default: /* extended with random bytes */
            len = n + 1 + zl_rng_bits(99, trial, 1) % 64;
            break;
        }
        const char *p = tmp_path("fuzz.bin");
        FILE *fp = fopen(p, "wb");
        ck_assert_ptr_nonnull(fp);
        ck_assert_uint_eq(fwrite(b, 1, len < n ? len : n, fp), len < n ? len : n);
        for (size_t i = n; i < len; i++) fputc((int)(zl_rng_bits(99, trial, i) & 0xff), fp);
        fclose(fp);
        zl_llmc_header h;
        float *flat = NULL;
        zl_status st = zl_llmc_read(p, &h, &flat);
        if (st == ZL_OK) {
            read_ok++;
            free(flat);
        } else {
            refused++;
            ck_assert_msg(st == ZL_ERR_FORMAT, "trial %d: status %d (%s)", (int)trial, st,
                          zl_last_error());
            ck_assert_ptr_nonnull(strstr(zl_last_error(), p));
            ck_assert_ptr_null(flat);
        }
    }
    ck_assert_int_gt(refused, 100); /* the damage was real */
    ck_assert_int_gt(read_ok, 10);  /* and value bytes are not checked */
    free(b);
    free(orig);
    llmc_free(&f);
    remove_tmpdir();
}
END_TEST

/* ---- through a checkpoint: import, export, load into a run -------------------------- */


/* A file zerolab did not write (this test's own writer, Vp > V with zero padding, the
 * special values of llmc_fill), imported as a checkpoint, opened and exported again:
 * the same bytes. */
static void import_export(int version)
{
    make_tmpdir();
    llmc_file f;
    llmc_fill(&f, version, 21);
    int32_t hd[256];
    const char *in = llmc_write_file("orig.bin", &f, llmc_header(hd, version));
    size_t padding = 99;
    const char *dir = tmp_path("ckpt");
    ck_assert_msg(zl_ckpt_import_llmc(in, dir, NULL, &padding) == ZL_OK, "%s", zl_last_error());
    ck_assert_uint_eq(padding, 0);
    zl_ckpt *c = NULL;
    ck_assert_msg(zl_ckpt_open(&c, tmp_path("ckpt"), NULL, false, false) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_str_eq(zl_ckpt_tag(c), "llmc");
    ck_assert(!zl_ckpt_has_optimizer(c));
    ck_assert_int_eq(zl_ckpt_dtype(c), version == ZL_LLMC_VERSION_BF16 ? ZL_BF16 : ZL_F32);
    /* version 0: the checkpoint's own precision picks the file's version */
    const char *out = tmp_path("back.bin");
    ck_assert_msg(zl_ckpt_export_llmc(c, out, 0) == ZL_OK, "%s", zl_last_error());
    zl_ckpt_close(c);
    assert_same_bytes(tmp_path("orig.bin"), out);
    llmc_free(&f);
    remove_tmpdir();
}

START_TEST(test_llmc_fp32_import_then_export_is_byte_identical) { import_export(ZL_LLMC_VERSION_F32); }
END_TEST

START_TEST(test_llmc_bf16_import_then_export_is_byte_identical) { import_export(ZL_LLMC_VERSION_BF16); }
END_TEST

/* An imported checkpoint loads into a run of its model as weights only (no optimizer
 * state, counters at zero), and the run's parameters are the llm.c file's values, bit
 * for bit (bf16 widened exactly), at zerolab's names. */
static void import_load(int version)
{
    make_tmpdir();
    llmc_file f;
    llmc_fill(&f, version, 23);
    int32_t hd[256];
    const char *in = llmc_write_file("orig.bin", &f, llmc_header(hd, version));
    ck_assert_msg(zl_ckpt_import_llmc(in, tmp_path("ckpt"), "imported", NULL) == ZL_OK, "%s",
                  zl_last_error());

    zl_gpt_config m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "llmc-test");
    m.vocab_size = T_V, m.max_seq_len = T_MAXT, m.num_layers = T_L, m.num_heads = T_NH;
    m.channels = T_C;
    /* data in the model's vocabulary (the built-in corpus has 256 byte tokens) */
    static int32_t tokens[1024];
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++) tokens[i] = (int32_t)(i * 7 % T_V);
    zl_dataset ds = {.tokens = tokens, .ntokens = sizeof tokens / sizeof *tokens, .vocab_size = T_V};
    snprintf(ds.desc, sizeof ds.desc, "the test's tokens");
    zl_run_options o;
    zl_run_options_init(&o);
    o.dataset = &ds;
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 2, \"optimizer\": {\"type\": \"AdamW\"}}";
    o.config_name = "<test>";
    o.model_config = &m;
    o.seq_len = T_MAXT;
    o.seed = 5;
    o.backend = "cpu";
    o.no_preflight = true;
    zl_run run;
    ck_assert_msg(zl_run_init(&run, &o) == ZL_OK, "%s", zl_last_error());
    zl_engine_loaded loaded;
    ck_assert_msg(zl_run_load(&run, tmp_path("ckpt"), NULL, &loaded) == ZL_OK, "%s",
                  zl_last_error());
    ck_assert_str_eq(loaded.tag, "imported");
    ck_assert(!loaded.optimizer_loaded);
    ck_assert_int_eq(run.step, 0);
    free(loaded.client_state);

    const zl_model *mo = zl_engine_model(run.engine);
    ck_assert_uint_eq(mo->params_numel, zl_gpt_config_num_params(&m));
    float *p = malloc(mo->params_numel * sizeof *p);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(zl_engine_gather_params(run.engine, p), ZL_OK);
    /* Every element, walking llm.c's order: tensor t, layer l, element i of that layer's
     * slice, is zerolab's parameter "h.<l>.<name>" (or the global one) element i. */
    static const char *const names[NUM_TENSORS] = {
        "wte.weight", "wpe.weight", "ln_1.weight", "ln_1.bias", "attn.c_attn.weight",
        "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",
        "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
        "mlp.c_proj.bias", "ln_f.weight", "ln_f.bias"};
    size_t checked = 0;
    for (int t = 0; t < NUM_TENSORS; t++) {
        bool global = t == WTE || t == WPE || t == LNFW || t == LNFB;
        int layers = global ? 1 : T_L;
        size_t per = t == WTE ? (size_t)T_V * T_C : f.n[t] / (size_t)layers; /* padding dropped */
        for (int l = 0; l < layers; l++) {
            char name[64];
            if (global) snprintf(name, sizeof name, "%s", names[t]);
            else snprintf(name, sizeof name, "h.%d.%s", l, names[t]);
            int k = zl_model_find_param(mo, name);
            ck_assert_msg(k >= 0, "no parameter '%s'", name);
            ck_assert_uint_eq(mo->params[k].numel, per);
            for (size_t i = 0; i < per; i++) {
                float w = want(&f, t, (size_t)l * per + i);
                ck_assert_msg(!memcmp(&p[mo->params[k].offset + i], &w, 4),
                              "%s[%zu]: %g, the file's %g", name, i,
                              (double)p[mo->params[k].offset + i], (double)w);
            }
            checked += per;
        }
    }
    ck_assert_uint_eq(checked, mo->params_numel);
    free(p);
    zl_run_free(&run);
    llmc_free(&f);
    remove_tmpdir();
}

START_TEST(test_llmc_fp32_import_loads_into_a_run) { import_load(ZL_LLMC_VERSION_F32); }
END_TEST

START_TEST(test_llmc_bf16_import_loads_into_a_run) { import_load(ZL_LLMC_VERSION_BF16); }
END_TEST

static Suite *llmc_suite(void)
{
    Suite *s = suite_create("llmc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_llmc_fp32_read_then_write_is_byte_identical);
    tcase_add_test(tc, test_llmc_bf16_read_then_write_is_byte_identical);
    tcase_add_test(tc, test_llmc_values_land_at_zerolab_names_fp32);
    tcase_add_test(tc, test_llmc_values_land_at_zerolab_names_bf16);
    tcase_add_test(tc, test_llmc_write_rounds_bf16_and_pads_with_zeros);
    tcase_add_test(tc, test_llmc_write_refuses_bad_headers_and_reports_io);
    tcase_add_test(tc, test_llmc_nonzero_padding_is_counted_and_dropped);
    tcase_add_test(tc, test_llmc_rejects_malformed_files);
    tcase_add_test(tc, test_llmc_fuzzed_files_never_crash);
    tcase_add_test(tc, test_llmc_fp32_import_then_export_is_byte_identical);
    tcase_add_test(tc, test_llmc_bf16_import_then_export_is_byte_identical);
    tcase_add_test(tc, test_llmc_fp32_import_loads_into_a_run);
    tcase_add_test(tc, test_llmc_bf16_import_loads_into_a_run);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(llmc_suite)
