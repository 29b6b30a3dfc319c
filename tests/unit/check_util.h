/* Shared helpers for the Check test programs.
 *
 * Comparisons print what differs (max abs/rel error, first mismatching index, and a few
 * value pairs) before failing, so a red test says why. Tolerances are named here so
 * that every test states which kind of agreement it expects. */
#ifndef ZL_TESTS_CHECK_UTIL_H
#define ZL_TESTS_CHECK_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "engine/engine.h"
#include "plan/plan.h"
#include "run/run.h"

/* Every test announces itself as it starts (on stderr, unbuffered, rank 0 only under MPI,
 * with the seconds since the program started), so that a log cut off by a timeout says
 * which test was running, and the gaps between the lines say what each test costs.
 * START_TEST is Check's, with one call in front of the test's body. */
void zl_test_started(const char *name);
#undef START_TEST
#define START_TEST(__testname)                                                             \
    static void __testname##_body(int _i);                                                 \
    static void __testname##_fn(int _i)                                                    \
    {                                                                                      \
        zl_test_started(#__testname);                                                      \
        __testname##_body(_i);                                                             \
    }                                                                                      \
    static const TTest __testname##_ttest = {"" #__testname, __testname##_fn, __FILE__,    \
                                             __LINE__};                                    \
    static const TTest *__testname = &__testname##_ttest;                                  \
    static void __testname##_body(int _i CK_ATTRIBUTE_UNUSED)

/* Same arithmetic in a different order (blocked sums, threads): a few f32 ulps relative. */
#define ZL_TOL_F32_REORDER 1e-5
/* Different algorithm, same math (sgemm vs loops over long reductions). */
#define ZL_TOL_F32_KERNEL 1e-4

/* Compare n floats: passes if |a-b| <= atol + rtol*|b| everywhere. On failure prints a
 * report under `label` and returns 0. Also fails on NaN in either array. */
int zl_test_close(const char *label, const float *got, const float *want, size_t n, double rtol,
                  double atol);

/* Fill with uniform values in [lo, hi) from a seed (deterministic). */
void zl_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Engine options for a test: zeroed, then the batch shape, fused AdamW's defaults and a
 * constant LR. Everything else (stage, clipping, seed, dp, precision) is the test's. */
zl_engine_options zl_test_engine_options(int micro_batch, int gas, int seq_len);

/* A run of the "lab" model (sequence 32, seed 1337, cpu backend, no memory pre-flight)
 * from DeepSpeed config text, on `world` (NULL: one rank), on `device` (a card preset for
 * a simulated GPU, or NULL) with its trace to `trace` (or NULL): the offload tests'
 * fixture. zl_test_run_try returns the status; zl_test_run_open asserts success. */
zl_status zl_test_run_try(zl_run *r, const char *json, zl_comm *world, const char *device,
                          const char *trace);
void zl_test_run_open(zl_run *r, const char *json, zl_comm *world, const char *device,
                      const char *trace);

/* The repo's full-scale plan: GPT-3 175B, ZeRO-3 with reduce-scatter in bf16, micro-batch
 * 1, 1024 tokens, on the 128 x 8 A100-80GB cluster *c (filled here); no trace. */
void zl_test_gpt3_zero3_request(zl_plan_request *req, zl_cluster *c);

/* Bit for bit, element by element: how many of the n floats of a and b differ, and the
 * index of the first that does in *first (n if none). */
size_t zl_test_bits_differ(const float *a, const float *b, size_t n, size_t *first);

/* A swap file cut short between two steps of r (on every rank if `all`, else on rank 0
 * only): the next step fails on every rank, with ZL_ERR_IO naming the file where it was
 * cut and naming rank 0 elsewhere (the ranks agree on a failed swap). */
void zl_test_truncate_mid_run(zl_run *r, zl_comm *world, const char *file, bool all);

/* Parse DeepSpeed config text for dp_size ranks, run the engine's check of it, and fill *o
 * from it (zeroed first: left so when the parse fails); the status of the first step that
 * failed. The config tests of the offload features use it. */
zl_status zl_test_check_config(const char *json, int dp_size, zl_engine_options *o);

/* A fresh directory under /tmp for a test's files ("/tmp/zl_check_<prefix>_XXXXXX"); its
 * path; a file's path inside it (from a ring of 4 static buffers); how many names in it
 * contain `part` (e.g. leftover temporaries); and its removal with everything under it. */
const char *zl_test_tmpdir_make(const char *prefix);
const char *zl_test_tmpdir(void);
const char *zl_test_tmp_path(const char *name);
int zl_test_tmp_count(const char *part);
void zl_test_tmpdir_remove(void);

/* Run one suite (fork mode as configured by CK_FORK) and return a process exit code. */
int zl_test_run(Suite *s);

/* Path of a fixture file under $ZL_TEST_DATA (or tests/fixtures); static buffer. */
const char *zl_test_data(const char *name);

#define ZL_TEST_MAIN(suite_fn) \
    int main(void) { return zl_test_run(suite_fn()); }

/* MPI test programs (tests/mpi/, started by tests/run-mpi.sh under mpiexec).
 *
 * zl_test_run_mpi initialises MPI once (unless the program did), runs the suite without
 * forking (MPI does not survive fork) on every rank, with Check's report on rank 0 and
 * each other rank printing only its own failures, combines the failure counts of all
 * ranks (MAX), finalizes MPI and returns the same exit code on every rank: 0, 1, or 77
 * when a rank ran no test. Built without MPI, it runs the suite on one rank.
 *
 * zl_test_run_mpi_with also creates the world communicator (no log) into *world before
 * it builds the suite, and destroys it after the run. */
int zl_test_run_mpi(Suite *s);
int zl_test_run_mpi_with(Suite *(*suite_fn)(void), zl_comm **world);

/* Collective over all MPI ranks (every rank must call it): 1 if `ok` is nonzero on every
 * rank. Assert on it instead of on a local condition, so that a failure on one rank fails
 * the test on all of them and no rank is left waiting in the test's next collective. Uses
 * MPI directly, not the communicator under test. Without MPI: ok != 0. */
int zl_test_all_ok(int ok);

#endif
