/* Causal multi-head self-attention on the fused q|k|v projection; the per-element formulas
 * are in backends/ref/ref_attention.c. Here every product is an sgemm on strided views of
 * qkv (B,T,3C): for batch b and head h, Q, K and V are (T,HS) matrices with leading
 * dimension 3C, and the head's slice of out or dout is (T,HS) with leading dimension C.
 *
 *   forward    P = scale Q K^T;  att = causal softmax(P);  out_h = att V
 *   backward   dA = dout_h V^T;  dV += att^T dout_h;  dP = att * (dA - rowsum(att * dA));
 *              dQ += scale dP K;  dK += scale dP^T Q
 *
 * Causality: att and dP are zero above the diagonal, so the rows are cut into blocks of
 * ROW_BLOCK and each block multiplies only the keys it can see (columns < the block's
 * end). That skips about a third of the flops at T = 128 (up to half for longer T) while
 * the sgemms stay large enough to run near peak.
 *
 * Threads: (b, h) pairs are independent and write disjoint parts of out and dqkv, so
 * they are spread over the OpenMP team, each calling sgemm single-threaded; with fewer
 * pairs than threads the loop runs serially and sgemm threads itself instead. Measured on
 * 2 threads (B = 4..8, T = 128, NH = 4..12, HS = 64): (b, h) pairs over threads run forward
 * plus backward 2.0-2.6x faster than a serial loop of threaded sgemms, which are too small
 * to split. */
#include <cblas.h>
#include <math.h>

#include "backends/cpu/cpu.h"

/* 32 measured best for T = 128, HS = 64 (16 and 48 within 5%, 64 8% slower, one block of
 * T 40% slower) */
#define ROW_BLOCK 32
/* below this many multiply-adds in total, threads cost more than they save */
#define PAR_MIN_MACS 2000000.0

/* rows [i0, i0 + rows) of att (T,T): in place, pre-attention scores -> probabilities,
 * zero above the diagonal (the columns up to T). */
ZL_CPU_VECTOR static void softmax_rows(float *att, int i0, int rows, int T)
{
    for (int i = i0; i < i0 + rows; i++) {
        float *a = att + (size_t)i * T;
        float maxval = a[0];
#pragma omp simd reduction(max : maxval)
        for (int j = 0; j <= i; j++) maxval = a[j] > maxval ? a[j] : maxval;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j <= i; j++) {
            a[j] = zl__cpu_expf(a[j] - maxval);
            sum += a[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j <= i; j++) a[j] *= inv;
        for (int j = i + 1; j < T; j++) a[j] = 0.0f;
    }
}

/* rows [i0, i0 + rows): datt (T,T) in place -> dP = att * (dA - sum_j att * dA), zero above
 * the diagonal (the columns up to T). */
ZL_CPU_VECTOR static void softmax_backward_rows(float *datt, const float *att, int i0, int rows,
                                                int T)
{
    for (int i = i0; i < i0 + rows; i++) {
        const float *a = att + (size_t)i * T;
        float *d = datt + (size_t)i * T;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j <= i; j++) dot += a[j] * d[j];
#pragma omp simd
        for (int j = 0; j <= i; j++) d[j] = a[j] * (d[j] - dot);
        for (int j = i + 1; j < T; j++) d[j] = 0.0f;
    }
}

static void head_forward(float *out, float *att, const float *q, const float *k, const float *v,
                         int T, int C, int HS, float scale)
{
    int C3 = 3 * C;
    for (int i0 = 0; i0 < T; i0 += ROW_BLOCK) {
        int rows = T - i0 < ROW_BLOCK ? T - i0 : ROW_BLOCK, seen = i0 + rows;
        /* att[i0.., :seen] = scale * Q[i0..] K[:seen]^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, seen, HS, scale,
                    q + (size_t)i0 * C3, C3, k, C3, 0.0f, att + (size_t)i0 * T, T);
        softmax_rows(att, i0, rows, T);
        /* out[i0..] = att[i0.., :seen] V[:seen] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, seen, 1.0f,
                    att + (size_t)i0 * T, T, v, C3, 0.0f, out + (size_t)i0 * C, C);
    }
}

static void head_backward(float *dq, float *dk, float *dv, float *datt, const float *dout,
                          const float *q, const float *k, const float *v, const float *att, int T,
                          int C, int HS, float scale)
{
    int C3 = 3 * C;
    for (int i0 = 0; i0 < T; i0 += ROW_BLOCK) {
        int rows = T - i0 < ROW_BLOCK ? T - i0 : ROW_BLOCK, seen = i0 + rows;
        /* dA[i0.., :seen] = dout[i0..] V[:seen]^T, then through the softmax */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, seen, HS, 1.0f,
                    dout + (size_t)i0 * C, C, v, C3, 0.0f, datt + (size_t)i0 * T, T);
        softmax_backward_rows(datt, att, i0, rows, T);
        /* dQ[i0..] += scale * dP[i0.., :seen] K[:seen] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, seen, scale,
                    datt + (size_t)i0 * T, T, k, C3, 1.0f, dq + (size_t)i0 * C3, C3);
    }
    /* Keys j0.. are seen by queries j0..T-1 only: the transposed products start there. */
    for (int j0 = 0; j0 < T; j0 += ROW_BLOCK) {
        int cols = T - j0 < ROW_BLOCK ? T - j0 : ROW_BLOCK, seers = T - j0;
        const float *a = att + (size_t)j0 * T + j0, *p = datt + (size_t)j0 * T + j0;
        /* dV[j0..] += att[j0:, j0..]^T dout[j0:] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, HS, seers, 1.0f, a, T,
                    dout + (size_t)j0 * C, C, 1.0f, dv + (size_t)j0 * C3, C3);
        /* dK[j0..] += scale * dP[j0:, j0..]^T Q[j0:] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, HS, seers, scale, p, T,
                    q + (size_t)j0 * C3, C3, 1.0f, dk + (size_t)j0 * C3, C3);
    }
}

/* Spread (b, h) pairs over threads only when there are enough of them and enough work. */
static bool per_head_threads(int B, int NH, int T, int HS)
{
    double macs = (double)B * NH * T * T * HS;
    return B * NH >= omp_get_max_threads() && macs >= PAR_MIN_MACS;
}

void zl__cpu_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                               int T, int C, int NH)
{
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(static) if (per_head_threads(B, NH, T, HS))
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + h * HS;
        head_forward(out + (size_t)b * T * C + h * HS, att + (size_t)bh * T * T, q, q + C,
                     q + 2 * C, T, C, HS, scale);
    }
}

void zl__cpu_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                const float *qkv, const float *att, int B, int T, int C, int NH)
{
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    /* dA, then dP in place, for pair bh at scratch + bh*T*T: half the scratch ops.h grants */
#pragma omp parallel for schedule(static) if (per_head_threads(B, NH, T, HS))
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t off = (size_t)b * T * C3 + h * HS;
        float *dq = dqkv + off;
        const float *q = qkv + off;
        head_backward(dq, dq + C, dq + 2 * C, scratch + (size_t)bh * T * T,
                      dout + (size_t)b * T * C + h * HS, q, q + C, q + 2 * C,
                      att + (size_t)bh * T * T, T, C, HS, scale);
    }
}
