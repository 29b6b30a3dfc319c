/* Corrupted checkpoints are refused, with a message naming the file (issue 14: "1,000
 * random corruptions of checkpoint files (truncation, flipped bytes, edited JSON) are each
 * refused with a message, none crashes").
 *
 * A small run (the "lab" model) saves one checkpoint; then each trial corrupts ONE file of
 * it (any file of the tag, or `latest`) in one of these ways, starting from the pristine
 * bytes every time:
 *   truncate   to a random length in [0, length)
 *   flip       one random bit of one random byte
 *   overwrite  one random byte with a random different value
 *   digit      (JSON) one digit of a number (outside strings) to another digit
 *   delete     (JSON) one random line removed
 *   duplicate  (JSON) one random line written twice
 * and the run's load must fail with a message that names the corrupted file (its name
 * without the extension, which both files of a pair share, or `latest`). The one
 * corruption that is not one: `latest` is read as its first line with whitespace trimmed
 * (DeepSpeed writes it without a newline, ckpt_layout.h), so a `latest` that still says the
 * same tag must load. After the trials the pristine files load, and give the saved weights
 * bit for bit, so the test cannot pass by refusing everything.
 *
 * Two checkpoints are fuzzed: ZeRO stage 0 in fp32 (the module's weights are the master
 * weights, so the loader need not read the model states' tensors at all) and ZeRO stage 2
 * in bf16 (bf16_ optimizer shard, 16-bit module, fp32 masters). ZL_FUZZ_SEED and
 * ZL_FUZZ_TRIALS override the seed and the count (default: 1000 trials each). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"
#include "check_util.h"
#include "run/run.h"

#define MAX_FILES 16

typedef struct pristine {
    char path[4096];
    char stem[256]; /* what a message must name: the file name without its extension */
    bool json, latest;
    unsigned char *bytes;
    size_t nbytes;
} pristine;

static uint64_t rng_state;
static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert(b && fread(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert(fwrite(b, 1, n, f) == n);
    ck_assert_int_eq(fclose(f), 0);
}

static void add_file(pristine *p, int *n, const char *dir, const char *name)
{
    ck_assert_int_lt(*n, MAX_FILES);
    pristine *f = &p[(*n)++];
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    snprintf(f->stem, sizeof f->stem, "%s", name);
    char *dot = strchr(f->stem, '.');
    if (dot) *dot = '\0';
    size_t len = strlen(name);
    f->json = len > 5 && !strcmp(name + len - 5, ".json");
    f->latest = !strcmp(name, "latest");
    f->bytes = slurp(f->path, &f->nbytes);
}

/* What `latest` says, by ckpt_layout.h's rule: its first line (up to a NUL, CR or LF),
 * whitespace trimmed. */
static void latest_says(const unsigned char *b, size_t n, char *out, size_t len)
{
    char s[512];
    n = n < sizeof s - 1 ? n : sizeof s - 1;
    memcpy(s, b, n);
    s[n] = '\0';
    char *a = s;
    while (*a == ' ' || (*a >= '\t' && *a <= '\r')) a++;
    char *e = a + strcspn(a, "\r\n");
    while (e > a && (e[-1] == ' ' || (e[-1] >= '\t' && e[-1] <= '\r'))) e--;
    *e = '\0';
    snprintf(out, len, "%s", a);
}

enum { TRUNCATE, FLIP, OVERWRITE, DIGIT, DELETE_LINE, DUP_LINE, NUM_KINDS };
static const char *const kind_name[NUM_KINDS] = {"truncate", "flip", "overwrite",
                                                 "digit", "delete-line", "duplicate-line"};

/* One corruption of f's pristine bytes into out (capacity 2 * nbytes + 1); its length. */
static size_t corrupt(const pristine *f, int kind, unsigned char *out, char *what, size_t wlen)
{
    const unsigned char *b = f->bytes;
    size_t n = f->nbytes;
    memcpy(out, b, n);
    if (kind == DIGIT) {
        /* The digits of numbers: outside strings (not hashes, names, tags). */
        size_t count = 0;
        bool in_str = false;
        for (size_t i = 0; i < n; i++) {
            if (in_str) {
                if (b[i] == '\\') i++;
                else if (b[i] == '"') in_str = false;
            } else if (b[i] == '"') {
                in_str = true;
            } else if (b[i] >= '0' && b[i] <= '9') {
                count++;
            }
        }
        ck_assert_msg(count > 0, "%s has no number", f->path);
        size_t pick = below(count), i = 0;
        in_str = false;
        for (;; i++) {
            if (in_str) {
                if (b[i] == '\\') i++;
                else if (b[i] == '"') in_str = false;
            } else if (b[i] == '"') {
                in_str = true;
            } else if (b[i] >= '0' && b[i] <= '9' && pick-- == 0) {
                break;
            }
        }
        out[i] = (unsigned char)('0' + (b[i] - '0' + 1 + below(9)) % 10);
        snprintf(what, wlen, "digit at %zu: '%c' -> '%c'", i, b[i], out[i]);
        return n;
    }
    if (kind == DELETE_LINE || kind == DUP_LINE) {
        size_t lines = 0; /* lines end with '\n'; a last one without it counts too */
        for (size_t i = 0; i < n; i++) lines += b[i] == '\n' || i == n - 1;
        size_t pick = below(lines), start = 0, line = 0;
        while (line < pick) line += b[start++] == '\n';
        size_t end = start;
        while (end < n && b[end] != '\n') end++;
        if (end < n) end++; /* with its newline */
        if (kind == DELETE_LINE) {
            memcpy(out + start, b + end, n - end);
            snprintf(what, wlen, "line %zu deleted (bytes %zu..%zu)", pick + 1, start, end);
            return n - (end - start);
        }
        memcpy(out + end, b + start, end - start);
        memcpy(out + 2 * end - start, b + end, n - end);
        snprintf(what, wlen, "line %zu duplicated (bytes %zu..%zu)", pick + 1, start, end);
        return n + (end - start);
    }
    if (kind == TRUNCATE) {
        size_t len = below(n);
        snprintf(what, wlen, "truncated to %zu of %zu bytes", len, n);
        return len;
    }
    size_t at = below(n);
    if (kind == FLIP) out[at] ^= (unsigned char)(1u << below(8));
    else out[at] = (unsigned char)(b[at] + 1 + below(255));
    snprintf(what, wlen, "byte %zu: 0x%02x -> 0x%02x", at, b[at], out[at]);
    return n;
}

static void fuzz_checkpoint(const char *config, const char *label)
{
    const char *env_seed = getenv("ZL_FUZZ_SEED"), *env_trials = getenv("ZL_FUZZ_TRIALS");
    uint64_t seed = env_seed ? strtoull(env_seed, NULL, 0) : 20240614u;
    int trials = env_trials ? atoi(env_trials) : 1000;
    rng_state = seed ? seed : 1;
    fprintf(stderr, "  %s: seed %" PRIu64 " (ZL_FUZZ_SEED), %d trials\n", label, seed, trials);

    char dir[] = "/tmp/zl_ckpt_fuzz_XXXXXX";
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    zl_run run;
    zl_test_run_open(&run, config, NULL, NULL, NULL);
    float loss;
    for (int s = 0; s < 3; s++) ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    ck_assert_msg(zl_run_save(&run, dir, NULL) == ZL_OK, "%s", zl_last_error());
    size_t numel = zl_engine_model(run.engine)->params_numel;
    float *saved = malloc(numel * sizeof *saved), *now = malloc(numel * sizeof *now);
    ck_assert(saved && now);
    ck_assert_int_eq(zl_engine_gather_params(run.engine, saved), ZL_OK);
    ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK); /* the engine moves on from the save */

    /* The files: `latest` and every file of the tag. */
    pristine files[MAX_FILES];
    int nfiles = 0;
    add_file(files, &nfiles, dir, "latest");
    char tag_dir[4096];
    snprintf(tag_dir, sizeof tag_dir, "%s/global_step3", dir);
    DIR *d = opendir(tag_dir);
    ck_assert_msg(d != NULL, "%s: %s", tag_dir, strerror(errno));
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.') add_file(files, &nfiles, tag_dir, de->d_name);
    closedir(d);
    ck_assert_int_eq(nfiles, 5); /* latest, model states and one optimizer shard, in pairs */
    char tag[512];
    latest_says(files[0].bytes, files[0].nbytes, tag, sizeof tag);
    ck_assert_str_eq(tag, "global_step3");

    int refused[NUM_KINDS] = {0}, same_latest = 0, per_file[MAX_FILES] = {0};
    for (int t = 0; t < trials; t++) {
        int fi = (int)below((size_t)nfiles);
        const pristine *f = &files[fi];
        int kind = (int)below(f->json ? NUM_KINDS : DIGIT);
        unsigned char *buf = malloc(2 * f->nbytes + 1);
        ck_assert(buf);
        char what[128];
        size_t n = corrupt(f, kind, buf, what, sizeof what);
        spill(f->path, buf, n);
        zl_status st = zl_run_load(&run, dir, NULL, NULL);
        const char *msg = zl_last_error();
        char says[512] = "";
        if (f->latest) latest_says(buf, n, says, sizeof says);
        free(buf);
        per_file[fi]++;
        if (f->latest && !strcmp(says, tag)) {
            /* The same tag, spelt with other whitespace: not a corruption. */
            ck_assert_msg(st == ZL_OK, "trial %d: latest %s still says \"%s\", yet: %s", t, what,
                          tag, msg);
            same_latest++;
        } else {
            ck_assert_msg(st != ZL_OK, "trial %d (seed %" PRIu64 "): %s %s (%s) was loaded", t,
                          seed, f->path, what, kind_name[kind]);
            ck_assert_msg(msg && msg[0], "trial %d: %s %s: refused without a message", t, f->path,
                          what);
            ck_assert_msg(strstr(msg, f->stem), "trial %d (seed %" PRIu64 "): %s %s: the message "
                          "does not name \"%s\": %s", t, seed, f->path, what, f->stem, msg);
            refused[kind]++;
        }
        spill(f->path, f->bytes, f->nbytes);
    }
    fprintf(stderr, "  %s: refused", label);
    for (int k = 0; k < NUM_KINDS; k++) fprintf(stderr, " %s %d,", kind_name[k], refused[k]);
    fprintf(stderr, " latest still naming the tag %d (loaded); per file:", same_latest);
    for (int i = 0; i < nfiles; i++)
        fprintf(stderr, " %s %d", strrchr(files[i].path, '/') + 1, per_file[i]);
    fprintf(stderr, "\n");

    /* The pristine files load, and give back the saved weights bit for bit. */
    ck_assert_msg(zl_run_load(&run, dir, NULL, NULL) == ZL_OK, "%s", zl_last_error());
    ck_assert_int_eq(zl_engine_global_steps(run.engine), 3);
    ck_assert_int_eq(zl_engine_gather_params(run.engine, now), ZL_OK);
    size_t first;
    ck_assert_msg(zl_test_bits_differ(now, saved, numel, &first) == 0,
                  "the pristine checkpoint loads other weights (first at %zu)", first);

    for (int i = 0; i < nfiles; i++) {
        unlink(files[i].path);
        free(files[i].bytes);
    }
    rmdir(tag_dir);
    rmdir(dir);
    free(saved);
    free(now);
    zl_run_free(&run);
}

START_TEST(test_fuzz_stage0_fp32)
{
    fuzz_checkpoint("{\"train_micro_batch_size_per_gpu\": 2, \"zero_optimization\": {\"stage\": 0},"
                    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}}}",
                    "stage 0 fp32");
}
END_TEST

START_TEST(test_fuzz_stage2_bf16)
{
    fuzz_checkpoint("{\"train_micro_batch_size_per_gpu\": 2, \"zero_optimization\": {\"stage\": 2},"
                    " \"bf16\": {\"enabled\": true},"
                    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}}}",
                    "stage 2 bf16");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ckpt_fuzz");
    TCase *tc = tcase_create("ckpt_fuzz");
    tcase_add_test(tc, test_fuzz_stage0_fp32);
    tcase_add_test(tc, test_fuzz_stage2_bf16);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(suite)
