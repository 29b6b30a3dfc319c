/* The MPI communicator under mpiexec at np = 2, 3 and 4 (tests/run-mpi.sh).
 *
 * Expected results come from formulas every rank evaluates for itself: rank r contributes
 * v(r, i), and the test knows what the sum, max and min over r must be. Values are chosen
 * so that every order of summation gives the same, exactly representable result. Each
 * check is agreed on by all ranks (zl_test_all_ok) before it is asserted, so a failure on
 * one rank fails the test everywhere instead of leaving the others in a collective.
 * With 4 ranks on 2 cores a collective costs milliseconds: the tests make few calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "comm/comm.h"
#include "comm/comm_internal.h"
#include "comm/comm_log.h"
#include "comm/topology.h"

static zl_comm *world;

/* Report a local mismatch (with the rank) and return whether all values matched. */
static int same_f64(const char *what, const double *got, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(got[i] == want[i])) {
            fprintf(stderr, "[rank %d] %s: element %zu is %.17g, want %.17g\n", world->rank, what,
                    i, got[i], want[i]);
            return 0;
        }
    return 1;
}

static int ok_status(zl_status st, const char *what)
{
    if (st != ZL_OK) fprintf(stderr, "[rank %d] %s: %s\n", world->rank, what, zl_last_error());
    return st == ZL_OK;
}

#define ALL_OK(cond) ck_assert(zl_test_all_ok(cond))

/* v(r, i) = (r + 1) * (i - 18) / 2: negative and positive values, so MAX and MIN differ
 * from "the last rank's value"; halves are exact in every float type used here. */
static double v(int r, int i) { return (r + 1) * (i - 18) * 0.5; }

static double reduce_v(zl_reduce_op op, int W, int i)
{
    double acc = v(0, i);
    for (int r = 1; r < W; r++) {
        double x = v(r, i);
        acc = op == ZL_REDUCE_SUM ? acc + x : op == ZL_REDUCE_MAX ? fmax(acc, x) : fmin(acc, x);
    }
    return acc;
}

enum { N = 37 };

START_TEST(test_mpi_allreduce_f32_f64_i32)
{
    int W = world->size, r = world->rank;
    for (int op = ZL_REDUCE_SUM; op <= ZL_REDUCE_MIN; op++) {
        float f[N];
        double d[N], got[N], want[N];
        int32_t k[N];
        for (int i = 0; i < N; i++) {
            f[i] = (float)v(r, i);
            /* 2^-40 * (r + 1) does not fit an f32 next to values near 100: f64 must be
             * reduced as f64. */
            d[i] = v(r, i) + ldexp(r + 1, -40);
            k[i] = (int32_t)(2 * v(r, i));
        }
        ALL_OK(ok_status(zl_comm_allreduce(world, f, N, ZL_F32, (zl_reduce_op)op), "f32"));
        ALL_OK(ok_status(zl_comm_allreduce(world, d, N, ZL_F64, (zl_reduce_op)op), "f64"));
        ALL_OK(ok_status(zl_comm_allreduce(world, k, N, ZL_I32, (zl_reduce_op)op), "i32"));

        int ok = 1;
        for (int i = 0; i < N; i++) want[i] = reduce_v((zl_reduce_op)op, W, i);
        for (int i = 0; i < N; i++) got[i] = f[i];
        ok &= same_f64("allreduce f32", got, want, N);
        for (int i = 0; i < N; i++) got[i] = k[i] * 0.5;
        ok &= same_f64("allreduce i32", got, want, N);
        for (int i = 0; i < N; i++) {
            /* The tiny terms reduce like the big ones: sum of (r+1), or max/min r + 1. */
            double tiny = op == ZL_REDUCE_SUM ? W * (W + 1) / 2.0 : 0;
            if (op != ZL_REDUCE_SUM) {
                int rr = 0; /* the rank whose v wins also brings its tiny term */
                for (int q = 1; q < W; q++)
                    if (v(q, i) == reduce_v((zl_reduce_op)op, W, i)) rr = q;
                if (i == 18) rr = op == ZL_REDUCE_MAX ? W - 1 : 0; /* all v are 0 */
                tiny = rr + 1;
            }
            want[i] += ldexp(tiny, -40);
        }
        ok &= same_f64("allreduce f64", d, want, N);
        ALL_OK(ok);
    }
}
END_TEST

/* 16-bit reductions compute in f32 and round each partial result to nearest-even. Bit
 * patterns worked out by hand: f16 1 + 2^-10 = 0x3C01, +inf = 0x7C00; bf16 1 + 2^-7 =
 * 0x3F81. */
START_TEST(test_mpi_allreduce_f16_bf16)
{
    int W = world->size, r = world->rank;
    enum { M = 17 };
    for (int half = 0; half < 2; half++) {
        zl_dtype dt = half ? ZL_BF16 : ZL_F16;
        uint16_t (*to16)(float) = half ? zl_f32_to_bf16 : zl_f32_to_f16;
        float (*to32)(uint16_t) = half ? zl_bf16_to_f32 : zl_f16_to_f32;
        for (int op = ZL_REDUCE_SUM; op <= ZL_REDUCE_MIN; op++) {
            /* Small integers (|sum| <= 80) are exact in both types, in any order. */
            uint16_t x[M + 2];
            for (int i = 0; i < M; i++) x[i] = to16((float)((r + 1) * (i - 8)));
            /* Element M: 1 on rank 0, 0.75 ulp(1) on rank 1, 0 elsewhere: the sum is
             * 1 + 0.75 ulp in every order, which rounds up to 1 + ulp (truncation would
             * give 1). Element M+1: the largest f16 on ranks 0 and 1 overflows to inf. */
            float tiny = half ? 3.0f / 512 : 3.0f / 4096;
            x[M] = to16(r == 0 ? 1.0f : r == 1 ? tiny : 0.0f);
            x[M + 1] = to16(r <= 1 ? 65504.0f : 0.0f);
            ALL_OK(ok_status(zl_comm_allreduce(world, x, M + 2, dt, (zl_reduce_op)op), "allreduce 16-bit"));
            double got[M], want[M];
            for (int i = 0; i < M; i++) {
                got[i] = to32(x[i]);
                want[i] = 2 * reduce_v((zl_reduce_op)op, W, i + 10); /* (r+1)*(i-8) */
            }
            int ok = same_f64(half ? "bf16" : "f16", got, want, M);
            if (op == ZL_REDUCE_SUM) {
                uint16_t want_round = half ? 0x3F81 : 0x3C01;
                if (x[M] != want_round) {
                    fprintf(stderr, "[rank %d] %s sum rounding: 0x%04x, want 0x%04x\n", r,
                            zl_dtype_name(dt), x[M], want_round);
                    ok = 0;
                }
                /* bf16 has f32's range: 2 * 65504 is finite there (rounded to 131072). */
                uint16_t want_big = half ? 0x4800 : 0x7C00;
                if (x[M + 1] != want_big) {
                    fprintf(stderr, "[rank %d] %s overflow: 0x%04x, want 0x%04x\n", r,
                            zl_dtype_name(dt), x[M + 1], want_big);
                    ok = 0;
                }
            }
            ALL_OK(ok);
        }
    }
}
END_TEST

/* Blocking transfers above the per-call element limit are split; the non-blocking ones
 * and the partitioned collectives refuse, naming the count. (The limit is INT_MAX in real
 * runs; lowered here so the splitting runs on small buffers.) */
START_TEST(test_mpi_large_counts_split_or_refused)
{
    int W = world->size, r = world->rank;
    size_t old = zl__comm_mpi_set_max_count(7);
    enum { L = 30 };
    double x[L], want[L];
    for (int i = 0; i < L; i++) {
        x[i] = (r + 1) * (i + 1);
        want[i] = (i + 1) * W * (W + 1) / 2.0;
    }
    int ok = ok_status(zl_comm_allreduce(world, x, L, ZL_F64, ZL_REDUCE_SUM), "split allreduce");
    ok &= same_f64("split allreduce", x, want, L);
    for (int i = 0; i < L; i++) x[i] = r == W - 1 ? i * 3.0 : -1;
    ok &= ok_status(zl_comm_broadcast(world, x, L, ZL_F64, W - 1), "split broadcast");
    for (int i = 0; i < L; i++) want[i] = i * 3.0;
    ok &= same_f64("split broadcast", x, want, L);
    /* A ring of split messages: pieces arrive in order. */
    double in[L];
    int to = (r + 1) % W, from = (r + W - 1) % W;
    for (int i = 0; i < L; i++) x[i] = 1000 * r + i;
    if (r % 2 == 0) {
        ok &= ok_status(zl_comm_send(world, x, L, ZL_F64, to, 5), "split send");
        ok &= ok_status(zl_comm_recv(world, in, L, ZL_F64, from, 5), "split recv");
    } else {
        ok &= ok_status(zl_comm_recv(world, in, L, ZL_F64, from, 5), "split recv");
        ok &= ok_status(zl_comm_send(world, x, L, ZL_F64, to, 5), "split send");
    }
    for (int i = 0; i < L; i++) want[i] = 1000 * from + i;
    ok &= same_f64("split ring", in, want, L);

    double *big = calloc((size_t)W * 8, sizeof *big), part[8];
    zl_comm_request req = {0};
    zl_status st = zl_comm_reduce_scatter(world, part, big, 8, ZL_F64, ZL_REDUCE_SUM);
    ok &= st == ZL_ERR_UNSUPPORTED && strstr(zl_last_error(), "reduce_scatter of 8 elements");
    st = zl_comm_iallreduce(world, big, 8, ZL_F64, ZL_REDUCE_SUM, &req);
    ok &= st == ZL_ERR_UNSUPPORTED && !req.active;
    zl__comm_mpi_set_max_count(old);
    free(big);
    ALL_OK(ok);
}
END_TEST

/* Rank r's input is W chunks of C = 5 values that differ per rank and per chunk; rank q
 * gets the sum of everyone's chunk q. */
START_TEST(test_mpi_reduce_scatter)
{
    int W = world->size, r = world->rank;
    enum { C = 5 };
    float send[4 * C], recv[C];
    double got[C], want[C];
    for (int j = 0; j < W * C; j++) send[j] = (float)((r + 1) * (j + 1) + 0.25 * r);
    for (int k = 0; k < C; k++) {
        want[k] = 0;
        for (int q = 0; q < W; q++) want[k] += (q + 1) * (r * C + k + 1) + 0.25 * q;
    }
    int ok = ok_status(zl_comm_reduce_scatter(world, recv, send, C, ZL_F32, ZL_REDUCE_SUM), "rs");
    for (int k = 0; k < C; k++) got[k] = recv[k];
    ok &= same_f64("reduce_scatter", got, want, C);

    /* In place: the result lands in this rank's own chunk of the input. */
    ok &= ok_status(zl_comm_reduce_scatter(world, send + r * C, send, C, ZL_F32, ZL_REDUCE_SUM),
                    "rs in place");
    for (int k = 0; k < C; k++) got[k] = send[r * C + k];
    ok &= same_f64("reduce_scatter in place", got, want, C);

    /* MAX in bf16: rank q's chunk-k value is q - k, so the max is W - 1 - k. */
    uint16_t h[4 * C], hr[C];
    for (int j = 0; j < W * C; j++) h[j] = zl_f32_to_bf16((float)(r - j % C));
    ok &= ok_status(zl_comm_reduce_scatter(world, hr, h, C, ZL_BF16, ZL_REDUCE_MAX), "rs bf16");
    for (int k = 0; k < C; k++) {
        got[k] = zl_bf16_to_f32(hr[k]);
        want[k] = W - 1 - k;
    }
    ok &= same_f64("reduce_scatter bf16 max", got, want, C);
    ALL_OK(ok);
}
END_TEST

START_TEST(test_mpi_allgather)
{
    int W = world->size, r = world->rank;
    enum { C = 3 };
    int32_t mine[C], all[4 * C];
    for (int k = 0; k < C; k++) mine[k] = 100 * r + k;
    int ok = ok_status(zl_comm_allgather(world, all, mine, C, ZL_I32), "allgather");
    for (int j = 0; j < W * C; j++)
        if (all[j] != 100 * (j / C) + j % C) ok = 0;
    /* In place: own chunk already at its place, the rest is garbage before. */
    uint16_t h[4 * C];
    for (int j = 0; j < W * C; j++) h[j] = j / C == r ? zl_f32_to_f16(0.5f * (float)j) : 0xFFFF;
    ok &= ok_status(zl_comm_allgather(world, h, h + r * C, C, ZL_F16), "allgather in place");
    for (int j = 0; j < W * C; j++)
        if (zl_f16_to_f32(h[j]) != 0.5f * (float)j) ok = 0;
    if (!ok) fprintf(stderr, "[rank %d] allgather: wrong values\n", r);
    ALL_OK(ok);
}
END_TEST

START_TEST(test_mpi_broadcast_and_reduce_non_zero_root)
{
    int W = world->size, r = world->rank, root = W - 1;
    double b[6], want[6];
    for (int i = 0; i < 6; i++) {
        b[i] = r == root ? 1.0 / 3.0 + i : -7;
        want[i] = 1.0 / 3.0 + i;
    }
    int ok = ok_status(zl_comm_broadcast(world, b, 6, ZL_F64, root), "broadcast");
    ok &= same_f64("broadcast", b, want, 6);

    /* reduce SUM to rank 1: only the root's receive buffer is written. */
    int rroot = 1 % W;
    double s[4], out[4] = {-1, -1, -1, -1};
    for (int i = 0; i < 4; i++) s[i] = (r + 1) * (i + 1);
    ok &= ok_status(zl_comm_reduce(world, r == rroot ? out : NULL, s, 4, ZL_F64, ZL_REDUCE_SUM,
                                   rroot), "reduce");
    for (int i = 0; i < 4; i++) want[i] = r == rroot ? (i + 1) * W * (W + 1) / 2.0 : -1;
    ok &= same_f64("reduce", out, want, 4);
    /* In place at the root, MIN in f16. */
    uint16_t h[3];
    for (int i = 0; i < 3; i++) h[i] = zl_f32_to_f16((float)(-(r + 1) * (i + 1)));
    ok &= ok_status(zl_comm_reduce(world, r == rroot ? h : NULL, h, 3, ZL_F16, ZL_REDUCE_MIN, rroot),
                    "reduce in place");
    if (r == rroot)
        for (int i = 0; i < 3; i++)
            if (zl_f16_to_f32(h[i]) != (float)(-W * (i + 1))) ok = 0;
    ALL_OK(ok);
}
END_TEST

/* A large in-place reduce to every root in turn, the way ZeRO reduces each owner's slice
 * (this crashed inside Debian's MPICH with MPI_IN_PLACE at roots other than 0). */
START_TEST(test_mpi_reduce_in_place_large_every_root)
{
    int W = world->size, r = world->rank, ok = 1;
    size_t n = 60000;
    float *x = malloc(n * sizeof *x);
    for (int root = 0; root < W; root++) {
        for (size_t i = 0; i < n; i++) x[i] = (float)((r + 1) * (int)(i % 7));
        ok &= ok_status(zl_comm_reduce(world, x, x, n, ZL_F32, ZL_REDUCE_SUM, root), "reduce");
        for (size_t i = 0; i < n && r == root; i++)
            if (x[i] != (float)((int)(i % 7) * W * (W + 1) / 2)) {
                ok = 0;
                break;
            }
    }
    free(x);
    ALL_OK(ok);
}
END_TEST

START_TEST(test_mpi_send_recv_ring_and_errors)
{
    int W = world->size, r = world->rank;
    int to = (r + 1) % W, from = (r + W - 1) % W;
    float out[8], in[8];
    for (int i = 0; i < 8; i++) out[i] = (float)(10 * r + i);
    int ok = 1;
    /* Even ranks send first, odd ranks receive first: no cycle of blocked sends. */
    for (int phase = 0; phase < 2; phase++) {
        if ((r % 2 == 0) == (phase == 0))
            ok &= ok_status(zl_comm_send(world, out, 8, ZL_F32, to, 3), "ring send");
        else
            ok &= ok_status(zl_comm_recv(world, in, 8, ZL_F32, from, 3), "ring recv");
    }
    for (int i = 0; i < 8; i++)
        if (in[i] != (float)(10 * from + i)) ok = 0;

    /* Errors between ranks 0 and 1: a message longer than the receive buffer is MPI's
     * truncation error; a shorter one is ours. Both are ZL_ERR_COMM with a message. */
    if (r == 0) {
        ok &= ok_status(zl_comm_send(world, out, 4, ZL_F32, 1, 9), "send long");
        ok &= ok_status(zl_comm_send(world, out, 2, ZL_F32, 1, 10), "send short");
    } else if (r == 1) {
        zl_status st = zl_comm_recv(world, in, 2, ZL_F32, 0, 9);
        if (st != ZL_ERR_COMM || !strstr(zl_last_error(), "MPI_Recv on communicator 'world'")) {
            fprintf(stderr, "[rank 1] truncation: status %d, '%s'\n", st, zl_last_error());
            ok = 0;
        }
        st = zl_comm_recv(world, in, 4, ZL_F32, 0, 10);
        if (st != ZL_ERR_COMM || !strstr(zl_last_error(), "rank 0 sent 2 elements of f32, rank 1 expected 4")) {
            fprintf(stderr, "[rank 1] short message: status %d, '%s'\n", st, zl_last_error());
            ok = 0;
        }
    }
    zl_status st = zl_comm_send(world, out, 1, ZL_F32, r, 0);
    ok &= st == ZL_ERR_INVALID && strstr(zl_last_error(), "cannot talk to itself");
    ok &= zl_comm_send(world, out, 1, ZL_F32, W, 0) == ZL_ERR_INVALID;
    ALL_OK(ok);
}
END_TEST

/* Start the collectives, compute something else, then wait: the results are right and
 * the local computation is untouched. */
START_TEST(test_mpi_nonblocking_overlap)
{
    int W = world->size, r = world->rank;
    enum { A = 1024, C = 4 };
    static float a[A], rs_in[4 * C], rs_out[C], ag[4 * C], local[4096];
    for (int i = 0; i < A; i++) a[i] = (float)((r + 1) * (i % 13));
    for (int j = 0; j < W * C; j++) rs_in[j] = (float)(r + j);
    zl_comm_request q1 = {0}, q2 = {0}, q3 = {0}, q4 = {0};
    int ok = ok_status(zl_comm_iallreduce(world, a, A, ZL_F32, ZL_REDUCE_SUM, &q1), "iallreduce");
    ok &= ok_status(zl_comm_ireduce_scatter(world, rs_out, rs_in, C, ZL_F32, ZL_REDUCE_SUM, &q2),
                    "ireduce_scatter");
    ok &= ok_status(zl_comm_iallgather(world, ag, rs_in + r * C, C, ZL_F32, &q3), "iallgather");
    double acc = 0; /* the overlapped work */
    for (int i = 0; i < 4096; i++) {
        local[i] = sinf((float)i * 0.001f);
        acc += local[i];
    }
    ok &= ok_status(zl_comm_wait(world, &q3), "wait ag");
    ok &= ok_status(zl_comm_wait(world, &q1), "wait ar");
    ok &= ok_status(zl_comm_wait(world, &q2), "wait rs");
    ok &= !q1.active && !q2.active && !q3.active;
    for (int i = 0; i < A; i++)
        if (a[i] != (float)(W * (W + 1) / 2 * (i % 13))) ok = 0;
    for (int k = 0; k < C; k++) /* sum over q of (q + r*C + k) */
        if (rs_out[k] != (float)(W * (W - 1) / 2 + W * (r * C + k))) ok = 0;
    for (int j = 0; j < W * C; j++) /* chunk q of rank q: q + j */
        if (ag[j] != (float)(j / C + j)) ok = 0;
    ok &= acc > 0;

    /* Non-blocking in-place reduce-scatter: the result moves to the chunk at the wait. */
    for (int j = 0; j < W * C; j++) rs_in[j] = (float)(r + j);
    ok &= ok_status(zl_comm_ireduce_scatter(world, rs_in + r * C, rs_in, C, ZL_F32, ZL_REDUCE_SUM,
                                            &q4), "ireduce_scatter in place");
    ok &= ok_status(zl_comm_wait(world, &q4), "wait rs in place");
    for (int k = 0; k < C; k++)
        if (rs_in[r * C + k] != (float)(W * (W - 1) / 2 + W * (r * C + k))) ok = 0;
    if (!ok) fprintf(stderr, "[rank %d] non-blocking results differ\n", r);
    ALL_OK(ok);
}
END_TEST

/* The data x model grid of the world (model 2 when the world is even), split by the
 * topology's colors: each group is the topology's group, in order, and collectives stay
 * inside it. */
START_TEST(test_mpi_split_2d_groups)
{
    int W = world->size, r = world->rank;
    zl_topology t;
    ck_assert_int_eq(zl_topology_init(&t, W, 1, W % 2 == 0 ? 2 : 1), ZL_OK);
    static const zl_axis axes[2] = {ZL_AXIS_DATA, ZL_AXIS_MODEL};
    int ok = 1;
    for (int a = 0; a < 2; a++) {
        zl_comm *g = NULL;
        int color = zl_topology_group_color(&t, axes[a], r);
        zl_status st = zl_comm_split(world, color, r, zl_axis_name(axes[a]), &g);
        ok &= ok_status(st, "split");
        if (st != ZL_OK) continue;
        int members[8];
        int n = zl_topology_group(&t, axes[a], r, members);
        ok &= g->size == n && !strcmp(g->name, zl_axis_name(axes[a]));
        zl_coords c = zl_topology_coords(&t, r);
        ok &= g->rank == (axes[a] == ZL_AXIS_DATA ? c.data : c.model);
        /* allgather of world ranks lists the group's members in order */
        int32_t me = r, got[8];
        ok &= ok_status(zl_comm_allgather(g, got, &me, 1, ZL_I32), "group allgather");
        for (int i = 0; i < n; i++) ok &= got[i] == members[i];
        /* allreduce inside the group sums only its members */
        double s = r, want = 0;
        for (int i = 0; i < n; i++) want += members[i];
        ok &= ok_status(zl_comm_allreduce(g, &s, 1, ZL_F64, ZL_REDUCE_SUM), "group allreduce");
        ok &= s == want;
        zl_comm_destroy(g);
    }
    if (!ok) fprintf(stderr, "[rank %d] 2-D groups wrong\n", r);
    ALL_OK(ok);
}
END_TEST

START_TEST(test_mpi_agree_one_failing_rank)
{
    int W = world->size, r = world->rank;
    int ok = 1;
    zl_error_clear();
    ok &= zl_comm_agree(world, ZL_OK) == ZL_OK;

    zl_status mine = ZL_OK;
    if (r == W - 1) mine = zl_errorf(ZL_ERR_IO, "disk full on the last rank");
    zl_status st = zl_comm_agree(world, mine);
    ok &= st == ZL_ERR_IO;
    char want[96];
    snprintf(want, sizeof want, "rank %d failed (its message is in its output)", W - 1);
    ok &= r == W - 1 ? !strcmp(zl_last_error(), "disk full on the last rank")
                     : !strcmp(zl_last_error(), want);

    /* Two failures: everyone gets the lowest status; the message names the lowest rank. */
    mine = ZL_OK;
    if (r == 0) mine = zl_errorf(ZL_ERR_IO, "rank 0's own problem");
    if (r == W - 1) mine = zl_errorf(ZL_ERR_CONFIG, "bad config on the last rank");
    st = zl_comm_agree(world, mine);
    ok &= st == ZL_ERR_CONFIG; /* -6 < -4 */
    if (r != 0 && r != W - 1) ok &= strstr(zl_last_error(), "rank 0 failed") != NULL;
    if (r == 0) ok &= !strcmp(zl_last_error(), "rank 0's own problem");
    if (!ok) fprintf(stderr, "[rank %d] agree: status %d, '%s'\n", r, st, zl_last_error());
    ALL_OK(ok);
}
END_TEST

/* A second world handle with a log: every call is recorded with DeepSpeed's message size.
 * Destroying this handle leaves MPI up (the runner's handle and MPI_Init remain). */
START_TEST(test_mpi_log_bytes_per_op)
{
    int W = world->size, r = world->rank;
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    zl_comm *w;
    ck_assert_int_eq(zl_comm_world(&w, log), ZL_OK);
    ck_assert(w->size == W && w->rank == r && !strcmp(w->vt->name, "mpi"));
    double buf[64] = {0}, out[64];
    int ok = 1;
    ok &= ok_status(zl_comm_allreduce(w, buf, 10, ZL_F32, ZL_REDUCE_SUM), "ar");
    ok &= ok_status(zl_comm_reduce_scatter(w, out, buf, 3, ZL_F32, ZL_REDUCE_SUM), "rs");
    ok &= ok_status(zl_comm_allgather(w, out, buf, 5, ZL_F16), "ag");
    ok &= ok_status(zl_comm_broadcast(w, buf, 6, ZL_I32, 0), "bc");
    ok &= ok_status(zl_comm_reduce(w, out, buf, 2, ZL_F64, ZL_REDUCE_MAX, 0), "reduce");
    ok &= ok_status(zl_comm_barrier(w), "barrier");
    if (r == 0) ok &= ok_status(zl_comm_send(w, buf, 8, ZL_F32, 1, 1), "send");
    if (r == 1) ok &= ok_status(zl_comm_recv(w, buf, 8, ZL_F32, 0, 1), "recv");
    zl_comm_request q = {0};
    ok &= ok_status(zl_comm_iallreduce(w, buf, 4, ZL_F32, ZL_REDUCE_MIN, &q), "iar");
    ok &= zl_comm_log_count(log, ZL_COMM_ALLREDUCE) == 1; /* not yet: recorded at the wait */
    ok &= ok_status(zl_comm_wait(w, &q), "wait");

    ok &= zl_comm_log_count(log, ZL_COMM_ALLREDUCE) == 2;
    ok &= zl_comm_log_nbytes(log, ZL_COMM_ALLREDUCE) == 40 + 16;
    ok &= zl_comm_log_nbytes(log, ZL_COMM_REDUCE_SCATTER) == (uint64_t)W * 3 * 4; /* input */
    ok &= zl_comm_log_nbytes(log, ZL_COMM_ALLGATHER) == 10;                      /* own chunk */
    ok &= zl_comm_log_nbytes(log, ZL_COMM_BROADCAST) == 24;
    ok &= zl_comm_log_nbytes(log, ZL_COMM_REDUCE) == 16;
    ok &= zl_comm_log_count(log, ZL_COMM_BARRIER) == 1;
    ok &= zl_comm_log_count(log, ZL_COMM_SEND) == (r == 0);
    ok &= zl_comm_log_nbytes(log, ZL_COMM_RECV) == (r == 1 ? 32u : 0u);
    ok &= zl_comm_log_seconds(log, ZL_COMM_BARRIER) > 0;

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    zl_comm_log_print(log, f);
    fclose(f);
    ok &= strstr(text, "\nall_reduce\n") != NULL && strstr(text, "\nbarrier\n") != NULL;
    ok &= strstr(text, "40.0 B") != NULL;
    if (r == 0 && getenv("ZL_TEST_VERBOSE")) fputs(text, stdout);
    free(text);
    if (!ok) fprintf(stderr, "[rank %d] log counts wrong\n", r);
    zl_comm_destroy(w);
    zl_comm_log_destroy(log);
    ALL_OK(ok);
}
END_TEST

static Suite *comm_mpi_suite(void)
{
    Suite *s = suite_create("comm_mpi");
    if (world->size < 2) { /* started without mpiexec: nothing to test, a skip */
        fprintf(stderr, "comm_mpi: needs at least 2 ranks (run under mpiexec -n 2..4)\n");
        return s;
    }
    TCase *tc = tcase_create("mpi");
    tcase_add_test(tc, test_mpi_allreduce_f32_f64_i32);
    tcase_add_test(tc, test_mpi_allreduce_f16_bf16);
    tcase_add_test(tc, test_mpi_large_counts_split_or_refused);
    tcase_add_test(tc, test_mpi_reduce_scatter);
    tcase_add_test(tc, test_mpi_allgather);
    tcase_add_test(tc, test_mpi_broadcast_and_reduce_non_zero_root);
    tcase_add_test(tc, test_mpi_reduce_in_place_large_every_root);
    tcase_add_test(tc, test_mpi_send_recv_ring_and_errors);
    tcase_add_test(tc, test_mpi_nonblocking_overlap);
    tcase_add_test(tc, test_mpi_split_2d_groups);
    tcase_add_test(tc, test_mpi_agree_one_failing_rank);
    tcase_add_test(tc, test_mpi_log_bytes_per_op);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return zl_test_run_mpi_with(comm_mpi_suite, &world);
}
