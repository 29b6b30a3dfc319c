/* Tensor parallelism in plans, against published figures and hand computations.
 *
 *  - Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
 *    Models"), Table 2: a transformer layer's activations with tensor parallelism t are
 *    sbh (10 + 24/t) + 5 a s^2 b / t bytes in 16 bits. Their 10 and 5 count dropout's
 *    masks (sbh each after attention and after the MLP, a s^2 b after the softmax);
 *    zerolab's GPT has no dropout, so its layer holds sbh (8 + 24/t) + 2 a s^2 b / t, plus
 *    the LayerNorms' f32 mean and rstd (16 sb), which the paper leaves out. Checked exactly
 *    on GPT-3 175B (s 2048, h 12288, a 96, b 1, bf16) at t = 1 and t = 8, and with
 *    sequence parallelism at t = 8 (their sbh (34/t + 5as/(ht)), without dropout
 *    sbh 32/t + 2as^2b/t, plus this rank's rows' statistics, 16sb/t).
 *  - Megatron-LM's GPT-3 175B (Narayanan et al. 2021: tensor 8, pipeline 16): a middle
 *    stage's model states are 16 bytes per parameter it holds (bf16 weight and gradient,
 *    fp32 master and Adam's two moments) with its 6 blocks' parameters computed by hand
 *    from Megatron's split, and its device peak within 5% of that plus the activations of
 *    the micro-batches 1F1B keeps in flight there (16 - s); the first stage's states
 *    count 1/8 of the vocabulary's embedding rows (vocabulary-parallel).
 *  - The ZeRO paper (Rajbhandari et al. 2020), Table 2's row for model parallelism 16 on
 *    1024 V100-32GB (64-way data parallel): the largest model whose model states fit 32 GB
 *    per GPU is 32B parameters without ZeRO (16 bytes each over 16 model-parallel ranks),
 *    121.6B with P_os (4 + 12/64 bytes), 230.4B with P_os+g (2 + 14/64) and 2T with
 *    P_os+g+p (16/64: 2048B). The plan of a GPT near each size, with tensor parallelism 16
 *    and 64 data-parallel ranks in fp16, gives per-GPU model states from which those maxima
 *    follow within 1% (the parameters every tensor-parallel rank holds whole, LayerNorms,
 *    biases, positions, are the difference). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "plan/plan.h"

static const zl_gpt_config gpt3 = {"gpt3-175b", 50257, 2048, 96, 96, 12288};

static void request(zl_plan_request *req, int tp, int pp, int micro_batches)
{
    memset(req, 0, sizeof *req);
    req->model = gpt3;
    req->world_size = 1;
    req->tp_size = tp;
    req->pipe_stages = pp;
    req->gpu = true; /* the CPU's f32 stand-ins ("cast") are not a GPU's */
    zl_engine_options *o = &req->options;
    o->micro_batch_size = 1;
    o->gradient_accumulation_steps = micro_batches;
    o->seq_len = 2048;
    zl_optimizer_params_default(&o->optimizer, ZL_OPTIMIZER_ADAMW);
    zl_lr_schedule_params_default(&o->scheduler, ZL_LR_CONSTANT);
    o->precision.dtype = ZL_BF16;
}

/* One block's saved activations (one micro-batch in flight). */
static double layer_bytes(int tp, bool sp)
{
    zl_plan_request req;
    request(&req, tp, 0, 1);
    req.options.sequence_parallel = sp;
    req.model.num_layers = 2; /* a layer is a layer: two keep the plan quick */
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    double b = (double)zl_ledger_peak(&r->ledger, "act.h.1");
    free(r);
    return b;
}

START_TEST(test_korthikanti_layer_activations)
{
    double s = 2048, b = 1, h = 12288, a = 96;
    for (int t = 1; t <= 8; t *= 8) {
        double paper = s * b * h * (10 + 24.0 / t) + 5 * a * s * s * b / t;
        double ours = s * b * h * (8 + 24.0 / t) + 2 * a * s * s * b / t + 16 * s * b;
        double got = layer_bytes(t, false);
        printf("  t=%d: a layer holds %.1f MiB; Korthikanti (with dropout) %.1f MiB, without "
               "dropout + LayerNorm statistics %.1f MiB\n", t, got / (1 << 20), paper / (1 << 20),
               ours / (1 << 20));
        ck_assert_msg(got == ours, "t=%d: %.0f bytes, expected %.0f", t, got, ours);
    }
    /* With sequence parallelism, Table 2's sbh (34/t + 5as/(ht)): without dropout
     * sbh 32/t + 2as^2b/t, and the statistics of this rank's rows, 16sb/t. */
    double t = 8;
    double paper = s * b * h * (34 / t) + 5 * a * s * s * b / t;
    double ours = s * b * h * (32 / t) + 2 * a * s * s * b / t + 16 * s * b / t;
    double got = layer_bytes(8, true);
    printf("  t=8 with sequence parallelism: %.1f MiB; Korthikanti %.1f MiB, without dropout + "
           "statistics %.1f MiB\n", got / (1 << 20), paper / (1 << 20), ours / (1 << 20));
    ck_assert_msg(got == ours, "t=8, sequence parallel: %.0f bytes, expected %.0f", got, ours);
}
END_TEST

START_TEST(test_megatron_175b_tp8_pp16)
{
    enum { TP = 8, PP = 16, M = 32 };
    zl_plan_request req;
    request(&req, TP, PP, M);
    req.pipe_stage = 1; /* a middle stage: six blocks, no embedding or head */
    snprintf(req.options.pipe_partition, sizeof req.options.pipe_partition, "type:block");
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    /* Megatron's split of one block over t ranks: QKV and c_fc by output, the projections
     * by input; LayerNorms and the projections' biases whole */
    double h = 12288, t = TP;
    double block = (3 * h * h + 3 * h) / t + h * h / t + h + (4 * h * h + 4 * h) / t + 4 * h * h / t + h + 4 * h;
    double psi = 6 * block;
    double states = (double)zl_plan_model_states_peak(&r->ledger);
    printf("  175B, TP 8 x PP 16, stage 1: %.3f B parameters by hand, model states %.2f GiB "
           "(16 bytes each: %.2f GiB)\n", psi / 1e9, states / (1u << 30), 16 * psi / (1u << 30));
    ck_assert_msg(fabs(states - 16 * psi) <= 1e-3 * 16 * psi, "model states %.0f, by hand %.0f",
                  states, 16 * psi);
    /* activations: 1F1B keeps PP - s micro-batches in flight on stage s */
    double s = 2048, a = 96;
    double layer = s * h * (8 + 24 / t) + 2 * a * s * s / t + 16 * s;
    double hand = 16 * psi + (PP - 1) * 6 * layer;
    double peak = (double)r->ledger.budgeted_peak_nbytes;
    printf("  device peak %.2f GiB, by hand (states + 15 micro-batches x 6 layers) %.2f GiB\n",
           peak / (1u << 30), hand / (1u << 30));
    for (int i = 0; i < r->ledger.num_tags; i++)
        printf("    %-16s %.3f GiB\n", r->ledger.entries[i].tag, r->ledger.entries[i].peak_nbytes / (double)(1u << 30));
    ck_assert_msg(fabs(peak - hand) <= 0.05 * hand, "peak %.3f GiB vs %.3f GiB by hand",
                  peak / (1u << 30), hand / (1u << 30));
    /* the first stage: its blocks, the positions (whole) and 1/8 of the vocabulary's rows
     * (ceil(50257 / 8) = 6283 of wte: vocabulary-parallel) */
    req.pipe_stage = 0;
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    double psi0 = 6 * block + 6283.0 * h + 2048.0 * h;
    double states0 = (double)zl_plan_model_states_peak(&r->ledger);
    printf("  stage 0: %.3f B parameters by hand (6 blocks, wte/8, wpe), model states %.2f GiB\n",
           psi0 / 1e9, states0 / (1u << 30));
    ck_assert_msg(fabs(states0 - 16 * psi0) <= 1e-3 * 16 * psi0, "stage 0 model states %.0f, by "
                  "hand %.0f", states0, 16 * psi0);
    free(r);
}
END_TEST

/* The model states per GPU of a GPT of C channels and L layers at ZeRO `stage`, tensor
 * parallelism 16 and 64 data-parallel ranks, fp16 (the paper's mixed precision). */
static double zero_mp16_states(int stage, int L, int C, int NH, double *psi)
{
    zl_plan_request req;
    request(&req, 16, 0, 1);
    req.model = (zl_gpt_config){"zero-mp16", 50257, 2048, L, NH, C};
    req.world_size = 64;
    req.options.seq_len = 16; /* the model states do not depend on it */
    req.options.precision.dtype = ZL_F16;
    req.options.zero_stage = stage;
    req.options.reduce_scatter = true;
    req.options.use_multi_rank_bucket_allreduce = true;
    zl_plan_result *r = malloc(sizeof *r);
    ck_assert_int_eq(zl_plan_run(&req, r), ZL_OK);
    *psi = (double)r->params;
    double states = (double)zl_plan_model_states(&r->ledger);
    free(r);
    return states;
}

START_TEST(test_zero_paper_table2_mp16)
{
    static const struct { int stage, L, C, NH; double paper_b, k; } rows[] = {
        {0, 64, 6400, 64, 32.0, 16.0},               /* baseline: 16 bytes per parameter */
        {1, 96, 10240, 80, 121.6, 4.0 + 12.0 / 64},  /* P_os */
        {2, 128, 12288, 96, 230.4, 2.0 + 14.0 / 64}, /* P_os+g */
        {3, 128, 36864, 288, 2048.0, 16.0 / 64},     /* P_os+g+p: the paper's "2T" */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double psi, states = zero_mp16_states(rows[i].stage, rows[i].L, rows[i].C, rows[i].NH, &psi);
        /* the largest model at this many bytes per parameter per GPU, in 32 GB */
        double max_b = 32e9 * psi / states / 1e9;
        printf("  ZeRO stage %d, MP 16 x DP 64: %.1fB parameters hold %.2f GB per GPU: at most "
               "%.1fB in 32 GB (paper %.1fB; the formula %.1fB)\n", rows[i].stage, psi / 1e9,
               states / 1e9, max_b, rows[i].paper_b, 32e9 * 16 / rows[i].k / 1e9);
        ck_assert_msg(fabs(max_b - rows[i].paper_b) <= 0.01 * rows[i].paper_b,
                      "stage %d: %.2fB, the paper's %.1fB", rows[i].stage, max_b, rows[i].paper_b);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plan_tp");
    TCase *tc = tcase_create("published");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_korthikanti_layer_activations);
    tcase_add_test(tc, test_megatron_175b_tp8_pp16);
    tcase_add_test(tc, test_zero_paper_table2_mp16);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run(suite()); }
