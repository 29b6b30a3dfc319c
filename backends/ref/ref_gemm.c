/* Dense algebra: general matrix multiply and the bias of a linear layer.
 *
 *   C (m,n) = alpha * op(A) (m,k) @ op(B) (k,n) + beta * C
 *
 * Row-major with leading dimensions: element (i,j) of a matrix X with leading dimension ldx
 * is x[i*ldx + j]. op(A) = A, stored (m,k), or A^T with A stored (k,m) when trans_a;
 * likewise op(B) = B stored (k,n), or B^T with B stored (n,k) when trans_b. Only the m x n
 * window of C is written; the columns past n in each row of C (padding up to ldc) are not
 * touched. beta == 0 means "overwrite": C is not read, so garbage or NaN in C is ignored
 * (BLAS semantics, and what a freshly allocated output needs).
 *
 * A linear layer out (N,OC) = inp (N,C) @ W^T + bias, with W stored (OC,C) as in PyTorch and
 * llm.c, is gemm(out, inp, W, N, OC, C, C, C, OC, false, true, 1, 0) followed by
 * bias_forward; its backward is
 *   dinp (N,C)  += dout (N,OC) @ W (OC,C)      gemm(..., false, false, 1, 1)
 *   dW   (OC,C) += dout^T (OC,N) @ inp (N,C)   gemm(..., true,  false, 1, 1)
 *   dbias (OC)  += column sums of dout         bias_backward */
#include "backends/ref/ref.h"

/* Element p of B, stored as b_type (f32, or the 16-bit values themselves), widened. */
static float load_b(const void *b, zl_dtype b_type, size_t i)
{
    switch (b_type) {
    case ZL_BF16: return zl_bf16_to_f32(((const uint16_t *)b)[i]);
    case ZL_F16: return zl_f16_to_f32(((const uint16_t *)b)[i]);
    default: return ((const float *)b)[i];
    }
}

static void gemm(float *c, const float *a, const void *b, zl_dtype b_type, int m, int n, int k,
                 int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float sum = 0.0f;
            for (int p = 0; p < k; p++) {
                float a_ip = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                size_t bi = trans_b ? (size_t)j * ldb + p : (size_t)p * ldb + j;
                float b_pj = load_b(b, b_type, bi);
                sum += a_ip * b_pj;
            }
            float *c_ij = &c[(size_t)i * ldc + j];
            /* beta == 0 must not read C: 0 * NaN would be NaN. */
            *c_ij = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c_ij;
        }
    }
}

void zl__ref_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                  int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    gemm(c, a, b, ZL_F32, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
}

/* The operands are already exact in t, so the plain product is the reference, with a
 * 16-bit B widened element by element as it is read. */
void zl__ref_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                     zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                     bool trans_b, float alpha, float beta)
{
    (void)t;
    gemm(c, a, b, b_type, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
}

void zl__ref_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) out[(size_t)i * OC + o] += bias[o];
}

void zl__ref_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    for (int o = 0; o < OC; o++) {
        float sum = 0.0f;
        for (int i = 0; i < N; i++) sum += dout[(size_t)i * OC + o];
        dbias[o] += sum;
    }
}
