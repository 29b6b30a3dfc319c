/* Lab 02: backward by hand (one rank).
 *
 * check: the student's LayerNorm and Linear backward against (a) central finite
 * differences of the forward in double precision and (b) the library's ref ops
 * (backends/ops.h: layernorm_backward; gemm and bias_backward composed as
 * src/model/linear.c does), on small odd shapes, with non-zero starting gradients (so
 * accumulation is checked); and central_difference on a cubic, whose central difference
 * is known exactly.
 * demo: the comparison table, the finite difference's error against the step h (the
 * truncation/rounding V), and two simulated training steps of the lab model for the
 * trace. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

/* ---- data ------------------------------------------------------------------------ */

static unsigned long long rng_state = 88172645463325252ULL;
static double urand(void) /* xorshift64: uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / (double)(1ULL << 52) - 1.0;
}
static float *frand(size_t n, double scale)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(scale * urand());
    return p;
}
static float *fcopy(const float *a, size_t n)
{
    float *p = malloc(n * sizeof *p);
    memcpy(p, a, n * sizeof *p);
    return p;
}

/* ---- the forwards in double, as scalar losses L = sum(dout * y) ------------------- */

/* LayerNorm: the parameters in one vector v = [x (N*C) | gamma (C) | beta (C)]. */
typedef struct ln_ctx {
    int N, C;
    const double *dout; /* (N,C) */
} ln_ctx;

static double ln_loss(void *p, const double *v)
{
    const ln_ctx *c = p;
    int N = c->N, C = c->C;
    const double *x = v, *gamma = v + (size_t)N * C, *beta = gamma + C;
    double L = 0;
    for (int n = 0; n < N; n++) {
        const double *xr = x + (size_t)n * C;
        double m = 0, var = 0;
        for (int i = 0; i < C; i++) m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++) var += (xr[i] - m) * (xr[i] - m);
        var /= C;
        double s = 1.0 / sqrt(var + 1e-5);
        for (int i = 0; i < C; i++)
            L += c->dout[(size_t)n * C + i] * ((xr[i] - m) * s * gamma[i] + beta[i]);
    }
    return L;
}

/* The same loss computed in float (for the demo's step-size table). */
static double ln_loss_f32(void *p, const double *v)
{
    const ln_ctx *c = p;
    int N = c->N, C = c->C;
    const double *x = v, *gamma = v + (size_t)N * C, *beta = gamma + C;
    float L = 0;
    for (int n = 0; n < N; n++) {
        const double *xr = x + (size_t)n * C;
        float m = 0, var = 0;
        for (int i = 0; i < C; i++) m += (float)xr[i];
        m /= C;
        for (int i = 0; i < C; i++) var += ((float)xr[i] - m) * ((float)xr[i] - m);
        var /= C;
        float s = 1.0f / sqrtf(var + 1e-5f);
        for (int i = 0; i < C; i++)
            L += (float)c->dout[(size_t)n * C + i] *
                 (((float)xr[i] - m) * s * (float)gamma[i] + (float)beta[i]);
    }
    return L;
}

/* Linear: v = [x (N*IC) | W (OC*IC) | b (OC)]. */
typedef struct lin_ctx {
    int N, IC, OC;
    const double *dout; /* (N,OC) */
} lin_ctx;

static double lin_loss(void *p, const double *v)
{
    const lin_ctx *c = p;
    int N = c->N, IC = c->IC, OC = c->OC;
    const double *x = v, *W = v + (size_t)N * IC, *b = W + (size_t)OC * IC;
    double L = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double y = b[o];
            for (int i = 0; i < IC; i++) y += x[(size_t)n * IC + i] * W[(size_t)o * IC + i];
            L += c->dout[(size_t)n * OC + o] * y;
        }
    return L;
}

/* The lab's own central difference (the oracle; the student writes one too). */
static double fd(scalar_fn f, void *ctx, double *v, size_t i, double h)
{
    double v0 = v[i];
    v[i] = v0 + h;
    double fp = f(ctx, v);
    v[i] = v0 - h;
    double fm = f(ctx, v);
    v[i] = v0;
    return (fp - fm) / (2 * h);
}

/* Every coordinate's derivative: grad[i] = dL/dv_i, step h relative to the value's scale. */
static void fd_all(scalar_fn f, void *ctx, double *v, size_t n, double *grad)
{
    for (size_t i = 0; i < n; i++) grad[i] = fd(f, ctx, v, i, 1e-6);
}

/* ---- comparing ------------------------------------------------------------------- */

/* max |a - b|, and that over max |b| (the tensor's scale: relative error). got holds the
 * student's outputs, init what they started from (the accumulated-into values; NULL: 0),
 * want the gradient itself (in double) or the library's outputs (want_f, with init). */
typedef struct err { double abs, rel; } err;

static err compare(const float *got, const float *init, const double *want, const float *want_f,
                   size_t n)
{
    double maxd = 0, maxw = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w;
        if (want) {
            g -= init ? init[i] : 0.0;
            w = want[i];
        } else {
            w = want_f[i];
        }
        if (!isfinite(g)) maxd = INFINITY;
        else if (fabs(g - w) > maxd) maxd = fabs(g - w);
        if (fabs(w) > maxw) maxw = fabs(w);
    }
    err e = {maxd, maxd / (maxw > 0 ? maxw : 1)};
    return e;
}

#define FD_TOL 1e-5  /* float arithmetic (~1e-7 measured) against double: 100x margin */
#define LIB_TOL 1e-5 /* the library's f32 kernels: the same formula, another summation order */

/* ---- one LayerNorm case ---------------------------------------------------------- */

typedef struct ln_case {
    int N, C;
    float *x, *gamma, *beta, *dout, *mean, *rstd, *out;
    float *dx0, *dg0, *db0; /* starting gradients */
    double *fd;             /* [dx | dgamma | dbeta] by finite differences */
    float *lib_dx, *lib_dg, *lib_db;
} ln_case;

static void ln_setup(ln_case *k, int N, int C)
{
    memset(k, 0, sizeof *k);
    k->N = N, k->C = C;
    size_t NC = (size_t)N * C;
    k->x = frand(NC, 2.0);
    k->gamma = frand(C, 1.0);
    k->beta = frand(C, 1.0);
    k->dout = frand(NC, 1.0);
    for (int i = 0; i < C; i++) k->gamma[i] += 1.0f; /* around 1, as trained LayerNorms are */
    k->dx0 = frand(NC, 0.5);
    k->dg0 = frand(C, 0.5);
    k->db0 = frand(C, 0.5);
    k->mean = malloc(N * sizeof(float));
    k->rstd = malloc(N * sizeof(float));
    k->out = malloc(NC * sizeof(float));
    const zl_ops *ref = &zl_ops_ref;
    ref->layernorm_forward(ref, k->out, k->mean, k->rstd, k->x, k->gamma, k->beta, N, C);
    /* finite differences of the double forward at the same (float) point */
    size_t nv = NC + 2 * (size_t)C;
    double *v = malloc(nv * sizeof *v), *d = malloc(NC * sizeof *d);
    for (size_t i = 0; i < NC; i++) v[i] = k->x[i], d[i] = k->dout[i];
    for (int i = 0; i < C; i++) v[NC + i] = k->gamma[i], v[NC + C + i] = k->beta[i];
    ln_ctx c = {N, C, d};
    k->fd = malloc(nv * sizeof(double));
    fd_all(ln_loss, &c, v, nv, k->fd);
    free(v);
    free(d);
    /* the library's ref op, from the same starting gradients */
    k->lib_dx = fcopy(k->dx0, NC);
    k->lib_dg = fcopy(k->dg0, C);
    k->lib_db = fcopy(k->db0, C);
    ref->layernorm_backward(ref, k->lib_dx, k->lib_dg, k->lib_db, k->dout, k->x, k->gamma,
                            k->mean, k->rstd, N, C);
}

static void ln_free(ln_case *k)
{
    float *f[] = {k->x, k->gamma, k->beta, k->dout, k->mean, k->rstd, k->out, k->dx0, k->dg0,
                  k->db0, k->lib_dx, k->lib_dg, k->lib_db};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
    free(k->fd);
}

/* The student's LayerNorm backward on case k: rc, and the errors of dx, dgamma, dbeta
 * against finite differences (fd[]) and the library (lib[]). */
static int ln_student(const ln_case *k, err fde[3], err libe[3])
{
    size_t NC = (size_t)k->N * k->C;
    float *dx = fcopy(k->dx0, NC), *dg = fcopy(k->dg0, k->C), *db = fcopy(k->db0, k->C);
    int rc = layernorm_backward(dx, dg, db, k->dout, k->x, k->gamma, k->mean, k->rstd, k->N, k->C);
    if (rc == 0) {
        fde[0] = compare(dx, k->dx0, k->fd, NULL, NC);
        fde[1] = compare(dg, k->dg0, k->fd + NC, NULL, k->C);
        fde[2] = compare(db, k->db0, k->fd + NC + k->C, NULL, k->C);
        libe[0] = compare(dx, NULL, NULL, k->lib_dx, NC);
        libe[1] = compare(dg, NULL, NULL, k->lib_dg, k->C);
        libe[2] = compare(db, NULL, NULL, k->lib_db, k->C);
    }
    free(dx), free(dg), free(db);
    return rc;
}

/* ---- one Linear case --------------------------------------------------------------- */

typedef struct lin_case {
    int N, IC, OC;
    float *x, *W, *dout;
    float *dx0, *dW0, *db0;
    double *fd; /* [dx | dW | db] */
    float *lib_dx, *lib_dW, *lib_db;
} lin_case;

static void lin_setup(lin_case *k, int N, int IC, int OC)
{
    memset(k, 0, sizeof *k);
    k->N = N, k->IC = IC, k->OC = OC;
    size_t nx = (size_t)N * IC, nw = (size_t)OC * IC, ny = (size_t)N * OC;
    k->x = frand(nx, 1.0);
    k->W = frand(nw, 0.5);
    float *b = frand(OC, 0.5);
    k->dout = frand(ny, 1.0);
    k->dx0 = frand(nx, 0.5); /* overwritten by the backward: garbage to start from */
    k->dW0 = frand(nw, 0.5);
    k->db0 = frand(OC, 0.5);
    size_t nv = nx + nw + OC;
    double *v = malloc(nv * sizeof *v), *d = malloc(ny * sizeof *d);
    for (size_t i = 0; i < nx; i++) v[i] = k->x[i];
    for (size_t i = 0; i < nw; i++) v[nx + i] = k->W[i];
    for (int i = 0; i < OC; i++) v[nx + nw + i] = b[i];
    for (size_t i = 0; i < ny; i++) d[i] = k->dout[i];
    lin_ctx c = {N, IC, OC, d};
    k->fd = malloc(nv * sizeof(double));
    fd_all(lin_loss, &c, v, nv, k->fd);
    free(v), free(d), free(b);
    /* the library: src/model/linear.c's zl__linear_backward on the ref backend */
    const zl_ops *ref = &zl_ops_ref;
    k->lib_dx = fcopy(k->dx0, nx);
    k->lib_dW = fcopy(k->dW0, nw);
    k->lib_db = fcopy(k->db0, OC);
    /* dx (N,IC) = dout (N,OC) @ W (OC,IC) */
    ref->gemm(ref, k->lib_dx, k->dout, k->W, N, IC, OC, OC, IC, IC, false, false, 1.0f, 0.0f);
    /* dW (OC,IC) += dout^T @ x */
    ref->gemm(ref, k->lib_dW, k->dout, k->x, OC, IC, N, OC, IC, IC, true, false, 1.0f, 1.0f);
    ref->bias_backward(ref, k->lib_db, k->dout, N, OC);
}

static void lin_free(lin_case *k)
{
    float *f[] = {k->x, k->W, k->dout, k->dx0, k->dW0, k->db0, k->lib_dx, k->lib_dW, k->lib_db};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
    free(k->fd);
}

static int lin_student(const lin_case *k, err fde[3], err libe[3])
{
    size_t nx = (size_t)k->N * k->IC, nw = (size_t)k->OC * k->IC;
    float *dx = fcopy(k->dx0, nx), *dW = fcopy(k->dW0, nw), *db = fcopy(k->db0, k->OC);
    int rc = linear_backward(dx, dW, db, k->dout, k->x, k->W, k->N, k->IC, k->OC);
    if (rc == 0) {
        fde[0] = compare(dx, NULL, k->fd, NULL, nx); /* overwritten: nothing to subtract */
        fde[1] = compare(dW, k->dW0, k->fd + nx, NULL, nw);
        fde[2] = compare(db, k->db0, k->fd + nx + nw, NULL, k->OC);
        libe[0] = compare(dx, NULL, NULL, k->lib_dx, nx);
        libe[1] = compare(dW, NULL, NULL, k->lib_dW, nw);
        libe[2] = compare(db, NULL, NULL, k->lib_db, k->OC);
    }
    free(dx), free(dW), free(db);
    return rc;
}

/* ---- check ------------------------------------------------------------------------- */

static void grade_rows(lab *L, const char *what, int rc, const char *const names[3],
                       const err fde[3], const err libe[3])
{
    char item[96];
    for (int t = 0; t < 3; t++) {
        snprintf(item, sizeof item, "%s %s vs finite diff.", what, names[t]);
        if (rc != 0) lab_check(L, item, false, "rel err < 1e-5", "not written");
        else lab_check(L, item, fde[t].rel < FD_TOL, "rel err < 1e-5", "%.2e", fde[t].rel);
        snprintf(item, sizeof item, "%s %s vs library", what, names[t]);
        if (rc != 0) lab_check(L, item, false, "rel err < 1e-5", "not written");
        else lab_check(L, item, libe[t].rel < LIB_TOL, "rel err < 1e-5", "%.2e", libe[t].rel);
    }
}

static double cubic(void *ctx, const double *x)
{
    (void)ctx;
    return x[0] * x[0] * x[0] + 2 * x[1];
}

static void grade(lab *L)
{
    static const char *const ln_names[3] = {"dx", "dgamma", "dbeta"};
    static const char *const lin_names[3] = {"dx", "dW", "db"};
    const int ln_shapes[2][2] = {{7, 13}, {3, 64}};
    for (int s = 0; s < 2; s++) {
        ln_case k;
        ln_setup(&k, ln_shapes[s][0], ln_shapes[s][1]);
        err fde[3], libe[3];
        int rc = ln_student(&k, fde, libe);
        char what[48];
        snprintf(what, sizeof what, "LN (%d,%d)", k.N, k.C);
        grade_rows(L, what, rc, ln_names, fde, libe);
        ln_free(&k);
    }
    const int lin_shapes[2][3] = {{7, 13, 5}, {5, 24, 40}};
    for (int s = 0; s < 2; s++) {
        lin_case k;
        lin_setup(&k, lin_shapes[s][0], lin_shapes[s][1], lin_shapes[s][2]);
        err fde[3], libe[3];
        int rc = lin_student(&k, fde, libe);
        char what[48];
        snprintf(what, sizeof what, "Linear %dx%d->%d", k.N, k.IC, k.OC);
        grade_rows(L, what, rc, lin_names, fde, libe);
        lin_free(&k);
    }
    /* f = x0^3 + 2 x1: the central difference of x^3 is 3x^2 + h^2 exactly (a one-sided
     * one is 3x^2 + 3xh + h^2), of 2 x1 exactly 2. */
    double x[2] = {1.5, 0.3}, d = NAN;
    int rc = central_difference(cubic, NULL, x, 0, 0.1, &d);
    double want = 3 * 1.5 * 1.5 + 0.01;
    if (rc != 0) {
        lab_check(L, "central_difference of x^3 at 1.5, h 0.1", false, "6.76 (+- 1e-9)", "not written");
        lab_check(L, "central_difference leaves x as it was", false, "x = (1.5, 0.3)", "not written");
    } else {
        lab_check(L, "central_difference of x^3 at 1.5, h 0.1", fabs(d - want) < 1e-9,
                  "6.76 (+- 1e-9)", "%.10g", d);
        double d1 = NAN;
        int rc1 = central_difference(cubic, NULL, x, 1, 1e-3, &d1);
        lab_check(L, "central_difference leaves x as it was",
                  rc1 == 0 && x[0] == 1.5 && x[1] == 0.3 && fabs(d1 - 2) < 1e-9,
                  "x = (1.5, 0.3), d/dx1 = 2", "x = (%g, %g), %g", x[0], x[1], d1);
    }
}

/* ---- demo -------------------------------------------------------------------------- */

static void demo_table(lab *L)
{
    lab_printf(L, "  your backward against finite differences (double) and the library's ref ops\n");
    lab_printf(L, "    %-22s %-7s %12s %12s %12s\n", "layer", "tensor", "FD max abs", "FD max rel",
               "lib max rel");
    static const char *const ln_names[3] = {"dx", "dgamma", "dbeta"};
    static const char *const lin_names[3] = {"dx", "dW", "db"};
    ln_case a;
    ln_setup(&a, 7, 13);
    lin_case b;
    lin_setup(&b, 7, 13, 5);
    err fde[3], libe[3];
    for (int layer = 0; layer < 2; layer++) {
        int rc = layer == 0 ? ln_student(&a, fde, libe) : lin_student(&b, fde, libe);
        const char *name = layer == 0 ? "LayerNorm (7,13)" : "Linear (7,13)->(7,5)";
        if (rc != 0) {
            lab_printf(L, "    %-22s not written yet\n", name);
            continue;
        }
        for (int t = 0; t < 3; t++) {
            const char *tn = layer == 0 ? ln_names[t] : lin_names[t];
            lab_printf(L, "    %-22s %-7s %12.2e %12.2e %12.2e\n", name, tn, fde[t].abs, fde[t].rel,
                       libe[t].rel);
            char key[64];
            snprintf(key, sizeof key, "%s.%s.fd_max_abs", layer == 0 ? "layernorm" : "linear", tn);
            lab_csv(L, key, fde[t].abs, "");
            snprintf(key, sizeof key, "%s.%s.fd_max_rel", layer == 0 ? "layernorm" : "linear", tn);
            lab_csv(L, key, fde[t].rel, "");
            snprintf(key, sizeof key, "%s.%s.lib_max_rel", layer == 0 ? "layernorm" : "linear", tn);
            lab_csv(L, key, libe[t].rel, "");
        }
    }
    ln_free(&a);
    lin_free(&b);
}

static void demo_step_size(lab *L)
{
    /* dL/dx[0][3] of the LayerNorm loss at (7,13): the true value by a 5-point stencil
     * (error O(h^4)), then central (yours, if written) and one-sided differences in double,
     * and central differences of the loss computed in float. */
    int N = 7, C = 13;
    size_t NC = (size_t)N * C, nv = NC + 2 * (size_t)C, i = 3;
    double *v = malloc(nv * sizeof *v), *d = malloc(NC * sizeof *d);
    for (size_t k = 0; k < NC; k++) v[k] = 2 * urand(), d[k] = urand();
    for (int k = 0; k < C; k++) v[NC + k] = 1 + urand(), v[NC + C + k] = urand();
    ln_ctx c = {N, C, d};
    double h0 = 1e-3, x0 = v[i], f[4];
    const double off[4] = {-2, -1, 1, 2};
    for (int k = 0; k < 4; k++) {
        v[i] = x0 + off[k] * h0;
        f[k] = ln_loss(&c, v);
    }
    v[i] = x0;
    double truth = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h0);
    double probe = 0;
    bool mine = central_difference(ln_loss, &c, v, (int)i, 1e-4, &probe) == 0;
    lab_printf(L, "\n  finite-difference error against the step h (dL/dx of LayerNorm, true value "
                  "%.12f)%s\n", truth, mine ? "" : "\n  (central_difference not written: the lab's own)");
    lab_printf(L, "    %8s %16s %16s %16s\n", "h", "central (f64)", "one-sided (f64)", "central (f32)");
    for (int e = 1; e <= 13; e++) {
        double h = pow(10.0, -e), cen;
        if (mine) central_difference(ln_loss, &c, v, (int)i, h, &cen);
        else cen = fd(ln_loss, &c, v, i, h);
        double base = ln_loss(&c, v);
        v[i] = x0 + h;
        double one = (ln_loss(&c, v) - base) / h;
        v[i] = x0;
        double f32 = fd(ln_loss_f32, &c, v, i, h);
        double e1 = fabs(cen - truth), e2 = fabs(one - truth), e3 = fabs(f32 - truth);
        lab_printf(L, "    %8.0e %16.3e %16.3e %16.3e\n", h, e1, e2, e3);
        char key[64];
        snprintf(key, sizeof key, "h=1e-%d.central_f64_error", e);
        lab_csv(L, key, e1, "");
        snprintf(key, sizeof key, "h=1e-%d.onesided_f64_error", e);
        lab_csv(L, key, e2, "");
        snprintf(key, sizeof key, "h=1e-%d.central_f32_error", e);
        lab_csv(L, key, e3, "");
    }
    lab_printf(L, "    (large h: truncation error, h^2 for central, h for one-sided; small h: "
                  "rounding, eps/h)\n");
    free(v), free(d);
}

static void demo_train(lab *L)
{
    /* The lab model's LayerNorms and Linears, run by the library on a simulated V100:
     * two steps for the trace (the last step's kernels: forward, backward, AdamW). */
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 4, \"optimizer\": {\"type\": "
                    "\"AdamW\", \"params\": {\"lr\": 1e-3}}}";
    o.config_name = "lab02";
    o.model = "lab";
    o.steps = 2;
    o.device = "v100-16gb";
    char trace[640];
    snprintf(trace, sizeof trace, "%s", lab_path(L, "trace.json"));
    o.trace = trace;
    zl_run run;
    zl_status st = zl_run_init(&run, &o);
    float loss = 0;
    for (long s = 0; st == ZL_OK && s < run.steps; s++) st = zl_run_step(&run, &loss);
    if (st == ZL_OK) st = zl_run_write_trace(&run, trace);
    if (st != ZL_OK) {
        lab_printf(L, "  training failed: %s\n", zl_last_error());
    } else {
        double t = zl_timeline_now(&run.sim.timeline) - zl_timeline_now(&run.step_mark);
        lab_printf(L, "\n  lab model, 2 steps on a simulated V100-16GB: loss %.4f, last step "
                      "%.3f ms simulated, %.3g FLOPs a step; trace: %s\n",
                   loss, 1e3 * t, zl_run_step_flops(&run), trace);
        lab_csv(L, "train.loss", loss, "");
        lab_csv(L, "train.step_simulated", t, "s");
    }
    zl_run_free(&run);
}

static void demo(lab *L)
{
    demo_table(L);
    demo_step_size(L);
    demo_train(L);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "02", "Backward by hand");
    if (rc) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
