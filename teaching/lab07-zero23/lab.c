/* Lab 07: ZeRO-2/3, the per-rank memory timeline and prefetch (two ranks).
 *
 * check: the student's model_state_bytes (stages 1-3, fp32 and bf16) and gather_bytes
 * (stage 3's gathered parameters under prefetch settings) against the memory ledger of
 * real two-rank runs, byte for byte.
 * demo: one step at stages 0-3 on the "lab" model, each rank's ledger sampled at set-up,
 * after each step and at its peak (numbers.csv, a table); then stage 3 with prefetch off
 * and on: simulated step time, exposed communication and the gather peak; a trace. */
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

/* A model whose sizes are odd (C = 63, V = 259): Psi is 1 mod 4 and many tensors are too, so
 * every padding rule shows. */
static zl_gpt_config odd_model(void)
{
    zl_gpt_config c = {.vocab_size = 259, .max_seq_len = 64, .num_layers = 2,
                       .num_heads = 3, .channels = 63};
    snprintf(c.name, sizeof c.name, "odd");
    return c;
}

static zl_gpt_config lab_model(void)
{
    zl_gpt_config c;
    zl_gpt_config_preset("lab", &c);
    return c;
}

/* One run of the engine on the world, at a stage and precision, with extra
 * zero_optimization keys ("" or ", \"key\": value ..."). Returns 0 or prints why not. */
static int start(lab *L, zl_run *run, const zl_gpt_config *mc, int stage, bool bf16,
                 const char *extra, const char *trace)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"train_micro_batch_size_per_gpu\": 4, \"steps_per_print\": 1000000,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}},"
             " \"bf16\": {\"enabled\": %s},"
             " \"zero_optimization\": {\"stage\": %d%s}}",
             bf16 ? "true" : "false", stage, extra);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = cfg;
    o.config_name = "lab07 config";
    o.model_config = mc;
    o.comm = L->world;
    o.device = "v100-16gb"; /* a simulated card: a clock for the step time and the trace */
    o.seq_len = 64;
    o.steps = 2;
    o.trace = trace;
    memset(run, 0, sizeof *run);
    if (zl_run_init(run, &o) != ZL_OK) {
        lab_printf(L, "  cannot start the run: %s\n", zl_last_error());
        zl_run_free(run);
        return -1;
    }
    return 0;
}

/* The model as the student's functions see it (buffers owned by the caller: free()). */
typedef struct model_view {
    lab07_model m;
    size_t *tensors, *layers;
} model_view;

static void view_model(const zl_model *zm, model_view *v)
{
    v->tensors = calloc((size_t)zm->num_params + 1, sizeof *v->tensors);
    v->layers = calloc((size_t)zm->num_layers + 1, sizeof *v->layers);
    for (int p = 0; p < zm->num_params; p++) v->tensors[p] = zm->params[p].numel;
    for (int l = 0; l < zm->num_layers; l++) {
        size_t b, e;
        zl_model_layer_range(zm, l, &b, &e);
        v->layers[l] = e - b;
    }
    v->m = (lab07_model){.numel = zm->params_numel, .num_tensors = zm->num_params,
                         .tensor_numel = v->tensors, .num_layers = zm->num_layers,
                         .layer_numel = v->layers,
                         .tie_owner = zm->num_ties > 0 ? zm->ties[0].owner : -1};
}

static void unview(model_view *v)
{
    free(v->tensors);
    free(v->layers);
}

static const char *const state_tags[5] = {"param", "grad", "master", "adam.m", "adam.v"};

static void state_array(const lab07_state *s, size_t a[5])
{
    a[0] = s->param, a[1] = s->grad, a[2] = s->master, a[3] = s->adam_m, a[4] = s->adam_v;
}

/* ---------------------------------------------------------------- check */

static void grade_state(lab *L, const zl_gpt_config *mc, int stage, bool bf16)
{
    char item[128];
    snprintf(item, sizeof item, "state, stage %d %s (%s)", stage,
             bf16 ? "bf16" : "fp32", mc->name);
    zl_run run;
    if (start(L, &run, mc, stage, bf16, "", NULL) != 0) {
        lab_check(L, item, false, "= ledger", "run failed");
        return;
    }
    size_t want[5], total = 0;
    for (int i = 0; i < 5; i++) total += want[i] = zl_ledger_current(&run.device.ledger, state_tags[i]);
    model_view v;
    view_model(zl_engine_model(run.engine), &v);
    lab07_state s = {0};
    int rc = model_state_bytes(&v.m, stage, L->size, bf16, &s);
    unview(&v);
    zl_run_free(&run);
    char target[64];
    snprintf(target, sizeof target, "= ledger %zu B", total);
    if (rc != 0) {
        lab_check(L, item, false, target, "not written");
        return;
    }
    size_t got[5];
    state_array(&s, got);
    for (int i = 0; i < 5; i++) {
        if (got[i] != want[i]) {
            lab_check(L, item, false, target, "%s %zu != %zu", state_tags[i], got[i], want[i]);
            return;
        }
    }
    lab_check(L, item, true, target, "%zu B (5/5 tags)", total);
}

typedef struct gather_case {
    const char *what;
    bool bf16;
    lab07_stage3 s;
} gather_case;

static void grade_gather(lab *L, const zl_gpt_config *mc, const gather_case *c)
{
    char item[128], extra[256], target[64];
    snprintf(item, sizeof item, "gather, %s (%s)", c->what, mc->name);
    snprintf(extra, sizeof extra,
             ", \"stage3_prefetch_bucket_size\": %ld, \"stage3_max_live_parameters\": %ld,"
             " \"stage3_param_persistence_threshold\": %ld",
             c->s.prefetch_bucket_size, c->s.max_live_parameters, c->s.param_persistence_threshold);
    zl_run run;
    if (start(L, &run, mc, 3, c->bf16, extra, NULL) != 0) {
        lab_check(L, item, false, "= ledger", "run failed");
        return;
    }
    float loss;
    zl_status st = zl_run_step(&run, &loss); /* the peak over a real step */
    size_t want = zl_ledger_peak(&run.device.ledger, "gather");
    model_view v;
    view_model(zl_engine_model(run.engine), &v);
    size_t got = 0;
    int rc = gather_bytes(&v.m, L->size, c->bf16, &c->s, &got);
    unview(&v);
    zl_run_free(&run);
    snprintf(target, sizeof target, "= ledger %zu B", want);
    if (st != ZL_OK)
        lab_check(L, item, false, target, "step failed");
    else if (rc != 0)
        lab_check(L, item, false, target, "not written");
    else
        lab_check(L, item, got == want, target, "%zu B", got);
}

static void grade(lab *L)
{
    zl_gpt_config odd = odd_model(), lm = lab_model();
    for (int stage = 1; stage <= 3; stage++)
        for (int b = 0; b <= 1; b++) grade_state(L, &odd, stage, b);
    grade_state(L, &lm, 2, true);
    grade_state(L, &lm, 3, false);

    const gather_case cases[] = {
        {"prefetch on, no persistence", false, {50000000, 1000000000, 0}},
        {"prefetch off (bucket 0)", false, {0, 1000000000, 0}},
        {"max_live < a block", false, {50000000, 1000, 0}},
        {"persistence 100", false, {50000000, 1000000000, 100}},
        {"defaults (persistence 1e5)", false, {50000000, 1000000000, 100000}},
        {"bf16, prefetch on", true, {50000000, 1000000000, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) grade_gather(L, &odd, &cases[i]);
    grade_gather(L, &lm, &cases[0]);
}

/* ---------------------------------------------------------------- demo */

/* The tags of the table, in its columns ("act." sums every activation tag). */
static const char *const cols[] = {"param", "grad", "master", "adam", "gather", "bucket", "act.", "total"};
#define NCOLS 8

static void sample(const zl_ledger *lg, double v[NCOLS])
{
    v[0] = (double)zl_ledger_current(lg, "param");
    v[1] = (double)zl_ledger_current(lg, "grad");
    v[2] = (double)zl_ledger_current(lg, "master");
    v[3] = (double)(zl_ledger_current(lg, "adam.m") + zl_ledger_current(lg, "adam.v"));
    v[4] = (double)zl_ledger_current(lg, "gather");
    v[5] = (double)zl_ledger_current(lg, "bucket");
    v[6] = (double)zl_ledger_current_prefix(lg, "act.");
    v[7] = (double)lg->budgeted_nbytes;
}

#define NPOINTS 4 /* set-up, after step 1, after step 2, peak */
static const char *const points[NPOINTS] = {"init", "step1", "step2", "peak"};

static void demo_stages(lab *L)
{
    zl_gpt_config lm = lab_model();
    lab_printf(L, "\n  Per-rank memory (KiB) on the lab model, fp32, micro-batch 4 x 64 tokens, 2 ranks:\n");
    lab_printf(L, "  (peak per tag; 'moved': how far the total strayed from its set-up value at"
                  " set-up,\n   after step 1, after step 2 and at the peak; 'predicted': your"
                  " model_state_bytes, param+grad+master+adam)\n");
    lab_printf(L, "  %-5s %-4s", "stage", "rank");
    for (int c = 0; c < NCOLS; c++) lab_printf(L, " %8s", cols[c]);
    lab_printf(L, " %8s %10s\n", "moved", "predicted");
    for (int stage = 0; stage <= 3; stage++) {
        zl_run run;
        if (start(L, &run, &lm, stage, false, "", NULL) != 0) continue;
        /* [rank][point][col], every rank filling its own row, summed over the ranks */
        size_t n = (size_t)L->size * NPOINTS * NCOLS;
        double *v = calloc(n, sizeof *v);
        double *mine = v + (size_t)L->rank * NPOINTS * NCOLS;
        sample(&run.device.ledger, mine);
        for (int s = 1; s <= 2; s++) {
            float loss;
            if (zl_run_step(&run, &loss) != ZL_OK) break;
            sample(&run.device.ledger, mine + s * NCOLS);
        }
        double *pk = mine + 3 * NCOLS;
        const zl_ledger *lg = &run.device.ledger;
        pk[0] = (double)zl_ledger_peak(lg, "param");
        pk[1] = (double)zl_ledger_peak(lg, "grad");
        pk[2] = (double)zl_ledger_peak(lg, "master");
        pk[3] = (double)(zl_ledger_peak(lg, "adam.m") + zl_ledger_peak(lg, "adam.v"));
        pk[4] = (double)zl_ledger_peak(lg, "gather");
        pk[5] = (double)zl_ledger_peak(lg, "bucket");
        pk[6] = 0; /* the sum of the activation tags' peaks is not the peak of their sum */
        for (int t = 0; t < lg->num_tags; t++)
            if (strncmp(lg->entries[t].tag, "act.", 4) == 0) pk[6] += (double)lg->entries[t].peak_nbytes;
        pk[7] = (double)lg->budgeted_peak_nbytes;
        zl_comm_allreduce(L->world, v, n, ZL_F64, ZL_REDUCE_SUM);

        /* The student's prediction of the model state (stages 1-3; stage 0 has none). */
        char pred[32] = "-";
        if (stage >= 1) {
            model_view mv;
            view_model(zl_engine_model(run.engine), &mv);
            lab07_state s;
            if (model_state_bytes(&mv.m, stage, L->size, false, &s) == 0)
                snprintf(pred, sizeof pred, "%.1f",
                         (double)(s.param + s.grad + s.master + s.adam_m + s.adam_v) / 1024.0);
            else
                snprintf(pred, sizeof pred, "(todo)");
            unview(&mv);
        }
        for (int r = 0; r < L->size; r++) {
            double moved = 0; /* how far the total moved from set-up at any sample */
            for (int p = 0; p < NPOINTS; p++) {
                const double *row = v + ((size_t)r * NPOINTS + p) * NCOLS;
                const double *init = v + (size_t)r * NPOINTS * NCOLS;
                double d = row[7] - init[7];
                if (d < 0) d = -d;
                if (d > moved) moved = d;
                for (int c = 0; c < NCOLS; c++) {
                    char name[96];
                    snprintf(name, sizeof name, "stage%d.rank%d.%s.%s", stage, r, points[p],
                             c == 6 ? "act" : cols[c]);
                    lab_csv(L, name, row[c], "B");
                }
            }
            const double *peak = v + ((size_t)r * NPOINTS + 3) * NCOLS;
            lab_printf(L, "  %-5d %-4d", stage, r);
            for (int c = 0; c < NCOLS; c++) lab_printf(L, " %8.1f", peak[c] / 1024.0);
            lab_printf(L, " %8.1f %10s\n", moved / 1024.0, pred);
        }
        free(v);
        zl_run_free(&run);
    }
}

static void demo_prefetch(lab *L)
{
    zl_gpt_config lm = lab_model();
    struct {
        const char *what, *extra, *trace;
        lab07_stage3 s;
    } cases[] = {
        {"prefetch off (bucket 0)", ", \"stage3_prefetch_bucket_size\": 0", "trace-noprefetch.json",
         {0, 1000000000, 0}},
        {"prefetch on (5e7)", ", \"stage3_prefetch_bucket_size\": 50000000", "trace.json",
         {50000000, 1000000000, 0}},
        {"prefetch on, max_live 1e4", ", \"stage3_max_live_parameters\": 10000", NULL,
         {50000000, 10000, 0}},
    };
    lab_printf(L, "\n  Stage 3 prefetch (lab model, fp32, stage3_param_persistence_threshold 0), step 2:\n");
    lab_printf(L, "  %-28s %12s %14s %12s %12s\n", "setting", "step (ms)", "exposed (ms)",
               "gather KiB", "predicted");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[256], trace[640] = "";
        snprintf(extra, sizeof extra, "%s, \"stage3_param_persistence_threshold\": 0", cases[i].extra);
        if (cases[i].trace) snprintf(trace, sizeof trace, "%s", lab_path(L, cases[i].trace));
        zl_run run;
        if (start(L, &run, &lm, 3, false, extra, cases[i].trace ? trace : NULL) != 0) continue;
        float loss;
        zl_status st = ZL_OK;
        for (int s = 0; s < 2 && st == ZL_OK; s++) st = zl_run_step(&run, &loss);
        if (st != ZL_OK) {
            lab_printf(L, "  step failed: %s\n", zl_last_error());
            zl_run_free(&run);
            continue;
        }
        const zl_timeline *tl = &run.sim.timeline;
        double step_s = 0;
        for (int k = 0; k < ZL_STREAM_COUNT; k++) {
            double d = tl->clock[k] - run.step_mark.clock[k];
            if (d > step_s) step_s = d;
        }
        double exposed = tl->exposed_comm - run.step_mark.exposed_comm;
        size_t peak = zl_ledger_peak(&run.device.ledger, "gather");
        model_view mv;
        view_model(zl_engine_model(run.engine), &mv);
        size_t pred = 0;
        char ptxt[32] = "(todo)";
        if (gather_bytes(&mv.m, L->size, false, &cases[i].s, &pred) == 0)
            snprintf(ptxt, sizeof ptxt, "%.1f", (double)pred / 1024.0);
        unview(&mv);
        lab_printf(L, "  %-28s %12.3f %14.3f %12.1f %12s\n", cases[i].what, 1e3 * step_s,
                   1e3 * exposed, (double)peak / 1024.0, ptxt);
        char name[96];
        const char *key = i == 0 ? "prefetch_off" : i == 1 ? "prefetch_on" : "prefetch_maxlive";
        snprintf(name, sizeof name, "%s.step_time", key);
        lab_csv(L, name, step_s, "s");
        snprintf(name, sizeof name, "%s.exposed_comm", key);
        lab_csv(L, name, exposed, "s");
        snprintf(name, sizeof name, "%s.gather_peak", key);
        lab_csv(L, name, (double)peak, "B");
        if (cases[i].trace && zl_run_write_trace(&run, trace) != ZL_OK)
            lab_printf(L, "  cannot write the trace: %s\n", zl_last_error());
        zl_run_free(&run);
    }
    lab_printf(L, "  traces: %s (prefetch on), trace-noprefetch.json (off)\n", lab_path(L, "trace.json"));
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "07", "ZeRO-2/3: the per-rank memory timeline and prefetch");
    if (rc != 0) return rc;
    if (L.check) {
        grade(&L);
    } else {
        demo_stages(&L);
        demo_prefetch(&L);
    }
    return lab_end(&L);
}
