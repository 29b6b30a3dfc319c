/* Dense algebra on the GPU: gemm (fp32) and gemm_lp (16-bit operands, fp32 accumulation on
 * tensor cores), both through cuBLAS on ctx->compute.
 *
 *   C (m,n) = alpha * op(A) (m,k) @ op(B) (k,n) + beta * C          row-major (ops.h)
 *
 * cuBLAS is column-major. A row-major matrix X with leading dimension ldx is, read
 * column-major with the same ldx, its transpose; so the row-major product is computed as
 *
 *   C^T (n,m) = op(B)^T (n,k) @ op(A)^T (k,m)                        column-major
 *
 * i.e. cuBLAS gets B first and A second, the operation flags unchanged (a row-major B
 * read column-major is B^T already; op = T on it gives back B), and the dimensions as
 * (n, m, k). The leading dimensions are the row-major ones, unchanged: lda, ldb, ldc as
 * ops.h defines them. Only the m x n window of C is written, and beta = 0 does not read C
 * (BLAS semantics: NaN in C is ignored), as ref does.
 *
 * fp32 means fp32: gemm runs CUBLAS_COMPUTE_32F, never TF32 (CUBLAS_COMPUTE_32F_FAST_TF32
 * would round the operands to 10 mantissa bits, and an fp32 run on cuda would no longer
 * match cpu). The handle's math mode stays CUBLAS_DEFAULT_MATH (setup's), and
 * NVIDIA_TF32_OVERRIDE=1 in the environment is the user's explicit choice to override it.
 * The 16-bit path is where tensor cores are used: bf16/f16 operands, fp32 accumulation.
 *
 * gemm_lp's operands are exactly representable in t (ops.h), so converting the f32 ones to
 * t loses nothing, and the product accumulated in f32 equals gemm's up to summation order.
 * The converted copies live in the context's workspace (past cuBLAS's share: cuda_ops.h);
 * kernels never allocate, so an operand too big for it is converted and multiplied in
 * blocks of rows of op(A) and columns of op(B), each block a complete product over k. */
#include "backends/cuda/cuda_ops.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define ALIGN_BYTES 256 /* cuBLAS wants 16-byte operands; 256 keeps every block aligned */

static size_t align_up(size_t x) { return (x + ALIGN_BYTES - 1) / ALIGN_BYTES * ALIGN_BYTES; }

static cublasOperation_t op_of(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

static cudaDataType_t cuda_type_of(zl_dtype t)
{
    switch (t) {
    case ZL_BF16: return CUDA_R_16BF;
    case ZL_F16: return CUDA_R_16F;
    default: return CUDA_R_32F;
    }
}

/* C (m,n) = beta * C, for k == 0 (an empty sum; cuBLAS rejects lda = 0 for it).
 * beta == 0 writes 0 without reading C. One thread per element of the window. */
__global__ static void scale_window_kernel(float *c, int m, int n, int ldc, float beta)
{
    size_t total = (size_t)m * n;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        size_t i = idx / n, j = idx % n;
        float *cij = c + i * ldc + j;
        *cij = beta == 0.0f ? 0.0f : beta * *cij;
    }
}

static int grid_for(const zl_cuda_ctx *ctx, size_t total, int block)
{
    size_t blocks = (total + block - 1) / block;
    size_t cap = (size_t)(ctx->sm_count > 0 ? ctx->sm_count : 80) * 32; /* grid-stride beyond */
    if (blocks > cap) blocks = cap;
    return blocks > 0 ? (int)blocks : 1;
}

static bool scale_window(zl_cuda_ctx *ctx, float *c, int m, int n, int ldc, float beta)
{
    if (beta == 1.0f) return true;
    int block = 256;
    scale_window_kernel<<<grid_for(ctx, (size_t)m * n, block), block, 0, ctx->compute>>>(
        c, m, n, ldc, beta);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
    return true;
}

void zl_cuda_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                  int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_window(ctx, c, m, n, ldc, beta);
        return;
    }
    /* the swap: C^T = op(B)^T op(A)^T (header comment) */
    ZL_CUBLAS_CHECK(ctx, cublasGemmEx(ctx->cublas, op_of(trans_b), op_of(trans_a), n, m, k, &alpha,
                                      b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F,
                                      ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* ---- gemm_lp ----------------------------------------------------------------------- */

/* dst (rows, cols), leading dimension ldd, stored as dst_type (bf16 or f16)
 *   = src (rows, cols), leading dimension lds, stored as src_type (f32, bf16 or f16).
 * Round to nearest even, which for gemm_lp's operands (exact in dst_type) is exact. Also
 * used to convert a 16-bit B of the other 16-bit type (its values are exact in t too). */
__device__ static float load_as_f32(const void *src, zl_dtype type, size_t i)
{
    switch (type) {
    case ZL_BF16: return __bfloat162float(((const __nv_bfloat16 *)src)[i]);
    case ZL_F16: return __half2float(((const __half *)src)[i]);
    default: return ((const float *)src)[i];
    }
}

__global__ static void to_16bit_kernel(void *dst, zl_dtype dst_type, int ldd, const void *src,
                                       zl_dtype src_type, int lds, int rows, int cols)
{
    size_t total = (size_t)rows * cols;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        size_t r = idx / cols, col = idx % cols;
        float x = load_as_f32(src, src_type, r * lds + col);
        if (dst_type == ZL_BF16)
            ((__nv_bfloat16 *)dst)[r * ldd + col] = __float2bfloat16_rn(x);
        else
            ((__half *)dst)[r * ldd + col] = __float2half_rn(x);
    }
}

static void to_16bit(zl_cuda_ctx *ctx, void *dst, zl_dtype dst_type, int ldd, const void *src,
                     zl_dtype src_type, int lds, int rows, int cols)
{
    int block = 256;
    to_16bit_kernel<<<grid_for(ctx, (size_t)rows * cols, block), block, 0, ctx->compute>>>(
        dst, dst_type, ldd, src, src_type, lds, rows, cols);
    ZL_CUDA_CHECK(ctx, cudaGetLastError());
}

/* Element offset of row r, column col of a row-major matrix with leading dimension ld,
 * in bytes for elements of `type`. */
static const char *at(const void *x, zl_dtype type, int ld, int r, int col)
{
    size_t esize = type == ZL_F32 ? 4 : 2; /* f32, or bf16 / f16 */
    return (const char *)x + ((size_t)r * ld + col) * esize;
}

void zl_cuda_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                     zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                     bool trans_b, float alpha, float beta)
{
    zl_cuda_ctx *ctx = zl_cuda_ctx_of(self);
    if (t != ZL_BF16 && t != ZL_F16) {
        /* t = f32 is plain gemm (ops.h); B is f32 then. */
        if (b_type != ZL_F32) {
            zl__cuda_fail(ctx, "zl_cuda_gemm_lp", "t = f32 with a 16-bit B (b_type must be f32)");
            return;
        }
        zl_cuda_gemm(self, c, a, (const float *)b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha,
                     beta);
        return;
    }
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_window(ctx, c, m, n, ldc, beta);
        return;
    }

    size_t avail = 0;
    char *ws = (char *)zl_cuda_scratch(ctx, &avail);
    size_t esize = 2; /* bf16 and f16 */
    bool convert_b = b_type != t;

    /* Block sizes: rows of op(A) (bm) and columns of op(B) (bn), each a full k deep. The
     * whole product in one call when both copies fit; otherwise B's copy (when there is
     * one) gets half the scratch, A's the rest. */
    size_t row_bytes = align_up((size_t)k * esize); /* one row of op(A) / column of op(B) */
    int bm = m, bn = n;
    size_t need = align_up((size_t)m * k * esize) + (convert_b ? align_up((size_t)n * k * esize) : 0);
    if (need > avail) {
        size_t for_b = convert_b ? avail / 2 : 0;
        size_t for_a = avail - for_b;
        size_t rows_a = for_a / row_bytes, cols_b = convert_b ? for_b / row_bytes : (size_t)n;
        bm = rows_a < (size_t)m ? (int)rows_a : m;
        bn = cols_b < (size_t)n ? (int)cols_b : n;
        if (bm == 0 || bn == 0) {
            zl__cuda_fail(ctx, "zl_cuda_gemm_lp",
                          "workspace too small for one row of a 16-bit operand (reserve more "
                          "than ZL_CUDA_BLAS_WORKSPACE_BYTES at setup)");
            return;
        }
    }
    void *a16 = ws;
    void *b16 = ws + align_up((size_t)bm * k * esize);
    cudaDataType_t ct = cuda_type_of(t);

    for (int j0 = 0; j0 < n; j0 += bn) {
        int nb = n - j0 < bn ? n - j0 : bn;
        /* op(B)'s columns [j0, j0+nb): B stored (k,n) -> its columns; (n,k) -> its rows */
        const void *bblk;
        int ldb_blk;
        if (convert_b) {
            if (trans_b) { /* B (n,k): rows j0.. -> packed (nb, k) */
                to_16bit(ctx, b16, t, k, at(b, b_type, ldb, j0, 0), b_type, ldb, nb, k);
                ldb_blk = k;
            } else { /* B (k,n): columns j0.. -> packed (k, nb) */
                to_16bit(ctx, b16, t, nb, at(b, b_type, ldb, 0, j0), b_type, ldb, k, nb);
                ldb_blk = nb;
            }
            bblk = b16;
        } else {
            bblk = trans_b ? at(b, b_type, ldb, j0, 0) : at(b, b_type, ldb, 0, j0);
            ldb_blk = ldb;
        }
        for (int i0 = 0; i0 < m; i0 += bm) {
            int mb = m - i0 < bm ? m - i0 : bm;
            /* op(A)'s rows [i0, i0+mb): A stored (m,k) -> its rows; (k,m) -> its columns */
            int lda_blk;
            if (trans_a) { /* A (k,m): columns i0.. -> packed (k, mb) */
                to_16bit(ctx, a16, t, mb, at(a, ZL_F32, lda, 0, i0), ZL_F32, lda, k, mb);
                lda_blk = mb;
            } else { /* A (m,k): rows i0.. -> packed (mb, k) */
                to_16bit(ctx, a16, t, k, at(a, ZL_F32, lda, i0, 0), ZL_F32, lda, mb, k);
                lda_blk = k;
            }
            float *cblk = c + (size_t)i0 * ldc + j0;
            /* the swap, as in zl_cuda_gemm; 16-bit inputs, f32 accumulation and output */
            ZL_CUBLAS_CHECK(ctx, cublasGemmEx(ctx->cublas, op_of(trans_b), op_of(trans_a), nb, mb,
                                              k, &alpha, bblk, ct, ldb_blk, a16, ct, lda_blk,
                                              &beta, cblk, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                                              CUBLAS_GEMM_DEFAULT));
        }
    }
}
