/* The collective watchdog (comm.h) under mpiexec at np = 2: a rank that does not join an
 * operation makes the others' call fail with ZL_ERR_TIMEOUT after the timeout, with a
 * message naming the rank, the operation, its bytes, the communicator and the caller's
 * phase; later calls on the broken communicator (and those split from it) fail at once.
 *
 * Each test makes its own world handles (their own watchdog state) with short timeouts;
 * the late rank joins the operation afterwards, so that MPI completes the abandoned one
 * and the job ends cleanly. Results are agreed on over MPI_COMM_WORLD (zl_test_all_ok),
 * which no watchdog touches. Times are bounds on behaviour (did not give up early, did
 * not wait again), generous for a loaded machine, never speed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_util.h"
#include "comm/comm.h"
#include "comm/comm_internal.h"

static zl_comm *world;

#define ALL_OK(cond) ck_assert(zl_test_all_ok(cond))

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

/* A check on this rank: report it (with the rank) and return whether it held. */
static int expect(int cond, const char *what)
{
    if (!cond) fprintf(stderr, "[rank %d] %s (last error: '%s')\n", world->rank, what, zl_last_error());
    return cond;
}

static int has(const char *needle)
{
    return expect(strstr(zl_last_error(), needle) != NULL, needle);
}

static zl_comm *fresh_world(double timeout)
{
    zl_comm *w = NULL;
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_OK);
    ck_assert_int_eq(zl_comm_set_timeout(w, timeout), ZL_OK);
    return w;
}

enum { TIMEOUT_COUNT = 16 }; /* f32: 64 bytes */

START_TEST(test_watchdog_allreduce_timeout_then_fail_fast)
{
    const double timeout = 1.0;
    zl_comm *w = fresh_world(timeout), *sub = NULL;
    ck_assert_int_eq(zl_comm_split(w, 0, w->rank, "data", &sub), ZL_OK);
    /* MPI may complete the abandoned allreduce into it later: not on the stack. */
    static float buf[TIMEOUT_COUNT];
    int ok = 1;
    if (w->rank == 0) {
        zl_comm_set_phase(w, "step %d of %d, micro-step %d of %d", 7, 9, 1, 2);
        double t0 = zl__comm_now();
        zl_status st = zl_comm_allreduce(w, buf, TIMEOUT_COUNT, ZL_F32, ZL_REDUCE_SUM);
        double waited = zl__comm_now() - t0;
        ok &= expect(st == ZL_ERR_TIMEOUT, "allreduce with a missing rank: ZL_ERR_TIMEOUT");
        ok &= has("rank 0 of ") && has("all_reduce of 64 bytes") && has("communicator 'world'") &&
              has("step 7 of 9, micro-step 1 of 2") && has("timed out after") &&
              has("--collective-timeout");
        ok &= expect(waited >= timeout, "gave up before the timeout");
        ok &= expect(waited < timeout + 30, "gave up long after the timeout");

        /* Broken: every later call fails at once, naming the first failure. */
        t0 = zl__comm_now();
        st = zl_comm_barrier(w);
        ok &= expect(st == ZL_ERR_TIMEOUT, "barrier on a broken communicator: ZL_ERR_TIMEOUT");
        ok &= has("barrier on communicator 'world' not started") && has("all_reduce of 64 bytes");
        st = zl_comm_agree(w, ZL_OK);
        ok &= expect(st == ZL_ERR_TIMEOUT, "agree on a broken communicator: ZL_ERR_TIMEOUT");
        ok &= has("all_reduce of 64 bytes");
        st = zl_comm_allreduce(sub, buf, 1, ZL_F32, ZL_REDUCE_SUM);
        ok &= expect(st == ZL_ERR_TIMEOUT, "a communicator split from it is broken too");
        ok &= has("communicator 'data' not started");
        zl_comm_request req = {0};
        st = zl_comm_iallgather(w, buf, buf, 1, ZL_F32, &req);
        ok &= expect(st == ZL_ERR_TIMEOUT && !req.active, "non-blocking start refused");
        ok &= expect(zl_comm_health(w) == ZL_ERR_TIMEOUT && strstr(zl_last_error(), "timed out"),
                     "zl_comm_health reports the timeout");
        ok &= expect(zl__comm_now() - t0 < timeout, "a later call waited again");
    } else {
        sleep_s(2.5 * timeout); /* past rank 0's timeout */
        /* Rank 0's allreduce is still posted inside MPI: this completes it. */
        ok &= expect(zl_comm_allreduce(w, buf, TIMEOUT_COUNT, ZL_F32, ZL_REDUCE_SUM) == ZL_OK,
                     "the late rank's allreduce");
        ok &= expect(zl_comm_health(w) == ZL_OK, "the late rank's communicator is healthy");
    }
    ALL_OK(ok);
    zl_comm_destroy(sub);
    zl_comm_destroy(w);
}
END_TEST

START_TEST(test_watchdog_wait_and_recv_timeouts)
{
    const double timeout = 0.5;
    static double x[1];
    int ok = 1;
    /* zl_comm_wait: the watchdog counts from the wait. */
    zl_comm *w = fresh_world(timeout);
    zl_comm_request req = {0};
    if (w->rank == 0) {
        ok &= expect(zl_comm_iallreduce(w, x, 1, ZL_F64, ZL_REDUCE_SUM, &req) == ZL_OK, "iallreduce");
        zl_status st = zl_comm_wait(w, &req);
        ok &= expect(st == ZL_ERR_TIMEOUT, "wait with a missing rank: ZL_ERR_TIMEOUT");
        ok &= has("all_reduce of 8 bytes") && has("no phase set");
    } else {
        sleep_s(2.5 * timeout); /* starts late */
        ok &= expect(zl_comm_iallreduce(w, x, 1, ZL_F64, ZL_REDUCE_SUM, &req) == ZL_OK &&
                     zl_comm_wait(w, &req) == ZL_OK, "the late rank's iallreduce");
    }
    ALL_OK(ok);
    zl_comm_destroy(w);

    /* recv from a rank that never sends. */
    w = fresh_world(timeout);
    if (w->rank == 0) {
        float in[8];
        zl_comm_set_phase(w, "pipeline stage 1");
        zl_status st = zl_comm_recv(w, in, 8, ZL_F32, 1, 5);
        ok &= expect(st == ZL_ERR_TIMEOUT, "recv with no sender: ZL_ERR_TIMEOUT");
        ok &= has("recv of 32 bytes from rank 1") && has("pipeline stage 1");
    }
    ALL_OK(ok);
    zl_comm_destroy(w);
}
END_TEST

START_TEST(test_watchdog_interrupt_flag)
{
    static volatile sig_atomic_t flag;
    int ok = 1;
    /* Every rank was signalled: the barrier they all join completes, within the grace. */
    zl_comm *w = fresh_world(10);
    flag = SIGTERM;
    zl_comm_set_interrupt(w, &flag);
    ok &= expect(zl_comm_barrier(w) == ZL_OK, "a barrier every signalled rank joins");
    ok &= expect(zl_comm_agree(w, ZL_OK) == ZL_OK, "agree under a signal");
    ALL_OK(ok);
    zl_comm_destroy(w);

    /* Rank 0 was signalled and the others do not come within the grace (here the 1 s
     * timeout, shorter than ZL_COMM_INTERRUPT_GRACE): interrupted, not timed out. */
    w = fresh_world(1.0);
    flag = w->rank == 0 ? SIGTERM : 0;
    zl_comm_set_interrupt(w, &flag);
    if (w->rank == 0) {
        zl_comm_set_phase(w, "step 3 of 100, micro-step 1 of 1");
        zl_status st = zl_comm_barrier(w);
        ok &= expect(st == ZL_ERR_INTERRUPTED, "barrier under a signal: ZL_ERR_INTERRUPTED");
        ok &= has("interrupted by signal 15") && has("barrier of 0 bytes") && has("step 3 of 100");
        ok &= expect(zl_comm_barrier(w) == ZL_ERR_INTERRUPTED, "then broken");
    } else {
        sleep_s(2.5);
        ok &= expect(zl_comm_barrier(w) == ZL_OK, "the late rank's barrier");
    }
    flag = 0;
    ALL_OK(ok);
    zl_comm_destroy(w);
}
END_TEST

START_TEST(test_watchdog_settings)
{
    zl_comm *w = NULL;
    int ok = 1;
    unsetenv("ZL_COLLECTIVE_TIMEOUT");
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_OK);
    ok &= expect(zl_comm_timeout(w) == ZL_COMM_DEFAULT_TIMEOUT, "default timeout");
    ok &= expect(zl_comm_set_timeout(w, -1) == ZL_ERR_INVALID, "negative timeout refused");
    ok &= expect(zl_comm_set_timeout(w, 0) == ZL_OK && zl_comm_timeout(w) == 0, "0: off");
    /* Off: an ordinary collective still works (MPI_Wait path). */
    double x = 1;
    ok &= expect(zl_comm_allreduce(w, &x, 1, ZL_F64, ZL_REDUCE_SUM) == ZL_OK && x == w->size,
                 "allreduce without a watchdog");
    zl_comm_destroy(w);

    setenv("ZL_COLLECTIVE_TIMEOUT", "2.5", 1);
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_OK);
    ok &= expect(zl_comm_timeout(w) == 2.5, "ZL_COLLECTIVE_TIMEOUT=2.5");
    zl_comm *sub = NULL;
    ck_assert_int_eq(zl_comm_split(w, w->rank % 2, 0, "half", &sub), ZL_OK);
    ok &= expect(zl_comm_timeout(sub) == 2.5, "a split inherits the timeout");
    zl_comm_set_timeout(sub, 7);
    ok &= expect(zl_comm_timeout(w) == 7, "and shares it");
    zl_comm_destroy(w); /* the split outlives its parent */
    ok &= expect(zl_comm_barrier(sub) == ZL_OK, "the split after its parent is gone");
    zl_comm_destroy(sub);

    setenv("ZL_COLLECTIVE_TIMEOUT", "10min", 1);
    zl_status st = zl_comm_world(&w, NULL);
    ok &= expect(st == ZL_ERR_CONFIG && w == NULL, "a malformed ZL_COLLECTIVE_TIMEOUT is refused");
    ok &= has("ZL_COLLECTIVE_TIMEOUT='10min'");
    unsetenv("ZL_COLLECTIVE_TIMEOUT");
    ALL_OK(ok);
}
END_TEST

static Suite *watchdog_suite(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_watchdog_allreduce_timeout_then_fail_fast);
    tcase_add_test(tc, test_watchdog_wait_and_recv_timeouts);
    tcase_add_test(tc, test_watchdog_interrupt_flag);
    tcase_add_test(tc, test_watchdog_settings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return zl_test_run_mpi_with(watchdog_suite, &world);
}
