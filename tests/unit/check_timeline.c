/* The timeline: streams in order, overlap across streams, blocking and asynchronous
 * collectives, exposed communication, and a Chrome trace that parses. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "sim/timeline.h"

START_TEST(test_kernels_run_in_order)
{
    zl_timeline tl;
    zl_timeline_init(&tl, false);
    ck_assert_double_eq(zl_timeline_kernel(&tl, "a", 1.0), 1.0);
    ck_assert_double_eq(zl_timeline_kernel(&tl, "b", 0.5), 1.5);
    ck_assert_double_eq(tl.busy[ZL_STREAM_COMPUTE], 1.5);
    ck_assert_double_eq(zl_timeline_now(&tl), 1.5);
    zl_timeline_free(&tl);
}
END_TEST

/* A blocking collective starts when compute has produced its input and holds compute
 * until it ends: all of it is exposed. */
START_TEST(test_blocking_collective_is_exposed)
{
    zl_timeline tl;
    zl_timeline_init(&tl, false);
    zl_timeline_kernel(&tl, "bwd", 2.0);
    ck_assert_double_eq(zl_timeline_collective(&tl, "allreduce", 0.75, 0, true), 2.75);
    ck_assert_double_eq(tl.clock[ZL_STREAM_COMPUTE], 2.75);
    ck_assert_double_eq(tl.exposed_comm, 0.75);
    ck_assert_double_eq(zl_timeline_kernel(&tl, "step", 0.25), 3.0);
    zl_timeline_free(&tl);
}
END_TEST

/* overlap_comm's pattern: layer k's reduction runs while layer k-1 computes. With layers
 * of 1 s and reductions of 0.5 s only the last reduction is exposed; with reductions of
 * 1.5 s the comm stream falls behind and compute waits at the end for the backlog. */
START_TEST(test_async_collectives_overlap_compute)
{
    for (int slow = 0; slow <= 1; slow++) {
        double c = slow ? 1.5 : 0.5, end = 0;
        zl_timeline tl;
        zl_timeline_init(&tl, false);
        for (int layer = 0; layer < 4; layer++) {
            zl_timeline_kernel(&tl, "layer bwd", 1.0);
            end = zl_timeline_collective(&tl, "reduce", c, 0, false);
        }
        zl_timeline_wait(&tl, end);
        /* compute ends at 4; reductions start at 1, 2, 3, 4 (fast) or back to back from 1 */
        double want = slow ? 1.0 + 4 * c : 4.0 + c;
        ck_assert_double_eq_tol(zl_timeline_now(&tl), want, 1e-12);
        ck_assert_double_eq_tol(tl.exposed_comm, want - 4.0, 1e-12);
        ck_assert_double_eq_tol(tl.busy[ZL_STREAM_COMM], 4 * c, 1e-12);
        zl_timeline_free(&tl);
    }
}
END_TEST

/* A collective cannot start before its last member arrives. */
START_TEST(test_collective_waits_for_last_member)
{
    zl_timeline tl;
    zl_timeline_init(&tl, false);
    zl_timeline_kernel(&tl, "fwd", 1.0);
    ck_assert_double_eq(zl_timeline_collective(&tl, "allgather", 0.5, 3.0, true), 3.5);
    ck_assert_double_eq(tl.exposed_comm, 2.5); /* waiting for the late rank counts too */
    zl_timeline_free(&tl);
}
END_TEST

START_TEST(test_trace_is_chrome_json)
{
    zl_timeline tl;
    zl_timeline_init(&tl, true);
    zl_timeline_kernel(&tl, "gemm", 1e-3);
    zl_timeline_collective(&tl, "all_reduce", 2e-3, 0, false);
    zl_timeline_run(&tl, ZL_STREAM_HOST, "d2h", 1e-3, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(zl_timeline_write_trace(&tl, f, 0, true, false), ZL_OK);
    ck_assert_int_eq(zl_timeline_write_trace(&tl, f, 1, false, true), ZL_OK); /* a second rank */
    fclose(f);
    json_error_t err;
    json_t *root = json_loads(buf, 0, &err);
    ck_assert_msg(root, "trace is not JSON: %s at line %d\n%s", err.text, err.line, buf);
    json_t *ev = json_object_get(root, "traceEvents");
    ck_assert(json_is_array(ev));
    size_t spans = 0;
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        if (strcmp(json_string_value(json_object_get(e, "ph")), "X")) continue;
        spans++;
        if (!strcmp(json_string_value(json_object_get(e, "name")), "all_reduce")) {
            ck_assert_int_eq(json_integer_value(json_object_get(e, "tid")), ZL_STREAM_COMM);
            ck_assert_double_eq_tol(json_number_value(json_object_get(e, "ts")), 1000.0, 1e-6);
            ck_assert_double_eq_tol(json_number_value(json_object_get(e, "dur")), 2000.0, 1e-6);
        }
    }
    ck_assert_uint_eq(spans, 6);
    json_decref(root);
    free(buf);
    zl_timeline_free(&tl);
}
END_TEST

/* Back-to-back runs of one kernel on one stream are one span (counted); anything between
 * them, another name or a gap, starts a new one. Past the cap, spans are dropped and
 * counted, and the trace says so. */
START_TEST(test_trace_merges_and_caps)
{
    zl_timeline tl;
    zl_timeline_init(&tl, true);
    for (int i = 0; i < 1000; i++) zl_timeline_kernel(&tl, "scale", 1e-6);
    ck_assert_uint_eq(tl.num_spans, 1);
    ck_assert_uint_eq(tl.spans[0].count, 1000);
    ck_assert_uint_eq(tl.merged_spans, 999);
    ck_assert_double_eq_tol(tl.spans[0].end, 1e-3, 1e-15);
    zl_timeline_kernel(&tl, "gemm", 1.0);
    zl_timeline_run(&tl, ZL_STREAM_COMPUTE, "gemm", 1.0, 5.0); /* after a gap: its own span */
    zl_timeline_collective(&tl, "allreduce", 1.0, 0, false);
    zl_timeline_kernel(&tl, "gemm", 1.0); /* a span in between (comm): a new one */
    ck_assert_uint_eq(tl.num_spans, 5);
    ck_assert_uint_eq(tl.spans[1].count, 1);
    ck_assert_uint_eq(tl.spans[2].count, 1);

    tl.max_spans = 6;
    for (int i = 0; i < 10; i++) zl_timeline_kernel(&tl, i % 2 ? "a" : "b", 1.0);
    ck_assert_uint_eq(tl.num_spans, 6);
    ck_assert_uint_eq(tl.dropped_spans, 9);
    ck_assert_double_eq_tol(tl.clock[ZL_STREAM_COMPUTE], 17.0, 1e-9); /* the clock runs on */

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(zl_timeline_write_trace(&tl, f, 0, true, true), ZL_OK);
    fclose(f);
    json_error_t err;
    json_t *root = json_loads(buf, 0, &err);
    ck_assert_msg(root, "trace is not JSON: %s", err.text);
    ck_assert_ptr_nonnull(strstr(buf, "\"args\": {\"kernels\": 1000}"));
    ck_assert_ptr_nonnull(strstr(buf, "9 spans past the cap of 6 dropped"));
    ck_assert_ptr_nonnull(json_object_get(root, "otherData"));
    json_decref(root);
    free(buf);
    zl_timeline_free(&tl);
}
END_TEST

static Suite *timeline_suite(void)
{
    Suite *s = suite_create("timeline");
    TCase *tc = tcase_create("timeline");
    tcase_add_test(tc, test_kernels_run_in_order);
    tcase_add_test(tc, test_blocking_collective_is_exposed);
    tcase_add_test(tc, test_async_collectives_overlap_compute);
    tcase_add_test(tc, test_collective_waits_for_last_member);
    tcase_add_test(tc, test_trace_is_chrome_json);
    tcase_add_test(tc, test_trace_merges_and_caps);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(timeline_suite)
