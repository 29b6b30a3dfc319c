/* The cpu backend's zero and copy (cpu.c) on the paths their size picks: one memset or
 * memmove below 256 KiB, one contiguous share per thread above (cut at 4 KiB), each share
 * written in 1 MiB calls, or in one call from 32 MiB per share on. Sizes on both sides of
 * every threshold, odd sizes and misaligned pointers, 1 to 3 threads, and overlapping
 * copies. Every byte of the range is checked against the expected pattern, and guard bytes
 * around it for untouched. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"
#include "check_util.h"

enum { GUARD = 4096 };

static const zl_ops *cpu;

static void setup(void)
{
    cpu = zl_ops_find("cpu");
    ck_assert_ptr_nonnull(cpu);
}

static void set_threads(int nthreads)
{
    omp_set_num_threads(nthreads);
    int team = 0;
#pragma omp parallel
#pragma omp single
    team = omp_get_num_threads();
    ck_assert_int_eq(team, nthreads);
}

/* p[i] = pattern(i + shift, seed): bytes that differ between neighbours and between the
 * two seeds, with a period of 251 bytes (prime: no power-of-two share lines up with it) */
static void fill(unsigned char *p, size_t n, size_t shift, unsigned seed)
{
    size_t j = (shift % 251 * 7 + seed) % 251;
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(j + 1);
        j = j + 7 < 251 ? j + 7 : j + 7 - 251;
    }
}

static unsigned char *g_want; /* scratch for the expected bytes */

/* bytes [0, n) of p must be fill(.., shift, seed)'s, or 0 if zero */
static void expect_bytes(const unsigned char *p, size_t n, bool zero, size_t shift, unsigned seed,
                         const char *what)
{
    if (zero)
        memset(g_want, 0, n);
    else
        fill(g_want, n, shift, seed);
    if (memcmp(p, g_want, n) == 0) return;
    for (size_t i = 0; i < n; i++)
        if (p[i] != g_want[i])
            ck_abort_msg("%s: byte %zu of %zu is %d, want %d", what, i, n, p[i], g_want[i]);
}

static const size_t k_sizes[] = {
    1,
    (256 << 10) - 1,                      /* the largest serial one */
    256 << 10,                            /* the smallest parallel one */
    (256 << 10) + 13,                     /* shares of 4 KiB multiples and a ragged end */
    (4 << 20) + (1 << 19) + 5,            /* 4.5 MiB: shares of several 1 MiB calls */
    ((size_t)64 << 20) + 3 * 4096 + 77,   /* 2 threads: shares of 32 MiB and more, one call */
};

/* zero and copy of every size at misaligned offsets, with 1, 2 and 3 threads */
START_TEST(test_cpu_memory_zero_copy_every_path)
{
    size_t offsets[] = {0, 1, 4095};
    size_t maxn = k_sizes[sizeof k_sizes / sizeof k_sizes[0] - 1], nbuf = maxn + 2 * GUARD;
    unsigned char *dst = malloc(nbuf), *src = malloc(nbuf);
    g_want = malloc(nbuf);
    ck_assert(dst && src && g_want);
    fill(src, nbuf, 0, 2);
    for (int nth = 1; nth <= 3; nth++) {
        set_threads(nth);
        for (size_t s = 0; s < sizeof k_sizes / sizeof k_sizes[0]; s++) {
            size_t n = k_sizes[s];
            /* 64 MiB: only where the shares are 32 MiB or more, at one offset */
            if (n > ((size_t)8 << 20) && nth == 3) continue;
            size_t noff = n > ((size_t)8 << 20) ? 1 : sizeof offsets / sizeof offsets[0];
            for (size_t o = 0; o < noff; o++) {
                size_t off = offsets[o], span = n + 2 * GUARD;
                char what[96];
                unsigned char *d = dst + GUARD + off;
                fill(dst, span, 0, 1);
                cpu->zero(cpu, d, n);
                snprintf(what, sizeof what, "zero %zu bytes at +%zu, %d threads", n, off, nth);
                expect_bytes(d, n, true, 0, 0, what);
                expect_bytes(dst, GUARD + off, false, 0, 1, "zero: guard before");
                expect_bytes(d + n, GUARD - off, false, GUARD + off + n, 1, "zero: guard after");

                fill(dst, span, 0, 1);
                /* src at another misalignment than dst */
                cpu->copy(cpu, d, src + GUARD + 3, n);
                snprintf(what, sizeof what, "copy %zu bytes at +%zu, %d threads", n, off, nth);
                expect_bytes(d, n, false, GUARD + 3, 2, what);
                expect_bytes(dst, GUARD + off, false, 0, 1, "copy: guard before");
                expect_bytes(d + n, GUARD - off, false, GUARD + off + n, 1, "copy: guard after");
            }
        }
    }
    free(dst);
    free(src);
    free(g_want);
}
END_TEST

/* Overlapping ranges copy as memmove does, in both directions, on the parallel sizes. */
START_TEST(test_cpu_memory_overlapping_copy_is_memmove)
{
    set_threads(2);
    size_t n = (size_t)3 << 20, shift = 1000;
    unsigned char *buf = malloc(n + shift);
    g_want = malloc(n + shift);
    /* forward: dst after src */
    fill(buf, n + shift, 0, 3);
    cpu->copy(cpu, buf + shift, buf, n);
    expect_bytes(buf, shift, false, 0, 3, "overlap forward: head");
    expect_bytes(buf + shift, n, false, 0, 3, "overlap forward");
    /* backward: dst before src */
    fill(buf, n + shift, 0, 4);
    cpu->copy(cpu, buf, buf + shift, n);
    expect_bytes(buf, n, false, shift, 4, "overlap backward");
    expect_bytes(buf + n, shift, false, n, 4, "overlap backward: tail");
    free(buf);
    free(g_want);
}
END_TEST

static Suite *cpu_memory_suite(void)
{
    Suite *s = suite_create("cpu_memory");
    TCase *tc = tcase_create("cpu_memory");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_cpu_memory_zero_copy_every_path);
    tcase_add_test(tc, test_cpu_memory_overlapping_copy_is_memmove);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(cpu_memory_suite)
