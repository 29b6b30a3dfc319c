/* Data parallelism and ZeRO stages 0-3 against single-rank training (the main oracle):
 * N ranks with micro-batch B train exactly as one rank with micro-batch N*B on the same
 * global batch. Every rank also runs the single-rank reference itself, on its own
 * device, so the comparison needs no communication beyond what is tested.
 *
 * Run under mpiexec at np = 2, 3 (uneven partitions) and 4 (tests/run-mpi.sh). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "comm/comm.h"
#include "comm/comm_log.h"
#include "engine/engine.h"
#include "engine/engine_internal.h" /* the parameters, bit for bit */

/* V=64 C=32 L=2 NH=4, 5 steps: every rank of a DP test waits on the others in each
 * collective, and at np = 3-4 on two loaded cores each wait can cost a scheduler slice,
 * so the tests take few steps of a small model; 5 steps cover accumulation, clipping and
 * Adam past its first (sign-like) step. */
static const zl_gpt_config model = {"dp-test", 64, 16, 2, 4, 32};
enum { B = 2, T = 8, STEPS = 5 };

static zl_comm *world;

/* Token t of global sequence s at micro-step k: the same on every rank. */
static void global_sequences(int32_t *in, int32_t *tg, int k, int first_seq, int nseq)
{
    for (int s = 0; s < nseq; s++)
        for (int t = 0; t < T; t++) {
            uint64_t idx = (uint64_t)(first_seq + s) * (T + 1) + (uint64_t)t;
            in[s * T + t] = (int32_t)(zl_rng_bits(77, (uint64_t)k, idx) % model.vocab_size);
            tg[s * T + t] = (int32_t)(zl_rng_bits(77, (uint64_t)k, idx + 1) % model.vocab_size);
        }
}

static zl_engine_options options(int micro, int gas, double clip, int stage, zl_comm *dp)
{
    zl_engine_options o = zl_test_engine_options(micro, gas, T);
    o.gradient_clipping = clip;
    o.optimizer.lr = 3e-3;
    o.optimizer.weight_decay = 0.1;
    o.seed = 5;
    o.dp = dp;
    o.zero_stage = stage;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true; /* DeepSpeed's defaults */
    o.param_persistence_threshold = -1; /* stage 3: every layer gathered on use */
    return o;
}

/* Train STEPS optimizer steps; losses[k] is the global batch's loss at step k. A rank
 * with dp != NULL feeds its slice of every micro-step's global batch. */
static void train(zl_engine **out, zl_device *dev, const zl_engine_options *o, float *losses)
{
    ck_assert_int_eq(zl_engine_create(out, &model, o, dev), ZL_OK);
    zl_engine *e = *out;
    int W = o->dp ? o->dp->size : 1, r = o->dp ? o->dp->rank : 0;
    int32_t in[64 * T], tg[64 * T];
    for (int step = 0; step < STEPS; step++) {
        double sum = 0;
        for (int micro = 0; micro < o->gradient_accumulation_steps; micro++) {
            float loss;
            global_sequences(in, tg, step * o->gradient_accumulation_steps + micro,
                             r * o->micro_batch_size, o->micro_batch_size);
            ck_assert_int_eq(zl_engine_forward(e, in, tg, &loss), ZL_OK);
            zl_engine_backward(e);
            ck_assert_int_eq(zl_engine_step(e), ZL_OK);
            sum += loss;
        }
        losses[step] = W > 1 ? zl_engine_dp_mean(e, (float)(sum / o->gradient_accumulation_steps))
                             : (float)(sum / o->gradient_accumulation_steps);
    }
}

/* The key bias h.*.attn.c_attn.bias[C:2C] has an exactly zero gradient (it shifts every
 * score of a softmax row by the same amount), so both sides compute rounding noise there
 * and Adam's normalisation turns the noise into updates of either sign: compare it
 * against zero, not against the other side. */
static bool is_key_bias(const zl_model *m, size_t flat)
{
    for (int l = 0; l < m->cfg.num_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "h.%d.attn.c_attn.bias", l);
        const zl_param_info *p = &m->params[zl_model_find_param(m, name)];
        size_t C = (size_t)m->cfg.channels;
        if (flat >= p->offset + C && flat < p->offset + 2 * C) return true;
    }
    return false;
}

static void compare_with_single_rank_opts(int stage, int gas, double clip, bool owner_reduce)
{
    int W = world->size;
    zl_device d_ref, d_dp;
    zl_engine *ref, *dp;
    float loss_ref[STEPS], loss_dp[STEPS];
    ck_assert_int_eq(zl_device_init(&d_ref, ZL_DEVICE_ACCEL, "cpu", "reference", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d_dp, ZL_DEVICE_ACCEL, "cpu", "dp", 0), ZL_OK);
    zl_engine_options o_ref = options(W * B, gas, clip, 0, NULL);
    zl_engine_options o_dp = options(B, gas, clip, stage, world);
    o_dp.use_multi_rank_bucket_allreduce = !owner_reduce;
    if (owner_reduce) o_dp.reduce_bucket_size = 5000; /* several buckets, cutting through params */
    train(&ref, &d_ref, &o_ref, loss_ref);
    train(&dp, &d_dp, &o_dp, loss_dp);
    char label[96];
    snprintf(label, sizeof label, "np=%d stage %d gas %d clip %g", W, stage, gas, clip);
    ck_assert(zl_test_close(label, loss_dp, loss_ref, STEPS, 1e-5, 0));
    ck_assert_int_eq(dp->global_steps, STEPS);
    ck_assert_int_eq(dp->global_samples, ref->global_samples);
    /* Adam is blind to a uniform scale of the gradient (and so is clipping followed by
     * Adam): the gradient norm is what shows a wrong average. */
    ck_assert_msg(fabs(dp->grad_norm - ref->grad_norm) <= 1e-5 * ref->grad_norm,
                  "%s: gradient norm %.9g vs %.9g (1 rank)", label, dp->grad_norm, ref->grad_norm);

    /* Weights, as a whole: relative L2 error within 1e-5. Element by element: 1e-5
     * relative plus a floor of 1e-2 of the distance Adam can move a weight in STEPS steps
     * (lr * STEPS). The floor is for weights whose gradient is a sum that nearly cancels:
     * the ranks add partial sums where one rank adds everything at once, the rounding of a
     * near-zero gradient is then comparable to the gradient itself, and Adam, which moves
     * by about lr whatever the gradient's size, turns it into a visible difference: a
     * handful of 28k weights, up to 1.1e-3 of lr * STEPS with the kernels' AVX-512 clones
     * (16-lane partial sums), 0.6e-3 with the AVX2 ones. A real error (a missed bucket, a
     * wrong scale) moves weights by about lr per step, 100 times the floor, and fails both
     * checks. */
    const double atol = 1e-2 * o_ref.optimizer.lr * STEPS;
    size_t n = ref->model.params_numel, compared = 0;
    float *p_dp = malloc(n * sizeof *p_dp); /* stage 3 holds shards: gather them */
    ck_assert_int_eq(zl_engine_gather_params(dp, p_dp), ZL_OK);
    const float *p_ref = zl_tensor_f32(&ref->params);
    for (size_t i = 0; i < n; i++) {
        if (is_key_bias(&ref->model, i)) {
            ck_assert_msg(fabsf(p_dp[i]) < 1e-3f, "key bias %zu drifted to %g", i, p_dp[i]);
            continue;
        }
        ck_assert_msg(fabs(p_dp[i] - p_ref[i]) <= 1e-5 * fabs(p_ref[i]) + atol,
                      "%s: param %zu: %.9g (np=%d) vs %.9g (1 rank)", label, i, p_dp[i], W, p_ref[i]);
        compared++;
    }
    ck_assert_uint_gt(compared, n / 2);
    double diff2 = 0, ref2 = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_key_bias(&ref->model, i)) continue;
        diff2 += ((double)p_dp[i] - p_ref[i]) * ((double)p_dp[i] - p_ref[i]);
        ref2 += (double)p_ref[i] * p_ref[i];
    }
    ck_assert_msg(sqrt(diff2 / ref2) <= 1e-5, "%s: relative L2 error of the weights %.3g",
                  label, sqrt(diff2 / ref2));
    free(p_dp);
    zl_engine_destroy(ref);
    zl_engine_destroy(dp);
}

static void compare_with_single_rank(int stage, int gas, double clip)
{
    compare_with_single_rank_opts(stage, gas, clip, false);
}

START_TEST(test_dp_stage0_gas1) { compare_with_single_rank(0, 1, 0); }
END_TEST
START_TEST(test_dp_stage0_gas4_clip) { compare_with_single_rank(0, 4, 0.5); }
END_TEST
START_TEST(test_dp_stage1_gas1_clip) { compare_with_single_rank(1, 1, 0.5); }
END_TEST
START_TEST(test_dp_stage1_gas4) { compare_with_single_rank(1, 4, 0); }
END_TEST
START_TEST(test_dp_stage2_gas1_clip) { compare_with_single_rank(2, 1, 0.5); }
END_TEST
START_TEST(test_dp_stage2_gas4) { compare_with_single_rank(2, 4, 0); }
END_TEST
START_TEST(test_dp_stage3_gas1_clip) { compare_with_single_rank(3, 1, 0.5); }
END_TEST
START_TEST(test_dp_stage3_gas4) { compare_with_single_rank(3, 4, 0); }
END_TEST
/* use_multi_rank_bucket_allreduce = false: each owner's slice reduced to it alone */
START_TEST(test_dp_stage1_owner_reduce) { compare_with_single_rank_opts(1, 2, 0.5, true); }
END_TEST
START_TEST(test_dp_stage2_owner_reduce) { compare_with_single_rank_opts(2, 4, 0.5, true); }
END_TEST

/* Bytes a rank puts on the wire per optimizer step, by the standard algorithms' volumes
 * (ring allreduce 2(N-1)/N of the message; reduce-scatter and allgather (N-1)/N of the
 * whole vector; a reduce (N-1)/N of the message: each non-root sends its part once, and a
 * rank is the root of 1/N of the reduces). The log holds DeepSpeed's message sizes: the
 * input per call, the own chunk for allgather. */
static double wire_bytes_per_step_opt(int stage, bool owner_reduce, int gas, bool prefetch)
{
    int N = world->size;
    zl_device dev;
    zl_engine *e;
    zl_comm_log *log;
    ck_assert_int_eq(zl_comm_log_create(&log), ZL_OK);
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "volume", 0), ZL_OK);
    zl_engine_options o = options(B, gas, 1.0, stage, world);
    o.use_multi_rank_bucket_allreduce = !owner_reduce;
    if (!prefetch) o.prefetch_bucket_size = -1;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    world->log = log; /* from here: the training steps only, not the initial broadcast */
    int32_t in[B * T], tg[B * T];
    enum { VSTEPS = 3 };
    for (int k = 0; k < VSTEPS * gas; k++) {
        global_sequences(in, tg, k, world->rank * B, B);
        ck_assert_int_eq(zl_engine_forward(e, in, tg, NULL), ZL_OK);
        ck_assert_int_eq(zl_engine_backward(e), ZL_OK);
        ck_assert_int_eq(zl_engine_step(e), ZL_OK);
    }
    world->log = NULL;
    double f = (double)(N - 1) / N;
    double bytes = 2 * f * (double)zl_comm_log_nbytes(log, ZL_COMM_ALLREDUCE) +
                   f * (double)zl_comm_log_nbytes(log, ZL_COMM_REDUCE_SCATTER) +
                   f * N * (double)zl_comm_log_nbytes(log, ZL_COMM_ALLGATHER) +
                   f * (double)zl_comm_log_nbytes(log, ZL_COMM_REDUCE);
    zl_engine_destroy(e);
    zl_comm_log_destroy(log);
    return bytes / VSTEPS;
}

static double wire_bytes_per_step(int stage, bool owner_reduce, int gas)
{
    return wire_bytes_per_step_opt(stage, owner_reduce, gas, false);
}

/* ZeRO paper: stages 1 and 2 move what stage 0 moves (a reduce-scatter and an allgather
 * are one allreduce), when the reduction goes to each owner; DeepSpeed's default
 * (use_multi_rank_bucket_allreduce) allreduces the whole bucket instead, 1.5x as much.
 * Stage 2 reduces every micro-step, so with 2 accumulation steps it moves its reduction
 * twice. */
START_TEST(test_dp_comm_volume_per_stage)
{
    double s0 = wire_bytes_per_step(0, false, 2);
    double s1 = wire_bytes_per_step(1, true, 2), s1_ds = wire_bytes_per_step(1, false, 2);
    double s2 = wire_bytes_per_step(2, true, 2);
    double psi = 4.0 * 28032, f = (double)(world->size - 1) / world->size;
    /* 28032 parameters, 4 bytes; the small extras are the f64 norm and padding */
    ck_assert_double_eq_tol(s0, 2 * f * psi, 0.01 * s0);
    ck_assert_double_eq_tol(s1, s0, 0.01 * s0);
    ck_assert_double_eq_tol(s1_ds, 1.5 * s0, 0.015 * s0);
    ck_assert_double_eq_tol(s2, s0 + f * psi, 0.01 * s0); /* one more reduction (GAS 2) */
}
END_TEST

/* Stage 3 per step (one micro-step), without prefetch: an allgather of every layer in
 * forward, again in backward except the embedding (it stays gathered from its forward to
 * its backward), and a reduce-scatter of every layer's gradient: about 1.5 x stage 0's
 * allreduce. With prefetch, the last block is still held when backward starts, so it is
 * not gathered again: one block less. */
START_TEST(test_dp_comm_volume_stage3)
{
    int N = world->size;
    double s0 = wire_bytes_per_step(0, false, 1), s3 = wire_bytes_per_step(3, false, 1);
    double f = (double)(N - 1) / N;
    /* the layers' padded sizes: embed (V + maxT) * C, 2 blocks of 12C^2 + 13C, head 2C */
    size_t C = (size_t)model.channels, sizes[4] = {(size_t)(model.vocab_size + model.max_seq_len) * C,
                                                   12 * C * C + 13 * C, 12 * C * C + 13 * C, 2 * C};
    double all = 0, embed = 0;
    for (int l = 0; l < 4; l++) {
        double padded = (double)((sizes[l] + (size_t)N - 1) / (size_t)N * (size_t)N);
        all += padded;
        if (l == 0) embed = padded;
    }
    ck_assert_double_eq_tol(s3, 4.0 * f * (3 * all - embed), 0.01 * s3);
    ck_assert_msg(s3 / s0 > 1.4 && s3 / s0 < 1.55, "stage 3 / stage 0 volume %.3f", s3 / s0);
    double s3p = wire_bytes_per_step_opt(3, false, 1, true);
    double block = (double)((sizes[1] + (size_t)N - 1) / (size_t)N * (size_t)N);
    ck_assert_double_eq_tol(s3p, s3 - 4.0 * f * block, 0.01 * s3);
}
END_TEST

/* With the same world size and the same reduction (reduce_scatter off: stage 0's
 * post-scaled allreduce), stages 1 and 2 compute bit for bit what stage 0 does: only
 * where gradients and optimizer state live differs. Stage 2 reduces each layer's
 * gradient separately, so the sums match stage 0's only where one accumulation step and
 * the same elementwise order hold: GAS 1, and two ranks (a + b == b + a; with three, the
 * library's reduction tree may associate differently for different message sizes). */
static void bitwise_against_stage0(int stage, int gas)
{
    zl_device d0, d1;
    zl_engine *e0, *e1;
    float l0[STEPS], l1[STEPS];
    ck_assert_int_eq(zl_device_init(&d0, ZL_DEVICE_ACCEL, "cpu", "stage0", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d1, ZL_DEVICE_ACCEL, "cpu", "stageN", 0), ZL_OK);
    zl_engine_options o0 = options(B, gas, 0, 0, world), o1 = options(B, gas, 0, stage, world);
    o1.reduce_scatter = false;
    train(&e0, &d0, &o0, l0);
    train(&e1, &d1, &o1, l1);
    ck_assert_msg(memcmp(l0, l1, sizeof l0) == 0, "stage %d losses differ from stage 0's", stage);
    ck_assert_msg(memcmp(zl_tensor_f32(&e0->params), zl_tensor_f32(&e1->params),
                         e0->model.params_numel * sizeof(float)) == 0,
                  "stage %d weights differ from stage 0's", stage);
    zl_engine_destroy(e0);
    zl_engine_destroy(e1);
}

START_TEST(test_dp_stage1_bitwise_stage0) { bitwise_against_stage0(1, 2); }
END_TEST
START_TEST(test_dp_stage2_bitwise_stage0)
{
    if (world->size == 2) bitwise_against_stage0(2, 1);
}
END_TEST

/* Memory per rank, by the ZeRO paper's accounting for fp32 training (Psi parameters, N
 * ranks, the flat vector padded to a multiple of 2N): stage 1 keeps params and grads
 * whole and 1/N of the master weights and Adam's moments; stage 2 also keeps 1/N of the
 * gradients (plus the staging buckets backward writes into before reducing). */
static void ledger_matches_formula(int stage)
{
    int W = world->size;
    zl_device dev;
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "ledger", 0), ZL_OK);
    zl_engine_options o = options(B, 1, 0, stage, world);
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    size_t psi = e->model.params_numel, align = 2 * (size_t)W;
    size_t padded = (psi + align - 1) / align * align, part = padded / (size_t)W;
    if (stage == 3) {
        /* stage 3 partitions per tensor (DeepSpeed's layout): each padded to a multiple
         * of N (no tensor of this model is larger than the prefetch bucket) */
        size_t shard = 0;
        for (int i = 0; i < e->model.num_params; i++)
            shard += (e->model.params[i].numel + (size_t)W - 1) / (size_t)W;
        padded = part = shard; /* everything, parameters included, is 1/N */
        ck_assert_uint_le(shard * (size_t)W, psi + (size_t)e->model.num_params * (size_t)W);
    }
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "param"), 4 * padded);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "grad"), 4 * (stage >= 2 ? part : padded));
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "master"), 4 * part);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.m"), 4 * part);
    ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "adam.v"), 4 * part);
    if (stage == 2) { /* (stage 3's are the same, padded per layer) */
        /* staging: the embedding's gradient (V*C + maxT*C) and the largest other layer's
         * (a block: 12C^2 + 13C) */
        size_t C = (size_t)model.channels;
        size_t embed = (size_t)(model.vocab_size + model.max_seq_len) * C, block = 12 * C * C + 13 * C;
        ck_assert_uint_eq(zl_ledger_current(&dev.ledger, "bucket"), 4 * (embed + block));
    }
    zl_engine_destroy(e);
}

START_TEST(test_dp_stage1_ledger_matches_formula) { ledger_matches_formula(1); }
END_TEST
START_TEST(test_dp_stage2_ledger_matches_formula) { ledger_matches_formula(2); }
END_TEST
START_TEST(test_dp_stage3_ledger_matches_formula) { ledger_matches_formula(3); }
END_TEST

/* overlap_comm (stage 2): a layer's reduction runs while the next layer computes; the
 * sums are the same sums (bit for bit with two ranks; MPI's non-blocking allreduce may
 * associate three operands differently), and the second bucket shows on the ledger. */
START_TEST(test_dp_stage2_overlap_comm)
{
    zl_device d_on, d_off;
    zl_engine *on, *off;
    float l_on[STEPS], l_off[STEPS];
    ck_assert_int_eq(zl_device_init(&d_on, ZL_DEVICE_ACCEL, "cpu", "overlap", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d_off, ZL_DEVICE_ACCEL, "cpu", "blocking", 0), ZL_OK);
    zl_engine_options o_off = options(B, 2, 0.5, 2, world), o_on = o_off;
    o_on.overlap_comm = true;
    train(&on, &d_on, &o_on, l_on);
    train(&off, &d_off, &o_off, l_off);
    if (world->size == 2) {
        ck_assert(memcmp(l_on, l_off, sizeof l_on) == 0);
        ck_assert(memcmp(zl_tensor_f32(&on->params), zl_tensor_f32(&off->params),
                         on->model.params_numel * sizeof(float)) == 0);
    } else {
        ck_assert(zl_test_close("overlap_comm losses", l_on, l_off, STEPS, 1e-5, 0));
    }
    size_t C = (size_t)model.channels;
    ck_assert_uint_eq(zl_ledger_current(&d_on.ledger, "bucket"),
                      zl_ledger_current(&d_off.ledger, "bucket") + 4 * (12 * C * C + 13 * C));
    zl_engine_destroy(on);
    zl_engine_destroy(off);
}
END_TEST

/* Prefetching the next layer's parameters changes when they arrive, not what they are:
 * the same bits with and without it; the second gather buffer shows on the ledger. */
START_TEST(test_dp_stage3_prefetch_same_bits)
{
    zl_device d_on, d_off;
    zl_engine *on, *off;
    float l_on[STEPS], l_off[STEPS];
    ck_assert_int_eq(zl_device_init(&d_on, ZL_DEVICE_ACCEL, "cpu", "prefetch", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d_off, ZL_DEVICE_ACCEL, "cpu", "no prefetch", 0), ZL_OK);
    zl_engine_options o_on = options(B, 2, 0.5, 3, world), o_off = o_on;
    o_off.prefetch_bucket_size = -1; /* nothing fits: no prefetch */
    train(&on, &d_on, &o_on, l_on);
    train(&off, &d_off, &o_off, l_off);
    ck_assert(memcmp(l_on, l_off, sizeof l_on) == 0);
    size_t n = on->model.params_numel;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    ck_assert_int_eq(zl_engine_gather_params(on, a), ZL_OK);
    ck_assert_int_eq(zl_engine_gather_params(off, b), ZL_OK);
    ck_assert(memcmp(a, b, n * sizeof *a) == 0);
    /* one more block buffer: (12C^2 + 13C) padded to N */
    size_t C = (size_t)model.channels, W = (size_t)world->size;
    size_t block = (12 * C * C + 13 * C + W - 1) / W * W;
    ck_assert_uint_eq(zl_ledger_current(&d_on.ledger, "gather"),
                      zl_ledger_current(&d_off.ledger, "gather") + 4 * block);
    free(a);
    free(b);
    zl_engine_destroy(on);
    zl_engine_destroy(off);
}
END_TEST

/* Stage 3 with DeepSpeed's persistence threshold (1e5 elements): the model's blocks are
 * small enough to stay gathered; training is unchanged. */
START_TEST(test_dp_stage3_persistent_layers)
{
    int W = world->size;
    zl_device d_ref, d_dp;
    zl_engine *ref, *dp;
    float l_ref[STEPS], l_dp[STEPS];
    ck_assert_int_eq(zl_device_init(&d_ref, ZL_DEVICE_ACCEL, "cpu", "reference", 0), ZL_OK);
    ck_assert_int_eq(zl_device_init(&d_dp, ZL_DEVICE_ACCEL, "cpu", "dp", 0), ZL_OK);
    zl_engine_options o_ref = options(W * B, 2, 0.5, 0, NULL), o_dp = options(B, 2, 0.5, 3, world);
    o_dp.param_persistence_threshold = 0; /* DeepSpeed's default */
    train(&ref, &d_ref, &o_ref, l_ref);
    train(&dp, &d_dp, &o_dp, l_dp);
    ck_assert(zl_test_close("stage 3 persistent: losses", l_dp, l_ref, STEPS, 1e-5, 0));
    ck_assert_uint_gt(zl_ledger_current(&d_dp.ledger, "gather"), 0);
    zl_engine_destroy(ref);
    zl_engine_destroy(dp);
}
END_TEST

/* The point of ZeRO, on a budget: with a device just too small for stage 0, creating the
 * stage-0 engine fails with the ledger's report on every rank, and stage 2 fits. */
static size_t peak_bytes(int stage)
{
    zl_device dev;
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "probe", 0), ZL_OK);
    zl_engine_options o = options(B, 1, 0, stage, world);
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    size_t peak = dev.ledger.peak_nbytes;
    zl_engine_destroy(e);
    return peak;
}

START_TEST(test_dp_budget_stage0_oom_stage2_fits)
{
    size_t p0 = peak_bytes(0), p2 = peak_bytes(2);
    ck_assert_uint_lt(p2, p0);
    size_t budget = (p0 + p2) / 2;
    zl_device dev;
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "rank (budget)", budget), ZL_OK);
    zl_engine_options o0 = options(B, 1, 0, 0, world), o2 = options(B, 1, 0, 2, world);
    ck_assert_int_eq(zl_engine_create(&e, &model, &o0, &dev), ZL_ERR_OOM);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "out of memory"));
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "hint:"));
    ck_assert_uint_eq(dev.ledger.cur_nbytes, 0); /* nothing left behind */
    ck_assert_int_eq(zl_engine_create(&e, &model, &o2, &dev), ZL_OK);
    ck_assert_uint_le(dev.ledger.peak_nbytes, budget);
    zl_engine_destroy(e);
}
END_TEST

/* Ranks seeded differently still start from rank 0's weights (broadcast at start). */
START_TEST(test_dp_params_broadcast_from_rank0)
{
    zl_device dev;
    zl_engine *e;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "bcast", 0), ZL_OK);
    zl_engine_options o = options(B, 1, 0, 1, world);
    o.seed = 100 + (uint64_t)world->rank;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    zl_model probe;
    ck_assert_int_eq(zl_model_create(&probe, &model, &dev), ZL_OK);
    size_t n = e->model.params_numel;
    float *want = malloc(n * sizeof *want);
    zl_model_init_params(&probe, want, 0, n, 100); /* rank 0's seed */
    ck_assert(memcmp(want, zl_tensor_f32(&e->params), n * sizeof *want) == 0);
    free(want);
    zl_model_destroy(&probe);
    zl_engine_destroy(e);
}
END_TEST

static Suite *dp_suite(void)
{
    Suite *s = suite_create("dp");
    TCase *tc = tcase_create("dp");
    if (world->size >= 4) {
        /* Four ranks on two cores spin against each other (every collective costs
         * milliseconds): run a representative pair only. */
        tcase_add_test(tc, test_dp_stage1_gas1_clip);
        tcase_add_test(tc, test_dp_stage2_owner_reduce);
        tcase_add_test(tc, test_dp_stage3_gas4);
        suite_add_tcase(s, tc);
        return s;
    }
    tcase_add_test(tc, test_dp_stage0_gas1);
    tcase_add_test(tc, test_dp_stage0_gas4_clip);
    tcase_add_test(tc, test_dp_stage1_gas1_clip);
    tcase_add_test(tc, test_dp_stage1_gas4);
    tcase_add_test(tc, test_dp_stage2_gas1_clip);
    tcase_add_test(tc, test_dp_stage2_gas4);
    tcase_add_test(tc, test_dp_stage3_gas1_clip);
    tcase_add_test(tc, test_dp_stage3_gas4);
    if (world->size == 2) {
        /* when layers are gathered does not depend on the world size: two ranks suffice
         * (and compare bit for bit there); at three they only cost time */
        tcase_add_test(tc, test_dp_stage3_persistent_layers);
        tcase_add_test(tc, test_dp_stage3_prefetch_same_bits);
    }
    tcase_add_test(tc, test_dp_stage2_overlap_comm);
    tcase_add_test(tc, test_dp_stage3_ledger_matches_formula);
    tcase_add_test(tc, test_dp_comm_volume_stage3);
    tcase_add_test(tc, test_dp_stage1_owner_reduce);
    tcase_add_test(tc, test_dp_stage2_owner_reduce);
    tcase_add_test(tc, test_dp_comm_volume_per_stage);
    tcase_add_test(tc, test_dp_stage1_bitwise_stage0);
    tcase_add_test(tc, test_dp_stage2_bitwise_stage0);
    tcase_add_test(tc, test_dp_stage1_ledger_matches_formula);
    tcase_add_test(tc, test_dp_stage2_ledger_matches_formula);
    tcase_add_test(tc, test_dp_params_broadcast_from_rank0);
    tcase_add_test(tc, test_dp_budget_stage0_oom_stage2_fits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* zl_test_run_mpi initialises MPI; the world communicator wraps it. */
    return zl_test_run_mpi_with(dp_suite, &world);
}
