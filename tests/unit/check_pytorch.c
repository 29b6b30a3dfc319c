/* zerolab's GPT against PyTorch: the same model (tests/tools/gpt_reference.h), the same
 * initial weights and batches, compared with the numbers tests/pytorch_reference.py wrote
 * into tests/fixtures/gpt_reference.safetensors (regenerate with `make fixtures`; CI
 * needs no PyTorch). One forward and backward: logits, loss and the gradient of every
 * parameter; then 10 training steps (clipping, AdamW, WarmupLR): the loss, gradient norm
 * and lr of every step, and parameters at the end. Each backend runs every comparison.
 *
 * Tolerances. Both sides compute in float32, in a different order of summation (PyTorch's
 * MKL/OpenBLAS GEMMs against zerolab's loops or OpenBLAS), so they agree to float32
 * rounding noise, not bit for bit. The script measures that noise by running PyTorch
 * itself in float64 as well: float32 PyTorch is within 1.7e-7 of exact on the logits, and
 * within 5e-7 of each gradient tensor's largest element on every gradient element. Two
 * float32 implementations are then within about twice that of each other; the
 * tolerances below leave a further margin, and are still far below what a wrong formula
 * produces. Checked by breaking one thing at a time: LayerNorm eps 1e-6 (logits off by
 * 3.6e-3), attention scale 1/sqrt(C) instead of 1/sqrt(HS) (2.1e-4), GELU's cubic
 * coefficient 0.040 (6.8e-6), GELU or LayerNorm backward, an ignored target counted, the
 * tied wte gradient missing its output half, weight decay on every parameter, no
 * bias correction of v, eps inside the sqrt, a linear instead of log warmup: each one
 * fails. (Too small to see: GELU's coefficient 0.0447, or the clip's +1e-6; at this
 * model's activation scale they change nothing above rounding.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "ckpt/safetensors.h"
#include "core/device.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* parameters and gradients */
#include "tests/tools/gpt_reference.h"

/* Measured (ref and cpu backends against the fixture): logits within 1.5e-7 absolute;
 * the loss equal; gradients within 5e-7 of each tensor's max|grad|; training losses and
 * gradient norms within 2e-7 relative. Each bound below is 5-50x what was measured. */
/* Logits are O(0.1): absolute noise, plus a relative term for the larger ones. */
#define LOGITS_RTOL 1e-5
#define LOGITS_ATOL 1e-6
/* The mean loss (~4.56) is a sum of 22 logsumexps; 2e-6 is ~20 float32 ulps of it. */
#define LOSS_RTOL 2e-6
/* Gradients: elements that are small through cancellation carry the absolute noise of
 * the tensor's large ones, so the absolute part is a fraction of that tensor's max|grad|. */
#define GRAD_RTOL 1e-4
#define GRAD_ATOL_OF_MAX 5e-6
/* After 10 AdamW steps the losses (and pre-clipping norms) still agree to ~1e-7: tighter
 * than the 1e-4 one might allow for an optimizer run, and kept so. */
#define TRAIN_LOSS_RTOL 1e-5
#define TRAIN_NORM_RTOL 1e-5
/* lrs come from the same double-precision formula on both sides. */
#define LR_RTOL 1e-12
/* Final parameters (1-D ones and wpe): values up to O(1) moved by 10 updates of <= 1e-2;
 * measured differences up to 9e-7 absolute, 1e-7 relative on the large ones. */
#define FINAL_RTOL 1e-5
#define FINAL_ATOL 1e-5
/* Except the key bias (c_attn.bias[C, 2C)): its exact gradient is zero, since it adds
 * q . b_k to every score of a softmax row, which softmax ignores. Both sides compute it as
 * rounding noise (~1e-10), and Adam, dividing by sqrt(v) + eps, turns that noise into
 * small updates that differ between the two: after 10 steps both are within 5e-5 of zero,
 * with no agreement in the digits. So they are only checked to stay near zero: a real
 * gradient there (a broken attention) would move them by ~lr = 1e-2 per step. */
#define KEY_BIAS_DRIFT 1e-3

static const char *const backends[] = {"ref", "cpu"};
#define NUM_BACKENDS (int)(sizeof backends / sizeof backends[0])

#define NTOK (GPTREF_B * GPTREF_T)

static zl_safetensors *open_fixture(void)
{
    zl_safetensors *st = NULL;
    if (zl_safetensors_open(&st, zl_test_data(GPTREF_FIXTURE)) != ZL_OK)
        ck_abort_msg("%s\n  (the fixture is committed; regenerate it with `make fixtures`)",
                     zl_last_error());
    return st;
}

static void read_or_fail(const zl_safetensors *st, const char *name, zl_dtype dt, void *dst,
                         size_t numel)
{
    if (zl_safetensors_read(st, name, dt, dst, numel) != ZL_OK) ck_abort_msg("%s", zl_last_error());
}

typedef struct run {
    zl_device dev;
    zl_engine *e;
    int32_t inputs[GPTREF_STEPS * NTOK], targets[GPTREF_STEPS * NTOK]; /* from the fixture */
} run;

/* An engine as the fixture's setup describes, and the batches PyTorch trained on. */
static run *run_create(const char *backend, const zl_safetensors *st)
{
    run *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    zl_gpt_config cfg;
    zl_engine_options opt;
    gptref_model_config(&cfg);
    gptref_engine_options(&opt);
    if (zl_device_init(&r->dev, ZL_DEVICE_ACCEL, backend, "check_pytorch", 0) != ZL_OK ||
        zl_engine_create(&r->e, &cfg, &opt, &r->dev) != ZL_OK)
        ck_abort_msg("backend %s: %s", backend, zl_last_error());
    read_or_fail(st, "batch.inputs", ZL_I32, r->inputs, GPTREF_STEPS * NTOK);
    read_or_fail(st, "batch.targets", ZL_I32, r->targets, GPTREF_STEPS * NTOK);
    return r;
}

static void run_destroy(run *r)
{
    zl_engine_destroy(r->e);
    free(r);
}

static void forward_step(run *r, int step, float *loss)
{
    if (zl_engine_forward(r->e, r->inputs + step * NTOK, r->targets + step * NTOK, loss) != ZL_OK)
        ck_abort_msg("forward of step %d: %s", step, zl_last_error());
}

static float max_abs(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* ---- the fixture itself ------------------------------------------------------------- */

static void expect_meta(const zl_safetensors *st, const char *key, const char *want)
{
    const char *got = zl_safetensors_metadata(st, key);
    if (!got || strcmp(got, want))
        ck_abort_msg("fixture metadata '%s' is '%s', the test's setup says '%s': the fixture "
                     "is stale; regenerate it with `make fixtures`", key, got ? got : "(none)",
                     want);
}

static void expect_meta_num(const zl_safetensors *st, const char *key, double want)
{
    const char *got = zl_safetensors_metadata(st, key);
    /* The exporter prints doubles with %.17g: they read back exactly. */
    if (!got || strtod(got, NULL) != want)
        ck_abort_msg("fixture metadata '%s' is '%s', the test's setup says %.17g: the fixture "
                     "is stale; regenerate it with `make fixtures`", key, got ? got : "(none)",
                     want);
}

START_TEST(test_pytorch_fixture_matches_the_setup)
{
    zl_safetensors *st = open_fixture();
    zl_gpt_config cfg;
    zl_engine_options o;
    gptref_model_config(&cfg);
    gptref_engine_options(&o);
    expect_meta(st, "format", "zerolab gpt reference v1");
    expect_meta_num(st, "model.vocab_size", cfg.vocab_size);
    expect_meta_num(st, "model.max_seq_len", cfg.max_seq_len);
    expect_meta_num(st, "model.num_layers", cfg.num_layers);
    expect_meta_num(st, "model.num_heads", cfg.num_heads);
    expect_meta_num(st, "model.channels", cfg.channels);
    expect_meta_num(st, "seed", (double)o.seed);
    expect_meta_num(st, "micro_batch_size", o.micro_batch_size);
    expect_meta_num(st, "seq_len", o.seq_len);
    expect_meta_num(st, "gradient_accumulation_steps", o.gradient_accumulation_steps);
    expect_meta_num(st, "steps", GPTREF_STEPS);
    expect_meta(st, "optimizer.type", "AdamW");
    expect_meta_num(st, "optimizer.lr", o.optimizer.lr);
    expect_meta_num(st, "optimizer.beta1", o.optimizer.beta1);
    expect_meta_num(st, "optimizer.beta2", o.optimizer.beta2);
    expect_meta_num(st, "optimizer.eps", o.optimizer.eps);
    expect_meta_num(st, "optimizer.weight_decay", o.optimizer.weight_decay);
    expect_meta_num(st, "gradient_clipping", o.gradient_clipping);
    expect_meta(st, "scheduler.type", "WarmupLR");
    expect_meta_num(st, "scheduler.warmup_min_lr", o.scheduler.warmup_min_lr);
    expect_meta_num(st, "scheduler.warmup_max_lr", o.scheduler.warmup_max_lr);
    expect_meta_num(st, "scheduler.warmup_num_steps", (double)o.scheduler.warmup_num_steps);
    expect_meta(st, "scheduler.warmup_type", "log");
    ck_assert_ptr_nonnull(zl_safetensors_metadata(st, "torch_version"));

    /* The batches PyTorch saw are the ones the setup generates, with ignored targets. */
    static int32_t in[GPTREF_STEPS * NTOK], tg[GPTREF_STEPS * NTOK];
    static int32_t fin[GPTREF_STEPS * NTOK], ftg[GPTREF_STEPS * NTOK];
    gptref_batches(in, tg, cfg.vocab_size);
    read_or_fail(st, "batch.inputs", ZL_I32, fin, GPTREF_STEPS * NTOK);
    read_or_fail(st, "batch.targets", ZL_I32, ftg, GPTREF_STEPS * NTOK);
    ck_assert_int_eq(memcmp(in, fin, sizeof in), 0);
    ck_assert_int_eq(memcmp(tg, ftg, sizeof tg), 0);
    int ignored = 0;
    for (int i = 0; i < NTOK; i++) ignored += ftg[i] < 0;
    ck_assert_int_ge(ignored, 1);

    /* Clipping was active in the reference run (else this test would not cover it). */
    float norms[GPTREF_STEPS];
    read_or_fail(st, "train.grad_norms", ZL_F32, norms, GPTREF_STEPS);
    ck_assert_float_gt(norms[0], (float)o.gradient_clipping);
    zl_safetensors_close(st);
}
END_TEST

/* Every parameter has a reference gradient (so the comparison cannot silently cover
 * nothing), and PyTorch started from exactly zerolab's initial weights. */
START_TEST(test_pytorch_fixture_covers_every_parameter)
{
    zl_safetensors *st = open_fixture();
    run *r = run_create("ref", st);
    const zl_model *m = &r->e->model;
    int ngrad = 0, ninit = 0, nfinal = 0, n1d = 0;
    for (int i = 0; i < zl_safetensors_num_tensors(st); i++) {
        const char *name = zl_safetensors_tensor_at(st, i)->name;
        ngrad += !strncmp(name, "grad.", 5);
        ninit += !strncmp(name, "init.", 5);
        nfinal += !strncmp(name, "final.", 6);
    }
    ck_assert_int_gt(m->num_params, 0);
    ck_assert_int_eq(ngrad, m->num_params);
    ck_assert_int_eq(ninit, m->num_params);
    const float *params = zl_tensor_f32(&r->e->params);
    for (int p = 0; p < m->num_params; p++) {
        const zl_param_info *info = &m->params[p];
        n1d += info->ndim == 1;
        char name[80];
        snprintf(name, sizeof name, "grad.%s", info->name);
        const zl_safetensors_tensor *t = zl_safetensors_find(st, name);
        if (!t) ck_abort_msg("fixture has no '%s'", name);
        ck_assert_str_eq(t->dtype, "F32");
        ck_assert_int_eq(t->ndim, info->ndim);
        for (int d = 0; d < info->ndim; d++) ck_assert_int_eq(t->shape[d], info->shape[d]);

        snprintf(name, sizeof name, "init.%s", info->name);
        float *init = malloc(info->numel * sizeof *init);
        read_or_fail(st, name, ZL_F32, init, info->numel);
        if (memcmp(init, params + info->offset, info->numel * sizeof *init))
            ck_abort_msg("'%s': zerolab's initial values differ from those the fixture was made "
                         "from (initialisation changed?); regenerate with `make fixtures`",
                         info->name);
        free(init);
    }
    ck_assert_int_eq(nfinal, n1d + 1); /* every 1-D parameter, and wpe */
    run_destroy(r);
    zl_safetensors_close(st);
}
END_TEST

/* ---- forward and backward ----------------------------------------------------------- */

START_TEST(test_pytorch_forward_logits_and_loss)
{
    const char *backend = backends[_i];
    zl_safetensors *st = open_fixture();
    run *r = run_create(backend, st);
    int V = r->e->model.cfg.vocab_size;
    float loss, want_loss;
    forward_step(r, 0, &loss);
    float *want = malloc((size_t)NTOK * V * sizeof *want);
    read_or_fail(st, "logits", ZL_F32, want, (size_t)NTOK * V);
    read_or_fail(st, "loss", ZL_F32, &want_loss, 1);
    char label[64];
    snprintf(label, sizeof label, "%s logits", backend);
    /* zl_model_logits is valid between forward and backward */
    ck_assert(zl_test_close(label, zl_model_logits(&r->e->model), want, (size_t)NTOK * V,
                            LOGITS_RTOL, LOGITS_ATOL));
    snprintf(label, sizeof label, "%s loss", backend);
    ck_assert(zl_test_close(label, &loss, &want_loss, 1, LOSS_RTOL, 0));
    free(want);
    run_destroy(r);
    zl_safetensors_close(st);
}
END_TEST

START_TEST(test_pytorch_backward_every_gradient)
{
    const char *backend = backends[_i];
    zl_safetensors *st = open_fixture();
    run *r = run_create(backend, st);
    const zl_model *m = &r->e->model;
    float loss;
    forward_step(r, 0, &loss);
    zl_engine_backward(r->e);
    const float *grads = zl_tensor_f32(&r->e->grads);
    int bad = 0, compared = 0;
    for (int p = 0; p < m->num_params; p++) {
        const zl_param_info *info = &m->params[p];
        char name[80], label[96];
        snprintf(name, sizeof name, "grad.%s", info->name);
        float *want = malloc(info->numel * sizeof *want);
        read_or_fail(st, name, ZL_F32, want, info->numel);
        snprintf(label, sizeof label, "%s %s", backend, name);
        double atol = GRAD_ATOL_OF_MAX * max_abs(want, info->numel);
        bad += !zl_test_close(label, grads + info->offset, want, info->numel, GRAD_RTOL, atol);
        compared++;
        free(want);
    }
    ck_assert_int_eq(compared, m->num_params);
    ck_assert_msg(bad == 0, "%d of %d gradients differ from PyTorch's (details above)", bad,
                  m->num_params);
    run_destroy(r);
    zl_safetensors_close(st);
}
END_TEST

/* ---- training ----------------------------------------------------------------------- */

START_TEST(test_pytorch_training_steps)
{
    const char *backend = backends[_i];
    zl_safetensors *st = open_fixture();
    run *r = run_create(backend, st);
    float losses[GPTREF_STEPS], norms[GPTREF_STEPS];
    float want_losses[GPTREF_STEPS], want_norms[GPTREF_STEPS];
    double lrs[GPTREF_STEPS], want_lrs[GPTREF_STEPS];
    for (int s = 0; s < GPTREF_STEPS; s++) {
        forward_step(r, s, &losses[s]);
        zl_engine_backward(r->e);
        zl_engine_step(r->e);
        ck_assert_int_eq(r->e->global_steps, s + 1);
        norms[s] = (float)r->e->grad_norm;
        lrs[s] = r->e->lr;
    }
    read_or_fail(st, "train.losses", ZL_F32, want_losses, GPTREF_STEPS);
    read_or_fail(st, "train.grad_norms", ZL_F32, want_norms, GPTREF_STEPS);
    const zl_safetensors_tensor *t = zl_safetensors_find(st, "train.lrs");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->dtype, "F64");
    ck_assert_uint_eq(t->numel, GPTREF_STEPS);
    memcpy(want_lrs, t->data, sizeof want_lrs);

    char label[128];
    int ok = 1;
    snprintf(label, sizeof label, "%s training losses", backend);
    ok &= zl_test_close(label, losses, want_losses, GPTREF_STEPS, TRAIN_LOSS_RTOL, 0);
    snprintf(label, sizeof label, "%s gradient norms", backend);
    ok &= zl_test_close(label, norms, want_norms, GPTREF_STEPS, TRAIN_NORM_RTOL, 0);
    for (int s = 0; s < GPTREF_STEPS; s++)
        if (fabs(lrs[s] - want_lrs[s]) > LR_RTOL * want_lrs[s]) {
            fprintf(stderr, "%s lr of step %d: %.17g, PyTorch's script used %.17g\n", backend, s,
                    lrs[s], want_lrs[s]);
            ok = 0;
        }

    const zl_model *m = &r->e->model;
    const float *params = zl_tensor_f32(&r->e->params);
    int nfinal = 0;
    for (int p = 0; p < m->num_params; p++) {
        const zl_param_info *info = &m->params[p];
        char name[80];
        snprintf(name, sizeof name, "final.%s", info->name);
        if (!zl_safetensors_find(st, name)) continue;
        float *want = malloc(info->numel * sizeof *want);
        read_or_fail(st, name, ZL_F32, want, info->numel);
        snprintf(label, sizeof label, "%s %s", backend, name);
        const float *got = params + info->offset;
        if (strstr(info->name, ".attn.c_attn.bias")) {
            size_t C = info->numel / 3; /* q | k | v */
            ok &= zl_test_close(label, got, want, C, FINAL_RTOL, FINAL_ATOL);
            ok &= zl_test_close(label, got + 2 * C, want + 2 * C, C, FINAL_RTOL, FINAL_ATOL);
            float drift = fmaxf(max_abs(got + C, C), max_abs(want + C, C));
            if (drift > KEY_BIAS_DRIFT) {
                fprintf(stderr, "%s: key bias moved to %.3g (limit %.0e): its gradient is not "
                        "zero\n", label, drift, KEY_BIAS_DRIFT);
                ok = 0;
            }
        } else {
            ok &= zl_test_close(label, got, want, info->numel, FINAL_RTOL, FINAL_ATOL);
        }
        nfinal++;
        free(want);
    }
    ck_assert_int_gt(nfinal, 0);
    ck_assert_msg(ok, "%s: training differs from PyTorch's (details above)", backend);
    run_destroy(r);
    zl_safetensors_close(st);
}
END_TEST

static Suite *pytorch_suite(void)
{
    Suite *s = suite_create("pytorch");
    TCase *tc = tcase_create("fixture");
    tcase_add_test(tc, test_pytorch_fixture_matches_the_setup);
    tcase_add_test(tc, test_pytorch_fixture_covers_every_parameter);
    suite_add_tcase(s, tc);
    tc = tcase_create("compare");
    tcase_add_loop_test(tc, test_pytorch_forward_logits_and_loss, 0, NUM_BACKENDS);
    tcase_add_loop_test(tc, test_pytorch_backward_every_gradient, 0, NUM_BACKENDS);
    tcase_add_loop_test(tc, test_pytorch_training_steps, 0, NUM_BACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(pytorch_suite)
