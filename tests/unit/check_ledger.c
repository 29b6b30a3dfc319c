/* The memory ledger and the device allocation path that feeds it. */
#include <string.h>

#include "check_util.h"
#include "core/device.h"
#include "core/tensor.h"
#include "sim/ledger.h"
#include "zero/zero.h" /* the remedies ZeRO offers, which the ledger reports */

START_TEST(test_ledger_current_and_peak_per_tag)
{
    zl_ledger l;
    zl_ledger_init(&l, "rank 0 (test)", 0);
    ck_assert_int_eq(zl_ledger_alloc(&l, "param", 1000), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "act.block0", 300), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "act.block1", 200), ZL_OK);
    zl_ledger_free(&l, "act.block0", 300);
    ck_assert_int_eq(zl_ledger_alloc(&l, "act.block0", 100), ZL_OK);
    ck_assert_uint_eq(zl_ledger_current(&l, "param"), 1000);
    ck_assert_uint_eq(zl_ledger_current(&l, "act.block0"), 100);
    ck_assert_uint_eq(zl_ledger_peak(&l, "act.block0"), 300);
    ck_assert_uint_eq(zl_ledger_current_prefix(&l, "act."), 300);
    ck_assert_uint_eq(l.cur_nbytes, 1300);
    ck_assert_uint_eq(l.peak_nbytes, 1500);
    ck_assert_uint_eq(zl_ledger_current(&l, "nothing"), 0);
    zl_ledger_reset_peaks(&l);
    ck_assert_uint_eq(l.peak_nbytes, 1300);
    ck_assert_uint_eq(zl_ledger_peak(&l, "act.block0"), 100);
}
END_TEST

START_TEST(test_ledger_budget_error_names_everything)
{
    zl_ledger l;
    zl_ledger_init(&l, "rank 3 (V100-16GB)", 4096);
    ck_assert_int_eq(zl_ledger_alloc(&l, "param", 1024), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "adam.m", 2048), ZL_OK);
    /* Alone, the ledger knows no remedy for optimizer state beyond a larger device ... */
    char hint[512];
    zl_ledger_hint(&l, "adam.m", hint, sizeof hint);
    ck_assert_ptr_null(strstr(hint, "ZeRO"));
    ck_assert_ptr_nonnull(strstr(hint, "more memory"));
    /* ... src/zero tells it what partitioning would do (data-parallel size unknown). */
    zl_zero_set_memory_hint(&l, 0, -1, 0, 1);
    zl_status st = zl_ledger_alloc(&l, "adam.v", 2048);
    ck_assert_int_eq(st, ZL_ERR_OOM);
    const char *msg = zl_last_error();
    ck_assert_ptr_nonnull(strstr(msg, "rank 3 (V100-16GB)"));   /* the device */
    ck_assert_ptr_nonnull(strstr(msg, "2.00 KiB for 'adam.v'")); /* the request */
    ck_assert_ptr_nonnull(strstr(msg, "budget 4.00 KiB"));       /* the budget */
    ck_assert_ptr_nonnull(strstr(msg, "3.00 KiB already live")); /* what is live */
    ck_assert_ptr_nonnull(strstr(msg, "param"));                 /* ... by tag */
    ck_assert_ptr_nonnull(strstr(msg, "adam.m"));
    ck_assert_ptr_nonnull(strstr(msg, "hint: optimizer state")); /* and a remedy */
    ck_assert_ptr_nonnull(strstr(msg, "ZeRO stage 1"));
    /* The failed request left nothing behind. */
    ck_assert_uint_eq(l.cur_nbytes, 3072);
    ck_assert_uint_eq(zl_ledger_current(&l, "adam.v"), 0);
    /* Exactly filling the budget is allowed; one byte more is not. */
    ck_assert_int_eq(zl_ledger_alloc(&l, "grad", 1024), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "grad", 1), ZL_ERR_OOM);
    /* A request larger than the whole budget cannot wrap around. */
    ck_assert_int_eq(zl_ledger_alloc(&l, "act.x", (size_t)-1), ZL_ERR_OOM);
}
END_TEST

START_TEST(test_ledger_hint_follows_largest_tag)
{
    zl_ledger l;
    zl_ledger_init(&l, "dev", 1000);
    ck_assert_int_eq(zl_ledger_alloc(&l, "act.block0", 900), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "param", 200), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "train_micro_batch_size_per_gpu"));
}
END_TEST

/* Activations: checkpointing is suggested while it is off, and only then. */
START_TEST(test_ledger_hint_suggests_activation_checkpointing_when_off)
{
    zl_ledger l;
    zl_ledger_init(&l, "dev", 1000);
    zl_zero_set_memory_hint(&l, 1, 0, 0, 1);
    ck_assert_int_eq(zl_ledger_alloc(&l, "act.h.0", 900), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "param", 200), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "activation_checkpoint_interval"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "train_micro_batch_size_per_gpu"));
    zl_zero_set_memory_hint(&l, 1, 0, 1, 1); /* already on: a smaller micro-batch only */
    ck_assert_int_eq(zl_ledger_alloc(&l, "param", 200), ZL_ERR_OOM);
    ck_assert_ptr_null(strstr(zl_last_error(), "checkpoint"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "train_micro_batch_size_per_gpu"));
    /* The checkpoints themselves dominating: recomputing more would not help. */
    zl_ledger l2;
    zl_ledger_init(&l2, "dev", 1000);
    zl_zero_set_memory_hint(&l2, 1, 0, 0, 1);
    ck_assert_int_eq(zl_ledger_alloc(&l2, "act_ckpt", 900), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l2, "param", 200), ZL_ERR_OOM);
    ck_assert_ptr_null(strstr(zl_last_error(), "activation_checkpoint_interval"));
}
END_TEST

START_TEST(test_ledger_device_allocations_are_recorded)
{
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "ref", "rank 0", 1 << 20), ZL_OK);
    zl_tensor a, b;
    int64_t shape[2] = {16, 32};
    ck_assert_int_eq(zl_tensor_alloc(&a, &dev, "param", ZL_F32, 2, shape), ZL_OK);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "param"), 16 * 32 * 4);
    ck_assert_int_eq(zl_tensor_alloc(&b, &dev, "grad", ZL_BF16, 2, shape), ZL_OK);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "grad"), 16 * 32 * 2);
    for (size_t i = 0; i < a.numel; i++) ck_assert(zl_tensor_f32(&a)[i] == 0.0f); /* zeroed */
    /* Over budget through the tensor path: same error, no allocation, tensor cleared. */
    int64_t huge[1] = {1 << 20};
    zl_tensor c;
    ck_assert_int_eq(zl_tensor_alloc(&c, &dev, "adam.m", ZL_F32, 1, huge), ZL_ERR_OOM);
    ck_assert_ptr_null(c.data);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "rank 0"));
    /* Views share memory and are not accounted again. */
    int64_t row[1] = {32};
    zl_tensor v = zl_tensor_view(&a, 32, 1, row);
    ck_assert_ptr_eq(v.data, zl_tensor_f32(&a) + 32);
    zl_tensor_free(&v);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 16 * 32 * 6);
    zl_tensor_free(&a);
    zl_tensor_free(&b);
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0);
    ck_assert_uint_eq(dev.ledger.peak_nbytes, 16 * 32 * 6);
}
END_TEST

START_TEST(test_ledger_unknown_backend)
{
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "tpu", "rank 0", 0), ZL_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "'tpu'"));
}
END_TEST

/* An exempt tag (the CPU's stand-ins on a device impersonating a GPU) is recorded but
 * not held against the budget. */
START_TEST(test_ledger_exempt_tag_not_budgeted)
{
    zl_ledger l;
    zl_ledger_init(&l, "rank 0 (V100-16GB)", 1000);
    zl_ledger_exempt(&l, "cast");
    ck_assert_int_eq(zl_ledger_alloc(&l, "cast", 5000), ZL_OK);
    ck_assert_int_eq(zl_ledger_alloc(&l, "param", 900), ZL_OK);
    ck_assert_uint_eq(l.cur_nbytes, 5900);
    ck_assert_uint_eq(l.budgeted_nbytes, 900);
    ck_assert_int_eq(zl_ledger_alloc(&l, "grad", 200), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "900 B already live"));
    ck_assert_ptr_null(strstr(zl_last_error(), "cast"));
    zl_ledger_free(&l, "cast", 5000);
    ck_assert_uint_eq(l.budgeted_nbytes, 900);
    ck_assert_uint_eq(l.budgeted_peak_nbytes, 900);
    ck_assert_uint_eq(l.peak_nbytes, 5900);
}
END_TEST

static Suite *ledger_suite(void)
{
    Suite *s = suite_create("ledger");
    TCase *tc = tcase_create("ledger");
    tcase_add_test(tc, test_ledger_current_and_peak_per_tag);
    tcase_add_test(tc, test_ledger_budget_error_names_everything);
    tcase_add_test(tc, test_ledger_hint_follows_largest_tag);
    tcase_add_test(tc, test_ledger_hint_suggests_activation_checkpointing_when_off);
    tcase_add_test(tc, test_ledger_exempt_tag_not_budgeted);
    tcase_add_test(tc, test_ledger_device_allocations_are_recorded);
    tcase_add_test(tc, test_ledger_unknown_backend);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(ledger_suite)
