/* Lab 09: tensor parallelism (two ranks).
 *
 * check: every rank builds the DENSE layers from the same seed (the library's counter-based
 * rng, so any rank can draw any slice), computes the dense forward and backward in double,
 * takes its own slice of the weights, and runs the student's sharded layers; each rank's
 * slice of every result must equal the dense one's slice (all ranks together: the
 * gathered result), within max |err| <= 1e-5 (1 + max |dense|). Odd sizes split unevenly.
 * The allreduces are counted: 0/1 (column forward/backward), 1/0 (row), 1 (MLP forward).
 * demo: the student's MLP on a GPT-2-sized slice against the dense one; then the library's
 * own tensor-parallel training (tensor_parallel 2) against one rank: both losses, the
 * per-rank parameter bytes from the ledger, and a trace with the g/f allreduces. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

void tp_allreduce(lab09_tp *tp, float *buf, size_t n)
{
    tp->allreduces++;
    zl_comm_allreduce(tp->comm, buf, n, ZL_F32, ZL_REDUCE_SUM);
}

void tp_split(int n, int size, int rank, int *begin, int *count)
{
    int q = n / size, r = n % size;
    *count = q + (rank < r ? 1 : 0);
    *begin = rank * q + (rank < r ? rank : r);
}

/* A (rows, cols) matrix drawn from stream `stream` of the seed, scaled. */
static float *draw(uint64_t stream, size_t rows, size_t cols, float scale)
{
    float *m = malloc(rows * cols * sizeof *m + 1);
    for (size_t i = 0; i < rows * cols; i++) m[i] = scale * zl_rng_normal(1337, stream, i);
    return m;
}

/* Rows [r0, r0 + nr) of a (rows, cols) matrix; columns [c0, c0 + nc) of it. */
static float *rows_of(const float *m, size_t cols, int r0, int nr)
{
    float *s = malloc((size_t)nr * cols * sizeof *s + 1);
    memcpy(s, m + (size_t)r0 * cols, (size_t)nr * cols * sizeof *s);
    return s;
}

static float *cols_of(const float *m, size_t rows, size_t cols, int c0, int nc)
{
    float *s = malloc(rows * (size_t)nc * sizeof *s + 1);
    for (size_t i = 0; i < rows; i++)
        for (int j = 0; j < nc; j++) s[i * (size_t)nc + (size_t)j] = m[i * cols + (size_t)(c0 + j)];
    return s;
}

/* Dense reference in double: y (B, out) = x w^T + b; and the backward. */
static void dense_forward(double *y, const float *x, const float *w, const float *b, int B,
                          int in, int out)
{
    for (int i = 0; i < B; i++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++) s += (double)x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = s;
        }
}

static void dense_backward(double *dx, double *dw, double *db, const float *dy, const float *x,
                           const float *w, int B, int in, int out)
{
    for (int i = 0; i < B; i++)
        for (int k = 0; k < in; k++) {
            double s = 0;
            for (int o = 0; o < out; o++) s += (double)dy[(size_t)i * out + o] * w[(size_t)o * in + k];
            dx[(size_t)i * in + k] = s;
        }
    for (int o = 0; o < out; o++) {
        double sb = 0;
        for (int i = 0; i < B; i++) sb += dy[(size_t)i * out + o];
        db[o] = sb;
        for (int k = 0; k < in; k++) {
            double s = 0;
            for (int i = 0; i < B; i++) s += (double)dy[(size_t)i * out + o] * x[(size_t)i * in + k];
            dw[(size_t)o * in + k] = s;
        }
    }
}

/* The relative error of `got` (rows x nc, a block of columns c0.. of a (rows, cols) dense
 * matrix `ref`): max |got - ref| / (1 + max |ref|). */
static double block_err(const float *got, const double *ref, int rows, int cols, int c0, int nc)
{
    double e = 0, mx = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < nc; j++) {
            double r = ref[(size_t)i * cols + c0 + j];
            double d = fabs((double)got[(size_t)i * nc + j] - r);
            if (!(d <= e)) e = d; /* NaN sticks */
            if (fabs(r) > mx) mx = fabs(r);
        }
    return e / (1.0 + mx);
}

#define TOL 1e-5
#define TOL_TXT "<= 1e-5 (1+max|dense|)"

/* Grade one result: this rank's error, agreed over ranks (worst shown on rank 0). */
static void grade_err(lab *L, const char *item, int rc, double err)
{
    double worst = rc != 0 ? 1.0 : err;
    if (isnan(worst)) worst = INFINITY;
    zl_comm_allreduce(L->world, &worst, 1, ZL_F64, ZL_REDUCE_MAX);
    int any_todo = rc != 0;
    zl_comm_allreduce(L->world, &any_todo, 1, ZL_I32, ZL_REDUCE_MAX);
    if (any_todo)
        lab_check(L, item, false, TOL_TXT, "not written");
    else
        lab_check(L, item, worst <= TOL, TOL_TXT, "err %.2e", worst);
}

typedef struct counts {
    long col_f, col_b, row_f, row_b, mlp_f;
} counts;

/* One linear layer's column and row versions at (B, in, out), against the dense one. */
static void grade_linear(lab *L, lab09_tp *tp, int B, int in, int out, counts *n)
{
    char item[96];
    float *w = draw(1, (size_t)out, (size_t)in, 0.5f), *b = draw(2, (size_t)out, 1, 0.5f);
    float *x = draw(3, (size_t)B, (size_t)in, 1.0f), *dy = draw(4, (size_t)B, (size_t)out, 1.0f);
    double *y = malloc((size_t)B * out * sizeof *y), *dx = malloc((size_t)B * in * sizeof *dx);
    double *dw = malloc((size_t)out * in * sizeof *dw), *db = malloc((size_t)out * sizeof *db);
    dense_forward(y, x, w, b, B, in, out);
    dense_backward(dx, dw, db, dy, x, w, B, in, out);

    /* Column-parallel: this rank's rows of W, its slice of the outputs. */
    int o0, no;
    tp_split(out, tp->size, tp->rank, &o0, &no);
    float *wl = rows_of(w, (size_t)in, o0, no), *bl = rows_of(b, 1, o0, no);
    float *dyl = cols_of(dy, (size_t)B, (size_t)out, o0, no);
    float *yl = calloc((size_t)B * no + 1, sizeof *yl), *gx = calloc((size_t)B * in + 1, sizeof *gx);
    float *gw = calloc((size_t)no * in + 1, sizeof *gw), *gb = calloc((size_t)no + 1, sizeof *gb);
    long a0 = tp->allreduces;
    int rc = column_forward(tp, yl, x, wl, bl, B, in, no);
    n->col_f = tp->allreduces - a0;
    snprintf(item, sizeof item, "column forward y, %dx%d->%d", B, in, out);
    grade_err(L, item, rc, block_err(yl, y, B, out, o0, no));
    a0 = tp->allreduces;
    rc = column_backward(tp, gx, gw, gb, dyl, x, wl, B, in, no);
    n->col_b = tp->allreduces - a0;
    snprintf(item, sizeof item, "column backward dx, dW, db, %dx%d->%d", B, in, out);
    double e = block_err(gx, dx, B, in, 0, in);
    double e2 = block_err(gw, dw + (size_t)o0 * in, no, in, 0, in);
    double e3 = block_err(gb, db + o0, 1, no, 0, no);
    grade_err(L, item, rc, fmax(e, fmax(e2, e3)));
    free(wl), free(bl), free(dyl), free(yl), free(gx), free(gw), free(gb);

    /* Row-parallel: this rank's columns of W and slice of the input features. */
    int i0, ni;
    tp_split(in, tp->size, tp->rank, &i0, &ni);
    wl = cols_of(w, (size_t)out, (size_t)in, i0, ni);
    float *xl = cols_of(x, (size_t)B, (size_t)in, i0, ni);
    float *yw = calloc((size_t)B * out + 1, sizeof *yw), *gxl = calloc((size_t)B * ni + 1, sizeof *gxl);
    gw = calloc((size_t)out * ni + 1, sizeof *gw), gb = calloc((size_t)out + 1, sizeof *gb);
    a0 = tp->allreduces;
    rc = row_forward(tp, yw, xl, wl, b, B, ni, out);
    n->row_f = tp->allreduces - a0;
    snprintf(item, sizeof item, "row forward y, %dx%d->%d", B, in, out);
    grade_err(L, item, rc, block_err(yw, y, B, out, 0, out));
    a0 = tp->allreduces;
    rc = row_backward(tp, gxl, gw, gb, dy, xl, wl, B, ni, out);
    n->row_b = tp->allreduces - a0;
    snprintf(item, sizeof item, "row backward dx, dW, db, %dx%d->%d", B, in, out);
    e = block_err(gxl, dx, B, in, i0, ni);
    /* dw's block: columns i0.. of the dense (out, in) gradient */
    e2 = block_err(gw, dw, out, in, i0, ni);
    e3 = block_err(gb, db, 1, out, 0, out);
    grade_err(L, item, rc, fmax(e, fmax(e2, e3)));
    free(wl), free(xl), free(yw), free(gxl), free(gw), free(gb);
    free(w), free(b), free(x), free(dy), free(y), free(dx), free(dw), free(db);
}

static double gelu(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

/* The MLP at (B, C, H) against the dense one; returns this rank's error (rc through *rc). */
static double run_mlp(lab09_tp *tp, int B, int C, int H, long *allreduces, int *rc)
{
    float *w1 = draw(11, (size_t)H, (size_t)C, 1.0f / sqrtf((float)C)), *b1 = draw(12, (size_t)H, 1, 0.1f);
    float *w2 = draw(13, (size_t)C, (size_t)H, 1.0f / sqrtf((float)H)), *b2 = draw(14, (size_t)C, 1, 0.1f);
    float *x = draw(15, (size_t)B, (size_t)C, 1.0f);
    double *h = malloc((size_t)B * H * sizeof *h), *y = malloc((size_t)B * C * sizeof *y);
    dense_forward(h, x, w1, b1, B, C, H);
    float *a = malloc((size_t)B * H * sizeof *a);
    for (size_t i = 0; i < (size_t)B * H; i++) a[i] = (float)gelu(h[i]);
    dense_forward(y, a, w2, b2, B, H, C);
    int h0, nh;
    tp_split(H, tp->size, tp->rank, &h0, &nh);
    float *w1l = rows_of(w1, (size_t)C, h0, nh), *b1l = rows_of(b1, 1, h0, nh);
    float *w2l = cols_of(w2, (size_t)C, (size_t)H, h0, nh);
    float *yl = calloc((size_t)B * C + 1, sizeof *yl), *hl = calloc((size_t)B * nh + 1, sizeof *hl);
    float *al = calloc((size_t)B * nh + 1, sizeof *al);
    long a0 = tp->allreduces;
    *rc = mlp_forward(tp, yl, hl, al, x, w1l, b1l, w2l, b2, B, C, nh);
    *allreduces = tp->allreduces - a0;
    double e = fmax(block_err(yl, y, B, C, 0, C), block_err(hl, h, B, H, h0, nh));
    free(w1), free(b1), free(w2), free(b2), free(x), free(h), free(y), free(a);
    free(w1l), free(b1l), free(w2l), free(yl), free(hl), free(al);
    return e;
}

static void grade(lab *L, lab09_tp *tp)
{
    counts n = {-1, -1, -1, -1, -1};
    grade_linear(L, tp, 5, 7, 11, &n);    /* odd: 11 outputs = 6 + 5, 7 inputs = 4 + 3 */
    counts n2 = n;
    grade_linear(L, tp, 8, 64, 96, &n2);  /* even, GPT-2-like shapes */
    int rc;
    char item[96];
    snprintf(item, sizeof item, "MLP forward y, h, 5x9, H=35 (uneven)");
    double e = run_mlp(tp, 5, 9, 35, &n.mlp_f, &rc);
    grade_err(L, item, rc, e);
    snprintf(item, sizeof item, "MLP forward y, h, 8x64, H=256");
    e = run_mlp(tp, 8, 64, 256, &n2.mlp_f, &rc);
    grade_err(L, item, rc, e);
    /* The allreduces per call: Megatron's f and g, one each per MLP (and per attention). */
    bool ok = n.col_f == 0 && n.col_b == 1 && n.row_f == 1 && n.row_b == 0 && n.mlp_f == 1 &&
              memcmp(&n, &n2, sizeof n) == 0;
    lab_check(L, "allreduces: col f/b, row f/b, MLP f", ok, "= 0/1, 1/0, 1",
              "%ld/%ld, %ld/%ld, %ld", n.col_f, n.col_b, n.row_f, n.row_b, n.mlp_f);
}

/* ---------------------------------------------------------------- demo */

static zl_status start(lab *L, zl_run *run, zl_comm *comm, int tp, const char *trace)
{
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 4, \"steps_per_print\": 1000000,"
                    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}}}";
    o.config_name = "lab09 config";
    o.model = "lab";
    o.seq_len = 64;
    o.steps = 10;
    o.device = "v100-16gb";
    o.comm = comm;
    o.tensor_parallel = tp;
    o.trace = trace;
    memset(run, 0, sizeof *run);
    zl_status st = zl_run_init(run, &o);
    if (st != ZL_OK) lab_printf(L, "  cannot start (tp %d): %s\n", tp, zl_last_error());
    return st;
}

static void demo(lab *L, lab09_tp *tp)
{
    long ar = 0;
    int rc;
    double e = run_mlp(tp, 64, 768 / 4, 768, &ar, &rc);
    zl_comm_allreduce(L->world, &e, 1, ZL_F64, ZL_REDUCE_MAX);
    if (rc != 0)
        lab_printf(L, "\n  Your MLP: not written yet (mlp_forward)\n");
    else
        lab_printf(L, "\n  Your MLP (64 tokens, C 192, H 768, on %d ranks): error %.2e against the dense one, "
                      "%ld allreduce(s)\n", L->size, e, ar);
    lab_csv(L, "student_mlp.error", rc ? NAN : e, "relative");

    /* The library's tensor-parallel training against one rank. */
    zl_run tp2, one;
    char trace[640];
    snprintf(trace, sizeof trace, "%s", lab_path(L, "trace.json"));
    if (start(L, &tp2, L->world, L->size, trace) != ZL_OK) {
        zl_run_free(&tp2);
        return;
    }
    /* One rank: every process trains the whole model alone (the same run, replicated). */
    if (start(L, &one, NULL, 0, NULL) != ZL_OK) {
        zl_run_free(&tp2);
        zl_run_free(&one);
        return;
    }
    lab_printf(L, "\n  The lab model trained with tensor_parallel %d vs one rank (same seed, same data):\n",
               L->size);
    lab_printf(L, "  %4s %12s %12s %10s\n", "step", "tp loss", "1-rank loss", "|diff|");
    for (long s = 1; s <= tp2.steps; s++) {
        float a, b;
        if (zl_run_step(&tp2, &a) != ZL_OK || zl_run_step(&one, &b) != ZL_OK) {
            lab_printf(L, "  step %ld failed: %s\n", s, zl_last_error());
            break;
        }
        lab_printf(L, "  %4ld %12.6f %12.6f %10.2e\n", s, (double)a, (double)b, fabs((double)a - b));
        char name[64];
        snprintf(name, sizeof name, "step%ld.loss.tp%d", s, L->size), lab_csv(L, name, a, "");
        snprintf(name, sizeof name, "step%ld.loss.one_rank", s), lab_csv(L, name, b, "");
    }
    /* Per-rank parameter bytes: each rank holds its slice of every split matrix, and the
     * whole of what is not split (embeddings, LayerNorms, the row layers' biases). */
    double p[2] = {(double)zl_ledger_current(&tp2.device.ledger, "param"), 0};
    double all[8] = {0};
    if (L->rank < 8) all[L->rank] = p[0];
    zl_comm_allreduce(L->world, all, 8, ZL_F64, ZL_REDUCE_SUM);
    double whole = (double)zl_ledger_current(&one.device.ledger, "param");
    lab_printf(L, "\n  parameter bytes (ledger tag \"param\"): one rank %.0f", whole);
    lab_csv(L, "param_bytes.one_rank", whole, "B");
    for (int r = 0; r < L->size && r < 8; r++) {
        lab_printf(L, ", tp rank %d %.0f", r, all[r]);
        char name[64];
        snprintf(name, sizeof name, "param_bytes.tp_rank%d", r);
        lab_csv(L, name, all[r], "B");
    }
    /* What the split should give: the blocks' four matrices, the column layers' biases
     * and the vocabulary-parallel token embedding (wte, tied with the head) are cut in
     * `size`; the position embedding, the LayerNorms and the row layers' biases are whole. */
    const zl_model *m = zl_engine_model(one.engine);
    size_t split = 0;
    for (int i = 0; i < m->num_params; i++) {
        const char *nm = m->params[i].name;
        if (strstr(nm, "c_attn.") || strstr(nm, "c_fc.") || strncmp(nm, "wte", 3) == 0 ||
            (strstr(nm, "c_proj.weight") && strncmp(nm, "h.", 2) == 0))
            split += m->params[i].numel;
    }
    lab_printf(L, "\n  split (c_attn, c_fc, both c_proj weights, wte): %zu of %zu parameters; expected per rank "
                  "%.0f B\n", split, m->params_numel,
               4.0 * ((double)m->params_numel - (double)split + (double)split / L->size));
    if (zl_run_write_trace(&tp2, trace) == ZL_OK)
        lab_printf(L, "  trace (tp, last step): %s: the \"all_reduce\" spans on the comm stream are g "
                      "(forward) and f (backward),\n    plus the vocabulary-parallel embedding's and loss's\n", trace);
    zl_run_free(&tp2);
    zl_run_free(&one);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "09", "Tensor parallelism: column and row layers");
    if (rc != 0) return rc;
    lab09_tp tp = {.comm = L.world, .ops = zl_ops_find("cpu"), .rank = L.rank, .size = L.size};
    if (!tp.ops) tp.ops = zl_ops_find("ref");
    if (L.check)
        grade(&L, &tp);
    else
        demo(&L, &tp);
    return lab_end(&L);
}
