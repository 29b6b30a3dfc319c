/* Pipeline partitioning (src/pipe/partition.c): DeepSpeed's partition_uniform and
 * partition_balanced on the reference's vectors and on a table of DeepSpeed's own results,
 * properties over random weights with a brute-force oracle, the methods over the lab model
 * and gpt2-124m, the rank-0 listing, and every refusal.
 *
 * The expected boundaries of the tables below were computed by DeepSpeed's own
 * partition_uniform / partition_balanced (deepspeed/runtime/utils.py at commit edaa722,
 * its source run as is over a small numpy stand-in), not by zerolab. */
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "model/gpt_config.h"
#include "pipe/partition.h"

static void assert_bounds(const char *what, const int *got, const int *want, int parts)
{
    for (int p = 0; p <= parts; p++) {
        if (got[p] != want[p]) {
            char g[256] = "", w[256] = "", one[16];
            for (int q = 0; q <= parts; q++) {
                snprintf(one, sizeof one, "%d ", got[q]);
                strcat(g, one);
                snprintf(one, sizeof one, "%d ", want[q]);
                strcat(w, one);
            }
            ck_abort_msg("%s: got %s, want %s", what, g, w);
        }
    }
}

static void balanced(const int64_t *w, int n, int m, int *bounds)
{
    ck_assert_int_eq(zl_partition_balanced(w, n, m, bounds), ZL_OK);
}

/* The reference's vectors (deepspeed-behaviour.md 3.1); DeepSpeed's source agrees. */
START_TEST(test_deepspeed_vectors)
{
    int b[16];
    zl_partition_uniform(10, 4, b);
    assert_bounds("uniform(10,4)", b, (int[]){0, 3, 6, 8, 10}, 4);
    zl_partition_uniform(3, 4, b);
    assert_bounds("uniform(3,4)", b, (int[]){0, 1, 2, 3, 3}, 4);

    balanced((int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, 8, 4, b);
    assert_bounds("balanced([1]*8,4)", b, (int[]){0, 2, 4, 6, 8}, 4);
    balanced((int64_t[]){0, 10, 10, 10, 10, 0}, 6, 2, b);
    assert_bounds("balanced([0,10,10,10,10,0],2)", b, (int[]){0, 3, 6}, 2);
    balanced((int64_t[]){5, 1, 1, 1, 1, 5}, 6, 3, b);
    assert_bounds("balanced([5,1,1,1,1,5],3)", b, (int[]){0, 1, 5, 6}, 3);
    balanced((int64_t[]){0, 1, 1, 1, 1, 1, 1, 0}, 8, 3, b);
    assert_bounds("balanced([0,1,1,1,1,1,1,0],3)", b, (int[]){0, 3, 5, 8}, 3);
    /* a tie (0 1 2 4 and 0 2 3 4 both have spread 1): DeepSpeed keeps the later cut */
    balanced((int64_t[]){0, 1, 1, 0}, 4, 3, b);
    assert_bounds("balanced([0,1,1,0],3)", b, (int[]){0, 2, 3, 4}, 3);
    /* as many parts as items or more: uniform, empty parts last */
    balanced((int64_t[]){7, 9}, 2, 3, b);
    assert_bounds("balanced([7,9],3)", b, (int[]){0, 1, 2, 2}, 3);
    balanced(NULL, 0, 2, b);
    assert_bounds("balanced([],2)", b, (int[]){0, 0, 0}, 2);
    zl_partition_uniform(0, 1, b);
    assert_bounds("uniform(0,1)", b, (int[]){0, 0}, 1);
}
END_TEST

/* The smallest spread (max part - min part) over every cut into m non-empty parts. */
static int64_t brute_spread(const int64_t *w, int n, int m)
{
    int cut[16], b[17];
    for (int i = 0; i < m - 1; i++) cut[i] = i + 1; /* first combination of m-1 of 1..n-1 */
    int64_t best = INT64_MAX;
    for (;;) {
        b[0] = 0, b[m] = n;
        for (int i = 0; i < m - 1; i++) b[i + 1] = cut[i];
        int64_t s = zl_partition_spread(w, m, b);
        if (s < best) best = s;
        int i = m - 2;
        while (i >= 0 && cut[i] == n - 1 - (m - 2 - i)) i--;
        if (i < 0) break;
        cut[i]++;
        for (int k = i + 1; k < m - 1; k++) cut[k] = cut[k - 1] + 1;
    }
    return best;
}

/* DeepSpeed's results on random weights into 3 to 6 parts, with the smallest spread found
 * by brute force: the first 20 are optimal, the last 4 are inputs where DeepSpeed's
 * programme keeps a cut that is not (partition.h), and zerolab must give DeepSpeed's cut. */
typedef struct ds_case {
    int n, m;
    int64_t w[10];
    int bounds[8];
    int64_t optimum;
} ds_case;
static const ds_case ds_cases[] = {
    {4, 3, {16, 16, 20, 3}, {0, 1, 2, 4}, 7},
    {5, 4, {18, 17, 15, 18, 14}, {0, 1, 2, 3, 5}, 17},
    {5, 3, {19, 2, 3, 9, 3}, {0, 1, 3, 5}, 14},
    {7, 3, {15, 10, 6, 12, 8, 11, 11}, {0, 2, 5, 7}, 4},
    {7, 3, {10, 2, 17, 17, 9, 9, 14}, {0, 3, 5, 7}, 6},
    {5, 4, {0, 11, 11, 14, 13}, {0, 2, 3, 4, 5}, 3},
    {4, 3, {18, 17, 15, 3}, {0, 1, 2, 4}, 1},
    {7, 6, {12, 16, 8, 13, 18, 15, 16}, {0, 1, 2, 4, 5, 6, 7}, 9},
    {8, 3, {18, 7, 4, 1, 16, 3, 19, 13}, {0, 2, 6, 8}, 8},
    {7, 4, {15, 7, 3, 20, 14, 15, 17}, {0, 2, 4, 6, 7}, 12},
    {6, 5, {12, 9, 17, 20, 16, 15}, {0, 2, 3, 4, 5, 6}, 6},
    {7, 6, {6, 9, 8, 0, 1, 4, 20}, {0, 1, 2, 4, 5, 6, 7}, 19},
    {8, 6, {16, 15, 11, 6, 8, 15, 14, 16}, {0, 1, 2, 4, 6, 7, 8}, 9},
    {7, 6, {17, 1, 9, 10, 14, 3, 14}, {0, 1, 3, 4, 5, 6, 7}, 14},
    {9, 5, {14, 5, 13, 15, 2, 20, 8, 15, 11}, {0, 1, 3, 5, 7, 9}, 14},
    {4, 3, {13, 4, 14, 0}, {0, 1, 2, 4}, 10},
    {4, 3, {14, 18, 17, 2}, {0, 1, 2, 4}, 5},
    {8, 4, {7, 3, 19, 1, 17, 8, 20, 11}, {0, 3, 6, 7, 8}, 18},
    {5, 3, {10, 18, 18, 15, 4}, {0, 2, 3, 5}, 10},
    {8, 4, {15, 18, 4, 19, 16, 9, 2, 13}, {0, 2, 4, 5, 8}, 17},
    /* DeepSpeed's cut is not the smallest spread: */
    {9, 6, {14, 8, 10, 6, 15, 1, 17, 13, 15}, {0, 2, 4, 6, 7, 8, 9}, 8},
    {7, 5, {2, 2, 2, 6, 1, 14, 3}, {0, 3, 4, 5, 6, 7}, 12},
    {5, 4, {2, 3, 12, 1, 15}, {0, 2, 3, 4, 5}, 13},
    {8, 4, {1, 3, 18, 3, 18, 10, 19, 19}, {0, 3, 5, 7, 8}, 9},
    {6, 5, {3, 2, 5, 6, 1, 8}, {0, 2, 3, 4, 5, 6}, 6}, /* the one partition.h names */
};

START_TEST(test_deepspeed_table)
{
    const int count = (int)(sizeof ds_cases / sizeof *ds_cases);
    int misses = 0;
    for (int c = 0; c < count; c++) {
        const ds_case *k = &ds_cases[c];
        int b[8];
        char what[32];
        snprintf(what, sizeof what, "DeepSpeed case %d", c);
        balanced(k->w, k->n, k->m, b);
        assert_bounds(what, b, k->bounds, k->m);
        /* the oracle's optimum is right, and DeepSpeed's spread is never below it */
        ck_assert_int_eq(brute_spread(k->w, k->n, k->m), k->optimum);
        int64_t s = zl_partition_spread(k->w, k->m, b);
        ck_assert_int_ge(s, k->optimum);
        misses += s > k->optimum;
    }
    ck_assert_int_eq(misses, 5); /* the last five, as listed */
}
END_TEST

/* Properties over random weights: the boundaries run from 0 to n without going back; the
 * uniform parts differ by at most one, larger first; a balanced cut of more items than
 * parts leaves no part empty; with one or two parts the balanced cut has the smallest
 * spread of all cuts (brute force), and never a smaller one than brute force allows. */
START_TEST(test_random_properties)
{
    int checked_optimal = 0;
    for (int t = 0; t < 3000; t++) {
        uint64_t r = zl_rng_bits(42, 0, (uint64_t)t);
        int n = (int)(r % 11);             /* 0..10 items */
        int m = 1 + (int)((r >> 8) % 7);   /* 1..7 parts */
        int64_t w[10];
        int64_t scale = (r >> 16) % 3 == 0 ? 3 : ((r >> 16) % 3 == 1 ? 1000 : INT64_C(1) << 40);
        for (int i = 0; i < n; i++)
            w[i] = (int64_t)(zl_rng_bits(42, 1 + (uint64_t)i, (uint64_t)t) % (uint64_t)scale);
        int u[8], b[8];
        zl_partition_uniform(n, m, u);
        balanced(w, n, m, b);
        ck_assert_int_eq(u[0], 0);
        ck_assert_int_eq(u[m], n);
        ck_assert_int_eq(b[0], 0);
        ck_assert_int_eq(b[m], n);
        for (int p = 0; p < m; p++) {
            ck_assert_int_le(u[p], u[p + 1]);
            ck_assert_int_le(b[p], b[p + 1]);
            if (n > m) ck_assert_int_lt(b[p], b[p + 1]);
            int size = u[p + 1] - u[p];
            ck_assert_int_le(size, n / m + 1);
            if (n >= m) ck_assert_int_ge(size, n / m);
            if (p > 0) ck_assert_int_le(size, u[p] - u[p - 1]); /* larger parts first */
        }
        if (n > m) {
            int64_t best = brute_spread(w, n, m), s = zl_partition_spread(w, m, b);
            ck_assert_int_ge(s, best);
            if (m <= 2) {
                ck_assert_msg(s == best, "t=%d n=%d m=%d: spread %lld, brute force %lld", t,
                              n, m, (long long)s, (long long)best);
                checked_optimal++;
            }
        }
    }
    ck_assert_int_gt(checked_optimal, 300);
}
END_TEST

typedef struct fixture {
    zl_device dev;
    zl_model m;
} fixture;

static void open_model(fixture *f, const char *preset)
{
    zl_gpt_config cfg;
    ck_assert_int_eq(zl_gpt_config_preset(preset, &cfg), ZL_OK);
    ck_assert_int_eq(zl_device_init(&f->dev, ZL_DEVICE_ACCEL, "meta", "test", 0), ZL_OK);
    ck_assert_int_eq(zl_model_create(&f->m, &cfg, &f->dev), ZL_OK);
}

static void partition_ok(const zl_model *m, const char *method, int stages, const int *want)
{
    int b[32];
    zl_status st = zl_pipe_partition_model(m, method, stages, b);
    ck_assert_msg(st == ZL_OK, "%s %s stages=%d: %s", m->cfg.name, method, stages,
                  zl_last_error());
    char what[96];
    snprintf(what, sizeof what, "%s %s stages=%d", m->cfg.name, method, stages);
    assert_bounds(what, b, want, stages);
}

/* The lab model: embed (20480 parameters), two blocks (49984 each), head (128 of its own
 * and the tied 16384 of the embedding, of which its stage holds a copy). */
START_TEST(test_lab_model_methods)
{
    fixture f;
    open_model(&f, "lab");
    ck_assert_int_eq(f.m.num_layers, 4);
    for (int s = 1; s <= 4; s++) {
        int all[5];
        zl_partition_uniform(4, s, all);
        partition_ok(&f.m, "uniform", s, all);
    }
    partition_ok(&f.m, "parameters", 1, (int[]){0, 4});
    partition_ok(&f.m, "parameters", 2, (int[]){0, 2, 4});
    partition_ok(&f.m, "parameters", 3, (int[]){0, 1, 2, 4});
    partition_ok(&f.m, "parameters", 4, (int[]){0, 1, 2, 3, 4});
    partition_ok(&f.m, "type:block", 3, (int[]){0, 2, 3, 4});
    partition_ok(&f.m, "type:embed|head", 2, (int[]){0, 3, 4});
    partition_ok(&f.m, "type:embed|head", 3, (int[]){0, 2, 3, 4});
    /* the regex is searched anywhere, case-insensitively; "" matches every kind */
    partition_ok(&f.m, "type:LOC", 2, (int[]){0, 2, 4});
    partition_ok(&f.m, "type:^e", 2, (int[]){0, 3, 4}); /* spread 1 for every cut: the last */
    partition_ok(&f.m, "type:", 3, (int[]){0, 2, 3, 4}); /* balanced([1,1,1,1], 3) */
    /* the whole text after "type:" is the regex, colons of POSIX classes included */
    partition_ok(&f.m, "type:^[[:alpha:]]+$", 3, (int[]){0, 2, 3, 4});
    /* method names are case-insensitive, and "best" (the config default) is "parameters" */
    partition_ok(&f.m, "UNIFORM", 3, (int[]){0, 2, 3, 4});
    partition_ok(&f.m, "Parameters", 3, (int[]){0, 1, 2, 4});
    partition_ok(&f.m, "best", 3, (int[]){0, 1, 2, 4});
    partition_ok(&f.m, "Type:Block", 3, (int[]){0, 2, 3, 4});
    /* explicit boundaries, spaces allowed around the commas */
    partition_ok(&f.m, "0,3,4", 2, (int[]){0, 3, 4});
    partition_ok(&f.m, " 0 , 1,2 ,4 ", 3, (int[]){0, 1, 2, 4});
    partition_ok(&f.m, "0,4", 1, (int[]){0, 4});
    zl_model_destroy(&f.m);
}
END_TEST

/* gpt2-124m: embed 39,383,808 parameters, 12 blocks of 7,087,872, head 1,536 + the tied
 * 38,597,376. The embedding always opens stage 0 and the head closes the last stage; with
 * "parameters" they are heavy enough to get stages of their own. */
START_TEST(test_gpt2_124m_methods)
{
    fixture f;
    open_model(&f, "gpt2-124m");
    ck_assert_int_eq(f.m.num_layers, 14);
    partition_ok(&f.m, "parameters", 2, (int[]){0, 7, 14});
    partition_ok(&f.m, "parameters", 3, (int[]){0, 3, 11, 14});
    partition_ok(&f.m, "parameters", 4, (int[]){0, 1, 7, 13, 14});
    partition_ok(&f.m, "parameters", 6, (int[]){0, 1, 4, 7, 10, 13, 14});
    partition_ok(&f.m, "parameters", 8, (int[]){0, 1, 3, 5, 7, 9, 11, 13, 14});
    partition_ok(&f.m, "parameters", 12, (int[]){0, 1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
    partition_ok(&f.m, "uniform", 4, (int[]){0, 4, 8, 11, 14});
    partition_ok(&f.m, "uniform", 6, (int[]){0, 3, 6, 8, 10, 12, 14});
    partition_ok(&f.m, "type:block", 3, (int[]){0, 5, 9, 14});
    partition_ok(&f.m, "type:block", 4, (int[]){0, 4, 7, 10, 14});
    partition_ok(&f.m, "type:block", 8, (int[]){0, 3, 5, 7, 9, 10, 11, 12, 14});
    int all[15];
    for (int i = 0; i <= 14; i++) all[i] = i;
    partition_ok(&f.m, "parameters", 14, all);
    partition_ok(&f.m, "uniform", 14, all);
    partition_ok(&f.m, "0,4,8,14", 3, (int[]){0, 4, 8, 14});

    /* the block counts per stage, and where the embedding and the head are */
    int b[5];
    ck_assert_int_eq(zl_pipe_partition_model(&f.m, "type:block", 4, b), ZL_OK);
    for (int s = 0; s < 4; s++) {
        int blocks = 0;
        for (int l = b[s]; l < b[s + 1]; l++) blocks += f.m.layers[l].kind == ZL_LAYER_BLOCK;
        ck_assert_int_eq(blocks, 3);
    }
    ck_assert_int_eq(f.m.layers[b[0]].kind, ZL_LAYER_EMBED);
    ck_assert_int_eq(f.m.layers[b[4] - 1].kind, ZL_LAYER_HEAD);
    ck_assert_int_eq(zl_pipe_partition_model(&f.m, "parameters", 4, b), ZL_OK);
    ck_assert_int_eq(b[1] - b[0], 1); /* the embedding alone */
    ck_assert_int_eq(b[4] - b[3], 1); /* the head (and its copy of wte) alone */
    ck_assert_int_eq(b[2] - b[1], 6);
    ck_assert_int_eq(b[3] - b[2], 6);
    zl_model_destroy(&f.m);
}
END_TEST

/* DeepSpeed's rank-0 listing: "stage=i layers=n", then "    %2d: <kind>" per layer. */
START_TEST(test_listing)
{
    fixture f;
    open_model(&f, "lab");
    int b[3];
    ck_assert_int_eq(zl_pipe_partition_model(&f.m, "uniform", 2, b), ZL_OK);
    const char *want = "stage=0 layers=2\n"
                       "     0: embed\n"
                       "     1: block\n"
                       "stage=1 layers=2\n"
                       "     2: block\n"
                       "     3: head\n";
    char buf[256];
    size_t len = zl_pipe_partition_format(&f.m, 2, b, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(len, strlen(want));
    /* sizing call, and a short buffer: cut, terminated, the full length returned */
    ck_assert_uint_eq(zl_pipe_partition_format(&f.m, 2, b, NULL, 0), strlen(want));
    char small[20];
    ck_assert_uint_eq(zl_pipe_partition_format(&f.m, 2, b, small, sizeof small), strlen(want));
    ck_assert_str_eq(small, "stage=0 layers=2\n  ");
    zl_model_destroy(&f.m);

    /* two-digit indices keep their column */
    open_model(&f, "gpt2-124m");
    int g[3];
    ck_assert_int_eq(zl_pipe_partition_model(&f.m, "0,12,14", 2, g), ZL_OK);
    char big[1024];
    zl_pipe_partition_format(&f.m, 2, g, big, sizeof big);
    ck_assert_ptr_nonnull(strstr(big, "stage=0 layers=12\n     0: embed\n     1: block\n"));
    ck_assert_ptr_nonnull(strstr(big, "    11: block\nstage=1 layers=2\n    12: block\n    13: head\n"));
    zl_model_destroy(&f.m);
}
END_TEST

/* One refusal: the status, and the message names the key, says what is wrong and how to
 * fix it. */
static void refused(const zl_model *m, const char *method, int stages, zl_status want_st,
                    const char *says)
{
    int b[64];
    zl_error_clear();
    zl_status st = zl_pipe_partition_model(m, method, stages, b);
    const char *msg = zl_last_error();
    ck_assert_msg(st == want_st, "%s stages=%d: status %d, want %d (%s)",
                  method ? method : "(null)", stages, st, want_st, msg);
    ck_assert_msg(strstr(msg, says), "%s: message lacks '%s': %s", method ? method : "(null)",
                  says, msg);
    ck_assert_msg(strstr(msg, "pipeline.partition") || strstr(msg, "pipeline.stages"),
                  "%s: the message names no key: %s", method ? method : "(null)", msg);
    ck_assert_msg(strstr(msg, "\n  hint: "), "%s: no hint: %s", method ? method : "(null)", msg);
    printf("refused %s, %d stages: %s\n", method ? method : "(null)", stages, msg);
}

START_TEST(test_refusals)
{
    fixture f;
    open_model(&f, "lab");
    const zl_model *m = &f.m;
    /* stages */
    refused(m, "uniform", 0, ZL_ERR_CONFIG, "pipeline.stages is 0");
    refused(m, "uniform", -2, ZL_ERR_CONFIG, "at least one stage");
    refused(m, "uniform", 5, ZL_ERR_CONFIG, "model 'lab' has 4 layers (embed, 2 blocks, head): "
                                           "stage 4 would have no layers");
    refused(m, "parameters", 6, ZL_ERR_CONFIG, "stages 4 to 5 would have no layers");
    refused(m, "parameters", 6, ZL_ERR_CONFIG, "use at most 4 pipeline stages");
    /* methods */
    refused(m, NULL, 2, ZL_ERR_CONFIG, "pipeline.partition is empty");
    refused(m, "", 2, ZL_ERR_CONFIG, "pipeline.partition is empty");
    refused(m, "profile", 2, ZL_ERR_UNSUPPORTED, "NotImplementedError");
    refused(m, "PROFILE", 2, ZL_ERR_UNSUPPORTED, "'profile' is not implemented");
    refused(m, "fastest", 2, ZL_ERR_CONFIG, "'fastest' is not a partitioning method");
    refused(m, "type", 2, ZL_ERR_CONFIG, "'type' is not a partitioning method");
    refused(m, "type:[blo", 2, ZL_ERR_CONFIG, "'[blo' is not a POSIX extended regular");
    refused(m, "type:attention", 2, ZL_ERR_CONFIG, "found no valid layers to partition");
    refused(m, "type:attention", 2, ZL_ERR_CONFIG, "kinds are embed, block and head");
    /* boundaries */
    refused(m, "0,4", 2, ZL_ERR_CONFIG, "has 2 boundaries, and 2 stages need 3");
    refused(m, "0,1,2,4", 2, ZL_ERR_CONFIG, "has 4 boundaries, and 2 stages need 3");
    refused(m, "1,2,4", 2, ZL_ERR_CONFIG, "starts at 1: the first stage starts at layer 0");
    refused(m, "0,2,3", 2, ZL_ERR_CONFIG, "ends at 3, and model 'lab' has 4 layers");
    refused(m, "0,2,5", 2, ZL_ERR_CONFIG, "ends at 5");
    refused(m, "0,2,2,4", 3, ZL_ERR_CONFIG, "leaves stage 1 without layers (2 after 2)");
    refused(m, "0,3,2,4", 3, ZL_ERR_CONFIG, "leaves stage 1 without layers (2 after 3)");
    refused(m, "0,x,4", 2, ZL_ERR_CONFIG, "expected a layer index at 'x,4'");
    refused(m, "0,-1,4", 2, ZL_ERR_CONFIG, "expected a layer index at '-1,4'");
    refused(m, "0,2,4,", 2, ZL_ERR_CONFIG, "expected a layer index at ''");
    refused(m, "0,,4", 2, ZL_ERR_CONFIG, "expected a layer index at ',4'");
    refused(m, "0;2;4", 2, ZL_ERR_CONFIG, "unexpected ';' after a boundary");
    refused(m, "0,2.5,4", 2, ZL_ERR_CONFIG, "unexpected '.' after a boundary");
    refused(m, "0,99999999999999999999,4", 2, ZL_ERR_CONFIG,
            "boundary 99999999999999999999 is out of range");
    refused(m, "0,3000000000,4", 2, ZL_ERR_CONFIG, "boundary 3000000000 is out of range");
    zl_model_destroy(&f.m);

    /* the number functions: weights are sizes */
    int b[4];
    ck_assert_int_eq(zl_partition_balanced((int64_t[]){1, -2, 3}, 3, 2, b), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "partition weight 1 is negative (-2)"));
    ck_assert_int_eq(zl_partition_balanced((int64_t[]){INT64_C(1) << 61, INT64_C(1) << 61, 1},
                                           3, 2, b),
                     ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "total more than 2^62"));
    /* just under the cap: exact */
    balanced((int64_t[]){INT64_C(1) << 61, (INT64_C(1) << 61) - 2, 1}, 3, 2, b);
    assert_bounds("balanced near 2^62", b, (int[]){0, 1, 3}, 2);
}
END_TEST

static Suite *pipe_partition_suite(void)
{
    Suite *s = suite_create("pipe_partition");
    TCase *tc = tcase_create("pipe_partition");
    tcase_add_test(tc, test_deepspeed_vectors);
    tcase_add_test(tc, test_deepspeed_table);
    tcase_add_test(tc, test_random_properties);
    tcase_add_test(tc, test_lab_model_methods);
    tcase_add_test(tc, test_gpt2_124m_methods);
    tcase_add_test(tc, test_listing);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(pipe_partition_suite)
