/* Every op of backends/ops.h on backend X against ref (the specification), on odd shapes.
 *
 *   ZL_TEST_BACKEND=cuda tests/gpu/check_ops     (default: cuda; make check runs cpu too)
 *
 * X is the backend named by ZL_TEST_BACKEND. Its memory is touched ONLY through its own
 * ops (alloc, to_device, to_host, free): never dereferenced. So the same program checks
 * the cpu backend here (its memory is host memory, but the test does not know it) and the
 * cuda backend on a GPU, where device pointers are not host memory.
 *
 * Every case: random inputs on the host, the ref op on host copies, X's op on device
 * copies, X's outputs brought back and compared with a tolerance stated per op (the TOL_*
 * below, each with its reason). Gradients start non-zero (backward ops accumulate), beta
 * = 0 gemms start with NaN in C (which they must ignore), some targets are ignored (< 0).
 *
 * Shapes are deliberately odd: B=3, T=37, C=72 (NH=6, HS=12), V=263, N=B*T=111 rows, and
 * vectors of 2^20+3 elements: no dimension a multiple of a warp (32) or of a block (128,
 * 256), so every kernel's ragged edge runs.
 *
 * Exit: 0 every comparison passed (and at least one ran), 1 some failed, 77 backend X is
 * not available (zl_ops_find returns NULL: not built; or zl_device_init fails: cuda's
 * setup finds no device). ZL_TEST_REQUIRE=1 turns that skip into a hard error (99): the
 * GPU script sets it on a machine that has a GPU, where a skip would hide a broken setup.
 * ZL_TEST_VERBOSE=1 prints every comparison, not only the failures and a summary. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"
#include "base/dtype.h"
#include "base/status.h"
#include "core/device.h"

/* ---- tolerances: |got - want| <= atol + rtol * |want|, element by element ---------------
 *
 * EXACT: one IEEE operation per element, or none (copies, casts, rounding, residual,
 * scale, embedding forward, bias forward, max): correctly rounded on every IEEE machine,
 * so bit for bit. NaNs compare as "NaN with the same sign" (dtype.h: quieted, sign kept).
 * FMA: y + a*x may be contracted into one fused multiply-add (nvcc does by default): one
 * rounding of y + a*x apart at most. */
#define TOL_FMA_R 2.5e-7
#define TOL_FMA_A 1e-7
/* REORDER: the same f32 sums in another order (tree reductions, atomics, blocked loops):
 * a few ulps of the largest partial sum (the sums here have at most a few hundred terms). */
#define TOL_REORDER_R 1e-5
#define TOL_REORDER_A 1e-6
/* KERNEL: another algorithm for the same maths (tiled attention, warp-shuffle softmax,
 * the device's expf/tanhf/rsqrtf, within 2 ulp of libm's): relative 1e-4, with an absolute
 * floor for elements that are small differences of O(1) terms (x - mean, cancelling
 * gradients, exp of very negative numbers), where relative error means nothing. */
#define TOL_KERNEL_R 1e-4
#define TOL_KERNEL_A 1e-5
/* GEMM: f32 products summed in f32 over k terms in another order (cuBLAS with TF32 OFF:
 * TF32's 10-bit mantissa is ~1e-3 relative and fails this by two orders of magnitude, as
 * it should). The absolute part grows with k: each of k terms (|a|,|b| <= 1) may carry an
 * ulp or so of the running sum. gemm_lp: exact 16-bit products, f32 accumulation (tensor
 * cores), compared with ref's gemm_lp, so the same bound. */
#define TOL_GEMM_R 1e-4
#define TOL_GEMM_A_PER_K 5e-7
/* ADAMW: the same expressions in the same order, but for FMA contraction and the device's
 * sqrtf/division (correctly rounded unless fast-math): a few ulps of each state. The
 * 16-bit parameters are checked bit for bit against X's own f32 master, rounded on the
 * host: equal masters must round equally, and a master one ulp off may legitimately
 * round the other way. */
#define TOL_ADAMW_R 2e-6
#define TOL_ADAMW_A 1e-7
/* SUMSQ: double accumulation of (double)x*x: relative 1e-12 (a reordered double sum of 1e6
 * positive terms is ~1e-13 off; squaring in f32 first would be ~1e-10 off and fails). */
#define TOL_SUMSQ 1e-12

/* ---- shapes ------------------------------------------------------------------------ */
enum { B = 3, T = 37, C = 72, NH = 6, V = 263, N = B * T, MAXT = 41 };
#define NVEC ((size_t)(1u << 20) + 3)

/* ---- the harness ------------------------------------------------------------------- */
static const zl_ops *X; /* under test */
static const zl_ops *R; /* ref */
static int n_checks, n_failed;
static bool verbose;

/* X's allocations of the current case, freed together by dev_free_all. */
#define MAX_LIVE 64
static void *live[MAX_LIVE];
static int n_live;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "check_ops: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(99);
}

static void *host_alloc(size_t nbytes)
{
    void *p = calloc(nbytes ? nbytes : 1, 1);
    if (!p) die("out of host memory (%zu bytes)", nbytes);
    return p;
}

/* host[0..nbytes) into device memory, complete (ops.h: transfers may be asynchronous
 * until transfer_wait, which also orders the kernels after them). */
static void dev_write(void *dev, const void *host, size_t nbytes)
{
    X->to_device(X, dev, host, nbytes);
    if (X->transfer_wait) X->transfer_wait(X);
}

/* A device buffer of X holding a copy of host[0..nbytes). */
static void *dev_put(const void *host, size_t nbytes)
{
    if (n_live == MAX_LIVE) die("more than %d live device buffers in one case", MAX_LIVE);
    void *d = X->alloc(X, nbytes ? nbytes : 64);
    if (!d) die("%s: alloc of %zu bytes failed", X->name, nbytes);
    if (nbytes) dev_write(d, host, nbytes);
    live[n_live++] = d;
    return d;
}

/* host[0..nbytes) = the device buffer's contents (a fresh host buffer, caller frees). */
static void *dev_get(const void *dev, size_t nbytes)
{
    void *h = host_alloc(nbytes);
    if (nbytes) X->to_host(X, h, dev, nbytes);
    if (nbytes && X->transfer_wait) X->transfer_wait(X);
    return h;
}

static void dev_free_all(void)
{
    for (int i = 0; i < n_live; i++) X->free(X, live[i]);
    n_live = 0;
}

/* Deterministic uniform [lo, hi) from (seed, i): splitmix64. */
static float urand(uint64_t seed, uint64_t i, float lo, float hi)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((z >> 40) * (1.0 / 16777216.0));
}

static float *frand(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = host_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = urand(seed, i, lo, hi);
    return x;
}

static float *fdup(const float *x, size_t n)
{
    float *y = host_alloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static void result(const char *label, bool ok, const char *fmt, ...)
{
    n_checks++;
    if (!ok) n_failed++;
    if (ok && !verbose) return;
    va_list ap;
    va_start(ap, fmt);
    printf("%s %-44s ", ok ? "ok  " : "FAIL", label);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* got and want within atol + rtol*|want| everywhere (NaN matches NaN only). */
static void expect_close(const char *label, const float *got, const float *want, size_t n,
                         double rtol, double atol)
{
    double worst = 0.0; /* largest |d| / (atol + rtol |want|) */
    size_t at = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], r;
        if (isnan(g) || isnan(w)) r = isnan(g) && isnan(w) ? 0.0 : INFINITY;
        else if (isinf(g) || isinf(w)) r = g == w ? 0.0 : INFINITY;
        else r = fabs(g - w) / (atol + rtol * fabs(w));
        if (r > 1.0) bad++;
        if (r > worst || (isinf(r) && !isinf(worst))) worst = r, at = i;
    }
    result(label, bad == 0,
           "%zu values, %zu outside; worst at [%zu]: got %.9g want %.9g (%.3g of the tolerance "
           "%.1e rel + %.1e abs)",
           n, bad, at, n ? got[at] : 0.0f, n ? want[at] : 0.0f, worst, rtol, atol);
}

/* Bit for bit for 16- or 32-bit floats of type t; NaNs match any NaN of the same sign. */
static bool same_bits(const void *a, const void *b, zl_dtype t, size_t i)
{
    if (t == ZL_F32) {
        uint32_t x, y;
        memcpy(&x, (const char *)a + 4 * i, 4);
        memcpy(&y, (const char *)b + 4 * i, 4);
        bool xn = (x & 0x7fffffffu) > 0x7f800000u, yn = (y & 0x7fffffffu) > 0x7f800000u;
        return xn || yn ? xn && yn && (x >> 31) == (y >> 31) : x == y;
    }
    uint16_t x = ((const uint16_t *)a)[i], y = ((const uint16_t *)b)[i];
    uint16_t inf = t == ZL_F16 ? 0x7c00u : 0x7f80u;
    bool xn = (x & 0x7fffu) > inf, yn = (y & 0x7fffu) > inf;
    return xn || yn ? xn && yn && (x >> 15) == (y >> 15) : x == y;
}

static void expect_bits(const char *label, const void *got, const void *want, zl_dtype t, size_t n)
{
    size_t bad = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (!same_bits(got, want, t, i)) {
            if (!bad) first = i;
            bad++;
        }
    if (!bad) {
        result(label, true, "%zu %s values, bit for bit", n, zl_dtype_name(t));
        return;
    }
    uint32_t g = 0, w = 0;
    size_t es = zl_dtype_nbytes(t);
    memcpy(&g, (const char *)got + first * es, es);
    memcpy(&w, (const char *)want + first * es, es);
    result(label, false, "%zu of %zu %s values differ; first [%zu]: got 0x%0*x want 0x%0*x", bad,
           n, zl_dtype_name(t), first, (int)(2 * es), g, (int)(2 * es), w);
}

/* ---- gemm and gemm_lp -------------------------------------------------------------- */

/* One gemm shape, every transpose, leading dimensions padded by 3 (the padding of C must
 * survive), beta 0 over NaN and beta 1.3 over values; with lp, operands rounded to lp and
 * B fed as f32 and as lp itself. */
static void check_gemm_shape(int m, int n, int k, zl_dtype lp)
{
    char label[96];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int bi = 0; bi < 2; bi++) {
                float beta = bi ? 1.3f : 0.0f, alpha = 0.7f;
                int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 3, ldc = n + 3;
                size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb;
                size_t nc = (size_t)m * ldc;
                float *a = frand(na, 11 + m, -1, 1), *b = frand(nb, 12 + n, -1, 1);
                float *c = frand(nc, 13 + k, -1, 1);
                if (!bi) /* beta = 0 must not read C: plant NaN inside the window */
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = NAN;
                if (lp != ZL_F32) {
                    R->round(R, a, lp, na);
                    R->round(R, b, lp, nb);
                }
                float *c_ref = fdup(c, nc);
                for (int bt = 0; bt < (lp == ZL_F32 ? 1 : 2); bt++) {
                    zl_dtype b_type = bt ? lp : ZL_F32;
                    void *b_st = b; /* B as it is stored: f32, or 16-bit patterns */
                    if (bt) {
                        b_st = host_alloc(nb * 2);
                        R->cast(R, b_st, lp, b, ZL_F32, nb);
                    }
                    float *da = dev_put(a, na * 4), *dc = dev_put(c, nc * 4);
                    void *db = dev_put(b_st, nb * zl_dtype_nbytes(b_type));
                    if (lp == ZL_F32) {
                        R->gemm(R, c_ref, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
                        X->gemm(X, dc, da, db, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
                    } else {
                        if (!bt)
                            R->gemm_lp(R, c_ref, a, b, ZL_F32, lp, m, n, k, lda, ldb, ldc, ta,
                                       tb, alpha, beta);
                        X->gemm_lp(X, dc, da, db, b_type, lp, m, n, k, lda, ldb, ldc, ta, tb,
                                   alpha, beta);
                    }
                    float *got = dev_get(dc, nc * 4);
                    if (lp == ZL_F32)
                        snprintf(label, sizeof label, "gemm %dx%dx%d %c%c beta=%g", m, n, k,
                                 ta ? 'T' : 'N', tb ? 'T' : 'N', beta);
                    else
                        snprintf(label, sizeof label, "gemm_lp %s %dx%dx%d %c%c beta=%g B %s",
                                 zl_dtype_name(lp), m, n, k, ta ? 'T' : 'N', tb ? 'T' : 'N',
                                 beta, zl_dtype_name(b_type));
                    /* the whole of C, padding included: columns past n are untouched */
                    expect_close(label, got, c_ref, nc, TOL_GEMM_R, TOL_GEMM_A_PER_K * k);
                    free(got);
                    if (bt) free(b_st);
                    dev_free_all();
                }
                free(a), free(b), free(c), free(c_ref);
            }
}

static void check_gemm(void)
{
    static const int shapes[][3] = {{N, V, C}, {4 * C + 1, N, C}, {5, 3, 1027}, {1, 263, 37}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        check_gemm_shape(shapes[s][0], shapes[s][1], shapes[s][2], ZL_F32);
        check_gemm_shape(shapes[s][0], shapes[s][1], shapes[s][2], ZL_BF16);
        check_gemm_shape(shapes[s][0], shapes[s][1], shapes[s][2], ZL_F16);
    }
}

/* ---- bias ---------------------------------------------------------------------------- */
static void check_bias(void)
{
    int OC = V;
    size_t no = (size_t)N * OC;
    float *out = frand(no, 21, -1, 1), *bias = frand(OC, 22, -1, 1);
    float *out_ref = fdup(out, no), *dbias = frand(OC, 23, -1, 1), *dbias_ref = fdup(dbias, OC);
    float *dout = frand(no, 24, -1, 1);
    float *d_out = dev_put(out, no * 4), *d_bias = dev_put(bias, OC * 4);
    float *d_dbias = dev_put(dbias, OC * 4), *d_dout = dev_put(dout, no * 4);
    R->bias_forward(R, out_ref, bias, N, OC);
    X->bias_forward(X, d_out, d_bias, N, OC);
    R->bias_backward(R, dbias_ref, dout, N, OC);
    X->bias_backward(X, d_dbias, d_dout, N, OC);
    float *g = dev_get(d_out, no * 4);
    expect_bits("bias_forward (one add: exact)", g, out_ref, ZL_F32, no);
    free(g);
    g = dev_get(d_dbias, OC * 4);
    expect_close("bias_backward (+= column sums)", g, dbias_ref, OC, TOL_REORDER_R, TOL_REORDER_A);
    free(g);
    dev_free_all();
    free(out), free(bias), free(out_ref), free(dbias), free(dbias_ref), free(dout);
}

/* ---- embedding (and the vocabulary-parallel shard) --------------------------------- */
static int32_t *tokens_rand(size_t n, uint64_t seed, int hi)
{
    int32_t *t = host_alloc(n * sizeof(int32_t));
    /* few distinct ids, so that dwte rows receive several rows each (atomics collide) */
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)(urand(seed, i, 0, 1) * (float)hi) % hi;
    t[0] = hi - 1, t[1] = 0, t[2] = hi - 1;
    return t;
}

static void check_embedding(void)
{
    size_t nout = (size_t)N * C;
    int32_t *tok = tokens_rand(N, 31, V);
    float *wte = frand((size_t)V * C, 32, -1, 1), *wpe = frand((size_t)MAXT * C, 33, -1, 1);
    float *out = frand(nout, 34, -1, 1), *out_ref = fdup(out, nout);
    int32_t *d_tok = dev_put(tok, N * 4);
    float *d_wte = dev_put(wte, (size_t)V * C * 4), *d_wpe = dev_put(wpe, (size_t)MAXT * C * 4);
    float *d_out = dev_put(out, nout * 4);
    R->embedding_forward(R, out_ref, tok, wte, wpe, B, T, C);
    X->embedding_forward(X, d_out, d_tok, d_wte, d_wpe, B, T, C);
    float *g = dev_get(d_out, nout * 4);
    expect_bits("embedding_forward (exact)", g, out_ref, ZL_F32, nout);
    free(g);

    /* backward: gradients start non-zero (+=) */
    float *dout = frand(nout, 35, -1, 1);
    float *dwte = frand((size_t)V * C, 36, -1, 1), *dwpe = frand((size_t)MAXT * C, 37, -1, 1);
    float *dwte_ref = fdup(dwte, (size_t)V * C), *dwpe_ref = fdup(dwpe, (size_t)MAXT * C);
    float *d_dout = dev_put(dout, nout * 4), *d_dwte = dev_put(dwte, (size_t)V * C * 4);
    float *d_dwpe = dev_put(dwpe, (size_t)MAXT * C * 4);
    R->embedding_backward(R, dwte_ref, dwpe_ref, dout, tok, B, T, C);
    X->embedding_backward(X, d_dwte, d_dwpe, d_dout, d_tok, B, T, C);
    g = dev_get(d_dwte, (size_t)V * C * 4);
    expect_close("embedding_backward dwte", g, dwte_ref, (size_t)V * C, TOL_REORDER_R,
                 TOL_REORDER_A);
    free(g);
    g = dev_get(d_dwpe, (size_t)MAXT * C * 4);
    expect_close("embedding_backward dwpe", g, dwpe_ref, (size_t)MAXT * C, TOL_REORDER_R,
                 TOL_REORDER_A);
    free(g);

    /* the shard [v0, v1) of a tensor-parallel rank: wte holds its rows only */
    int v0 = 100, v1 = 200, Vs = v1 - v0;
    float *ws = wte + (size_t)v0 * C;
    float *d_ws = dev_put(ws, (size_t)Vs * C * 4);
    for (int with_wpe = 0; with_wpe < 2; with_wpe++) {
        float *o = frand(nout, 38, -1, 1), *o_ref = fdup(o, nout);
        float *d_o = dev_put(o, nout * 4);
        R->embedding_shard_forward(R, o_ref, tok, ws, v0, v1, with_wpe ? wpe : NULL, B, T, C);
        X->embedding_shard_forward(X, d_o, d_tok, d_ws, v0, v1, with_wpe ? d_wpe : NULL, B, T, C);
        g = dev_get(d_o, nout * 4);
        expect_bits(with_wpe ? "embedding_shard_forward +wpe (exact)"
                             : "embedding_shard_forward (exact)",
                    g, o_ref, ZL_F32, nout);
        free(g), free(o), free(o_ref);
    }
    for (int which = 0; which < 3; which++) { /* both, dwte only, dwpe only */
        float *a = frand((size_t)Vs * C, 39, -1, 1), *a_ref = fdup(a, (size_t)Vs * C);
        float *p = frand((size_t)MAXT * C, 40, -1, 1), *p_ref = fdup(p, (size_t)MAXT * C);
        float *d_a = dev_put(a, (size_t)Vs * C * 4), *d_p = dev_put(p, (size_t)MAXT * C * 4);
        bool wa = which != 2, wp = which != 1;
        R->embedding_shard_backward(R, wa ? a_ref : NULL, wp ? p_ref : NULL, dout, tok, v0, v1, B,
                                    T, C);
        X->embedding_shard_backward(X, wa ? d_a : NULL, wp ? d_p : NULL, d_dout, d_tok, v0, v1, B,
                                    T, C);
        static const char *const names[] = {"", " (dwte NULL)", " (dwpe NULL)"};
        char label[96];
        g = dev_get(d_a, (size_t)Vs * C * 4);
        snprintf(label, sizeof label, "embedding_shard_backward dwte%s", names[which]);
        expect_close(label, g, a_ref, (size_t)Vs * C, TOL_REORDER_R, TOL_REORDER_A);
        free(g);
        g = dev_get(d_p, (size_t)MAXT * C * 4);
        snprintf(label, sizeof label, "embedding_shard_backward dwpe%s", names[which]);
        expect_close(label, g, p_ref, (size_t)MAXT * C, TOL_REORDER_R, TOL_REORDER_A);
        free(g), free(a), free(a_ref), free(p), free(p_ref);
    }
    dev_free_all();
    free(tok), free(wte), free(wpe), free(out), free(out_ref), free(dout), free(dwte), free(dwpe);
    free(dwte_ref), free(dwpe_ref);
}

/* ---- layernorm ------------------------------------------------------------------------ */
static void check_layernorm(void)
{
    size_t n = (size_t)N * C;
    /* an offset mean, so that x - mean cancels as in a real residual stream */
    float *inp = frand(n, 41, 2, 5), *w = frand(C, 42, 0.5f, 1.5f), *b = frand(C, 43, -1, 1);
    float *out = host_alloc(n * 4), *mean = host_alloc(N * 4), *rstd = host_alloc(N * 4);
    float *d_inp = dev_put(inp, n * 4), *d_w = dev_put(w, C * 4), *d_b = dev_put(b, C * 4);
    float *d_out = dev_put(out, n * 4), *d_mean = dev_put(mean, N * 4);
    float *d_rstd = dev_put(rstd, N * 4);
    R->layernorm_forward(R, out, mean, rstd, inp, w, b, N, C);
    X->layernorm_forward(X, d_out, d_mean, d_rstd, d_inp, d_w, d_b, N, C);
    float *g = dev_get(d_out, n * 4);
    expect_close("layernorm_forward out", g, out, n, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_mean, N * 4);
    expect_close("layernorm_forward mean", g, mean, N, TOL_REORDER_R, TOL_REORDER_A);
    free(g);
    g = dev_get(d_rstd, N * 4);
    expect_close("layernorm_forward rstd", g, rstd, N, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);

    float *dout = frand(n, 44, -1, 1), *dinp = frand(n, 45, -1, 1);
    float *dw = frand(C, 46, -1, 1), *db = frand(C, 47, -1, 1);
    float *d_dout = dev_put(dout, n * 4), *d_dinp = dev_put(dinp, n * 4);
    float *d_dw = dev_put(dw, C * 4), *d_db = dev_put(db, C * 4);
    /* both backwards read the same saved mean and rstd (ref's), so only backward differs */
    dev_write(d_mean, mean, N * 4);
    dev_write(d_rstd, rstd, N * 4);
    R->layernorm_backward(R, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    X->layernorm_backward(X, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, d_mean, d_rstd, N, C);
    g = dev_get(d_dinp, n * 4);
    expect_close("layernorm_backward dinp", g, dinp, n, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_dw, C * 4);
    expect_close("layernorm_backward dweight", g, dw, C, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_db, C * 4);
    expect_close("layernorm_backward dbias", g, db, C, TOL_REORDER_R, TOL_REORDER_A);
    free(g);
    dev_free_all();
    free(inp), free(w), free(b), free(out), free(mean), free(rstd), free(dout), free(dinp);
    free(dw), free(db);
}

/* ---- attention -------------------------------------------------------------------------- */
static void check_attention(void)
{
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = frand(nqkv, 51, -2, 2);
    float *out = host_alloc(nout * 4), *att = host_alloc(natt * 4);
    /* X's att starts as garbage: the masked entries must be written (as 0), not left */
    float *garbage = frand(natt, 52, 5, 6);
    float *d_qkv = dev_put(qkv, nqkv * 4), *d_out = dev_put(garbage, nout * 4);
    float *d_att = dev_put(garbage, natt * 4);
    R->attention_forward(R, out, att, qkv, B, T, C, NH);
    X->attention_forward(X, d_out, d_att, d_qkv, B, T, C, NH);
    float *g = dev_get(d_out, nout * 4);
    expect_close("attention_forward out", g, out, nout, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_att, natt * 4);
    expect_close("attention_forward att", g, att, natt, TOL_KERNEL_R, TOL_KERNEL_A);
    size_t above = 0, nonzero = 0;
    for (size_t r = 0; r < (size_t)B * NH * T; r++)
        for (int t2 = (int)(r % T) + 1; t2 < T; t2++, above++)
            if (g[r * T + t2] != 0.0f) nonzero++;
    result("attention_forward att above the diagonal", nonzero == 0 && above > 0,
           "%zu of %zu masked entries are not exactly 0", nonzero, above);
    free(g);

    float *dout = frand(nout, 53, -1, 1), *dqkv = frand(nqkv, 54, -1, 1);
    float *scratch = host_alloc(2 * natt * 4);
    float *d_dout = dev_put(dout, nout * 4), *d_dqkv = dev_put(dqkv, nqkv * 4);
    float *d_scratch = dev_put(scratch, 2 * natt * 4);
    dev_write(d_att, att, natt * 4); /* the same saved probabilities for both */
    R->attention_backward(R, dqkv, scratch, dout, qkv, att, B, T, C, NH);
    X->attention_backward(X, d_dqkv, d_scratch, d_dout, d_qkv, d_att, B, T, C, NH);
    g = dev_get(d_dqkv, nqkv * 4);
    expect_close("attention_backward dqkv (+=)", g, dqkv, nqkv, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    dev_free_all();
    free(qkv), free(out), free(att), free(garbage), free(dout), free(dqkv), free(scratch);
}

/* ---- gelu, residual ------------------------------------------------------------------ */
static void check_pointwise(void)
{
    size_t n = NVEC;
    float *inp = frand(n, 61, -6, 6), *a = frand(n, 62, -1, 1);
    float *out = host_alloc(n * 4), *dinp = frand(n, 63, -1, 1), *dout = frand(n, 64, -1, 1);
    float *d_inp = dev_put(inp, n * 4), *d_out = dev_put(out, n * 4);
    float *d_dinp = dev_put(dinp, n * 4), *d_dout = dev_put(dout, n * 4), *d_a = dev_put(a, n * 4);
    R->gelu_forward(R, out, inp, n);
    X->gelu_forward(X, d_out, d_inp, n);
    float *g = dev_get(d_out, n * 4);
    expect_close("gelu_forward", g, out, n, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    R->gelu_backward(R, dinp, inp, dout, n);
    X->gelu_backward(X, d_dinp, d_inp, d_dout, n);
    g = dev_get(d_dinp, n * 4);
    expect_close("gelu_backward (+=)", g, dinp, n, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    /* residual, and in place (out aliases a) */
    R->residual_forward(R, out, inp, a, n);
    X->residual_forward(X, d_out, d_inp, d_a, n);
    g = dev_get(d_out, n * 4);
    expect_bits("residual_forward (exact)", g, out, ZL_F32, n);
    free(g);
    R->residual_forward(R, a, a, inp, n);
    X->residual_forward(X, d_a, d_a, d_inp, n);
    g = dev_get(d_a, n * 4);
    expect_bits("residual_forward in place (exact)", g, a, ZL_F32, n);
    free(g);
    dev_free_all();
    free(inp), free(a), free(out), free(dinp), free(dout);
}

/* ---- cross-entropy (and the vocabulary-parallel passes) --------------------------------- */
static int32_t *targets_rand(int n, uint64_t seed, int hi)
{
    int32_t *t = tokens_rand((size_t)n, seed, hi);
    for (int i = 3; i < n; i += 7) t[i] = -1; /* ignored rows */
    return t;
}

static void check_crossentropy_shape(int n, int v)
{
    char label[96];
    size_t nl = (size_t)n * v;
    float *logits = frand(nl, 71 + v, -8, 8);
    int32_t *tg = targets_rand(n, 72, v);
    float *losses = host_alloc(n * 4), *probs = host_alloc(nl * 4);
    float *d_logits = dev_put(logits, nl * 4), *d_losses = dev_put(losses, n * 4);
    float *d_probs = dev_put(probs, nl * 4);
    int32_t *d_tg = dev_put(tg, n * 4);
    R->crossentropy_forward(R, losses, probs, logits, tg, n, v);
    X->crossentropy_forward(X, d_losses, d_probs, d_logits, d_tg, n, v);
    float *g = dev_get(d_losses, n * 4);
    snprintf(label, sizeof label, "crossentropy_forward losses N=%d V=%d", n, v);
    expect_close(label, g, losses, n, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_probs, nl * 4);
    snprintf(label, sizeof label, "crossentropy_forward probs N=%d V=%d", n, v);
    expect_close(label, g, probs, nl, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    float *dl = frand(nl, 73, -1, 1), *d_dl = dev_put(dl, nl * 4);
    R->crossentropy_backward(R, dl, probs, tg, 1.0f / n, n, v);
    dev_write(d_probs, probs, nl * 4); /* the same probabilities for both */
    X->crossentropy_backward(X, d_dl, d_probs, d_tg, 1.0f / n, n, v);
    g = dev_get(d_dl, nl * 4);
    snprintf(label, sizeof label, "crossentropy_backward N=%d V=%d (+=)", n, v);
    /* one FMA-able expression per element, the ignored rows untouched */
    expect_close(label, g, dl, nl, TOL_FMA_R, TOL_FMA_A);
    free(g);
    dev_free_all();
    free(logits), free(tg), free(losses), free(probs), free(dl);
}

static void check_crossentropy_shard(void)
{
    int v0 = 100, Vs = 131; /* this rank's words [100, 231) of V */
    size_t nl = (size_t)N * Vs;
    float *logits = frand(nl, 81, -8, 8);
    int32_t *tg = targets_rand(N, 82, V); /* some inside the shard, most outside */
    float *rowmax = host_alloc(N * 4), *rowsum = host_alloc(N * 4), *probs = host_alloc(nl * 4);
    float *losses = host_alloc(N * 4);
    float *d_logits = dev_put(logits, nl * 4), *d_rowmax = dev_put(rowmax, N * 4);
    float *d_rowsum = dev_put(rowsum, N * 4), *d_probs = dev_put(probs, nl * 4);
    float *d_losses = dev_put(losses, N * 4);
    int32_t *d_tg = dev_put(tg, N * 4);

    R->crossentropy_shard_max(R, rowmax, logits, N, Vs);
    X->crossentropy_shard_max(X, d_rowmax, d_logits, N, Vs);
    float *g = dev_get(d_rowmax, N * 4);
    expect_bits("crossentropy_shard_max (exact)", g, rowmax, ZL_F32, N);
    free(g);

    R->crossentropy_shard_exp(R, probs, rowsum, logits, rowmax, N, Vs);
    dev_write(d_rowmax, rowmax, N * 4);
    X->crossentropy_shard_exp(X, d_probs, d_rowsum, d_logits, d_rowmax, N, Vs);
    g = dev_get(d_probs, nl * 4);
    expect_close("crossentropy_shard_exp probs", g, probs, nl, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_rowsum, N * 4);
    expect_close("crossentropy_shard_exp rowsum", g, rowsum, N, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);

    /* the group's sums would be larger; any positive rowsum tests the arithmetic */
    dev_write(d_probs, probs, nl * 4);
    dev_write(d_rowsum, rowsum, N * 4);
    R->crossentropy_shard_loss(R, losses, probs, logits, rowmax, rowsum, tg, v0, N, Vs);
    X->crossentropy_shard_loss(X, d_losses, d_probs, d_logits, d_rowmax, d_rowsum, d_tg, v0, N,
                               Vs);
    g = dev_get(d_losses, N * 4);
    expect_close("crossentropy_shard_loss losses", g, losses, N, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);
    g = dev_get(d_probs, nl * 4);
    expect_close("crossentropy_shard_loss probs", g, probs, nl, TOL_KERNEL_R, TOL_KERNEL_A);
    free(g);

    float *dl = frand(nl, 83, -1, 1), *d_dl = dev_put(dl, nl * 4);
    dev_write(d_probs, probs, nl * 4);
    R->crossentropy_shard_backward(R, dl, probs, tg, v0, 1.0f / N, N, Vs);
    X->crossentropy_shard_backward(X, d_dl, d_probs, d_tg, v0, 1.0f / N, N, Vs);
    g = dev_get(d_dl, nl * 4);
    expect_close("crossentropy_shard_backward (+=)", g, dl, nl, TOL_FMA_R, TOL_FMA_A);
    free(g);
    dev_free_all();
    free(logits), free(tg), free(rowmax), free(rowsum), free(probs), free(losses), free(dl);
}

/* ---- vector ops: sumsq, nonfinite, scale, axpy ---------------------------------------- */
static void check_vector(void)
{
    size_t n = NVEC;
    float *x = frand(n, 91, -3, 3), *y = frand(n, 92, -1, 1);
    float *d_x = dev_put(x, n * 4), *d_y = dev_put(y, n * 4);

    double want = R->sumsq(R, x, n), got = X->sumsq(X, d_x, n);
    double rel = fabs(got - want) / want;
    result("sumsq (double accumulation)", rel <= TOL_SUMSQ,
           "%zu values: got %.17g want %.17g, relative %.2e (tolerance %.0e)", n, got, want, rel,
           TOL_SUMSQ);
    double got1 = X->sumsq(X, d_x, 1);
    result("sumsq of 1 value", got1 == (double)x[0] * x[0], "got %.17g want %.17g", got1,
           (double)x[0] * x[0]);

    bool nf = X->nonfinite(X, d_x, n);
    result("nonfinite (all finite)", !nf, "got %s want false", nf ? "true" : "false");
    /* one bad value at the ragged end, in the middle, at the front: each must be seen */
    static const size_t where[] = {NVEC - 1, NVEC / 2 + 1, 0};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        float saved = x[where[i]];
        dev_write((char *)d_x + where[i] * 4, &bad[i], 4);
        nf = X->nonfinite(X, d_x, n);
        char label[64];
        snprintf(label, sizeof label, "nonfinite (%g at [%zu])", bad[i], where[i]);
        result(label, nf, "got %s want true", nf ? "true" : "false");
        dev_write((char *)d_x + where[i] * 4, &saved, 4);
    }

    R->scale(R, x, 0.37f, n);
    X->scale(X, d_x, 0.37f, n);
    float *g = dev_get(d_x, n * 4);
    expect_bits("scale (exact)", g, x, ZL_F32, n);
    free(g);
    R->axpy(R, y, -1.7f, x, n);
    X->axpy(X, d_y, -1.7f, d_x, n);
    g = dev_get(d_y, n * 4);
    expect_close("axpy (one FMA apart at most)", g, y, n, TOL_FMA_R, TOL_FMA_A);
    free(g);

    /* zero and copy, the memory ops */
    X->copy(X, d_y, d_x, n * 4);
    g = dev_get(d_y, n * 4);
    expect_bits("copy (exact)", g, x, ZL_F32, n);
    free(g);
    X->zero(X, (char *)d_y + 4, (n - 2) * 4);
    g = dev_get(d_y, n * 4);
    float *z = fdup(x, n);
    memset(z + 1, 0, (n - 2) * 4);
    expect_bits("zero (exact, only the range asked)", g, z, ZL_F32, n);
    free(g), free(z);
    dev_free_all();
    free(x), free(y);
}

/* ---- rounding, casts, drain: bit for bit -------------------------------------------------- */

/* f32 values that exercise every branch of the 16-bit roundings: ties to even at both
 * widths, f16's overflow to inf (65520 rounds up), f16 subnormals and underflow, bf16's
 * largest finite and overflow, signed zeros, infinities and NaNs, then random values over
 * many binades. */
static float *special_f32(size_t n, uint64_t seed)
{
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
        0x7f800001u, /* signalling NaN: must come back quiet */
        0x3f800000u, 0x3f801000u, 0x3f803000u, 0x3f808000u, 0x3f818000u, /* bf16 ties */
        0x3f800fffu, 0x3f801001u, 0x477fe000u, 0x477ff000u, 0x477fefffu, /* f16 65504.., tie */
        0x33800000u, 0x33000000u, 0x33000001u, 0x387fc000u, 0x38800000u, /* f16 subnormals */
        0x7f7fffffu, 0x7f7f8000u, 0xff7fffffu, 0x00000001u, 0x807fffffu, 0x00800000u,
    };
    float *x = host_alloc(n * 4);
    size_t ns = sizeof bits / sizeof bits[0];
    for (size_t i = 0; i < n; i++) {
        if (i < ns) {
            memcpy(&x[i], &bits[i], 4);
            continue;
        }
        float m = urand(seed, i, -1, 1), e = urand(seed + 1, i, -30, 30);
        x[i] = ldexpf(m, (int)e);
    }
    return x;
}

static void check_rounding(void)
{
    static const zl_dtype ts[] = {ZL_F32, ZL_F16, ZL_BF16};
    size_t n = NVEC;
    char label[96];
    float *src = special_f32(n, 101);
    for (int i = 0; i < 3; i++) {
        float *want = fdup(src, n), *d = dev_put(src, n * 4);
        R->round(R, want, ts[i], n);
        X->round(X, d, ts[i], n);
        float *g = dev_get(d, n * 4);
        snprintf(label, sizeof label, "round to %s (exact)", zl_dtype_name(ts[i]));
        expect_bits(label, g, want, ZL_F32, n);
        free(g), free(want);
        dev_free_all();
    }
    /* cast between every pair of f32, f16, bf16; the 16-bit sources are the roundings of
     * src, so they hold 16-bit specials too */
    for (int si = 0; si < 3; si++) {
        void *s = host_alloc(n * 4);
        R->cast(R, s, ts[si], src, ZL_F32, n);
        for (int di = 0; di < 3; di++) {
            size_t db = n * zl_dtype_nbytes(ts[di]);
            void *want = host_alloc(db), *dd = dev_put(want, db);
            void *ds = dev_put(s, n * zl_dtype_nbytes(ts[si]));
            R->cast(R, want, ts[di], s, ts[si], n);
            X->cast(X, dd, ts[di], ds, ts[si], n);
            void *g = dev_get(dd, db);
            snprintf(label, sizeof label, "cast %s -> %s (exact)", zl_dtype_name(ts[si]),
                     zl_dtype_name(ts[di]));
            expect_bits(label, g, want, ts[di], n);
            free(g), free(want);
            dev_free_all();
        }
        free(s);
    }
    /* drain: y = round_yt(y + round_xt(x)), x = 0, for every yt and xt */
    for (int yi = 0; yi < 3; yi++)
        for (int xi = 0; xi < 3; xi++) {
            size_t yb = n * zl_dtype_nbytes(ts[yi]);
            float *y32 = frand(n, 111, -70000, 70000); /* past f16's range: inf */
            void *y = host_alloc(yb);
            R->cast(R, y, ts[yi], y32, ZL_F32, n);
            float *x = special_f32(n, 112);
            float *d_x = dev_put(x, n * 4);
            void *d_y = dev_put(y, yb);
            R->drain(R, y, ts[yi], x, ts[xi], n);
            X->drain(X, d_y, ts[yi], d_x, ts[xi], n);
            void *g = dev_get(d_y, yb);
            snprintf(label, sizeof label, "drain y %s += x %s (exact)", zl_dtype_name(ts[yi]),
                     zl_dtype_name(ts[xi]));
            expect_bits(label, g, y, ts[yi], n);
            free(g);
            g = dev_get(d_x, n * 4);
            snprintf(label, sizeof label, "drain y %s += x %s: x zeroed", zl_dtype_name(ts[yi]),
                     zl_dtype_name(ts[xi]));
            expect_bits(label, g, x, ZL_F32, n); /* ref zeroed x */
            free(g), free(y32), free(y), free(x);
            dev_free_all();
        }
    free(src);
}

/* ---- adamw ---------------------------------------------------------------------------- */
static void check_adamw(void)
{
    static const zl_dtype ts[] = {ZL_F32, ZL_F16, ZL_BF16};
    size_t n = NVEC;
    char label[128];
    for (int mode = 0; mode < 2; mode++)
        for (int gi = 0; gi < 3; gi++)
            for (int pi = -1; pi < 3; pi++) { /* -1: no param_out */
                float *p = frand(n, 121, -1, 1), *m = frand(n, 122, -0.1f, 0.1f);
                float *v = frand(n, 123, 0, 0.01f), *g32 = frand(n, 124, -2, 2);
                size_t gb = n * zl_dtype_nbytes(ts[gi]);
                void *grad = host_alloc(gb);
                R->cast(R, grad, ts[gi], g32, ZL_F32, n);
                float *d_p = dev_put(p, n * 4), *d_m = dev_put(m, n * 4), *d_v = dev_put(v, n * 4);
                void *d_g = dev_put(grad, gb), *d_out = NULL;
                size_t ob = pi < 0 ? 0 : n * zl_dtype_nbytes(ts[pi]);
                void *out = pi < 0 ? NULL : host_alloc(ob);
                if (pi >= 0) d_out = dev_put(out, ob);
                double sq_ref = 0.5, sq = 0.5; /* sumsq ADDS into what is there */
                zl_adamw_args a = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                                   .weight_decay = 0.1f, .bias_correction1 = 1 - 0.9f * 0.9f,
                                   .bias_correction2 = 1 - 0.95f * 0.95f, .grad_scale = 0.25f,
                                   .adamw_mode = mode, .sumsq = &sq_ref};
                R->adamw(R, p, m, v, grad, ts[gi], out, pi < 0 ? ZL_F32 : ts[pi], n, &a);
                a.sumsq = &sq;
                X->adamw(X, d_p, d_m, d_v, d_g, ts[gi], d_out, pi < 0 ? ZL_F32 : ts[pi], n, &a);
                snprintf(label, sizeof label, "adamw %s grad %s param_out %s",
                         mode ? "AdamW" : "Adam", zl_dtype_name(ts[gi]),
                         pi < 0 ? "none" : zl_dtype_name(ts[pi]));
                size_t len = strlen(label);
                float *gp = dev_get(d_p, n * 4), *gm = dev_get(d_m, n * 4);
                float *gv = dev_get(d_v, n * 4);
                snprintf(label + len, sizeof label - len, ": master");
                expect_close(label, gp, p, n, TOL_ADAMW_R, TOL_ADAMW_A);
                snprintf(label + len, sizeof label - len, ": m");
                expect_close(label, gm, m, n, TOL_ADAMW_R, TOL_ADAMW_A);
                snprintf(label + len, sizeof label - len, ": v");
                expect_close(label, gv, v, n, TOL_ADAMW_R, TOL_ADAMW_A);
                double rel = fabs(sq - sq_ref) / sq_ref;
                snprintf(label + len, sizeof label - len, ": sumsq");
                result(label, rel <= TOL_SUMSQ, "got %.17g want %.17g, relative %.2e", sq, sq_ref,
                       rel);
                if (pi >= 0) {
                    /* X's own master, rounded as zl_convert does: bit for bit */
                    void *want = host_alloc(ob), *got = dev_get(d_out, ob);
                    R->cast(R, want, ts[pi], gp, ZL_F32, n);
                    snprintf(label + len, sizeof label - len, ": param_out = its master rounded");
                    expect_bits(label, got, want, ts[pi], n);
                    free(want), free(got);
                }
                free(gp), free(gm), free(gv);
                free(p), free(m), free(v), free(g32), free(grad), free(out);
                dev_free_all();
            }
}

int main(void)
{
    const char *name = getenv("ZL_TEST_BACKEND");
    if (!name || !*name) name = "cuda";
    bool require = getenv("ZL_TEST_REQUIRE") && !strcmp(getenv("ZL_TEST_REQUIRE"), "1");
    verbose = getenv("ZL_TEST_VERBOSE") && !strcmp(getenv("ZL_TEST_VERBOSE"), "1");
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (!zl_ops_find(name)) {
        printf("backend '%s' is not built into this zerolab (zl_ops_find: NULL): skipped\n", name);
        return require ? 99 : 77;
    }
    zl_device dev;
    zl_status st = zl_device_init(&dev, ZL_DEVICE_ACCEL, name, "check_ops", 0);
    if (st != ZL_OK) {
        printf("backend '%s' cannot start a device: %s: skipped\n", name, zl_last_error());
        return require ? 99 : 77;
    }
    X = zl_device_backend(&dev);
    R = zl_ops_find("ref");
    if (X->meta) die("backend '%s' is meta: it computes nothing to compare", name);
    printf("check_ops: backend %s against ref; B=%d T=%d C=%d NH=%d V=%d, vectors of %zu\n",
           X->name, B, T, C, NH, V, NVEC);

    check_gemm();
    check_bias();
    check_embedding();
    check_layernorm();
    check_attention();
    check_pointwise();
    check_crossentropy_shape(N, V);
    check_crossentropy_shape(7, 50257); /* GPT-2's vocabulary: a row longer than a block */
    check_crossentropy_shard();
    check_vector();
    check_rounding();
    check_adamw();

    printf("check_ops: backend %s: %d comparisons, %d failed\n", X->name, n_checks, n_failed);
    if (n_checks == 0) return 1; /* a test that compared nothing is a failure */
    return n_failed ? 1 : 0;
}
