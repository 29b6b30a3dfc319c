/* Lab 06: ZeRO-1. `demo`: a bf16 model that does not fit a small simulated card at
 * stage 0 (the library's preflight refuses it, with its message) and fits at stage 1; the
 * per-rank memory ledger of both stages; a traced stage-1 run. `check`: the student's
 * partition and owned ranges against the library's, the optimizer-state bytes against
 * the ledger of a stage-1 engine, and the student's ZeRO-1 step loop against the engine's
 * ZeRO-1 weights after 3 steps. */
#include "lab.h"
#include "student.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 3
#define SMALL_CARD_BYTES ((size_t)2200000) /* between stage 1's and stage 0's need */

static const char *status_word(int rc) { return rc == LAB_NOT_DONE ? "not written" : "failed"; }

/* The config of the memory experiment: bf16 mixed precision (16-bit parameters and
 * gradients, fp32 master weights and Adam state), as the ZeRO paper counts. */
static void config_bf16(char *buf, size_t n, int stage)
{
    snprintf(buf, n,
             "{\"train_micro_batch_size_per_gpu\": 2, \"steps_per_print\": 1000,"
             " \"bf16\": {\"enabled\": true}, \"gradient_clipping\": 0.0,"
             " \"zero_optimization\": {\"stage\": %d},"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.001}}}",
             stage);
}

/* The config of the step loop: fp32 (so that the student's loop on fp32 buffers and the
 * engine's step are the same arithmetic), no clipping, constant lr. lr 0: the single-rank
 * engine that only computes gradients for the student's loop (its own step then changes
 * nothing: p - 0 x update = p). */
static void config_fp32(char *buf, size_t n, int stage, double lr)
{
    snprintf(buf, n,
             "{\"train_micro_batch_size_per_gpu\": 2, \"steps_per_print\": 1000,"
             " \"gradient_clipping\": 0.0, \"zero_optimization\": {\"stage\": %d},"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": %g}}}",
             stage, lr);
}

static void options(zl_run_options *o, const char *config, zl_comm *comm)
{
    zl_run_options_init(o);
    o->config_text = config;
    o->model = "lab";
    o->seq_len = 32;
    o->steps = STEPS;
    o->comm = comm;
}

/* ------------------------------------------------------------------ check: partition */

static void grade_partition(lab *L)
{
    static const size_t sizes[] = {1, 7, 64, 1001, 120576, 120577, 1000003};
    static const int Ns[] = {1, 2, 3, 4, 8, 64};
    int rc = 0;
    size_t cases = 0, bad = 0;
    char first_bad[96] = "";
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes && rc == 0; si++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns && rc == 0; ni++)
            for (int r = 0; r < Ns[ni] && rc == 0; r++) {
                zl_partition p;
                zl_partition_init(&p, sizes[si], Ns[ni], r);
                size_t padded = 0, begin = 0, end = 0;
                rc = zero1_partition(sizes[si], Ns[ni], r, &padded, &begin, &end);
                if (rc != 0) break;
                cases++;
                if (padded != p.padded_numel || begin != p.begin || end != p.end) {
                    if (bad++ == 0)
                        snprintf(first_bad, sizeof first_bad, " (first: n=%zu N=%d r=%d)",
                                 sizes[si], Ns[ni], r);
                }
            }
    if (rc != 0)
        lab_check(L, "zero1_partition = zl_partition_init", false, "all equal", "%s",
                  status_word(rc));
    else
        lab_check(L, "zero1_partition = zl_partition_init", bad == 0, "all equal",
                  "%zu of %zu differ%s", bad, cases, first_bad);
}

/* The model's parameter table as optimizer ranges (one per parameter). */
static int model_ranges(const zl_model *m, zl_param_range *out)
{
    for (int i = 0; i < m->num_params; i++) {
        out[i].offset = m->params[i].offset;
        out[i].numel = m->params[i].numel;
        out[i].decay = m->params[i].weight_decay;
    }
    return m->num_params;
}

static void grade_ranges(lab *L, const zl_model *m)
{
    int n = m->num_params;
    zl_param_range *in = malloc((size_t)n * sizeof *in), *want = malloc((size_t)n * sizeof *want),
                   *got = malloc((size_t)n * sizeof *got);
    model_ranges(m, in);
    int rc = 0;
    size_t cases = 0, bad = 0;
    for (int N = 1; N <= 4 && rc == 0; N++)
        for (int r = 0; r < N && rc == 0; r++) {
            zl_partition p;
            zl_partition_init(&p, m->params_numel, N, r);
            int nw = zl_param_ranges_clip(want, in, n, p.begin, p.end), ng = -1;
            memset(got, 0xff, (size_t)n * sizeof *got);
            rc = zero1_owned_ranges(in, n, p.begin, p.end, got, &ng);
            if (rc != 0) break;
            cases++;
            bool same = ng == nw;
            for (int k = 0; same && k < nw; k++)
                same = got[k].offset == want[k].offset && got[k].numel == want[k].numel &&
                       got[k].decay == want[k].decay;
            if (!same) bad++;
        }
    if (rc != 0)
        lab_check(L, "zero1_owned_ranges = zl_param_ranges_clip", false, "N = 1..4, every rank",
                  "%s", status_word(rc));
    else
        lab_check(L, "zero1_owned_ranges = zl_param_ranges_clip", bad == 0, "N = 1..4, every rank",
                  "%zu of %zu shards differ", bad, cases);
    free(in), free(want), free(got);
}

/* ------------------------------------------------------------------ ledger */

static size_t state_bytes(const zl_ledger *l)
{
    return zl_ledger_current(l, "master") + zl_ledger_current(l, "adam.m") +
           zl_ledger_current(l, "adam.v");
}

static void grade_state_bytes(lab *L)
{
    char config[512];
    config_bf16(config, sizeof config, 1);
    zl_run_options o;
    options(&o, config, L->world);
    zl_run run;
    zl_status st = zl_run_init(&run, &o);
    size_t ledger = 0, numel = 0, predicted = 0;
    int rc = LAB_NOT_DONE;
    if (st == ZL_OK) {
        ledger = state_bytes(&run.device.ledger);
        numel = zl_engine_model(run.engine)->params_numel;
        rc = zero1_state_bytes(numel, L->size, &predicted);
    } else {
        lab_printf(L, "  the bf16 ZeRO-1 run failed: %s\n", zl_last_error());
    }
    zl_run_free(&run);
    const char *item = "state bytes per rank = ledger (ZeRO-1)";
    if (st != ZL_OK) lab_check(L, item, false, "master+adam.m+adam.v", "no run");
    else if (rc != 0) lab_check(L, item, false, "master+adam.m+adam.v", "%s", status_word(rc));
    else
        lab_check(L, item, predicted == ledger, "= ledger master+adam.m+adam.v", "%zu B vs %zu B",
                  predicted, ledger);
    /* and stage 0 (N = 1 of the formula): the whole 12 Psi on every rank */
    size_t whole = 0;
    rc = zero1_state_bytes(numel, 1, &whole);
    config_bf16(config, sizeof config, 0);
    options(&o, config, L->world);
    st = zl_run_init(&run, &o);
    size_t ledger0 = st == ZL_OK ? state_bytes(&run.device.ledger) : 0;
    zl_run_free(&run);
    item = "state bytes, N = 1 = ledger (ZeRO-0)";
    if (st != ZL_OK) lab_check(L, item, false, "master+adam.m+adam.v", "no run");
    else if (rc != 0) lab_check(L, item, false, "master+adam.m+adam.v", "%s", status_word(rc));
    else
        lab_check(L, item, whole == ledger0, "= ledger master+adam.m+adam.v", "%zu B vs %zu B",
                  whole, ledger0);
}

/* ------------------------------------------------------------------ the step loop */

typedef struct observer {
    lab *L;
    zl_engine *e;
    zero1_state s;
    float *params, *grads; /* the student's flat buffers (padded) */
    int rc;
} observer;

static zl_status next_batch(void *ctx, int32_t *inputs, int32_t *targets)
{
    zl_loader_next(ctx, inputs, targets);
    return ZL_OK;
}

/* Before the (lr 0) engine's step: its gradients are this rank's local ones; the
 * student's step updates the student's flat parameters, which then become the engine's
 * for the next forward. */
static void before_step(void *ctx, const zl_instr *in)
{
    observer *ob = ctx;
    if (!in || in->kind != ZL_OPTIMIZER_STEP || ob->rc != 0) return;
    const zl_model *m = zl_engine_model(ob->e);
    memset(ob->grads, 0, ob->s.padded * sizeof(float));
    for (int i = 0; i < m->num_params; i++)
        memcpy(ob->grads + m->params[i].offset, m->grad_ptr[i], m->params[i].numel * sizeof(float));
    ob->rc = zero1_step(&ob->s, ob->params, ob->grads);
    if (ob->rc != 0) return;
    for (int i = 0; i < m->num_params; i++)
        memcpy(m->param_ptr[i], ob->params + m->params[i].offset, m->params[i].numel * sizeof(float));
}

static void grade_step(lab *L)
{
    const char *item = "zero1_step: weights = engine's ZeRO-1";
    const char *target = "max |diff| = 0, 3 steps";
    /* the library's 2-rank ZeRO-1 */
    char config[512];
    config_fp32(config, sizeof config, 1, 1e-3);
    zl_run_options o;
    options(&o, config, L->world);
    zl_run ref;
    float loss;
    zl_status st = zl_run_init(&ref, &o);
    for (int s = 0; st == ZL_OK && s < STEPS; s++) st = zl_run_step(&ref, &loss);
    size_t numel = st == ZL_OK ? zl_engine_model(ref.engine)->params_numel : 0;
    float *ref_w = st == ZL_OK ? malloc(numel * sizeof(float)) : NULL;
    if (st == ZL_OK) st = zl_engine_gather_params(ref.engine, ref_w);
    zl_optimizer_params op = ref.options.optimizer;
    int B = ref.loader.B, T = ref.loader.T;
    zl_run_free(&ref);
    if (st != ZL_OK) {
        lab_printf(L, "  the library's ZeRO-1 run failed: %s\n", zl_last_error());
        lab_check(L, item, false, target, "no reference");
        free(ref_w);
        return;
    }

    /* the student's loop: gradients from a single-rank engine on this rank's data shard */
    config_fp32(config, sizeof config, 0, 0.0);
    options(&o, config, NULL);
    zl_run run;
    observer ob = {.L = L};
    zl_device dev;
    zl_adamw adam;
    memset(&adam, 0, sizeof adam);
    zl_param_range *in = NULL, *own = NULL;
    double maxdiff = INFINITY;
    st = zl_run_init(&run, &o);
    if (st == ZL_OK) st = zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "student", 0);
    if (st == ZL_OK) {
        const zl_model *m = zl_engine_model(run.engine);
        zl_partition p;
        zl_partition_init(&p, m->params_numel, L->size, L->rank);
        ob.e = run.engine;
        ob.s.c = L->world;
        ob.s.padded = p.padded_numel, ob.s.begin = p.begin, ob.s.end = p.end;
        ob.s.lr = op.lr, ob.s.beta1 = op.beta1;
        in = malloc((size_t)m->num_params * sizeof *in);
        own = malloc((size_t)m->num_params * sizeof *own);
        model_ranges(m, in);
        ob.s.ranges = own;
        ob.s.nranges = zl_param_ranges_clip(own, in, m->num_params, p.begin, p.end);
        st = zl_adamw_init(&adam, &dev, p.end - p.begin, &op);
        ob.s.adam = &adam;
        ob.params = calloc(p.padded_numel, sizeof(float));
        ob.grads = calloc(p.padded_numel, sizeof(float));
        if (st == ZL_OK) st = zl_engine_gather_params(run.engine, ob.params);
        zl_loader ld;
        if (st == ZL_OK)
            st = zl_loader_init(&ld, run.dataset, B, T, L->rank, L->size);
        zl_engine_set_instr_observer(run.engine, before_step, &ob);
        for (int s = 0; st == ZL_OK && s < STEPS; s++)
            st = zl_engine_train_batch(run.engine, next_batch, &ld, &loss);
        if (st == ZL_OK && ob.rc == 0 && m->params_numel == numel) {
            maxdiff = 0;
            for (size_t k = 0; k < numel; k++)
                maxdiff = fmax(maxdiff, fabs((double)ob.params[k] - ref_w[k]));
        }
        zl_adamw_destroy(&adam);
    }
    if (st != ZL_OK) lab_printf(L, "  the student's loop failed: %s\n", zl_last_error());
    zl_run_free(&run);
    if (ob.rc != 0) lab_check(L, item, false, target, "%s", status_word(ob.rc));
    else lab_check(L, item, st == ZL_OK && maxdiff == 0.0, target, "max |diff| %.3g", maxdiff);
    free(ob.params), free(ob.grads), free(in), free(own), free(ref_w);
}

static void grade(lab *L)
{
    grade_partition(L);
    /* the lab model's table, for the ranges */
    zl_gpt_config cfg;
    zl_device dev;
    zl_model m;
    if (zl_gpt_config_preset("lab", &cfg) == ZL_OK &&
        zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "table", 0) == ZL_OK &&
        zl_model_create(&m, &cfg, &dev) == ZL_OK) {
        grade_ranges(L, &m);
        zl_model_destroy(&m);
    } else {
        lab_check(L, "zero1_owned_ranges = zl_param_ranges_clip", false, "", "no model: %s",
                  zl_last_error());
    }
    grade_state_bytes(L);
    grade_step(L);
}

/* ------------------------------------------------------------------ demo */

/* A rank's ledger, the rows of the demo's table: param, grad, master, adam.m, adam.v,
 * activations, and their total. */
enum { ROW_PARAM, ROW_GRAD, ROW_MASTER, ROW_M, ROW_V, ROW_ACT, ROW_TOTAL, NUM_ROWS };

static void read_ledger(const zl_ledger *l, size_t *r)
{
    static const char *tags[ROW_ACT] = {"param", "grad", "master", "adam.m", "adam.v"};
    r[ROW_TOTAL] = 0;
    for (int k = 0; k < ROW_ACT; k++) r[ROW_TOTAL] += (r[k] = zl_ledger_current(l, tags[k]));
    r[ROW_TOTAL] += (r[ROW_ACT] = zl_ledger_current_prefix(l, "act."));
}

static void demo(lab *L)
{
    char config[512], budget[32];
    zl_run_options o;
    zl_run run;
    size_t rows[2][NUM_ROWS];
    memset(rows, 0, sizeof rows);
    zl_format_bytes(budget, sizeof budget, SMALL_CARD_BYTES);

    /* 1. the OOM: stage 0 on a card of SMALL_CARD_BYTES */
    lab_printf(L, "  1. bf16 'lab' model, %d ranks, ZeRO stage 0, on a simulated V100 with %s:\n",
               L->size, budget);
    config_bf16(config, sizeof config, 0);
    options(&o, config, L->world);
    o.device = "v100-16gb";
    o.device_memory = SMALL_CARD_BYTES;
    zl_status st = zl_run_init(&run, &o);
    if (st != ZL_OK) {
        lab_printf(L, "  the library refuses it (%s):\n\n", run.failed_at == ZL_RUN_PREFLIGHT
                                                              ? "preflight" : "engine");
        char msg[4096];
        snprintf(msg, sizeof msg, "%s", zl_last_error());
        for (char *line = strtok(msg, "\n"); line; line = strtok(NULL, "\n"))
            lab_printf(L, "    | %s\n", line);
        lab_printf(L, "\n");
    } else {
        lab_printf(L, "  it fits?! (the budget was meant to be too small)\n");
    }
    lab_csv(L, "stage 0 fits the small card", st == ZL_OK, "bool");
    zl_run_free(&run);

    /* 2. the ledgers, without a budget */
    for (int stage = 0; stage <= 1; stage++) {
        config_bf16(config, sizeof config, stage);
        options(&o, config, L->world);
        o.device = "v100-16gb";
        if (zl_run_init(&run, &o) == ZL_OK) read_ledger(&run.device.ledger, rows[stage]);
        zl_run_free(&run);
    }
    size_t numel = 0;
    {
        zl_gpt_config cfg;
        if (zl_gpt_config_preset("lab", &cfg) == ZL_OK) numel = zl_gpt_config_num_params(&cfg);
    }
    size_t pred0 = 0, pred1 = 0;
    int rc0 = zero1_state_bytes(numel, 1, &pred0), rc1 = zero1_state_bytes(numel, L->size, &pred1);
    lab_printf(L, "  2. rank 0's memory ledger (bytes), Psi = %zu parameters:\n", numel);
    lab_printf(L, "  %-26s %12s %12s\n", "tag", "stage 0", "stage 1");
    const char *names[NUM_ROWS] = {"param (bf16)", "grad (bf16)", "master (fp32)", "adam.m (fp32)",
                           "adam.v (fp32)", "activations", "total of these"};
    for (int k = 0; k < NUM_ROWS; k++) {
        size_t a = rows[0][k], b = rows[1][k];
        lab_printf(L, "  %-26s %12zu %12zu\n", names[k], a, b);
        char name[64];
        snprintf(name, sizeof name, "stage 0 %s", names[k]);
        lab_csv(L, name, (double)a, "B");
        snprintf(name, sizeof name, "stage 1 %s", names[k]);
        lab_csv(L, name, (double)b, "B");
    }
    size_t s0 = rows[0][ROW_MASTER] + rows[0][ROW_M] + rows[0][ROW_V];
    size_t s1 = rows[1][ROW_MASTER] + rows[1][ROW_M] + rows[1][ROW_V];
    lab_printf(L, "  %-26s %12zu %12zu\n", "optimizer state (ledger)", s0, s1);
    if (rc0 == 0 && rc1 == 0)
        lab_printf(L, "  %-26s %12zu %12zu\n", "your zero1_state_bytes", pred0, pred1);
    else
        lab_printf(L, "  %-26s %12s %12s\n", "your zero1_state_bytes", "(not written)", "");
    lab_csv(L, "optimizer state per rank, stage 0", (double)s0, "B");
    lab_csv(L, "optimizer state per rank, stage 1", (double)s1, "B");

    /* 3. stage 1 on the small card: it fits; trace 2 steps */
    config_bf16(config, sizeof config, 1);
    options(&o, config, L->world);
    o.device = "v100-16gb";
    o.device_memory = SMALL_CARD_BYTES;
    o.steps = 2;
    char trace[640];
    snprintf(trace, sizeof trace, "%s", lab_path(L, "trace.json"));
    o.trace = trace;
    st = zl_run_init(&run, &o);
    float loss = 0;
    for (long s = 0; st == ZL_OK && s < o.steps; s++) st = zl_run_step(&run, &loss);
    if (st == ZL_OK) st = zl_run_write_trace(&run, trace);
    if (st == ZL_OK) {
        lab_printf(L, "\n  3. ZeRO stage 1 on the same %s card: fits; 2 steps, loss %.4f; trace: %s\n",
                   budget, loss, trace);
        lab_csv(L, "stage 1 fits the small card", 1, "bool");
    } else {
        lab_printf(L, "\n  3. ZeRO stage 1 on the %s card failed: %s\n", budget, zl_last_error());
        lab_csv(L, "stage 1 fits the small card", 0, "bool");
    }
    zl_run_free(&run);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "06", "ZeRO-1");
    if (rc != 0) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
