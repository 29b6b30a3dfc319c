/* Checkpoints through the library (engine/engine.h zl_engine_save_checkpoint and
 * zl_engine_load_checkpoint), under mpiexec at np = 1 and 2:
 *
 * - a save and a load that every rank makes: the loaded engine holds the saved one's
 *   weights bit for bit, its counters, lr and step, and trains on exactly as the saved one
 *   does (ZeRO stages 0-3);
 * - (np 2) a save that only rank 0 makes fails on rank 0 with ZL_ERR_TIMEOUT at the
 *   collective timeout, with a message naming save_checkpoint, instead of hanging, and
 *   writes nothing. The communicator is then broken (comm.h, the watchdog): rank 1 joins
 *   the abandoned operation late, as check_watchdog.c does, so that MPI completes it and
 *   the job ends cleanly; each engine gets its own world handle (its own watchdog).
 *
 * Results are agreed on over MPI_COMM_WORLD (zl_test_all_ok). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_util.h"
#include "base/rng.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "model/gpt_config.h"

static const zl_gpt_config model = {"ckpt-test", 64, 16, 2, 4, 32};
enum { B = 2, T = 8 };

static zl_comm *world;

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

typedef struct source {
    int k, rank;
} source;
static zl_status next_batch(void *ctx, int32_t *in, int32_t *tg)
{
    source *s = ctx;
    for (int i = 0; i < B * T; i++) {
        uint64_t idx = (uint64_t)(s->rank * B * T + i);
        in[i] = (int32_t)(zl_rng_bits(91, (uint64_t)s->k, idx) % model.vocab_size);
        tg[i] = (int32_t)(zl_rng_bits(91, (uint64_t)s->k, idx + 1) % model.vocab_size);
    }
    s->k++;
    return ZL_OK;
}

static zl_engine_options options(zl_comm *dp, int stage)
{
    zl_engine_options o = zl_test_engine_options(B, 2, T);
    o.gradient_clipping = 1.0;
    o.optimizer.lr = 3e-3;
    o.seed = 11;
    o.dp = dp->size > 1 ? dp : NULL;
    o.zero_stage = stage;
    return o;
}

/* A fresh directory, the same on every rank (rank 0 makes it). */
static void shared_tmpdir(char *dir, size_t len)
{
    int32_t buf[64] = {0};
    if (world->rank == 0) {
        char tmpl[] = "/tmp/zl_ckpt_mpi.XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(tmpl));
        snprintf((char *)buf, sizeof buf, "%s", tmpl);
    }
    ck_assert_int_eq(zl_comm_broadcast(world, buf, 64, ZL_I32, 0), ZL_OK);
    snprintf(dir, len, "%s", (const char *)buf);
}

static void remove_dir(const char *dir)
{
    zl_comm_barrier(world);
    if (world->rank == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}

/* Train 2 steps, save; a new engine loads it; both train 2 more steps: the same bits. */
START_TEST(test_ckpt_save_load_every_rank)
{
    size_t n = zl_gpt_config_num_params(&model);
    float *wa = calloc(n, sizeof *wa), *wb = calloc(n, sizeof *wb);
    for (int stage = 0; stage <= 3; stage++) {
        char dir[256];
        shared_tmpdir(dir, sizeof dir);
        zl_device da, db;
        ck_assert_int_eq(zl_device_init(&da, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
        ck_assert_int_eq(zl_device_init(&db, ZL_DEVICE_ACCEL, "cpu", "b", 0), ZL_OK);
        zl_engine_options o = options(world, stage);
        zl_engine *a, *b;
        ck_assert_int_eq(zl_engine_create(&a, &model, &o, &da), ZL_OK);
        source sa = {0, world->rank};
        float la, lb;
        for (int s = 0; s < 2; s++) ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, &la), ZL_OK);
        zl_engine_save_args sv = {.dir = dir, .client_state = "{\"k\": 2}"};
        ck_assert_int_eq(zl_engine_save_checkpoint(a, &sv), ZL_OK);
        source sb = sa; /* the data position: the caller's to carry over */

        o.seed = 99; /* other initial weights: the load must replace them */
        ck_assert_int_eq(zl_engine_create(&b, &model, &o, &db), ZL_OK);
        zl_engine_load_args ld = {.dir = dir};
        zl_engine_loaded got;
        ck_assert_int_eq(zl_engine_load_checkpoint(b, &ld, &got), ZL_OK);
        int ok = !strcmp(got.tag, "global_step2") && got.optimizer_loaded &&
                 got.saved_dp_world_size == world->size && got.saved_zero_stage == stage &&
                 got.client_state && strstr(got.client_state, "\"k\"");
        free(got.client_state);
        ck_assert_msg(zl_test_all_ok(ok), "stage %d: the load reports another tag or layout", stage);
        ck_assert_int_eq(zl_engine_gather_params(a, wa), ZL_OK);
        ck_assert_int_eq(zl_engine_gather_params(b, wb), ZL_OK);
        size_t first;
        size_t nw = zl_test_bits_differ(wa, wb, n, &first);
        ck_assert_msg(zl_test_all_ok(nw == 0), "stage %d: %zu of %zu loaded weights differ, first at %zu",
                      stage, nw, n, first);
        ok = zl_engine_global_steps(b) == 2 && zl_engine_micro_steps(b) == 4 &&
             zl_engine_get_lr(a) == zl_engine_get_lr(b);
        ck_assert_msg(zl_test_all_ok(ok), "stage %d: counters or lr not restored", stage);
        for (int s = 0; s < 2; s++) {
            ck_assert_int_eq(zl_engine_train_batch(a, next_batch, &sa, &la), ZL_OK);
            ck_assert_int_eq(zl_engine_train_batch(b, next_batch, &sb, &lb), ZL_OK);
            ck_assert_msg(zl_test_all_ok(memcmp(&la, &lb, sizeof la) == 0),
                          "stage %d: step %d after the load: loss %.9g, the saved engine's %.9g",
                          stage, 3 + s, lb, la);
        }
        ck_assert_int_eq(zl_engine_gather_params(a, wa), ZL_OK);
        ck_assert_int_eq(zl_engine_gather_params(b, wb), ZL_OK);
        nw = zl_test_bits_differ(wa, wb, n, &first);
        ck_assert_msg(zl_test_all_ok(nw == 0 && wa[0] != 0), "stage %d: after 2 more steps %zu "
                      "weights differ", stage, nw);
        zl_engine_destroy(a);
        zl_engine_destroy(b);
        remove_dir(dir);
    }
    free(wa);
    free(wb);
}
END_TEST

/* Rank 0's timed-out save left its status agreement posted inside MPI, its buffer in a
 * stack frame that has returned (comm.h: the operation cannot be cancelled, and may be
 * written until the process ends). Rank 1 completes it late; MPI then writes the result
 * during rank 0's next MPI call. Make that call here, under a pad that covers the stack
 * the save used, so that the write lands in the pad and not in a live frame. */
static __attribute__((noinline)) int drain_abandoned(void)
{
    volatile char pad[1 << 16];
    pad[0] = pad[sizeof pad - 1] = 0;
    return zl_test_all_ok(1) + pad[0];
}

/* Only rank 0 saves: it fails at the timeout with a message, and writes nothing. */
START_TEST(test_ckpt_save_on_one_rank_fails)
{
    const double timeout = 1.0;
    char dir[256];
    shared_tmpdir(dir, sizeof dir);
    zl_comm *w = NULL; /* its own handle: the timeout breaks it, not the test's world */
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_OK);
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "a", 0), ZL_OK);
    zl_engine_options o = options(w, 2);
    zl_engine *e;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    source src = {0, w->rank};
    float loss;
    ck_assert_int_eq(zl_engine_train_batch(e, next_batch, &src, &loss), ZL_OK);
    ck_assert_int_eq(zl_comm_set_timeout(w, timeout), ZL_OK);
    int ok = 1;
    if (w->rank == 0) {
        zl_engine_save_args sv = {.dir = dir};
        zl_status st = zl_engine_save_checkpoint(e, &sv);
        const char *msg = zl_last_error();
        if (st != ZL_ERR_TIMEOUT || !strstr(msg, "save_checkpoint") || !strstr(msg, "timed out")) {
            fprintf(stderr, "[rank 0] save on one rank: status %d, message '%s'\n", (int)st, msg);
            ok = 0;
        } else {
            fprintf(stderr, "[rank 0] save on one rank: %s\n", msg); /* for the log */
        }
        char latest[300];
        snprintf(latest, sizeof latest, "%s/latest", dir);
        struct stat sb;
        if (stat(latest, &sb) == 0) {
            fprintf(stderr, "[rank 0] the failed save wrote %s\n", latest);
            ok = 0;
        }
        drain_abandoned();
    } else {
        sleep_s(2.5 * timeout); /* past rank 0's timeout */
        /* Rank 0's first collective of the save (its status agreement) is still posted
         * inside MPI: this completes it, so that the job can end. */
        if (zl_comm_agree(w, ZL_OK) != ZL_OK) {
            fprintf(stderr, "[rank 1] the late agreement failed: %s\n", zl_last_error());
            ok = 0;
        }
        zl_test_all_ok(1); /* rank 0's drain_abandoned */
    }
    ck_assert_msg(zl_test_all_ok(ok), "a save on one rank did not fail with a timeout naming save_checkpoint");
    zl_engine_destroy(e);
    zl_comm_destroy(w);
    remove_dir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ckpt_mpi");
    TCase *tc = tcase_create("ckpt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_ckpt_save_load_every_rank);
    if (world->size > 1) tcase_add_test(tc, test_ckpt_save_on_one_rank_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(suite, &world); }
