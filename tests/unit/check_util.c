#define _GNU_SOURCE /* nftw */
#include "zl_build.h" /* ZL_HAVE_MPI */

#include "check_util.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ZL_HAVE_MPI
#include <mpi.h>
#endif

#include "base/rng.h"

#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The program's start, near enough: the first test's announcement, or zl_test_run. */
static double t0;

void zl_test_started(const char *name)
{
    int rank = 0;
#ifdef ZL_HAVE_MPI
    int init = 0;
    MPI_Initialized(&init);
    if (init) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
#endif
    if (rank != 0) return;
    if (t0 == 0) t0 = now_s();
    fprintf(stderr, "[%7.2f s] %s\n", now_s() - t0, name); /* stderr: unbuffered */
}

int zl_test_close(const char *label, const float *got, const float *want, size_t n, double rtol,
                  double atol)
{
    double max_abs = 0, max_rel = 0;
    size_t first_bad = n, nbad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], d = fabs(g - w);
        int bad = isnan(g) || isnan(w) || d > atol + rtol * fabs(w);
        if (isfinite(d) && d > max_abs) max_abs = d;
        if (isfinite(d) && fabs(w) > 0 && d / fabs(w) > max_rel) max_rel = d / fabs(w);
        if (bad) {
            if (first_bad == n) first_bad = i;
            nbad++;
        }
    }
    if (nbad == 0) return 1;
    fprintf(stderr, "%s: %zu of %zu elements differ (rtol %.1e, atol %.1e); max abs %.3e, max rel %.3e\n",
            label, nbad, n, rtol, atol, max_abs, max_rel);
    for (size_t i = first_bad, shown = 0; i < n && shown < 5; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (isnan(got[i]) || isnan(want[i]) || d > atol + rtol * fabs(want[i])) {
            fprintf(stderr, "  [%zu] got %.9g want %.9g\n", i, got[i], want[i]);
            shown++;
        }
    }
    return 0;
}

void zl_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * zl_rng_uniform(seed, 0x7e57, i);
}

int zl_test_run(Suite *s)
{
    t0 = now_s();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nfailed = srunner_ntests_failed(sr);
    int nrun = srunner_ntests_run(sr);
    srunner_free(sr);
    if (nrun == 0) return 77; /* compared nothing: a skip, never a pass */
    return nfailed == 0 ? 0 : 1;
}

const char *zl_test_data(const char *name)
{
    static char path[4096];
    const char *dir = getenv("ZL_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

/* ------------------------------------------------------------------ MPI tests */

#ifdef ZL_HAVE_MPI
static void mpi_start(void)
{
    int init = 0, provided;
    MPI_Initialized(&init);
    if (!init) MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
}

int zl_test_all_ok(int ok)
{
    int all = ok != 0;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}
#else
static void mpi_start(void) {}
int zl_test_all_ok(int ok) { return ok != 0; }
#endif

static void mpi_finish(void)
{
#ifdef ZL_HAVE_MPI
    MPI_Finalize();
#endif
}

/* Run on every rank and agree on the exit code; MPI stays up. */
static int run_on_all_ranks(Suite *s)
{
    t0 = now_s();
    int rank = 0;
#ifdef ZL_HAVE_MPI
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
#endif
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, rank == 0 ? CK_NORMAL : CK_SILENT);
    int nfailed = srunner_ntests_failed(sr), nrun = srunner_ntests_run(sr);
    if (rank != 0 && nfailed > 0) {
        TestResult **failures = srunner_failures(sr);
        for (int i = 0; i < nfailed; i++)
            fprintf(stderr, "[rank %d] %s:%d:%s: %s\n", rank, tr_lfile(failures[i]),
                    tr_lno(failures[i]), tr_tcname(failures[i]), tr_msg(failures[i]));
        free(failures);
    }
    srunner_free(sr);
    /* [0]: the most failures on any rank; [1]: whether some rank ran nothing. */
    int worst[2] = {nfailed, nrun == 0};
#ifdef ZL_HAVE_MPI
    MPI_Allreduce(MPI_IN_PLACE, worst, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#endif
    if (worst[0] > 0) return 1;
    return worst[1] ? 77 : 0; /* compared nothing: a skip, never a pass */
}

int zl_test_run_mpi(Suite *s)
{
    mpi_start();
    int rc = run_on_all_ranks(s);
    mpi_finish();
    return rc;
}

int zl_test_run_mpi_with(Suite *(*suite_fn)(void), zl_comm **world)
{
    mpi_start();
    int rc = 99; /* no world: the harness is broken, not the code under test */
    if (zl_comm_world(world, NULL) == ZL_OK) {
        rc = run_on_all_ranks(suite_fn());
        /* Before MPI_Finalize. MPI is ours, so this does not finalize it. */
        zl_comm_destroy(*world);
        *world = NULL;
    } else {
        fprintf(stderr, "cannot create the world communicator: %s\n", zl_last_error());
    }
    mpi_finish();
    return rc;
}

zl_engine_options zl_test_engine_options(int micro_batch, int gas, int seq_len)
{
    zl_engine_options o;
    memset(&o, 0, sizeof o);
    o.micro_batch_size = micro_batch;
    o.gradient_accumulation_steps = gas;
    o.seq_len = seq_len;
    zl_optimizer_params_default(&o.optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o.scheduler, ZL_LR_CONSTANT);
    return o;
}

zl_status zl_test_run_try(zl_run *r, const char *json, zl_comm *world, const char *device,
                          const char *trace)
{
    zl_gpt_config m;
    ck_assert_int_eq(zl_gpt_config_preset("lab", &m), ZL_OK);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = json;
    o.config_name = "<test>";
    o.model_config = &m;
    o.seq_len = 32;
    o.seed = 1337;
    o.backend = "cpu";
    o.comm = world;
    o.device = device;
    o.trace = trace;
    o.no_preflight = true;
    return zl_run_init(r, &o);
}

void zl_test_run_open(zl_run *r, const char *json, zl_comm *world, const char *device,
                      const char *trace)
{
    ck_assert_msg(zl_test_run_try(r, json, world, device, trace) == ZL_OK, "%s", zl_last_error());
}

zl_status zl_test_check_config(const char *json, int dp_size, zl_engine_options *o)
{
    memset(o, 0, sizeof *o);
    zl_config cfg;
    zl_status st = zl_config_parse(&cfg, json, "<test>", dp_size);
    if (st == ZL_OK) {
        st = zl_engine_check_config(&cfg);
        zl_engine_options_from_config(o, &cfg, 32, 1, NULL);
    }
    zl_config_free(&cfg); /* a failed parse still holds what it read (config.h) */
    return st;
}

size_t zl_test_bits_differ(const float *a, const float *b, size_t n, size_t *first)
{
    size_t differ = 0;
    *first = n;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a)) {
            if (*first == n) *first = i;
            differ++;
        }
    return differ;
}

void zl_test_truncate_mid_run(zl_run *r, zl_comm *world, const char *file, bool all)
{
    bool mine = all || world->rank == 0;
    if (mine) ck_assert_int_eq(truncate(file, 100), 0);
    float loss;
    zl_status st = zl_run_step(r, &loss);
    ck_assert_int_ne(st, ZL_OK);
    if (mine) {
        ck_assert_int_eq(st, ZL_ERR_IO);
        ck_assert_msg(strstr(zl_last_error(), file), "the message does not name %s: %s", file,
                      zl_last_error());
    } else {
        ck_assert_msg(strstr(zl_last_error(), "rank 0"), "%s", zl_last_error());
    }
    if (world->rank == 0)
        printf("  truncated %s: %s\n", all ? "on every rank" : "on rank 0", zl_last_error());
}

void zl_test_gpt3_zero3_request(zl_plan_request *req, zl_cluster *c)
{
    static const zl_gpt_config gpt3 = {"gpt3-175b", 50257, 2048, 96, 96, 12288};
    ck_assert_int_eq(zl_cluster_parse("128x8xa100-80gb", c), ZL_OK);
    memset(req, 0, sizeof *req);
    req->model = gpt3;
    req->world_size = zl_cluster_size(c);
    req->cluster = c;
    req->gpu = true;
    zl_engine_options *o = &req->options;
    o->micro_batch_size = 1;
    o->gradient_accumulation_steps = 1;
    o->seq_len = 1024;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->zero_stage = 3;
    o->reduce_scatter = true;
    o->precision.dtype = ZL_BF16;
}

/* ---- a directory for a test's files ------------------------------------------------- */

static char tmpdir[128];

const char *zl_test_tmpdir_make(const char *prefix)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/zl_check_%s_XXXXXX", prefix);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    return tmpdir;
}

const char *zl_test_tmpdir(void) { return tmpdir; }

const char *zl_test_tmp_path(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

int zl_test_tmp_count(const char *part)
{
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void zl_test_tmpdir_remove(void)
{
    if (tmpdir[0]) nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}
