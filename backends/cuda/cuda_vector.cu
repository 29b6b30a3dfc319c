/* Element-wise vector ops and reductions on the GPU (ops.h; ref: backends/ref/ref_vector.c
 * and ref_gemm.c's bias passes).
 *
 *   bias_forward   out (N,OC) += bias (OC)            bias_backward  dbias (OC) += colsum
 *   residual       out = a + b                        scale          x *= s
 *   axpy           y += a * x                         round          x = (t)x
 *   sumsq          sum x^2 in double (deterministic)  nonfinite      any inf or NaN
 *   drain          y = round_yt(y + round_xt(x)), x = 0
 *   cast           f32 <-> f16 <-> bf16
 *
 * Element-wise kernels are grid-stride loops with size_t indices (n may pass 2^31), 256
 * threads a block. Arithmetic that ref does in one f32 operation per element is written
 * with __fmul_rn / __fadd_rn where nvcc would otherwise contract a*x + y into an FMA
 * (axpy, drain): the results are then ref's bit for bit. 16-bit values go through
 * cuda_dtype.cuh, dtype.c's rounding bit for bit (NaN payloads included). */
#include "backends/cuda/cuda_dtype.cuh"
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/cuda_reduce.cuh"

#define THREADS ZL_CUDA_REDUCE_THREADS

/* ---- bias --------------------------------------------------------------------------- */

/* out (N*OC flattened) += bias[i % OC] */
__global__ static void bias_forward_kernel(float *out, const float *bias, size_t total, int OC)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] += bias[i % (size_t)OC];
}

extern "C" void zl_cuda_bias_forward(const zl_ops *self, float *out, const float *bias, int N,
                                     int OC)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    size_t total = (size_t)N * (size_t)OC;
    if (N <= 0 || OC <= 0) return;
    bias_forward_kernel<<<zl__cuda_grid(ctx, total), THREADS, 0, ctx->compute>>>(out, bias, total,
                                                                                  OC);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* dbias (OC) += column sums of dout (N, OC). A block owns 32 columns (one per threadIdx.x,
 * so every row's 32 loads are one 128-byte transaction); its BIAS_ROWS rows of threads
 * take rows y, y + BIAS_ROWS, ... and the column's BIAS_ROWS partial sums are added in a
 * fixed order: deterministic, no atomics. The order differs from ref's single running sum,
 * so results agree to f32 reordering, not bit for bit. Only ceil(OC/32) blocks run (24 for
 * OC = 768): a split over rows with a second deterministic pass is the next step if it
 * shows in a profile (it needs scratch of splits x OC floats). */
#define BIAS_ROWS 32 /* 1024 threads: more loads in flight per block */
__global__ static void bias_backward_kernel(float *dbias, const float *dout, int N, int OC)
{
    __shared__ float part[BIAS_ROWS][32];
    int col = blockIdx.x * 32 + threadIdx.x;
    float sum = 0.0f;
    if (col < OC)
        for (int row = threadIdx.y; row < N; row += BIAS_ROWS) sum += dout[(size_t)row * OC + col];
    part[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < OC) {
        float total = 0.0f;
        for (int r = 0; r < BIAS_ROWS; r++) total += part[r][threadIdx.x];
        dbias[col] += total;
    }
}

extern "C" void zl_cuda_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N,
                                      int OC)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (N <= 0 || OC <= 0) return;
    dim3 block(32, BIAS_ROWS);
    bias_backward_kernel<<<(OC + 31) / 32, block, 0, ctx->compute>>>(dbias, dout, N, OC);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* ---- residual, scale, axpy ---------------------------------------------------------- */

/* out = a + b; out may alias a or b (each element is read before it is written) */
__global__ static void residual_kernel(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

extern "C" void zl_cuda_residual_forward(const zl_ops *self, float *out, const float *a,
                                         const float *b, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return;
    residual_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(out, a, b, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

__global__ static void scale_kernel(float *x, float s, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

extern "C" void zl_cuda_scale(const zl_ops *self, float *x, float s, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return;
    scale_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(x, s, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* y += a * x, rounded twice as ref (no FMA) */
__global__ static void axpy_kernel(float *y, float a, const float *x, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));
}

extern "C" void zl_cuda_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return;
    axpy_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(y, a, x, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* ---- reductions --------------------------------------------------------------------- */

/* One partial per block (cuda_reduce.cuh): 8 KiB in the module, no allocation. */
__device__ static double g_partials[ZL_CUDA_REDUCE_BLOCKS];

double *zl__cuda_partials(zl_cuda_ctx *ctx)
{
    void *p = NULL;
    ZL_CUDA_CHECK(ctx, cudaGetSymbolAddress(&p, g_partials));
    return (double *)p;
}

/* out[0] = sum of partials[0, nblocks): each thread adds its strided partials in order,
 * then the block's fixed tree. */
__global__ static void finish_sum_kernel(double *out, const double *partials, int nblocks)
{
    double v = 0.0;
    for (int i = threadIdx.x; i < nblocks; i += blockDim.x) v += partials[i];
    v = zl__cuda_block_sum(v);
    if (threadIdx.x == 0) out[0] = v;
}

double zl__cuda_finish_sum(zl_cuda_ctx *ctx, int nblocks)
{
    double *partials = zl__cuda_partials(ctx);
    if (ctx->failed || !partials) return 0.0;
    finish_sum_kernel<<<1, THREADS, 0, ctx->compute>>>(ctx->reduce, partials, nblocks);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
    ZL_CUDA_CHECK(ctx, cudaMemcpyAsync(ctx->reduce_host, ctx->reduce, sizeof(double),
                                       cudaMemcpyDeviceToHost, ctx->compute));
    ZL_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->compute));
    return ctx->failed ? 0.0 : ctx->reduce_host[0];
}

/* partials[block] = sum over the block's grid-stride slice of (double)x^2 */
__global__ static void sumsq_kernel(double *partials, const float *x, size_t n)
{
    double v = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        v += (double)x[i] * x[i];
    v = zl__cuda_block_sum(v);
    if (threadIdx.x == 0) partials[blockIdx.x] = v;
}

extern "C" double zl_cuda_sumsq(const zl_ops *self, const float *x, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return 0.0;
    double *partials = zl__cuda_partials(ctx);
    if (!partials) return 0.0;
    int blocks = zl__cuda_reduce_blocks(n); /* a function of n only: the same tree each run */
    sumsq_kernel<<<blocks, THREADS, 0, ctx->compute>>>(partials, x, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
    return zl__cuda_finish_sum(ctx, blocks);
}

/* *flag = 1 when some x is inf or NaN (exponent all ones: a bit test, immune to fast-math
 * flags). Every writer writes the same 1, so the race is benign. */
__global__ static void nonfinite_kernel(int *flag, const float *x, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        if ((__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u) {
            *flag = 1;
            return;
        }
}

extern "C" bool zl_cuda_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (n == 0) return false;
    ZL_CUDA_CHECK(ctx, cudaMemsetAsync(ctx->flag, 0, sizeof(int), ctx->compute));
    nonfinite_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(ctx->flag, x, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
    ZL_CUDA_CHECK(ctx, cudaMemcpyAsync(ctx->flag_host, ctx->flag, sizeof(int),
                                       cudaMemcpyDeviceToHost, ctx->compute));
    ZL_CUDA_CHECK(ctx, cudaStreamSynchronize(ctx->compute));
    /* After an error the answer is unknown: say "overflow" (the step is skipped) rather
     * than let a NaN through; the error itself surfaces at the next zl_cuda_check. */
    return ctx->failed ? true : ctx->flag_host[0] != 0;
}

/* ---- rounding, drain, cast ---------------------------------------------------------- */

static bool float_type(zl_dtype t) { return t == ZL_F32 || t == ZL_F16 || t == ZL_BF16; }

__global__ static void round_kernel(float *x, int t, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = zl__hd_round(x[i], t);
}

extern "C" void zl_cuda_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!float_type(t)) {
        zl__cuda_fail(ctx, "zl_cuda_round", "the type is not f32, f16 or bf16");
        return;
    }
    if (n == 0 || t == ZL_F32) return;
    round_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(x, (int)t, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* ref's drain_add: y + g where a NaN operand is chosen explicitly (y's if y is one, else
 * g's, quieted, sign and payload kept), and inf + -inf gives the HOST CPU's default NaN,
 * which ref and cpu produce there (their y + g); a GPU's own would be 0x7fffffff. x86's
 * is 0xffc00000 (negative); AArch64's (Grace Hopper hosts) and POWER's are 0x7fc00000
 * (positive), so a fixed x86 constant made drain differ from ref there. nvcc defines the
 * host compiler's architecture macros in the device pass too, so the choice is made at
 * compile time. */
#if defined(__x86_64__) || defined(__i386__)
#define HOST_DEFAULT_NAN 0xffc00000u
#else
#define HOST_DEFAULT_NAN 0x7fc00000u
#endif
__device__ static float drain_add(float y, float g)
{
    if (isnan(y) || isnan(g)) return __uint_as_float(__float_as_uint(isnan(y) ? y : g) | 0x00400000u);
    float s = __fadd_rn(y, g);
    return isnan(s) ? __uint_as_float(HOST_DEFAULT_NAN) : s;
}

__global__ static void drain_kernel(void *y, int yt, float *x, int xt, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = zl__hd_round(x[i], xt);
        zl__hd_store(y, yt, i, drain_add(zl__hd_load(y, yt, i), g));
        x[i] = 0.0f;
    }
}

extern "C" void zl_cuda_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt,
                              size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!float_type(yt) || !float_type(xt)) {
        zl__cuda_fail(ctx, "zl_cuda_drain", "a type is not f32, f16 or bf16");
        return;
    }
    if (n == 0) return;
    drain_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(y, (int)yt, x, (int)xt, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* dst[i] = src[i] converted; dst and src do not overlap (a same-type cast is a copy) */
__global__ static void cast_kernel(void *dst, int dt, const void *src, int st, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        zl__hd_store(dst, dt, i, zl__hd_load(src, st, i));
}

extern "C" void zl_cuda_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                             zl_dtype src_type, size_t n)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (!float_type(dst_type) || !float_type(src_type)) {
        zl__cuda_fail(ctx, "zl_cuda_cast", "a type is not f32, f16 or bf16");
        return;
    }
    if (n == 0) return;
    /* ref's memmove: a copy, nothing when dst is src. (zl_dtype_nbytes is not callable
     * here: base/dtype.h has no extern "C" guard for C++.) */
    if (dst_type == src_type) {
        if (dst != src)
            ZL_CUDA_CHECK(ctx, cudaMemcpyAsync(dst, src, n * (dst_type == ZL_F32 ? 4u : 2u),
                                               cudaMemcpyDeviceToDevice, ctx->compute));
        return;
    }
    cast_kernel<<<zl__cuda_grid(ctx, n), THREADS, 0, ctx->compute>>>(dst, (int)dst_type, src,
                                                                      (int)src_type, n);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}
