/* The one-rank communicator, the recording wrappers and the comms logger (no MPI). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "comm/comm_log.h"

/* The world must be the self communicator here, whatever the environment says. */
static void not_launched(void)
{
    static const char *vars[] = {"ZL_COMM", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID",
                                 "PMIX_RANK", "OMPI_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static void fill_bytes(void *p, size_t nbytes, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < nbytes; i++) b[i] = (unsigned char)(seed * 131u + i * 7u + 1u);
}

START_TEST(test_comm_self_world_without_launcher)
{
    not_launched();
    zl_comm *w;
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_OK);
    ck_assert_str_eq(w->vt->name, "self");
    ck_assert_str_eq(w->name, "world");
    ck_assert_int_eq(w->rank, 0);
    ck_assert_int_eq(w->size, 1);
    zl_comm_destroy(w);

    setenv("ZL_COMM", "self", 1);
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_OK);
    ck_assert_str_eq(w->vt->name, "self");
    zl_comm_destroy(w);

    setenv("ZL_COMM", "nccl-please", 1);
    ck_assert_int_eq(zl_comm_world(&w, NULL), ZL_ERR_CONFIG);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "ZL_COMM='nccl-please'"));
    unsetenv("ZL_COMM");
    zl_comm_destroy(NULL); /* allowed */
}
END_TEST

/* On one rank, every collective's result is the rank's own data, for every type and op. */
START_TEST(test_comm_self_collectives_are_copies)
{
    not_launched();
    zl_comm *c;
    ck_assert_int_eq(zl_comm_self(&c, NULL), ZL_OK);
    ck_assert_str_eq(c->name, "self");
    enum { N = 13 };
    for (int dt = 0; dt < ZL_DTYPE_COUNT; dt++) {
        size_t nb = N * zl_dtype_nbytes((zl_dtype)dt);
        unsigned char src[N * 8 + 8], buf[N * 8 + 8], out[N * 8 + 8];
        fill_bytes(src, nb, (unsigned)dt);
        for (int op = ZL_REDUCE_SUM; op <= ZL_REDUCE_MIN; op++) {
            memcpy(buf, src, nb);
            ck_assert_int_eq(zl_comm_allreduce(c, buf, N, (zl_dtype)dt, (zl_reduce_op)op), ZL_OK);
            ck_assert(memcmp(buf, src, nb) == 0);

            memset(out, 0xEE, sizeof out);
            ck_assert_int_eq(zl_comm_reduce_scatter(c, out, src, N, (zl_dtype)dt, (zl_reduce_op)op),
                             ZL_OK);
            ck_assert(memcmp(out, src, nb) == 0);
            ck_assert_int_eq(out[nb], 0xEE); /* nothing past the chunk */

            memset(out, 0xEE, sizeof out);
            ck_assert_int_eq(zl_comm_reduce(c, out, src, N, (zl_dtype)dt, (zl_reduce_op)op, 0), ZL_OK);
            ck_assert(memcmp(out, src, nb) == 0);
        }
        memset(out, 0xEE, sizeof out);
        ck_assert_int_eq(zl_comm_allgather(c, out, src, N, (zl_dtype)dt), ZL_OK);
        ck_assert(memcmp(out, src, nb) == 0);
        ck_assert_int_eq(out[nb], 0xEE);

        memcpy(buf, src, nb);
        ck_assert_int_eq(zl_comm_broadcast(c, buf, N, (zl_dtype)dt, 0), ZL_OK);
        ck_assert(memcmp(buf, src, nb) == 0);

        /* In place: the send and receive buffers are the same memory. */
        memcpy(buf, src, nb);
        ck_assert_int_eq(zl_comm_reduce_scatter(c, buf, buf, N, (zl_dtype)dt, ZL_REDUCE_SUM), ZL_OK);
        ck_assert_int_eq(zl_comm_allgather(c, buf, buf, N, (zl_dtype)dt), ZL_OK);
        ck_assert_int_eq(zl_comm_reduce(c, buf, buf, N, (zl_dtype)dt, ZL_REDUCE_MAX, 0), ZL_OK);
        ck_assert(memcmp(buf, src, nb) == 0);
    }
    ck_assert_int_eq(zl_comm_barrier(c), ZL_OK);
    ck_assert_int_eq(zl_comm_allreduce(c, NULL, 0, ZL_F32, ZL_REDUCE_SUM), ZL_OK);
    zl_comm_destroy(c);
}
END_TEST

START_TEST(test_comm_self_nonblocking_complete_at_wait)
{
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    zl_comm *c;
    ck_assert_int_eq(zl_comm_self(&c, log), ZL_OK);
    float a[5] = {1, -2, 3.5f, 4, 5}, b[5], g[5];
    zl_comm_request r1 = {0}, r2 = {0}, r3 = {0};
    ck_assert_int_eq(zl_comm_iallreduce(c, a, 5, ZL_F32, ZL_REDUCE_SUM, &r1), ZL_OK);
    ck_assert_int_eq(zl_comm_ireduce_scatter(c, b, a, 5, ZL_F32, ZL_REDUCE_SUM, &r2), ZL_OK);
    ck_assert_int_eq(zl_comm_iallgather(c, g, a, 5, ZL_F32, &r3), ZL_OK);
    ck_assert(r1.active && r2.active && r3.active);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLREDUCE), 0); /* recorded at wait */
    ck_assert_int_eq(zl_comm_wait(c, &r3), ZL_OK);
    ck_assert_int_eq(zl_comm_wait(c, &r2), ZL_OK);
    ck_assert_int_eq(zl_comm_wait(c, &r1), ZL_OK);
    ck_assert(!r1.active && !r2.active && !r3.active);
    ck_assert_int_eq(zl_comm_wait(c, &r1), ZL_OK); /* a completed request: nothing to do */
    ck_assert(b[2] == 3.5f && g[1] == -2 && a[4] == 5);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLREDUCE), 1);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_REDUCE_SCATTER), 1);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLGATHER), 1);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_ALLGATHER), 20);
    zl_comm_destroy(c);
    zl_comm_log_destroy(log);
}
END_TEST

START_TEST(test_comm_self_errors)
{
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    zl_comm *c;
    ck_assert_int_eq(zl_comm_self(&c, log), ZL_OK);
    float x[4] = {0};

    ck_assert_int_eq(zl_comm_send(c, x, 4, ZL_F32, 0, 0), ZL_ERR_COMM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "self communicator has no peer"));
    ck_assert_int_eq(zl_comm_recv(c, x, 4, ZL_F32, 0, 0), ZL_ERR_COMM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "self communicator has no peer"));

    ck_assert_int_eq(zl_comm_send(c, x, 4, ZL_F32, 1, 0), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "peer 1 is not a rank of communicator 'self' (size 1)"));
    ck_assert_int_eq(zl_comm_broadcast(c, x, 4, ZL_F32, 2), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "root 2 is not a rank"));
    ck_assert_int_eq(zl_comm_reduce(c, x, x, 4, ZL_F32, ZL_REDUCE_SUM, -1), ZL_ERR_INVALID);

    /* Overlapping buffers that are not the in-place layout. */
    ck_assert_int_eq(zl_comm_reduce_scatter(c, x + 1, x, 2, ZL_F32, ZL_REDUCE_SUM), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "overlaps"));
    ck_assert_int_eq(zl_comm_allgather(c, x, x + 1, 2, ZL_F32), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_comm_reduce(c, x + 1, x, 2, ZL_F32, ZL_REDUCE_SUM, 0), ZL_ERR_INVALID);

    zl_comm *sub;
    ck_assert_int_eq(zl_comm_split(c, -1, 0, "data", &sub), ZL_ERR_INVALID);
    ck_assert_ptr_null(sub);

    /* Failed calls are not communication: the log has none of them. */
    for (int op = 0; op < ZL_COMM_NUM_OPS; op++)
        ck_assert_uint_eq(zl_comm_log_count(log, (zl_comm_op)op), 0);
    zl_comm_destroy(c);
    zl_comm_log_destroy(log);
}
END_TEST

/* Agreement on one rank is the rank's own status, message untouched. */
START_TEST(test_comm_self_agree)
{
    zl_comm *c;
    ck_assert_int_eq(zl_comm_self(&c, NULL), ZL_OK);
    ck_assert_int_eq(zl_comm_agree(c, ZL_OK), ZL_OK);
    zl_errorf(ZL_ERR_IO, "disk full");
    ck_assert_int_eq(zl_comm_agree(c, ZL_ERR_IO), ZL_ERR_IO);
    ck_assert_str_eq(zl_last_error(), "disk full");
    zl_comm_destroy(c);
}
END_TEST

/* Counts and message sizes per op, with DeepSpeed's size conventions (comm_log.h), on
 * a communicator and on a group split from it (which shares the log). */
START_TEST(test_comm_self_log_counts_and_bytes)
{
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    zl_comm *c, *d;
    ck_assert_int_eq(zl_comm_self(&c, log), ZL_OK);
    ck_assert_int_eq(zl_comm_split(c, 3, 0, "data", &d), ZL_OK);
    ck_assert_str_eq(d->name, "data");
    ck_assert_int_eq(d->size, 1);
    ck_assert_ptr_eq(d->log, log);

    double buf[16] = {0}, out[16];
    ck_assert_int_eq(zl_comm_allreduce(c, buf, 10, ZL_F32, ZL_REDUCE_SUM), ZL_OK);     /* 40 */
    ck_assert_int_eq(zl_comm_allreduce(d, buf, 3, ZL_F64, ZL_REDUCE_MAX), ZL_OK);      /* 24 */
    ck_assert_int_eq(zl_comm_reduce_scatter(c, out, buf, 3, ZL_F16, ZL_REDUCE_SUM), ZL_OK); /* 1*3*2 */
    ck_assert_int_eq(zl_comm_allgather(c, out, buf, 5, ZL_F64), ZL_OK);                /* 40 */
    ck_assert_int_eq(zl_comm_broadcast(c, buf, 7, ZL_I32, 0), ZL_OK);                  /* 28 */
    ck_assert_int_eq(zl_comm_reduce(c, out, buf, 2, ZL_BF16, ZL_REDUCE_MIN, 0), ZL_OK); /* 4 */
    ck_assert_int_eq(zl_comm_barrier(d), ZL_OK);                                       /* 0 */
    zl_comm_request r = {0};
    ck_assert_int_eq(zl_comm_iallreduce(c, buf, 4, ZL_U16, ZL_REDUCE_SUM, &r), ZL_OK); /* 8 */
    ck_assert_int_eq(zl_comm_wait(c, &r), ZL_OK);
    ck_assert_int_eq(zl_comm_send(c, buf, 1, ZL_F32, 0, 0), ZL_ERR_COMM);              /* not logged */

    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLREDUCE), 3);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_ALLREDUCE), 40 + 24 + 8);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_REDUCE_SCATTER), 1);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_REDUCE_SCATTER), 6);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_ALLGATHER), 40);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_BROADCAST), 28);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_REDUCE), 4);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_BARRIER), 1);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_BARRIER), 0);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_SEND), 0);
    ck_assert(zl_comm_log_seconds(log, ZL_COMM_ALLREDUCE) >= 0);

    /* Each group's calls have their own op lines, named after the group (all but the
     * world's). */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    zl_comm_log_print(log, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "\nall_reduce [self]\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nall_reduce [data]\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nreduce_scatter_tensor [self]\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nall_gather_into_tensor [self]\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nbarrier [data]\n"));
    free(text);

    zl_comm_log_reset(log);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLREDUCE), 0);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_ALLREDUCE), 0);
    zl_comm_destroy(d);
    zl_comm_destroy(c);
    zl_comm_log_destroy(log);
}
END_TEST

/* DeepSpeed's calc_bw_log, worked out by hand (bytes per ms * 8 / 1e6 = Gbps). */
START_TEST(test_comm_log_bandwidth_formulas)
{
    double alg, bus;
    /* all_gather: the logged size is one rank's chunk; the output is n times it. */
    zl_comm_bandwidth(ZL_COMM_ALLGATHER, 1000, 4, 1.0, &alg, &bus);
    ck_assert_double_eq_tol(alg, 0.032, 1e-12); /* 4000 B/ms */
    ck_assert_double_eq_tol(bus, 0.024, 1e-12); /* * 3/4 */
    /* reduce_scatter: the logged size is the whole input. */
    zl_comm_bandwidth(ZL_COMM_REDUCE_SCATTER, 4000, 4, 1.0, &alg, &bus);
    ck_assert_double_eq_tol(alg, 0.032, 1e-12);
    ck_assert_double_eq_tol(bus, 0.024, 1e-12);
    /* all_reduce: algbw 2S/t, busbw S/t * 2(n-1)/n. */
    zl_comm_bandwidth(ZL_COMM_ALLREDUCE, 1000, 4, 2.0, &alg, &bus);
    ck_assert_double_eq_tol(alg, 0.008, 1e-12);
    ck_assert_double_eq_tol(bus, 0.006, 1e-12);
    /* point to point and rooted collectives: S/t for both. */
    zl_comm_bandwidth(ZL_COMM_BROADCAST, 1000, 8, 0.5, &alg, &bus);
    ck_assert_double_eq_tol(alg, 0.016, 1e-12);
    ck_assert_double_eq_tol(bus, 0.016, 1e-12);
    zl_comm_bandwidth(ZL_COMM_SEND, 1000, 2, 1.0, &alg, &bus);
    ck_assert_double_eq_tol(bus, 0.008, 1e-12);
    zl_comm_bandwidth(ZL_COMM_BARRIER, 0, 2, 1.0, &alg, &bus);
    ck_assert(alg == 0 && bus == 0);
}
END_TEST

START_TEST(test_comm_log_size_format)
{
    char b[32];
    ck_assert_str_eq(zl_comm_format_size(0, b, sizeof b), "0B");
    ck_assert_str_eq(zl_comm_format_size(1, b, sizeof b), "1.0 B");
    ck_assert_str_eq(zl_comm_format_size(512, b, sizeof b), "512.0 B");
    ck_assert_str_eq(zl_comm_format_size(1024, b, sizeof b), "1.0 KB");
    ck_assert_str_eq(zl_comm_format_size(1536, b, sizeof b), "1.5 KB");
    ck_assert_str_eq(zl_comm_format_size(1048575, b, sizeof b), "1024.0 KB"); /* as Python */
    ck_assert_str_eq(zl_comm_format_size(711838842, b, sizeof b), "678.86 MB");
    ck_assert_str_eq(zl_comm_format_size((size_t)5 << 30, b, sizeof b), "5.0 GB");
}
END_TEST

static void record(zl_comm_log *log, zl_comm_op op, const char *group, int n, size_t nbytes,
                   double ms)
{
    zl_comm_event ev = {op, group, n, ZL_F32, nbytes, ms * 1e-3};
    zl_comm_log_record(log, &ev);
}

/* The summary table, character for character as DeepSpeed's log_summary formats it
 * (f"{x: <20}" columns, .2f numbers); expected rows worked out from calc_bw_log. */
START_TEST(test_comm_log_summary_table)
{
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    static const double ag_ms[10] = {5, 100, 1, 9, 2, 8, 3, 7, 4, 6};
    record(log, ZL_COMM_ALLREDUCE, "world", 4, 1 << 20, 3);
    for (int i = 0; i < 10; i++) record(log, ZL_COMM_ALLGATHER, "data", 2, 1 << 20, ag_ms[i]);
    record(log, ZL_COMM_ALLREDUCE, "world", 4, 512, 0.5);
    record(log, ZL_COMM_ALLREDUCE, "world", 4, 1 << 20, 1);
    record(log, ZL_COMM_ALLREDUCE, "world", 4, 1 << 20, 2);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    zl_comm_log_print(log, f);
    fclose(f);
    /* all_reduce 1 MiB on 4 ranks, 3 calls of 1, 2, 3 ms (10 % of 3 rounds to 0: no
     * trimming): algbw mean(2S/t) = 16.777216 * (1 + 1/2 + 1/3) / 3 = 10.25 Gbps, busbw
     * mean(S/t * 1.5) = 7.69. 512 B in 0.5 ms: 2*512/0.5*8e-6 = 0.016, 0.012.
     * all_gather 1 MiB on 2 ranks, 10 calls: the 10 %-trimmed mean drops 1 ms and 100 ms;
     * mean latency of 2..9 is 5.5, algbw mean(2S/t) over them 3.84, busbw half of it. */
    const char *want =
        "Comm. Op            Message Size        Count               Total Latency(ms)   "
        "Avg Latency(ms)     tput_avg (Gbps)     busbw_avg (Gbps)    \n"
        "all_reduce\n"
        "                    512.0 B             1                   0.50                "
        "0.50                0.02                0.01                \n"
        "                    1.0 MB              3                   6.00                "
        "2.00                10.25               7.69                \n"
        "all_gather_into_tensor [data]\n"
        "                    1.0 MB              10                  145.00              "
        "5.50                3.84                1.92                \n";
    ck_assert_msg(strcmp(text, want) == 0, "got:\n%s\nwant:\n%s", text, want);
    free(text);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLREDUCE), 4);
    ck_assert_uint_eq(zl_comm_log_nbytes(log, ZL_COMM_ALLREDUCE), 3 * (1 << 20) + 512);
    ck_assert_double_eq_tol(zl_comm_log_seconds(log, ZL_COMM_ALLGATHER), 0.145, 1e-12);
    zl_comm_log_destroy(log);
}
END_TEST

typedef struct seen {
    int n;
    zl_comm_op ops[8];
    size_t nbytes[8];
    char group[8][32];
} seen;

static void observe(void *ctx, const zl_comm_event *ev)
{
    seen *s = ctx;
    if (s->n < 8) {
        s->ops[s->n] = ev->op;
        s->nbytes[s->n] = ev->nbytes;
        snprintf(s->group[s->n], sizeof s->group[0], "%s", ev->group);
    }
    s->n++;
}

START_TEST(test_comm_log_observer_and_verbose)
{
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    seen s = {0};
    zl_comm_log_set_observer(log, observe, &s);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    zl_comm_log_set_verbose(log, f);
    record(log, ZL_COMM_ALLGATHER, "data", 2, 1 << 20, 0.25);
    zl_comm *c;
    ck_assert_int_eq(zl_comm_self(&c, log), ZL_OK);
    float x[3] = {0};
    ck_assert_int_eq(zl_comm_broadcast(c, x, 3, ZL_F32, 0), ZL_OK);
    zl_comm_log_set_verbose(log, NULL);
    fclose(f);
    ck_assert_int_eq(s.n, 2);
    ck_assert(s.ops[0] == ZL_COMM_ALLGATHER && s.nbytes[0] == 1 << 20);
    ck_assert_str_eq(s.group[0], "data");
    ck_assert(s.ops[1] == ZL_COMM_BROADCAST && s.nbytes[1] == 12);
    ck_assert_str_eq(s.group[1], "self");
    /* 1 MiB * 2 ranks in 0.25 ms = 8388608 B/ms = 67.11 Gbps; busbw half. */
    const char *first = "comm op: all_gather_into_tensor [data] | time (ms): 0.25 | msg size: "
                        "1.0 MB | algbw (Gbps): 67.11 | busbw (Gbps): 33.55\n";
    ck_assert_msg(!strncmp(text, first, strlen(first)), "verbose lines:\n%s", text);
    ck_assert_ptr_nonnull(strstr(text, "comm op: broadcast [self] | time (ms): "));
    free(text);
    zl_comm_destroy(c);
    zl_comm_log_destroy(log);
}
END_TEST

/* comms_logger.prof_all false: only prof_ops' ops are printed, every call still counts and
 * the observer (the simulator) still sees all of them. */
START_TEST(test_comm_log_prof_ops_filter)
{
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    seen s = {0};
    zl_comm_log_set_observer(log, observe, &s);
    ck_assert_int_eq(zl_comm_log_set_filter(log, false, "all_gather,barrier"), ZL_OK);
    char *verbose = NULL, *summary = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&verbose, &len);
    zl_comm_log_set_verbose(log, f);
    record(log, ZL_COMM_ALLREDUCE, "world", 4, 1 << 20, 1);
    record(log, ZL_COMM_ALLGATHER, "world", 4, 1 << 20, 1);
    zl_comm_log_set_verbose(log, NULL);
    fclose(f);
    f = open_memstream(&summary, &len);
    zl_comm_log_print(log, f);
    fclose(f);
    ck_assert_msg(!strstr(verbose, "all_reduce") && strstr(verbose, "all_gather_into_tensor"),
                  "verbose lines:\n%s", verbose);
    ck_assert_msg(!strstr(summary, "all_reduce") && strstr(summary, "all_gather_into_tensor"),
                  "summary:\n%s", summary);
    ck_assert_int_eq(s.n, 2);
    ck_assert_uint_eq(zl_comm_log_count(log, ZL_COMM_ALLREDUCE), 1);
    free(verbose);
    free(summary);
    /* An unknown name is reported, naming it; the known ones still apply. */
    ck_assert_int_eq(zl_comm_log_set_filter(log, false, "allreduce,all_reduce"), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "'allreduce' is not a communication op"));
    f = open_memstream(&summary, &len);
    zl_comm_log_print(log, f);
    fclose(f);
    ck_assert_msg(strstr(summary, "all_reduce") && !strstr(summary, "all_gather"), "%s", summary);
    free(summary);
    /* prof_all true shows everything again, whatever prof_ops says. */
    ck_assert_int_eq(zl_comm_log_set_filter(log, true, NULL), ZL_OK);
    f = open_memstream(&summary, &len);
    zl_comm_log_print(log, f);
    fclose(f);
    ck_assert(strstr(summary, "all_reduce") && strstr(summary, "all_gather_into_tensor"));
    free(summary);
    zl_comm_log_destroy(log);
}
END_TEST

START_TEST(test_comm_op_names)
{
    ck_assert_str_eq(zl_comm_op_name(ZL_COMM_ALLREDUCE), "all_reduce");
    ck_assert_str_eq(zl_comm_op_name(ZL_COMM_REDUCE_SCATTER), "reduce_scatter_tensor");
    ck_assert_str_eq(zl_comm_op_name(ZL_COMM_ALLGATHER), "all_gather_into_tensor");
    ck_assert_str_eq(zl_comm_op_name(ZL_COMM_BROADCAST), "broadcast");
    ck_assert_str_eq(zl_comm_op_name(ZL_COMM_RECV), "recv");
    ck_assert_str_eq(zl_comm_op_name(ZL_COMM_BARRIER), "barrier");
}
END_TEST

static Suite *comm_self_suite(void)
{
    Suite *s = suite_create("comm_self");
    TCase *tc = tcase_create("self");
    tcase_add_test(tc, test_comm_self_world_without_launcher);
    tcase_add_test(tc, test_comm_self_collectives_are_copies);
    tcase_add_test(tc, test_comm_self_nonblocking_complete_at_wait);
    tcase_add_test(tc, test_comm_self_errors);
    tcase_add_test(tc, test_comm_self_agree);
    tcase_add_test(tc, test_comm_self_log_counts_and_bytes);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("log");
    tcase_add_test(tl, test_comm_log_bandwidth_formulas);
    tcase_add_test(tl, test_comm_log_size_format);
    tcase_add_test(tl, test_comm_log_summary_table);
    tcase_add_test(tl, test_comm_log_observer_and_verbose);
    tcase_add_test(tl, test_comm_op_names);
    tcase_add_test(tl, test_comm_log_prof_ops_filter);
    suite_add_tcase(s, tl);
    return s;
}

ZL_TEST_MAIN(comm_self_suite)
