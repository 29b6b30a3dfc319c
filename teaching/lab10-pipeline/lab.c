/* Lab 10: pipelines, GPipe vs 1F1B (2 ranks for the real run; the tables and the plans need
 * none). See README.md.
 *
 *   check: the student's instruction tables against the library's schedules
 *          (zl_schedule_gpipe_stage, zl_schedule_train) for p 1..4, m 1..8; the bubble
 *          against the schedule's idle steps (exact) and the plan's simulated timeline
 *          (plan_pipe.c's replay, within 0.02); the in-flight micro-batches against the
 *          schedule (exact) and against the plan's activation bytes per stage (ratio).
 *   demo:  the two tables as grids, the bubble table, the activation table, and a real
 *          2-stage pipeline run on the 2 ranks against one rank (same losses), with its
 *          trace (one row per stage). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

#define MAXP 4
#define MAXM 16
#define CAP (2 * MAXM)

/* ---- the library's tables --------------------------------------------------------------- */

/* The passes of stage s from the library's schedule: the k-th forward is micro-batch k and
 * so is the k-th backward (both schedules run them in order; the buffer is only a slot). */
static int lib_passes(zl_schedule_kind kind, int p, int m, int s, lab10_pass *out, int *n)
{
    int ni = zl_schedule_make_stage(kind, m, p, s, NULL, 0);
    if (ni <= 0) return -1;
    zl_instr *in = malloc((size_t)ni * sizeof *in);
    if (!in) return -1;
    zl_schedule_make_stage(kind, m, p, s, in, ni);
    int f = 0, b = 0, j = 0;
    for (int i = 0; i < ni && j < CAP; i++) {
        if (in[i].kind == ZL_FORWARD_PASS) out[j++] = (lab10_pass){'F', f++, in[i].step};
        else if (in[i].kind == ZL_BACKWARD_PASS) out[j++] = (lab10_pass){'B', b++, in[i].step};
    }
    free(in);
    *n = j;
    return 0;
}

/* Most micro-batches forwarded and not yet backwarded, walking a table. */
static int table_in_flight(const lab10_pass *t, int n)
{
    int live = 0, most = 0;
    for (int i = 0; i < n; i++) {
        live += t[i].kind == 'F' ? 1 : -1;
        if (live > most) most = live;
    }
    return most;
}

/* Compare a student's table with the library's; describe the first difference. */
static bool same_table(const lab10_pass *a, int na, const lab10_pass *b, int nb, char *why,
                       size_t len)
{
    if (na != nb) return snprintf(why, len, "%d passes, expected %d", na, nb), false;
    for (int i = 0; i < na; i++)
        if (a[i].kind != b[i].kind || a[i].micro != b[i].micro || a[i].step != b[i].step)
            return snprintf(why, len, "pass %d is %c%d@%d, expected %c%d@%d", i, a[i].kind,
                            a[i].micro, a[i].step, b[i].kind, b[i].micro, b[i].step), false;
    return true;
}

typedef int (*table_fn)(int p, int m, int s, lab10_pass *out, int cap, int *n);

/* Grade one schedule over p 1..4, m 1..8, every stage. */
static void grade_tables(lab *L, const char *item, table_fn fn, zl_schedule_kind kind)
{
    int tried = 0, good = 0, rc = 0;
    char first[160] = "";
    for (int p = 1; p <= MAXP; p++)
        for (int m = 1; m <= 8; m++)
            for (int s = 0; s < p; s++) {
                lab10_pass mine[CAP], lib[CAP];
                int nm = 0, nl = 0;
                tried++;
                if (lib_passes(kind, p, m, s, lib, &nl) != 0) continue;
                rc = fn(p, m, s, mine, CAP, &nm);
                if (rc == LAB_NOT_DONE) goto out;
                char why[128];
                if (rc == 0 && nm >= 0 && nm <= CAP && same_table(mine, nm, lib, nl, why, sizeof why))
                    good++;
                else if (!first[0])
                    snprintf(first, sizeof first, " (first: p=%d m=%d s=%d: %s)", p, m, s,
                             rc ? "returned an error" : why);
            }
out:
    if (rc == LAB_NOT_DONE) {
        lab_check(L, item, false, "= library's schedule", "not written");
        return;
    }
    lab_check(L, item, good == tried, "= library's schedule", "%d/%d stages", good, tried);
    if (good != tried) lab_printf(L, "    %s\n", first + 1);
}

/* ---- the plan ---------------------------------------------------------------------------- */

/* Uniform stages, so the bubble is the schedule's: 8 blocks of C=512 on a tiny vocabulary
 * (embedding and head cost little), cut by explicit boundaries over the L + 2 layers
 * (embedding, blocks, head): the same blocks on every stage. */
static const zl_gpt_config lab10_model = {"lab10-pipe", 64, 64, 8, 8, 512};

static zl_status plan_pipe(int p, int m, bool gpipe, int stage, const zl_cluster *cl,
                           FILE *trace, zl_plan_result *r)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": %d,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}},"
             " \"pipeline\": {\"partition\": \"%s\"}}",
             m, p == 1 ? "0,10" : p == 2 ? "0,5,10" : "0,3,5,7,10");
    zl_run_options ro;
    zl_run_options_init(&ro);
    ro.config_text = cfg;
    ro.config_name = "lab10 plan config";
    ro.model_config = &lab10_model;
    ro.pipeline_stages = p;
    ro.pipeline_gpipe = gpipe;
    ro.seed = 1;
    zl_run run;
    zl_status st = zl_run_configure(&run, &ro, p);
    if (st != ZL_OK) return st;
    zl_plan_request q;
    memset(&q, 0, sizeof q);
    q.model = run.model;
    q.options = run.options;
    q.world_size = 1; /* one replica: the stages are the whole world */
    q.pipe_stages = p;
    q.pipe_stage = stage;
    q.tp_size = 1;
    q.gpu = true;
    q.cluster = cl;
    q.device_name = cl->device->display;
    q.trace = trace;
    zl_run_free(&run);
    return zl_plan_run(&q, r);
}

/* A stage's activation bytes per the plan: the activation tags (one set per micro-batch
 * buffer) without the working buffers every stage has once (act.grad, act.stream). */
static double stage_activations(const zl_plan_result *r)
{
    const zl_ledger *l = zl_plan_device_ledger(r);
    double sum = 0;
    for (int k = 0; k < l->num_tags; k++) {
        const char *t = l->entries[k].tag;
        if ((strncmp(t, "act.", 4) == 0 || strcmp(t, "input") == 0) &&
            strcmp(t, "act.grad") != 0 && strcmp(t, "act.stream") != 0)
            sum += (double)l->entries[k].peak_nbytes;
    }
    return sum;
}

static const int bubble_p[] = {2, 2, 4, 4}, bubble_m[] = {2, 4, 4, 8};
#define NBUBBLE 4

/* ---- check ------------------------------------------------------------------------------- */

static void grade(lab *L)
{
    grade_tables(L, "GPipe tables (p 1-4, m 1-8, every stage)", student_gpipe, ZL_SCHEDULE_GPIPE);
    grade_tables(L, "1F1B tables (p 1-4, m 1-8, every stage)", student_1f1b, ZL_SCHEDULE_TRAIN);

    /* The bubble against the schedule itself: a stage's idle steps / all its steps. */
    {
        int tried = 0, good = 0, rc = 0;
        double worst = 0;
        for (int p = 1; p <= MAXP && rc != LAB_NOT_DONE; p++)
            for (int m = 1; m <= 8 && rc != LAB_NOT_DONE; m++) {
                double f = -1;
                rc = student_bubble(p, m, &f);
                if (rc == LAB_NOT_DONE) break;
                int steps = zl_schedule_steps(ZL_SCHEDULE_TRAIN, m, p);
                double idle = (double)(steps - 2 * m) / steps; /* 2m passes per stage */
                tried++;
                if (rc == 0 && fabs(f - idle) < 1e-12) good++;
                if (fabs(f - idle) > worst) worst = fabs(f - idle);
            }
        if (rc == LAB_NOT_DONE)
            lab_check(L, "bubble = the schedule's idle steps", false, "|err| < 1e-12", "not written");
        else
            lab_check(L, "bubble = the schedule's idle steps", good == tried, "|err| < 1e-12",
                      "%d/%d (p,m); worst %.3g", good, tried, worst);
    }
    /* ... and against the simulated timeline of the plan (1F1B; the p2p and the embedding
     * and head make it a little larger than the formula). */
    zl_cluster cl;
    zl_plan_result *r = calloc(1, sizeof *r);
    bool cl_ok = zl_cluster_parse("8xa100-80gb", &cl) == ZL_OK && r;
    for (int i = 0; i < NBUBBLE; i++) {
        int p = bubble_p[i], m = bubble_m[i];
        char item[64];
        snprintf(item, sizeof item, "bubble p=%d m=%d vs simulated timeline", p, m);
        double f = -1;
        int rc = student_bubble(p, m, &f);
        if (rc == LAB_NOT_DONE) {
            lab_check(L, item, false, "|err| < 0.02", "not written");
            continue;
        }
        bool ok = cl_ok && plan_pipe(p, m, false, -1, &cl, NULL, r) == ZL_OK;
        double sim = ok ? r->bubble_fraction : NAN;
        lab_check(L, item, ok && rc == 0 && fabs(f - sim) < 0.02, "|err| < 0.02",
                  "%.4f (plan %.4f)", f, sim);
    }

    /* In flight: exact against the library's tables. */
    {
        int tried = 0, good = 0, rc = 0;
        char first[128] = "";
        for (int g = 0; g <= 1 && rc != LAB_NOT_DONE; g++)
            for (int p = 1; p <= MAXP && rc != LAB_NOT_DONE; p++)
                for (int m = 1; m <= 8 && rc != LAB_NOT_DONE; m++)
                    for (int s = 0; s < p; s++) {
                        int c = -1, nl = 0;
                        lab10_pass lib[CAP];
                        rc = student_in_flight(g, p, m, s, &c);
                        if (rc == LAB_NOT_DONE) break;
                        lib_passes(g ? ZL_SCHEDULE_GPIPE : ZL_SCHEDULE_TRAIN, p, m, s, lib, &nl);
                        int want = table_in_flight(lib, nl);
                        tried++;
                        if (rc == 0 && c == want) good++;
                        else if (!first[0])
                            snprintf(first, sizeof first, "first: %s p=%d m=%d s=%d: %d, expected %d",
                                     g ? "GPipe" : "1F1B", p, m, s, c, want);
                    }
        if (rc == LAB_NOT_DONE)
            lab_check(L, "in-flight micro-batches = the schedule's", false, "exact", "not written");
        else if (!lab_check(L, "in-flight micro-batches = the schedule's", good == tried, "exact",
                            "%d/%d stages", good, tried))
            lab_printf(L, "    %s\n", first);
    }
    /* ... and the activation memory GPipe / 1F1B per stage against the plan's bytes
     * (p=4, m=8). DeepSpeed keeps at least 2 buffers (num_pipe_buffers), so the predicted
     * ratio is in_flight(GPipe) / max(2, in_flight(1F1B)). */
    int p = 4, m = 8;
    for (int s = 0; s < p; s++) {
        char item[64];
        snprintf(item, sizeof item, "activations GPipe/1F1B stage %d (p=4 m=8)", s);
        int cg = -1, c1 = -1;
        int rg = student_in_flight(1, p, m, s, &cg), r1 = student_in_flight(0, p, m, s, &c1);
        if (rg == LAB_NOT_DONE || r1 == LAB_NOT_DONE) {
            lab_check(L, item, false, "|ratio err| < 1%", "not written");
            continue;
        }
        double ag = NAN, a1 = NAN;
        if (cl_ok && plan_pipe(p, m, true, s, &cl, NULL, r) == ZL_OK) ag = stage_activations(r);
        if (cl_ok && plan_pipe(p, m, false, s, &cl, NULL, r) == ZL_OK) a1 = stage_activations(r);
        double pred = rg || r1 ? NAN : (double)cg / (c1 > 2 ? c1 : 2), meas = ag / a1;
        lab_check(L, item, fabs(pred / meas - 1) < 0.01, "|ratio err| < 1%", "%.3f (plan %.3f)",
                  pred, meas);
    }
    free(r);
}

/* ---- demo -------------------------------------------------------------------------------- */

/* The student's table if written, else the library's (said once). */
static void table_for(bool gpipe, int p, int m, int s, lab10_pass *t, int *n, bool *from_lib)
{
    int rc = gpipe ? student_gpipe(p, m, s, t, CAP, n) : student_1f1b(p, m, s, t, CAP, n);
    if (rc != 0 || *n < 0 || *n > CAP) {
        *from_lib = true;
        lib_passes(gpipe ? ZL_SCHEDULE_GPIPE : ZL_SCHEDULE_TRAIN, p, m, s, t, n);
    }
}

static void print_grid(lab *L, bool gpipe, int p, int m)
{
    int steps = 2 * (m + p - 1);
    bool from_lib = false;
    char rows[MAXP][4 * 2 * (MAXM + MAXP) + 1];
    for (int s = 0; s < p; s++) {
        lab10_pass t[CAP];
        int n = 0;
        table_for(gpipe, p, m, s, t, &n, &from_lib);
        char *row = rows[s];
        for (int k = 0; k < steps; k++) memcpy(row + 4 * k, "  . ", 4);
        row[4 * steps] = '\0';
        for (int i = 0; i < n; i++)
            if (t[i].step >= 0 && t[i].step < steps) {
                char cell[8];
                snprintf(cell, sizeof cell, "%3c%d", t[i].kind, t[i].micro % 10);
                memcpy(row + 4 * t[i].step, cell, 4);
            }
    }
    lab_printf(L, "\n  %s, p=%d stages, m=%d micro-batches (steps across; %s):\n",
               gpipe ? "GPipe" : "1F1B", p, m,
               from_lib ? "the library's table: your function is not written yet" : "your table");
    for (int s = 0; s < p; s++) lab_printf(L, "  stage %d %s\n", s, rows[s]);
}

/* The real pipeline: the "lab" model, 2 stages on the 2 ranks, against one rank. */
#define RUN_STEPS 6
static const char run_cfg[] =
    "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 4,"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-3}}, \"steps_per_print\": 1000}";

static int real_run(lab *L, zl_comm *comm, int stages, const char *trace, float *losses)
{
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = run_cfg;
    o.config_name = "lab10 run config";
    o.model = "lab";
    o.steps = RUN_STEPS;
    o.seed = 1234;
    o.device = "v100-16gb";
    o.pipeline_stages = stages;
    o.comm = comm;
    o.trace = trace;
    zl_run run;
    if (zl_run_init(&run, &o) != ZL_OK) {
        lab_printf(L, "  run failed: %s\n", zl_last_error());
        zl_run_free(&run);
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < RUN_STEPS && rc == 0; k++) {
        float loss = 0;
        if (zl_run_step(&run, &loss) != ZL_OK) rc = -1;
        losses[k] = loss;
    }
    /* the loss is the last stage's: pass it to rank 0 */
    if (rc == 0 && stages > 1 && comm->size > 1)
        zl_comm_broadcast(comm, losses, RUN_STEPS, ZL_F32, comm->size - 1);
    if (rc == 0 && trace && zl_run_write_trace(&run, trace) != ZL_OK) rc = -1;
    if (rc) lab_printf(L, "  run failed: %s\n", zl_last_error());
    zl_run_free(&run);
    return rc;
}

static void demo(lab *L)
{
    print_grid(L, true, 4, 6);
    print_grid(L, false, 4, 6);

    zl_cluster cl;
    zl_plan_result *r = calloc(1, sizeof *r);
    bool cl_ok = r && zl_cluster_parse("8xa100-80gb", &cl) == ZL_OK;
    lab_printf(L, "\n  the bubble: idle share of a stage (1F1B, uniform stages, simulated on %s)\n",
               cl_ok ? cl.device->display : "?");
    lab_printf(L, "  %3s %3s %12s %12s %12s\n", "p", "m", "(p-1)/(m+p-1)", "yours", "simulated");
    int ps[] = {2, 2, 2, 4, 4, 4, 4}, ms[] = {1, 4, 16, 1, 4, 8, 16};
    for (int i = 0; i < 7; i++) {
        double f = NAN, sim = NAN;
        if (student_bubble(ps[i], ms[i], &f) != 0) f = NAN;
        if (cl_ok && plan_pipe(ps[i], ms[i], false, -1, &cl, NULL, r) == ZL_OK) sim = r->bubble_fraction;
        double formula = (double)(ps[i] - 1) / (ms[i] + ps[i] - 1);
        lab_printf(L, "  %3d %3d %12.4f %12.4f %12.4f\n", ps[i], ms[i], formula, f, sim);
        char name[64];
        snprintf(name, sizeof name, "bubble p=%d m=%d simulated", ps[i], ms[i]);
        lab_csv(L, name, sim, "fraction");
        snprintf(name, sizeof name, "bubble p=%d m=%d formula", ps[i], ms[i]);
        lab_csv(L, name, formula, "fraction");
    }

    lab_printf(L, "\n  activation memory per stage, p=4 m=8 (the plan's activation bytes)\n");
    lab_printf(L, "  %5s %10s %10s %12s %12s %8s\n", "stage", "GPipe mb", "1F1B mb", "GPipe MiB",
               "1F1B MiB", "ratio");
    for (int s = 0; s < 4; s++) {
        int cg = -1, c1 = -1;
        if (student_in_flight(1, 4, 8, s, &cg) != 0) cg = -1;
        if (student_in_flight(0, 4, 8, s, &c1) != 0) c1 = -1;
        double ag = NAN, a1 = NAN;
        if (cl_ok && plan_pipe(4, 8, true, s, &cl, NULL, r) == ZL_OK) ag = stage_activations(r);
        if (cl_ok && plan_pipe(4, 8, false, s, &cl, NULL, r) == ZL_OK) a1 = stage_activations(r);
        lab_printf(L, "  %5d %10d %10d %12.2f %12.2f %8.2f\n", s, cg, c1, ag / 1048576, a1 / 1048576,
                   ag / a1);
        char name[64];
        snprintf(name, sizeof name, "activations stage %d gpipe", s);
        lab_csv(L, name, ag, "B");
        snprintf(name, sizeof name, "activations stage %d 1f1b", s);
        lab_csv(L, name, a1, "B");
    }
    free(r);

    /* The real thing: the "lab" model cut in 2 stages over the 2 ranks (1F1B), against the
     * same model on one rank (rank 0 alone, its own communicator). */
    if (L->size != 2) {
        lab_printf(L, "\n  the real pipeline needs 2 ranks (make lab10 runs it so): skipped\n");
        return;
    }
    float pipe_loss[RUN_STEPS] = {0}, one_loss[RUN_STEPS] = {0};
    double t0 = lab_now();
    int rc = real_run(L, L->world, 2, lab_path(L, "trace.json"), pipe_loss);
    double t_pipe = lab_now() - t0;
    int rc1 = 0;
    if (L->rank == 0) rc1 = real_run(L, NULL, 1, NULL, one_loss);
    lab_printf(L, "\n  a real 2-stage pipeline (the \"lab\" model, 1F1B, 4 micro-batches of 4) "
                  "vs one rank:\n  %4s %12s %12s %10s\n", "step", "2 stages", "1 rank", "|diff|");
    double worst = 0;
    for (int k = 0; k < RUN_STEPS; k++) {
        double d = fabs((double)pipe_loss[k] - (double)one_loss[k]);
        if (d > worst) worst = d;
        lab_printf(L, "  %4d %12.6f %12.6f %10.2e\n", k + 1, pipe_loss[k], one_loss[k], d);
        char name[64];
        snprintf(name, sizeof name, "loss step %d 2 stages", k + 1);
        lab_csv(L, name, pipe_loss[k], "");
        snprintf(name, sizeof name, "loss step %d 1 rank", k + 1);
        lab_csv(L, name, one_loss[k], "");
    }
    lab_csv(L, "pipeline run wall", t_pipe, "s");
    /* rank 0 holds both curves; the other rank agrees with it */
    lab_check(L, "2-stage losses = 1-rank losses",
              L->rank != 0 || (rc == 0 && rc1 == 0 && worst <= 1e-5),
              "|diff| <= 1e-5", "%.2e", worst);
    lab_printf(L, "  trace (one row per stage): %s\n", lab_path(L, "trace.json"));
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "10", "Pipelines: GPipe vs 1F1B");
    if (rc != 0) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
