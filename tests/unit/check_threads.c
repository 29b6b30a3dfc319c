/* The default thread count, on made-up machines: an idle laptop, two ranks on it, a
 * machine busy with other work, a big node. */
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "check_util.h"
#include "base/threads.h"

START_TEST(test_threads_idle_machine_uses_every_core)
{
    ck_assert_int_eq(zl_threads_choose(2, 1, 1), 2);   /* only this process runs */
    ck_assert_int_eq(zl_threads_choose(64, 1, 1), 64);
    ck_assert_int_eq(zl_threads_choose(2, 0, 1), 2);   /* /proc/loadavg unreadable */
}
END_TEST

START_TEST(test_threads_ranks_share_the_cores)
{
    ck_assert_int_eq(zl_threads_choose(2, 2, 2), 1);   /* mpiexec -n 2 on 2 cores */
    ck_assert_int_eq(zl_threads_choose(2, 1, 2), 1);   /* the other rank not started yet */
    ck_assert_int_eq(zl_threads_choose(64, 8, 8), 8);  /* 8 ranks on a 64-core node */
    ck_assert_int_eq(zl_threads_choose(2, 4, 4), 1);   /* more ranks than cores: still 1 */
}
END_TEST

START_TEST(test_threads_busy_machine_leaves_room)
{
    ck_assert_int_eq(zl_threads_choose(2, 7, 1), 1);   /* six busy loops beside us */
    ck_assert_int_eq(zl_threads_choose(16, 5, 1), 12); /* four cores busy elsewhere */
    ck_assert_int_eq(zl_threads_choose(16, 6, 2), 6);  /* ... shared by two ranks */
    ck_assert_int_eq(zl_threads_choose(0, 0, 0), 1);   /* nonsense in, one thread out */
}
END_TEST

/* The machine's own answer is at least 1 and at most its cores, and says why. */
/* Asked-for threads past the cores are allowed, with a warning that says what fits. */
START_TEST(test_threads_oversubscription_is_named)
{
    ck_assert(!zl_threads_oversubscribed(2, 2, 1));
    ck_assert(!zl_threads_oversubscribed(1, 2, 2));
    ck_assert(zl_threads_oversubscribed(2, 2, 2)); /* mpiexec -n 2 with 2 threads each */
    ck_assert(zl_threads_oversubscribed(3, 2, 1));
    ck_assert(!zl_threads_oversubscribed(8, 64, 8));
    ck_assert(zl_threads_oversubscribed(9, 64, 8));
    ck_assert(!zl_threads_oversubscribed(1, 0, 0)); /* unknown counts: one of each */
    /* this machine: its own core count fits, one more thread per core does not */
    char warn[320];
    ck_assert(!zl_threads_check(1, 0, warn, sizeof warn));
    ck_assert(zl_threads_check(1 << 20, 0, warn, sizeof warn));
    ck_assert(zl_threads_check(1, 1 << 20, warn, sizeof warn)); /* the caller's rank count */
    ck_assert_ptr_nonnull(strstr(warn, "ranks x 1 threads"));
    ck_assert_ptr_nonnull(strstr(warn, "threads on"));
    ck_assert_ptr_nonnull(strstr(warn, "hint: --threads"));
}
END_TEST

/* Ranks bound to cores of their own (mpiexec -bind-to core:N) count alone; unbound ranks,
 * or ranks bound to overlapping sets, share. */
START_TEST(test_threads_sharing_by_affinity_masks)
{
    enum { W = ZL_THREADS_MASK_WORDS };
    uint32_t m[4][W];
    memset(m, 0, sizeof m);
    for (int r = 0; r < 4; r++) m[r][0] = 0xffu; /* unbound: 8 cores each, all the same */
    ck_assert_int_eq(zl_threads_sharing(&m[0][0], 4, 2), 4);
    for (int r = 0; r < 4; r++) m[r][0] = 0x3u << (2 * r); /* bound, 2 cores each */
    ck_assert_int_eq(zl_threads_sharing(&m[0][0], 4, 0), 1);
    ck_assert_int_eq(zl_threads_sharing(&m[0][0], 4, 3), 1);
    m[1][0] = 0x6u; /* rank 1 on cores 1-2: overlaps ranks 0 and 2 */
    ck_assert_int_eq(zl_threads_sharing(&m[0][0], 4, 1), 2);
    ck_assert_int_eq(zl_threads_sharing(&m[0][0], 4, 3), 1);
    m[3][0] = 0;
    m[3][W - 1] = 1u << 31; /* the last CPU a mask holds */
    m[0][W - 1] = 1u << 31;
    ck_assert_int_eq(zl_threads_sharing(&m[0][0], 4, 3), 2);
    uint32_t self[W]; /* this process: at least one core */
    zl_threads_mask(self);
    bool any = false;
    for (int w = 0; w < W; w++) any |= self[w] != 0;
    ck_assert(any);
    ck_assert_int_eq(zl_threads_sharing(self, 1, 0), 1);
}
END_TEST

START_TEST(test_threads_default_reads_the_machine)
{
    const char *why = NULL;
    int n = zl_threads_default(0, 0, &why);
    ck_assert_int_ge(n, 1);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_nonnull(strstr(why, "core"));
    setenv("MPI_LOCALNRANKS", "1000", 1); /* far more ranks than cores: one thread each */
    ck_assert_int_eq(zl_threads_default(0, 0, NULL), 1);
    unsetenv("MPI_LOCALNRANKS");
    ck_assert_int_eq(zl_threads_default(1000, 1000, NULL), 1); /* the caller's count (MPI's) */
    /* Without MPI's count it counts one rank: the same answer, when the machine is in the
     * same state for both calls (each reads the running tasks now, and other work on the
     * machine changes that between two calls: retried until two calls in a row agree). */
    bool same = false;
    for (int i = 0; i < 50 && !same; i++) same = zl_threads_default(1, 1, NULL) == zl_threads_default(0, 0, NULL);
    ck_assert_msg(same, "zl_threads_default(1, 1) never agreed with (0, 0) in 50 tries");
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("choose");
    tcase_add_test(tc, test_threads_idle_machine_uses_every_core);
    tcase_add_test(tc, test_threads_ranks_share_the_cores);
    tcase_add_test(tc, test_threads_busy_machine_leaves_room);
    tcase_add_test(tc, test_threads_sharing_by_affinity_masks);
    tcase_add_test(tc, test_threads_default_reads_the_machine);
    tcase_add_test(tc, test_threads_oversubscription_is_named);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(threads_suite)
