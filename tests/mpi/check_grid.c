/* The 3-D grid against the main oracle: one rank training the same global batch. The
 * world is cut into a pipe x data x model grid (comm/topology.h, model innermost):
 * pipeline stages run DeepSpeed's TrainSchedule (and GPipe) over their layers
 * (engine/engine_pipe.c), tensor-parallel ranks split every block's heads and MLP units
 * and the vocabulary (model/block.c, embed.c, head.c), with sequence parallelism the
 * stream by token rows too, and after 10 steps the losses, the gradient norms and the
 * weights must equal the single-rank run's within 1e-5 relative in fp32 (the same
 * arithmetic, up to the order of partial sums: the tied gradient's, the data-parallel
 * ranks', the tensor-parallel reductions'), and within mixed precision's bounds in bf16.
 * A tensor-parallel rank's weights are compared with the elements of the whole parameters
 * they are (zl_model_param_whole_index).
 *
 *   np 2: PP=2 (GAS 4): plain, with activation checkpointing, in bf16, GPipe; TP=2: fp32,
 *         activation checkpointing, ZeRO-2, ZeRO-3, ZeRO-1 with the optimizer on the host,
 *         bf16; TP=2 with sequence parallelism (fp32, bf16, ZeRO-1 with checkpointing); a
 *         vocabulary of 67 (34 and 33 words), with and without; refusals (ZeRO-2 with
 *         stages, the per-micro-batch calls, sequence parallelism with ZeRO-2, heads that
 *         do not divide, checkpoints); a bad token on one rank fails every stage.
 *   np 3: PP=3 on an uneven explicit split, and uniform with fewer micro-batches.
 *   np 4: PP=2 x DP=2 (ZeRO-0, -1), TP=2 x DP=2 (ZeRO-1, -3, ZeRO-2 with offload),
 *         PP=2 x TP=2 with and without sequence parallelism.
 *
 * Run under mpiexec at np = 2, 3 and 4 (tests/run-mpi.sh); each test runs the cases its
 * world size allows. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/log.h"
#include "base/rng.h"
#include "comm/comm.h"
#include "comm/topology.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "model/gpt_config.h"

/* 4 blocks: 6 layers (embed, h.0-h.3, head) */
static zl_gpt_config model = {"pipe-test", 64, 16, 4, 4, 32}; /* a test may change the vocabulary */
enum { B = 2, T = 8, STEPS = 10 };

static zl_comm *world;

/* The grid's groups for pp stages and tp tensor-parallel ranks, and mp: the ranks that
 * share a data-parallel index. */
typedef struct grid {
    zl_comm *pipe, *data, *tp, *mp;
    zl_coords at;
} grid;

static void grid_open2(grid *g, int pp, int tp)
{
    zl_topology t;
    ck_assert_int_eq(zl_topology_init(&t, world->size, pp, tp), ZL_OK);
    int r = world->rank;
    g->at = zl_topology_coords(&t, r);
    ck_assert_int_eq(zl_comm_split(world, zl_topology_group_color(&t, ZL_AXIS_PIPE, r), g->at.pipe,
                                   "pipe", &g->pipe), ZL_OK);
    ck_assert_int_eq(zl_comm_split(world, zl_topology_group_color(&t, ZL_AXIS_DATA, r), g->at.data,
                                   "data", &g->data), ZL_OK);
    ck_assert_int_eq(zl_comm_split(world, zl_topology_group_color(&t, ZL_AXIS_MODEL, r),
                                   g->at.model, "model", &g->tp), ZL_OK);
    ck_assert_int_eq(zl_comm_split(world, g->at.data, r, "model-parallel", &g->mp), ZL_OK);
}

static void grid_open(grid *g, int pp) { grid_open2(g, pp, 1); }

static void grid_close(grid *g)
{
    zl_comm_destroy(g->mp);
    zl_comm_destroy(g->tp);
    zl_comm_destroy(g->data);
    zl_comm_destroy(g->pipe);
}

/* Global micro-batch k: its B sequences, the same on every rank that asks. */
static void micro_batch(int32_t *in, int32_t *tg, int k)
{
    for (int s = 0; s < B; s++)
        for (int t = 0; t < T; t++) {
            uint64_t idx = (uint64_t)s * (T + 1) + (uint64_t)t;
            /* a learnable map, so that the loss falls within the test's steps */
            in[s * T + t] = (int32_t)(zl_rng_bits(91, (uint64_t)k, idx) % model.vocab_size);
            tg[s * T + t] = (in[s * T + t] * 5 + 3) % model.vocab_size;
        }
}

/* Data-parallel rank d of dp, with gas micro-batches a step: its i-th of step s is global
 * micro-batch s*dp*gas + d*gas + i, so the replicas together cover what one rank with
 * dp*gas micro-batches reads. */
typedef struct source {
    int dp, d, gas, calls;
} source;
static zl_status next_batch(void *ctx, int32_t *in, int32_t *tg)
{
    source *s = ctx;
    int step = s->calls / s->gas, i = s->calls % s->gas;
    s->calls++;
    micro_batch(in, tg, step * s->dp * s->gas + s->d * s->gas + i);
    return ZL_OK;
}

static zl_engine_options options(int gas, int zero_stage)
{
    zl_engine_options o = zl_test_engine_options(B, gas, T);
    o.gradient_clipping = 0.5; /* the norm must span the stages to clip as one rank does */
    o.optimizer.lr = 3e-3;
    o.optimizer.weight_decay = 0.1;
    o.seed = 11;
    o.zero_stage = zero_stage;
    o.reduce_scatter = true;
    o.use_multi_rank_bucket_allreduce = true;
    return o;
}

/* STEPS steps of o on this rank's grid position (g NULL: alone, reading all dp*gas
 * micro-batches a step); the losses (data-parallel mean) and the gathered weights. */
static void train(zl_engine_options o, const grid *g, int dp, float *losses, float *w,
                  size_t *stage_numel, double *grad_norms)
{
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "pipe", 0), ZL_OK);
    source src = {dp, 0, o.gradient_accumulation_steps, 0};
    if (g) {
        o.pipe = g->pipe;
        o.tp = g->tp;
        o.mp = g->mp;
        if (g->tp->size == 1) o.sequence_parallel = false;
        o.dp = g->data->size > 1 ? g->data : NULL;
        src.d = g->at.data;
    } else {
        o.gradient_accumulation_steps *= dp;
        o.sequence_parallel = false; /* one rank: no group to split over */
        src.dp = 1;
        src.gas = o.gradient_accumulation_steps;
    }
    zl_engine *e;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    for (int s = 0; s < STEPS; s++) {
        float l;
        ck_assert_int_eq(zl_engine_train_batch(e, next_batch, &src, &l), ZL_OK);
        losses[s] = zl_engine_dp_mean(e, l);
        grad_norms[s] = zl_engine_grad_norm(e);
    }
    ck_assert_int_eq(zl_engine_gather_params(e, w), ZL_OK); /* a tp rank's part of the model */
    if (stage_numel) *stage_numel = zl_engine_model(e)->params_numel;
    zl_engine_destroy(e);
}

/* The key biases (attn.c_attn.bias[C:2C] of each block) have a gradient of zero in exact
 * arithmetic (softmax does not change when one adds the same q.b to every key's score), so
 * theirs is rounding noise, which Adam scales up to about lr a step: any change in the
 * order of a sum moves them by that much. They are held to that bound; every other weight
 * to the tolerance the test asks. */
static bool noise_weight(const zl_model *m, size_t i)
{
    for (int b = 0; b < model.num_layers; b++) {
        char name[64];
        snprintf(name, sizeof name, "h.%d.attn.c_attn.bias", b);
        const zl_param_info *p = &m->params[zl_model_find_param(m, name)];
        size_t C = (size_t)model.channels;
        if (i >= p->offset + C && i < p->offset + 2 * C) return true;
    }
    return false;
}

/* Losses, the last gradient norm and the weights of the pipeline run against one rank's:
 * losses and norm within rtol; the weights within rtol as a whole (relative L2 error), and
 * element by element |a - b| <= rtol |b| + atol, the key biases within 2 lr a step
 * (noise_weight). atol is check_dp.c's floor for weights whose gradient nearly cancels:
 * partial sums added in another order (the data-parallel ranks', the tie's) round such a
 * gradient differently, and Adam moves by about lr whatever its size. A real error (a
 * missing gradient, a wrong scale, a norm over one stage only) moves weights by lr a
 * step, 100 times the floor. */
static void equivalent2(const char *what, const zl_engine_options *o, int pp, int tp, double rtol,
                        double atol)
{
    grid g;
    grid_open2(&g, pp, tp);
    int dp = g.data->size;
    size_t n = zl_gpt_config_num_params(&model), stage_numel = 0;
    float lp[STEPS], l1[STEPS];
    double np_[STEPS], n1[STEPS];
    float *wp = calloc(n, sizeof *wp), *w1 = calloc(n, sizeof *w1), *whole = calloc(n, sizeof *whole);
    train(*o, &g, dp, lp, whole, &stage_numel, np_);
    train(*o, NULL, dp, l1, w1, NULL, n1);
    /* A tensor-parallel rank holds parts: compare them with those elements of the whole
     * parameters (the tables of the whole model and of this rank's part, side by side). */
    zl_device names;
    zl_model full, part;
    ck_assert_int_eq(zl_device_init(&names, ZL_DEVICE_ACCEL, "meta", "names", 0), ZL_OK);
    ck_assert_int_eq(zl_model_create(&full, &model, &names), ZL_OK);
    ck_assert_int_eq(zl_model_create(&part, &model, &names), ZL_OK);
    ck_assert_int_eq(zl_model_set_tensor_parallel(&part, g.tp), ZL_OK);
    for (size_t i = 0; i < n; i++) wp[i] = w1[i]; /* elements no rank of this group holds */
    size_t compared = 0;
    for (int p = 0; p < part.num_params; p++) {
        const zl_param_info *pi = &part.params[p], *fi = &full.params[p];
        for (size_t e = 0; e < pi->numel; e++, compared++)
            wp[fi->offset + zl_model_param_whole_index(&part, pi, e)] = whole[pi->offset + e];
    }
    ck_assert_uint_eq(compared, part.params_numel);
    ck_assert(tp > 1 || compared == n);
    char label[160];
    snprintf(label, sizeof label, "%s (PP=%d x DP=%d x TP=%d) vs one rank: losses", what, pp, dp, tp);
    int ok = zl_test_close(label, lp, l1, STEPS, rtol, 0);
    /* The gradient norm at the first step, and at the last, where in 16 bits the runs'
     * roundings have parted them (a norm moves more than the loss: 2.88 against 2.95 in
     * bf16 after ten steps, with the losses within 1e-4). */
    bool half = o->precision.dtype != ZL_F32;
    for (int s = 0; s < STEPS; s += STEPS - 1) {
        double tol = s == 0 || !half ? rtol : 0.05;
        if (fabs(np_[s] - n1[s]) > tol * n1[s]) {
            printf("%s: gradient norm at step %d %.9g vs %.9g (one rank)\n", what, s + 1, np_[s], n1[s]);
            ok = 0;
        }
    }
    double d2 = 0, w2 = 0;
    for (size_t i = 0; i < n; i++) {
        d2 += ((double)wp[i] - w1[i]) * ((double)wp[i] - w1[i]);
        w2 += (double)w1[i] * w1[i];
    }
    if (sqrt(d2) > rtol * sqrt(w2)) {
        printf("%s: weights' relative L2 error %.3g, above %.3g\n", what, sqrt(d2 / w2), rtol);
        ok = 0;
    }
    snprintf(label, sizeof label, "%s (PP=%d x DP=%d x TP=%d) vs one rank: weights", what, pp, dp, tp);
    size_t noise = 0;
    for (size_t i = 0; i < n; i++)
        if (noise_weight(&full, i)) {
            ok = ok && fabsf(wp[i] - w1[i]) <= 2 * STEPS * o->optimizer.lr;
            wp[i] = w1[i]; /* held to its own bound */
            noise++;
        }
    ck_assert_uint_eq(noise, (size_t)model.num_layers * model.channels);
    ok = ok && zl_test_close(label, wp, w1, n, rtol, atol);
    ck_assert_msg(zl_test_all_ok(ok), "%s: the pipeline run differs from one rank", what);
    /* it trained (the loss fell) and each stage held a part of the model only */
    ck_assert_msg(l1[0] > 1.0f && l1[STEPS - 1] < l1[0], "%s: compared nothing (losses %g .. %g)",
                  what, l1[0], l1[STEPS - 1]);
    ck_assert_uint_lt(stage_numel, n);
    if (world->rank == 0)
        printf("  %s: PP=%d x DP=%d x TP=%d matches one rank (losses %.5f .. %.5f)\n", what, pp,
               dp, tp, l1[0], l1[STEPS - 1]);
    zl_model_destroy(&part);
    zl_model_destroy(&full);
    free(whole);
    free(wp);
    free(w1);
    grid_close(&g);
}

#define FLOOR (1e-2 * 3e-3 * STEPS) /* 1e-2 of lr * STEPS (equivalent) */

static void equivalent(const char *what, const zl_engine_options *o, int pp, double rtol, double atol)
{
    equivalent2(what, o, pp, 1, rtol, atol);
}

START_TEST(test_pipe_pp2_fp32)
{
    if (world->size % 2) return;
    zl_engine_options o = options(4, 0);
    equivalent("fp32, GAS 4, parameters split", &o, 2, 1e-5, FLOOR);
    o.checkpoint_interval = 1;
    equivalent("fp32, GAS 4, activation checkpointing", &o, 2, 1e-5, FLOOR);
}
END_TEST

/* GPipe across two stages (every forward, then every backward; engine/schedule.h): the
 * engine runs the schedule it was given instead of 1F1B, with a slot per micro-batch, and
 * trains as one rank does, with and without activation checkpointing (whose stage output
 * lives in the shared segment area: GPipe sends it in the step after its forward, before
 * any other pass, as 1F1B does). */
START_TEST(test_pipe_pp2_gpipe)
{
    if (world->size != 2) return;
    zl_engine_options o = options(4, 0);
    o.schedule = ZL_SCHEDULE_GPIPE;
    grid g;
    grid_open(&g, 2);
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "pipe", 0), ZL_OK);
    zl_engine_options oe = o;
    oe.pipe = g.pipe;
    zl_engine *e;
    ck_assert_int_eq(zl_engine_create(&e, &model, &oe, &dev), ZL_OK);
    zl_instr want[64];
    int n = zl_schedule_make_stage(ZL_SCHEDULE_GPIPE, 4, 2, g.at.pipe, want, 64);
    ck_assert_int_eq(e->schedule_len, n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(e->schedule[i].kind, want[i].kind);
        ck_assert_int_eq(e->schedule[i].buffer, want[i].buffer);
    }
    ck_assert_int_eq(e->model.num_slots, 4); /* 1F1B's stages hold 2 */
    zl_engine_destroy(e);
    /* the data-parallel default still means 1F1B across stages */
    oe.schedule = ZL_SCHEDULE_DATA_PARALLEL;
    ck_assert_int_eq(zl_engine_create(&e, &model, &oe, &dev), ZL_OK);
    ck_assert_int_eq(e->schedule_len, zl_schedule_make_stage(ZL_SCHEDULE_TRAIN, 4, 2, g.at.pipe, NULL, 0));
    ck_assert_int_eq(e->model.num_slots, 2);
    zl_engine_destroy(e);
    grid_close(&g);
    equivalent("GPipe fp32, GAS 4", &o, 2, 1e-5, FLOOR);
    o.checkpoint_interval = 1;
    equivalent("GPipe fp32, GAS 4, activation checkpointing", &o, 2, 1e-5, FLOOR);
}
END_TEST

START_TEST(test_pipe_pp3_uneven)
{
    if (world->size != 3) return;
    zl_engine_options o = options(4, 0);
    /* [embed h.0] [h.1] [h.2 h.3 head] */
    snprintf(o.pipe_partition, sizeof o.pipe_partition, "0,2,3,6");
    equivalent("fp32, GAS 4, split 0,2,3,6", &o, 3, 1e-5, FLOOR);
    o.gradient_accumulation_steps = 1; /* fewer micro-batches than stages */
    snprintf(o.pipe_partition, sizeof o.pipe_partition, "uniform");
    equivalent("fp32, GAS 1, uniform split", &o, 3, 1e-5, FLOOR);
}
END_TEST

START_TEST(test_pipe_pp2_dp2_zero1)
{
    if (world->size != 4) return;
    zl_engine_options o = options(2, 1);
    equivalent("fp32, ZeRO-1, GAS 2", &o, 2, 1e-5, FLOOR);
}
END_TEST

/* bf16: the head on the last stage reads an f32 copy of wte (one rank reads the bf16
 * values in a bf16 GEMM), so the runs part by rounding; bounded as mixed precision is:
 * a few bf16 ulps, or an lr per step where a rounding flips an update's sign. */
START_TEST(test_pipe_pp2_bf16)
{
    if (world->size != 2) return;
    zl_engine_options o = options(2, 0);
    o.precision.dtype = ZL_BF16;
    equivalent("bf16, GAS 2", &o, 2, 0x1p-6, 2 * STEPS * 3e-3);
}
END_TEST

/* DeepSpeed's refusals: ZeRO-2/3 with a pipeline, and the per-micro-batch calls. */
START_TEST(test_pipe_refusals)
{
    if (world->size != 2) return;
    grid g;
    grid_open(&g, 2);
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "pipe", 0), ZL_OK);
    zl_engine *e;
    zl_engine_options o = options(2, 2);
    o.pipe = g.pipe;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_ERR_CONFIG);
    ck_assert_ptr_null(e);
    ck_assert_msg(strstr(zl_last_error(), "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism"),
                  "%s", zl_last_error());
    o.zero_stage = 0;
    snprintf(o.pipe_partition, sizeof o.pipe_partition, "profile");
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_ERR_UNSUPPORTED);
    o.pipe_partition[0] = 0;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    int32_t tok[B * T] = {0};
    ck_assert_int_eq(zl_engine_forward(e, tok, tok, NULL), ZL_ERR_INVALID);
    ck_assert_msg(strstr(zl_last_error(), "train_batch"), "%s", zl_last_error());
    ck_assert_int_eq(zl_engine_step(e), ZL_ERR_INVALID);
    zl_engine_destroy(e);
    grid_close(&g);
}
END_TEST

/* Tensor parallelism: TP=2 alone (fp32, with activation checkpointing, ZeRO-2, bf16),
 * TP=2 x DP=2 with ZeRO-1 and PP=2 x TP=2 at 4 ranks. */
START_TEST(test_tp2)
{
    if (world->size == 3) return;
    zl_engine_options o = options(2, 0);
    if (world->size == 2) {
        equivalent2("TP fp32, GAS 2", &o, 1, 2, 1e-5, FLOOR);
        o.checkpoint_interval = 2;
        equivalent2("TP fp32, activation checkpointing", &o, 1, 2, 1e-5, FLOOR);
        o.checkpoint_interval = 0;
        o.zero_stage = 2;
        equivalent2("TP fp32, ZeRO-2", &o, 1, 2, 1e-5, FLOOR);
        o.zero_stage = 3;
        equivalent2("TP fp32, ZeRO-3", &o, 1, 2, 1e-5, FLOOR);
        o.zero_stage = 1;
        o.offload_optimizer = true; /* ZeRO-Offload: the norm reads the host's share */
        equivalent2("TP fp32, ZeRO-1 with the optimizer on the host", &o, 1, 2, 1e-5, FLOOR);
        o.offload_optimizer = false;
        o.zero_stage = 0;
        o.precision.dtype = ZL_BF16;
        equivalent2("TP bf16, GAS 2", &o, 1, 2, 0x1p-6, 2 * STEPS * 3e-3);
        /* sequence parallelism: the stream split over the two ranks by token rows */
        o.sequence_parallel = true;
        equivalent2("TP+SP bf16, GAS 2", &o, 1, 2, 0x1p-6, 2 * STEPS * 3e-3);
        o.precision.dtype = ZL_F32;
        equivalent2("TP+SP fp32, GAS 2", &o, 1, 2, 1e-5, FLOOR);
        o.checkpoint_interval = 1;
        o.zero_stage = 1;
        equivalent2("TP+SP fp32, ZeRO-1, activation checkpointing", &o, 1, 2, 1e-5, FLOOR);
        /* a vocabulary the group does not divide: 34 words and 33 (vocabulary-parallel) */
        o.checkpoint_interval = 0;
        model.vocab_size = 67;
        equivalent2("TP+SP fp32, vocabulary of 67", &o, 1, 2, 1e-5, FLOOR);
        o.sequence_parallel = false;
        equivalent2("TP fp32, vocabulary of 67", &o, 1, 2, 1e-5, FLOOR);
        model.vocab_size = 64;
    } else {
        o.zero_stage = 1;
        equivalent2("TP x DP fp32, ZeRO-1", &o, 1, 2, 1e-5, FLOOR);
        o.zero_stage = 3; /* shards of each rank's parts, the norm through the fragments */
        equivalent2("TP x DP fp32, ZeRO-3", &o, 1, 2, 1e-5, FLOOR);
        o.zero_stage = 2;
        o.offload_optimizer = true;
        equivalent2("TP x DP fp32, ZeRO-2 with the optimizer on the host", &o, 1, 2, 1e-5, FLOOR);
        o.offload_optimizer = false;
        o.zero_stage = 0;
        o.gradient_accumulation_steps = 4;
        equivalent2("PP x TP fp32, GAS 4", &o, 2, 2, 1e-5, FLOOR);
        o.sequence_parallel = true;
        equivalent2("PP x TP+SP fp32, GAS 4", &o, 2, 2, 1e-5, FLOOR);
    }
}
END_TEST

/* What tensor parallelism refuses: heads it cannot divide, sequence parallelism with
 * ZeRO-2, checkpoints. */
START_TEST(test_tp_refusals)
{
    if (world->size != 2) return;
    grid g;
    grid_open2(&g, 1, 2);
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "tp", 0), ZL_OK);
    zl_engine *e;
    zl_engine_options o = options(1, 2);
    o.tp = g.tp;
    o.sequence_parallel = true;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(zl_last_error(), "sequence parallelism with ZeRO stage 2 is not built yet"),
                  "%s", zl_last_error());
    o.sequence_parallel = false;
    o.zero_stage = 0;
    zl_gpt_config odd = model;
    odd.num_heads = 1;
    ck_assert_int_eq(zl_engine_create(&e, &odd, &o, &dev), ZL_ERR_CONFIG);
    ck_assert_msg(strstr(zl_last_error(), "must divide model 'pipe-test''s 1 attention heads"), "%s",
                  zl_last_error());
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    /* each rank holds half of every split parameter */
    const zl_model *m = zl_engine_model(e);
    int qkv = zl_model_find_param(m, "h.0.attn.c_attn.weight");
    ck_assert_int_eq(m->params[qkv].shape[0], 3 * model.channels / 2);
    ck_assert_int_eq(m->params[qkv].model_shape[0], 3 * model.channels);
    zl_engine_save_args sa = {.dir = "/nonexistent-zl-tp"};
    ck_assert_int_eq(zl_engine_save_checkpoint(e, &sa), ZL_ERR_UNSUPPORTED);
    zl_engine_destroy(e);
    grid_close(&g);
}
END_TEST

/* A bad token on one data stream fails the step on every stage, before any stage waits
 * for another (the step's data is read and agreed on first). */
static zl_status bad_batch(void *ctx, int32_t *in, int32_t *tg)
{
    (void)ctx;
    for (int i = 0; i < B * T; i++) in[i] = tg[i] = 1;
    if (world->rank == 1) in[3] = model.vocab_size + 7;
    return ZL_OK;
}

START_TEST(test_pipe_bad_data_fails_everywhere)
{
    if (world->size != 2) return;
    grid g;
    grid_open(&g, 2);
    zl_device dev;
    ck_assert_int_eq(zl_device_init(&dev, ZL_DEVICE_ACCEL, "cpu", "pipe", 0), ZL_OK);
    zl_engine *e;
    zl_engine_options o = options(2, 0);
    o.pipe = g.pipe;
    ck_assert_int_eq(zl_engine_create(&e, &model, &o, &dev), ZL_OK);
    float l;
    ck_assert_int_eq(zl_engine_train_batch(e, bad_batch, NULL, &l), ZL_ERR_INVALID);
    ck_assert(zl_engine_failed_here(e) == (world->rank == 1));
    zl_engine_destroy(e);
    grid_close(&g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grid");
    TCase *tc = tcase_create("equivalence");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pipe_pp2_fp32);
    tcase_add_test(tc, test_pipe_pp2_gpipe);
    tcase_add_test(tc, test_pipe_pp3_uneven);
    tcase_add_test(tc, test_pipe_pp2_dp2_zero1);
    tcase_add_test(tc, test_pipe_pp2_bf16);
    tcase_add_test(tc, test_pipe_refusals);
    tcase_add_test(tc, test_pipe_bad_data_fails_everywhere);
    tcase_add_test(tc, test_tp2);
    tcase_add_test(tc, test_tp_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return zl_test_run_mpi_with(suite, &world); }
