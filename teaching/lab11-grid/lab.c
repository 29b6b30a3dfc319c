/* Lab 11: the 3-D grid and a plan search (1 rank; plans only). See README.md.
 *
 *   check: the student's coordinates and groups against the library's topology
 *          (zl_topology_coords, zl_topology_group) for several grids; the student's plans
 *          and search against the library's search (zl_plan_search, src/plan/plan_search.c,
 *          what `zerolab plan --search` prints) over the stated set: the same candidates,
 *          the same verdicts and tokens/s, the same winner.
 *   demo:  the candidates sorted (fitting first, fastest first), the winner and why, a
 *          tensor-parallel group across two nodes for contrast, numbers.csv, and the
 *          winner's simulated step as a trace. */
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

#define CAP 256

/* A 6.7B GPT (GPT-3 6.7B's shape: 32 layers, 32 heads, 4096 channels) on 64 A100-40GB
 * (8 nodes of 8, NVLink inside a node, InfiniBand between), bf16, AdamW, activation
 * checkpointing every layer, 512 sequences of 2048 tokens per step. */
static const zl_gpt_config model_6b7 = {"gpt3-6.7b", 50257, 2048, 32, 32, 4096};
static const char cluster_spec[] = "8x8xa100-40gb";
static const char problem_cfg[] =
    "{\"train_batch_size\": 512, \"train_micro_batch_size_per_gpu\": 1,"
    " \"bf16\": {\"enabled\": true},"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-4}}}";

static zl_cluster cluster;

/* The problem, through the same path `zerolab plan` reads a config (zl_run_configure). */
static int make_problem(lab *L, lab11_problem *pb)
{
    memset(pb, 0, sizeof *pb);
    if (zl_cluster_parse(cluster_spec, &cluster) != ZL_OK) goto fail;
    zl_run_options ro;
    zl_run_options_init(&ro);
    ro.config_text = problem_cfg;
    ro.config_name = "lab11 config";
    ro.model_config = &model_6b7;
    ro.seq_len = ZL_RUN_SEQ_LEN_MODEL;
    ro.checkpoint_activations = 1;
    ro.seed = 1;
    zl_run run;
    if (zl_run_configure(&run, &ro, zl_cluster_size(&cluster)) != ZL_OK) goto fail;
    pb->model = run.model;
    pb->base = run.options;
    pb->base.checkpoint_interval = 1;
    zl_run_free(&run);
    pb->cluster = &cluster;
    pb->global_batch = 512;
    pb->host_memory = zl_cluster_host_memory_per_rank(&cluster);
    return 0;
fail:
    lab_printf(L, "  cannot set the problem up: %s\n", zl_last_error());
    return -1;
}

/* ---- the oracle: the library's search ------------------------------------------------ */

/* One setup planned alone, as zl_plan_search plans it (the demo's tp 16 contrast, which
 * the search does not try, and the winner's trace). */
static zl_status oracle_plan(const lab11_problem *pb, lab11_candidate *c, FILE *trace)
{
    static zl_plan_result r;
    zl_plan_request q;
    memset(&q, 0, sizeof q);
    q.model = pb->model;
    q.options = pb->base;
    q.options.zero_stage = c->zero;
    q.options.micro_batch_size = c->micro;
    q.options.gradient_accumulation_steps = c->gas;
    q.world_size = c->dp;      /* the data-parallel ranks */
    q.tp_size = c->tp;
    q.pipe_stages = c->pp;
    q.pipe_stage = -1;         /* every stage, the worst reported */
    q.device_memory = pb->cluster->device->memory;
    q.host_memory = pb->host_memory;
    q.device_name = pb->cluster->device->display;
    q.gpu = true;
    q.cluster = pb->cluster;
    q.trace = trace;
    zl_status st = zl_plan_run(&q, &r);
    if (st != ZL_OK && st != ZL_ERR_OOM) return st;
    c->fits = st == ZL_OK;
    c->peak_gib = (double)zl_plan_device_ledger(&r)->budgeted_peak_nbytes / (1 << 30);
    c->step_s = r.step_seconds;
    c->tokens_per_s = r.tokens_per_second;
    return ZL_OK;
}

/* The stated set (student.h), searched by the library: zl_plan_search with its space
 * narrowed to tp and pp up to 8, micro-batches up to 8, no offload, checkpointing as the
 * config has it, every micro-batch tried (no pruning). Its other rules are the stated
 * set's: tp within a node (8 GPUs) dividing the heads, pp dividing the GPUs (and here the
 * 32 layers), ZeRO 0-1 with a pipeline, the global batch kept. Sorted fitting first,
 * fastest first: *winner is 0, or -1 when none fits. Returns 0, or -1 (the message in
 * zl_last_error). */
static int oracle_search(const lab11_problem *pb, lab11_candidate *cands, int *n, int *winner)
{
    zl_plan_request q;
    memset(&q, 0, sizeof q);
    q.model = pb->model;
    q.options = pb->base;
    /* the config's setup: data-parallel over every GPU, the global batch from it */
    q.world_size = zl_cluster_size(pb->cluster);
    q.options.micro_batch_size = 1;
    q.options.gradient_accumulation_steps = pb->global_batch / q.world_size;
    q.pipe_stage = -1;
    q.device_memory = pb->cluster->device->memory;
    q.host_memory = pb->host_memory;
    q.device_name = pb->cluster->device->display;
    q.gpu = true;
    q.cluster = pb->cluster;
    const zl_plan_search_space stated = {.max_tp = 8, .max_pp = 8, .max_micro = 8,
                                         .no_offload = true, .checkpoint_only = true,
                                         .no_pruning = true};
    zl_plan_search_result res;
    if (zl_plan_search(&q, &stated, NULL, NULL, &res) != ZL_OK) return -1;
    int k = 0;
    for (int i = 0; i < res.num_candidates && k < CAP; i++) {
        const zl_plan_candidate *c = &res.candidates[i];
        cands[k++] = (lab11_candidate){c->tp, c->pp, c->dp, c->stage, c->micro, c->gas, c->fits,
                                       (double)c->device_peak / (1 << 30), c->step_seconds,
                                       c->tokens_per_second};
    }
    *n = k;
    *winner = k > 0 && cands[0].fits ? 0 : -1;
    zl_plan_search_free(&res);
    return 0;
}

static bool same_setup(const lab11_candidate *a, const lab11_candidate *b)
{
    return a->tp == b->tp && a->pp == b->pp && a->dp == b->dp && a->zero == b->zero &&
           a->micro == b->micro && a->gas == b->gas;
}

/* ---- check ------------------------------------------------------------------------------- */

static const int grids[][3] = {{1, 1, 1}, {1, 4, 1}, {2, 2, 2}, {4, 2, 8}, {2, 4, 8}, {8, 8, 1}};
#define NGRIDS ((int)(sizeof grids / sizeof grids[0]))

static void grade_grid(lab *L)
{
    int tried = 0, good = 0, rc = 0;
    char first[128] = "";
    for (int g = 0; g < NGRIDS && rc != LAB_NOT_DONE; g++) {
        int pp = grids[g][0], dp = grids[g][1], tp = grids[g][2];
        zl_topology t;
        zl_topology_init(&t, pp * dp * tp, pp, tp);
        for (int r = 0; r < pp * dp * tp; r++) {
            int p = -1, d = -1, m = -1;
            rc = student_coords(pp, dp, tp, r, &p, &d, &m);
            if (rc == LAB_NOT_DONE) break;
            zl_coords c = zl_topology_coords(&t, r);
            tried++;
            if (rc == 0 && p == c.pipe && d == c.data && m == c.model) good++;
            else if (!first[0])
                snprintf(first, sizeof first, "first: %dx%dx%d rank %d: (%d,%d,%d), expected (%d,%d,%d)",
                         pp, dp, tp, r, p, d, m, c.pipe, c.data, c.model);
        }
    }
    if (rc == LAB_NOT_DONE)
        lab_check(L, "rank -> (pipe, data, model)", false, "= zl_topology_coords", "not written");
    else if (!lab_check(L, "rank -> (pipe, data, model)", good == tried, "= zl_topology_coords",
                        "%d/%d ranks", good, tried))
        lab_printf(L, "    %s\n", first);

    tried = good = rc = 0;
    first[0] = '\0';
    for (int g = 0; g < NGRIDS && rc != LAB_NOT_DONE; g++) {
        int pp = grids[g][0], dp = grids[g][1], tp = grids[g][2];
        zl_topology t;
        zl_topology_init(&t, pp * dp * tp, pp, tp);
        for (int r = 0; r < pp * dp * tp && rc != LAB_NOT_DONE; r++)
            for (int a = ZL_AXIS_PIPE; a <= ZL_AXIS_MODEL; a++) {
                int mine[64], lib[64], nm = -1;
                rc = student_group(pp, dp, tp, r, (zl_axis)a, mine, &nm);
                if (rc == LAB_NOT_DONE) break;
                int nl = zl_topology_group(&t, (zl_axis)a, r, lib);
                tried++;
                bool ok = rc == 0 && nm == nl;
                for (int i = 0; ok && i < nl; i++) ok = mine[i] == lib[i];
                if (ok) good++;
                else if (!first[0])
                    snprintf(first, sizeof first, "first: %dx%dx%d rank %d, %s group",
                             pp, dp, tp, r, zl_axis_name((zl_axis)a));
            }
    }
    if (rc == LAB_NOT_DONE)
        lab_check(L, "the pipe/data/model groups", false, "= zl_topology_group", "not written");
    else if (!lab_check(L, "the pipe/data/model groups", good == tried, "= zl_topology_group",
                        "%d/%d groups", good, tried))
        lab_printf(L, "    %s\n", first);
}

static void grade(lab *L)
{
    grade_grid(L);
    lab11_problem pb;
    if (make_problem(L, &pb) != 0) {
        lab_check(L, "the problem", false, "set up", "failed");
        return;
    }
    /* The library's search of the stated set: the reference for every check below. */
    lab11_candidate *mine = calloc(CAP, sizeof *mine), *lib = calloc(CAP, sizeof *lib);
    int nm = 0, nl = 0, wm = -2, wl = -1;
    bool lib_ok = lib && oracle_search(&pb, lib, &nl, &wl) == 0;
    if (!lib_ok) lab_printf(L, "  (the library's search failed: %s)\n", zl_last_error());

    /* One setup at a time: a few that fit and a few that do not, against the search's. */
    static const lab11_candidate probes[] = {
        {1, 1, 64, 0, 1, 8, false, 0, 0, 0}, {1, 1, 64, 3, 2, 4, false, 0, 0, 0},
        {2, 2, 16, 1, 4, 8, false, 0, 0, 0}, {8, 1, 8, 1, 8, 8, false, 0, 0, 0},
        {4, 4, 4, 0, 2, 64, false, 0, 0, 0},
    };
    int tried = 0, good = 0, rc = 0;
    char first[160] = "";
    for (size_t i = 0; i < sizeof probes / sizeof probes[0] && lib_ok; i++) {
        lab11_candidate mine1 = probes[i];
        const lab11_candidate *ref = NULL;
        for (int j = 0; j < nl && !ref; j++)
            if (same_setup(&lib[j], &probes[i])) ref = &lib[j];
        mine1.peak_gib = mine1.step_s = mine1.tokens_per_s = -1;
        rc = student_plan_one(&pb, &mine1);
        if (rc == LAB_NOT_DONE) break;
        tried++;
        if (rc == 0 && ref && mine1.fits == ref->fits && mine1.peak_gib == ref->peak_gib &&
            mine1.step_s == ref->step_s && mine1.tokens_per_s == ref->tokens_per_s)
            good++;
        else if (!first[0] && ref)
            snprintf(first, sizeof first, "first: tp=%d pp=%d zero=%d micro=%d: %s %.2f GiB %.3f s,"
                     " expected %s %.2f GiB %.3f s", ref->tp, ref->pp, ref->zero, ref->micro,
                     mine1.fits ? "fits" : "OOM", mine1.peak_gib, mine1.step_s,
                     ref->fits ? "fits" : "OOM", ref->peak_gib, ref->step_s);
    }
    if (rc == LAB_NOT_DONE)
        lab_check(L, "one setup planned (fits, GiB, step s)", false, "= zl_plan_search's", "not written");
    else if (!lab_check(L, "one setup planned (fits, GiB, step s)", good == tried && tried > 0,
                        "= zl_plan_search's", "%d/%d setups", good, tried))
        lab_printf(L, "    %s\n", first);

    /* The search. */
    rc = mine && lib ? student_search(&pb, mine, CAP, &nm, &wm) : -1;
    if (rc == LAB_NOT_DONE) {
        lab_check(L, "search: the candidate set", false, "= zl_plan_search's", "not written");
        lab_check(L, "search: fits and tokens/s", false, "= zl_plan_search's", "not written");
        lab_check(L, "search: the winner", false, "= zl_plan_search's first", "not written");
    } else {
        if (rc != 0 || nm < 0 || nm > CAP) nm = 0;
        int found = 0, equal = 0;
        for (int i = 0; i < nl; i++)
            for (int j = 0; j < nm; j++)
                if (same_setup(&lib[i], &mine[j])) {
                    found++;
                    equal += lib[i].fits == mine[j].fits &&
                             (!lib[i].fits || lib[i].tokens_per_s == mine[j].tokens_per_s);
                    break;
                }
        lab_check(L, "search: the candidate set", lib_ok && rc == 0 && found == nl && nm == nl,
                  "= zl_plan_search's", "%d of %d (%d listed)", found, nl, nm);
        lab_check(L, "search: fits and tokens/s", lib_ok && rc == 0 && equal == nl && nm == nl,
                  "= zl_plan_search's", "%d/%d equal", equal, nl);
        bool win = lib_ok && rc == 0 && wl >= 0 && wm >= 0 && wm < nm &&
                   (same_setup(&mine[wm], &lib[wl]) || mine[wm].tokens_per_s == lib[wl].tokens_per_s);
        char got[64] = "none", want[64] = "none";
        if (rc == 0 && wm >= 0 && wm < nm)
            snprintf(got, sizeof got, "tp%d pp%d z%d mb%d", mine[wm].tp, mine[wm].pp, mine[wm].zero,
                     mine[wm].micro);
        if (wl >= 0)
            snprintf(want, sizeof want, "= tp%d pp%d z%d mb%d", lib[wl].tp, lib[wl].pp, lib[wl].zero,
                     lib[wl].micro);
        lab_check(L, "search: the winner", win, want, "%s", got);
    }
    free(mine);
    free(lib);
}

/* ---- demo -------------------------------------------------------------------------------- */

static int by_speed(const void *x, const void *y)
{
    const lab11_candidate *a = x, *b = y;
    if (a->fits != b->fits) return a->fits ? -1 : 1;
    return (a->tokens_per_s < b->tokens_per_s) - (a->tokens_per_s > b->tokens_per_s);
}

static void demo(lab *L)
{
    lab_printf(L, "\n  rank 13 of a 2 x 4 x 2 grid (pp x dp x tp):\n");
    int p = -1, d = -1, m = -1, g[64], n = 0;
    if (student_coords(2, 4, 2, 13, &p, &d, &m) == 0)
        lab_printf(L, "    coordinates (pipe %d, data %d, model %d)\n", p, d, m);
    for (int a = ZL_AXIS_PIPE; a <= ZL_AXIS_MODEL; a++)
        if (student_group(2, 4, 2, 13, (zl_axis)a, g, &n) == 0) {
            lab_printf(L, "    %-5s group:", zl_axis_name((zl_axis)a));
            for (int i = 0; i < n; i++) lab_printf(L, " %d", g[i]);
            lab_printf(L, "\n");
        }

    lab11_problem pb;
    if (make_problem(L, &pb) != 0) return;
    lab11_candidate *c = calloc(CAP, sizeof *c);
    if (!c) return;
    int nc = 0, w = -1;
    double t0 = lab_now();
    int rc = student_search(&pb, c, CAP, &nc, &w);
    const char *whose = "your search";
    if (rc != 0) {
        whose = "the lab's search (yours is not written yet)";
        oracle_search(&pb, c, &nc, &w);
    }
    double secs = lab_now() - t0;
    lab_printf(L, "\n  which setup fits and is fastest? %s on %s (%d GPUs: %d nodes of %d), bf16,\n"
                  "  AdamW, checkpointing every layer, %d x %d tokens per step (%s: %d plans, %.1f s)\n",
               pb.model.name, cluster.device->display, zl_cluster_size(&cluster), cluster.nodes,
               cluster.gpus_per_node, pb.global_batch, pb.base.seq_len, whose, nc, secs);
    lab11_candidate winner = w >= 0 ? c[w] : (lab11_candidate){0};
    qsort(c, (size_t)nc, sizeof *c, by_speed);
    lab_printf(L, "  %3s %3s %3s %4s %5s %5s %8s %5s %8s %10s\n", "tp", "pp", "dp", "zero", "micro",
               "accum", "peak GiB", "fits", "step s", "tokens/s");
    int fitting = 0;
    for (int i = 0; i < nc; i++) {
        fitting += c[i].fits;
        if (c[i].fits)
            lab_printf(L, "  %3d %3d %3d %4d %5d %5d %8.2f %5s %8.3f %10.0f%s\n", c[i].tp, c[i].pp,
                       c[i].dp, c[i].zero, c[i].micro, c[i].gas, c[i].peak_gib, "yes", c[i].step_s,
                       c[i].tokens_per_s, i == 0 ? "   <- the winner" : "");
        else /* a plan that does not fit has no step (the peak: what it would need) */
            lab_printf(L, "  %3d %3d %3d %4d %5d %5d %8.2f %5s %8s %10s\n", c[i].tp, c[i].pp,
                       c[i].dp, c[i].zero, c[i].micro, c[i].gas, c[i].peak_gib, "no", "-", "-");
        char name[96];
        snprintf(name, sizeof name, "tp%d pp%d dp%d zero%d micro%d tokens/s", c[i].tp, c[i].pp,
                 c[i].dp, c[i].zero, c[i].micro);
        lab_csv(L, name, c[i].fits ? c[i].tokens_per_s : 0, c[i].fits ? "tokens/s" : "does not fit");
        snprintf(name, sizeof name, "tp%d pp%d dp%d zero%d micro%d peak", c[i].tp, c[i].pp, c[i].dp,
                 c[i].zero, c[i].micro);
        lab_csv(L, name, c[i].peak_gib, "GiB");
    }
    lab_printf(L, "  %d of %d setups fit in %.0f GiB\n", fitting, nc,
               (double)cluster.device->memory / (1 << 30));
    lab_csv(L, "setups", nc, "");
    lab_csv(L, "setups that fit", fitting, "");
    if (w < 0) {
        free(c);
        return;
    }

    /* Why: the winner against a tensor-parallel group that crosses the nodes (tp 16: its
     * two allreduces per block run on InfiniBand instead of NVLink). */
    lab11_candidate wide = winner;
    wide.tp = 16;
    wide.dp = zl_cluster_size(&cluster) / (wide.tp * wide.pp);
    wide.gas = pb.global_batch / (wide.dp * wide.micro);
    bool wide_ok = wide.dp >= 1 && pb.global_batch % (wide.dp * wide.micro) == 0 &&
                   oracle_plan(&pb, &wide, NULL) == ZL_OK;
    lab_printf(L, "\n  the winner: tp %d x pp %d x dp %d, ZeRO-%d, micro %d: %.0f tokens/s, %.2f GiB\n",
               winner.tp, winner.pp, winner.dp, winner.zero, winner.micro, winner.tokens_per_s,
               winner.peak_gib);
    if (wide_ok) {
        lab_printf(L, "  the same with tp 16 (a tensor-parallel group over 2 nodes): %s, %.0f tokens/s "
                      "(%.2fx slower): its per-block allreduces cross InfiniBand\n",
                   wide.fits ? "fits" : "does not fit", wide.tokens_per_s,
                   wide.tokens_per_s > 0 ? winner.tokens_per_s / wide.tokens_per_s : 0);
        lab_csv(L, "winner tokens/s", winner.tokens_per_s, "tokens/s");
        lab_csv(L, "tp16 across nodes tokens/s", wide.tokens_per_s, "tokens/s");
    }
    /* The winner's simulated step as a trace. */
    FILE *f = fopen(lab_path(L, "trace.json"), "w");
    if (f) {
        oracle_plan(&pb, &winner, f);
        fclose(f);
        lab_printf(L, "  the winner's simulated step: %s\n", lab_path(L, "trace.json"));
    }
    free(c);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "11", "The 3-D grid and a plan search");
    if (rc != 0) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
