/* The timed op table: run the kernel, count its FLOPs and bytes, charge its time. Shapes
 * follow backends/ops.h (N rows, C channels, V vocabulary, T sequence, NH heads). */
#include "sim/sim.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

/* The timed tables' template: every function below, run on the simulator in self->ctx.
 * Each simulator holds its own copy (zl_sim_set_inner), with ctx pointing at itself. */
static const zl_ops sim_template, sim_template_meta;

void zl_sim_set_inner(zl_sim *s, const zl_ops *inner)
{
    s->inner = inner;
    s->ops = inner && inner->meta ? sim_template_meta : sim_template;
    s->ops.ctx = s;
}

void zl_sim_init(zl_sim *s, const zl_ops *inner, zl_sim_cost_fn cost, const void *preset,
                 bool record)
{
    memset(s, 0, sizeof *s);
    zl_timeline_init(&s->timeline, record);
    zl_sim_set_inner(s, inner);
    s->op_cost = cost;
    s->device_preset = preset;
    s->act_dtype = ZL_F32;
}

void zl_sim_free(zl_sim *s)
{
    zl_timeline_free(&s->timeline);
    memset(s, 0, sizeof *s);
}

/* The simulator a timed table charges: its own (a table copied out of its simulator, or
 * one whose simulator was freed, has none). */
static zl_sim *sim_of(const zl_ops *self)
{
    ZL_ASSERT(self->ctx && "a timed op table without its simulator (zl_sim_set_inner)");
    return self->ctx;
}

/* Charge one kernel: its roofline time, at least the launch floor. A piece of the
 * elementwise op charged last (nothing in between) continues that kernel: the run as a
 * whole pays the floor once. */
static void charge_raw(zl_sim *s, const char *name, zl_sim_op_kind kind, double flops,
                       double bytes, zl_dtype dt)
{
    double roof = s->op_cost ? s->op_cost(s, kind, flops, bytes, dt) : 0.0;
    double floor = s->op_cost ? s->launch : 0.0;
    s->flops += flops;
    double t;
    if (kind == ZL_SIM_ELEMENTWISE && s->run.open && !strcmp(s->run.name, name)) {
        double total = s->run.roofline + roof > floor ? s->run.roofline + roof : floor;
        t = total - s->run.charged;
        s->run.roofline += roof;
        s->run.charged = total;
    } else {
        t = roof > floor ? roof : floor;
        s->run.name = name;
        s->run.roofline = roof;
        s->run.charged = t;
        s->run.open = kind == ZL_SIM_ELEMENTWISE;
    }
    s->seconds[kind] += t;
    zl_timeline_kernel(&s->timeline, name, t);
}

/* Whatever else runs ends the fusion window of pending widenings and narrowing. */
static void forget_fusion(zl_sim *s)
{
    s->num_widen = 0;
    s->narrow = NULL;
}

static void charge(zl_sim *s, const char *name, zl_sim_op_kind kind, double flops, double bytes,
                   zl_dtype dt)
{
    forget_fusion(s);
    charge_raw(s, name, kind, flops, bytes, dt);
}

/* The pending widening that wrote `p` (n elements), or NULL. */
static const zl_sim_widening *widened(const zl_sim *s, const void *p, size_t n)
{
    for (int i = 0; i < s->num_widen; i++)
        if (s->widen[i].ptr == p && s->widen[i].n == n) return &s->widen[i];
    return NULL;
}

/* A vector op reading the operands in[0..k) (n elements each): if they are exactly the
 * pending widenings, take the casts back off the clock and return true, with each
 * operand's element size on the GPU in esz[] (its 16-bit type where widened, else 4). */
static bool consume(zl_sim *s, const void *const *in, int k, size_t n, double *esz)
{
    int used = 0;
    for (int i = 0; i < k; i++) {
        const zl_sim_widening *w = in[i] ? widened(s, in[i], n) : NULL;
        esz[i] = w ? (double)zl_dtype_nbytes(w->from) : 4.0;
        used += w != NULL;
    }
    if (!used || used != s->num_widen) {
        for (int i = 0; i < k; i++) esz[i] = 4.0;
        return false;
    }
    zl_timeline_restore(&s->timeline, &s->before_widen.timeline);
    s->flops = s->before_widen.flops;
    memcpy(s->seconds, s->before_widen.seconds, sizeof s->seconds);
    s->run.name = s->before_widen.run_name;
    s->run.roofline = s->before_widen.run_roofline;
    s->run.charged = s->before_widen.run_charged;
    s->run.open = s->before_widen.run_open;
    s->num_widen = 0;
    return true;
}

double zl_sim_collective(zl_sim *s, zl_sim_coll op, const char *name, double bytes,
                         int group_size, bool blocking, double arrival)
{
    if (!s || !s->coll_cost || group_size <= 1) return 0;
    forget_fusion(s);
    s->run.open = false;
    double t = s->coll_cost(s, op, bytes, group_size, 1, NULL);
    return zl_timeline_collective(&s->timeline, name, t, arrival, blocking);
}

/* "<name> (<link>)", kept for the process's life (a trace's spans point at their names):
 * a handful of collectives times a handful of links. */
static const char *span_name(const char *name, const char *link)
{
    enum { CAP = 64 };
    static char names[CAP][48];
    static int n;
    char want[48];
    snprintf(want, sizeof want, "%s (%s)", name, link);
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], want)) return names[i];
    if (n == CAP) return name;
    snprintf(names[n], sizeof names[n], "%s", want);
    return names[n++];
}

double zl_sim_collective_placed(zl_sim *s, zl_sim_coll op, const char *name, double bytes,
                                int group_size, int stride, bool blocking, double arrival)
{
    if (!s || !s->coll_cost || group_size <= 1) return 0;
    forget_fusion(s);
    s->run.open = false;
    const char *link = NULL;
    double t = s->coll_cost(s, op, bytes, group_size, stride > 0 ? stride : 1, &link);
    return zl_timeline_collective(&s->timeline, link ? span_name(name, link) : name, t, arrival,
                                  blocking);
}

double zl_sim_ready(const zl_sim *s) { return s ? s->timeline.clock[ZL_STREAM_COMPUTE] : 0; }

void zl_sim_wait(zl_sim *s, double end)
{
    if (!s) return;
    forget_fusion(s);
    s->run.open = false;
    zl_timeline_wait(&s->timeline, end);
}

double zl_sim_copy(zl_sim *s, bool to_device, double bytes)
{
    if (!s->copy_cost) return s->timeline.clock[ZL_STREAM_HOST];
    /* a pending widening would be undone by restoring the clocks, this copy with it */
    forget_fusion(s);
    s->run.open = false;
    double t = s->copy_cost(s, to_device, bytes);
    return zl_timeline_copy(&s->timeline, to_device ? "memcpy HtoD" : "memcpy DtoH", t);
}

double zl_sim_host_compute(zl_sim *s, const char *name, double bytes)
{
    if (!s->host_cost) return s->timeline.clock[ZL_STREAM_CPU];
    forget_fusion(s);
    s->run.open = false;
    zl_timeline *tl = &s->timeline;
    double ready = tl->clock[ZL_STREAM_COMPUTE] > tl->clock[ZL_STREAM_HOST]
                       ? tl->clock[ZL_STREAM_COMPUTE] : tl->clock[ZL_STREAM_HOST];
    double end = zl_timeline_run(tl, ZL_STREAM_CPU, name, s->host_cost(s, bytes), ready);
    if (end > tl->clock[ZL_STREAM_COMPUTE]) tl->clock[ZL_STREAM_COMPUTE] = end;
    return end;
}

double zl_sim_nvme(zl_sim *s, const char *name, bool write, double bytes, double ready)
{
    if (!s->nvme_cost) return s->timeline.clock[ZL_STREAM_NVME];
    return zl_timeline_run(&s->timeline, ZL_STREAM_NVME, name, s->nvme_cost(s, write, bytes), ready);
}

void zl_sim_host_wait(zl_sim *s, double end)
{
    forget_fusion(s);
    s->run.open = false;
    zl_timeline *tl = &s->timeline;
    if (end > tl->clock[ZL_STREAM_CPU]) tl->clock[ZL_STREAM_CPU] = end;
    if (end > tl->clock[ZL_STREAM_COMPUTE]) tl->clock[ZL_STREAM_COMPUTE] = end;
}

double zl_sim_host_now(const zl_sim *s)
{
    const zl_timeline *tl = &s->timeline;
    return tl->clock[ZL_STREAM_COMPUTE] > tl->clock[ZL_STREAM_CPU] ? tl->clock[ZL_STREAM_COMPUTE]
                                                                    : tl->clock[ZL_STREAM_CPU];
}

void zl_sim_copy_wait(zl_sim *s)
{
    forget_fusion(s);
    s->run.open = false;
    zl_timeline_wait_copy(&s->timeline, s->timeline.clock[ZL_STREAM_HOST]);
}

/* element size of an activation tensor on the simulated GPU */
static double A(const zl_sim *s) { return (double)zl_dtype_nbytes(s->act_dtype); }

void zl_sim_gemm_counts(int m, int n, int k, bool accumulate, zl_dtype dt, double *flops,
                        double *bytes)
{
    double e = (double)zl_dtype_nbytes(dt);
    *flops = 2.0 * m * (double)n * k;
    *bytes = e * ((double)m * k + (double)k * n + (accumulate ? 2.0 : 1.0) * m * (double)n);
}

/* ---- memory: allocation is the ledger's business, moves are charged ----------------- */

static void *s_alloc(const zl_ops *self, size_t n)
{
    const zl_ops *inner = sim_of(self)->inner;
    return inner->alloc(inner, n);
}

static void s_free(const zl_ops *self, void *p)
{
    const zl_ops *inner = sim_of(self)->inner;
    inner->free(inner, p);
}

static void s_zero(const zl_ops *self, void *p, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->zero(s->inner, p, n);
    charge(s, "memset", ZL_SIM_ELEMENTWISE, 0, (double)n, ZL_F32);
}

static void s_copy(const zl_ops *self, void *d, const void *src, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->copy(s->inner, d, src, n);
    charge(s, "copy", ZL_SIM_ELEMENTWISE, 0, 2.0 * (double)n, ZL_F32);
}

/* Host transfers are charged by zl_device_copy on the link (zl_sim_copy), not as kernels. */
static void s_to_host(const zl_ops *self, void *h, const void *d, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->to_host(s->inner, h, d, n);
}

static void s_to_device(const zl_ops *self, void *d, const void *h, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->to_device(s->inner, d, h, n);
}

static void s_transfer_wait(const zl_ops *self)
{
    zl_sim *s = sim_of(self);
    if (s->inner->transfer_wait) s->inner->transfer_wait(s->inner);
}

/* ---- dense algebra --------------------------------------------------------------------- */

static void s_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n,
                   int k, int lda, int ldb, int ldc, bool ta, bool tb, float alpha, float beta)
{
    zl_sim *s = sim_of(self);
    s->inner->gemm(s->inner, c, a, b, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    double f, by;
    zl_sim_gemm_counts(m, n, k, beta != 0.0f, ZL_F32, &f, &by);
    charge(s, "gemm", ZL_SIM_GEMM, f, by, ZL_F32);
}

static void s_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype bt,
                      zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool ta, bool tb,
                      float alpha, float beta)
{
    zl_sim *s = sim_of(self);
    s->inner->gemm_lp(s->inner, c, a, b, bt, t, m, n, k, lda, ldb, ldc, ta, tb, alpha, beta);
    double f, by;
    zl_sim_gemm_counts(m, n, k, beta != 0.0f, t, &f, &by);
    charge(s, "gemm", ZL_SIM_GEMM, f, by, t);
}

static void s_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    zl_sim *s = sim_of(self);
    s->inner->bias_forward(s->inner, out, bias, N, OC);
    charge(s, "bias", ZL_SIM_ELEMENTWISE, (double)N * OC, A(s) * (2.0 * N * OC + OC), s->act_dtype);
}

static void s_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    zl_sim *s = sim_of(self);
    s->inner->bias_backward(s->inner, dbias, dout, N, OC);
    charge(s, "bias_bwd", ZL_SIM_ELEMENTWISE, (double)N * OC, A(s) * ((double)N * OC + 2.0 * OC),
           s->act_dtype);
}

/* ---- layers ---------------------------------------------------------------------------- */

static void s_embedding_forward(const zl_ops *self, float *out, const int32_t *tok,
                                const float *wte, const float *wpe, int B, int T, int C)
{
    zl_sim *s = sim_of(self);
    s->inner->embedding_forward(s->inner, out, tok, wte, wpe, B, T, C);
    double n = (double)B * T * C;
    charge(s, "embedding", ZL_SIM_ELEMENTWISE, n, A(s) * 3.0 * n + 4.0 * B * T, s->act_dtype);
}

static void s_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                 const int32_t *tok, int B, int T, int C)
{
    zl_sim *s = sim_of(self);
    s->inner->embedding_backward(s->inner, dwte, dwpe, dout, tok, B, T, C);
    double n = (double)B * T * C;
    charge(s, "embedding_bwd", ZL_SIM_ELEMENTWISE, 2.0 * n, A(s) * 5.0 * n, s->act_dtype);
}

static void s_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tok,
                                      const float *wte, int v0, int v1, const float *wpe, int B,
                                      int T, int C)
{
    zl_sim *s = sim_of(self);
    s->inner->embedding_shard_forward(s->inner, out, tok, wte, v0, v1, wpe, B, T, C);
    double n = (double)B * T * C;
    charge(s, "embedding", ZL_SIM_ELEMENTWISE, n, A(s) * 3.0 * n + 4.0 * B * T, s->act_dtype);
}

static void s_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                       const float *dout, const int32_t *tok, int v0, int v1,
                                       int B, int T, int C)
{
    zl_sim *s = sim_of(self);
    s->inner->embedding_shard_backward(s->inner, dwte, dwpe, dout, tok, v0, v1, B, T, C);
    double n = (double)B * T * C;
    charge(s, "embedding_bwd", ZL_SIM_ELEMENTWISE, 2.0 * n, A(s) * 5.0 * n, s->act_dtype);
}

/* The vocabulary-parallel softmax's three passes cost what the fused one does, in parts. */
static void s_ce_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N, int V)
{
    zl_sim *s = sim_of(self);
    s->inner->crossentropy_shard_max(s->inner, rowmax, logits, N, V);
    double n = (double)N * V;
    charge(s, "cross_entropy", ZL_SIM_ELEMENTWISE, n, A(s) * n, s->act_dtype);
}

static void s_ce_shard_exp(const zl_ops *self, float *probs, float *rowsum, const float *logits,
                           const float *rowmax, int N, int V)
{
    zl_sim *s = sim_of(self);
    s->inner->crossentropy_shard_exp(s->inner, probs, rowsum, logits, rowmax, N, V);
    double n = (double)N * V;
    charge(s, "cross_entropy", ZL_SIM_ELEMENTWISE, 3.0 * n, A(s) * 2.0 * n, s->act_dtype);
}

static void s_ce_shard_loss(const zl_ops *self, float *losses, float *probs, const float *logits,
                            const float *rowmax, const float *rowsum, const int32_t *targets,
                            int v0, int N, int V)
{
    zl_sim *s = sim_of(self);
    s->inner->crossentropy_shard_loss(s->inner, losses, probs, logits, rowmax, rowsum, targets, v0,
                                      N, V);
    double n = (double)N * V;
    charge(s, "cross_entropy", ZL_SIM_ELEMENTWISE, n, A(s) * 2.0 * n, s->act_dtype);
}

static void s_ce_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                const int32_t *targets, int v0, float dloss, int N, int V)
{
    zl_sim *s = sim_of(self);
    s->inner->crossentropy_shard_backward(s->inner, dlogits, probs, targets, v0, dloss, N, V);
    double n = (double)N * V;
    charge(s, "cross_entropy_bwd", ZL_SIM_ELEMENTWISE, 2.0 * n, A(s) * 3.0 * n, s->act_dtype);
}

static void s_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                                const float *inp, const float *w, const float *b, int N, int C)
{
    zl_sim *s = sim_of(self);
    s->inner->layernorm_forward(s->inner, out, mean, rstd, inp, w, b, N, C);
    double n = (double)N * C;
    charge(s, "layernorm", ZL_SIM_ELEMENTWISE, 8.0 * n, A(s) * 2.0 * n + 8.0 * N, s->act_dtype);
}

static void s_layernorm_backward(const zl_ops *self, float *dinp, float *dw, float *db,
                                 const float *dout, const float *inp, const float *w,
                                 const float *mean, const float *rstd, int N, int C)
{
    zl_sim *s = sim_of(self);
    s->inner->layernorm_backward(s->inner, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    double n = (double)N * C;
    charge(s, "layernorm_bwd", ZL_SIM_ELEMENTWISE, 14.0 * n, A(s) * 4.0 * n + 8.0 * N, s->act_dtype);
}

/* Attention: the two batched products Q K^T and att V (4 B T^2 C FLOPs, the square as
 * block_flops counts it) and the softmax; bytes: qkv in, the (B,NH,T,T) probabilities
 * written, the output written. Backward: twice the products, probabilities read. */
static void s_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                                int T, int C, int NH)
{
    zl_sim *s = sim_of(self);
    s->inner->attention_forward(s->inner, out, att, qkv, B, T, C, NH);
    double tt = (double)B * NH * T * T, n = (double)B * T * C;
    charge(s, "attention", ZL_SIM_ATTENTION, 4.0 * B * (double)T * T * C + 5.0 * tt,
           A(s) * (4.0 * n + tt), s->act_dtype);
}

static void s_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                 const float *qkv, const float *att, int B, int T, int C, int NH)
{
    zl_sim *s = sim_of(self);
    s->inner->attention_backward(s->inner, dqkv, scratch, dout, qkv, att, B, T, C, NH);
    double tt = (double)B * NH * T * T, n = (double)B * T * C;
    charge(s, "attention_bwd", ZL_SIM_ATTENTION, 8.0 * B * (double)T * T * C + 5.0 * tt,
           A(s) * (7.0 * n + 3.0 * tt), s->act_dtype);
}

static void s_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->gelu_forward(s->inner, out, inp, n);
    charge(s, "gelu", ZL_SIM_ELEMENTWISE, 10.0 * n, A(s) * 2.0 * n, s->act_dtype);
}

static void s_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                            size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->gelu_backward(s->inner, dinp, inp, dout, n);
    charge(s, "gelu_bwd", ZL_SIM_ELEMENTWISE, 20.0 * n, A(s) * 4.0 * n, s->act_dtype);
}

static void s_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                               size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->residual_forward(s->inner, out, a, b, n);
    charge(s, "residual", ZL_SIM_ELEMENTWISE, (double)n, A(s) * 3.0 * n, s->act_dtype);
}

static void s_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                   const float *logits, const int32_t *targets, int N, int V)
{
    zl_sim *s = sim_of(self);
    s->inner->crossentropy_forward(s->inner, losses, probs, logits, targets, N, V);
    double n = (double)N * V;
    charge(s, "cross_entropy", ZL_SIM_ELEMENTWISE, 5.0 * n, A(s) * 2.0 * n, s->act_dtype);
}

static void s_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                    const int32_t *targets, float dloss, int N, int V)
{
    zl_sim *s = sim_of(self);
    s->inner->crossentropy_backward(s->inner, dlogits, probs, targets, dloss, N, V);
    double n = (double)N * V;
    charge(s, "cross_entropy_bwd", ZL_SIM_ELEMENTWISE, 2.0 * n, A(s) * 3.0 * n, s->act_dtype);
}

/* ---- optimizer and vectors ----------------------------------------------------------- */

/* The vector ops below may consume pending widenings (see sim.h): their operands are
 * then charged at the 16-bit width a GPU kernel reads and writes, and an in-place result
 * in a widened scratch marks its narrowing cast free. */

static void s_adamw(const zl_ops *self, float *p, float *m, float *v, const void *g,
                    zl_dtype gt, void *out, zl_dtype pt, size_t n, const zl_adamw_args *a)
{
    zl_sim *s = sim_of(self);
    s->inner->adamw(s->inner, p, m, v, g, gt, out, pt, n, a);
    /* What the fused pass moves: fp32 master, m and v read and written, the gradient read
     * at its storage width (as multi-tensor Adam kernels do; an f32 gradient that is a
     * pending widening counts at its 16-bit width), and the parameter copy-out written
     * at its own. */
    const void *in[1] = {g};
    double e[1] = {(double)zl_dtype_nbytes(gt)};
    if (gt == ZL_F32) consume(s, in, 1, n, e);
    forget_fusion(s);
    double out_bytes = out ? (double)zl_dtype_nbytes(pt) : 0.0;
    charge_raw(s, "adamw", ZL_SIM_ELEMENTWISE, 15.0 * n, (24.0 + e[0] + out_bytes) * n, ZL_F32);
}

static double s_sumsq(const zl_ops *self, const float *x, size_t n)
{
    zl_sim *s = sim_of(self);
    double r = s->inner->sumsq(s->inner, x, n);
    const void *in[1] = {x};
    double e[1];
    consume(s, in, 1, n, e);
    forget_fusion(s);
    charge_raw(s, "norm", ZL_SIM_ELEMENTWISE, 2.0 * n, e[0] * n, ZL_F32);
    return r;
}

static bool s_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    zl_sim *s = sim_of(self);
    bool r = s->inner->nonfinite(s->inner, x, n);
    const void *in[1] = {x};
    double e[1];
    consume(s, in, 1, n, e);
    forget_fusion(s);
    charge_raw(s, "overflow_check", ZL_SIM_ELEMENTWISE, (double)n, e[0] * n, ZL_F32);
    return r;
}

static void s_scale(const zl_ops *self, float *x, float f, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->scale(s->inner, x, f, n);
    const void *in[1] = {x};
    double e[1];
    bool fused = consume(s, in, 1, n, e);
    forget_fusion(s);
    charge_raw(s, "scale", ZL_SIM_ELEMENTWISE, (double)n, 2.0 * e[0] * n, ZL_F32);
    if (fused) s->narrow = x, s->narrow_n = n;
}

static void s_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->axpy(s->inner, y, a, x, n);
    const void *in[2] = {y, x};
    double e[2];
    bool fused = consume(s, in, 2, n, e);
    forget_fusion(s);
    charge_raw(s, "axpy", ZL_SIM_ELEMENTWISE, 2.0 * n, (2.0 * e[0] + e[1]) * n, ZL_F32);
    if (fused && e[0] < 4.0) s->narrow = y, s->narrow_n = n;
}

/* The CPU's rounding of f32 values to 16 bits stands for a GPU kernel writing 16 bits
 * directly: it costs the GPU nothing, so it is not charged. */
static void s_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    const zl_ops *inner = sim_of(self)->inner;
    inner->round(inner, x, t, n);
}

static void s_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->drain(s->inner, y, yt, x, xt, n);
    /* on a GPU: the layer's 16-bit gradient added into the store */
    double e = (double)zl_dtype_nbytes(yt);
    charge(s, "grad_accumulate", ZL_SIM_ELEMENTWISE, (double)n, (2.0 * e + A(s)) * n, yt);
}

static void s_cast(const zl_ops *self, void *d, zl_dtype dt, const void *src, zl_dtype st, size_t n)
{
    zl_sim *s = sim_of(self);
    s->inner->cast(s->inner, d, dt, src, st, n);
    /* the narrowing of a fused op's result: the GPU's kernel wrote 16 bits already */
    if (s->narrow && src == s->narrow && n == s->narrow_n && st == ZL_F32 && dt != ZL_F32) {
        s->narrow = NULL;
        return;
    }
    double bytes = (double)(zl_dtype_nbytes(dt) + zl_dtype_nbytes(st)) * n;
    if (dt == ZL_F32 && st != ZL_F32 && s->num_widen < 2) {
        /* a widening the next vector op may consume: charged now, taken back if it is */
        s->narrow = NULL;
        if (s->num_widen == 0) {
            zl_timeline_mark_get(&s->timeline, &s->before_widen.timeline);
            s->before_widen.flops = s->flops;
            memcpy(s->before_widen.seconds, s->seconds, sizeof s->seconds);
            s->before_widen.run_name = s->run.name;
            s->before_widen.run_roofline = s->run.roofline;
            s->before_widen.run_charged = s->run.charged;
            s->before_widen.run_open = s->run.open;
        }
        charge_raw(s, "cast", ZL_SIM_ELEMENTWISE, (double)n, bytes, dt);
        s->widen[s->num_widen++] = (zl_sim_widening){d, n, st};
        return;
    }
    charge(s, "cast", ZL_SIM_ELEMENTWISE, (double)n, bytes, dt);
}

#define SIM_TABLE(is_meta)                                                                      \
    {                                                                                           \
        .name = "sim", .meta = is_meta, .alloc = s_alloc, .free = s_free, .zero = s_zero,       \
        .copy = s_copy, .to_host = s_to_host, .to_device = s_to_device, .transfer_wait = s_transfer_wait, .gemm = s_gemm, .gemm_lp = s_gemm_lp, .bias_forward = s_bias_forward,   \
        .bias_backward = s_bias_backward, .embedding_forward = s_embedding_forward,             \
        .embedding_backward = s_embedding_backward, .layernorm_forward = s_layernorm_forward,   \
        .layernorm_backward = s_layernorm_backward, .attention_forward = s_attention_forward,   \
        .attention_backward = s_attention_backward, .gelu_forward = s_gelu_forward,             \
        .gelu_backward = s_gelu_backward, .residual_forward = s_residual_forward,               \
        .crossentropy_forward = s_crossentropy_forward,                                         \
        .crossentropy_backward = s_crossentropy_backward, .adamw = s_adamw, .sumsq = s_sumsq,   \
        .embedding_shard_forward = s_embedding_shard_forward,                                   \
        .embedding_shard_backward = s_embedding_shard_backward,                                 \
        .crossentropy_shard_max = s_ce_shard_max, .crossentropy_shard_exp = s_ce_shard_exp,     \
        .crossentropy_shard_loss = s_ce_shard_loss,                                             \
        .crossentropy_shard_backward = s_ce_shard_backward,                                     \
        .nonfinite = s_nonfinite, .scale = s_scale, .axpy = s_axpy, .round = s_round,           \
        .drain = s_drain, .cast = s_cast,                                                       \
    }

static const zl_ops sim_template = SIM_TABLE(false);
static const zl_ops sim_template_meta = SIM_TABLE(true);
