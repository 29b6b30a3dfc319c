/* Lab 08: mixed precision (one rank).
 *
 * check: the student's fp32 -> bf16 / fp16 conversions bitwise against the library's
 * (src/base/dtype.h) over special values, every rounding boundary of the formats and
 * random patterns; the dynamic loss scaler step by step against the library's
 * (src/zero/loss_scaler.h) on long random and adversarial overflow sequences; the fp16
 * flush-to-zero fraction against a count made with the library's conversion.
 * demo: the lab model trained in fp32, in fp16 with a static loss scale of 1 and in fp16
 * with dynamic scaling: losses, the scale, and the fraction of the (fp32 run's) gradient
 * elements that fp16 flushes to zero with and without the scale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "student.h"

static float f32_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* xorshift64*: the patterns are the same on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* ------------------------------------------------------------ conversions */

typedef struct patterns {
    uint32_t *u;
    size_t n, cap;
} patterns;

static void push(patterns *p, uint32_t u)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->u = realloc(p->u, p->cap * sizeof *p->u);
    }
    p->u[p->n++] = u;
}

static void specials(patterns *p)
{
    const uint32_t s[] = {
        0x00000000u, 0x00000001u, 0x007fffffu, 0x00800000u, /* zero, f32 subnormals, min normal */
        0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f810000u, 0x3f800001u, /* 1 and bf16 ties */
        0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu,             /* max f32: rounds to inf in bf16 */
        0x7f800000u, 0x7f800001u, 0x7fc00000u, 0x7fffffffu, 0x7fa00000u, /* inf, NaNs */
        0x477fe000u, 0x477fefffu, 0x477ff000u, 0x47800000u, /* 65504, just below/at the tie to inf */
        0x38800000u, 0x387fffffu, 0x33800000u, 0x33000000u, 0x33000001u, 0x32ffffffu, /* f16 min normal, 2^-24, half of it */
        0x33c00000u, 0x34000000u, 0x34200000u, 0x35000000u, /* subnormal ties */
        0x3eaaaaabu, 0x40490fdbu,                          /* 1/3, pi */
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        push(p, s[i]);
        push(p, s[i] | 0x80000000u);
    }
}

/* Every value whose dropped bits sit at a rounding decision: for every kept pattern (the
 * top 32 - drop bits), the dropped bits 0, 1, half - 1, half, half + 1 and all ones. */
static void boundaries(patterns *p, int drop)
{
    uint32_t half = 1u << (drop - 1), all = (1u << drop) - 1;
    const uint32_t low[] = {0, 1, half - 1, half, half + 1, all};
    for (uint64_t top = 0; top < (1ull << (32 - drop)); top++)
        for (int k = 0; k < 6; k++) push(p, (uint32_t)(top << drop) | low[k]);
}

/* fp16 subnormal results: for every f32 exponent that lands in them and every result
 * value h, the f32 mantissas at h's own value, just around the half-way point to h + 1. */
static void f16_subnormals(patterns *p)
{
    for (uint32_t exp = 101; exp <= 113; exp++) {
        int e = (int)exp - 127 + 15;
        uint32_t shift = (uint32_t)(14 - e);
        for (uint32_t h = 0; ((h << shift) >> shift) == h && (h << shift) <= 0xffffffu; h++) {
            uint32_t base = h << shift, half = 1u << (shift - 1);
            const uint32_t off[] = {0, half - 1, half, half + 1};
            for (int k = 0; k < 4; k++) {
                uint32_t m = base + off[k];
                if (m < 0x800000u || m > 0xffffffu) continue;
                uint32_t u = (exp << 23) | (m & 0x7fffffu);
                push(p, u);
                push(p, u | 0x80000000u);
            }
        }
    }
}

static void randoms(patterns *p, size_t n)
{
    for (size_t i = 0; i < n; i++) push(p, (uint32_t)next_u64());
}

/* Grade one converter on one set of patterns (bitwise). */
static void grade_convert(lab *L, const char *item, bool bf16, const patterns *p)
{
    char target[64];
    snprintf(target, sizeof target, "= %s, bitwise", bf16 ? "zl_f32_to_bf16" : "zl_f32_to_f16");
    for (size_t i = 0; i < p->n; i++) {
        float x = f32_of(p->u[i]);
        uint16_t got = 0, want = bf16 ? zl_f32_to_bf16(x) : zl_f32_to_f16(x);
        int rc = bf16 ? f32_to_bf16(x, &got) : f32_to_f16(x, &got);
        if (rc != 0) {
            lab_check(L, item, false, target, "not written");
            return;
        }
        if (got != want) {
            lab_check(L, item, false, target, "0x%08x: 0x%04x != 0x%04x", (unsigned)p->u[i],
                      (unsigned)got, (unsigned)want);
            return;
        }
    }
    lab_check(L, item, true, target, "%zu/%zu equal", p->n, p->n);
}

/* ------------------------------------------------------------ loss scaler */

typedef struct scaler_case {
    const char *what;
    int64_t power, window, hysteresis;
    bool consecutive;
    double min_scale;
    int kind;      /* the overflow sequence: 0 random, 1 bursts, 2 window-1 clean then one,
                    * 3 all overflows (to the minimum, then errors) */
    double p;      /* overflow probability (kind 0) */
    long steps;
} scaler_case;

static bool next_overflow(const scaler_case *c, long i)
{
    switch (c->kind) {
    case 0: return (double)(next_u64() >> 11) * 0x1p-53 < c->p;
    case 1: return (i / 7) % 5 == 0 || (next_u64() & 63) == 0; /* bursts of 7 every 35 */
    case 2: return i % c->window == c->window - 1;
    default: return true;
    }
}

static void grade_scaler(lab *L, const scaler_case *c)
{
    char item[96], target[64];
    snprintf(item, sizeof item, "scaler: %s", c->what);
    snprintf(target, sizeof target, "= zl_loss_scaler, %ld steps", c->steps);
    zl_loss_scaler ref;
    if (zl_loss_scaler_init(&ref, ZL_SCALER_ZERO, 0, c->power, c->window, c->hysteresis,
                            c->consecutive, c->min_scale) != ZL_OK) {
        lab_check(L, item, false, target, "bad case: %s", zl_last_error());
        return;
    }
    lab08_scaler s = {.window = c->window, .hysteresis = c->hysteresis,
                      .consecutive_hysteresis = c->consecutive, .min_scale = c->min_scale,
                      .scale = ldexp(1.0, (int)c->power), .cur_hysteresis = c->hysteresis,
                      .cur_iter = 0, .last_overflow_iter = -1};
    long errors = 0;
    rng_state = 0x2545f4914f6cdd1dull ^ (uint64_t)c->steps ^ ((uint64_t)c->window << 32);
    for (long i = 0; i < c->steps; i++) {
        bool ov = next_overflow(c, i);
        bool ref_skip = false, skip = false, err = false;
        bool ref_err = zl_loss_scaler_update(&ref, ov, &ref_skip, NULL, 0) != ZL_OK;
        int rc = scaler_update(&s, ov, &skip, &err);
        if (rc != 0) {
            lab_check(L, item, false, target, "not written");
            return;
        }
        errors += ref_err;
        if (s.scale != ref.cur_scale || s.cur_hysteresis != ref.cur_hysteresis ||
            s.cur_iter != ref.cur_iter || s.last_overflow_iter != ref.last_overflow_iter ||
            skip != ref_skip || err != ref_err) {
            lab_check(L, item, false, target,
                      "step %ld (%s): scale %g/%g hyst %lld/%lld iter %lld/%lld%s", i,
                      ov ? "overflow" : "clean", s.scale, ref.cur_scale,
                      (long long)s.cur_hysteresis, (long long)ref.cur_hysteresis,
                      (long long)s.cur_iter, (long long)ref.cur_iter,
                      err != ref_err ? " error differs" : "");
            return;
        }
    }
    lab_check(L, item, true, target, "%ld steps equal (%ld err)", c->steps, errors);
}

/* ------------------------------------------------------------ flush to zero */

/* The count the card compares against: the library's conversion. */
static double ref_flush(const float *x, size_t n, float scale)
{
    size_t nz = 0, fl = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] == 0.0f) continue;
        nz++;
        if ((zl_f32_to_f16(x[i] * scale) & 0x7fffu) == 0) fl++;
    }
    return nz ? (double)fl / (double)nz : 0.0;
}

static void grade_flush(lab *L)
{
    size_t n = 200000;
    float *x = malloc(n * sizeof *x);
    rng_state = 0x9e3779b97f4a7c15ull; /* the same values whatever ran before */
    /* Gradient-like magnitudes: log-uniform over 1e-14 .. 1e-1, both signs, 1% zeros. */
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next_u64() >> 11) * 0x1p-53;
        double mag = pow(10.0, -14.0 + 13.0 * u);
        x[i] = (next_u64() % 100 == 0) ? 0.0f : (float)((next_u64() & 1) ? mag : -mag);
    }
    const float scales[] = {1.0f, 1024.0f, 65536.0f};
    for (int k = 0; k < 3; k++) {
        char item[96], target[64];
        double want = ref_flush(x, n, scales[k]), got = -1;
        snprintf(item, sizeof item, "fp16 flush fraction, scale %g", (double)scales[k]);
        snprintf(target, sizeof target, "= %.6f (|d| < 1e-9)", want);
        if (fp16_flush_fraction(x, n, scales[k], &got) != 0)
            lab_check(L, item, false, target, "not written");
        else
            lab_check(L, item, fabs(got - want) < 1e-9, target, "%.6f", got);
    }
    double got = -1;
    int rc = fp16_flush_fraction(x, 0, 1.0f, &got);
    lab_check(L, "fp16 flush fraction, no values", rc == 0 && got == 0.0, "= 0",
              rc ? "not written" : "%g", got);
    free(x);
}

static void grade(lab *L)
{
    patterns sp = {0}, b16 = {0}, b10 = {0}, sub = {0}, rnd = {0};
    specials(&sp);
    boundaries(&b16, 16); /* bf16 drops 16 bits */
    boundaries(&b10, 13); /* fp16 keeps 10 of f32's 23 mantissa bits */
    f16_subnormals(&sub);
    randoms(&rnd, 2000000);
    grade_convert(L, "bf16: special values", true, &sp);
    grade_convert(L, "bf16: every rounding boundary", true, &b16);
    grade_convert(L, "bf16: random patterns", true, &rnd);
    grade_convert(L, "fp16: special values", false, &sp);
    grade_convert(L, "fp16: every normal rounding boundary", false, &b10);
    grade_convert(L, "fp16: subnormal results", false, &sub);
    grade_convert(L, "fp16: random patterns", false, &rnd);
    free(sp.u), free(b16.u), free(b10.u), free(sub.u), free(rnd.u);

    const scaler_case cases[] = {
        {"DeepSpeed defaults, 0.1% overflow", 16, 1000, 2, false, 1, 0, 0.001, 100000},
        {"window 4, hyst 1, 30% overflow", 8, 4, 1, false, 1, 0, 0.3, 100000},
        {"window 5, hyst 3, consecutive", 10, 5, 3, true, 1, 0, 0.2, 100000},
        {"window 3, hyst 2, bursts", 6, 3, 2, false, 1, 1, 0, 100000},
        {"window-1 clean, then overflow", 12, 8, 2, true, 1, 2, 0, 20000},
        {"all overflow: to min, then errors", 5, 10, 2, false, 2, 3, 0, 50},
        {"min_scale 0.3 (not a power of 2)", 3, 2, 1, false, 0.3, 0, 0.6, 20000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) grade_scaler(L, &cases[i]);
    grade_flush(L);
}

/* ------------------------------------------------------------ demo */

static void demo_formats(lab *L)
{
    const float xs[] = {1.0f, 0.1f, 3.14159265f, 65504.0f, 65520.0f, 1e5f, 6e-5f, 6e-8f, 2e-8f, 1e-10f};
    lab_printf(L, "\n  fp32 -> bf16 / fp16 (your conversion; the library's where not written):\n");
    lab_printf(L, "  %14s %8s %14s %8s %14s\n", "x", "bf16", "back", "fp16", "back");
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        uint16_t b, h;
        if (f32_to_bf16(xs[i], &b) != 0) b = zl_f32_to_bf16(xs[i]);
        if (f32_to_f16(xs[i], &h) != 0) h = zl_f32_to_f16(xs[i]);
        lab_printf(L, "  %14.7g   0x%04x %14.7g   0x%04x %14.7g\n", (double)xs[i], (unsigned)b,
                   (double)zl_bf16_to_f32(b), (unsigned)h, (double)zl_f16_to_f32(h));
    }
}

typedef struct curve {
    const char *name, *config;
    zl_run run;
    bool ok;
} curve;

static void demo_training(lab *L)
{
    enum { STEPS = 40 };
    char fp32[] = "{\"train_micro_batch_size_per_gpu\": 4, \"steps_per_print\": 1000000,"
                  " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}}}";
    char stat[] = "{\"train_micro_batch_size_per_gpu\": 4, \"steps_per_print\": 1000000,"
                  " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}},"
                  " \"fp16\": {\"enabled\": true, \"loss_scale\": 1}}";
    char dyn[] = "{\"train_micro_batch_size_per_gpu\": 4, \"steps_per_print\": 1000000,"
                 " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}},"
                 " \"fp16\": {\"enabled\": true, \"loss_scale\": 0, \"initial_scale_power\": 16,"
                 " \"loss_scale_window\": 10, \"hysteresis\": 2}}";
    curve c[3] = {{.name = "fp32", .config = fp32}, {.name = "fp16 static 1", .config = stat},
                  {.name = "fp16 dynamic", .config = dyn}};
    for (int i = 0; i < 3; i++) {
        zl_run_options o;
        zl_run_options_init(&o);
        o.config_text = c[i].config;
        o.config_name = c[i].name;
        o.model = "lab";
        o.seq_len = 64;
        o.steps = STEPS;
        o.device = "v100-16gb";
        /* One thread: the lab model's kernels are too small for OpenMP to pay, and on a
         * busy machine its threads' barriers cost more than the work (measured: 2.6 s with
         * one thread, 50 s with two, under `chrt -i 0` at load 9). */
        o.threads = 1;
        char trace[640];
        snprintf(trace, sizeof trace, "%s", lab_path(L, "trace.json"));
        if (i == 2) o.trace = trace;
        c[i].ok = zl_run_init(&c[i].run, &o) == ZL_OK;
        if (!c[i].ok) lab_printf(L, "  %s: cannot start: %s\n", c[i].name, zl_last_error());
    }
    if (!c[0].ok || !c[1].ok || !c[2].ok) goto out;

    lab_printf(L, "\n  The lab model, 1 rank, %d steps (fp16 flushed: the fp32 run's gradient elements\n"
                  "  that fp16 stores as zero, at scale 1 and at the dynamic run's scale%s):\n",
               STEPS, "");
    lab_printf(L, "  %4s %10s %14s %14s %12s %12s %12s\n", "step", "fp32", "fp16 static1",
               "fp16 dynamic", "scale", "flushed@1", "flushed@S");
    bool todo = false;
    for (long s = 1; s <= STEPS; s++) {
        float loss[3];
        double scale = zl_engine_loss_scale(c[2].run.engine); /* the scale this step uses */
        for (int i = 0; i < 3; i++)
            if (zl_run_step(&c[i].run, &loss[i]) != ZL_OK) {
                lab_printf(L, "  %s: step %ld failed: %s\n", c[i].name, s, zl_last_error());
                goto out;
            }
        /* The fp32 run's gradients of this step (the model's f32 gradient views). */
        const zl_model *m = zl_engine_model(c[0].run.engine);
        double f1 = 0, fS = 0;
        size_t total = 0;
        for (int p = 0; p < m->num_params; p++) {
            double a, b;
            const float *g = m->grad_ptr[p];
            size_t n = m->params[p].numel;
            if (fp16_flush_fraction(g, n, 1.0f, &a) != 0) {
                a = ref_flush(g, n, 1.0f);
                todo = true;
            }
            if (fp16_flush_fraction(g, n, (float)scale, &b) != 0) b = ref_flush(g, n, (float)scale);
            f1 += a * (double)n, fS += b * (double)n, total += n; /* numel-weighted */
        }
        f1 /= (double)total, fS /= (double)total;
        if (s <= 5 || s % 5 == 0)
            lab_printf(L, "  %4ld %10.4f %14.4f %14.4f %12g %12.6f %12.6f\n", s, (double)loss[0],
                       (double)loss[1], (double)loss[2], scale, f1, fS);
        char name[64];
        snprintf(name, sizeof name, "step%ld.loss.fp32", s), lab_csv(L, name, loss[0], "");
        snprintf(name, sizeof name, "step%ld.loss.fp16_static1", s), lab_csv(L, name, loss[1], "");
        snprintf(name, sizeof name, "step%ld.loss.fp16_dynamic", s), lab_csv(L, name, loss[2], "");
        snprintf(name, sizeof name, "step%ld.loss_scale", s), lab_csv(L, name, scale, "");
        snprintf(name, sizeof name, "step%ld.flushed_at_1", s), lab_csv(L, name, f1, "fraction");
        snprintf(name, sizeof name, "step%ld.flushed_at_scale", s), lab_csv(L, name, fS, "fraction");
    }
    lab_csv(L, "skipped_steps.fp16_dynamic", (double)zl_engine_skipped_steps(c[2].run.engine), "");
    lab_csv(L, "skipped_steps.fp16_static1", (double)zl_engine_skipped_steps(c[1].run.engine), "");
    lab_printf(L, "  skipped steps (overflow): static %lld, dynamic %lld%s\n",
               (long long)zl_engine_skipped_steps(c[1].run.engine),
               (long long)zl_engine_skipped_steps(c[2].run.engine),
               todo ? "\n  (fp16_flush_fraction is not written: the fractions are the library's count)" : "");
    if (zl_run_write_trace(&c[2].run, lab_path(L, "trace.json")) == ZL_OK)
        lab_printf(L, "  trace (fp16 dynamic, last step): %s\n", lab_path(L, "trace.json"));
out:
    for (int i = 0; i < 3; i++) zl_run_free(&c[i].run);
}

int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "08", "Mixed precision: rounding, the loss scaler, fp16 underflow");
    if (rc != 0) return rc;
    if (L.check) {
        grade(&L);
    } else {
        demo_formats(&L);
        demo_training(&L);
    }
    return lab_end(&L);
}
