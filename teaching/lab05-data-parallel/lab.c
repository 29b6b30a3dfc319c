/* Lab 05: data parallel, naive -> flat -> bucketed with overlap.
 *
 * `check` grades the student's three averagings twice:
 *   - correctness, inside a real training loop: each rank runs its own single-rank engine
 *     (ZeRO-0 on one rank: no reduction of its own) on its own shard of the data; before
 *     each optimizer step the student's function averages the engine's gradients over the
 *     ranks; the averaged gradients must equal the library's allreduce / N, and after 3
 *     steps the weights must equal those of the library's 2-rank ZeRO-0 engine;
 *   - speed, on the simulated clock: a backward pass of the "small" model on a V100 is
 *     replayed tensor by tensor (each tensor's backward time from the cost model, charged
 *     on the simulated compute stream) with the student's communication schedule charged
 *     on the simulated comm stream (the comm's simulator: zl_comm_set_sim). The step time
 *     and the exposed communication (compute waiting for comm) are read off the clock.
 * `demo` runs the simulated replay of the three schedules and writes them side by side in
 * one trace (process 0 naive, 1 flat, 2 bucketed). */
#include "lab.h"
#include "student.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NAIVE, FLAT, BUCKETED, NUM_METHODS };
static const char *method_name[NUM_METHODS] = {"naive", "flat", "bucketed"};

/* The averaging of one method over g (flat: scratch of the total), on c. For the
 * bucketed one, `backward` (may be NULL) runs tensor i's backward before it is ready. */
typedef void (*backward_fn)(void *ctx, int i);
static int average(int method, zl_comm *c, dp_grads *g, float *flat, size_t bucket_bytes,
                   backward_fn backward, void *ctx)
{
    if (method == NAIVE || method == FLAT) {
        for (int i = g->n - 1; backward && i >= 0; i--) backward(ctx, i);
        return method == NAIVE ? dp_naive(c, g) : dp_flat(c, g, flat);
    }
    dp_bucketer b;
    memset(&b, 0, sizeof b);
    b.c = c, b.g = g, b.flat = flat, b.bucket_bytes = bucket_bytes;
    int rc = dp_bucket_begin(&b);
    for (int i = g->n - 1; rc == 0 && i >= 0; i--) {
        if (backward) backward(ctx, i);
        rc = dp_bucket_ready(&b, i);
    }
    if (rc == 0) rc = dp_bucket_end(&b);
    /* a failed or unwritten student leaves requests in flight: complete them */
    for (int k = 0; k < DP_MAX_BUCKETS; k++)
        if (b.req[k].active) zl_comm_wait(c, &b.req[k]);
    return rc;
}

/* ------------------------------------------------------------------ the training loop */

#define STEPS 3
static const char *config =
    "{\"train_micro_batch_size_per_gpu\": 2, \"gradient_accumulation_steps\": 1,"
    " \"steps_per_print\": 1000, \"zero_optimization\": {\"stage\": 0},"
    " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 0.001}}}";

static void run_options(zl_run_options *o, zl_comm *comm)
{
    zl_run_options_init(o);
    o->config_text = config;
    o->model = "lab";
    o->seq_len = 32;
    o->steps = STEPS;
    o->comm = comm;
}

typedef struct observer {
    lab *L;
    zl_engine *e;
    int method;
    int rc;               /* the student's first failure */
    size_t checked, bad;  /* gradient elements compared, and those that differ */
    float *local, *ref, *flat;
} observer;

static zl_status next_batch(void *ctx, int32_t *inputs, int32_t *targets)
{
    zl_loader_next(ctx, inputs, targets);
    return ZL_OK;
}

/* Before the engine's optimizer step: the student averages its gradients over the world;
 * the reference is the library's allreduce of a copy, / N. */
static void before_step(void *ctx, const zl_instr *in)
{
    observer *ob = ctx;
    if (!in || in->kind != ZL_OPTIMIZER_STEP) return;
    const zl_model *m = zl_engine_model(ob->e);
    int n = m->num_params;
    float **grad = malloc((size_t)n * sizeof *grad);
    size_t *numel = malloc((size_t)n * sizeof *numel);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        grad[i] = m->grad_ptr[i];
        numel[i] = m->params[i].numel;
        memcpy(ob->local + total, grad[i], numel[i] * sizeof(float));
        total += numel[i];
    }
    memcpy(ob->ref, ob->local, total * sizeof(float));
    zl_comm_allreduce(ob->L->world, ob->ref, total, ZL_F32, ZL_REDUCE_SUM);
    float inv = 1.0f / (float)ob->L->size;
    for (size_t k = 0; k < total; k++) ob->ref[k] *= inv;
    dp_grads g = {n, grad, numel};
    int rc = ob->rc == 0 ? average(ob->method, ob->L->world, &g, ob->flat, 4096, NULL, NULL) : ob->rc;
    if (rc != 0 && ob->rc == 0) ob->rc = rc;
    if (rc == 0) {
        size_t off = 0;
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < numel[i]; k++, off++, ob->checked++)
                if (memcmp(&grad[i][k], &ob->ref[off], sizeof(float)) != 0) ob->bad++;
    } else {
        /* leave the library's mean in place, so the engine can go on */
        size_t off = 0;
        for (int i = 0; i < n; i++, off += numel[i - 1])
            memcpy(grad[i], ob->ref + off, numel[i] * sizeof(float));
    }
    free(grad);
    free(numel);
}

/* The library's 2-rank ZeRO-0 run: its weights after STEPS steps (numel floats, malloc'd). */
static float *reference_weights(lab *L, size_t *numel)
{
    zl_run_options o;
    run_options(&o, L->world);
    zl_run run;
    float loss;
    zl_status st = zl_run_init(&run, &o);
    for (long s = 0; st == ZL_OK && s < STEPS; s++) st = zl_run_step(&run, &loss);
    float *w = NULL;
    if (st == ZL_OK) {
        *numel = zl_engine_model(run.engine)->params_numel;
        w = malloc(*numel * sizeof *w);
        if (w) st = zl_engine_gather_params(run.engine, w);
    }
    if (st != ZL_OK) {
        lab_printf(L, "  the library's ZeRO-0 run failed: %s\n", zl_last_error());
        free(w);
        w = NULL;
    }
    zl_run_free(&run);
    return w;
}

static void grade_training(lab *L, int method, const float *ref_w, size_t ref_n)
{
    char item[80];
    zl_run_options o;
    run_options(&o, NULL); /* this rank alone: the engine reduces nothing */
    zl_run run;
    observer ob = {.L = L, .method = method};
    double maxdiff = INFINITY;
    zl_status st = zl_run_init(&run, &o);
    if (st == ZL_OK) {
        const zl_model *m = zl_engine_model(run.engine);
        size_t n = m->params_numel;
        ob.e = run.engine;
        ob.local = malloc(n * sizeof(float));
        ob.ref = malloc(n * sizeof(float));
        ob.flat = malloc(n * sizeof(float));
        /* this rank's shard of the data, as the library's data-parallel loader deals it */
        zl_loader ld;
        st = zl_loader_init(&ld, run.dataset, run.loader.B, run.loader.T, L->rank, L->size);
        zl_engine_set_instr_observer(run.engine, before_step, &ob);
        float loss;
        for (int s = 0; st == ZL_OK && s < STEPS; s++)
            st = zl_engine_train_batch(run.engine, next_batch, &ld, &loss);
        float *w = malloc(n * sizeof(float));
        if (st == ZL_OK && w && ref_w && ref_n == n &&
            zl_engine_gather_params(run.engine, w) == ZL_OK) {
            maxdiff = 0;
            for (size_t k = 0; k < n; k++) maxdiff = fmax(maxdiff, fabs((double)w[k] - ref_w[k]));
        }
        free(w);
        free(ob.local), free(ob.ref), free(ob.flat);
    }
    if (st != ZL_OK) lab_printf(L, "  the single-rank engine failed: %s\n", zl_last_error());
    zl_run_free(&run);

    snprintf(item, sizeof item, "%s: gradients = allreduce / N", method_name[method]);
    if (ob.rc != 0)
        lab_check(L, item, false, "exact, 3 steps", "%s",
                  ob.rc == LAB_NOT_DONE ? "not written" : "failed");
    else
        lab_check(L, item, st == ZL_OK && ob.checked > 0 && ob.bad == 0, "exact, 3 steps",
                  "%zu of %zu differ", ob.bad, ob.checked);
    snprintf(item, sizeof item, "%s: weights = engine's ZeRO-0", method_name[method]);
    if (ob.rc != 0)
        lab_check(L, item, false, "max |diff| = 0, 3 steps", "%s",
                  ob.rc == LAB_NOT_DONE ? "not written" : "failed");
    else
        lab_check(L, item, maxdiff == 0.0, "max |diff| = 0, 3 steps", "max |diff| %.3g", maxdiff);
}

/* ------------------------------------------------------------------ the simulated replay */

typedef struct replay {
    const zl_cluster *cl;
    zl_sim sim;
    int tokens;             /* tokens of this rank's micro-batch */
    const zl_param_info *params;
    double compute;         /* backward seconds charged */
} replay;

/* Tensor i's backward on the simulated card (the cost model's roofline, at least a
 * kernel launch): a 2-D weight is a GEMM, dW = dY^T X, plus dX = dY W (4 x numel x tokens
 * FLOPs); a bias, a LayerNorm or the position embedding is a reduction over the tokens
 * (memory-bound). */
static double backward_seconds(const replay *r, int i)
{
    const zl_param_info *p = &r->params[i];
    double n = (double)p->numel, T = r->tokens;
    bool gemm = p->ndim == 2 && !strstr(p->name, "wpe");
    double flops = gemm ? 4 * n * T : 2 * n * T;
    double bytes = gemm ? 3 * 4 * n : 4 * n * T + 3 * 4 * n;
    double t = zl_cost_op(r->cl->device, gemm ? ZL_SIM_GEMM : ZL_SIM_ELEMENTWISE, flops, bytes, ZL_F32);
    return t > ZL_COST_KERNEL_LAUNCH ? t : ZL_COST_KERNEL_LAUNCH;
}

static void replay_backward(void *ctx, int i)
{
    replay *r = ctx;
    char name[80]; /* a span keeps its first 39 characters */
    snprintf(name, sizeof name, "bwd %s", r->params[i].name);
    double t = backward_seconds(r, i);
    zl_timeline_kernel(&r->sim.timeline, name, t);
    r->compute += t;
}

typedef struct timeline_result {
    int rc;
    double step, compute, exposed, comm_busy;
} timeline_result;

#define TIMELINE_MODEL "small"
#define TIMELINE_B 8
#define BUCKET_BYTES ((size_t)4 << 20)

/* Replay the three schedules on fresh simulators; sims[k] keep their spans (the caller
 * frees them). */
static void run_timelines(lab *L, zl_cluster *cl, replay *rp, timeline_result *res)
{
    zl_gpt_config cfg;
    zl_device dev;
    zl_model m;
    memset(res, 0, NUM_METHODS * sizeof *res);
    if (zl_gpt_config_preset(TIMELINE_MODEL, &cfg) != ZL_OK ||
        zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "timeline", 0) != ZL_OK ||
        zl_model_create(&m, &cfg, &dev) != ZL_OK) {
        lab_printf(L, "  cannot build the %s model's table: %s\n", TIMELINE_MODEL, zl_last_error());
        for (int k = 0; k < NUM_METHODS; k++) res[k].rc = -1;
        return;
    }
    int n = m.num_params;
    float **grad = malloc((size_t)n * sizeof *grad);
    size_t *numel = malloc((size_t)n * sizeof *numel);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (numel[i] = m.params[i].numel);
    float *store = malloc(total * sizeof(float)), *flat = malloc(total * sizeof(float));
    for (int k = 0; k < NUM_METHODS; k++) {
        replay *r = &rp[k];
        r->cl = cl;
        r->tokens = TIMELINE_B * cfg.max_seq_len;
        r->params = m.params;
        r->compute = 0;
        zl_sim_init(&r->sim, NULL, NULL, NULL, true);
        zl_cost_attach(&r->sim, cl);
        size_t off = 0;
        for (int i = 0; i < n; i++, off += numel[i - 1]) grad[i] = store + off;
        for (size_t e = 0; e < total; e++) store[e] = (float)((e + (size_t)L->rank) % 5);
        dp_grads g = {n, grad, numel};
        zl_comm_set_sim(L->world, &r->sim);
        res[k].rc = average(k, L->world, &g, flat, BUCKET_BYTES, replay_backward, r);
        zl_comm_set_sim(L->world, NULL);
        const zl_timeline *tl = &r->sim.timeline;
        res[k].step = tl->clock[ZL_STREAM_COMPUTE];
        res[k].compute = r->compute;
        res[k].exposed = tl->exposed_comm;
        res[k].comm_busy = tl->busy[ZL_STREAM_COMM];
        /* the slowest rank's figures */
        double v[4] = {res[k].step, res[k].compute, res[k].exposed, res[k].comm_busy};
        zl_comm_allreduce(L->world, v, 4, ZL_F64, ZL_REDUCE_MAX);
        res[k].step = v[0], res[k].compute = v[1], res[k].exposed = v[2], res[k].comm_busy = v[3];
    }
    lab_printf(L, "  simulated backward of the '%s' model (%zu parameters in %d tensors, %d tokens"
                  " per rank) on %d x %s, buckets of %zu MiB\n",
               TIMELINE_MODEL, total, n, TIMELINE_B * cfg.max_seq_len, zl_cluster_size(cl),
               cl->device->display, BUCKET_BYTES >> 20);
    free(store), free(flat), free(grad), free(numel);
    zl_model_destroy(&m);
}

static void print_timelines(lab *L, const timeline_result *res)
{
    lab_printf(L, "  %-10s %12s %12s %14s %14s\n", "schedule", "step (ms)", "backward", "comm busy",
               "exposed comm");
    for (int k = 0; k < NUM_METHODS; k++) {
        if (res[k].rc != 0) {
            lab_printf(L, "  %-10s %s\n", method_name[k],
                       res[k].rc == LAB_NOT_DONE ? "(not written yet)" : "(failed)");
            continue;
        }
        lab_printf(L, "  %-10s %12.3f %12.3f %14.3f %14.3f\n", method_name[k], res[k].step * 1e3,
                   res[k].compute * 1e3, res[k].comm_busy * 1e3, res[k].exposed * 1e3);
        char name[64];
        snprintf(name, sizeof name, "%s step time", method_name[k]);
        lab_csv(L, name, res[k].step, "s");
        snprintf(name, sizeof name, "%s backward compute", method_name[k]);
        lab_csv(L, name, res[k].compute, "s");
        snprintf(name, sizeof name, "%s comm busy", method_name[k]);
        lab_csv(L, name, res[k].comm_busy, "s");
        snprintf(name, sizeof name, "%s exposed comm", method_name[k]);
        lab_csv(L, name, res[k].exposed, "s");
    }
}

static bool timelines(lab *L, timeline_result *res, bool write_trace)
{
    zl_cluster cl;
    char spec[32];
    snprintf(spec, sizeof spec, "%dxv100-16gb", L->size);
    if (zl_cluster_parse(spec, &cl) != ZL_OK) {
        lab_printf(L, "  %s: %s\n", spec, zl_last_error());
        return false;
    }
    replay rp[NUM_METHODS];
    run_timelines(L, &cl, rp, res);
    print_timelines(L, res);
    int last = -1, first = -1;
    for (int k = 0; k < NUM_METHODS; k++)
        if (res[k].rc == 0) last = k, first = first < 0 ? k : first;
    if (write_trace && first < 0) lab_printf(L, "  no trace: none of the schedules ran\n");
    if (write_trace && first >= 0 && L->rank == 0) {
        FILE *f = fopen(lab_path(L, "trace.json"), "w");
        for (int k = 0; f && k < NUM_METHODS; k++)
            if (res[k].rc == 0)
                zl_timeline_write_trace(&rp[k].sim.timeline, f, k, k == first, k == last);
        if (f) {
            fclose(f);
            lab_printf(L, "  trace: %s (process 0: naive, 1: flat, 2: bucketed; rank 0's view)\n",
                       lab_path(L, "trace.json"));
        }
    }
    for (int k = 0; k < NUM_METHODS; k++) zl_sim_free(&rp[k].sim);
    return true;
}

/* ------------------------------------------------------------------ modes */

static void grade(lab *L)
{
    size_t ref_n = 0;
    float *ref_w = reference_weights(L, &ref_n);
    for (int k = 0; k < NUM_METHODS; k++) grade_training(L, k, ref_w, ref_n);
    free(ref_w);

    timeline_result res[NUM_METHODS];
    if (!timelines(L, res, false)) return;
    bool all = res[0].rc == 0 && res[1].rc == 0 && res[2].rc == 0;
    if (!all) {
        lab_check(L, "timeline: step naive > flat > bucketed", false, "ordered", "not written");
        lab_check(L, "timeline: exposed comm bucketed < flat", false, "bucketed < flat", "not written");
        return;
    }
    lab_check(L, "timeline: step naive > flat > bucketed",
              res[0].step > res[1].step && res[1].step > res[2].step, "ordered",
              "%.3f > %.3f > %.3f ms", res[0].step * 1e3, res[1].step * 1e3, res[2].step * 1e3);
    lab_check(L, "timeline: exposed comm bucketed < flat", res[2].exposed < res[1].exposed,
              "bucketed < flat", "%.3f vs %.3f ms", res[2].exposed * 1e3, res[1].exposed * 1e3);
}

static void demo(lab *L)
{
    timeline_result res[NUM_METHODS];
    timelines(L, res, true);
    if (res[0].rc || res[1].rc || res[2].rc)
        lab_printf(L, "  (write the missing functions in student.c and run `make lab05` again)\n");
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "05", "Data parallel: naive, flat, bucketed");
    if (rc != 0) return rc;
    if (L.check) grade(&L);
    else demo(&L);
    return lab_end(&L);
}
