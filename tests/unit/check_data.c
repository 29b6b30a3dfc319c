/* Datasets (text, llm.c shards, the built-in corpus) and the data-parallel batch loader. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "data/dataset.h"
#include "data/loader.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* Write bytes to a fresh temporary file; the path goes to `path` (>= 64 chars). */
static void write_temp(char *path, const void *bytes, size_t nbytes)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 64, "%s/zl_data_XXXXXX", dir && strlen(dir) < 40 ? dir : "/tmp");
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, bytes, nbytes), (ssize_t)nbytes);
    close(fd);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* An llm.c shard in memory, built byte by byte: 256 x int32 LE header [magic, version,
 * header_ntok, 0...], then `ntok` tokens of elem_nbytes each (LE). Caller frees. */
static unsigned char *make_shard(uint32_t magic, uint32_t version, uint32_t header_ntok,
                                 const uint32_t *tok, size_t ntok, int elem_nbytes,
                                 size_t *nbytes)
{
    *nbytes = 1024 + ntok * (size_t)elem_nbytes;
    unsigned char *b = calloc(1, *nbytes);
    put_le32(b, magic);
    put_le32(b + 4, version);
    put_le32(b + 8, header_ntok);
    for (size_t i = 0; i < ntok; i++)
        for (int k = 0; k < elem_nbytes; k++)
            b[1024 + i * elem_nbytes + k] = (unsigned char)(tok[i] >> (8 * k));
    return b;
}

/* Load bytes through a temporary file; returns the status, message in zl_last_error(). */
static zl_status load_bytes(zl_dataset *ds, const void *bytes, size_t nbytes, char *path)
{
    write_temp(path, bytes, nbytes);
    zl_error_clear();
    zl_status st = zl_dataset_load(ds, path);
    unlink(path);
    return st;
}

#define ASSERT_MSG_HAS(s) \
    ck_assert_msg(strstr(zl_last_error(), (s)) != NULL, "message lacks '%s': %s", (s), \
                  zl_last_error())

/* A dataset whose token i is i: every token says where it came from. */
static void iota_dataset(zl_dataset *ds, size_t ntokens)
{
    memset(ds, 0, sizeof *ds);
    ds->tokens = malloc(ntokens * sizeof(int32_t));
    for (size_t i = 0; i < ntokens; i++) ds->tokens[i] = (int32_t)i;
    ds->ntokens = ntokens;
    ds->vocab_size = (int)ntokens;
    snprintf(ds->desc, sizeof ds->desc, "iota(%zu)", ntokens);
}

/* ---- loading files -------------------------------------------------------------------- */

START_TEST(test_data_text_file_is_bytes)
{
    const char text[] = "Hello, world!\nline two \xc3\xa9\xff\x01";
    size_t n = sizeof text - 1;
    char path[64];
    zl_dataset ds;
    ck_assert_int_eq(load_bytes(&ds, text, n, path), ZL_OK);
    ck_assert_uint_eq(ds.ntokens, n);
    ck_assert_int_eq(ds.vocab_size, 256);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(ds.tokens[i], (unsigned char)text[i]);
    ck_assert_int_eq(ds.tokens[n - 2], 255); /* bytes are unsigned */
    ck_assert_ptr_nonnull(strstr(ds.desc, path));
    zl_dataset_free(&ds);
    ck_assert_ptr_null(ds.tokens);
    zl_dataset_free(&ds); /* twice is harmless */

    /* Shorter than a shard header's magic: still text. */
    ck_assert_int_eq(load_bytes(&ds, "ab", 2, path), ZL_OK);
    ck_assert_uint_eq(ds.ntokens, 2);
    ck_assert_int_eq(ds.tokens[1], 'b');
    zl_dataset_free(&ds);
}
END_TEST

START_TEST(test_data_gpt2_shard_tokens_and_vocab)
{
    /* Enough tokens to cross the reader's 64 KiB chunks (2 bytes each). */
    size_t ntok = 40000;
    uint32_t *tok = malloc(ntok * sizeof *tok);
    for (size_t i = 0; i < ntok; i++) tok[i] = (uint32_t)((i * 7919u) % 50257u);
    tok[0] = 0;
    tok[1] = 50256; /* <|endoftext|>, the largest GPT-2 id */
    tok[2] = 258;   /* low and high byte both matter */
    size_t nbytes;
    unsigned char *shard = make_shard(20240520, 1, (uint32_t)ntok, tok, ntok, 2, &nbytes);
    char path[64];
    zl_dataset ds;
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_OK);
    ck_assert_uint_eq(ds.ntokens, ntok);
    ck_assert_int_eq(ds.vocab_size, 50257);
    for (size_t i = 0; i < ntok; i++) ck_assert_int_eq(ds.tokens[i], (int32_t)tok[i]);
    ck_assert_ptr_nonnull(strstr(ds.desc, "GPT-2"));
    zl_dataset_free(&ds);

    /* Ids past GPT-2's vocabulary (another tokenizer): the vocabulary widens to cover them. */
    tok[5] = 65535;
    free(shard);
    shard = make_shard(20240520, 1, (uint32_t)ntok, tok, ntok, 2, &nbytes);
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_OK);
    ck_assert_int_eq(ds.vocab_size, 65536);
    ck_assert_int_eq(ds.tokens[5], 65535);
    zl_dataset_free(&ds);
    free(shard);
    free(tok);
}
END_TEST

START_TEST(test_data_llama3_shard_uint32)
{
    uint32_t tok[] = {128000, 1, 70000, 128255, 300};
    size_t nbytes;
    unsigned char *shard = make_shard(20240801, 7, 5, tok, 5, 4, &nbytes);
    char path[64];
    zl_dataset ds;
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_OK);
    ck_assert_uint_eq(ds.ntokens, 5);
    ck_assert_int_eq(ds.vocab_size, 128256);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(ds.tokens[i], (int32_t)tok[i]);
    zl_dataset_free(&ds);
    free(shard);
}
END_TEST

START_TEST(test_data_shard_size_mismatch_names_both_sizes)
{
    uint32_t tok[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    size_t nbytes;
    char path[64];
    zl_dataset ds;
    /* Header says 10 tokens, 9 present: expected 1024 + 20 = 1044 bytes, file has 1042. */
    unsigned char *shard = make_shard(20240520, 1, 10, tok, 9, 2, &nbytes);
    ck_assert_uint_eq(nbytes, 1042);
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS(path);
    ASSERT_MSG_HAS("10 tokens");
    ASSERT_MSG_HAS("1044 bytes");
    ASSERT_MSG_HAS("1042 bytes");
    ASSERT_MSG_HAS("hint:");
    ck_assert_ptr_null(ds.tokens);
    free(shard);
    /* Extra bytes are as wrong as missing ones: header 9, file holds 10 (1044 vs 1042). */
    shard = make_shard(20240520, 1, 9, tok, 10, 2, &nbytes);
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS("should be 1042 bytes");
    ASSERT_MSG_HAS("it is 1044 bytes");
    free(shard);
    /* Zero tokens in the header. */
    shard = make_shard(20240520, 1, 0, tok, 0, 2, &nbytes);
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS("0 tokens");
    free(shard);
    /* The magic, then less than a header. */
    unsigned char small[100] = {0};
    put_le32(small, 20240520);
    ck_assert_int_eq(load_bytes(&ds, small, sizeof small, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS("100 bytes");
    ASSERT_MSG_HAS("1024-byte header");
}
END_TEST

START_TEST(test_data_shard_bad_version)
{
    uint32_t tok[4] = {1, 2, 3, 4};
    size_t nbytes;
    char path[64];
    zl_dataset ds;
    unsigned char *shard = make_shard(20240520, 2, 4, tok, 4, 4, &nbytes);
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS(path);
    ASSERT_MSG_HAS("unknown version 2");
    ASSERT_MSG_HAS("version 1 = GPT-2 uint16");
    ASSERT_MSG_HAS("hint:");
    free(shard);
    /* Llama-3's magic with GPT-2's version is not a known combination either. */
    shard = make_shard(20240801, 1, 4, tok, 4, 2, &nbytes);
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS("magic 20240801 with unknown version 1");
    free(shard);
}
END_TEST

START_TEST(test_data_missing_and_empty_files)
{
    zl_dataset ds;
    const char *missing = "/nonexistent-dir/zl-train-data.bin";
    ck_assert_int_eq(zl_dataset_load(&ds, missing), ZL_ERR_IO);
    ASSERT_MSG_HAS(missing);
    ASSERT_MSG_HAS(strerror(ENOENT));
    ck_assert_ptr_null(ds.tokens);

    char path[64];
    ck_assert_int_eq(load_bytes(&ds, "", 0, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS(path);
    ASSERT_MSG_HAS("empty");

    ck_assert_int_eq(zl_dataset_load(&ds, "/"), ZL_ERR_IO);
    ASSERT_MSG_HAS("not a regular file");
}
END_TEST

/* A FIFO blocked open() until a writer came (forever, under --data); devices and
 * directories are refused as well, each by what it is. alarm() fails the test (SIGALRM
 * kills it) instead of hanging the suite if open blocks again. */
START_TEST(test_data_fifo_device_directory_refused_without_blocking)
{
    const char *dir = getenv("TMPDIR");
    char fifo[96];
    snprintf(fifo, sizeof fifo, "%s/zl_data_fifo_%ld", dir && strlen(dir) < 40 ? dir : "/tmp",
             (long)getpid());
    unlink(fifo);
    ck_assert_msg(mkfifo(fifo, 0600) == 0, "mkfifo(%s): %s", fifo, strerror(errno));
    zl_dataset ds;
    alarm(10);
    zl_status st = zl_dataset_load(&ds, fifo);
    alarm(0);
    unlink(fifo);
    ck_assert_int_eq(st, ZL_ERR_IO);
    ASSERT_MSG_HAS(fifo);
    ASSERT_MSG_HAS("is a FIFO");
    ASSERT_MSG_HAS("hint:");
    ck_assert_ptr_null(ds.tokens);

    alarm(10);
    st = zl_dataset_load(&ds, "/dev/null");
    alarm(0);
    ck_assert_int_eq(st, ZL_ERR_IO);
    ASSERT_MSG_HAS("is a character device");
    ck_assert_int_eq(zl_dataset_load(&ds, "/"), ZL_ERR_IO);
    ASSERT_MSG_HAS("is a directory");
}
END_TEST

/* A token id of 2^31 - 1 needs a vocabulary of 2^31, one past INT_MAX: refused, where
 * `max_id + 1` overflowed int before (UBSan: signed overflow at dataset.c). */
START_TEST(test_data_shard_id_int32_max_refused)
{
    uint32_t tok[] = {1, 0x7fffffffu, 2};
    size_t nbytes;
    unsigned char *shard = make_shard(20240801, 7, 3, tok, 3, 4, &nbytes);
    char path[64];
    zl_dataset ds;
    ck_assert_int_eq(load_bytes(&ds, shard, nbytes, path), ZL_ERR_FORMAT);
    ASSERT_MSG_HAS("2147483647");
    ck_assert_ptr_null(ds.tokens);
    free(shard);
}
END_TEST

/* ---- the built-in corpus -------------------------------------------------------------- */

/* Printable ASCII and '\n' mapped to 0..95 (anything else: -1). */
static int char_class(int c)
{
    if (c == '\n') return 95;
    return c >= 32 && c < 127 ? c - 32 : -1;
}

START_TEST(test_data_default_corpus_deterministic_text)
{
    zl_dataset a, b;
    ck_assert_int_eq(zl_dataset_default(&a), ZL_OK);
    ck_assert_int_eq(zl_dataset_default(&b), ZL_OK);
    ck_assert_uint_eq(a.ntokens, b.ntokens);
    ck_assert(memcmp(a.tokens, b.tokens, a.ntokens * sizeof(int32_t)) == 0);
    ck_assert_int_eq(a.vocab_size, 256);
    ck_assert_uint_ge(a.ntokens, 200000);
    ck_assert_uint_le(a.ntokens, 500000);
    for (size_t i = 0; i < a.ntokens; i++)
        ck_assert_msg(char_class(a.tokens[i]) >= 0, "byte %d at %zu", a.tokens[i], i);
    /* Sentences: starts with a capital letter, ends at a line end. */
    ck_assert(a.tokens[0] >= 'A' && a.tokens[0] <= 'Z');
    ck_assert_int_eq(a.tokens[a.ntokens - 1], '\n');
    zl_dataset_free(&b);
    zl_dataset_free(&a);
}
END_TEST

/* Learnable: a small vocabulary of words that repeat, and far less than ln(256) nats per
 * byte given the two previous bytes (the conditional entropy is computed here from counts,
 * an independent measure of what a small model can reach). */
START_TEST(test_data_default_corpus_is_learnable)
{
    zl_dataset ds;
    ck_assert_int_eq(zl_dataset_default(&ds), ZL_OK);

    /* Words: maximal runs of letters. Count distinct ones and the most frequent one. */
    enum { MAXW = 4096 };
    static char words[MAXW][24];
    static int counts[MAXW];
    int nwords = 0, total = 0;
    char w[24];
    int wl = 0;
    for (size_t i = 0; i <= ds.ntokens; i++) {
        int c = i < ds.ntokens ? ds.tokens[i] : ' ';
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            ck_assert_int_lt(wl, 23);
            w[wl++] = (char)(c | 0x20); /* lower case */
            continue;
        }
        if (!wl) continue;
        w[wl] = '\0';
        wl = 0;
        total++;
        int k = 0;
        while (k < nwords && strcmp(words[k], w)) k++;
        if (k == nwords) {
            ck_assert_int_lt(nwords, MAXW);
            strcpy(words[nwords++], w);
        }
        counts[k]++;
    }
    int top = 0;
    for (int k = 0; k < nwords; k++) top = counts[k] > counts[top] ? k : top;
    ck_assert_int_ge(total, 30000);
    ck_assert_int_le(nwords, 1000); /* a few dozen per word class */
    ck_assert_str_eq(words[top], "the");
    ck_assert_int_ge(counts[top], total / 20);

    /* H(x_i | x_{i-2}, x_{i-1}) and H(x_i) in nats, from counts over 96 symbols. */
    const int K = 96;
    int *ctx3 = calloc((size_t)K * K * K, sizeof(int));
    int *ctx2 = calloc((size_t)K * K, sizeof(int));
    int uni[96] = {0};
    for (size_t i = 0; i < ds.ntokens; i++) uni[char_class(ds.tokens[i])]++;
    for (size_t i = 2; i < ds.ntokens; i++) {
        int a = char_class(ds.tokens[i - 2]), b = char_class(ds.tokens[i - 1]);
        int c = char_class(ds.tokens[i]);
        ctx3[(a * K + b) * K + c]++;
        ctx2[a * K + b]++;
    }
    double h0 = 0, h2 = 0;
    for (int c = 0; c < K; c++)
        if (uni[c]) h0 -= uni[c] * log((double)uni[c] / ds.ntokens);
    h0 /= ds.ntokens;
    for (int ab = 0; ab < K * K; ab++)
        for (int c = 0; c < K; c++) {
            int n = ctx3[ab * K + c];
            if (n) h2 -= n * log((double)n / ctx2[ab]);
        }
    h2 /= (double)(ds.ntokens - 2);
    /* Rich enough to be worth learning, structured enough to learn: ln 256 = 5.55. */
    ck_assert_msg(h0 > 2.5 && h0 < 3.5, "unigram entropy %.3f nats", h0);
    ck_assert_msg(h2 < 1.5, "entropy given two bytes %.3f nats", h2);
    free(ctx3);
    free(ctx2);
    zl_dataset_free(&ds);
}
END_TEST

/* ---- the loader ----------------------------------------------------------------------- */

START_TEST(test_data_loader_targets_are_inputs_shifted)
{
    zl_dataset ds;
    iota_dataset(&ds, 1000);
    zl_loader l;
    const int B = 3, T = 5;
    ck_assert_int_eq(zl_loader_init(&l, &ds, B, T, 0, 1), ZL_OK);
    int32_t in[15], tg[15];
    for (int call = 0; call < 4; call++) {
        zl_loader_next(&l, in, tg);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int32_t want = call * B * T + b * T + t; /* token i is i */
                ck_assert_int_eq(in[b * T + t], want);
                ck_assert_int_eq(tg[b * T + t], want + 1);
            }
        ck_assert_uint_eq(zl_loader_position(&l), (size_t)(call + 1) * B * T);
    }
    zl_dataset_free(&ds);
}
END_TEST

START_TEST(test_data_loader_wraps_before_running_past_the_end)
{
    const int B = 2, T = 4, BT = 8;
    /* With N tokens, an epoch holds floor((N - 1) / BT) batches (each needs BT + 1). */
    size_t sizes[] = {17, 16, 20, 9, 25};
    for (int s = 0; s < 5; s++) {
        size_t N = sizes[s], per_epoch = (N - 1) / BT;
        zl_dataset ds;
        iota_dataset(&ds, N);
        zl_loader l;
        ck_assert_int_eq(zl_loader_init(&l, &ds, B, T, 0, 1), ZL_OK);
        int32_t in[8], tg[8];
        for (size_t call = 0; call < 3 * per_epoch + 1; call++) {
            zl_loader_next(&l, in, tg);
            size_t start = (call % per_epoch) * BT;
            ck_assert_int_eq(in[0], (int32_t)start);
            ck_assert_int_eq(tg[BT - 1], (int32_t)(start + BT)); /* never past the end */
            ck_assert_int_lt(tg[BT - 1], (int32_t)N);
            ck_assert_uint_eq(zl_loader_epoch(&l), call / per_epoch);
        }
        zl_dataset_free(&ds);
    }
}
END_TEST

/* W ranks with micro-batch B see exactly what one rank with W*B sees, through wraps. */
static void check_dp_equivalence(int W)
{
    const int B = 2, T = 3;
    size_t global = (size_t)W * B * T;
    zl_dataset ds;
    iota_dataset(&ds, 4 * global + 5); /* wraps after 4 global batches */
    zl_loader one, ranks[3];
    ck_assert_int_eq(zl_loader_init(&one, &ds, W * B, T, 0, 1), ZL_OK);
    for (int r = 0; r < W; r++) ck_assert_int_eq(zl_loader_init(&ranks[r], &ds, B, T, r, W), ZL_OK);
    int32_t in1[18], tg1[18], inr[18], tgr[18];
    for (int call = 0; call < 10; call++) {
        zl_loader_next(&one, in1, tg1);
        for (int r = 0; r < W; r++) {
            zl_loader_next(&ranks[r], inr + r * B * T, tgr + r * B * T);
            ck_assert_uint_eq(zl_loader_position(&ranks[r]), zl_loader_position(&one));
            ck_assert_uint_eq(zl_loader_epoch(&ranks[r]), zl_loader_epoch(&one));
        }
        ck_assert(memcmp(in1, inr, global * sizeof(int32_t)) == 0);
        ck_assert(memcmp(tg1, tgr, global * sizeof(int32_t)) == 0);
        ck_assert_int_eq(in1[0], (int32_t)((call % 4) * global));
    }
    ck_assert_uint_eq(zl_loader_epoch(&one), 2);
    zl_dataset_free(&ds);
}

START_TEST(test_data_loader_dp_equals_single_rank_w2) { check_dp_equivalence(2); }
END_TEST

START_TEST(test_data_loader_dp_equals_single_rank_w3) { check_dp_equivalence(3); }
END_TEST

START_TEST(test_data_loader_too_small_dataset)
{
    zl_dataset ds;
    zl_loader l;
    /* World 2 x B 4 x T 8 = 64 tokens per global batch, plus one target: 65 needed. */
    iota_dataset(&ds, 64);
    zl_error_clear();
    ck_assert_int_eq(zl_loader_init(&l, &ds, 4, 8, 1, 2), ZL_ERR_INVALID);
    ASSERT_MSG_HAS("iota(64)");
    ASSERT_MSG_HAS("has 64 tokens");
    ASSERT_MSG_HAS("needs 65");
    ASSERT_MSG_HAS("micro-batch 4");
    ASSERT_MSG_HAS("sequence 8");
    ASSERT_MSG_HAS("hint: use a smaller micro-batch or sequence length, or more data");
    zl_dataset_free(&ds);
    iota_dataset(&ds, 65);
    ck_assert_int_eq(zl_loader_init(&l, &ds, 4, 8, 1, 2), ZL_OK);
    int32_t in[32], tg[32];
    zl_loader_next(&l, in, tg);
    ck_assert_int_eq(in[0], 32);
    ck_assert_int_eq(tg[31], 64);
    /* Bad sizes and ranks. */
    ck_assert_int_eq(zl_loader_init(&l, &ds, 0, 8, 0, 1), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_loader_init(&l, &ds, 1, -1, 0, 1), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_loader_init(&l, &ds, 1, 1, 2, 2), ZL_ERR_INVALID);
    ASSERT_MSG_HAS("rank 2");
    zl_dataset_free(&ds);
}
END_TEST

/* 2^20 ranks x 2^22 x 2^22 tokens is 2^64: it wrapped to 0 and passed the size check. */
START_TEST(test_data_loader_global_batch_overflow_refused)
{
    zl_dataset ds;
    iota_dataset(&ds, 100);
    zl_loader l;
    zl_error_clear();
    ck_assert_int_eq(zl_loader_init(&l, &ds, 1 << 22, 1 << 22, 0, 1 << 20), ZL_ERR_INVALID);
    ASSERT_MSG_HAS("more than 2^64 tokens");
    ck_assert_int_eq(zl_loader_init(&l, &ds, 1 << 22, 1 << 22, 0, 1 << 19), ZL_ERR_INVALID);
    ASSERT_MSG_HAS("needs 9223372036854775809"); /* 2^63 + 1 */
    zl_dataset_free(&ds);
}
END_TEST

START_TEST(test_data_loader_reset_and_seek_resume)
{
    zl_dataset ds;
    iota_dataset(&ds, 100);
    zl_loader a, b;
    ck_assert_int_eq(zl_loader_init(&a, &ds, 2, 7, 0, 1), ZL_OK); /* 14 per batch, 7 per epoch */
    int32_t in[14], tg[14], in2[14], tg2[14];
    for (int i = 0; i < 9; i++) zl_loader_next(&a, in, tg);
    ck_assert_uint_eq(zl_loader_epoch(&a), 1);
    ck_assert_uint_eq(zl_loader_position(&a), 2 * 14);
    /* A second loader resumed from a's state continues identically. */
    ck_assert_int_eq(zl_loader_init(&b, &ds, 2, 7, 0, 1), ZL_OK);
    ck_assert_int_eq(zl_loader_seek(&b, zl_loader_position(&a), zl_loader_epoch(&a)), ZL_OK);
    for (int i = 0; i < 8; i++) {
        zl_loader_next(&a, in, tg);
        zl_loader_next(&b, in2, tg2);
        ck_assert(memcmp(in, in2, sizeof in) == 0 && memcmp(tg, tg2, sizeof tg) == 0);
        ck_assert_uint_eq(zl_loader_epoch(&a), zl_loader_epoch(&b));
    }
    zl_loader_reset(&a);
    ck_assert_uint_eq(zl_loader_position(&a), 0);
    ck_assert_uint_eq(zl_loader_epoch(&a), 0);
    zl_loader_next(&a, in, tg);
    ck_assert_int_eq(in[0], 0);
    ck_assert_int_eq(zl_loader_seek(&a, 100, 0), ZL_ERR_INVALID);
    ASSERT_MSG_HAS("position 100");
    zl_dataset_free(&ds);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_add_test(tc, test_data_text_file_is_bytes);
    tcase_add_test(tc, test_data_gpt2_shard_tokens_and_vocab);
    tcase_add_test(tc, test_data_llama3_shard_uint32);
    tcase_add_test(tc, test_data_shard_id_int32_max_refused);
    tcase_add_test(tc, test_data_shard_size_mismatch_names_both_sizes);
    tcase_add_test(tc, test_data_shard_bad_version);
    tcase_add_test(tc, test_data_missing_and_empty_files);
    tcase_add_test(tc, test_data_fifo_device_directory_refused_without_blocking);
    tcase_add_test(tc, test_data_default_corpus_deterministic_text);
    tcase_add_test(tc, test_data_default_corpus_is_learnable);
    tcase_add_test(tc, test_data_loader_targets_are_inputs_shifted);
    tcase_add_test(tc, test_data_loader_wraps_before_running_past_the_end);
    tcase_add_test(tc, test_data_loader_dp_equals_single_rank_w2);
    tcase_add_test(tc, test_data_loader_dp_equals_single_rank_w3);
    tcase_add_test(tc, test_data_loader_too_small_dataset);
    tcase_add_test(tc, test_data_loader_reset_and_seek_resume);
    tcase_add_test(tc, test_data_loader_global_batch_overflow_refused);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(data_suite)
