/* The fp16 loss scaler against DeepSpeed's sequences. Every expected value below is worked
 * out by hand from DeepSpeed's rules (reference §1.4): overflow -> use up hysteresis, then
 * halve (ZeRO) or always halve (FP16_Optimizer); clean -> grow x2 when
 * stable = cur_iter - last_overflow_iter - 1 is > 0 and a multiple of the window. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "zero/loss_scaler.h"

#define NO_EVENT NULL, 0

/* One expected update: input, then the state after it. */
typedef struct step {
    bool overflow;
    double scale;
    int64_t hyst;
} step;

/* Feed the steps in order and compare scale, hysteresis and skip after each one. */
static void run_steps(zl_loss_scaler *ls, const step *steps, int n, int first_index)
{
    for (int i = 0; i < n; i++) {
        bool skip = !steps[i].overflow;
        zl_status st = zl_loss_scaler_update(ls, steps[i].overflow, &skip, NO_EVENT);
        ck_assert_msg(st == ZL_OK, "update %d: status %d (%s)", first_index + i, st,
                      zl_last_error());
        ck_assert_msg(skip == steps[i].overflow, "update %d: skip %d", first_index + i, skip);
        ck_assert_msg(ls->cur_scale == steps[i].scale, "update %d: scale %g, want %g",
                      first_index + i, ls->cur_scale, steps[i].scale);
        ck_assert_msg(ls->cur_hysteresis == steps[i].hyst, "update %d: hysteresis %lld, want %lld",
                      first_index + i, (long long)ls->cur_hysteresis, (long long)steps[i].hyst);
        ck_assert_int_eq(ls->cur_iter, first_index + i + 1);
    }
}

/* Clean updates from index `from` to `to` inclusive; the scale must change only at `to`. */
static void run_clean_until(zl_loss_scaler *ls, int from, int to, double before, double after,
                            int64_t hyst_before, int64_t hyst_after)
{
    for (int i = from; i <= to; i++) {
        bool skip = true;
        ck_assert_int_eq(zl_loss_scaler_update(ls, false, &skip, NO_EVENT), ZL_OK);
        ck_assert(!skip);
        double want = i == to ? after : before;
        int64_t want_h = i == to ? hyst_after : hyst_before;
        ck_assert_msg(ls->cur_scale == want, "update %d: scale %g, want %g", i, ls->cur_scale,
                      want);
        ck_assert_msg(ls->cur_hysteresis == want_h, "update %d: hysteresis %lld, want %lld", i,
                      (long long)ls->cur_hysteresis, (long long)want_h);
    }
}

START_TEST(test_loss_scaler_zero_defaults_vector)
{
    /* init 2^16, window 1000, hysteresis 2: overflows at 0, 1, 2. */
    zl_loss_scaler ls;
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 1000, 2, false, 1), ZL_OK);
    ck_assert(ls.dynamic);
    ck_assert(ls.cur_scale == 65536.0);
    ck_assert_int_eq(ls.cur_hysteresis, 2);
    ck_assert_int_eq(ls.last_overflow_iter, -1);
    const step s[] = {
        {true, 65536, 1}, /* hysteresis 2 -> 1, scale kept */
        {true, 32768, 1}, /* hysteresis exhausted: halve */
        {true, 16384, 1}, /* not refilled by the drop: halve again */
    };
    run_steps(&ls, s, 3, 0);
    ck_assert_int_eq(ls.last_overflow_iter, 2);
    /* stable = i - 2 - 1 reaches 1000 at update 1003: first doubling, hysteresis refilled. */
    run_clean_until(&ls, 3, 1003, 16384, 32768, 1, 2);
    /* The next doubling needs stable = 2000, i.e. update 2003. */
    run_clean_until(&ls, 1004, 2003, 32768, 65536, 2, 2);
}
END_TEST

START_TEST(test_loss_scaler_zero_window2_vector)
{
    /* O . O . . . O O with window 2, hysteresis 2. */
    zl_loss_scaler ls;
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 2, 2, false, 1), ZL_OK);
    const step s[] = {
        {true, 65536, 1},  /* 0: hysteresis 2 -> 1 */
        {false, 65536, 1}, /* 1: stable 1-0-1 = 0 */
        {true, 32768, 1},  /* 2: halve */
        {false, 32768, 1}, /* 3: stable 0 */
        {false, 32768, 1}, /* 4: stable 1 */
        {false, 65536, 2}, /* 5: stable 2 = window: grow, hysteresis refilled */
        {true, 65536, 1},  /* 6: hysteresis 2 -> 1 */
        {true, 32768, 1},  /* 7: halve */
    };
    run_steps(&ls, s, 8, 0);
    ck_assert_int_eq(ls.last_overflow_iter, 7);
}
END_TEST

START_TEST(test_loss_scaler_events_use_deepspeed_wording)
{
    zl_loss_scaler ls;
    char ev[256];
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 2, 2, false, 1), ZL_OK);
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_str_eq(ev, "OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, but "
                         "hysteresis is 2. Reducing hysteresis to 1");
    ck_assert_int_eq(zl_loss_scaler_update(&ls, false, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_str_eq(ev, "");
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_str_eq(ev, "OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing "
                         "to 32768");
    ck_assert_int_eq(zl_loss_scaler_update(&ls, false, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_int_eq(zl_loss_scaler_update(&ls, false, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_int_eq(zl_loss_scaler_update(&ls, false, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_ptr_nonnull(strstr(ev, "Increasing loss scale from 32768 to 65536"));
    /* A short buffer truncates and stays terminated. */
    char tiny[8];
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, tiny, sizeof tiny), ZL_OK);
    ck_assert_str_eq(tiny, "OVERFLO");
}
END_TEST

START_TEST(test_loss_scaler_consecutive_hysteresis_refills)
{
    /* hysteresis 3, consecutive: a clean step refills, so isolated overflows never halve. */
    zl_loss_scaler ls;
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 1000, 3, true, 1), ZL_OK);
    const step s[] = {
        {true, 65536, 2},  /* 3 -> 2 */
        {true, 65536, 1},  /* 2 -> 1 */
        {false, 65536, 3}, /* clean step refills to 3 */
        {true, 65536, 2},
        {false, 65536, 3},
        {true, 65536, 2},
        {true, 65536, 1},
        {true, 32768, 1}, /* three in a row: halve */
        {true, 16384, 1},
        {false, 16384, 3},
    };
    run_steps(&ls, s, 10, 0);

    /* The same overflows without consecutive_hysteresis: the clean step does not refill. */
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 1000, 3, false, 1), ZL_OK);
    const step t[] = {
        {true, 65536, 2},
        {true, 65536, 1},
        {false, 65536, 1},
        {true, 32768, 1},
    };
    run_steps(&ls, t, 4, 0);
}
END_TEST

START_TEST(test_loss_scaler_zero_min_scale_error)
{
    /* init 2^2 = 4, min 1, hysteresis 1: 4 -> 2 -> 1 -> error. */
    zl_loss_scaler ls;
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 2, 1000, 1, false, 1), ZL_OK);
    const step s[] = {{true, 2, 1}, {true, 1, 1}};
    run_steps(&ls, s, 2, 0);
    zl_error_clear();
    bool skip = false;
    char ev[256];
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, &skip, ev, sizeof ev), ZL_ERR_TRAINING);
    ck_assert(skip);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "Current loss scale already at minimum - "
                                                  "cannot decrease scale anymore. Exiting run."));
    ck_assert_ptr_nonnull(strstr(ev, "Current loss scale already at minimum"));
    /* The raise happens before the overflow is recorded: state unchanged. */
    ck_assert(ls.cur_scale == 1.0);
    ck_assert_int_eq(ls.cur_iter, 2);
    ck_assert_int_eq(ls.last_overflow_iter, 1);

    /* At the minimum with hysteresis left, the first overflow only uses hysteresis. */
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 0, 1000, 2, false, 1), ZL_OK);
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, NO_EVENT), ZL_OK);
    ck_assert_int_eq(ls.cur_hysteresis, 1);
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, NO_EVENT), ZL_ERR_TRAINING);

    /* A min that is not a power of two: 8 -> 4 -> max(2, 3) = 3 -> error. */
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 3, 1000, 1, false, 3), ZL_OK);
    const step t[] = {{true, 4, 1}, {true, 3, 1}};
    run_steps(&ls, t, 2, 0);
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, NO_EVENT), ZL_ERR_TRAINING);
}
END_TEST

START_TEST(test_loss_scaler_fp16_optimizer_clamps_without_hysteresis)
{
    /* hysteresis 2 is passed but FP16_Optimizer has none: every overflow halves, clamp at 1. */
    zl_loss_scaler ls;
    ck_assert_int_eq(
        zl_loss_scaler_init(&ls, ZL_SCALER_FP16_OPTIMIZER, 0, 2, 2, 2, true, 1), ZL_OK);
    const step s[] = {
        {true, 2, 1},  /* 0: 4 -> 2 */
        {true, 1, 1},  /* 1: 2 -> 1 */
        {true, 1, 1},  /* 2: clamped, no error */
        {true, 1, 1},  /* 3: clamped */
        {false, 1, 1}, /* 4: stable 0 */
        {false, 1, 1}, /* 5: stable 1 */
        {false, 2, 1}, /* 6: stable 2: grow */
        {false, 2, 1}, /* 7: stable 3 */
        {false, 4, 1}, /* 8: stable 4: grow */
        {true, 2, 1},  /* 9: halve */
    };
    run_steps(&ls, s, 10, 0);
    char ev[256];
    ck_assert_int_eq(zl_loss_scaler_update(&ls, true, NULL, ev, sizeof ev), ZL_OK);
    ck_assert_ptr_nonnull(strstr(ev, "Reducing dynamic loss scale from 2 to 1"));
    ck_assert_ptr_nonnull(strstr(ev, "Grad overflow on iteration 10"));
}
END_TEST

START_TEST(test_loss_scaler_static_scale_never_changes)
{
    zl_loss_scaler ls;
    /* The dynamic-only arguments are ignored (window 0 would be rejected if dynamic). */
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 128, 16, 0, 0, false, 0), ZL_OK);
    ck_assert(!ls.dynamic);
    const bool pattern[] = {true, false, true, true, false, false, false, true, false};
    for (int i = 0; i < 9; i++) {
        bool skip = !pattern[i];
        char ev[256];
        ck_assert_int_eq(zl_loss_scaler_update(&ls, pattern[i], &skip, ev, sizeof ev), ZL_OK);
        ck_assert(skip == pattern[i]);
        ck_assert(ls.cur_scale == 128.0);
        if (pattern[i])
            ck_assert_ptr_nonnull(strstr(ev, "Using static loss scale of 128"));
        else
            ck_assert_str_eq(ev, "");
    }
    /* Many clean steps never grow it either. */
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(zl_loss_scaler_update(&ls, false, NULL, NO_EVENT), ZL_OK);
    ck_assert(ls.cur_scale == 128.0);
}
END_TEST

START_TEST(test_loss_scaler_repeated_growth)
{
    /* No overflow, last_overflow_iter = -1: stable = i at update i, so with window 3 the
     * scale doubles at updates 3, 6, 9, ...: after update i it is 2^floor(i/3). */
    for (int k = 0; k < 2; k++) {
        zl_scaler_kind kind = k == 0 ? ZL_SCALER_ZERO : ZL_SCALER_FP16_OPTIMIZER;
        zl_loss_scaler ls;
        ck_assert_int_eq(zl_loss_scaler_init(&ls, kind, 0, 0, 3, 2, false, 1), ZL_OK);
        for (int i = 0; i < 40; i++) {
            ck_assert_int_eq(zl_loss_scaler_update(&ls, false, NULL, NO_EVENT), ZL_OK);
            ck_assert_msg(ls.cur_scale == ldexp(1.0, i / 3), "kind %d update %d: scale %g", k,
                          i, ls.cur_scale);
        }
        ck_assert(ls.cur_scale == 8192.0); /* 2^13 after update 39 */
    }
    /* window 1: every clean step after the first doubles. */
    zl_loss_scaler ls;
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 4, 1, 2, false, 1), ZL_OK);
    const step s[] = {{false, 16, 2}, {false, 32, 2}, {false, 64, 2}, {true, 64, 1},
                      {false, 64, 1}, {false, 128, 2}};
    run_steps(&ls, s, 6, 0);
}
END_TEST

START_TEST(test_loss_scaler_state_copy_resumes)
{
    /* The struct is the checkpoint: a copy taken mid-run continues identically. */
    zl_loss_scaler a, b;
    ck_assert_int_eq(zl_loss_scaler_init(&a, ZL_SCALER_ZERO, 0, 16, 2, 2, false, 1), ZL_OK);
    const step first[] = {{true, 65536, 1}, {false, 65536, 1}, {true, 32768, 1},
                          {false, 32768, 1}};
    run_steps(&a, first, 4, 0);
    b = a;
    const step rest[] = {{false, 32768, 1}, {false, 65536, 2}, {true, 65536, 1},
                         {true, 32768, 1}};
    run_steps(&b, rest, 4, 4);
}
END_TEST

START_TEST(test_loss_scaler_validation)
{
    zl_loss_scaler ls;
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 0, 2, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "loss_scale_window"));
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_FP16_OPTIMIZER, 0, 16, -5, 2, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "-5"));
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 1000, 2, false, 0),
                     ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "min_loss_scale"));
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 1000, 2, false, -1),
                     ZL_ERR_CONFIG);
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, -1, 16, 1000, 2, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "fp16.loss_scale"));
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, NAN, 16, 1000, 2, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, INFINITY, 16, 1000, 2, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 16, 1000, 0, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "hysteresis"));
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_ZERO, 0, 5000, 1000, 2, false, 1),
                     ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "initial_scale_power"));
    /* FP16_Optimizer ignores hysteresis, so 0 is accepted there. */
    ck_assert_int_eq(zl_loss_scaler_init(&ls, ZL_SCALER_FP16_OPTIMIZER, 0, 16, 1000, 0, false, 1),
                     ZL_OK);
    ck_assert_int_eq(zl_loss_scaler_init(&ls, (zl_scaler_kind)7, 0, 16, 1000, 2, false, 1),
                     ZL_ERR_INVALID);
}
END_TEST

static Suite *loss_scaler_suite(void)
{
    Suite *s = suite_create("loss_scaler");
    TCase *tc = tcase_create("loss_scaler");
    tcase_add_test(tc, test_loss_scaler_zero_defaults_vector);
    tcase_add_test(tc, test_loss_scaler_zero_window2_vector);
    tcase_add_test(tc, test_loss_scaler_events_use_deepspeed_wording);
    tcase_add_test(tc, test_loss_scaler_consecutive_hysteresis_refills);
    tcase_add_test(tc, test_loss_scaler_zero_min_scale_error);
    tcase_add_test(tc, test_loss_scaler_fp16_optimizer_clamps_without_hysteresis);
    tcase_add_test(tc, test_loss_scaler_static_scale_never_changes);
    tcase_add_test(tc, test_loss_scaler_repeated_growth);
    tcase_add_test(tc, test_loss_scaler_state_copy_resumes);
    tcase_add_test(tc, test_loss_scaler_validation);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(loss_scaler_suite)
