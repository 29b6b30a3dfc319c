/* The ref backend, the oracle of every other backend, checked against mathematics:
 *
 * - every forward against an independent double-precision forward written here;
 * - every backward against central finite differences of that double forward, for the
 *   objective L = sum(out * w) with random w (so dout = w), on small odd shapes;
 * - backward accumulation (+=), causal masking, ignored targets, one Adam/AdamW step
 *   worked out in double, and the vector ops against sums and bit patterns done by hand. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"
#include "check_util.h"
#include "base/dtype.h"

/* f32 kernel vs the double forward: every output is a reduction of at most a few dozen
 * terms of inputs up to ~5 in magnitude, so it is off by a few f32 ulps of those inputs
 * (6e-8 relative each; layernorm's x - mean makes that an absolute error, hence the atol);
 * exp/tanh/log add one or two ulps. */
#define TOL_FWD_RTOL 1e-5
#define TOL_FWD_ATOL 1e-6
/* f32 analytic gradient vs central differences of the double forward. The difference
 * quotient itself is good to ~1e-9 (truncation ~h^2 = 1e-12, cancellation ~1e-16/h =
 * 1e-10 for O(1) objectives), so what is left is the f32 rounding of the backward: a few
 * ulps of sums of O(1) terms (observed: below 1e-6 relative, 1e-7 absolute). A wrong
 * formula is off by 1e-2 or more. */
#define TOL_GRAD_RTOL 1e-5
#define TOL_GRAD_ATOL 1e-6
#define FD_H 1e-6
/* Second backward on top of the first: each element is the same sum added again, except
 * where one element collects several terms (repeated tokens, keys seen by many queries),
 * whose partial sums then round differently: a few ulps. */
#define TOL_ACCUM_RTOL 1e-6
#define TOL_ACCUM_ATOL 1e-7

static const zl_ops *ops;

static void setup(void)
{
    ops = zl_ops_find("ref");
    ck_assert_ptr_nonnull(ops);
}

/* ---- helpers ---------------------------------------------------------------------- */

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static float *frand(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = falloc(n);
    zl_test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static double *to_double(const float *x, size_t n)
{
    double *d = dalloc(n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* got (f32) against want (double), with a report under `label` on failure */
static void expect_close(const char *label, const float *got, const double *want, size_t n,
                         double rtol, double atol)
{
    float *w = falloc(n);
    for (size_t i = 0; i < n; i++) w[i] = (float)want[i];
    int ok = zl_test_close(label, got, w, n, rtol, atol);
    free(w);
    ck_assert_msg(ok, "%s: see the report above", label);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* grad[i] = (L(x + h e_i) - L(x - h e_i)) / 2h, where L reads x through ctx */
static void fd_gradient(double *grad, double *x, size_t n, double (*objective)(void *),
                        void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        double saved = x[i];
        x[i] = saved + FD_H;
        double plus = objective(ctx);
        x[i] = saved - FD_H;
        double minus = objective(ctx);
        x[i] = saved;
        grad[i] = (plus - minus) / (2 * FD_H);
    }
}

/* a gradient buffer after one backward (g1) and after a second one on top (g2) */
static void expect_doubled(const char *label, const float *g2, const float *g1, size_t n)
{
    float *twice = falloc(n);
    for (size_t i = 0; i < n; i++) twice[i] = 2 * g1[i];
    int ok = zl_test_close(label, g2, twice, n, TOL_ACCUM_RTOL, TOL_ACCUM_ATOL);
    free(twice);
    ck_assert_msg(ok, "%s: backward does not accumulate (+=)", label);
}

static float *fcopy(const float *x, size_t n)
{
    float *y = falloc(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}

START_TEST(test_ops_ref_table_is_complete)
{
    ck_assert_str_eq(ops->name, "ref");
    ck_assert(ops->alloc && ops->free && ops->zero && ops->copy);
    ck_assert(ops->gemm && ops->bias_forward && ops->bias_backward);
    ck_assert(ops->embedding_forward && ops->embedding_backward);
    ck_assert(ops->layernorm_forward && ops->layernorm_backward);
    ck_assert(ops->attention_forward && ops->attention_backward);
    ck_assert(ops->gelu_forward && ops->gelu_backward && ops->residual_forward);
    ck_assert(ops->crossentropy_forward && ops->crossentropy_backward);
    ck_assert(ops->adamw && ops->sumsq && ops->nonfinite && ops->scale && ops->axpy && ops->cast);
}
END_TEST

/* ---- gemm ------------------------------------------------------------------------- */

enum { GM = 5, GN = 7, GK = 3 }; /* C (5,7) = op(A) (5,3) @ op(B) (3,7) */

/* One stored operand: rows x cols inside a buffer whose rows are ld >= cols apart. */
typedef struct {
    int rows, cols, ld;
} gemm_layout;

/* The textbook definition: form op(A) and op(B) as dense matrices, then C = sum_p. */
static void gemm_d(double *c, const double *a, const double *b, int m, int n, int k, int lda,
                   int ldb, int ldc, bool ta, bool tb, double alpha, double beta)
{
    double *opa = dalloc((size_t)m * k), *opb = dalloc((size_t)k * n);
    for (int r = 0; r < m; r++)
        for (int p = 0; p < k; p++) opa[r * k + p] = ta ? a[p * lda + r] : a[r * lda + p];
    for (int p = 0; p < k; p++)
        for (int j = 0; j < n; j++) opb[p * n + j] = tb ? b[j * ldb + p] : b[p * ldb + j];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += opa[i * k + p] * opb[p * n + j];
            c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]);
        }
    free(opa);
    free(opb);
}

/* A stored matrix of the given layout: random inside, `pad` in the columns past `cols`. */
static float *gemm_operand(gemm_layout l, uint64_t seed, float pad)
{
    float *x = falloc((size_t)l.rows * l.ld);
    for (int r = 0; r < l.rows; r++) {
        zl_test_fill_uniform(x + (size_t)r * l.ld, l.cols, seed + r, -1, 1);
        for (int c = l.cols; c < l.ld; c++) x[(size_t)r * l.ld + c] = pad;
    }
    return x;
}

/* double copy with zeros in the padding, so that gemm_d can never see a NaN there */
static double *gemm_operand_d(const float *x, gemm_layout l)
{
    double *d = dalloc((size_t)l.rows * l.ld);
    for (int r = 0; r < l.rows; r++)
        for (int c = 0; c < l.cols; c++) d[r * l.ld + c] = x[r * l.ld + c];
    return d;
}

/* A (m,k) or, transposed, (k,m); B (k,n) or (n,k); rows padded by 2, 3 and 1 */
static gemm_layout layout_a(bool ta)
{
    return ta ? (gemm_layout){GK, GM, GM + 2} : (gemm_layout){GM, GK, GK + 2};
}
static gemm_layout layout_b(bool tb)
{
    return tb ? (gemm_layout){GN, GK, GK + 3} : (gemm_layout){GK, GN, GN + 3};
}
static const gemm_layout layout_c = {GM, GN, GN + 1};

START_TEST(test_ops_ref_gemm_forward_transposes_and_strides)
{
    for (int combo = 0; combo < 4; combo++) {
        bool ta = combo & 1, tb = combo & 2;
        gemm_layout la = layout_a(ta), lb = layout_b(tb), lc = layout_c;
        /* NaN in the padding of A and B: reading past the window would poison C */
        float *a = gemm_operand(la, 100 + combo, NAN), *b = gemm_operand(lb, 200 + combo, NAN);
        float *c = gemm_operand(lc, 300 + combo, 12345.0f);
        double *ad = gemm_operand_d(a, la), *bd = gemm_operand_d(b, lb);
        double *cd = gemm_operand_d(c, lc);
        char label[64];

        /* alpha and beta both in play */
        gemm_d(cd, ad, bd, GM, GN, GK, la.ld, lb.ld, lc.ld, ta, tb, 0.75, 0.5);
        ops->gemm(ops, c, a, b, GM, GN, GK, la.ld, lb.ld, lc.ld, ta, tb, 0.75f, 0.5f);
        for (int r = 0; r < GM; r++) {
            snprintf(label, sizeof label, "gemm ta=%d tb=%d row %d", ta, tb, r);
            expect_close(label, c + r * lc.ld, cd + r * lc.ld, GN, TOL_FWD_RTOL, TOL_FWD_ATOL);
            ck_assert_msg(c[r * lc.ld + GN] == 12345.0f, "gemm wrote past n in row %d", r);
        }

        /* beta = 0 overwrites C, even NaN */
        for (int i = 0; i < GM * lc.ld; i++) c[i] = (i % lc.ld) < GN ? NAN : 12345.0f;
        gemm_d(cd, ad, bd, GM, GN, GK, la.ld, lb.ld, lc.ld, ta, tb, 1.0, 0.0);
        ops->gemm(ops, c, a, b, GM, GN, GK, la.ld, lb.ld, lc.ld, ta, tb, 1.0f, 0.0f);
        for (int r = 0; r < GM; r++) {
            snprintf(label, sizeof label, "gemm beta=0 ta=%d tb=%d row %d", ta, tb, r);
            expect_close(label, c + r * lc.ld, cd + r * lc.ld, GN, TOL_FWD_RTOL, TOL_FWD_ATOL);
            ck_assert(c[r * lc.ld + GN] == 12345.0f);
        }
        free(a), free(b), free(c), free(ad), free(bd), free(cd);
    }
}
END_TEST

typedef struct {
    double *a, *b, *c0, *c, *w;
    gemm_layout la, lb;
    bool ta, tb;
    double alpha, beta;
} gemm_ctx;

static double gemm_objective(void *p)
{
    gemm_ctx *x = p;
    memcpy(x->c, x->c0, sizeof(double) * GM * layout_c.ld);
    gemm_d(x->c, x->a, x->b, GM, GN, GK, x->la.ld, x->lb.ld, layout_c.ld, x->ta, x->tb, x->alpha,
           x->beta);
    return dot(x->c, x->w, (size_t)GM * layout_c.ld); /* w is 0 in the padding */
}

/* The backward of C = alpha op(A) op(B) + beta C is itself two gemms, accumulated with
 * beta = 1 as layers do:  d op(A) = alpha dC op(B)^T,  d op(B) = alpha op(A)^T dC. */
START_TEST(test_ops_ref_gemm_backward_matches_finite_differences)
{
    const float alpha = 0.75f, beta = 0.5f;
    for (int combo = 0; combo < 4; combo++) {
        bool ta = combo & 1, tb = combo & 2;
        gemm_layout la = layout_a(ta), lb = layout_b(tb), lc = layout_c;
        float *a = gemm_operand(la, 400 + combo, NAN), *b = gemm_operand(lb, 500 + combo, NAN);
        float *dc = gemm_operand(lc, 600 + combo, NAN); /* dC = w, the objective's weights */
        float *da = falloc((size_t)la.rows * la.ld), *db = falloc((size_t)lb.rows * lb.ld);
        float *da1 = NULL, *db1 = NULL;

        for (int pass = 0; pass < 2; pass++) {
            if (!ta) /* dA (m,k) += alpha dC (m,n) @ op(B)^T (n,k) */
                ops->gemm(ops, da, dc, b, GM, GK, GN, lc.ld, lb.ld, la.ld, false, !tb, alpha, 1.0f);
            else /* dA (k,m) += alpha op(B) (k,n) @ dC^T (n,m) */
                ops->gemm(ops, da, b, dc, GK, GM, GN, lb.ld, lc.ld, la.ld, tb, true, alpha, 1.0f);
            if (!tb) /* dB (k,n) += alpha op(A)^T (k,m) @ dC (m,n) */
                ops->gemm(ops, db, a, dc, GK, GN, GM, la.ld, lc.ld, lb.ld, !ta, false, alpha, 1.0f);
            else /* dB (n,k) += alpha dC^T (n,m) @ op(A) (m,k) */
                ops->gemm(ops, db, dc, a, GN, GK, GM, lc.ld, la.ld, lb.ld, true, ta, alpha, 1.0f);
            if (pass == 0) {
                da1 = fcopy(da, (size_t)la.rows * la.ld);
                db1 = fcopy(db, (size_t)lb.rows * lb.ld);
            }
        }

        gemm_ctx x = {gemm_operand_d(a, la), gemm_operand_d(b, lb), dalloc(GM * lc.ld),
                      dalloc(GM * lc.ld), gemm_operand_d(dc, lc), la, lb, ta, tb, alpha, beta};
        double *ga = dalloc((size_t)la.rows * la.ld), *gb = dalloc((size_t)lb.rows * lb.ld);
        fd_gradient(ga, x.a, (size_t)la.rows * la.ld, gemm_objective, &x);
        fd_gradient(gb, x.b, (size_t)lb.rows * lb.ld, gemm_objective, &x);

        char label[64];
        snprintf(label, sizeof label, "gemm dA ta=%d tb=%d", ta, tb);
        expect_close(label, da1, ga, (size_t)la.rows * la.ld, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled(label, da, da1, (size_t)la.rows * la.ld);
        snprintf(label, sizeof label, "gemm dB ta=%d tb=%d", ta, tb);
        expect_close(label, db1, gb, (size_t)lb.rows * lb.ld, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled(label, db, db1, (size_t)lb.rows * lb.ld);

        free(a), free(b), free(dc), free(da), free(db), free(da1), free(db1);
        free(x.a), free(x.b), free(x.c0), free(x.c), free(x.w), free(ga), free(gb);
    }
}
END_TEST

START_TEST(test_ops_ref_gemm_degenerate_sizes)
{
    /* degenerate sizes: a 1x1x1 product and a single row */
    float a = 3.0f, b = -2.0f, c = NAN;
    ops->gemm(ops, &c, &a, &b, 1, 1, 1, 1, 1, 1, false, false, 1.0f, 0.0f);
    ck_assert(c == -6.0f);
    ops->gemm(ops, &c, &a, &b, 1, 1, 1, 1, 1, 1, true, true, 0.5f, 2.0f);
    ck_assert(c == -3.0f - 12.0f);
}
END_TEST

/* ---- bias ------------------------------------------------------------------------- */

typedef struct {
    double *out0, *bias, *w;
    int N, OC;
} bias_ctx;

static double bias_objective(void *p)
{
    bias_ctx *x = p;
    double s = 0;
    for (int i = 0; i < x->N; i++)
        for (int o = 0; o < x->OC; o++)
            s += (x->out0[i * x->OC + o] + x->bias[o]) * x->w[i * x->OC + o];
    return s;
}

START_TEST(test_ops_ref_bias_forward_backward)
{
    static const int shapes[][2] = {{5, 3}, {1, 1}, {4, 7}};
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], OC = shapes[s][1];
        size_t n = (size_t)N * OC;
        float *out = frand(n, 1 + s, -1, 1), *bias = frand(OC, 2 + s, -1, 1);
        float *w = frand(n, 3 + s, -1, 1), *dbias = falloc(OC);
        bias_ctx x = {to_double(out, n), to_double(bias, OC), to_double(w, n), N, OC};

        double *want = dalloc(n);
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OC; o++) want[i * OC + o] = x.out0[i * OC + o] + x.bias[o];
        ops->bias_forward(ops, out, bias, N, OC);
        expect_close("bias_forward", out, want, n, TOL_FWD_RTOL, TOL_FWD_ATOL);

        ops->bias_backward(ops, dbias, w, N, OC);
        float *dbias1 = fcopy(dbias, OC);
        ops->bias_backward(ops, dbias, w, N, OC);
        double *g = dalloc(OC);
        fd_gradient(g, x.bias, OC, bias_objective, &x);
        expect_close("bias dbias", dbias1, g, OC, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled("bias dbias", dbias, dbias1, OC);

        free(out), free(bias), free(w), free(dbias), free(dbias1), free(want), free(g);
        free(x.out0), free(x.bias), free(x.w);
    }
}
END_TEST

/* ---- embedding -------------------------------------------------------------------- */

typedef struct {
    double *wte, *wpe, *w, *out;
    const int32_t *tokens;
    int B, T, C;
} emb_ctx;

static double emb_objective(void *p)
{
    emb_ctx *x = p;
    int C = x->C;
    for (int bt = 0; bt < x->B * x->T; bt++)
        for (int i = 0; i < C; i++)
            x->out[bt * C + i] = x->wte[x->tokens[bt] * C + i] + x->wpe[(bt % x->T) * C + i];
    return dot(x->out, x->w, (size_t)x->B * x->T * x->C);
}

START_TEST(test_ops_ref_embedding_forward_backward)
{
    /* B, T, C, V; maxT = T + 1 so that an unused position row must keep a zero gradient */
    static const int shapes[][4] = {{2, 5, 6, 4}, {1, 1, 1, 1}, {3, 2, 3, 5}};
    for (int s = 0; s < 3; s++) {
        int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], V = shapes[s][3];
        size_t nout = (size_t)B * T * C, nwte = (size_t)V * C, nwpe = (size_t)(T + 1) * C;
        int32_t *tokens = calloc(B * T, sizeof *tokens);
        for (int i = 0; i < B * T; i++) tokens[i] = (i * 3 + 1) % V; /* repeats when B*T > V */
        float *wte = frand(nwte, 10 + s, -1, 1), *wpe = frand(nwpe, 20 + s, -1, 1);
        float *w = frand(nout, 30 + s, -1, 1), *out = falloc(nout);
        float *dwte = falloc(nwte), *dwpe = falloc(nwpe);
        emb_ctx x = {to_double(wte, nwte), to_double(wpe, nwpe), to_double(w, nout), dalloc(nout),
                     tokens, B, T, C};

        emb_objective(&x);
        ops->embedding_forward(ops, out, tokens, wte, wpe, B, T, C);
        expect_close("embedding_forward", out, x.out, nout, TOL_FWD_RTOL, TOL_FWD_ATOL);

        ops->embedding_backward(ops, dwte, dwpe, w, tokens, B, T, C);
        float *dwte1 = fcopy(dwte, nwte), *dwpe1 = fcopy(dwpe, nwpe);
        ops->embedding_backward(ops, dwte, dwpe, w, tokens, B, T, C);
        double *gte = dalloc(nwte), *gpe = dalloc(nwpe);
        fd_gradient(gte, x.wte, nwte, emb_objective, &x);
        fd_gradient(gpe, x.wpe, nwpe, emb_objective, &x);
        expect_close("embedding dwte", dwte1, gte, nwte, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_close("embedding dwpe", dwpe1, gpe, nwpe, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled("embedding dwte", dwte, dwte1, nwte);
        expect_doubled("embedding dwpe", dwpe, dwpe1, nwpe);

        free(tokens), free(wte), free(wpe), free(w), free(out), free(dwte), free(dwpe);
        free(dwte1), free(dwpe1), free(gte), free(gpe);
        free(x.wte), free(x.wpe), free(x.w), free(x.out);
    }
}
END_TEST

/* ---- layernorm -------------------------------------------------------------------- */

typedef struct {
    double *inp, *weight, *bias, *w, *out, *mean, *rstd;
    int N, C;
} ln_ctx;

/* torch.nn.LayerNorm: biased variance, eps 1e-5 inside the square root */
static void layernorm_d(ln_ctx *x)
{
    for (int r = 0; r < x->N; r++) {
        const double *in = x->inp + r * x->C;
        double mu = 0, var = 0;
        for (int i = 0; i < x->C; i++) mu += in[i] / x->C;
        for (int i = 0; i < x->C; i++) var += (in[i] - mu) * (in[i] - mu) / x->C;
        x->mean[r] = mu;
        x->rstd[r] = 1 / sqrt(var + 1e-5);
        for (int i = 0; i < x->C; i++)
            x->out[r * x->C + i] = (in[i] - mu) / sqrt(var + 1e-5) * x->weight[i] + x->bias[i];
    }
}

static double ln_objective(void *p)
{
    ln_ctx *x = p;
    layernorm_d(x);
    return dot(x->out, x->w, (size_t)x->N * x->C);
}

START_TEST(test_ops_ref_layernorm_forward_backward)
{
    static const int shapes[][2] = {{10, 6}, {1, 1}, {3, 7}, {2, 2}};
    for (int s = 0; s < 4; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        size_t n = (size_t)N * C;
        float *inp = frand(n, 40 + s, -2, 2), *weight = frand(C, 50 + s, 0.5f, 1.5f);
        float *bias = frand(C, 60 + s, -0.5f, 0.5f), *w = frand(n, 70 + s, -1, 1);
        for (size_t i = 0; i < n; i++) inp[i] += 0.5f * (float)(i / C); /* rows' means differ */
        float *out = falloc(n), *mean = falloc(N), *rstd = falloc(N);
        float *dinp = falloc(n), *dweight = falloc(C), *dbias = falloc(C);
        ln_ctx x = {to_double(inp, n), to_double(weight, C), to_double(bias, C), to_double(w, n),
                    dalloc(n), dalloc(N), dalloc(N), N, C};

        layernorm_d(&x);
        ops->layernorm_forward(ops, out, mean, rstd, inp, weight, bias, N, C);
        expect_close("layernorm out", out, x.out, n, TOL_FWD_RTOL, TOL_FWD_ATOL);
        expect_close("layernorm mean", mean, x.mean, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
        expect_close("layernorm rstd", rstd, x.rstd, N, TOL_FWD_RTOL, TOL_FWD_ATOL);

        ops->layernorm_backward(ops, dinp, dweight, dbias, w, inp, weight, mean, rstd, N, C);
        float *dinp1 = fcopy(dinp, n), *dweight1 = fcopy(dweight, C), *dbias1 = fcopy(dbias, C);
        ops->layernorm_backward(ops, dinp, dweight, dbias, w, inp, weight, mean, rstd, N, C);

        double *gi = dalloc(n), *gw = dalloc(C), *gb = dalloc(C);
        fd_gradient(gi, x.inp, n, ln_objective, &x);
        fd_gradient(gw, x.weight, C, ln_objective, &x);
        fd_gradient(gb, x.bias, C, ln_objective, &x);
        expect_close("layernorm dinp", dinp1, gi, n, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_close("layernorm dweight", dweight1, gw, C, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_close("layernorm dbias", dbias1, gb, C, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled("layernorm dinp", dinp, dinp1, n);
        expect_doubled("layernorm dweight", dweight, dweight1, C);
        expect_doubled("layernorm dbias", dbias, dbias1, C);

        free(inp), free(weight), free(bias), free(w), free(out), free(mean), free(rstd);
        free(dinp), free(dweight), free(dbias), free(dinp1), free(dweight1), free(dbias1);
        free(gi), free(gw), free(gb);
        free(x.inp), free(x.weight), free(x.bias), free(x.w), free(x.out), free(x.mean);
        free(x.rstd);
    }
}
END_TEST

/* ---- attention -------------------------------------------------------------------- */

typedef struct {
    double *qkv, *w, *out, *att;
    int B, T, C, NH;
} attn_ctx;

/* Per (b, h): S = Q K^T / sqrt(HS) with -inf above the diagonal, P = softmax(S) by rows,
 * O = P V; written as matrix products on extracted Q, K, V. */
static void attention_d(attn_ctx *x)
{
    int B = x->B, T = x->T, C = x->C, NH = x->NH, HS = C / NH;
    double *Q = dalloc(T * HS), *K = dalloc(T * HS), *Vv = dalloc(T * HS), *S = dalloc(T * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++)
                for (int i = 0; i < HS; i++) {
                    const double *row = x->qkv + (b * T + t) * 3 * C + h * HS + i;
                    Q[t * HS + i] = row[0], K[t * HS + i] = row[C], Vv[t * HS + i] = row[2 * C];
                }
            for (int t = 0; t < T; t++) {
                double mx = -INFINITY, sum = 0;
                for (int u = 0; u < T; u++) {
                    double s = 0;
                    for (int i = 0; i < HS; i++) s += Q[t * HS + i] * K[u * HS + i];
                    S[t * T + u] = u > t ? -INFINITY : s / sqrt((double)HS);
                    mx = fmax(mx, S[t * T + u]);
                }
                for (int u = 0; u < T; u++) sum += exp(S[t * T + u] - mx);
                double *P = x->att + ((b * NH + h) * T + t) * T; /* row t of P */
                for (int u = 0; u < T; u++) P[u] = exp(S[t * T + u] - mx) / sum; /* e^-inf = 0 */
                for (int i = 0; i < HS; i++) {
                    double o = 0;
                    for (int u = 0; u < T; u++) o += P[u] * Vv[u * HS + i];
                    x->out[(b * T + t) * C + h * HS + i] = o;
                }
            }
        }
    free(Q), free(K), free(Vv), free(S);
}

static double attn_objective(void *p)
{
    attn_ctx *x = p;
    attention_d(x);
    return dot(x->out, x->w, (size_t)x->B * x->T * x->C);
}

START_TEST(test_ops_ref_attention_forward_backward)
{
    /* B, T, C, NH */
    static const int shapes[][4] = {{2, 5, 6, 2}, {2, 5, 6, 3}, {1, 1, 1, 1}, {1, 4, 3, 1},
                                    {3, 2, 4, 4}};
    for (int s = 0; s < 5; s++) {
        int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], NH = shapes[s][3];
        size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
        size_t natt = (size_t)B * NH * T * T;
        float *qkv = frand(nqkv, 80 + s, -2, 2), *w = frand(nout, 90 + s, -1, 1);
        float *out = falloc(nout), *att = falloc(natt), *dqkv = falloc(nqkv);
        float *scratch = falloc(2 * natt);
        attn_ctx x = {to_double(qkv, nqkv), to_double(w, nout), dalloc(nout), dalloc(natt),
                      B, T, C, NH};
        char label[64];

        attention_d(&x);
        for (size_t i = 0; i < natt; i++) att[i] = NAN; /* every entry must be written */
        ops->attention_forward(ops, out, att, qkv, B, T, C, NH);
        snprintf(label, sizeof label, "attention out B%d T%d C%d NH%d", B, T, C, NH);
        expect_close(label, out, x.out, nout, TOL_FWD_RTOL, TOL_FWD_ATOL);
        snprintf(label, sizeof label, "attention att B%d T%d C%d NH%d", B, T, C, NH);
        expect_close(label, att, x.att, natt, TOL_FWD_RTOL, TOL_FWD_ATOL);

        /* the scratch comes uninitialised from the caller: NaN must not leak through */
        for (size_t i = 0; i < 2 * natt; i++) scratch[i] = NAN;
        ops->attention_backward(ops, dqkv, scratch, w, qkv, att, B, T, C, NH);
        float *dqkv1 = fcopy(dqkv, nqkv);
        for (size_t i = 0; i < 2 * natt; i++) scratch[i] = NAN;
        ops->attention_backward(ops, dqkv, scratch, w, qkv, att, B, T, C, NH);

        double *g = dalloc(nqkv);
        fd_gradient(g, x.qkv, nqkv, attn_objective, &x);
        snprintf(label, sizeof label, "attention dqkv B%d T%d C%d NH%d", B, T, C, NH);
        expect_close(label, dqkv1, g, nqkv, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled(label, dqkv, dqkv1, nqkv);

        free(qkv), free(w), free(out), free(att), free(dqkv), free(scratch), free(dqkv1), free(g);
        free(x.qkv), free(x.w), free(x.out), free(x.att);
    }
}
END_TEST

START_TEST(test_ops_ref_attention_is_causal)
{
    enum { B = 2, T = 6, C = 6, NH = 3, T0 = 3 };
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = frand(nqkv, 7, -2, 2), *out1 = falloc(nout), *out2 = falloc(nout);
    float *att1 = falloc(natt), *att2 = falloc(natt);
    ops->attention_forward(ops, out1, att1, qkv, B, T, C, NH);

    /* rewrite q, k and v of every position t >= T0 */
    for (int b = 0; b < B; b++)
        zl_test_fill_uniform(qkv + ((size_t)b * T + T0) * 3 * C, (size_t)(T - T0) * 3 * C, 8 + b,
                             -2, 2);
    for (size_t i = 0; i < natt; i++) att2[i] = 7.0f; /* the masked entries must be written */
    ops->attention_forward(ops, out2, att2, qkv, B, T, C, NH);

    int changed = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *o1 = out1 + ((size_t)b * T + t) * C, *o2 = out2 + ((size_t)b * T + t) * C;
            if (t < T0)
                ck_assert_msg(!memcmp(o1, o2, C * sizeof(float)),
                              "out at b=%d t=%d depends on a future token", b, t);
            else
                changed += memcmp(o1, o2, C * sizeof(float)) != 0;
        }
    ck_assert_int_eq(changed, B * (T - T0)); /* the rewrite did reach the later positions */

    for (int bh = 0; bh < B * NH; bh++)
        for (int t = 0; t < T; t++) {
            const float *row = att2 + ((size_t)bh * T + t) * T;
            double sum = 0;
            for (int u = 0; u < T; u++) {
                if (u > t)
                    ck_assert_msg(row[u] == 0.0f, "att[%d][%d][%d] above the diagonal", bh, t, u);
                else
                    ck_assert(row[u] > 0.0f);
                sum += row[u];
            }
            ck_assert_msg(fabs(sum - 1) < 1e-6, "att row sums to %.9g", sum);
        }
    free(qkv), free(out1), free(out2), free(att1), free(att2);
}
END_TEST

/* ---- gelu ------------------------------------------------------------------------- */

typedef struct {
    double *inp, *w, *out;
    size_t n;
} gelu_ctx;

static double gelu_objective(void *p)
{
    gelu_ctx *x = p;
    const double s = sqrt(2 / acos(-1.0));
    for (size_t i = 0; i < x->n; i++) {
        double v = x->inp[i];
        x->out[i] = 0.5 * v * (1 + tanh(s * (v + 0.044715 * v * v * v)));
    }
    return dot(x->out, x->w, x->n);
}

START_TEST(test_ops_ref_gelu_forward_backward)
{
    enum { N = 17 };
    float *inp = frand(N, 11, -4, 4), *w = frand(N, 12, -1, 1);
    const float fixed[] = {0.0f, 1.0f, -1.0f, 10.0f, -10.0f, 50.0f, -0.3f};
    memcpy(inp, fixed, sizeof fixed); /* zero, the tails, and where tanh saturates */
    float *out = falloc(N), *dinp = falloc(N);
    gelu_ctx x = {to_double(inp, N), to_double(w, N), dalloc(N), N};

    gelu_objective(&x);
    ops->gelu_forward(ops, out, inp, N);
    expect_close("gelu_forward", out, x.out, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
    ck_assert(out[0] == 0.0f && out[3] == 10.0f && out[4] == -0.0f);

    ops->gelu_backward(ops, dinp, inp, w, N);
    float *dinp1 = fcopy(dinp, N);
    ops->gelu_backward(ops, dinp, inp, w, N);
    double *g = dalloc(N);
    fd_gradient(g, x.inp, N, gelu_objective, &x);
    expect_close("gelu dinp", dinp1, g, N, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
    expect_doubled("gelu dinp", dinp, dinp1, N);
    /* gelu'(0) = 1/2 exactly */
    ck_assert(dinp1[0] == 0.5f * w[0]);

    /* n = 1 */
    float one = 1.0f, gout = 0.0f;
    ops->gelu_forward(ops, &gout, &one, 1);
    ck_assert(fabs(gout - 0.8411920071) < 1e-6); /* 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) */

    free(inp), free(w), free(out), free(dinp), free(dinp1), free(g);
    free(x.inp), free(x.w), free(x.out);
}
END_TEST

/* ---- crossentropy ----------------------------------------------------------------- */

typedef struct {
    double *logits, *probs, *losses;
    const int32_t *targets;
    double dloss;
    int N, V;
} ce_ctx;

static void crossentropy_d(ce_ctx *x)
{
    for (int n = 0; n < x->N; n++) {
        const double *l = x->logits + n * x->V;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < x->V; j++) mx = fmax(mx, l[j]);
        for (int j = 0; j < x->V; j++) sum += exp(l[j] - mx);
        for (int j = 0; j < x->V; j++) x->probs[n * x->V + j] = exp(l[j] - mx) / sum;
        int y = x->targets[n];
        x->losses[n] = y < 0 ? 0 : -log(x->probs[n * x->V + y]);
    }
}

static double ce_objective(void *p)
{
    ce_ctx *x = p;
    crossentropy_d(x);
    double s = 0;
    for (int n = 0; n < x->N; n++) s += x->dloss * x->losses[n];
    return s;
}

START_TEST(test_ops_ref_crossentropy_forward_backward)
{
    /* N, V; targets cycle through -1 (ignored), -3 (ignored) and valid classes */
    static const int shapes[][2] = {{7, 5}, {1, 1}, {3, 2}};
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], V = shapes[s][1];
        size_t n = (size_t)N * V;
        int32_t *targets = calloc(N, sizeof *targets);
        for (int i = 0; i < N; i++)
            targets[i] = (i % 4 == 2) ? -1 : (i % 4 == 3) ? -3 : (i * 2) % V;
        float *logits = frand(n, 13 + s, -3, 3), *losses = falloc(N), *probs = falloc(n);
        float *dlogits = falloc(n);
        ce_ctx x = {to_double(logits, n), dalloc(n), dalloc(N), targets, 0.37, N, V};

        crossentropy_d(&x);
        ops->crossentropy_forward(ops, losses, probs, logits, targets, N, V);
        expect_close("crossentropy losses", losses, x.losses, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
        expect_close("crossentropy probs", probs, x.probs, n, TOL_FWD_RTOL, TOL_FWD_ATOL);

        ops->crossentropy_backward(ops, dlogits, probs, targets, 0.37f, N, V);
        float *dlogits1 = fcopy(dlogits, n);
        ops->crossentropy_backward(ops, dlogits, probs, targets, 0.37f, N, V);
        double *g = dalloc(n);
        fd_gradient(g, x.logits, n, ce_objective, &x);
        expect_close("crossentropy dlogits", dlogits1, g, n, TOL_GRAD_RTOL, TOL_GRAD_ATOL);
        expect_doubled("crossentropy dlogits", dlogits, dlogits1, n);

        free(targets), free(logits), free(losses), free(probs), free(dlogits), free(dlogits1);
        free(g);
        free(x.logits), free(x.probs), free(x.losses);
    }
}
END_TEST

START_TEST(test_ops_ref_crossentropy_ignored_targets)
{
    enum { N = 4, V = 3 };
    const int32_t targets[N] = {-1, 2, -100, 0};
    float logits[N * V] = {1, 2, 3, 1, 2, 3, -1, 0, 1, 0, 0, 0}, losses[N], probs[N * V];
    float dlogits[N * V];
    for (int i = 0; i < N * V; i++) dlogits[i] = 0.25f; /* a prior gradient to keep */
    ops->crossentropy_forward(ops, losses, probs, logits, targets, N, V);
    ck_assert(losses[0] == 0.0f && losses[2] == 0.0f);
    /* ignored rows still get their softmax: row 0 = row 1 */
    for (int j = 0; j < V; j++) ck_assert(probs[j] == probs[V + j]);
    /* row 1: -log softmax = log(e + e^2 + e^3) - 3; row 3: log 3 */
    ck_assert(fabs(losses[1] - (log(exp(1) + exp(2) + exp(3)) - 3)) < 1e-6);
    ck_assert(fabs(losses[3] - log(3.0)) < 1e-6);

    ops->crossentropy_backward(ops, dlogits, probs, targets, 0.5f, N, V);
    for (int j = 0; j < V; j++) {
        ck_assert_msg(dlogits[j] == 0.25f, "ignored row 0 got a gradient");
        ck_assert_msg(dlogits[2 * V + j] == 0.25f, "ignored row 2 got a gradient");
        /* row 3: uniform probs 1/3, target 0 */
        double want = 0.25 + 0.5 * (1.0 / 3 - (j == 0));
        ck_assert(fabs(dlogits[3 * V + j] - want) < 1e-6);
    }
}
END_TEST

START_TEST(test_ops_ref_crossentropy_extreme_logits)
{
    /* the target's probability underflows to 0 in f32: the loss must stay finite, 200 */
    float logits[2] = {100.0f, -100.0f}, losses[1], probs[2];
    int32_t target = 1;
    ops->crossentropy_forward(ops, losses, probs, logits, &target, 1, 2);
    ck_assert_msg(isfinite(losses[0]) && fabs(losses[0] - 200.0) < 1e-3, "loss %g", losses[0]);
    ck_assert(probs[0] == 1.0f && probs[1] == 0.0f);
}
END_TEST

/* ---- adamw ------------------------------------------------------------------------ */

/* One step as torch.optim.AdamW / Adam(weight_decay) write it: decay p *= 1 - lr*wd first
 * (AdamW) or g += wd*p (Adam), then p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps). */
static void adam_step_d(double *p, double *m, double *v, const double *grad, size_t n,
                        double lr, double b1, double b2, double eps, double wd, int step,
                        double grad_scale, bool adamw)
{
    double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] * grad_scale;
        if (adamw) p[i] *= 1 - lr * wd;
        else g += wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
}

START_TEST(test_ops_ref_adamw_step_matches_double)
{
    enum { N = 9, STEP = 3 };
    const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, loss_scale = 1024;
    for (int mode = 0; mode < 2; mode++) {
        float *p = frand(N, 21, -1, 1), *m = frand(N, 22, -0.1f, 0.1f), *v = frand(N, 23, 0, 0.01f);
        float *grad = frand(N, 24, -loss_scale, loss_scale); /* scaled gradients */
        double *pd = to_double(p, N), *md = to_double(m, N), *vd = to_double(v, N);
        double *gd = to_double(grad, N);
        zl_adamw_args args = {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps, .weight_decay = wd,
                              .bias_correction1 = 1 - pow(b1, STEP),
                              .bias_correction2 = 1 - pow(b2, STEP),
                              .grad_scale = 1 / loss_scale, .adamw_mode = mode};
        ops->adamw(ops, p, m, v, grad, ZL_F32, NULL, ZL_F32, N, &args);
        adam_step_d(pd, md, vd, gd, N, lr, b1, b2, eps, wd, STEP, 1 / loss_scale, mode);
        const char *name = mode ? "adamw" : "adam";
        char label[32];
        snprintf(label, sizeof label, "%s param", name);
        expect_close(label, p, pd, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
        snprintf(label, sizeof label, "%s m", name);
        expect_close(label, m, md, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
        snprintf(label, sizeof label, "%s v", name);
        expect_close(label, v, vd, N, TOL_FWD_RTOL, 1e-10); /* v ~ 1e-3: absolute floor lower */
        free(p), free(m), free(v), free(grad), free(pd), free(md), free(vd), free(gd);
    }
}
END_TEST

START_TEST(test_ops_ref_adamw_first_step_is_sign_of_gradient)
{
    /* From m = v = 0 with bias correction, mhat = g and vhat = g^2, so the step is
     * lr * g/(|g| + eps) ~ lr * sign(g): p1 = p0 - lr sign(g) - lr wd p0 (AdamW). Classic
     * Adam folds the decay into g first: p1 = p0 - lr sign(g + wd p0). Element 1 has
     * g = 0.05, wd p0 = 0.2 * -0.5 = -0.1, so the two modes step in opposite directions. */
    const float lr = 0.01f, wd = 0.2f, b1 = 0.9f, b2 = 0.95f;
    const float p0[3] = {1.0f, -0.5f, 2.0f}, g[3] = {-3.0f, 0.05f, 0.5f};
    for (int mode = 0; mode < 2; mode++) {
        float p[3], m[3] = {0}, v[3] = {0}, scaled[3];
        for (int i = 0; i < 3; i++) p[i] = p0[i], scaled[i] = g[i] * 8; /* loss scale 8 */
        zl_adamw_args args = {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = 1e-12f,
                              .weight_decay = wd, .bias_correction1 = 1 - b1,
                              .bias_correction2 = 1 - b2, .grad_scale = 0.125f,
                              .adamw_mode = mode};
        ops->adamw(ops, p, m, v, scaled, ZL_F32, NULL, ZL_F32, 3, &args);
        for (int i = 0; i < 3; i++) {
            double ge = mode ? g[i] : g[i] + wd * p0[i];
            double want = p0[i] - lr * (ge > 0 ? 1 : -1) - (mode ? lr * wd * p0[i] : 0);
            ck_assert_msg(fabs(p[i] - want) < 1e-6, "mode %d p[%d] = %.9g, want %.9g", mode, i,
                          p[i], want);
            ck_assert(fabs(m[i] - (1 - b1) * ge) < 1e-6);
            ck_assert(fabs(v[i] - (1 - b2) * ge * ge) < 1e-6);
        }
        /* the direction of element 1 tells the modes apart */
        ck_assert(mode ? p[1] < p0[1] : p[1] > p0[1]);
    }
}
END_TEST

/* ---- vector ops ------------------------------------------------------------------- */

START_TEST(test_ops_ref_residual_aliasing)
{
    enum { N = 11 };
    float *a = frand(N, 31, -1, 1), *b = frand(N, 32, -1, 1), *out = falloc(N);
    double want[N];
    for (int i = 0; i < N; i++) want[i] = (double)a[i] + b[i];
    ops->residual_forward(ops, out, a, b, N);
    expect_close("residual", out, want, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
    ops->residual_forward(ops, a, a, b, N); /* in place, the residual stream's usual form */
    expect_close("residual out=a", a, want, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
    for (int i = 0; i < N; i++) want[i] += b[i];
    ops->residual_forward(ops, b, a, b, N);
    expect_close("residual out=b", b, want, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
    free(a), free(b), free(out);
}
END_TEST

START_TEST(test_ops_ref_sumsq_accumulates_in_double)
{
    /* 4096^2 = 2^24: an f32 sum would stay at 2^24 when adding each 1 */
    enum { N = 1001 };
    float *x = falloc(N);
    x[0] = 4096.0f;
    for (int i = 1; i < N; i++) x[i] = (i % 2) ? 1.0f : -1.0f;
    ck_assert(ops->sumsq(ops, x, N) == 16777216.0 + 1000.0);
    ck_assert(ops->sumsq(ops, x, 0) == 0.0);

    float *y = frand(37, 33, -3, 3);
    double want = 0;
    for (int i = 36; i >= 0; i--) want += (double)y[i] * y[i]; /* other order */
    ck_assert(fabs(ops->sumsq(ops, y, 37) - want) <= 1e-12 * want);
    free(x), free(y);
}
END_TEST

START_TEST(test_ops_ref_nonfinite)
{
    float x[5] = {FLT_MAX, -FLT_MAX, -0.0f, FLT_MIN / 4 /* subnormal */, 1.0f};
    ck_assert(!ops->nonfinite(ops, x, 5));
    ck_assert(!ops->nonfinite(ops, x, 0));
    x[4] = INFINITY; /* the last element is looked at */
    ck_assert(ops->nonfinite(ops, x, 5));
    ck_assert(!ops->nonfinite(ops, x, 4));
    x[4] = 1.0f, x[0] = -INFINITY;
    ck_assert(ops->nonfinite(ops, x, 5));
    x[0] = NAN;
    ck_assert(ops->nonfinite(ops, x, 1));
}
END_TEST

START_TEST(test_ops_ref_scale_axpy)
{
    enum { N = 13 };
    float *x = frand(N, 34, -2, 2), *y = frand(N, 35, -2, 2);
    double want[N];
    for (int i = 0; i < N; i++) want[i] = y[i] + -0.3 * (double)x[i];
    ops->axpy(ops, y, -0.3f, x, N);
    expect_close("axpy", y, want, N, TOL_FWD_RTOL, TOL_FWD_ATOL);
    for (int i = 0; i < N; i++) want[i] = x[i] * (double)(1.0f / 1024);
    ops->scale(ops, x, 1.0f / 1024, N); /* a power of two: exact */
    for (int i = 0; i < N; i++) ck_assert(x[i] == (float)want[i]);
    free(x), free(y);
}
END_TEST

START_TEST(test_ops_ref_cast_bit_patterns)
{
    /* f32 -> f16, patterns worked out by hand: 1, -2, the largest half, 65520 (halfway to
     * 65536, ties to even -> 2^16 -> overflows to inf), 1e-7 (1.68 x 2^-24: subnormal 2),
     * 1 + 2^-11 (tie, down to even), 1 + 3*2^-11 (tie, up to even) */
    const float f[7] = {1.0f, -2.0f, 65504.0f, 65520.0f, 1e-7f, 1.0f + 0x1p-11f, 1.0f + 0x3p-11f};
    const uint16_t h_want[7] = {0x3C00, 0xC000, 0x7BFF, 0x7C00, 0x0002, 0x3C00, 0x3C02};
    uint16_t h[7];
    ops->cast(ops, h, ZL_F16, f, ZL_F32, 7);
    for (int i = 0; i < 7; i++) ck_assert_msg(h[i] == h_want[i], "f16[%d] = %#x", i, h[i]);

    /* f32 -> bf16: 1, a tie down to even, a tie up to even, -0 */
    const float fb[4] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f, -0.0f};
    const uint16_t b_want[4] = {0x3F80, 0x3F80, 0x3F82, 0x8000};
    uint16_t bb[4];
    ops->cast(ops, bb, ZL_BF16, fb, ZL_F32, 4);
    for (int i = 0; i < 4; i++) ck_assert_msg(bb[i] == b_want[i], "bf16[%d] = %#x", i, bb[i]);

    /* f16 -> f32: 0x3555 = 2^-2 * (1 + 341/1024) = 0.333251953125, the smallest subnormal */
    const uint16_t hs[3] = {0x3555, 0x0001, 0x7C00};
    float back[3];
    ops->cast(ops, back, ZL_F32, hs, ZL_F16, 3);
    ck_assert(back[0] == 0.333251953125f && back[1] == 0x1p-24f && isinf(back[2]));

    /* f16 -> bf16: 0.333251953125 is f32 0x3EAAA000; its low half 0xA000 > 0x8000 rounds up */
    uint16_t hb[1];
    ops->cast(ops, hb, ZL_BF16, hs, ZL_F16, 1);
    ck_assert_msg(hb[0] == 0x3EAB, "bf16 %#x", hb[0]);
    /* bf16 -> f16: 1.0 and 2^16 (0x4780), which does not fit in a half */
    const uint16_t bs[2] = {0x3F80, 0x4780};
    uint16_t hh[2];
    ops->cast(ops, hh, ZL_F16, bs, ZL_BF16, 2);
    ck_assert(hh[0] == 0x3C00 && hh[1] == 0x7C00);
    /* same type: a copy */
    float same[7];
    ops->cast(ops, same, ZL_F32, f, ZL_F32, 7);
    ck_assert(!memcmp(same, f, sizeof f));
}
END_TEST

static Suite *ops_ref_suite(void)
{
    Suite *s = suite_create("ops_ref");
    TCase *tc = tcase_create("ref");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_ops_ref_table_is_complete);
    tcase_add_test(tc, test_ops_ref_gemm_forward_transposes_and_strides);
    tcase_add_test(tc, test_ops_ref_gemm_backward_matches_finite_differences);
    tcase_add_test(tc, test_ops_ref_gemm_degenerate_sizes);
    tcase_add_test(tc, test_ops_ref_bias_forward_backward);
    tcase_add_test(tc, test_ops_ref_embedding_forward_backward);
    tcase_add_test(tc, test_ops_ref_layernorm_forward_backward);
    tcase_add_test(tc, test_ops_ref_attention_forward_backward);
    tcase_add_test(tc, test_ops_ref_attention_is_causal);
    tcase_add_test(tc, test_ops_ref_gelu_forward_backward);
    tcase_add_test(tc, test_ops_ref_crossentropy_forward_backward);
    tcase_add_test(tc, test_ops_ref_crossentropy_ignored_targets);
    tcase_add_test(tc, test_ops_ref_crossentropy_extreme_logits);
    tcase_add_test(tc, test_ops_ref_adamw_step_matches_double);
    tcase_add_test(tc, test_ops_ref_adamw_first_step_is_sign_of_gradient);
    tcase_add_test(tc, test_ops_ref_residual_aliasing);
    tcase_add_test(tc, test_ops_ref_sumsq_accumulates_in_double);
    tcase_add_test(tc, test_ops_ref_nonfinite);
    tcase_add_test(tc, test_ops_ref_scale_axpy);
    tcase_add_test(tc, test_ops_ref_cast_bit_patterns);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(ops_ref_suite)
