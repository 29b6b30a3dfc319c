/* The op table: every kernel the engine runs, as function pointers, one table per backend.
 *
 *   ref   naive loops; the readable specification and the oracle of every test
 *   cpu   OpenBLAS sgemm + OpenMP kernels
 *   cuda  cuBLAS + CUDA kernels (backends/cuda)
 *   meta  shapes only: allocates nothing, computes nothing (zerolab plan)
 *   discrete  ref's kernels on memory the host cannot touch, as a GPU's (a test backend:
 *         backends/discrete/discrete.h)
 *
 * Every function takes the table it was called through as its first argument, `self`
 * (a vtable whose instance carries context, as cuBLAS's handle does): call it as
 * ops->gemm(ops, c, a, b, ...). A timed table finds its simulator in self->ctx; the ref,
 * cpu and meta kernels ignore self. No kernel finds its context through a global.
 *
 * Conventions (llm.c's), after self: outputs first, then inputs, then weights, then
 * dimensions. All arithmetic is f32; half-precision storage is converted with `cast`.
 * Row-major everywhere. Dimension names used below:
 *   B batch, T sequence length, C channels, NH heads, HS = C/NH head size,
 *   V vocabulary, N = B*T rows, OC output channels.
 *
 * Backward kernels ACCUMULATE (+=) into every gradient they write, inputs and weights
 * alike; the caller zeroes gradients when a new accumulation starts (or, for a weight
 * gradient written by a GEMM, runs that GEMM with beta = 0: model.h's fresh gradients).
 * This is what gradient accumulation across micro-batches and the residual stream need.
 *
 * Kernels do not allocate. Scratch space comes from the caller (allocated once, through
 * the device ledger). */
#ifndef ZL_BACKENDS_OPS_H
#define ZL_BACKENDS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"

typedef struct zl_adamw_args {
    float lr;
    float beta1, beta2;
    float eps;
    float weight_decay;
    /* 1 - beta^t for the step t being taken (1.0f when bias correction is off). */
    float bias_correction1, bias_correction2;
    /* Multiplies every gradient element before use: 1/loss_scale times the clipping
     * coefficient, so unscaling and clipping cost no extra pass. */
    float grad_scale;
    /* true: decoupled weight decay (AdamW, p -= lr*wd*p); false: classic Adam, where the
     * decay is added to the gradient (g += wd*p) before the moments. */
    bool adamw_mode;
    /* Not NULL: the kernel adds the sum of squares of the gradients as it uses them,
     * (double)(g * grad_scale)^2 before any decay, into *sumsq. A norm nothing needs
     * before the step (no clipping) then costs no pass of its own. */
    double *sumsq;
} zl_adamw_args;

typedef struct zl_ops zl_ops;

struct zl_ops {
    const char *name;
    /* The instance's context: the simulator for sim/sim.h's timed table (one table per
     * simulator); NULL for the stateless ref, cpu and meta tables. */
    void *ctx;
    /* Shapes only (meta): pointers from alloc have no memory behind them, so code outside
     * the kernels must not read or write device memory when this is set. */
    bool meta;
    /* Called by zl_device_init for every device on this backend, before its first kernel:
     * what the backend must settle once per process (cpu: which OpenBLAS kernel runs,
     * cpu_blas.h). Idempotent; NULL: nothing to do. */
    void (*setup)(const zl_ops *self);
    /* Called by zl_device_init after setup, for an accelerator device: the backend takes
     * its memory for the device's budget now (*budget_nbytes; 0: none asked) and sets
     * *budget_nbytes to what it holds, the budget the ledger then enforces (cuda: one arena
     * of the budget; none asked: the card's free memory less a reserve, backends/cuda/
     * cuda.h). Fails when the backend cannot run (cuda: no driver, no device, no memory).
     * NULL: nothing to reserve, the budget stays. */
    zl_status (*reserve)(const zl_ops *self, size_t *budget_nbytes);
    /* The first error the backend met since the last call, ZL_OK if none: a GPU's kernel
     * fails after its call has returned, and ops return no status. The device layer calls
     * it after setup, on every allocation and every transfer. NULL: kernels cannot fail. */
    zl_status (*check)(const zl_ops *self);
    /* The table of a host device (ZL_DEVICE_HOST) of this backend: kernels on host memory
     * with this backend's allocator for it (cuda: the cpu kernels on pinned memory, for
     * offload's CPU Adam and fast transfers). NULL: this table. */
    const zl_ops *(*host)(const zl_ops *self);
    /* What the backend chose at run time by measuring (cpu: each GEMM shape's path), as
     * text a checkpoint keeps, and its restoration, so that a resumed run computes as the
     * run it resumes did. save writes at most len bytes and returns the length needed
     * (with the NUL); load returns how many choices it took. NULL: nothing chosen. */
    size_t (*choices_save)(const zl_ops *self, char *buf, size_t len);
    int (*choices_load)(const zl_ops *self, const char *text);

    /* ---- memory (device memory of this backend) ---------------------------------- */
    /* Returns zeroed, 64-byte aligned memory, or NULL. Called only by core/device.c. */
    void *(*alloc)(const zl_ops *self, size_t nbytes);
    void (*free)(const zl_ops *self, void *ptr);
    void (*zero)(const zl_ops *self, void *ptr, size_t nbytes);
    void (*copy)(const zl_ops *self, void *dst, const void *src, size_t nbytes); /* one device */
    /* Transfers between this backend's memory and the host's (the process's own memory):
     * what zl_device_copy runs, and the only way host code may read or write device memory
     * (a GPU's memory is not the host's). They may return before the bytes have moved (a
     * GPU's copy stream, after the kernels issued before it): until transfer_wait the
     * destination holds anything and the source must not change (host or device side).
     * Host code that reads or writes device memory for itself uses core/device.h's
     * zl_device_read / zl_device_write, which wait. ref and cpu: memcpy (their device
     * memory is host memory); meta: nothing; discrete: deferred to transfer_wait, the
     * destination poisoned meanwhile; cuda: cudaMemcpyAsync on the copy stream. */
    void (*to_host)(const zl_ops *self, void *host, const void *dev, size_t nbytes);
    void (*to_device)(const zl_ops *self, void *dev, const void *host, size_t nbytes);
    /* Completes every to_host / to_device issued so far: the host's destinations hold the
     * bytes when it returns, and the kernels issued after it see the device's (cuda: the
     * host waits for the copy stream and the compute stream waits for its event).
     * NULL: transfers are complete on return. */
    void (*transfer_wait)(const zl_ops *self);

    /* ---- dense algebra ------------------------------------------------------------- */
    /* C = alpha * op(A) @ op(B) + beta * C, row-major.
     * op(A) is (m, k): A is (m, k) with leading dimension lda, or (k, m) if trans_a.
     * op(B) is (k, n): B is (k, n) with leading dimension ldb, or (n, k) if trans_b.
     * C is (m, n) with leading dimension ldc. beta = 0 overwrites C (NaN in C ignored). */
    void (*gemm)(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                 int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta);
    /* gemm whose operands are 16-bit values: every element of op(A) and op(B) is exactly
     * representable in `t` (ZL_BF16 or ZL_F16; ZL_F32 means plain gemm), as mixed-precision
     * training guarantees by rounding weights and activations to t. A holds them as f32; B
     * as f32 (b_type ZL_F32) or stored as t itself (b_type t: a model's 16-bit weights, fed
     * without a widened copy). The products of two such values are exact in f32 and the
     * sums accumulate in f32, which is what a GPU's tensor cores do with 16-bit inputs, so
     * the result equals gemm's up to summation order, and does not depend on b_type. A
     * backend may therefore run it on 16-bit hardware (cpu: oneDNN's AVX512_BF16 matmul,
     * converting A to bf16 exactly and reading a bf16 B as it is). C is f32. */
    void (*gemm_lp)(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                    zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                    bool trans_b, float alpha, float beta);
    /* out (N, OC) += bias (OC) broadcast over rows */
    void (*bias_forward)(const zl_ops *self, float *out, const float *bias, int N, int OC);
    /* dbias (OC) += column sums of dout (N, OC) */
    void (*bias_backward)(const zl_ops *self, float *dbias, const float *dout, int N, int OC);

    /* ---- GPT layers ------------------------------------------------------------------ */
    /* out (B,T,C) = wte[tokens[b,t]] + wpe[t]; tokens (B,T), wte (V,C), wpe (maxT,C).
     * Token ids are checked by the caller (0 <= id < V). */
    void (*embedding_forward)(const zl_ops *self, float *out, const int32_t *tokens,
                              const float *wte, const float *wpe, int B, int T, int C);
    /* dwte[tokens[b,t]] += dout[b,t]; dwpe[t] += sum_b dout[b,t] */
    void (*embedding_backward)(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                               const int32_t *tokens, int B, int T, int C);

    /* out (N,C) = (inp - mean) * rstd * weight + bias, per row; saves mean (N), rstd (N).
     * eps = 1e-5 as in GPT-2 / torch.nn.LayerNorm. */
    void (*layernorm_forward)(const zl_ops *self, float *out, float *mean, float *rstd,
                              const float *inp, const float *weight, const float *bias, int N,
                              int C);
    void (*layernorm_backward)(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *weight,
                               const float *mean, const float *rstd, int N, int C);

    /* Causal multi-head self-attention on a fused projection.
     * qkv (B,T,3C): for each position, q (C) | k (C) | v (C), head h at [h*HS, (h+1)*HS).
     * out (B,T,C): heads concatenated. att (B,NH,T,T): softmax probabilities, saved for
     * backward (entries above the diagonal are written as 0). Scale 1/sqrt(HS). */
    void (*attention_forward)(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                              int T, int C, int NH);
    /* dqkv (B,T,3C) += gradient; scratch holds at least 2*B*NH*T*T floats. */
    void (*attention_backward)(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                               const float *qkv, const float *att, int B, int T, int C, int NH);

    /* GELU, tanh approximation (GPT-2's gelu_new, torch approximate="tanh"):
     * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    void (*gelu_forward)(const zl_ops *self, float *out, const float *inp, size_t n);
    void (*gelu_backward)(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                          size_t n);

    /* out = a + b (out may alias a or b) */
    void (*residual_forward)(const zl_ops *self, float *out, const float *a, const float *b,
                             size_t n);

    /* Fused softmax + cross-entropy over logits (N,V) with targets (N).
     * losses (N) = -log softmax(logits)[target]; probs (N,V) = softmax(logits).
     * A target < 0 is ignored: loss 0, and no gradient in backward. */
    void (*crossentropy_forward)(const zl_ops *self, float *losses, float *probs,
                                 const float *logits, const int32_t *targets, int N, int V);
    /* dlogits (N,V) += dloss * (probs - onehot(target)) for rows whose target >= 0;
     * dloss is the gradient of the objective w.r.t. each row's loss (e.g. 1/N). */
    void (*crossentropy_backward)(const zl_ops *self, float *dlogits, const float *probs,
                                  const int32_t *targets, float dloss, int N, int V);

    /* ---- vocabulary-parallel embedding and cross-entropy (Megatron-LM) ----------------
     * A tensor-parallel rank holds the vocabulary rows [v0, v1) of wte (its V = v1 - v0
     * rows here), and computes the logits of those words only; the layers sum over the
     * group between these calls (model/embed.c, model/head.c). */
    /* out (B,T,C) = (v0 <= tokens[b,t] < v1 ? wte[tokens[b,t] - v0] : 0) + wpe[t], the
     * position term only when wpe is not NULL (one rank adds it before the group's sum). */
    void (*embedding_shard_forward)(const zl_ops *self, float *out, const int32_t *tokens,
                                    const float *wte, int v0, int v1, const float *wpe, int B,
                                    int T, int C);
    /* dwte[tokens - v0] += dout for the tokens in [v0, v1) (dwte NULL: none);
     * dwpe[t] += sum_b dout[b,t] (dwpe NULL: none) */
    void (*embedding_shard_backward)(const zl_ops *self, float *dwte, float *dwpe,
                                     const float *dout, const int32_t *tokens, int v0, int v1,
                                     int B, int T, int C);
    /* A softmax over the group's vocabulary, in three passes around two reductions:
     *   rowmax (N) = max_j logits[n,j]                          (then MAX over the group)
     *   probs = exp(logits - rowmax); rowsum (N) = sum_j probs   (then SUM over the group)
     *   probs /= rowsum; losses[n] = log(rowsum) + rowmax - logits[n, y - v0] when the
     *   target y is one of this rank's words, else 0           (then SUM: the loss) */
    void (*crossentropy_shard_max)(const zl_ops *self, float *rowmax, const float *logits, int N,
                                   int V);
    void (*crossentropy_shard_exp)(const zl_ops *self, float *probs, float *rowsum,
                                   const float *logits, const float *rowmax, int N, int V);
    void (*crossentropy_shard_loss)(const zl_ops *self, float *losses, float *probs,
                                    const float *logits, const float *rowmax, const float *rowsum,
                                    const int32_t *targets, int v0, int N, int V);
    /* crossentropy_backward over this rank's words: dlogits[n,j] += dloss * (probs[n,j] -
     * [j == y - v0]) for rows with y >= 0 */
    void (*crossentropy_shard_backward)(const zl_ops *self, float *dlogits, const float *probs,
                                        const int32_t *targets, int v0, float dloss, int N, int V);

    /* ---- optimizer and vector ops -------------------------------------------------- */
    /* One AdamW/Adam step over n elements, in one pass: the fp32 master, m and v updated in
     * place from grad, stored as grad_type (f32, f16 or bf16; widened exactly, in the
     * kernel), and, when param_out is not NULL, the updated master written to param_out
     * as param_type (f32, f16 or bf16), bit for bit zl_convert's rounding (nearest even):
     * the 16-bit parameters of mixed precision, with no separate widening and rounding
     * passes over memory. fp32 training passes the parameters as master and NULL. */
    void (*adamw)(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                  zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                  const zl_adamw_args *args);
    /* Sum of squares, accumulated in double (for global gradient norms). */
    double (*sumsq)(const zl_ops *self, const float *x, size_t n);
    /* true if any element is inf or NaN */
    bool (*nonfinite)(const zl_ops *self, const float *x, size_t n);
    /* x *= s */
    void (*scale)(const zl_ops *self, float *x, float s, size_t n);
    /* y += a * x */
    void (*axpy)(const zl_ops *self, float *y, float a, const float *x, size_t n);
    /* x = (float)(t)x in place: round f32 values to the nearest `t` (even on ties, with
     * f16's overflow to inf and subnormals), the storage rounding of a 16-bit tensor */
    void (*round)(const zl_ops *self, float *x, zl_dtype t, size_t n);
    /* Drain an f32 accumulator into a store: y = round_yt(y + round_xt(x)), then x = 0.
     * A layer's f32 gradient becomes the 16-bit gradient a GPU kernel would have written
     * (round_xt) and is added to the gradient store (param.grad += grad), and the
     * accumulator is ready for the next layer, in one pass. yt, xt: f32, f16 or bf16. */
    void (*drain)(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n);
    /* element-wise conversion between f32, f16 and bf16 (round to nearest even) */
    void (*cast)(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                 zl_dtype src_type, size_t n);
};

#ifdef __cplusplus /* the CUDA backend's .cu files (C linkage, as the tables are C's) */
extern "C" {
#endif

extern const zl_ops zl_ops_ref;
extern const zl_ops zl_ops_cpu;
extern const zl_ops zl_ops_meta;
extern const zl_ops zl_ops_cuda; /* only in a build with CUDA (ZL_HAVE_CUDA) */

/* Look up a backend by name ("ref", "cpu", "meta", "discrete", "cuda"); NULL if unknown or
 * not built. */
const zl_ops *zl_ops_find(const char *name);

#ifdef __cplusplus
}
#endif

#endif
