/* Lab 04: collectives from scratch. `demo`: the student's ring allreduce against the
 * library's MPI allreduce, in wall time on this machine and in simulated time on a node of
 * V100s (the cost model's alpha-beta ring); `check`: the three ring functions against the
 * library's zl_comm_reduce_scatter / zl_comm_allgather / zl_comm_allreduce (exact) and
 * the bytes each rank sent against the ring's (N-1)/N. */
#include "lab.h"
#include "student.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ given to the student */

void ring_chunk(size_t n, int N, int k, size_t *off, size_t *len)
{
    size_t q = n / (size_t)N, rem = n % (size_t)N, kk = (size_t)k;
    *off = kk * q + (kk < rem ? kk : rem);
    *len = q + (kk < rem ? 1 : 0);
}

static size_t sent_bytes; /* this rank's bytes through lab_send */

zl_status lab_send(zl_comm *c, const float *buf, size_t count, int peer, int tag)
{
    sent_bytes += count * sizeof(float);
    return zl_comm_send(c, buf, count, ZL_F32, peer, tag);
}

zl_status lab_recv(zl_comm *c, float *buf, size_t count, int peer, int tag)
{
    return zl_comm_recv(c, buf, count, ZL_F32, peer, tag);
}

/* ------------------------------------------------------------------ helpers */

/* Rank r's vector: small integers, so that every partial sum is an integer far below 2^24
 * and exact in fp32 whatever order the ring adds in: the student's result and MPI's
 * (whose reduction order is its own) must then agree bit for bit. */
static void fill(float *x, size_t n, int r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)((i * 7 + (size_t)r * 13) % 23) - 11);
}

/* A student call that timed out (a deadlocked ring: the watchdog fired) leaves MPI in a
 * collective that never ends: say why and end the job (exit 1). */
static void stop_if_broken(lab *L, const char *what)
{
    if (zl_comm_health(L->world) == ZL_OK) return;
    fprintf(stderr, "lab 04: rank %d: %s did not finish: %s\n"
                    "  hint: the ranks' sends and receives do not match: a send no rank receives (a"
                    " wrong chunk index or length, a tag), or every rank sending first (a ring of"
                    " blocking sends deadlocks for large messages: let even ranks send first,"
                    " odd ranks receive first)\n",
            L->rank, what, zl_last_error());
    zl_comm_abort(L->world, 1);
    exit(1); /* only if there was no job to end */
}

static size_t max_chunk(size_t n, int N) { return (n + (size_t)N - 1) / (size_t)N; }

/* The library's reduce-scatter / allgather take equal chunks: chunk k is padded to
 * max_chunk in slot k. */
static void pad(const float *x, size_t n, int N, float *padded)
{
    size_t m = max_chunk(n, N);
    memset(padded, 0, (size_t)N * m * sizeof(float));
    for (int k = 0; k < N; k++) {
        size_t off, len;
        ring_chunk(n, N, k, &off, &len);
        memcpy(padded + (size_t)k * m, x + off, len * sizeof(float));
    }
}

/* ------------------------------------------------------------------ check */

static const char *status_word(int rc) { return rc == LAB_NOT_DONE ? "not written" : "failed"; }

static void grade(lab *L)
{
    int N = L->size, r = L->rank;
    /* 1 Mi floats: 1 MiB chunks at N = 4, past MPI's eager limit, so that a ring that can
     * deadlock does; 1003 and 13: chunks of different lengths. */
    static const size_t sizes[] = {4096, 1003, 13, (size_t)1 << 20};
    const int nsizes = 4;
    size_t nmax = sizes[3];
    float *x = malloc(nmax * sizeof *x), *ref = malloc(nmax * sizeof *ref);
    float *padded = malloc((nmax + (size_t)N) * sizeof *padded);
    float *out = malloc((nmax + (size_t)N) * sizeof *out);
    float *tmp = malloc(max_chunk(nmax, N) * sizeof *tmp);
    if (!x || !ref || !padded || !out || !tmp) {
        lab_check(L, "buffers", false, "allocated", "out of memory");
        goto done;
    }
    /* A deadlocked ring becomes an error after 30 s instead of a hang. */
    zl_comm_set_timeout(L->world, 30.0);

    const char *names[3] = {"ring_reduce_scatter", "ring_allgather", "ring_allreduce"};
    for (int f = 0; f < 3; f++) {
        int rc = 0;
        size_t bad = 0, bad_bytes = 0, checked = 0;
        size_t got_bytes = 0, want_bytes = 0; /* at the largest size */
        for (int si = 0; si < nsizes && rc == 0; si++) {
            size_t n = sizes[si], m = max_chunk(n, N);
            size_t off, len, off1, len1;
            ring_chunk(n, N, r, &off, &len);
            ring_chunk(n, N, (r + 1) % N, &off1, &len1);
            fill(x, n, r);
            size_t want = 0;
            if (f == 0) {
                pad(x, n, N, padded);
                zl_comm_reduce_scatter(L->world, out, padded, m, ZL_F32, ZL_REDUCE_SUM);
                memcpy(ref + off, out, len * sizeof(float));
                want = (n - len) * sizeof(float);
            } else if (f == 1) {
                /* only chunk r is this rank's: poison the rest */
                for (size_t i = 0; i < n; i++)
                    if (i < off || i >= off + len) x[i] = -1e30f;
                pad(x, n, N, padded);
                zl_comm_allgather(L->world, out, padded + (size_t)r * m, m, ZL_F32);
                for (int k = 0; k < N; k++) {
                    size_t ko, kl;
                    ring_chunk(n, N, k, &ko, &kl);
                    memcpy(ref + ko, out + (size_t)k * m, kl * sizeof(float));
                }
                want = (n - len1) * sizeof(float);
            } else {
                memcpy(ref, x, n * sizeof(float));
                zl_comm_allreduce(L->world, ref, n, ZL_F32, ZL_REDUCE_SUM);
                want = (2 * n - len - len1) * sizeof(float);
            }
            sent_bytes = 0;
            if (f == 0) rc = ring_reduce_scatter(L->world, x, n, tmp);
            else if (f == 1) rc = ring_allgather(L->world, x, n);
            else rc = ring_allreduce(L->world, x, n, tmp);
            stop_if_broken(L, names[f]);
            if (rc != 0) break;
            size_t lo = f == 0 ? off : 0, hi = f == 0 ? off + len : n;
            for (size_t i = lo; i < hi; i++, checked++)
                if (memcmp(&x[i], &ref[i], sizeof(float)) != 0) bad++;
            if (sent_bytes != want) bad_bytes++;
            got_bytes = sent_bytes;
            want_bytes = want;
        }
        char item[80], target[96];
        snprintf(item, sizeof item, "%s: values = MPI's", names[f]);
        if (rc != 0) {
            lab_check(L, item, false, "exact, n = 4096, 1003, 13, 1Mi", "%s", status_word(rc));
            snprintf(item, sizeof item, "%s: bytes sent per rank", names[f]);
            lab_check(L, item, false, "ring's", "%s", status_word(rc));
            continue;
        }
        lab_check(L, item, bad == 0, "exact, n = 4096, 1003, 13, 1Mi", "%zu of %zu differ", bad,
                  checked);
        /* at the largest size N divides n: the ring's (N-1)/N, or 2(N-1)/N, exactly */
        double frac = (f == 2 ? 2.0 : 1.0) * (N - 1) / N;
        snprintf(item, sizeof item, "%s: bytes sent per rank", names[f]);
        snprintf(target, sizeof target, "%s(N-1)/N x 4 MiB = %zu B", f == 2 ? "2" : "",
                 (size_t)(frac * (double)(nmax * sizeof(float))));
        lab_check(L, item, bad_bytes == 0, target, "%zu B%s", got_bytes,
                  bad_bytes ? " (or other sizes off)" : "");
        (void)want_bytes;
    }
done:
    free(x), free(ref), free(padded), free(out), free(tmp);
}

/* ------------------------------------------------------------------ demo */

/* Simulated seconds of fn on the world with simulator s attached: the slowest rank's
 * advance of its compute clock. */
static double sim_time(lab *L, zl_sim *s, int (*fn)(lab *, float *, size_t, float *), float *x,
                       size_t n, float *tmp, int *rc)
{
    double t0 = zl_sim_ready(s);
    zl_comm_set_sim(L->world, s);
    *rc = fn(L, x, n, tmp);
    zl_comm_set_sim(L->world, NULL);
    double dt = zl_sim_ready(s) - t0;
    zl_comm_allreduce(L->world, &dt, 1, ZL_F64, ZL_REDUCE_MAX);
    return dt;
}

static int run_mpi(lab *L, float *x, size_t n, float *tmp)
{
    (void)tmp;
    return zl_comm_allreduce(L->world, x, n, ZL_F32, ZL_REDUCE_SUM) == ZL_OK ? 0 : -1;
}

static int run_ring(lab *L, float *x, size_t n, float *tmp) { return ring_allreduce(L->world, x, n, tmp); }

/* Best of `reps` wall-clock runs (the slowest rank's time of each). */
static double wall_time(lab *L, int (*fn)(lab *, float *, size_t, float *), float *x, size_t n,
                        float *tmp, int reps, int *rc)
{
    double best = INFINITY;
    for (int i = 0; i < reps && *rc == 0; i++) {
        zl_comm_barrier(L->world);
        double t0 = lab_now();
        *rc = fn(L, x, n, tmp);
        double dt = lab_now() - t0;
        zl_comm_allreduce(L->world, &dt, 1, ZL_F64, ZL_REDUCE_MAX);
        if (dt < best) best = dt;
    }
    return best;
}

static void demo(lab *L)
{
    int N = L->size;
    char spec[32];
    snprintf(spec, sizeof spec, "%dxv100-16gb", N);
    zl_cluster cl;
    if (N < 2 || zl_cluster_parse(spec, &cl) != ZL_OK) {
        lab_printf(L, "  this demo needs 2 to 8 ranks (make lab04 runs 4)\n");
        return;
    }
    zl_sim sim;
    zl_sim_init(&sim, NULL, NULL, NULL, false);
    zl_cost_attach(&sim, &cl);
    const zl_link *link = cl.intra;
    lab_printf(L, "  simulated: one node of %d x %s, %s: alpha %.1f us, bus bandwidth %.1f GB/s"
                  " (line rate %.0f GB/s x %.2f)\n",
               N, cl.device->display, link->name, link->latency * 1e6,
               zl_link_bus_bandwidth(link) / 1e9, link->bandwidth / 1e9, link->efficiency);
    lab_printf(L, "  the model's ring allreduce: 2(N-1) alpha + 2(N-1)/N bytes / bw\n\n");

    static const size_t sizes[] = {256, 1 << 14, 1 << 18, 1 << 20, 1 << 22};
    size_t nmax = sizes[4];
    float *x = malloc(nmax * sizeof *x), *tmp = malloc(max_chunk(nmax, N) * sizeof *tmp);
    if (!x || !tmp) {
        lab_printf(L, "  out of memory\n");
        free(x), free(tmp);
        zl_sim_free(&sim);
        return;
    }
    /* does the student's ring exist? (a tiny call; every rank gets the same answer) */
    fill(x, 16, L->rank);
    int ring_rc = ring_allreduce(L->world, x, 16, tmp);
    if (ring_rc != 0)
        lab_printf(L, "  (your ring_allreduce is not written yet: MPI's rows only; "
                      "write student.c and run `make lab04` again)\n\n");

    lab_printf(L, "  %10s  %12s %12s %12s  %10s %10s  %10s %10s\n", "bytes", "model (us)",
               "sim MPI(us)", "sim ring(us)", "busbw GB/s", "ring sent", "wall MPI", "wall ring");
    for (int si = 0; si < 5; si++) {
        size_t n = sizes[si], bytes = n * sizeof(float);
        double model = zl_cost_collective(&cl, ZL_SIM_ALLREDUCE, (double)bytes, N, false);
        int rc = 0;
        fill(x, n, L->rank);
        double sim_mpi = sim_time(L, &sim, run_mpi, x, n, tmp, &rc);
        double sim_ring = NAN, wall_ring = NAN;
        size_t ring_sent = 0;
        if (ring_rc == 0) {
            fill(x, n, L->rank);
            sent_bytes = 0;
            sim_ring = sim_time(L, &sim, run_ring, x, n, tmp, &rc);
            ring_sent = sent_bytes;
        }
        int reps = bytes < (1 << 20) ? 20 : 5;
        rc = 0;
        double wall_mpi = wall_time(L, run_mpi, x, n, tmp, reps, &rc);
        if (ring_rc == 0) wall_ring = wall_time(L, run_ring, x, n, tmp, reps, &rc);
        double busbw = 2.0 * (N - 1) / N * (double)bytes / sim_mpi;
        if (ring_rc == 0)
            lab_printf(L, "  %10zu  %12.2f %12.2f %12.2f  %10.1f %10zu  %8.0fus %8.0fus\n", bytes,
                       model * 1e6, sim_mpi * 1e6, sim_ring * 1e6, busbw / 1e9, ring_sent,
                       wall_mpi * 1e6, wall_ring * 1e6);
        else
            lab_printf(L, "  %10zu  %12.2f %12.2f %12s  %10.1f %10s  %8.0fus %10s\n", bytes,
                       model * 1e6, sim_mpi * 1e6, "-", busbw / 1e9, "-", wall_mpi * 1e6, "-");
        char name[64];
#define ROW(what, v, unit)                                                       \
    do {                                                                         \
        snprintf(name, sizeof name, "%s %zu B", what, bytes);                    \
        lab_csv(L, name, v, unit);                                               \
    } while (0)
        ROW("model allreduce", model, "s");
        ROW("simulated MPI allreduce", sim_mpi, "s");
        ROW("simulated bus bandwidth", busbw, "B/s");
        ROW("wall MPI allreduce", wall_mpi, "s");
        if (ring_rc == 0) {
            ROW("simulated ring allreduce", sim_ring, "s");
            ROW("wall ring allreduce", wall_ring, "s");
            ROW("ring bytes sent per rank", (double)ring_sent, "B");
        }
#undef ROW
    }
    lab_printf(L, "\n  wall times are this machine's (%d ranks sharing its cores: noisy)\n", N);
    free(x), free(tmp);
    zl_sim_free(&sim);

    /* The trace: a short data-parallel run on the same simulated node, whose gradient
     * allreduces are the collectives above, on the comm stream. */
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 2, \"steps_per_print\": 1000, "
                    "\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.001}}}";
    o.model = "lab";
    o.steps = 2;
    o.seq_len = 32;
    o.device = "v100-16gb";
    o.comm = L->world;
    char trace[640];
    snprintf(trace, sizeof trace, "%s", lab_path(L, "trace.json"));
    o.trace = trace;
    zl_run run;
    float loss = 0;
    zl_status st = zl_run_init(&run, &o);
    for (long s = 0; st == ZL_OK && s < o.steps; s++) st = zl_run_step(&run, &loss);
    if (st == ZL_OK) st = zl_run_write_trace(&run, trace);
    if (st == ZL_OK)
        lab_printf(L, "  trace of a %d-rank data-parallel step on %s: %s\n", N, spec, trace);
    else
        lab_printf(L, "  the traced run failed: %s\n", zl_last_error());
    zl_run_free(&run);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "04", "Collectives from scratch");
    if (rc != 0) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
