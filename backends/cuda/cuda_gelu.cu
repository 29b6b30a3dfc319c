/* GELU, tanh approximation, on the GPU (ops.h; ref: backends/ref/ref_gelu.c, the same
 * formulas in the same order):
 *
 *   u        = s * (x + 0.044715 x^3),   s = sqrt(2/pi)
 *   gelu(x)  = 0.5 x (1 + tanh(u))
 *   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) * s * (1 + 3 * 0.044715 x^2)
 *
 * Element-wise over n values (grid-stride, size_t indices); backward accumulates
 * dinp += gelu'(inp) * dout. CUDA's tanhf (not the fast __tanhf approximation: the
 * library is not built with --use_fast_math) is within 2 ulp of glibc's, and nvcc may
 * contract the products into FMAs, so results agree with ref to a few f32 ulps, not bit
 * for bit. */
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/cuda_reduce.cuh"

#define GELU_SCALING_FACTOR 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_CUBIC 0.044715f

__global__ static void gelu_forward_kernel(float *out, const float *inp, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + GELU_CUBIC * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanhf(u));
    }
}

__global__ static void gelu_backward_kernel(float *dinp, const float *inp, const float *dout,
                                            size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + GELU_CUBIC * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th; /* not 1/cosh^2: cosh overflows for |u| > 89 */
        float du_dx = GELU_SCALING_FACTOR * (1.0f + 3.0f * GELU_CUBIC * x * x);
        float local_grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * du_dx;
        dinp[i] += local_grad * dout[i];
    }
}

extern "C" void zl_cuda_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return;
    gelu_forward_kernel<<<zl__cuda_grid(ctx, n), ZL_CUDA_REDUCE_THREADS, 0, ctx->compute>>>(
        out, inp, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

extern "C" void zl_cuda_gelu_backward(const zl_ops *self, float *dinp, const float *inp,
                                      const float *dout, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return;
    gelu_backward_kernel<<<zl__cuda_grid(ctx, n), ZL_CUDA_REDUCE_THREADS, 0, ctx->compute>>>(
        dinp, inp, dout, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}
