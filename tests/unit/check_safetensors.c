/* safetensors: round trips, files written by hand as other tools write them, and the
 * malformed files the reader must reject with a message that names file and fault. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "ckpt/safetensors.h"

/* A fresh directory per test, removed (with its files) at the end. */
static void make_tmpdir(void) { zl_test_tmpdir_make("st"); }
#define tmpdir zl_test_tmpdir()
#define tmp_path zl_test_tmp_path
#define count_files_with zl_test_tmp_count
#define remove_tmpdir zl_test_tmpdir_remove

/* A file as another tool would write it: the 8-byte little-endian length (or
 * `header_len` if >= 0, to lie about it), the header text, then `data`. */
static const char *write_raw(const char *name, const char *header, long long header_len,
                             const void *data, size_t data_nbytes)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned long long n = header_len >= 0 ? (unsigned long long)header_len : strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
    ck_assert_uint_eq(fwrite(len8, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(header, 1, strlen(header), f), strlen(header));
    if (data_nbytes) ck_assert_uint_eq(fwrite(data, 1, data_nbytes, f), data_nbytes);
    fclose(f);
    return path;
}

static long file_nbytes(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return (long)sb.st_size;
}

static void assert_shape(const zl_safetensors_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_int_eq(t->ndim, ndim);
    for (int d = 0; d < ndim; d++) ck_assert_int_eq(t->shape[d], shape[d]);
}

START_TEST(test_safetensors_round_trip_keeps_bytes_shapes_and_metadata)
{
    make_tmpdir();
    float a[6] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint16_t b[4] = {0x3F80, 0xC020, 0x7F80, 0x0001}; /* bf16: 1, -2.5, inf, min subnormal */
    uint16_t c[3] = {0x3C00, 0x7BFF, 0x8001};         /* f16: 1, 65504, -min subnormal */
    int32_t d = -123456789;
    uint16_t e[5] = {0, 1, 255, 256, 65535};
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[1] = {3}, se[1] = {5}, sz[2] = {0, 4};
    zl_safetensors_writer *w;
    ck_assert_int_eq(zl_safetensors_writer_create(&w), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "a", ZL_F32, 2, sa, a), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "b", ZL_BF16, 1, sb, b), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "c", ZL_F16, 1, sc, c), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "d", ZL_I32, 0, NULL, &d), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "e.weight", ZL_U16, 1, se, e), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "z", ZL_F32, 2, sz, NULL), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_set_metadata(w, "format", "pt"), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_set_metadata(w, "step", "1"), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_set_metadata(w, "step", "7"), ZL_OK); /* replaces */
    const char *path = tmp_path("rt.safetensors");
    ck_assert_int_eq(zl_safetensors_writer_write(w, path), ZL_OK);
    zl_safetensors_writer_destroy(w);

    /* The layout, worked out by hand: 4-byte elements first (a 24 B, d 4 B, z 0 B),
     * then 2-byte ones (b 8 B, c 6 B, e 10 B): a data section of 52 bytes, after a
     * header padded to a multiple of 8. */
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    ck_assert_uint_eq(fread(len8, 1, 8, f), 8);
    fclose(f);
    unsigned long long hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (unsigned long long)len8[i] << (8 * i);
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_int_eq(file_nbytes(path), (long)(8 + hlen + 52));

    zl_safetensors *st;
    ck_assert_int_eq(zl_safetensors_open(&st, path), ZL_OK);
    ck_assert_str_eq(zl_safetensors_path(st), path);
    ck_assert_int_eq(zl_safetensors_num_tensors(st), 6);
    static const struct { const char *name; const char *dtype; size_t offset, nbytes; } want[] = {
        {"a", "F32", 0, 24}, {"d", "I32", 24, 4}, {"z", "F32", 28, 0},
        {"b", "BF16", 28, 8}, {"c", "F16", 36, 6}, {"e.weight", "U16", 42, 10},
    };
    for (int i = 0; i < 6; i++) {
        const zl_safetensors_tensor *t = zl_safetensors_tensor_at(st, i);
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_str_eq(t->dtype, want[i].dtype);
        ck_assert_uint_eq(t->offset, want[i].offset);
        ck_assert_uint_eq(t->nbytes, want[i].nbytes);
        ck_assert_ptr_eq(zl_safetensors_find(st, want[i].name), t);
        /* every tensor is aligned for its element type in the mapping */
        ck_assert_uint_eq((uintptr_t)t->data % t->elem_nbytes, 0);
    }
    const zl_safetensors_tensor *t = zl_safetensors_find(st, "a");
    assert_shape(t, 2, sa);
    ck_assert_int_eq(t->zl_type, ZL_F32);
    ck_assert_uint_eq(t->numel, 6);
    ck_assert_int_eq(memcmp(t->data, a, sizeof a), 0);
    ck_assert_int_eq(memcmp(zl_safetensors_find(st, "b")->data, b, sizeof b), 0);
    ck_assert_int_eq(memcmp(zl_safetensors_find(st, "c")->data, c, sizeof c), 0);
    ck_assert_int_eq(memcmp(zl_safetensors_find(st, "e.weight")->data, e, sizeof e), 0);
    t = zl_safetensors_find(st, "d");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_uint_eq(t->numel, 1);
    int32_t d2 = 0;
    ck_assert_int_eq(zl_safetensors_read(st, "d", ZL_I32, &d2, 1), ZL_OK);
    ck_assert_int_eq(d2, d);
    t = zl_safetensors_find(st, "z");
    assert_shape(t, 2, sz);
    ck_assert_uint_eq(t->numel, 0);
    ck_assert_int_eq(zl_safetensors_read(st, "z", ZL_F32, NULL, 0), ZL_OK);
    ck_assert_ptr_null(zl_safetensors_find(st, "nope"));

    ck_assert_int_eq(zl_safetensors_num_metadata(st), 2);
    ck_assert_str_eq(zl_safetensors_metadata_key(st, 0), "format");
    ck_assert_str_eq(zl_safetensors_metadata(st, "format"), "pt");
    ck_assert_str_eq(zl_safetensors_metadata(st, "step"), "7");
    ck_assert_ptr_null(zl_safetensors_metadata(st, "missing"));
    zl_safetensors_close(st);
    remove_tmpdir();
}
END_TEST

/* A file as the Python package may write it (header not padded, tensors at offsets that
 * are not aligned, a dtype zerolab has no type for): readable, values as written. */
START_TEST(test_safetensors_reads_files_written_by_other_tools)
{
    make_tmpdir();
    unsigned char data[2 + 8 + 8];
    /* "h": F16 [1.0] at [0, 2]; "w": F32 [1.5, -2] at [2, 10] (unaligned); "x": F64 [0.5] */
    const unsigned char h[2] = {0x00, 0x3C};
    const unsigned char wv[8] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0};
    const unsigned char xv[8] = {0, 0, 0, 0, 0, 0, 0xE0, 0x3F};
    memcpy(data, h, 2);
    memcpy(data + 2, wv, 8);
    memcpy(data + 10, xv, 8);
    const char *path = write_raw("py.safetensors",
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]},"
        "\"x\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[10,18]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]}}", -1, data, sizeof data);
    zl_safetensors *st;
    ck_assert_int_eq(zl_safetensors_open(&st, path), ZL_OK);
    ck_assert_int_eq(zl_safetensors_num_tensors(st), 3);
    float w[2];
    ck_assert_int_eq(zl_safetensors_read(st, "w", ZL_F32, w, 2), ZL_OK);
    ck_assert(w[0] == 1.5f && w[1] == -2.0f);
    float hf;
    ck_assert_int_eq(zl_safetensors_read(st, "h", ZL_F32, &hf, 1), ZL_OK); /* F16 -> F32 */
    ck_assert(hf == 1.0f);
    const zl_safetensors_tensor *x = zl_safetensors_find(st, "x");
    ck_assert_str_eq(x->dtype, "F64");
    ck_assert_int_eq(x->zl_type, ZL_DTYPE_COUNT);
    ck_assert_uint_eq(x->elem_nbytes, 8);
    double xd;
    memcpy(&xd, x->data, 8);
    ck_assert(xd == 0.5);
    ck_assert_int_eq(zl_safetensors_read(st, "x", ZL_F32, w, 1), ZL_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "tensor 'x' is F64, which cannot be read as f32"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), path));
    zl_safetensors_close(st);
    remove_tmpdir();
}
END_TEST

/* Reading converts between float types with IEEE rounding; expected bit patterns worked
 * out by hand: 1/3 = 0x3EAAAAAB rounds up in both (dropped bits above half), 65520 is
 * past f16's largest finite value (65504 + half an ulp = 65520 ties to even: infinity)
 * and rounds to 65536 in bf16. */
START_TEST(test_safetensors_read_converts_floats_and_checks_size)
{
    make_tmpdir();
    float v[4] = {1.0f, 1.0f / 3.0f, 65520.0f, -2.5f};
    int32_t ids[2] = {3, 4};
    int64_t s4[1] = {4}, s2[1] = {2};
    zl_safetensors_writer *w;
    ck_assert_int_eq(zl_safetensors_writer_create(&w), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "v", ZL_F32, 1, s4, v), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "ids", ZL_I32, 1, s2, ids), ZL_OK);
    const char *path = tmp_path("conv.safetensors");
    ck_assert_int_eq(zl_safetensors_writer_write(w, path), ZL_OK);
    zl_safetensors_writer_destroy(w);

    zl_safetensors *st;
    ck_assert_int_eq(zl_safetensors_open(&st, path), ZL_OK);
    uint16_t h[4], bf[4];
    ck_assert_int_eq(zl_safetensors_read(st, "v", ZL_F16, h, 4), ZL_OK);
    ck_assert_int_eq(zl_safetensors_read(st, "v", ZL_BF16, bf, 4), ZL_OK);
    const uint16_t want_h[4] = {0x3C00, 0x3555, 0x7C00, 0xC100};
    const uint16_t want_bf[4] = {0x3F80, 0x3EAB, 0x4780, 0xC020};
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(h[i], want_h[i]);
        ck_assert_uint_eq(bf[i], want_bf[i]);
    }
    float ids_f[2];
    ck_assert_int_eq(zl_safetensors_read(st, "ids", ZL_F32, ids_f, 2), ZL_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "'ids' is I32, which cannot be read as f32"));
    float five[5];
    ck_assert_int_eq(zl_safetensors_read(st, "v", ZL_F32, five, 5), ZL_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "tensor 'v' has shape (4) (4 elements), "
                                                  "expected 5 elements"));
    ck_assert_int_eq(zl_safetensors_read(st, "vv", ZL_F32, five, 4), ZL_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "has no tensor 'vv'"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), path));
    zl_safetensors_close(st);
    remove_tmpdir();
}
END_TEST

START_TEST(test_safetensors_write_is_atomic_and_reports_failures)
{
    make_tmpdir();
    float one = 1.0f, two = 2.0f;
    const char *path = tmp_path("ckpt.safetensors");
    zl_safetensors_writer *w;
    ck_assert_int_eq(zl_safetensors_writer_create(&w), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "x", ZL_F32, 0, NULL, &one), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_write(w, path), ZL_OK);
    zl_safetensors_writer_destroy(w);

    /* Overwriting replaces the whole file. */
    ck_assert_int_eq(zl_safetensors_writer_create(&w), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "y", ZL_F32, 0, NULL, &two), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_write(w, path), ZL_OK);
    zl_safetensors *st;
    ck_assert_int_eq(zl_safetensors_open(&st, path), ZL_OK);
    ck_assert_int_eq(zl_safetensors_num_tensors(st), 1);
    float y = 0;
    ck_assert_int_eq(zl_safetensors_read(st, "y", ZL_F32, &y, 1), ZL_OK);
    ck_assert(y == 2.0f);
    zl_safetensors_close(st);

    /* The rename fails (the destination is a non-empty directory): an IO error naming
     * the path and the failed step, and no temporary file left behind. */
    const char *dir = tmp_path("adir");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char inner[160];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    FILE *f = fopen(inner, "w");
    fclose(f);
    ck_assert_int_eq(zl_safetensors_writer_write(w, dir), ZL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), dir));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "rename"));
    ck_assert_int_eq(count_files_with(".tmp."), 0);
    unlink(inner);

    /* A missing directory: the message names the path and the system's reason. */
    const char *nodir = tmp_path("missing/x.safetensors");
    ck_assert_int_eq(zl_safetensors_writer_write(w, nodir), ZL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), nodir));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "No such file or directory"));
    zl_safetensors_writer_destroy(w);
    remove_tmpdir();
}
END_TEST

START_TEST(test_safetensors_writer_rejects_bad_tensors)
{
    float x[2] = {0};
    int64_t s[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-2};
    zl_safetensors_writer *w;
    ck_assert_int_eq(zl_safetensors_writer_create(&w), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "x", ZL_F32, 1, s, x), ZL_OK);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "x", ZL_F32, 1, s, x), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "'x' added twice"));
    ck_assert_int_eq(zl_safetensors_writer_add(w, "__metadata__", ZL_F32, 1, s, x), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "", ZL_F32, 1, s, x), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "n", ZL_F32, 1, neg, x), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "negative dimension -2"));
    ck_assert_int_eq(zl_safetensors_writer_add(w, "m", ZL_F32, 9, s, x), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_safetensors_writer_add(w, "p", ZL_F32, 1, s, NULL), ZL_ERR_INVALID);
    zl_safetensors_writer_destroy(w);
}
END_TEST

/* Each malformed file: ZL_ERR_FORMAT, and a message with the path and what is wrong. */
static const struct {
    const char *file, *header;
    long long header_len; /* -1: the header's real length */
    size_t data_nbytes;
    const char *expect;
} malformed[] = {
    {"trunc_len", NULL, 0, 0, "file is 5 bytes, shorter than the 8-byte header length"},
    {"long_len", "{}", 1000, 0, "header length 1000 is larger than the 2 bytes that follow it"},
    {"huge_len", "{}", 1LL << 40, 0, "header length 1099511627776 is over the format's limit"},
    {"not_object", "[1, 2]", -1, 0, "header does not start with '{'"},
    {"bad_json", "{\"a\": {\"dtype\": \"F32\",", -1, 0, "header is not valid JSON"},
    {"dup_name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
     "duplicate object key"},
    {"truncated_data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 4,
     "tensor 'a': data_offsets [0, 8] reach past the end of the data section (4 bytes; is the "
     "file truncated?)"},
    {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12,
     "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
    {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", -1, 12,
     "bytes [4, 8) of the data section belong to no tensor (a gap before 'b')"},
    {"trailing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 6,
     "bytes [4, 6) at the end of the data section belong to no tensor"},
    {"reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", -1, 8,
     "tensor 'a': data_offsets [8, 4] end before they begin"},
    {"size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
     "tensor 'a': shape (3) of F32 needs 12 bytes, but data_offsets [0, 8] hold 8"},
    {"unknown_dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': unknown dtype 'F33'"},
    {"neg_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'a': shape entry 0 is not a non-negative integer"},
    {"no_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", -1, 4,
     "tensor 'a': needs \"dtype\" (a string), \"shape\" and \"data_offsets\""},
    {"meta_int", "{\"__metadata__\":{\"step\":3}}", -1, 0,
     "\"__metadata__\" entry 'step' is not a string"},
};

START_TEST(test_safetensors_rejects_malformed_files)
{
    make_tmpdir();
    unsigned char zeros[16] = {0};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        const char *path;
        if (!malformed[i].header) { /* a 5-byte file */
            path = tmp_path(malformed[i].file);
            FILE *f = fopen(path, "wb");
            fwrite("\x08\0\0\0\0", 1, 5, f);
            fclose(f);
        } else {
            path = write_raw(malformed[i].file, malformed[i].header, malformed[i].header_len,
                             zeros, malformed[i].data_nbytes);
        }
        zl_safetensors *st = (zl_safetensors *)1;
        zl_status s = zl_safetensors_open(&st, path);
        const char *msg = zl_last_error();
        if (s != ZL_ERR_FORMAT || !strstr(msg, path) || !strstr(msg, malformed[i].expect))
            ck_abort_msg("%s: status %d, message \"%s\"; expected \"%s\"", malformed[i].file, s,
                         msg, malformed[i].expect);
        ck_assert_ptr_null(st);
    }
    zl_safetensors *st;
    const char *missing = tmp_path("missing.safetensors");
    ck_assert_int_eq(zl_safetensors_open(&st, missing), ZL_ERR_IO);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), missing));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "No such file or directory"));
    remove_tmpdir();
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_safetensors_round_trip_keeps_bytes_shapes_and_metadata);
    tcase_add_test(tc, test_safetensors_reads_files_written_by_other_tools);
    tcase_add_test(tc, test_safetensors_read_converts_floats_and_checks_size);
    tcase_add_test(tc, test_safetensors_write_is_atomic_and_reports_failures);
    tcase_add_test(tc, test_safetensors_writer_rejects_bad_tensors);
    tcase_add_test(tc, test_safetensors_rejects_malformed_files);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(safetensors_suite)
