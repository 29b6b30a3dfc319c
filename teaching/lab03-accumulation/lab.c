/* Lab 03: micro-batches and recomputation (one rank).
 *
 * check: the student's batch triad against the config reader (zl_config_parse) on valid
 * and invalid configs; gradient accumulation (micro 8 x GAS 1 against micro 2 x GAS 4, the
 * same 8 sequences a step) giving the same weights within fp32 rounding; activation
 * checkpointing giving bitwise the same weights; and the student's activation bytes (exact,
 * against the ledger) and recompute FLOPs (within 10% of the simulator's count).
 * demo: memory, FLOPs and simulated step time for plain, GAS 4 and checkpointing, with the
 * student's predictions beside them; numbers.csv and the three runs' traces. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

#define STEPS 2
#define SEQ 32            /* tokens a sequence (the lab model allows 64): a quick check */
#define ACCUM_TOL 1e-5    /* max |w1 - w2| after STEPS steps: fp32 summation order */
#define FLOPS_TOL 0.10    /* the simulator charges every kernel; the formula matmuls only */

typedef struct result {
    zl_status st;
    float loss;
    float *w;      /* the weights after STEPS steps */
    size_t numel;
    size_t acts;   /* activations kept: act.embed + act.h.* + act.head, or act.segment + act_ckpt */
    size_t peak;   /* the card's budgeted peak */
    double step_flops, step_time; /* the last step, by the simulator */
} result;

static result train(const lab *L, int micro, int gas, int interval, const char *trace_name)
{
    result r;
    memset(&r, 0, sizeof r);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"train_micro_batch_size_per_gpu\": %d, "
                              "\"gradient_accumulation_steps\": %d, \"optimizer\": {\"type\": "
                              "\"AdamW\", \"params\": {\"lr\": 1e-3}}}", micro, gas);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = cfg;
    o.config_name = "lab03";
    o.model = "lab";
    o.seq_len = SEQ;
    o.steps = STEPS;
    o.device = "v100-16gb";
    o.checkpoint_activations = interval; /* as --checkpoint-activations N */
    char trace[640] = "";
    if (trace_name) {
        snprintf(trace, sizeof trace, "%s", lab_path(L, trace_name));
        o.trace = trace;
    }
    zl_run run;
    r.st = zl_run_init(&run, &o);
    for (long s = 0; r.st == ZL_OK && s < run.steps; s++) {
        double f0 = run.sim.flops;
        r.st = zl_run_step(&run, &r.loss);
        r.step_flops = run.sim.flops - f0;
    }
    if (r.st == ZL_OK) {
        r.step_time = zl_timeline_now(&run.sim.timeline) - zl_timeline_now(&run.step_mark);
        r.numel = zl_gpt_config_num_params(&run.model);
        r.w = malloc(r.numel * sizeof(float));
        r.st = r.w ? zl_engine_gather_params(run.engine, r.w) : ZL_ERR_NOMEM;
        const zl_ledger *l = &run.device.ledger;
        size_t acts = zl_ledger_peak(l, "act.embed") + zl_ledger_peak(l, "act.head") +
                      zl_ledger_peak(l, "act.segment") + zl_ledger_peak(l, "act_ckpt");
        for (int i = 0; i < run.model.num_layers; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "act.h.%d", i);
            acts += zl_ledger_peak(l, tag);
        }
        r.acts = acts;
        r.peak = l->budgeted_peak_nbytes;
    }
    if (r.st == ZL_OK && trace_name) r.st = zl_run_write_trace(&run, trace);
    if (r.st != ZL_OK) fprintf(stderr, "lab 03: the library's run failed: %s\n", zl_last_error());
    zl_run_free(&run);
    return r;
}

static double max_diff(const result *a, const result *b)
{
    if (a->st || b->st || a->numel != b->numel) return INFINITY;
    double m = 0;
    for (size_t i = 0; i < a->numel; i++) {
        double d = fabs((double)a->w[i] - (double)b->w[i]);
        if (!(d <= m)) m = d; /* NaN counts */
    }
    return m;
}

static bool bitwise_equal(const result *a, const result *b)
{
    return !a->st && !b->st && a->numel == b->numel &&
           memcmp(a->w, b->w, a->numel * sizeof(float)) == 0;
}

/* The lab model's activations per layer for one sequence, from the ledger of a meta run
 * (the same allocations as a real one, no memory behind them). */
static size_t layer_bytes[64];
static int model_of(act_model *am, flop_model *fm)
{
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = "{\"train_micro_batch_size_per_gpu\": 1, \"optimizer\": {\"type\": \"AdamW\"}}";
    o.config_name = "lab03";
    o.model = "lab";
    o.seq_len = SEQ;
    o.backend = "meta";
    zl_run run;
    if (zl_run_init(&run, &o) != ZL_OK) {
        fprintf(stderr, "lab 03: %s\n", zl_last_error());
        zl_run_free(&run);
        return -1;
    }
    int L = run.model.num_layers;
    const zl_ledger *l = &run.device.ledger;
    layer_bytes[0] = zl_ledger_peak(l, "act.embed");
    for (int i = 0; i < L; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "act.h.%d", i);
        layer_bytes[1 + i] = zl_ledger_peak(l, tag);
    }
    layer_bytes[L + 1] = zl_ledger_peak(l, "act.head");
    am->num_layers = L + 2;
    am->layer_bytes = layer_bytes;
    am->stream_bytes = (size_t)SEQ * run.model.channels * sizeof(float);
    fm->num_layers = L;
    fm->channels = run.model.channels;
    fm->vocab_size = run.model.vocab_size;
    fm->seq_len = SEQ;
    zl_run_free(&run);
    return 0;
}

/* ---- check ------------------------------------------------------------------------- */

/* The config reader's answer for one case (0 = key absent). */
static int library_triad(long tb, long mb, long gas, int world, long out[3])
{
    char json[256] = "{", *p = json + 1;
    const char *sep = "";
    if (tb) p += sprintf(p, "%s\"train_batch_size\": %ld", sep, tb), sep = ", ";
    if (mb) p += sprintf(p, "%s\"train_micro_batch_size_per_gpu\": %ld", sep, mb), sep = ", ";
    if (gas) p += sprintf(p, "%s\"gradient_accumulation_steps\": %ld", sep, gas), sep = ", ";
    strcat(p, "}");
    zl_config cfg;
    zl_status st = zl_config_parse(&cfg, json, "lab03-triad", world);
    if (st == ZL_OK) {
        out[0] = (long)cfg.train_batch_size;
        out[1] = (long)cfg.train_micro_batch_size_per_gpu;
        out[2] = (long)cfg.gradient_accumulation_steps;
    }
    zl_config_free(&cfg);
    return st == ZL_OK ? 0 : 1;
}

static void grade_triad(lab *L)
{
    static const long cases[][4] = {
        /* train_batch, micro, gas, world */
        {32, 4, 0, 2}, {32, 0, 2, 4}, {0, 2, 4, 2}, {16, 0, 0, 4}, {0, 8, 0, 1},
        {16, 4, 2, 2}, {30, 4, 0, 2}, {8, 4, 2, 2}, {0, 0, 0, 2}, {2, 0, 0, 4},
        {24, 0, 5, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long tb = cases[i][0], mb = cases[i][1], gas = cases[i][2];
        int w = (int)cases[i][3];
        long want[3] = {0}, got[3] = {-1, -1, -1};
        int lib = library_triad(tb, mb, gas, w, want);
        int rc = batch_triad(tb, mb, gas, w, got);
        char item[96], target[64];
        snprintf(item, sizeof item, "triad tb=%ld mb=%ld gas=%ld world=%d", tb, mb, gas, w);
        if (lib == 0) snprintf(target, sizeof target, "= zl_config (%ld, %ld, %ld)", want[0], want[1], want[2]);
        else snprintf(target, sizeof target, "= zl_config: refused");
        if (rc == LAB_NOT_DONE) lab_check(L, item, false, target, "not written");
        else if (rc == 1) lab_check(L, item, lib == 1, target, "refused");
        else if (rc == 0)
            lab_check(L, item, lib == 0 && got[0] == want[0] && got[1] == want[1] && got[2] == want[2],
                      target, "(%ld, %ld, %ld)", got[0], got[1], got[2]);
        else lab_check(L, item, false, target, "returned %d", rc);
    }
}

static void grade_bytes(lab *L, const char *item, const act_model *am, int micro, int gas,
                        int interval, const result *r)
{
    size_t got = 0;
    int rc = predict_activation_bytes(am, micro, gas, interval, &got);
    char target[64];
    snprintf(target, sizeof target, "= ledger %zu B", r->acts);
    if (rc != 0) lab_check(L, item, false, target, "not written");
    else lab_check(L, item, !r->st && got == r->acts, target, "%zu B", got);
}

static void grade_flops(lab *L, const char *item, const flop_model *fm, int micro, int gas,
                        int interval, const result *ck, const result *plain)
{
    double measured = ck->step_flops - plain->step_flops, got = 0;
    int rc = predict_recompute_flops(fm, micro, gas, interval, &got);
    char target[64];
    snprintf(target, sizeof target, "sim %.4g +- 10%%", measured);
    if (rc != 0) lab_check(L, item, false, target, "not written");
    else lab_check(L, item, !ck->st && !plain->st && fabs(got - measured) <= FLOPS_TOL * measured,
                   target, "%.4g (%+.1f%%)", got, 100 * (got - measured) / measured);
}

static void grade(lab *L)
{
    grade_triad(L);

    act_model am;
    flop_model fm;
    if (model_of(&am, &fm) != 0) {
        lab_check(L, "the library's model", false, "built", "failed");
        return;
    }
    result p81 = train(L, 8, 1, 0, NULL), p24 = train(L, 2, 4, 0, NULL);
    result c81 = train(L, 8, 1, 1, NULL), c82 = train(L, 8, 1, 2, NULL);

    double d = max_diff(&p81, &p24);
    lab_check(L, "accumulation: 8x1 vs 2x4, weights", d <= ACCUM_TOL, "max |dw| <= 1e-5",
              "%.2e", d);
    lab_check(L, "checkpointing every layer: weights", bitwise_equal(&p81, &c81),
              "bitwise equal", "%s", bitwise_equal(&p81, &c81) ? "bitwise equal" : "differ");
    lab_check(L, "checkpointing every 2 layers: weights", bitwise_equal(&p81, &c82),
              "bitwise equal", "%s", bitwise_equal(&p81, &c82) ? "bitwise equal" : "differ");

    grade_bytes(L, "activations 8x1", &am, 8, 1, 0, &p81);
    grade_bytes(L, "activations 2x4 (accumulation)", &am, 2, 4, 0, &p24);
    grade_bytes(L, "activations 8x1, checkpoint every layer", &am, 8, 1, 1, &c81);
    grade_bytes(L, "activations 8x1, checkpoint every 2", &am, 8, 1, 2, &c82);
    grade_flops(L, "recompute FLOPs 8x1, every layer", &fm, 8, 1, 1, &c81, &p81);
    grade_flops(L, "recompute FLOPs 8x1, every 2 layers", &fm, 8, 1, 2, &c82, &p81);
    /* with accumulation: 2 x 4 checkpointed against 2 x 4 plain (four recomputes a step) */
    result c24 = train(L, 2, 4, 1, NULL);
    grade_flops(L, "recompute FLOPs 2x4, every layer", &fm, 2, 4, 1, &c24, &p24);
    double none = -1;
    int rc = predict_recompute_flops(&fm, 8, 1, 0, &none);
    lab_check(L, "recompute FLOPs without checkpointing", rc == 0 && none == 0, "= 0",
              rc == 0 ? "%g" : "not written", none);
    result *all[] = {&p81, &p24, &c81, &c82, &c24};
    for (int i = 0; i < 5; i++) free(all[i]->w);
}

/* ---- demo -------------------------------------------------------------------------- */

static void demo(lab *L)
{
    act_model am;
    flop_model fm;
    if (model_of(&am, &fm) != 0) return;
    struct {
        const char *name, *trace;
        int micro, gas, interval;
        result r;
    } rows[] = {
        {"plain 8x1", "trace-plain.json", 8, 1, 0, {0}},
        {"GAS 4 (2x4)", "trace-gas4.json", 2, 4, 0, {0}},
        {"checkpointing 8x1", "trace.json", 8, 1, 1, {0}},
    };
    lab_printf(L, "  the lab model, 8 sequences of %d tokens a step, %d steps on a simulated "
                  "V100-16GB (fp32)\n", SEQ, STEPS);
    lab_printf(L, "    %-18s %12s %12s %11s %12s %12s %11s %9s\n", "run", "acts (ledger)",
               "acts (yours)", "peak", "FLOPs/step", "+FLOPs yours", "step (sim)", "loss");
    for (int i = 0; i < 3; i++) {
        rows[i].r = train(L, rows[i].micro, rows[i].gas, rows[i].interval, rows[i].trace);
        const result *r = &rows[i].r;
        if (r->st) continue;
        size_t mine = 0;
        double extra = 0;
        bool have_m = predict_activation_bytes(&am, rows[i].micro, rows[i].gas, rows[i].interval, &mine) == 0;
        bool have_f = predict_recompute_flops(&fm, rows[i].micro, rows[i].gas, rows[i].interval, &extra) == 0;
        char a[32], b[32] = "not written", c[32], e[32] = "not written";
        zl_format_bytes(a, sizeof a, r->acts);
        if (have_m) zl_format_bytes(b, sizeof b, mine);
        zl_format_bytes(c, sizeof c, r->peak);
        if (have_f) snprintf(e, sizeof e, "%.3g", extra);
        lab_printf(L, "    %-18s %12s %12s %11s %12.4g %12s %8.3f ms %9.5f\n", rows[i].name, a, b, c,
                   r->step_flops, e, 1e3 * r->step_time, r->loss);
        char key[96];
        snprintf(key, sizeof key, "%s.activations", rows[i].name);
        lab_csv(L, key, (double)r->acts, "B");
        snprintf(key, sizeof key, "%s.peak", rows[i].name);
        lab_csv(L, key, (double)r->peak, "B");
        snprintf(key, sizeof key, "%s.flops_per_step", rows[i].name);
        lab_csv(L, key, r->step_flops, "FLOP");
        snprintf(key, sizeof key, "%s.step_time", rows[i].name);
        lab_csv(L, key, r->step_time, "s");
        snprintf(key, sizeof key, "%s.loss", rows[i].name);
        lab_csv(L, key, r->loss, "");
        if (have_m) {
            snprintf(key, sizeof key, "%s.activations.predicted", rows[i].name);
            lab_csv(L, key, (double)mine, "B");
        }
    }
    const result *p = &rows[0].r, *g = &rows[1].r, *c = &rows[2].r;
    if (!p->st && !g->st && !c->st) {
        lab_printf(L, "\n  accumulation: weights differ by at most %.2e from the plain run "
                      "(fp32 summation order); activations / %.1f\n",
                   max_diff(p, g), (double)p->acts / (double)g->acts);
        lab_printf(L, "  checkpointing: weights %s the plain run's; activations / %.1f, "
                      "FLOPs x %.2f, step time x %.2f\n",
                   bitwise_equal(p, c) ? "bitwise equal to" : "DIFFER from",
                   (double)p->acts / (double)c->acts, c->step_flops / p->step_flops,
                   c->step_time / p->step_time);
        lab_csv(L, "accumulation.max_weight_diff", max_diff(p, g), "");
        lab_csv(L, "checkpointing.bitwise_equal", bitwise_equal(p, c), "");
        lab_csv(L, "checkpointing.extra_flops", c->step_flops - p->step_flops, "FLOP");
        lab_printf(L, "  traces: %s (checkpointing), trace-plain.json, trace-gas4.json\n",
                   lab_path(L, "trace.json"));
    }
    for (int i = 0; i < 3; i++) free(rows[i].r.w);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "03", "Micro-batches and recomputation");
    if (rc) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
