/* Lab 01: where the memory goes (one rank).
 *
 * demo: the student's predictions against the memory ledger of real runs (the lab model,
 * and GPT-2 124M on the meta backend: the same allocations, no data behind them), the
 * bytes per parameter, the largest micro-batch that fits a V100-16GB, and a few simulated
 * training steps for the trace.
 * check: count_params against the library's count, every predicted tag against the
 * ledger (exact: bytes are integers), and find_oom_threshold against a brute-force scan. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lab.h"
#include "student.h"

#define OPTIMIZER "\"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}}"

/* The library's model description of a setup. */
static zl_gpt_config model_of(const mem_setup *s)
{
    zl_gpt_config g;
    memset(&g, 0, sizeof g);
    snprintf(g.name, sizeof g.name, "lab01-L%d-C%d", s->num_layers, s->channels);
    g.vocab_size = s->vocab_size;
    g.max_seq_len = s->max_seq_len;
    g.num_layers = s->num_layers;
    g.num_heads = s->num_heads;
    g.channels = s->channels;
    return g;
}

/* Build the run of setup s with micro-batch b (no step taken: the engine allocates every
 * state and activation buffer up front). backend "meta" records every allocation without
 * memory behind it, so a 124M-parameter model costs nothing here. */
static zl_status build_run(zl_run *run, const mem_setup *s, int b, const char *backend,
                           const char *device, size_t budget, const char *trace, long steps)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"train_micro_batch_size_per_gpu\": %d, %s%s}", b, OPTIMIZER,
             s->mixed ? ", \"bf16\": {\"enabled\": true}" : "");
    zl_gpt_config g = model_of(s);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = cfg;
    o.config_name = "lab01";
    o.model_config = &g;
    o.seq_len = s->seq_len;
    o.backend = backend;
    o.device = device;
    o.device_memory = budget;
    o.trace = trace;
    o.steps = steps;
    zl_status st = zl_run_init(run, &o);
    return st;
}

/* What the ledger says for setup s: the tags of mem_bytes, and the workspace (every other
 * tag: backward's scratch "act.grad", the stream between layers "act.stream", the tokens
 * "input", and in 16 bits the CPU's fp32 work copies "cast", which the budget exempts). */
typedef struct ledger_view {
    mem_bytes m;
    size_t workspace, cast, budgeted_peak;
} ledger_view;

static void view_ledger(const zl_run *run, ledger_view *v)
{
    const zl_ledger *l = &run->device.ledger;
    memset(v, 0, sizeof *v);
    v->m.params = zl_ledger_peak(l, "param");
    v->m.grads = zl_ledger_peak(l, "grad");
    v->m.master = zl_ledger_peak(l, "master");
    v->m.adam_m = zl_ledger_peak(l, "adam.m");
    v->m.adam_v = zl_ledger_peak(l, "adam.v");
    size_t acts = zl_ledger_peak(l, "act.embed") + zl_ledger_peak(l, "act.head");
    for (int i = 0; i < run->model.num_layers; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "act.h.%d", i);
        acts += zl_ledger_peak(l, tag);
    }
    v->m.activations = acts;
    v->m.total = v->m.params + v->m.grads + v->m.master + v->m.adam_m + v->m.adam_v + acts;
    size_t all = 0;
    for (int i = 0; i < l->num_tags; i++) all += l->entries[i].peak_nbytes;
    v->cast = zl_ledger_peak(l, "cast");
    v->workspace = all - v->m.total - v->cast;
    v->budgeted_peak = l->budgeted_peak_nbytes;
}

static int ledger_of(const mem_setup *s, ledger_view *v)
{
    zl_run run;
    /* a budget no setup here reaches: the ledger records, the card never refuses */
    zl_status st = build_run(&run, s, s->micro_batch, "meta", "v100-16gb", (size_t)1 << 40, NULL, 1);
    if (st == ZL_OK) view_ledger(&run, v);
    else fprintf(stderr, "lab 01: the library's run failed: %s\n", zl_last_error());
    zl_run_free(&run);
    return st == ZL_OK ? 0 : -1;
}

/* ---- fits(b): the library's answer, with the calls counted ------------------------- */

typedef struct fits_ctx {
    mem_setup setup;
    const char *device;
    size_t budget;
    int b_max;
    int calls, bad_calls; /* bad: b outside [1, b_max] */
    int last_phase;
} fits_ctx;

static int fits(void *p, int b)
{
    fits_ctx *c = p;
    c->calls++;
    if (b < 1 || b > c->b_max) {
        c->bad_calls++;
        return 0;
    }
    zl_run run;
    zl_status st = build_run(&run, &c->setup, b, "meta", c->device, c->budget, NULL, 1);
    c->last_phase = (int)run.failed_at;
    zl_run_free(&run);
    if (st == ZL_OK) return 1;
    if (st == ZL_ERR_OOM) return 0; /* refused by the preflight, or by the engine's allocation */
    fprintf(stderr, "lab 01: micro-batch %d: %s\n", b, zl_last_error());
    return -1;
}

/* The brute-force answer: try b = 1, 2, ... until the first that does not fit. */
static int scan_threshold(fits_ctx *c)
{
    int b = 0;
    while (b < c->b_max) {
        int r = fits(c, b + 1);
        if (r != 1) break;
        b++;
    }
    return b;
}

static int ceil_log2(int n)
{
    int k = 0;
    while ((1 << k) < n) k++;
    return k;
}

/* ---- the setups -------------------------------------------------------------------- */

/* The "lab" preset, fp32 and mixed; an odd-shaped model; GPT-2 124M. */
static const mem_setup LAB_FP32 = {256, 64, 2, 4, 64, 4, 64, false};
static const mem_setup LAB_MIXED = {256, 64, 2, 4, 64, 4, 64, true};
static const mem_setup ODD_MIXED = {300, 48, 3, 2, 46, 3, 37, true};
static const mem_setup GPT2_MIXED = {50257, 1024, 12, 12, 768, 1, 1024, true};
static const mem_setup GPT2_FP32 = {50257, 1024, 12, 12, 768, 1, 1024, false};

static void describe(const mem_setup *s, char *buf, size_t n)
{
    snprintf(buf, n, "L%d C%d NH%d V%d B%d T%d %s", s->num_layers, s->channels, s->num_heads,
             s->vocab_size, s->micro_batch, s->seq_len, s->mixed ? "bf16" : "fp32");
}

/* ---- check ------------------------------------------------------------------------- */

static void grade_bytes(lab *L, const char *setup, const char *what, int rc, size_t got,
                        size_t want)
{
    char item[96], target[64];
    snprintf(item, sizeof item, "%s: %s", setup, what);
    snprintf(target, sizeof target, "= ledger %zu B", want);
    if (rc != 0)
        lab_check(L, item, false, target, "not written");
    else
        lab_check(L, item, got == want, target, "%zu B", got);
}

static void grade_setup(lab *L, const char *name, const mem_setup *s)
{
    ledger_view v;
    if (ledger_of(s, &v) != 0) {
        lab_check(L, name, false, "the library's run", "failed");
        return;
    }
    size_t psi = 0, want_psi = zl_gpt_config_num_params(&(zl_gpt_config){
        .vocab_size = s->vocab_size, .max_seq_len = s->max_seq_len, .num_layers = s->num_layers,
        .num_heads = s->num_heads, .channels = s->channels});
    mem_bytes m;
    memset(&m, 0, sizeof m);
    char item[96], target[64];
    int rc = count_params(s, &psi);
    snprintf(item, sizeof item, "%s: parameters", name);
    snprintf(target, sizeof target, "= library %zu", want_psi);
    if (rc != 0) lab_check(L, item, false, target, "not written");
    else lab_check(L, item, psi == want_psi, target, "%zu", psi);

    size_t acts = 0;
    rc = predict_activations(s, &acts);
    grade_bytes(L, name, "activations (predict_activations)", rc, acts, v.m.activations);

    rc = predict_memory(s, &m);
    grade_bytes(L, name, "param", rc, m.params, v.m.params);
    grade_bytes(L, name, "grad", rc, m.grads, v.m.grads);
    grade_bytes(L, name, "master", rc, m.master, v.m.master);
    grade_bytes(L, name, "adam.m", rc, m.adam_m, v.m.adam_m);
    grade_bytes(L, name, "adam.v", rc, m.adam_v, v.m.adam_v);
    grade_bytes(L, name, "activations", rc, m.activations, v.m.activations);
    grade_bytes(L, name, "total", rc, m.total, v.m.total);
}

static void grade_threshold(lab *L, const char *name, const mem_setup *s, const char *device,
                            size_t budget, int b_max)
{
    fits_ctx c = {.setup = *s, .device = device, .budget = budget, .b_max = b_max};
    int want = scan_threshold(&c);
    c.calls = c.bad_calls = 0;
    int got = -1;
    int rc = find_oom_threshold(fits, &c, b_max, &got);
    char item[96], target[64];
    snprintf(item, sizeof item, "OOM threshold: %s", name);
    snprintf(target, sizeof target, "= scan: largest b %d", want);
    if (rc == LAB_NOT_DONE) {
        lab_check(L, item, false, target, "not written");
        return;
    }
    if (rc != 0) {
        lab_check(L, item, false, target, "returned %d", rc);
        return;
    }
    lab_check(L, item, got == want, target, "largest b %d", got);
    /* doubling then bisection: about 2 log2(answer) calls; bisection of [1, b_max] from
     * the start: log2(b_max); either is fine, a scan from 1 is not */
    int bound = 2 * ceil_log2(want + 1) + 2, bisect = ceil_log2(b_max + 1) + 2;
    if (bisect > bound) bound = bisect;
    snprintf(item, sizeof item, "  fits() calls, all in [1, %d]", b_max);
    snprintf(target, sizeof target, "<= %d (O(log b))", bound);
    lab_check(L, item, c.calls <= bound && c.bad_calls == 0, target, "%d calls, %d outside",
              c.calls, c.bad_calls);
}

static void grade(lab *L)
{
    grade_setup(L, "lab fp32", &LAB_FP32);
    grade_setup(L, "lab bf16", &LAB_MIXED);
    grade_setup(L, "odd bf16", &ODD_MIXED);
    /* The lab model in bf16 at T=64 on a 12 MiB card; GPT-2 124M on a V100-16GB at
     * T=1024; and a card too small for even one sequence. */
    mem_setup lab = LAB_MIXED;
    grade_threshold(L, "lab bf16 on 12 MiB", &lab, "v100-16gb", 12u << 20, 1000);
    grade_threshold(L, "gpt2-124m on V100-16GB", &GPT2_MIXED, "v100-16gb", 0, 256);
    grade_threshold(L, "lab bf16 on 2 MiB", &lab, "v100-16gb", 2u << 20, 64);
}

/* ---- demo -------------------------------------------------------------------------- */

static void mib(char *buf, size_t n, size_t bytes) { zl_format_bytes(buf, n, bytes); }

static void demo_setup(lab *L, const char *name, const mem_setup *s)
{
    char desc[96];
    describe(s, desc, sizeof desc);
    ledger_view v;
    if (ledger_of(s, &v) != 0) return;
    mem_bytes m;
    memset(&m, 0, sizeof m);
    bool have = predict_memory(s, &m) == 0;
    zl_gpt_config g = model_of(s);
    lab_printf(L, "\n  %s (%s), %zu parameters\n", name, desc, zl_gpt_config_num_params(&g));
    lab_printf(L, "    %-12s %14s %14s %8s\n", "tag", "predicted", "ledger", "B/param");
    const char *tags[] = {"param", "grad", "master", "adam.m", "adam.v", "activations", "total"};
    size_t pred[] = {m.params, m.grads, m.master, m.adam_m, m.adam_v, m.activations, m.total};
    size_t led[] = {v.m.params, v.m.grads, v.m.master, v.m.adam_m, v.m.adam_v, v.m.activations,
                    v.m.total};
    double states = (double)(v.m.params + v.m.grads + v.m.master + v.m.adam_m + v.m.adam_v);
    double P = (double)v.m.params / (s->mixed ? 2.0 : 4.0); /* Ψ, from the ledger */
    for (int i = 0; i < 7; i++) {
        char a[32], b[32];
        mib(b, sizeof b, led[i]);
        if (have) mib(a, sizeof a, pred[i]);
        else snprintf(a, sizeof a, "not written");
        char per[16] = "";
        if (i < 5) snprintf(per, sizeof per, "%.0f", (double)led[i] / P);
        lab_printf(L, "    %-12s %14s %14s %8s%s\n", tags[i], a, b, per,
                   have && pred[i] != led[i] ? "  <- differs" : "");
        char key[96];
        snprintf(key, sizeof key, "%s.ledger.%s", name, tags[i]);
        lab_csv(L, key, (double)led[i], "B");
        if (have) {
            snprintf(key, sizeof key, "%s.predicted.%s", name, tags[i]);
            lab_csv(L, key, (double)pred[i], "B");
        }
    }
    char w[32], c[32];
    mib(w, sizeof w, v.workspace);
    mib(c, sizeof c, v.cast);
    lab_printf(L, "    model states: %.0f bytes per parameter (%s); workspace not predicted: %s "
                  "(act.grad, act.stream, input)%s%s\n",
               states / P, s->mixed ? "2 + 2 + 4 + 4 + 4: ZeRO's 2+2+12" : "4 + 4 + 4 + 4",
               w, s->mixed ? ", CPU-only fp32 work copies \"cast\" " : "", s->mixed ? c : "");
    char key[96];
    snprintf(key, sizeof key, "%s.bytes_per_param", name);
    lab_csv(L, key, states / P, "B");
    snprintf(key, sizeof key, "%s.workspace", name);
    lab_csv(L, key, (double)v.workspace, "B");
}

static void demo_threshold(lab *L, const mem_setup *s, const char *device, int b_max)
{
    fits_ctx c = {.setup = *s, .device = device, .b_max = b_max};
    int b = 0;
    int rc = find_oom_threshold(fits, &c, b_max, &b);
    const char *how = "your find_oom_threshold";
    if (rc == LAB_NOT_DONE) {
        c.calls = 0;
        b = scan_threshold(&c);
        how = "the lab's scan (find_oom_threshold not written)";
    }
    char desc[96];
    describe(s, desc, sizeof desc);
    lab_printf(L, "\n  largest micro-batch of %s on a %s: %d (%s, %d runs built)\n", desc, device,
               b, how, c.calls);
    lab_csv(L, "gpt2-124m.bf16.T1024.v100-16gb.largest_micro_batch", b, "sequences");
    /* the ledger's view of the threshold: what one more sequence would need */
    mem_setup at = *s, over = *s;
    at.micro_batch = b > 0 ? b : 1;
    over.micro_batch = at.micro_batch + 1;
    ledger_view va, vo;
    if (ledger_of(&at, &va) == 0 && ledger_of(&over, &vo) == 0) {
        char x[32], y[32];
        mib(x, sizeof x, va.budgeted_peak);
        mib(y, sizeof y, vo.budgeted_peak);
        lab_printf(L, "    at b=%d the card holds %s; b=%d would need %s of its 16 GiB "
                      "(fp32 work copies \"cast\" not counted: a GPU has none)\n",
                   at.micro_batch, x, over.micro_batch, y);
        lab_csv(L, "gpt2-124m.peak_at_threshold", (double)va.budgeted_peak, "B");
        lab_csv(L, "gpt2-124m.peak_past_threshold", (double)vo.budgeted_peak, "B");
    }
}

static void demo_train(lab *L)
{
    /* The lab model, bf16, on a simulated V100: a few real steps on the CPU, timed by the
     * simulator, for the trace. */
    zl_run run;
    char trace[640];
    snprintf(trace, sizeof trace, "%s", lab_path(L, "trace.json"));
    zl_status st = build_run(&run, &LAB_MIXED, LAB_MIXED.micro_batch, "cpu", "v100-16gb", 0,
                             trace, 3);
    float loss = 0;
    for (long i = 0; st == ZL_OK && i < run.steps; i++) st = zl_run_step(&run, &loss);
    if (st == ZL_OK) st = zl_run_write_trace(&run, trace);
    if (st != ZL_OK) {
        lab_printf(L, "  training failed: %s\n", zl_last_error());
    } else {
        double t = zl_timeline_now(&run.sim.timeline);
        lab_printf(L, "\n  3 training steps of the lab model (bf16, V100-16GB simulated): loss %.3f, "
                      "%.3f ms simulated; trace: %s\n", loss, 1e3 * t, trace);
        lab_printf(L, "  the ledger of that run:\n");
        if (L->rank == 0) zl_ledger_print(&run.device.ledger, stdout);
        lab_csv(L, "train.loss", loss, "");
        lab_csv(L, "train.simulated_time", t, "s");
    }
    zl_run_free(&run);
}

static void demo(lab *L)
{
    lab_printf(L, "  predicted (your predict_memory) vs the ledger's peak per tag:\n");
    demo_setup(L, "lab-fp32", &LAB_FP32);
    demo_setup(L, "lab-bf16", &LAB_MIXED);
    demo_setup(L, "gpt2-124m-fp32", &GPT2_FP32);
    demo_setup(L, "gpt2-124m-bf16", &GPT2_MIXED);
    demo_threshold(L, &GPT2_MIXED, "v100-16gb", 1024);
    demo_train(L);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "01", "Where the memory goes");
    if (rc) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
