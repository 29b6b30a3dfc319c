/* The CUDA backend's caching allocator (backends/cuda/cuda_alloc.h), run on an arena of
 * host memory: the bookkeeping is plain C, so it is tested on every machine. The blocks
 * are written through to prove they do not overlap. */
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda.h"
#include "backends/cuda/cuda_alloc.h"
#include "check_util.h"

#define ARENA ((size_t)1 << 20)

static unsigned char *arena;
static zl_cuda_alloc al;

static void setup(void)
{
    arena = aligned_alloc(ZL_CUDA_ALIGN, ARENA);
    ck_assert_ptr_nonnull(arena);
    ck_assert(zl_cuda_alloc_init(&al, ARENA));
}

static void teardown(void)
{
    zl_cuda_alloc_destroy(&al);
    free(arena);
}

/* The blocks cover the arena in address order, with no two free neighbours. */
static void check_invariants(void)
{
    size_t at = 0, used = 0, live = 0;
    for (size_t i = 0; i < al.nblocks; i++) {
        ck_assert_uint_eq(al.blocks[i].offset, at);
        ck_assert_uint_eq(al.blocks[i].size % ZL_CUDA_ALIGN, 0);
        ck_assert_uint_gt(al.blocks[i].size, 0);
        if (i > 0) ck_assert(al.blocks[i].used || al.blocks[i - 1].used);
        if (al.blocks[i].used) used += al.blocks[i].size, live++;
        at += al.blocks[i].size;
    }
    ck_assert_uint_eq(at, al.capacity);
    ck_assert_uint_eq(used, al.used_nbytes);
    ck_assert_uint_eq(live, al.live);
}

START_TEST(test_aligned_and_disjoint)
{
    size_t sizes[] = {1, 255, 256, 257, 1000, 4096, 3, 70000};
    size_t off[8];
    for (int i = 0; i < 8; i++) {
        off[i] = zl_cuda_alloc_take(&al, sizes[i]);
        ck_assert_uint_ne(off[i], ZL_CUDA_NO_BLOCK);
        ck_assert_uint_eq((uintptr_t)(arena + off[i]) % ZL_CUDA_ALIGN, 0);
        memset(arena + off[i], i + 1, sizes[i]);
    }
    for (int i = 0; i < 8; i++)
        for (size_t j = 0; j < sizes[i]; j++) ck_assert_int_eq(arena[off[i] + j], i + 1);
    ck_assert_uint_eq(al.live, 8);
    check_invariants();
}
END_TEST

START_TEST(test_reuse_best_fit)
{
    size_t a = zl_cuda_alloc_take(&al, 1024);
    size_t sep1 = zl_cuda_alloc_take(&al, 256);
    size_t b = zl_cuda_alloc_take(&al, 4096);
    size_t sep2 = zl_cuda_alloc_take(&al, 256);
    ck_assert(zl_cuda_alloc_give(&al, a, NULL));
    ck_assert(zl_cuda_alloc_give(&al, b, NULL));
    /* 1000 bytes fit both holes and the tail: best fit takes the 1024-byte hole */
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, 1000), a);
    /* 2000 bytes fit only the 4096-byte hole (before the tail) */
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, 2000), b);
    (void)sep1, (void)sep2;
    check_invariants();
}
END_TEST

START_TEST(test_coalescing)
{
    size_t o[4];
    for (int i = 0; i < 4; i++) o[i] = zl_cuda_alloc_take(&al, ARENA / 4);
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, 1), ZL_CUDA_NO_BLOCK); /* full */
    /* free 1 and 2 (neighbours), then 0 and 3: one free block again */
    ck_assert(zl_cuda_alloc_give(&al, o[1], NULL));
    ck_assert(zl_cuda_alloc_give(&al, o[2], NULL));
    check_invariants();
    ck_assert_uint_eq(zl_cuda_alloc_largest_free(&al), ARENA / 2);
    ck_assert(zl_cuda_alloc_give(&al, o[0], NULL));
    ck_assert(zl_cuda_alloc_give(&al, o[3], NULL));
    check_invariants();
    ck_assert_uint_eq(al.nblocks, 1);
    ck_assert_uint_eq(al.used_nbytes, 0);
    ck_assert_uint_eq(al.peak_nbytes, ARENA);
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, ARENA), 0);
}
END_TEST

/* Half the arena free in total, but in 256-byte holes: a 512-byte request fails. */
START_TEST(test_fragmentation_fails)
{
    size_t n = ARENA / ZL_CUDA_ALIGN;
    size_t *o = malloc(n * sizeof *o);
    for (size_t i = 0; i < n; i++) {
        o[i] = zl_cuda_alloc_take(&al, ZL_CUDA_ALIGN);
        ck_assert_uint_ne(o[i], ZL_CUDA_NO_BLOCK);
    }
    for (size_t i = 0; i < n; i += 2) ck_assert(zl_cuda_alloc_give(&al, o[i], NULL));
    check_invariants();
    ck_assert_uint_eq(al.capacity - al.used_nbytes, ARENA / 2);
    ck_assert_uint_eq(zl_cuda_alloc_largest_free(&al), ZL_CUDA_ALIGN);
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, 2 * ZL_CUDA_ALIGN), ZL_CUDA_NO_BLOCK);
    ck_assert_uint_ne(zl_cuda_alloc_take(&al, ZL_CUDA_ALIGN), ZL_CUDA_NO_BLOCK);
    free(o);
}
END_TEST

START_TEST(test_double_free_and_foreign)
{
    size_t a = zl_cuda_alloc_take(&al, 1000);
    size_t b = zl_cuda_alloc_take(&al, 1000);
    size_t n = 0;
    ck_assert(zl_cuda_alloc_give(&al, a, &n));
    ck_assert_uint_eq(n, 1024);
    ck_assert(!zl_cuda_alloc_give(&al, a, NULL));      /* twice */
    ck_assert(!zl_cuda_alloc_give(&al, b + 256, NULL)); /* inside a block */
    ck_assert(!zl_cuda_alloc_give(&al, ARENA * 2, NULL)); /* outside the arena */
    ck_assert_uint_eq(al.live, 1);
    check_invariants();
}
END_TEST

START_TEST(test_too_large_and_empty)
{
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, ARENA + 1), ZL_CUDA_NO_BLOCK);
    ck_assert_uint_eq(zl_cuda_alloc_take(&al, SIZE_MAX), ZL_CUDA_NO_BLOCK);
    zl_cuda_alloc empty;
    ck_assert(zl_cuda_alloc_init(&empty, 100)); /* less than one block */
    ck_assert_uint_eq(zl_cuda_alloc_take(&empty, 1), ZL_CUDA_NO_BLOCK);
    zl_cuda_alloc_destroy(&empty);
}
END_TEST

/* Random takes and gives against a shadow map of the arena: no byte handed out twice. */
START_TEST(test_random_against_shadow)
{
    enum { SLOTS = 200 };
    size_t off[SLOTS], len[SLOTS];
    bool held[SLOTS] = {0};
    unsigned char *owner = calloc(ARENA, 1);
    uint64_t r = 12345;
    for (int it = 0; it < 2000; it++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int s = (int)((r >> 33) % SLOTS);
        if (held[s]) {
            memset(owner + off[s], 0, len[s]);
            ck_assert(zl_cuda_alloc_give(&al, off[s], NULL));
            held[s] = false;
        } else {
            len[s] = 1 + (size_t)((r >> 13) % 20000);
            off[s] = zl_cuda_alloc_take(&al, len[s]);
            if (off[s] == ZL_CUDA_NO_BLOCK) continue;
            /* every byte of the new block was free */
            ck_assert_ptr_null(memchr(owner + off[s], 1, len[s]));
            memset(owner + off[s], 1, len[s]);
            held[s] = true;
        }
        if (it % 500 == 0) check_invariants();
    }
    check_invariants();
    free(owner);
}
END_TEST

/* The arena's size: the card's free memory less the reserve, or the budget asked when the
 * card has it; less than asked is flagged (a warning in the run), nothing is an error. */
START_TEST(test_budget)
{
    const size_t G = (size_t)1 << 30, R = ZL_CUDA_RESERVE_BYTES;
    int short_of = -1;
    ck_assert_uint_eq(zl_cuda_budget(0, 80 * G, &short_of), 80 * G - R);
    ck_assert_int_eq(short_of, 0);
    ck_assert_uint_eq(zl_cuda_budget(16 * G, 80 * G, &short_of), 16 * G);
    ck_assert_int_eq(short_of, 0);
    ck_assert_uint_eq(zl_cuda_budget(80 * G, 40 * G, &short_of), 40 * G - R);
    ck_assert_int_eq(short_of, 1);
    ck_assert_uint_eq(zl_cuda_budget(0, R / 2, &short_of), 0);
    size_t budget = 1;
    ck_assert_int_eq(zl__cuda_arena_budget(0, 0, R / 2, &budget), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "GPU 0 has"));
    ck_assert_int_eq(zl__cuda_arena_budget(0, 80 * G, 40 * G, &budget), ZL_OK);
    ck_assert_uint_eq(budget, 40 * G - R);
    /* A small budget asked of a card that has it is the budget, not a card too full */
    ck_assert_int_eq(zl__cuda_arena_budget(0, 512 << 10, 80 * G, &budget), ZL_OK);
    ck_assert_uint_eq(budget, 512 << 10);
    /* ... but a card that lacks even that is */
    ck_assert_int_eq(zl__cuda_arena_budget(0, 512 << 10, R + (256 << 10), &budget), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "GPU 0 has"));
}
END_TEST

/* The GPU a process drives: the launcher's local rank (modulo the devices, in cuda.cu). */
START_TEST(test_local_rank)
{
    unsetenv("MPI_LOCALRANKID");
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("SLURM_LOCALID");
    ck_assert_int_eq(zl_cuda_local_rank(), 0);
    setenv("SLURM_LOCALID", "5", 1);
    ck_assert_int_eq(zl_cuda_local_rank(), 5);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
    ck_assert_int_eq(zl_cuda_local_rank(), 3);
    setenv("MPI_LOCALRANKID", "2", 1);
    ck_assert_int_eq(zl_cuda_local_rank(), 2);
    setenv("MPI_LOCALRANKID", "x", 1); /* not a number: the next one */
    ck_assert_int_eq(zl_cuda_local_rank(), 3);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("cuda_alloc");
    TCase *tc = tcase_create("bookkeeping");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_aligned_and_disjoint);
    tcase_add_test(tc, test_reuse_best_fit);
    tcase_add_test(tc, test_coalescing);
    tcase_add_test(tc, test_fragmentation_fails);
    tcase_add_test(tc, test_double_free_and_foreign);
    tcase_add_test(tc, test_too_large_and_empty);
    tcase_add_test(tc, test_random_against_shadow);
    suite_add_tcase(s, tc);
    TCase *dev = tcase_create("device");
    tcase_add_test(dev, test_budget);
    tcase_add_test(dev, test_local_rank);
    suite_add_tcase(s, dev);
    return s;
}

int main(void) { return zl_test_run(alloc_suite()); }
