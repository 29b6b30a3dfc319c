/* zl_bench: how fast zerolab trains, against what the machine can do.
 *
 *   1. sgemm peak: cblas_sgemm on large square matrices at each thread count, the best of
 *      a few runs. GEMMs are most of a training step's FLOPs, so this is the ceiling.
 *   2. Training steps of a fixed model (fp32, cpu backend, AdamW, no clipping), built as
 *      `zerolab train` builds a run (src/run/run.h: a DeepSpeed config, a data set of
 *      random tokens, zl_run_step): warm-up steps, then timed steps, each split into
 *      forward, backward and optimizer step (the run's wall-clock breakdown).
 *      Model FLOPs per step = 3 x zl_model_forward_flops (backward is twice forward).
 *   3. A short profiled pass with a timing op table (op_profile.h): time per op kind and
 *      per GEMM shape, i.e. where the time goes.
 *
 * Output: one machine-readable line per measurement ("bench <what> key=value ..."), which
 * bench/run.sh collects and bench/summarize.py compares with PyTorch, and a human table.
 *
 * usage: zl_bench [--config small,gpt2-124m] [--threads 1,2] [--steps N] [--warmup N]
 *                 [--batch B] [--profile-steps N] [--peak-only] [--no-peak]
 *                 [--precision fp32|bf16|fp16] [--blas-fallback KERNEL]
 * --blas-fallback Prescott: first switch OpenBLAS to that kernel, standing in for a library
 * that does not know this CPU, then let zerolab choose as it does at start-up
 * (backends/cpu/cpu_blas.h): what a user of such a machine gets.
 * ZL_BENCH_QUICK=1: fewer steps and a smaller sgemm (to check that the harness works). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cpu/cpu.h" /* zl__cpu_gemm_lp_onednn: the bf16 peak */
#include "backends/cpu/cpu_blas.h"
#include "bench/op_profile.h"
#include "data/dataset.h"
#include "engine/engine.h"
#include "model/gpt_config.h"
#include "run/run.h"

#define MAX_LIST 8
#define SEQ_LEN 128

typedef struct bench_args {
    const char *blas_fallback; /* a kernel to start from (NULL: the library's choice) */
    const char *configs[MAX_LIST];
    int num_configs;
    int threads[MAX_LIST];
    int num_threads;
    int steps, warmup, batch, profile_steps; /* 0: the config's default */
    bool peak_only, no_peak, quick;
    zl_dtype precision; /* ZL_F32, ZL_BF16 or ZL_F16 */
} bench_args;

/* The per-config defaults: batch and step counts that give a stable figure in a
 * reasonable time (a gpt2-124m step is one to a few seconds on one or two cores). */
typedef struct config_defaults {
    const char *name;
    int batch, warmup, steps, quick_warmup, quick_steps;
} config_defaults;

static const config_defaults k_defaults[] = {
    {"small", 8, 3, 20, 1, 3},
    {"gpt2-124m", 4, 2, 8, 1, 2},
};

typedef struct bench_result {
    char config[64];
    int threads, B, T, steps;
    double ms_step, ms_mean, ms_min, fwd_ms, bwd_ms, opt_ms, gflop_step, peak;
} bench_result;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

/* ---- 1. sgemm peak ------------------------------------------------------------------ */

/* Best GFLOP/s of C = A @ B on n x n matrices over `reps` timed runs (after one untimed
 * run that faults the pages in and wakes the thread pool). */
/* The rate of a large square product, the best of `reps` after one warm-up: sgemm
 * (bf16 false), or the bf16 product on oneDNN over bf16-exact values (0 where oneDNN
 * cannot run it). */
static double gemm_peak(int n, int reps, bool bf16)
{
    size_t nn = (size_t)n * n;
    float *a = aligned_alloc(64, nn * sizeof(float));
    float *b = aligned_alloc(64, nn * sizeof(float));
    float *c = aligned_alloc(64, nn * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "zl_bench: out of memory for the %dx%d sgemm\n", n, n);
        exit(1);
    }
    for (size_t i = 0; i < nn; i++) { /* multiples of 1/128: exact in bf16 */
        a[i] = (float)((i * 7) % 13) / 128.0f;
        b[i] = (float)((i * 5) % 11) / 128.0f;
        c[i] = 0;
    }
    double best = 0, flops = 2.0 * n * (double)n * n;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        if (!bf16)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                        0.0f, c, n);
        else if (!zl__cpu_gemm_lp_onednn(c, a, b, ZL_F32, n, n, n, n, n, n, false, false, 1.0f, 0.0f))
            break; /* no oneDNN bf16 here */
        double g = flops / (now() - t0) / 1e9;
        if (r > 0 && g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* ---- 2. training steps ---------------------------------------------------------------- */

static const config_defaults *defaults_for(const char *name)
{
    for (size_t i = 0; i < sizeof k_defaults / sizeof k_defaults[0]; i++)
        if (!strcmp(k_defaults[i].name, name)) return &k_defaults[i];
    static const config_defaults other = {NULL, 4, 2, 5, 1, 2};
    return &other;
}

/* Random tokens, the same for every run (xorshift64). Timing does not depend on them;
 * the loss of the first step should be close to ln(V). */
static void fill_tokens(int32_t *x, size_t n, int V, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t s = *state;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *state = s;
        x[i] = (int32_t)(s % (uint64_t)V);
    }
}

#define NUM_BATCHES 4

/* The run's DeepSpeed config: one micro-batch per step, AdamW (lr 3e-4, weight decay 0.1
 * on 2-D weights only, as in pytorch_bench.py), constant LR, no clipping (the PyTorch side
 * does not clip either). 16 bits: fp16 gets a static loss scale, so that no step of the
 * timing is an overflow the dynamic scaler would skip (a skipped step would flatter fp16);
 * bf16 does not scan its gradients for inf/nan (the timing is of training, not of the
 * check, and PyTorch's autocast does no such scan). */
static void bench_config_text(char *out, size_t n, int B, zl_dtype precision)
{
    const char *prec = precision == ZL_F16 ? ", \"fp16\": {\"enabled\": true, \"loss_scale\": 1024}"
                       : precision == ZL_BF16
                           ? ", \"bf16\": {\"enabled\": true, \"check_grad_overflow\": false}"
                           : "";
    snprintf(out, n,
             "{\"train_micro_batch_size_per_gpu\": %d, \"gradient_accumulation_steps\": 1,"
             " \"gradient_clipping\": 0,"
             " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-4, \"betas\": [0.9, 0.999],"
             "   \"eps\": 1e-8, \"weight_decay\": 0.1}}%s}",
             B, prec);
}

static int run_config(const char *name, int threads, const bench_args *a, double peak,
                      bench_result *res)
{
    const config_defaults *d = defaults_for(name);
    int B = a->batch ? a->batch : d->batch;
    int warmup = a->warmup ? a->warmup : a->quick ? d->quick_warmup : d->warmup;
    int steps = a->steps ? a->steps : a->quick ? d->quick_steps : d->steps;
    int prof_steps = a->profile_steps >= 0 ? a->profile_steps : a->quick ? 1 : 2;

    /* The data: NUM_BATCHES micro-batches of random tokens (+1 for the last target), which
     * the run's loader walks in turn. Its vocabulary is the model's. */
    zl_gpt_config cfg;
    zl_status st = zl_gpt_config_resolve(name, &cfg);
    if (st != ZL_OK) {
        fprintf(stderr, "zl_bench: %s\n", zl_last_error());
        return 1;
    }
    int T = SEQ_LEN < cfg.max_seq_len ? SEQ_LEN : cfg.max_seq_len;
    size_t ntok = (size_t)B * T;
    zl_dataset data = {.ntokens = NUM_BATCHES * ntok + 1, .vocab_size = cfg.vocab_size};
    snprintf(data.desc, sizeof data.desc, "random tokens (%d batches of %d x %d)", NUM_BATCHES, B, T);
    data.tokens = malloc(data.ntokens * sizeof *data.tokens);
    double *step_s = malloc((size_t)steps * sizeof *step_s);
    if (!data.tokens || !step_s) {
        fprintf(stderr, "zl_bench: out of host memory\n");
        exit(1);
    }
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    fill_tokens(data.tokens, data.ntokens, cfg.vocab_size, &rng);

    /* The run, as `zerolab train` builds one: fp32 (or --precision), the cpu backend, one
     * rank, no simulated card (an unlimited device), parameters from seed 1337. */
    char json[1024];
    bench_config_text(json, sizeof json, B, a->precision);
    zl_run_options o;
    zl_run_options_init(&o);
    o.config_text = json;
    o.config_name = "<zl_bench>";
    o.model_config = &cfg;
    o.dataset = &data;
    o.steps = warmup + steps + prof_steps;
    o.seed = 1337;
    o.seq_len = T;
    o.backend = "cpu";
    o.threads = threads;
    zl_run run;
    if ((st = zl_run_init(&run, &o)) != ZL_OK) {
        fprintf(stderr, "zl_bench: %s\n", zl_last_error());
        return 1;
    }

    /* Each step's wall time is zl_run_step's (its loader copy and the one-rank agreement
     * cost microseconds); the phases are its wall-clock breakdown (run.h). */
    float loss = NAN, loss_first = NAN;
    double fwd = 0, bwd = 0, opt = 0;
    for (int s = -warmup; s < steps; s++) {
        double t0 = now();
        if ((st = zl_run_step(&run, &loss)) != ZL_OK) {
            fprintf(stderr, "zl_bench: %s\n", zl_last_error());
            return 1;
        }
        double t1 = now();
        if (s == -warmup) loss_first = loss;
        if (s >= 0) {
            step_s[s] = t1 - t0;
            fwd += run.wall_forward_s;
            bwd += run.wall_backward_s;
            opt += run.wall_step_s;
        }
    }
    if (zl_engine_skipped_steps(run.engine)) {
        fprintf(stderr, "zl_bench: %s: %lld steps skipped on overflow: the timing is void\n", name,
                (long long)zl_engine_skipped_steps(run.engine));
        return 1;
    }
    if (!isfinite(loss) || !isfinite(loss_first)) {
        fprintf(stderr, "zl_bench: %s: loss is %g (first %g): the model is broken\n", name,
                (double)loss, (double)loss_first);
        return 1;
    }

    double total = 0, mn = INFINITY;
    for (int s = 0; s < steps; s++) {
        total += step_s[s];
        if (step_s[s] < mn) mn = step_s[s];
    }
    memset(res, 0, sizeof *res);
    snprintf(res->config, sizeof res->config, "%s", name);
    res->threads = threads;
    res->B = B;
    res->T = T;
    res->steps = steps;
    res->ms_step = 1e3 * median(step_s, steps);
    res->ms_mean = 1e3 * total / steps;
    res->ms_min = 1e3 * mn;
    res->fwd_ms = 1e3 * fwd / steps;
    res->bwd_ms = 1e3 * bwd / steps;
    res->opt_ms = 1e3 * opt / steps;
    res->gflop_step = zl_run_step_flops(&run) / 1e9; /* one rank, one micro-batch */
    res->peak = peak;

    double tok_s = ntok / (res->ms_step / 1e3), gflops = res->gflop_step / (res->ms_step / 1e3);
    printf("bench zerolab precision=%s config=%s threads=%d B=%d T=%d steps=%d params=%zu gflop_step=%.3f "
           "ms_step=%.2f ms_mean=%.2f ms_min=%.2f tok_s=%.1f gflops=%.2f peak_gflops=%.2f "
           "peak_frac=%.4f fwd_ms=%.2f bwd_ms=%.2f opt_ms=%.2f loss_first=%.4f loss_last=%.4f\n",
           zl_dtype_name(a->precision), name, threads, B, T, steps,
           zl_gpt_config_num_params(&run.model), res->gflop_step, res->ms_step, res->ms_mean,
           res->ms_min, tok_s, gflops, peak, peak > 0 ? gflops / peak : 0.0, res->fwd_ms,
           res->bwd_ms, res->opt_ms, (double)loss_first, (double)loss);
    fflush(stdout);

    /* 3. The profiled pass: more steps of the same run, with the timing op table installed
     * as its device's ops (the engine and the model call the kernels through the device,
     * so they run unchanged). */
    if (prof_steps > 0) {
        const zl_ops *real = run.device.ops;
        run.device.ops = op_profile_wrap(real);
        double t0 = now();
        for (int s = 0; s < prof_steps; s++)
            if ((st = zl_run_step(&run, &loss)) != ZL_OK) {
                fprintf(stderr, "zl_bench: %s\n", zl_last_error());
                return 1;
            }
        double dt = now() - t0;
        run.device.ops = real;
        char op_prefix[128], gemm_prefix[128];
        snprintf(op_prefix, sizeof op_prefix, "bench zerolab-op config=%s threads=%d", name,
                 threads);
        snprintf(gemm_prefix, sizeof gemm_prefix, "bench zerolab-gemm config=%s threads=%d",
                 name, threads);
        op_profile_print(stdout, op_prefix, gemm_prefix, prof_steps, dt);
        fflush(stdout);
    }
    zl_run_free(&run);
    free(step_s);
    free(data.tokens);
    return 0;
}

/* ---- command line -------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: zl_bench [--config small,gpt2-124m] [--threads 1,2] [--steps N] [--warmup N]\n"
            "                [--batch B] [--profile-steps N] [--peak-only] [--no-peak]\n"
            "                [--precision fp32|bf16|fp16] [--blas-fallback KERNEL]\n"
            "  ZL_BENCH_QUICK=1    fewer steps, smaller sgemm (checks the harness)\n"
            "  ZL_BENCH_PEAK_N=N   sgemm size for the peak (default 3072; quick 1024)\n");
}

static int split_list(char *s, const char **out)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < MAX_LIST; tok = strtok(NULL, ",")) out[n++] = tok;
    return n;
}

static int parse_args(int argc, char **argv, bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->profile_steps = -1;
    a->quick = env_int("ZL_BENCH_QUICK", 0) != 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (!strcmp(arg, "--peak-only")) a->peak_only = true, takes = false;
        else if (!strcmp(arg, "--no-peak")) a->no_peak = true, takes = false;
        else if (!strcmp(arg, "--help")) { usage(stdout); exit(0); }
        else if (!val) { usage(stderr); return 1; }
        else if (!strcmp(arg, "--config")) a->num_configs = split_list(argv[i + 1], a->configs);
        else if (!strcmp(arg, "--threads")) {
            const char *t[MAX_LIST];
            a->num_threads = split_list(argv[i + 1], t);
            for (int k = 0; k < a->num_threads; k++)
                if ((a->threads[k] = atoi(t[k])) <= 0) { usage(stderr); return 1; }
        }
        else if (!strcmp(arg, "--steps")) a->steps = atoi(val);
        else if (!strcmp(arg, "--warmup")) a->warmup = atoi(val);
        else if (!strcmp(arg, "--batch")) a->batch = atoi(val);
        else if (!strcmp(arg, "--profile-steps")) a->profile_steps = atoi(val);
        else if (!strcmp(arg, "--blas-fallback")) a->blas_fallback = val;
        else if (!strcmp(arg, "--precision")) {
            if (!strcmp(val, "fp32")) a->precision = ZL_F32;
            else if (!strcmp(val, "bf16")) a->precision = ZL_BF16;
            else if (!strcmp(val, "fp16")) a->precision = ZL_F16;
            else { fprintf(stderr, "zl_bench: --precision is fp32, bf16 or fp16, not '%s'\n", val); return 1; }
        }
        else {
            fprintf(stderr, "zl_bench: unknown option '%s'\n", arg);
            usage(stderr);
            return 1;
        }
        if (takes) i++;
    }
    if (!a->num_configs) {
        a->configs[0] = "small";
        a->configs[1] = "gpt2-124m";
        a->num_configs = 2;
    }
    if (!a->num_threads) {
        a->threads[0] = 1;
        a->threads[1] = 2;
        a->num_threads = 2;
    }
    return 0;
}

static void print_table(const bench_result *r, int n)
{
    printf("\nzerolab training steps (fp32, cpu backend, AdamW; median step)\n");
    printf("%-10s %3s %4s %9s %9s %9s %7s %9s %9s %9s\n", "config", "thr", "B", "ms/step",
           "tok/s", "GFLOP/s", "%peak", "fwd ms", "bwd ms", "opt ms");
    for (int i = 0; i < n; i++) {
        double g = r[i].gflop_step / (r[i].ms_step / 1e3);
        printf("%-10s %3d %4d %9.1f %9.0f %9.1f %6.1f%% %9.1f %9.1f %9.1f\n", r[i].config,
               r[i].threads, r[i].B, r[i].ms_step, r[i].B * r[i].T / (r[i].ms_step / 1e3), g,
               r[i].peak > 0 ? 100.0 * g / r[i].peak : 0.0, r[i].fwd_ms, r[i].bwd_ms,
               r[i].opt_ms);
    }
}

int main(int argc, char **argv)
{
    bench_args a;
    if (parse_args(argc, argv, &a)) return 2;
    int peak_n = env_int("ZL_BENCH_PEAK_N", a.quick ? 1024 : 3072);
    int peak_reps = a.quick ? 2 : 3;

    /* The kernel zerolab runs: the library's choice, or the one zerolab switches to at
     * start-up (cpu_blas.h), here before the peak is measured. */
    if (a.blas_fallback && !zl__cpu_blas_switch(a.blas_fallback)) {
        fprintf(stderr, "zl_bench: this OpenBLAS cannot switch to kernel '%s'\n", a.blas_fallback);
        return 1;
    }
    zl_cpu_blas_setup();
    printf("bench zerolab-env openblas_core=%s openblas_config=\"%s\" omp_max_threads=%d "
           "blas=\"%s\"\n", openblas_get_corename(), openblas_get_config(), omp_get_max_threads(),
           zl_cpu_blas_report());
    double peak[MAX_LIST] = {0};
    if (!a.no_peak) {
        for (int t = 0; t < a.num_threads; t++) {
            omp_set_num_threads(a.threads[t]);
            peak[t] = gemm_peak(peak_n, peak_reps, false);
            printf("bench sgemm threads=%d n=%d reps=%d gflops=%.2f\n", a.threads[t], peak_n,
                   peak_reps, peak[t]);
            double bf16 = gemm_peak(peak_n, peak_reps, true);
            if (bf16 > 0)
                printf("bench bf16gemm threads=%d n=%d reps=%d gflops=%.2f path=onednn\n",
                       a.threads[t], peak_n, peak_reps, bf16);
            fflush(stdout);
        }
    }
    if (a.peak_only) return 0;

    bench_result results[MAX_LIST * MAX_LIST];
    int nres = 0;
    for (int c = 0; c < a.num_configs; c++)
        for (int t = 0; t < a.num_threads; t++) {
            if (run_config(a.configs[c], a.threads[t], &a, peak[t], &results[nres])) return 1;
            nres++;
        }
    print_table(results, nres);
    return 0;
}
