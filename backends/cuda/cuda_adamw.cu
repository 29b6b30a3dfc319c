/* One Adam / AdamW step on the GPU, in one pass over memory (ops.h; ref:
 * backends/ref/ref_adamw.c, whose formulas and f32 operation order this follows):
 *
 *   g     = grad * grad_scale                      grad widened exactly from f32/f16/bf16
 *   sq   += (double)g^2                            only when args->sumsq (before decay)
 *   g    += wd * p                                 classic Adam only (adamw_mode false)
 *   m     = beta1 * m + (1 - beta1) * g
 *   v     = beta2 * v + (1 - beta2) * g * g
 *   mhat  = m / bias_correction1,  vhat = v / bias_correction2
 *   p    -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)      wd * p for AdamW only
 *   param_out = p rounded to param_type (dtype.c's nearest even, cuda_dtype.cuh)
 *
 * Every f32 operation is written with the _rn intrinsics so nvcc cannot contract pairs
 * into FMAs: each is then the correctly rounded operation ref's C does (sqrt and division
 * are IEEE by default in CUDA, and subnormals are kept: no --use_fast_math, no -ftz),
 * so master, m, v and param_out are ref's bit for bit. The optional sum of squares is a
 * deterministic double reduction (cuda_reduce.cuh), equal to ref's sequential sum up to
 * double rounding, and added to the host's *args->sumsq (the step then waits for the GPU:
 * only when a norm was asked for, which is what fusing it saves a pass for). */
#include "backends/cuda/cuda_dtype.cuh"
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/cuda_reduce.cuh"

typedef struct adamw_params {
    float lr, beta1, beta2, eps, wd, bc1, bc2, grad_scale;
    bool adamw_mode;
} adamw_params;

/* master, m, v (n) f32 in place; grad (n) as grad_type; param_out (n) as param_type or
 * NULL; partials (gridDim.x) receives the block's sum of g^2 when not NULL. */
__global__ static void adamw_kernel(float *master, float *m, float *v, const void *grad,
                                    int grad_type, void *param_out, int param_type, size_t n,
                                    adamw_params a, double *partials)
{
    double sq = 0.0;
    float one_b1 = __fsub_rn(1.0f, a.beta1), one_b2 = __fsub_rn(1.0f, a.beta2);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float p = master[i];
        float g = __fmul_rn(zl__hd_load(grad, grad_type, i), a.grad_scale);
        sq += (double)g * g;
        if (!a.adamw_mode) g = __fadd_rn(g, __fmul_rn(a.wd, p));

        float mi = __fadd_rn(__fmul_rn(a.beta1, m[i]), __fmul_rn(one_b1, g));
        float vi = __fadd_rn(__fmul_rn(a.beta2, v[i]), __fmul_rn(__fmul_rn(one_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        float mhat = __fdiv_rn(mi, a.bc1);
        float vhat = __fdiv_rn(vi, a.bc2);

        float update = __fdiv_rn(mhat, __fadd_rn(__fsqrt_rn(vhat), a.eps));
        if (a.adamw_mode) update = __fadd_rn(update, __fmul_rn(a.wd, p));
        float np = __fsub_rn(p, __fmul_rn(a.lr, update));
        master[i] = np;
        if (param_out) zl__hd_store(param_out, param_type, i, np);
    }
    if (partials) { /* uniform over the grid: every thread reaches the block sum */
        sq = zl__cuda_block_sum(sq);
        if (threadIdx.x == 0) partials[blockIdx.x] = sq;
    }
}

static bool float_type(zl_dtype t) { return t == ZL_F32 || t == ZL_F16 || t == ZL_BF16; }

extern "C" void zl_cuda_adamw(const zl_ops *self, float *master, float *m, float *v,
                              const void *grad, zl_dtype grad_type, void *param_out,
                              zl_dtype param_type, size_t n, const zl_adamw_args *args)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!float_type(grad_type) || (param_out && !float_type(param_type))) {
        zl__cuda_fail(ctx, "zl_cuda_adamw", "grad or param type is not f32, f16 or bf16");
        return;
    }
    if (n == 0) {
        if (args->sumsq) *args->sumsq += 0.0; /* ref adds its empty sum */
        return;
    }
    adamw_params a = {args->lr,  args->beta1, args->beta2, args->eps,       args->weight_decay,
                      args->bias_correction1, args->bias_correction2, args->grad_scale,
                      args->adamw_mode};
    double *partials = NULL;
    unsigned blocks = zl__cuda_grid(ctx, n);
    if (args->sumsq) {
        partials = zl__cuda_partials(ctx);
        if (!partials) return;
        blocks = (unsigned)zl__cuda_reduce_blocks(n); /* a function of n only: deterministic */
    }
    adamw_kernel<<<blocks, ZL_CUDA_REDUCE_THREADS, 0, ctx->compute>>>(
        master, m, v, grad, (int)grad_type, param_out, (int)param_type, n, a, partials);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
    if (args->sumsq) *args->sumsq += zl__cuda_finish_sum(ctx, (int)blocks);
}
