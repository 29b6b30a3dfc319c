/* The discrete backend (backends/discrete): its allocator, its memory the host cannot
 * touch outside its ops, transfers and communicator windows, and ref's results. */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/discrete/discrete.h"
#include "check_util.h"
#include "comm/comm.h"
#include "comm/comm_window.h"

static const zl_ops *D = &zl_ops_discrete;

/* Run fn(arg) in a child; the signal that ended it (0: it exited). */
static int child_signal(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    int status;
    ck_assert(waitpid(pid, &status, 0) == pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void read_it(void *p) { *(volatile float *)p; }
static void write_it(void *p) { *(volatile float *)p = 1.0f; }
static void read_opened(void *p)
{
    zl_discrete_enter(NULL);
    *(volatile float *)p;
    zl_discrete_leave(NULL);
}

START_TEST(test_discrete_alloc_zeroed_aligned_reused)
{
    D->setup(D);
    size_t before = zl_discrete_in_use();
    float *a = D->alloc(D, 100), *b = D->alloc(D, 1000), *c = D->alloc(D, 10);
    ck_assert(a && b && c);
    ck_assert(zl_discrete_owns(a) && zl_discrete_owns(b) && zl_discrete_owns(c));
    ck_assert_uint_eq((uintptr_t)a % 64, 0);
    ck_assert_uint_eq((uintptr_t)b % 64, 0);
    ck_assert_uint_eq(zl_discrete_in_use() - before, 128 + 1024 + 64);
    float ones[250], back[250];
    for (int i = 0; i < 250; i++) ones[i] = 1.0f;
    D->to_device(D, b, ones, sizeof ones);
    D->transfer_wait(D);
    D->free(D, b);
    /* first fit: the freed block again, zeroed */
    float *b2 = D->alloc(D, 1000);
    ck_assert_ptr_eq(b2, b);
    D->to_host(D, back, b2, sizeof back);
    D->transfer_wait(D);
    for (int i = 0; i < 250; i++) ck_assert(back[i] == 0.0f);
    D->free(D, a);
    D->free(D, b2);
    D->free(D, c);
    ck_assert_uint_eq(zl_discrete_in_use(), before);
    ck_assert(!zl_discrete_owns(ones));
}
END_TEST

START_TEST(test_discrete_host_touch_is_sigsegv)
{
    D->setup(D);
    float *x = D->alloc(D, 64 * sizeof(float));
    ck_assert(x);
    ck_assert_int_eq(child_signal(read_it, x), SIGSEGV);
    ck_assert_int_eq(child_signal(write_it, x), SIGSEGV);
    ck_assert_int_eq(child_signal(read_opened, x), 0);
    /* host memory stays the host's */
    float h = 0;
    ck_assert_int_eq(child_signal(write_it, &h), 0);
    D->free(D, x);
}
END_TEST

/* The ops are ref's: the same bits. */
START_TEST(test_discrete_ops_are_refs)
{
    enum { M = 7, N = 5, K = 9 };
    float a[M * K], b[K * N], want[M * N], got[M * N];
    zl_test_fill_uniform(a, M * K, 1, -1, 1);
    zl_test_fill_uniform(b, K * N, 2, -1, 1);
    zl_ops_ref.gemm(&zl_ops_ref, want, a, b, M, N, K, K, N, N, false, false, 1.0f, 0.0f);
    float *da = D->alloc(D, sizeof a), *db = D->alloc(D, sizeof b), *dc = D->alloc(D, sizeof got);
    D->to_device(D, da, a, sizeof a);
    D->to_device(D, db, b, sizeof b);
    D->transfer_wait(D);
    D->gemm(D, dc, da, db, M, N, K, K, N, N, false, false, 1.0f, 0.0f);
    D->to_host(D, got, dc, sizeof got);
    D->transfer_wait(D);
    ck_assert_int_eq(memcmp(got, want, sizeof got), 0);
    ck_assert(D->sumsq(D, dc, M * N) == zl_ops_ref.sumsq(&zl_ops_ref, want, M * N));
    D->free(D, da);
    D->free(D, db);
    D->free(D, dc);
}
END_TEST

/* A collective on device memory: the self communicator's reduce-scatter copies the
 * chunk on the host (memmove), a touch; through a window it is allowed. */
typedef struct rs_args {
    zl_comm *c;
    float *recv, *send;
} rs_args;

static void reduce_scatter(void *p)
{
    rs_args *a = p;
    zl_comm_reduce_scatter(a->c, a->recv, a->send, 16, ZL_F32, ZL_REDUCE_SUM);
}

START_TEST(test_discrete_window_opens_collectives)
{
    unsetenv("ZL_COMM");
    D->setup(D);
    zl_comm *self, *win;
    ck_assert_int_eq(zl_comm_self(&self, NULL), ZL_OK);
    zl_comm_window_hooks hooks = {zl_discrete_enter, zl_discrete_leave, NULL};
    ck_assert_int_eq(zl_comm_window(self, true, &hooks, &win), ZL_OK);
    ck_assert_ptr_eq(zl_comm_window_inner(win), self);
    ck_assert_int_eq(win->size, 1);
    float *send = D->alloc(D, 16 * sizeof(float)), *recv = D->alloc(D, 16 * sizeof(float));
    float h[16], back[16];
    for (int i = 0; i < 16; i++) h[i] = (float)i + 0.5f;
    D->to_device(D, send, h, sizeof h);
    D->transfer_wait(D);
    rs_args raw = {self, recv, send}, opened = {win, recv, send};
    ck_assert_int_eq(child_signal(reduce_scatter, &raw), SIGSEGV);
    reduce_scatter(&opened);
    D->to_host(D, back, recv, sizeof back);
    D->transfer_wait(D);
    ck_assert_int_eq(memcmp(back, h, sizeof h), 0);
    /* non-blocking: open from the start to the wait, closed after */
    zl_comm_request req = {0};
    ck_assert_int_eq(zl_comm_iallgather(win, recv, send, 16, ZL_F32, &req), ZL_OK);
    ck_assert_int_eq(child_signal(read_it, recv), 0);
    ck_assert_int_eq(zl_comm_wait(win, &req), ZL_OK);
    ck_assert_int_eq(child_signal(read_it, recv), SIGSEGV);
    /* split: a window too */
    zl_comm *sub;
    ck_assert_int_eq(zl_comm_split(win, 0, 0, "sub", &sub), ZL_OK);
    ck_assert_ptr_ne(zl_comm_window_inner(sub), sub);
    rs_args in_sub = {sub, recv, send};
    reduce_scatter(&in_sub);
    zl_comm_destroy(sub);
    zl_comm_destroy(win); /* and self, which it owns */
    D->free(D, send);
    D->free(D, recv);
}
END_TEST

/* Transfers are a GPU's copy stream's: queued, their destinations NaN until transfer_wait,
 * their sources read at the wait, in the order issued. */
static float *pending_free_ptr;
static void free_pending(void *p)
{
    (void)p;
    float h[16] = {0};
    D->to_device(D, pending_free_ptr, h, sizeof h);
    D->free(D, pending_free_ptr); /* before the wait: a bug */
}

START_TEST(test_discrete_transfers_deferred_until_wait)
{
    D->setup(D);
    enum { N = 16 };
    float h[N], back[N], twice[N];
    for (int i = 0; i < N; i++) h[i] = (float)i + 0.25f;
    float *d = D->alloc(D, sizeof h), *e = D->alloc(D, sizeof h);
    ck_assert(d && e);
    /* to_device: a kernel that reads before the wait reads NaN */
    D->to_device(D, d, h, sizeof h);
    ck_assert(D->nonfinite(D, d, N));
    D->transfer_wait(D);
    ck_assert(!D->nonfinite(D, d, N));
    /* to_host: the host's destination is NaN until the wait */
    D->to_host(D, back, d, sizeof back);
    for (int i = 0; i < N; i++) ck_assert(back[i] != back[i]);
    D->transfer_wait(D);
    ck_assert_int_eq(memcmp(back, h, sizeof h), 0);
    /* the source is read at the wait: a host buffer changed before it sends its new bytes */
    D->to_device(D, e, h, sizeof h);
    h[3] = -7.0f;
    D->transfer_wait(D);
    D->to_host(D, back, e, sizeof back);
    D->transfer_wait(D);
    ck_assert(back[3] == -7.0f);
    /* in order: a read of d queued before a write to d reads the old bytes */
    for (int i = 0; i < N; i++) twice[i] = 100.0f + (float)i;
    D->to_host(D, back, d, sizeof back);
    D->to_device(D, d, twice, sizeof twice);
    D->transfer_wait(D);
    ck_assert(back[3] == 3.25f);
    D->to_host(D, back, d, sizeof back);
    D->transfer_wait(D);
    ck_assert_int_eq(memcmp(back, twice, sizeof twice), 0);
    /* ref's own transfers have nothing to wait for */
    ck_assert_ptr_null(zl_ops_ref.transfer_wait);
    /* memory freed with a transfer pending: a panic (SIGABRT) */
    pending_free_ptr = e;
    ck_assert_int_eq(child_signal(free_pending, NULL), SIGABRT);
    D->free(D, d);
    D->free(D, e);
}
END_TEST

static Suite *discrete_suite(void)
{
    Suite *s = suite_create("discrete");
    TCase *tc = tcase_create("discrete");
    tcase_add_test(tc, test_discrete_alloc_zeroed_aligned_reused);
    tcase_add_test(tc, test_discrete_host_touch_is_sigsegv);
    tcase_add_test(tc, test_discrete_ops_are_refs);
    tcase_add_test(tc, test_discrete_window_opens_collectives);
    tcase_add_test(tc, test_discrete_transfers_deferred_until_wait);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(discrete_suite)
