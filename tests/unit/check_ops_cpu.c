/* The cpu backend against the ref backend (naive loops, the specification), op by op:
 * random odd shapes, every transpose of gemm with padded leading dimensions, forward and
 * backward, gradients that already hold values (backward accumulates), ignored targets,
 * both optimizer modes, casts bit for bit against base/dtype.c, and the same results with
 * one thread and with two.
 *
 * Tolerances, and why cpu and ref may differ at all, are below the includes. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu.h" /* zl__cpu_adamw_force_isa */
#include "backends/ops.h"
#include "check_util.h"
#include "base/dtype.h"
#include "base/rng.h"

/* Same arithmetic, sums in another order (vector lanes, blocked sums, threads): a few f32
 * ulps of the largest partial sum. */
#define TOL_REORDER ZL_TOL_F32_REORDER
/* sgemm against a naive loop over long reductions, and attention built from sgemms, or a
 * polynomial exp against libm's expf (about 2 ulp): a few ulps of each of up to ~100
 * terms. */
#define TOL_KERNEL ZL_TOL_F32_KERNEL
/* Absolute floor for elements that are small differences of O(1) terms (layernorm's
 * x - mean, gradients that cancel, exp of very negative numbers, GELU near its tails,
 * where ref's 1 + tanh(u) is itself rounded at 6e-8): relative error means nothing there. */
#define TOL_ATOL 1e-6
/* The optimizer step is the same expressions in the same order: equal but for a possibly
 * different contraction of multiply-adds in other builds. */
#define TOL_ADAMW 1e-6

/* (Element loops fail with ck_abort_msg instead of calling ck_assert per element: every
 * passing ck_assert records its location, which costs a write in fork mode.) */

static const zl_ops *cpu, *ref;

/* Two whole chunks of the cpu kernels' blocking (ZL_CPU_CHUNK, 8192) and a ragged end
 * that is not a multiple of 8: every loop of a drain. */
#define ZL_CPU_TEST_N (2 * 8192 + 13)

static void setup(void)
{
    cpu = zl_ops_find("cpu");
    ref = zl_ops_find("ref");
    ck_assert_ptr_nonnull(cpu);
    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_eq(cpu, &zl_ops_cpu);
}

/* ---- helpers ---------------------------------------------------------------------- */

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static float *frand(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = falloc(n);
    zl_test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static float *fdup(const float *x, size_t n)
{
    float *y = falloc(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}

static void expect_close(const char *label, const float *got, const float *want, size_t n,
                         double rtol, double atol)
{
    ck_assert_msg(zl_test_close(label, got, want, n, rtol, atol), "%s: see the report above",
                  label);
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- table and memory ------------------------------------------------------------- */

START_TEST(test_ops_cpu_table_is_complete)
{
    ck_assert_str_eq(cpu->name, "cpu");
    /* every slot of the table, in declaration order, holds a kernel */
    const void *slots[] = {
        (void *)cpu->alloc, (void *)cpu->free, (void *)cpu->zero, (void *)cpu->copy,
        (void *)cpu->gemm, (void *)cpu->bias_forward, (void *)cpu->bias_backward,
        (void *)cpu->embedding_forward, (void *)cpu->embedding_backward,
        (void *)cpu->layernorm_forward, (void *)cpu->layernorm_backward,
        (void *)cpu->attention_forward, (void *)cpu->attention_backward,
        (void *)cpu->gelu_forward, (void *)cpu->gelu_backward, (void *)cpu->residual_forward,
        (void *)cpu->crossentropy_forward, (void *)cpu->crossentropy_backward,
        (void *)cpu->adamw, (void *)cpu->sumsq, (void *)cpu->nonfinite, (void *)cpu->scale,
        (void *)cpu->axpy, (void *)cpu->cast, (void *)cpu->gemm_lp, (void *)cpu->round,
        (void *)cpu->drain,
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        ck_assert_msg(slots[i] != NULL, "slot %zu of zl_ops_cpu is NULL", i);
}
END_TEST

START_TEST(test_ops_cpu_memory_aligned_zeroed_copied)
{
    /* small (cache-line path), large (huge-page path, parallel zeroing), and empty */
    size_t sizes[] = {1, 100, 4096 + 12, ((size_t)6 << 20) + 20, 0};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t nbytes = sizes[s];
        unsigned char *p = cpu->alloc(cpu, nbytes);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        for (size_t i = 0; i < nbytes; i++)
            if (p[i]) ck_abort_msg("alloc(%zu): byte %zu is %d, not 0", nbytes, i, p[i]);
        /* copy then zero, both on the parallel path for the large buffer */
        unsigned char *q = cpu->alloc(cpu, nbytes);
        ck_assert_ptr_nonnull(q);
        for (size_t i = 0; i < nbytes; i++) p[i] = (unsigned char)(i * 7 + 1);
        cpu->copy(cpu, q, p, nbytes);
        ck_assert(memcmp(p, q, nbytes) == 0);
        cpu->zero(cpu, p, nbytes);
        for (size_t i = 0; i < nbytes; i++)
            if (p[i]) ck_abort_msg("zero(%zu): byte %zu is %d", nbytes, i, p[i]);
        cpu->free(cpu, p);
        cpu->free(cpu, q);
    }
    /* overlapping copy within one buffer behaves as memmove */
    size_t n = (size_t)5 << 20;
    unsigned char *buf = cpu->alloc(cpu, n + 1000);
    unsigned char *want = malloc(n + 1000);
    for (size_t i = 0; i < n + 1000; i++) buf[i] = want[i] = (unsigned char)(i % 251);
    memmove(want + 1000, want, n);
    cpu->copy(cpu, buf + 1000, buf, n);
    ck_assert(memcmp(buf, want, n + 1000) == 0);
    free(want);
    cpu->free(cpu, buf);
}
END_TEST

/* ---- dense algebra ---------------------------------------------------------------- */

/* C = alpha op(A) op(B) + beta C on padded leading dimensions, every transpose; the
 * padding columns of C must come back untouched. */
static void check_gemm(int m, int n, int k, float alpha, float beta, double rtol,
                       uint64_t seed)
{
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
            size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb;
            size_t nc = (size_t)m * ldc;
            float *a = frand(na, seed + 1, -1, 1), *b = frand(nb, seed + 2, -1, 1);
            float *c_cpu = frand(nc, seed + 3, -1, 1), *c_ref = fdup(c_cpu, nc);
            float *c0 = fdup(c_cpu, nc);
            cpu->gemm(cpu, c_cpu, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
            ref->gemm(ref, c_ref, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
            char label[96];
            snprintf(label, sizeof label, "gemm %dx%dx%d ta=%d tb=%d", m, n, k, ta, tb);
            /* atol: entries are sums of k products of [-1,1] values that can cancel */
            expect_close(label, c_cpu, c_ref, nc, rtol, rtol * k);
            for (int i = 0; i < m; i++)
                for (int j = n; j < ldc; j++)
                    if (f32_bits(c_cpu[(size_t)i * ldc + j]) != f32_bits(c0[(size_t)i * ldc + j]))
                        ck_abort_msg("%s wrote padding (%d,%d)", label, i, j);
            free(a);
            free(b);
            free(c_cpu);
            free(c_ref);
            free(c0);
        }
    }
}

START_TEST(test_ops_cpu_gemm_transposes_strides_alpha_beta)
{
    check_gemm(7, 9, 5, 0.7f, -1.3f, TOL_REORDER, 10);
    check_gemm(1, 13, 3, 1.0f, 1.0f, TOL_REORDER, 20); /* one row: the accumulate case */
    check_gemm(11, 1, 17, -2.0f, 0.5f, TOL_REORDER, 30);
    check_gemm(1, 1, 1, 0.5f, 2.0f, TOL_REORDER, 35);
}
END_TEST

START_TEST(test_ops_cpu_gemm_large_ish)
{
    /* big enough for sgemm's blocked kernels and their edge handling (67, 129, 33 are
     * no multiple of any register tile) */
    check_gemm(67, 129, 33, 1.0f, 1.0f, TOL_KERNEL, 40);
    check_gemm(67, 129, 33, 0.25f, 0.0f, TOL_KERNEL, 50);
}
END_TEST

START_TEST(test_ops_cpu_gemm_beta_zero_ignores_nan)
{
    int m = 5, n = 6, k = 4;
    float *a = frand(m * k, 60, -1, 1), *b = frand(k * n, 61, -1, 1);
    float *c_cpu = falloc(m * n), *c_ref = falloc(m * n);
    for (int i = 0; i < m * n; i++) c_cpu[i] = NAN;
    cpu->gemm(cpu, c_cpu, a, b, m, n, k, k, n, n, false, false, 1.0f, 0.0f);
    ref->gemm(ref, c_ref, a, b, m, n, k, k, n, n, false, false, 1.0f, 0.0f);
    expect_close("gemm beta=0 over NaN", c_cpu, c_ref, m * n, TOL_REORDER, TOL_ATOL);
    /* k = 0: C = beta C (an empty sum), and with beta = 0 the NaN is still overwritten */
    for (int i = 0; i < m * n; i++) c_cpu[i] = NAN;
    cpu->gemm(cpu, c_cpu, a, b, m, n, 0, 1, n, n, false, false, 1.0f, 0.0f);
    for (int i = 0; i < m * n; i++)
        if (c_cpu[i] != 0.0f) ck_abort_msg("gemm k=0: C[%d] = %g, not 0", i, c_cpu[i]);
    free(a);
    free(b);
    free(c_cpu);
    free(c_ref);
}
END_TEST

START_TEST(test_ops_cpu_bias_forward_backward)
{
    int N = 13, OC = 70; /* OC: one full 64-column block and a partial one */
    float *out_cpu = frand(N * OC, 70, -1, 1), *out_ref = fdup(out_cpu, N * OC);
    float *bias = frand(OC, 71, -1, 1);
    cpu->bias_forward(cpu, out_cpu, bias, N, OC);
    ref->bias_forward(ref, out_ref, bias, N, OC);
    expect_close("bias_forward", out_cpu, out_ref, N * OC, 0, 0); /* one add: exact */
    float *dbias_cpu = frand(OC, 72, -1, 1), *dbias_ref = fdup(dbias_cpu, OC);
    float *dout = frand(N * OC, 73, -1, 1);
    cpu->bias_backward(cpu, dbias_cpu, dout, N, OC);
    ref->bias_backward(ref, dbias_ref, dout, N, OC);
    expect_close("bias_backward (accumulated)", dbias_cpu, dbias_ref, OC, TOL_REORDER, TOL_ATOL);
    free(out_cpu);
    free(out_ref);
    free(bias);
    free(dbias_cpu);
    free(dbias_ref);
    free(dout);
}
END_TEST

/* ---- GPT layers ------------------------------------------------------------------- */

START_TEST(test_ops_cpu_embedding_forward_backward)
{
    int B = 3, T = 5, C = 37, V = 11, maxT = 8;
    int32_t tokens[15];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 7) % 4; /* tokens repeat: a real scatter */
    tokens[14] = V - 1;
    float *wte = frand(V * C, 80, -1, 1), *wpe = frand(maxT * C, 81, -1, 1);
    float *out_cpu = falloc(B * T * C), *out_ref = falloc(B * T * C);
    cpu->embedding_forward(cpu, out_cpu, tokens, wte, wpe, B, T, C);
    ref->embedding_forward(ref, out_ref, tokens, wte, wpe, B, T, C);
    expect_close("embedding_forward", out_cpu, out_ref, B * T * C, 0, 0); /* one add: exact */

    float *dout = frand(B * T * C, 82, -1, 1);
    float *dwte_cpu = frand(V * C, 83, -1, 1), *dwte_ref = fdup(dwte_cpu, V * C);
    float *dwpe_cpu = frand(maxT * C, 84, -1, 1), *dwpe_ref = fdup(dwpe_cpu, maxT * C);
    cpu->embedding_backward(cpu, dwte_cpu, dwpe_cpu, dout, tokens, B, T, C);
    ref->embedding_backward(ref, dwte_ref, dwpe_ref, dout, tokens, B, T, C);
    /* same order of additions per element: exact */
    expect_close("embedding dwte", dwte_cpu, dwte_ref, V * C, 0, 0);
    expect_close("embedding dwpe", dwpe_cpu, dwpe_ref, maxT * C, 0, 0);
    free(wte);
    free(wpe);
    free(out_cpu);
    free(out_ref);
    free(dout);
    free(dwte_cpu);
    free(dwte_ref);
    free(dwpe_cpu);
    free(dwpe_ref);
}
END_TEST

static void check_layernorm(int N, int C, uint64_t seed)
{
    size_t n = (size_t)N * C;
    float *inp = frand(n, seed, -2, 3), *w = frand(C, seed + 1, 0.5f, 1.5f);
    float *b = frand(C, seed + 2, -0.5f, 0.5f);
    float *out_cpu = falloc(n), *out_ref = falloc(n);
    float *mean_cpu = falloc(N), *mean_ref = falloc(N), *rstd_cpu = falloc(N),
          *rstd_ref = falloc(N);
    cpu->layernorm_forward(cpu, out_cpu, mean_cpu, rstd_cpu, inp, w, b, N, C);
    ref->layernorm_forward(ref, out_ref, mean_ref, rstd_ref, inp, w, b, N, C);
    expect_close("layernorm out", out_cpu, out_ref, n, TOL_REORDER, TOL_ATOL);
    expect_close("layernorm mean", mean_cpu, mean_ref, N, TOL_REORDER, TOL_ATOL);
    expect_close("layernorm rstd", rstd_cpu, rstd_ref, N, TOL_REORDER, TOL_ATOL);

    /* backward from ref's saved statistics, into gradients that already hold values */
    float *dout = frand(n, seed + 3, -1, 1);
    float *dinp_cpu = frand(n, seed + 4, -1, 1), *dinp_ref = fdup(dinp_cpu, n);
    float *dw_cpu = frand(C, seed + 5, -1, 1), *dw_ref = fdup(dw_cpu, C);
    float *db_cpu = frand(C, seed + 6, -1, 1), *db_ref = fdup(db_cpu, C);
    cpu->layernorm_backward(cpu, dinp_cpu, dw_cpu, db_cpu, dout, inp, w, mean_ref, rstd_ref, N, C);
    ref->layernorm_backward(ref, dinp_ref, dw_ref, db_ref, dout, inp, w, mean_ref, rstd_ref, N, C);
    expect_close("layernorm dinp", dinp_cpu, dinp_ref, n, TOL_REORDER, TOL_ATOL);
    expect_close("layernorm dweight", dw_cpu, dw_ref, C, TOL_REORDER, TOL_ATOL * N);
    expect_close("layernorm dbias", db_cpu, db_ref, C, TOL_REORDER, TOL_ATOL * N);
    free(inp);
    free(w);
    free(b);
    free(out_cpu);
    free(out_ref);
    free(mean_cpu);
    free(mean_ref);
    free(rstd_cpu);
    free(rstd_ref);
    free(dout);
    free(dinp_cpu);
    free(dinp_ref);
    free(dw_cpu);
    free(dw_ref);
    free(db_cpu);
    free(db_ref);
}

START_TEST(test_ops_cpu_layernorm_forward_backward)
{
    check_layernorm(5, 37, 90);
    check_layernorm(48, 771, 100); /* parallel rows, and column slices of two threads */
}
END_TEST

static void check_attention(int B, int T, int C, int NH, uint64_t seed)
{
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    size_t natt = (size_t)B * NH * T * T;
    float *qkv = frand(nqkv, seed, -1.5f, 1.5f);
    float *out_cpu = falloc(nout), *out_ref = falloc(nout);
    float *att_cpu = falloc(natt), *att_ref = falloc(natt);
    for (size_t i = 0; i < natt; i++) att_cpu[i] = NAN; /* every entry must be written */
    cpu->attention_forward(cpu, out_cpu, att_cpu, qkv, B, T, C, NH);
    ref->attention_forward(ref, out_ref, att_ref, qkv, B, T, C, NH);
    char label[96];
    snprintf(label, sizeof label, "attention att B=%d T=%d C=%d NH=%d", B, T, C, NH);
    expect_close(label, att_cpu, att_ref, natt, TOL_KERNEL, TOL_ATOL);
    for (size_t bh = 0; bh < (size_t)B * NH; bh++)
        for (int t = 0; t < T; t++)
            for (int t2 = t + 1; t2 < T; t2++)
                if (att_cpu[(bh * T + t) * T + t2] != 0.0f)
                    ck_abort_msg("att above the diagonal is not 0 at (%zu,%d,%d)", bh, t, t2);
    snprintf(label, sizeof label, "attention out B=%d T=%d C=%d NH=%d", B, T, C, NH);
    expect_close(label, out_cpu, out_ref, nout, TOL_KERNEL, TOL_ATOL);

    /* backward from ref's att, into a dqkv that already holds values */
    float *dout = frand(nout, seed + 1, -1, 1);
    float *dqkv_cpu = frand(nqkv, seed + 2, -1, 1), *dqkv_ref = fdup(dqkv_cpu, nqkv);
    float *scratch = falloc(2 * natt);
    for (size_t i = 0; i < 2 * natt; i++) scratch[i] = NAN; /* scratch needs no zeroing */
    cpu->attention_backward(cpu, dqkv_cpu, scratch, dout, qkv, att_ref, B, T, C, NH);
    ref->attention_backward(ref, dqkv_ref, scratch, dout, qkv, att_ref, B, T, C, NH);
    snprintf(label, sizeof label, "attention dqkv B=%d T=%d C=%d NH=%d", B, T, C, NH);
    expect_close(label, dqkv_cpu, dqkv_ref, nqkv, TOL_KERNEL, TOL_ATOL);
    free(qkv);
    free(out_cpu);
    free(out_ref);
    free(att_cpu);
    free(att_ref);
    free(dout);
    free(dqkv_cpu);
    free(dqkv_ref);
    free(scratch);
}

START_TEST(test_ops_cpu_attention_forward_backward)
{
    check_attention(2, 7, 12, 3, 110);  /* tiny, HS = 4 */
    check_attention(1, 1, 8, 2, 120);   /* one position: att = 1 */
    check_attention(1, 70, 16, 2, 130); /* causal row blocks of 32, and a partial one */
    check_attention(3, 33, 40, 5, 140); /* B*NH = 15 pairs over the threads */
}
END_TEST

START_TEST(test_ops_cpu_gelu_forward_backward)
{
    size_t n = 40000 + 3; /* parallel chunks and a vector tail */
    float *inp = frand(n, 150, -8, 8);
    inp[0] = 0.0f;
    inp[1] = -30.0f; /* deep in the tails */
    inp[2] = 30.0f;
    float *out_cpu = falloc(n), *out_ref = falloc(n);
    cpu->gelu_forward(cpu, out_cpu, inp, n);
    ref->gelu_forward(ref, out_ref, inp, n);
    /* polynomial exp and a logistic form against tanhf */
    expect_close("gelu_forward", out_cpu, out_ref, n, TOL_KERNEL, TOL_ATOL);
    float *dout = frand(n, 151, -1, 1);
    float *dinp_cpu = frand(n, 152, -1, 1), *dinp_ref = fdup(dinp_cpu, n);
    cpu->gelu_backward(cpu, dinp_cpu, inp, dout, n);
    ref->gelu_backward(ref, dinp_ref, inp, dout, n);
    expect_close("gelu_backward (accumulated)", dinp_cpu, dinp_ref, n, TOL_KERNEL, TOL_ATOL);
    free(inp);
    free(out_cpu);
    free(out_ref);
    free(dout);
    free(dinp_cpu);
    free(dinp_ref);
}
END_TEST

START_TEST(test_ops_cpu_residual_and_aliasing)
{
    size_t n = 50000 + 7;
    float *a = frand(n, 160, -1, 1), *b = frand(n, 161, -1, 1);
    float *out_cpu = falloc(n), *out_ref = falloc(n);
    cpu->residual_forward(cpu, out_cpu, a, b, n);
    ref->residual_forward(ref, out_ref, a, b, n);
    expect_close("residual", out_cpu, out_ref, n, 0, 0);
    /* out aliasing a (the residual stream updated in place), then b */
    float *a2 = fdup(a, n);
    cpu->residual_forward(cpu, a2, a2, b, n);
    expect_close("residual out == a", a2, out_ref, n, 0, 0);
    float *b2 = fdup(b, n);
    cpu->residual_forward(cpu, b2, a, b2, n);
    expect_close("residual out == b", b2, out_ref, n, 0, 0);
    free(a);
    free(b);
    free(a2);
    free(b2);
    free(out_cpu);
    free(out_ref);
}
END_TEST

START_TEST(test_ops_cpu_crossentropy_forward_backward)
{
    int N = 7, V = 1001;
    size_t n = (size_t)N * V;
    float *logits = frand(n, 170, -4, 4);
    logits[3 * V + 5] = 60.0f; /* one row dominated by one logit: others' exp ~ 1e-28 */
    logits[6 * V + 999] = -1e4f; /* a target whose probability underflows: loss ~ 1e4 */
    int32_t targets[7] = {3, -1, 1000, 5, 0, -7, 999}; /* two ignored rows */
    float *losses_cpu = falloc(N), *losses_ref = falloc(N);
    float *probs_cpu = falloc(n), *probs_ref = falloc(n);
    cpu->crossentropy_forward(cpu, losses_cpu, probs_cpu, logits, targets, N, V);
    ref->crossentropy_forward(ref, losses_ref, probs_ref, logits, targets, N, V);
    expect_close("crossentropy losses", losses_cpu, losses_ref, N, TOL_KERNEL, TOL_ATOL);
    expect_close("crossentropy probs", probs_cpu, probs_ref, n, TOL_KERNEL, TOL_ATOL);
    ck_assert(losses_cpu[1] == 0.0f && losses_cpu[5] == 0.0f); /* ignored: loss 0 */

    float *dlogits_cpu = frand(n, 171, -1, 1), *dlogits_ref = fdup(dlogits_cpu, n);
    float *dlogits0 = fdup(dlogits_cpu, n);
    cpu->crossentropy_backward(cpu, dlogits_cpu, probs_ref, targets, 1.0f / 5, N, V);
    ref->crossentropy_backward(ref, dlogits_ref, probs_ref, targets, 1.0f / 5, N, V);
    /* one multiply-add per element, the target's included: exact */
    expect_close("crossentropy dlogits", dlogits_cpu, dlogits_ref, n, 0, 0);
    /* ignored rows keep exactly what they held */
    ck_assert(memcmp(dlogits_cpu + 1 * V, dlogits0 + 1 * V, V * sizeof(float)) == 0);
    ck_assert(memcmp(dlogits_cpu + 5 * V, dlogits0 + 5 * V, V * sizeof(float)) == 0);
    free(logits);
    free(losses_cpu);
    free(losses_ref);
    free(probs_cpu);
    free(probs_ref);
    free(dlogits_cpu);
    free(dlogits_ref);
    free(dlogits0);
}
END_TEST

/* ---- optimizer and vector ops ----------------------------------------------------- */

static void check_adamw(bool adamw_mode, size_t n, uint64_t seed)
{
    zl_adamw_args args = {
        .lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,
        .bias_correction1 = 1.0f - 0.9f * 0.9f * 0.9f, /* step 3 */
        .bias_correction2 = 1.0f - 0.95f * 0.95f * 0.95f,
        .grad_scale = 0.5f, .adamw_mode = adamw_mode,
    };
    float *p_cpu = frand(n, seed, -1, 1), *p_ref = fdup(p_cpu, n);
    float *m_cpu = frand(n, seed + 1, -0.1f, 0.1f), *m_ref = fdup(m_cpu, n);
    float *v_cpu = frand(n, seed + 2, 0, 0.01f), *v_ref = fdup(v_cpu, n);
    float *g = frand(n, seed + 3, -1, 1);
    v_cpu[0] = v_ref[0] = 0.0f; /* sqrt(0) + eps */
    g[0] = 0.0f;
    m_cpu[0] = m_ref[0] = 0.0f;
    for (int step = 0; step < 2; step++) {
        cpu->adamw(cpu, p_cpu, m_cpu, v_cpu, g, ZL_F32, NULL, ZL_F32, n, &args);
        ref->adamw(ref, p_ref, m_ref, v_ref, g, ZL_F32, NULL, ZL_F32, n, &args);
    }
    const char *mode = adamw_mode ? "AdamW" : "Adam";
    char label[64];
    snprintf(label, sizeof label, "%s param (n=%zu)", mode, n);
    expect_close(label, p_cpu, p_ref, n, TOL_ADAMW, 0);
    snprintf(label, sizeof label, "%s m (n=%zu)", mode, n);
    expect_close(label, m_cpu, m_ref, n, TOL_ADAMW, 0);
    snprintf(label, sizeof label, "%s v (n=%zu)", mode, n);
    expect_close(label, v_cpu, v_ref, n, TOL_ADAMW, 0);
    free(p_cpu);
    free(p_ref);
    free(m_cpu);
    free(m_ref);
    free(v_cpu);
    free(v_ref);
    free(g);
}

/* ---- the fused Adam step, bit for bit, on every instruction set ------------------- */

/* Special values by position (i % 64), so that the vector bodies and the tails all see
 * them: slots 0-11 special gradients (on finite weights), 12-27 special or tie weights
 * with a zero gradient and zero moments (so that with no weight decay the weight stays
 * put and its rounding is tested exactly on ties), the rest random. Gradient and weight
 * specials never share a slot: two different NaNs meeting in one operation may
 * legitimately come out as either. */
static const uint32_t grad_f32_special[12] = {
    0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc12345u, 0x7f800001u /* sNaN */,
    0x00000001u, 0x807fffffu, 0x00000000u, 0x80000000u, 0x7f7fffffu, 0x3f800000u, 0x33800000u};
static const uint16_t grad_f16_special[12] = {
    0x7c00u, 0xfc00u, 0x7e00u, 0xfe55u, 0x7d01u /* sNaN */, 0x0001u,
    0x83ffu, 0x0000u, 0x8000u, 0x7bffu, 0x3c00u, 0x0400u};
static const uint16_t grad_bf16_special[12] = {
    0x7f80u, 0xff80u, 0x7fc0u, 0xffd5u, 0x7f81u /* sNaN */, 0x0001u,
    0x807fu, 0x0000u, 0x8000u, 0x7f7fu, 0x3f80u, 0x0080u};
static const uint32_t master_special[16] = {
    0x3f808000u, 0x3f818000u, 0xbf808000u, /* bf16 ties: to even, down and up */
    0x3f801000u, 0x3f803000u, 0xc0001000u, /* f16 ties */
    0x33000000u, 0x33c00000u,             /* 2^-25, 3 * 2^-25: f16 subnormal ties */
    0x477ff000u,                          /* 65520: f16 rounds it to inf */
    0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7fa00000u /* sNaN */,
    0x00000001u, 0x80000000u, 0x7f7fffffu};

static void fill_special(float *master, float *m, float *v, void *grad, zl_dtype gt, size_t n,
                         uint64_t seed)
{
    float *g = frand(n, seed, -2, 2);
    zl_test_fill_uniform(master, n, seed + 1, -1, 1);
    zl_test_fill_uniform(m, n, seed + 2, -0.1f, 0.1f);
    zl_test_fill_uniform(v, n, seed + 3, 0, 0.01f);
    for (size_t i = 0; i < n; i++) {
        size_t s = i % 64;
        if (s >= 12 && s < 28) {
            g[i] = m[i] = v[i] = 0.0f;
            memcpy(&master[i], &master_special[s - 12], 4);
        }
    }
    zl_convert(grad, gt, g, ZL_F32, n);
    for (size_t i = 0; i < n; i++) {
        size_t s = i % 64;
        if (s >= 12) continue;
        if (gt == ZL_F32) memcpy((float *)grad + i, &grad_f32_special[s], 4);
        else ((uint16_t *)grad)[i] = gt == ZL_F16 ? grad_f16_special[s] : grad_bf16_special[s];
    }
    free(g);
}

/* got and want hold the same bits; on failure name the first element that differs */
static void expect_bits(const char *label, const void *got, const void *want, size_t n,
                        size_t esz)
{
    if (!memcmp(got, want, n * esz)) return;
    for (size_t i = 0; i < n; i++)
        if (memcmp((const char *)got + i * esz, (const char *)want + i * esz, esz)) {
            uint32_t a = 0, b = 0;
            memcpy(&a, (const char *)got + i * esz, esz);
            memcpy(&b, (const char *)want + i * esz, esz);
            ck_abort_msg("%s: element %zu (slot %zu) is 0x%x, ref 0x%x", label, i, i % 64, a, b);
        }
}

/* cpu against ref, two steps (the second from the state the first left), for every
 * gradient type, copy-out type (none, f32, f16, bf16), mode, decay, bias correction and
 * gradient scale (every combo_stride-th combination of these four), on the instruction set
 * `isa`. */
static void check_adamw_fused_isa(int isa, size_t n, int combo_stride)
{
    static const zl_dtype gts[] = {ZL_F32, ZL_F16, ZL_BF16};
    static const int pts[] = {-1, ZL_F32, ZL_F16, ZL_BF16};
    float *mc = falloc(n), *mr = falloc(n), *m1c = falloc(n), *m1r = falloc(n);
    float *vc = falloc(n), *vr = falloc(n);
    void *grad = falloc(n), *oc = falloc(n), *orf = falloc(n);
    for (int gi = 0; gi < 3; gi++)
        for (int pi = 0; pi < 4; pi++)
            for (int combo = 0; combo < 16; combo += combo_stride) {
                zl_dtype gt = gts[gi];
                bool adamw = combo & 1, decay = combo & 2, bias = combo & 4, scaled = combo & 8;
                zl_adamw_args args = {
                    .lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                    .weight_decay = decay ? 0.1f : 0.0f,
                    .bias_correction1 = bias ? 1.0f - 0.9f * 0.9f : 1.0f,
                    .bias_correction2 = bias ? 1.0f - 0.95f * 0.95f : 1.0f,
                    .grad_scale = scaled ? 0.37f : 1.0f, .adamw_mode = adamw,
                };
                fill_special(mc, m1c, vc, grad, gt, n, 500 + (uint64_t)combo);
                memcpy(mr, mc, n * 4), memcpy(m1r, m1c, n * 4), memcpy(vr, vc, n * 4);
                void *outc = pts[pi] < 0 ? NULL : oc, *outr = pts[pi] < 0 ? NULL : orf;
                zl_dtype pt = pts[pi] < 0 ? ZL_F32 : (zl_dtype)pts[pi];
                memset(oc, 0xa5, n * 4), memset(orf, 0xa5, n * 4);
                for (int step = 0; step < 2; step++) {
                    cpu->adamw(cpu, mc, m1c, vc, grad, gt, outc, pt, n, &args);
                    ref->adamw(ref, mr, m1r, vr, grad, gt, outr, pt, n, &args);
                }
                char label[160];
                snprintf(label, sizeof label, "%s, grad %s, out %s, %s%s%s%s: ",
                         zl__cpu_adamw_isa_name(isa), zl_dtype_name(gt),
                         pts[pi] < 0 ? "none" : zl_dtype_name(pt), adamw ? "AdamW" : "Adam",
                         decay ? ", decay" : "", bias ? ", bias correction" : "",
                         scaled ? ", grad_scale 0.37" : "");
                size_t len = strlen(label);
                snprintf(label + len, sizeof label - len, "master");
                expect_bits(label, mc, mr, n, 4);
                snprintf(label + len, sizeof label - len, "m");
                expect_bits(label, m1c, m1r, n, 4);
                snprintf(label + len, sizeof label - len, "v");
                expect_bits(label, vc, vr, n, 4);
                snprintf(label + len, sizeof label - len, "copy-out");
                expect_bits(label, oc, orf, n * zl_dtype_nbytes(pt), 1);
            }
    free(mc), free(mr), free(m1c), free(m1r), free(vc), free(vr);
    free(grad), free(oc), free(orf);
}

START_TEST(test_ops_cpu_adamw_fused_bitwise_every_isa)
{
    int tested = 0;
    for (int isa = ZL_CPU_ADAMW_SCALAR; isa <= ZL_CPU_ADAMW_AVX512; isa++) {
        if (!zl__cpu_adamw_force_isa(isa)) {
            printf("check_ops_cpu: adamw %s path skipped: this CPU lacks it\n",
                   zl__cpu_adamw_isa_name(isa));
            continue;
        }
        ck_assert_int_eq(zl__cpu_adamw_isa(), isa);
        check_adamw_fused_isa(isa, ZL_CPU_TEST_N, 1);
        tested++;
    }
    zl__cpu_adamw_force_isa(-1);
    ck_assert_int_ge(tested, 1);
}
END_TEST

/* Parallel chunks, each with its own vector body and tail, on the default path. */
START_TEST(test_ops_cpu_adamw_fused_bitwise_threads)
{
    zl__cpu_adamw_force_isa(-1);
    int before = omp_get_max_threads();
    omp_set_num_threads(2);
    check_adamw_fused_isa(zl__cpu_adamw_isa(), 70000 + 5, 5); /* combos 0, 5, 10, 15 */
    omp_set_num_threads(before);
}
END_TEST

START_TEST(test_ops_cpu_adamw_both_modes)
{
    check_adamw(true, 1003, 180);       /* vector body and a scalar tail */
    check_adamw(false, 1003, 190);
    check_adamw(true, 70000 + 5, 200);  /* parallel chunks */
    check_adamw(false, 70000 + 5, 210);
}
END_TEST

START_TEST(test_ops_cpu_sumsq_nonfinite_scale_axpy)
{
    size_t n = 100000 + 11;
    float *x = frand(n, 220, -2, 2);
    double s_cpu = cpu->sumsq(cpu, x, n), s_ref = ref->sumsq(ref, x, n);
    /* both sum in double; only the order differs */
    ck_assert_msg(fabs(s_cpu - s_ref) <= 1e-12 * s_ref, "sumsq %.17g vs ref %.17g", s_cpu,
                  s_ref);
    ck_assert(cpu->sumsq(cpu, x, 0) == 0.0);
    ck_assert(cpu->sumsq(cpu, x, 3) == ref->sumsq(ref, x, 3));

    ck_assert(!cpu->nonfinite(cpu, x, n));
    size_t where[] = {0, 8191, 8192, n / 2, n - 1};
    float bad[] = {INFINITY, -INFINITY, NAN, bits_f32(0x7f800001u) /* signalling NaN */};
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            float keep = x[where[w]];
            x[where[w]] = bad[k];
            ck_assert_msg(cpu->nonfinite(cpu, x, n), "missed bad value %zu at %zu", k, where[w]);
            x[where[w]] = keep;
        }
    }
    x[n - 1] = INFINITY;
    ck_assert(!cpu->nonfinite(cpu, x, n - 1)); /* only the first n - 1 are looked at */
    x[n - 1] = 3.4e38f;                   /* huge but finite */
    ck_assert(!cpu->nonfinite(cpu, x, n));

    float *y_cpu = frand(n, 221, -1, 1), *y_ref = fdup(y_cpu, n);
    cpu->scale(cpu, y_cpu, 0.37f, n);
    ref->scale(ref, y_ref, 0.37f, n);
    expect_close("scale", y_cpu, y_ref, n, 0, 0);
    cpu->axpy(cpu, y_cpu, -1.7f, x, n);
    ref->axpy(ref, y_ref, -1.7f, x, n);
    /* the same expression, but a build may contract y + a x into one multiply-add
     * (-ffp-contract=fast, FMA targets) in one backend and not the other: at most one
     * rounding of a x (2^-24 |a x| <= 2^-24 * 1.7 * 2) and one ulp of the sum apart */
    expect_close("axpy", y_cpu, y_ref, n, 0x1p-23, 0x1p-24 * 1.7 * 2);
    free(x);
    free(y_cpu);
    free(y_ref);
}
END_TEST

/* cpu->cast against zl_convert, bit for bit (NaN payloads included), over every 16-bit
 * pattern and a large sample of f32 patterns with the rounding boundaries added. */
/* round and drain against ref, bit for bit, on f32 patterns that cross every rounding
 * decision of both 16-bit types (and their overflow, subnormal and NaN cases). */
START_TEST(test_ops_cpu_round_and_drain_match_ref)
{
    size_t n = (1 << 17) + 13; /* several chunks and a ragged end */
    float *x = malloc(n * 4), *a = malloc(n * 4), *b = malloc(n * 4), *xa = malloc(n * 4),
          *xb = malloc(n * 4);
    uint16_t *ya = malloc(n * 2), *yb = malloc(n * 2);
    for (size_t k = 0; k < n; k++) {
        uint32_t bits = (uint32_t)zl_rng_bits(231, 2, k);
        memcpy(&x[k], &bits, 4);
    }
    zl_dtype types[] = {ZL_F16, ZL_BF16, ZL_F32};
    for (int s = 0; s < 3; s++) {
        memcpy(a, x, n * 4);
        memcpy(b, x, n * 4);
        cpu->round(cpu, a, types[s], n);
        zl_ops_ref.round(&zl_ops_ref, b, types[s], n);
        ck_assert_msg(memcmp(a, b, n * 4) == 0, "round to %s differs from ref", zl_dtype_name(types[s]));
        for (int d = 0; d < 3; d++) { /* store of type d, accumulator rounded to s */
            size_t ysz = zl_dtype_nbytes(types[d]);
            void *sa = types[d] == ZL_F32 ? (void *)a : (void *)ya, *sb = types[d] == ZL_F32 ? (void *)b : (void *)yb;
            /* a store holding values of its type: x shifted, cast */
            for (size_t i = 0; i < n; i++) xa[i] = x[(i + 7) % n];
            zl_convert(sa, types[d], xa, ZL_F32, n);
            memcpy(sb, sa, n * ysz);
            memcpy(xa, x, n * 4);
            memcpy(xb, x, n * 4);
            cpu->drain(cpu, sa, types[d], xa, types[s], n);
            zl_ops_ref.drain(&zl_ops_ref, sb, types[d], xb, types[s], n);
            ck_assert_msg(memcmp(sa, sb, n * ysz) == 0, "drain %s into %s differs from ref",
                          zl_dtype_name(types[s]), zl_dtype_name(types[d]));
            for (size_t i = 0; i < n; i++) ck_assert(xa[i] == 0.0f && f32_bits(xa[i]) == 0);
        }
    }
    /* the reference itself: round is a store and a load of the 16-bit type */
    for (size_t i = 0; i < 4096; i++) {
        float v = x[i], r = v;
        zl_ops_ref.round(&zl_ops_ref, &r, ZL_BF16, 1);
        uint16_t h = zl_f32_to_bf16(v);
        float back = zl_bf16_to_f32(h);
        ck_assert(f32_bits(r) == f32_bits(back));
    }
    free(x);
    free(a);
    free(b);
    free(xa);
    free(xb);
    free(ya);
    free(yb);
}
END_TEST

/* drain's NaN, chosen explicitly (not by which operand of an addition the CPU or the
 * compiler keeps): a NaN in the store wins over a NaN gradient, and either is quieted
 * with its sign and payload (as far as the store's type holds it), the same in ref and
 * cpu, for every store type and gradient rounding, on every code path (n covers the
 * 8-wide F16C loop, whole chunks and a ragged end). */
static uint32_t quiet_bits(float v) { return f32_bits(v) | 0x00400000u; }

START_TEST(test_ops_cpu_drain_nan_choice_is_explicit)
{
    const zl_ops *backends[] = {ref, cpu};
    zl_dtype types[] = {ZL_F16, ZL_BF16, ZL_F32};
    /* per store type: a signalling and a quiet NaN with payloads, and 1.0 */
    const uint32_t y_bits[3][3] = {{0x7d23u, 0xfe55u, 0x3c00u},
                                   {0x7f81u, 0xffc5u, 0x3f80u},
                                   {0x7f800123u, 0xffc12345u, 0x3f800000u}};
    /* gradients: a signalling NaN whose payload survives rounding to 16 bits, 0.5 */
    const uint32_t x_nan = 0x7fa5a000u, x_half = 0x3f000000u;
    enum { N = ZL_CPU_TEST_N };
    float *x = malloc(N * 4), *want_f = malloc(N * 4);
    uint8_t *y = malloc(N * 4), *want = malloc(N * 4);
    for (int b = 0; b < 2; b++)
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 3; s++) {
                zl_dtype yt = types[d], xt = types[s];
                size_t ysz = zl_dtype_nbytes(yt);
                for (size_t i = 0; i < N; i++) {
                    int c = (int)(i % 5); /* NaN+NaN (both kinds), number+NaN, NaN+number */
                    uint32_t yb = c == 0 ? y_bits[d][0] : c == 1 ? y_bits[d][1] : c == 2 ? y_bits[d][2]
                                  : c == 3 ? y_bits[d][0] : y_bits[d][2];
                    uint32_t xb = c == 4 ? x_half : x_nan;
                    memcpy(y + i * ysz, &yb, ysz);
                    memcpy(&x[i], &xb, 4);
                    /* the expected value, from conversions alone */
                    float yv, xv = x[i];
                    zl_convert(&yv, ZL_F32, y + i * ysz, yt, 1);
                    zl_ops_ref.round(&zl_ops_ref, &xv, xt, 1);
                    uint32_t r = isnan(yv) ? quiet_bits(yv) : isnan(xv) ? quiet_bits(xv) : 0;
                    if (r) memcpy(&want_f[i], &r, 4);
                    else want_f[i] = yv + xv; /* 1.5: exact */
                }
                zl_convert(want, yt, want_f, ZL_F32, N);
                backends[b]->drain(backends[b], y, yt, x, xt, N);
                for (size_t i = 0; i < N; i++)
                    if (memcmp(y + i * ysz, want + i * ysz, ysz) != 0) {
                        uint32_t got = 0, w = 0;
                        memcpy(&got, y + i * ysz, ysz);
                        memcpy(&w, want + i * ysz, ysz);
                        ck_abort_msg("%s drain of %s into %s, element %zu (case %zu): %08x, want %08x",
                                     b ? "cpu" : "ref", zl_dtype_name(xt), zl_dtype_name(yt), i, i % 5,
                                     got, w);
                    }
            }
    free(x);
    free(want_f);
    free(y);
    free(want);
}
END_TEST

/* NaN inputs give NaN, as in ref, where the kernels' vectorized exp (cpu.h) meets them
 * (GELU, softmax in cross-entropy and attention), and the rows without one stay finite:
 * the engine's overflow check relies on a NaN showing up. (The exp must not turn a NaN
 * into an integer on the way: that conversion is undefined behaviour, which the sanitizer
 * build of .ci/run reports.) */
START_TEST(test_ops_cpu_nan_inputs_give_nan)
{
    enum { V = 37, ROWS = 3 };
    float x[8] = {NAN, 1.0f, -0.5f, NAN, 3.0f, -2.0f, 0.25f, -NAN}, g_cpu[8], g_ref[8];
    cpu->gelu_forward(cpu, g_cpu, x, 8);
    ref->gelu_forward(ref, g_ref, x, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(isnan(g_cpu[i]) == isnan(x[i]), "gelu(%g) = %g", x[i], g_cpu[i]);
        if (!isnan(x[i])) ck_assert(fabsf(g_cpu[i] - g_ref[i]) <= TOL_KERNEL * fabsf(g_ref[i]) + TOL_ATOL);
    }
    float *logits = frand(ROWS * V, 260, -3, 3), *probs = falloc(ROWS * V), *losses = falloc(ROWS);
    int32_t targets[ROWS] = {0, 5, 36};
    logits[V + 7] = NAN; /* row 1 only */
    cpu->crossentropy_forward(cpu, losses, probs, logits, targets, ROWS, V);
    ck_assert(isnan(losses[1]));
    ck_assert(isfinite(losses[0]) && isfinite(losses[2]));
    free(logits);
    free(probs);
    free(losses);
    float big[3] = {NAN, 200.0f, -200.0f}, out[3];
    cpu->gelu_forward(cpu, out, big, 3); /* past the clamp, on both sides */
    ck_assert(isnan(out[0]));
    ck_assert_msg(out[1] == 200.0f && fabsf(out[2]) < 1e-30f, "gelu(+-200) = %g, %g", out[1], out[2]);
}
END_TEST

START_TEST(test_ops_cpu_cast_matches_zl_convert)
{
    size_t n16 = 65536;
    uint16_t *h = malloc(n16 * 2), *h_cpu = malloc(n16 * 2), *h_ref = malloc(n16 * 2);
    float *f_cpu = malloc(n16 * 4), *f_ref = malloc(n16 * 4);
    for (size_t i = 0; i < n16; i++) h[i] = (uint16_t)i;
    zl_dtype halves[] = {ZL_F16, ZL_BF16};
    for (int s = 0; s < 2; s++) {
        zl_dtype ht = halves[s], other = halves[1 - s];
        cpu->cast(cpu, f_cpu, ZL_F32, h, ht, n16);
        zl_convert(f_ref, ZL_F32, h, ht, n16);
        for (size_t i = 0; i < n16; i++)
            if (f32_bits(f_cpu[i]) != f32_bits(f_ref[i]))
                ck_abort_msg("%s 0x%04zx -> f32: %08x, zl_convert %08x", zl_dtype_name(ht), i,
                             f32_bits(f_cpu[i]), f32_bits(f_ref[i]));
        cpu->cast(cpu, h_cpu, other, h, ht, n16);
        zl_convert(h_ref, other, h, ht, n16);
        for (size_t i = 0; i < n16; i++)
            if (h_cpu[i] != h_ref[i])
                ck_abort_msg("%s 0x%04zx -> %s: %04x, zl_convert %04x", zl_dtype_name(ht), i,
                             zl_dtype_name(other), h_cpu[i], h_ref[i]);
        /* round trip half -> f32 -> half is the identity except for NaN quieting */
        cpu->cast(cpu, h_cpu, ht, f_cpu, ZL_F32, n16);
        zl_convert(h_ref, ht, f_ref, ZL_F32, n16);
        ck_assert(memcmp(h_cpu, h_ref, n16 * 2) == 0);
    }

    /* f32 -> half: random bits, plus every pattern near the decision points */
    size_t nf = 1 << 20, k = 0;
    uint32_t *u = malloc(nf * 4);
    uint32_t edges[] = {0x00000000u, 0x00000001u, 0x007fffffu, 0x00800000u, 0x33000000u,
                        0x33800000u, 0x387fc000u, 0x387fe000u, 0x38800000u, 0x3f801000u,
                        0x3f803000u, 0x477fe000u, 0x477ff000u, 0x47800000u, 0x7f7fffffu,
                        0x7f800000u, 0x7f800001u, 0x7fc00000u, 0x7fffffffu, 0x3f808000u,
                        0x3f818000u, 0x7f7f8000u};
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
        for (int d = -40; d <= 40; d++) {
            u[k++] = edges[e] + (uint32_t)d;
            u[k++] = (edges[e] + (uint32_t)d) ^ 0x80000000u; /* and its negative */
        }
    for (; k < nf; k++) u[k] = (uint32_t)zl_rng_bits(230, 1, k);
    uint16_t *o_cpu = malloc(nf * 2), *o_ref = malloc(nf * 2);
    for (int s = 0; s < 2; s++) {
        cpu->cast(cpu, o_cpu, halves[s], u, ZL_F32, nf);
        zl_convert(o_ref, halves[s], u, ZL_F32, nf);
        for (size_t i = 0; i < nf; i++)
            if (o_cpu[i] != o_ref[i])
                ck_abort_msg("f32 %08x -> %s: %04x, zl_convert %04x", u[i],
                             zl_dtype_name(halves[s]), o_cpu[i], o_ref[i]);
    }
    /* same type: a copy */
    cpu->cast(cpu, f_cpu, ZL_F32, u, ZL_F32, n16);
    ck_assert(memcmp(f_cpu, u, n16 * 4) == 0);
    free(h);
    free(h_cpu);
    free(h_ref);
    free(f_cpu);
    free(f_ref);
    free(u);
    free(o_cpu);
    free(o_ref);
}
END_TEST

/* ---- threads ---------------------------------------------------------------------- */

/* Every kernel's results with one thread and with two, on shapes past the parallel
 * thresholds. What may differ is only the order of sums (OpenBLAS splits its blocks, the
 * reductions combine per-thread parts). */
typedef struct thread_run {
    float *c, *ln_out, *ln_dinp, *ln_dw, *att, *att_out, *dqkv, *gelu, *probs, *losses, *param;
    double sumsq;
} thread_run;

enum { TR_M = 96, TR_N = 160, TR_K = 72, TR_B = 2, TR_T = 128, TR_C = 64, TR_NH = 4,
       TR_ROWS = 64, TR_V = 1500, TR_NP = 40000 /* < TR_ROWS * 771 */ };

static void thread_run_once(thread_run *r, int nthreads)
{
    omp_set_num_threads(nthreads);
    int team = 0;
#pragma omp parallel
#pragma omp single
    team = omp_get_num_threads();
    ck_assert_int_eq(team, nthreads); /* or this test would compare a run with itself */
    float *a = frand(TR_M * TR_K, 240, -1, 1), *b = frand(TR_K * TR_N, 241, -1, 1);
    r->c = frand(TR_M * TR_N, 242, -1, 1);
    cpu->gemm(cpu, r->c, a, b, TR_M, TR_N, TR_K, TR_K, TR_N, TR_N, false, false, 1.0f, 1.0f);

    size_t nln = (size_t)TR_ROWS * 771;
    float *x = frand(nln, 243, -2, 2), *w = frand(771, 244, 0.5f, 1.5f);
    float *mean = falloc(TR_ROWS), *rstd = falloc(TR_ROWS);
    r->ln_out = falloc(nln);
    cpu->layernorm_forward(cpu, r->ln_out, mean, rstd, x, w, w, TR_ROWS, 771);
    r->ln_dinp = frand(nln, 245, -1, 1);
    r->ln_dw = frand(771, 246, -1, 1);
    float *ln_db = falloc(771);
    cpu->layernorm_backward(cpu, r->ln_dinp, r->ln_dw, ln_db, x, x, w, mean, rstd, TR_ROWS, 771);

    size_t nqkv = (size_t)TR_B * TR_T * 3 * TR_C, natt = (size_t)TR_B * TR_NH * TR_T * TR_T;
    float *qkv = frand(nqkv, 247, -1, 1), *scratch = falloc(2 * natt);
    r->att = falloc(natt);
    r->att_out = falloc((size_t)TR_B * TR_T * TR_C);
    cpu->attention_forward(cpu, r->att_out, r->att, qkv, TR_B, TR_T, TR_C, TR_NH);
    r->dqkv = frand(nqkv, 248, -1, 1);
    cpu->attention_backward(cpu, r->dqkv, scratch, r->att_out, qkv, r->att, TR_B, TR_T, TR_C,
                            TR_NH);

    r->gelu = falloc(nln);
    cpu->gelu_forward(cpu, r->gelu, x, nln);
    cpu->gelu_backward(cpu, r->gelu, x, x, nln);

    size_t nlog = (size_t)TR_ROWS * TR_V;
    float *logits = frand(nlog, 249, -3, 3);
    int32_t targets[TR_ROWS];
    for (int i = 0; i < TR_ROWS; i++) targets[i] = i % 3 == 0 ? -1 : i * 17;
    r->probs = falloc(nlog);
    r->losses = falloc(TR_ROWS);
    cpu->crossentropy_forward(cpu, r->losses, r->probs, logits, targets, TR_ROWS, TR_V);
    cpu->crossentropy_backward(cpu, logits, r->probs, targets, 0.5f, TR_ROWS, TR_V);
    memcpy(r->probs, logits, nlog * sizeof(float)); /* keep the gradient for comparison */

    r->param = frand(TR_NP, 250, -1, 1);
    float *m = falloc(TR_NP), *v = falloc(TR_NP);
    zl_adamw_args args = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                          .weight_decay = 0.01f, .bias_correction1 = 0.1f,
                          .bias_correction2 = 0.001f, .grad_scale = 1.0f, .adamw_mode = true};
    cpu->adamw(cpu, r->param, m, v, x, ZL_F32, NULL, ZL_F32, TR_NP, &args);
    r->sumsq = cpu->sumsq(cpu, x, nln);

    free(a);
    free(b);
    free(x);
    free(w);
    free(mean);
    free(rstd);
    free(ln_db);
    free(qkv);
    free(scratch);
    free(logits);
    free(m);
    free(v);
}

START_TEST(test_ops_cpu_one_and_two_threads_agree)
{
    thread_run one, two;
    thread_run_once(&one, 1);
    thread_run_once(&two, 2);
    size_t nln = (size_t)TR_ROWS * 771, natt = (size_t)TR_B * TR_NH * TR_T * TR_T;
    expect_close("threads: gemm", two.c, one.c, TR_M * TR_N, TOL_REORDER, TOL_ATOL * TR_K);
    expect_close("threads: layernorm", two.ln_out, one.ln_out, nln, TOL_REORDER, TOL_ATOL);
    expect_close("threads: layernorm dinp", two.ln_dinp, one.ln_dinp, nln, TOL_REORDER,
                 TOL_ATOL);
    expect_close("threads: layernorm dweight", two.ln_dw, one.ln_dw, 771, TOL_REORDER,
                 TOL_ATOL * TR_ROWS);
    expect_close("threads: att", two.att, one.att, natt, TOL_REORDER, TOL_ATOL);
    expect_close("threads: att out", two.att_out, one.att_out, (size_t)TR_B * TR_T * TR_C,
                 TOL_REORDER, TOL_ATOL);
    expect_close("threads: dqkv", two.dqkv, one.dqkv, (size_t)TR_B * TR_T * 3 * TR_C,
                 TOL_REORDER, TOL_ATOL);
    expect_close("threads: gelu", two.gelu, one.gelu, nln, TOL_REORDER, TOL_ATOL);
    expect_close("threads: crossentropy", two.probs, one.probs, (size_t)TR_ROWS * TR_V,
                 TOL_REORDER, TOL_ATOL);
    expect_close("threads: losses", two.losses, one.losses, TR_ROWS, TOL_REORDER, TOL_ATOL);
    expect_close("threads: adamw", two.param, one.param, TR_NP, 0, 0);
    ck_assert_msg(fabs(two.sumsq - one.sumsq) <= 1e-12 * one.sumsq, "threads: sumsq");
    thread_run *runs[] = {&one, &two};
    for (int i = 0; i < 2; i++) {
        thread_run *r = runs[i];
        float *bufs[] = {r->c, r->ln_out, r->ln_dinp, r->ln_dw, r->att, r->att_out, r->dqkv,
                         r->gelu, r->probs, r->losses, r->param};
        for (size_t j = 0; j < sizeof bufs / sizeof bufs[0]; j++) free(bufs[j]);
    }
}
END_TEST

static Suite *ops_cpu_suite(void)
{
    Suite *s = suite_create("ops_cpu");
    TCase *tc = tcase_create("ops_cpu");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_ops_cpu_table_is_complete);
    tcase_add_test(tc, test_ops_cpu_memory_aligned_zeroed_copied);
    tcase_add_test(tc, test_ops_cpu_gemm_transposes_strides_alpha_beta);
    tcase_add_test(tc, test_ops_cpu_gemm_large_ish);
    tcase_add_test(tc, test_ops_cpu_gemm_beta_zero_ignores_nan);
    tcase_add_test(tc, test_ops_cpu_bias_forward_backward);
    tcase_add_test(tc, test_ops_cpu_embedding_forward_backward);
    tcase_add_test(tc, test_ops_cpu_layernorm_forward_backward);
    tcase_add_test(tc, test_ops_cpu_attention_forward_backward);
    tcase_add_test(tc, test_ops_cpu_gelu_forward_backward);
    tcase_add_test(tc, test_ops_cpu_residual_and_aliasing);
    tcase_add_test(tc, test_ops_cpu_crossentropy_forward_backward);
    tcase_add_test(tc, test_ops_cpu_adamw_both_modes);
    tcase_add_test(tc, test_ops_cpu_adamw_fused_bitwise_every_isa);
    tcase_add_test(tc, test_ops_cpu_adamw_fused_bitwise_threads);
    tcase_add_test(tc, test_ops_cpu_sumsq_nonfinite_scale_axpy);
    tcase_add_test(tc, test_ops_cpu_cast_matches_zl_convert);
    tcase_add_test(tc, test_ops_cpu_round_and_drain_match_ref);
    tcase_add_test(tc, test_ops_cpu_drain_nan_choice_is_explicit);
    tcase_add_test(tc, test_ops_cpu_nan_inputs_give_nan);
    tcase_add_test(tc, test_ops_cpu_one_and_two_threads_agree);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(ops_cpu_suite)
