/* Token and position embeddings: out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:].
 *
 * Backward is a scatter, and a token may occur many times in a batch, so rows of dwte
 * cannot be given to threads. Channels can: each thread owns a slice of the C columns of
 * dwte and of dwpe and walks all (b,t) in order, so there are no write conflicts and every
 * element is summed in the same order as the serial loop. */
#include "backends/cpu/cpu.h"

ZL_CPU_VECTOR static void add2_row(float *out, const float *x, const float *y, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++) out[i] = x[i] + y[i];
}

void zl__cpu_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                               const float *wte, const float *wpe, int B, int T, int C)
{
    int N = B * T;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= ZL_CPU_PAR_MIN)
    for (int bt = 0; bt < N; bt++)
        add2_row(out + (size_t)bt * C, wte + (size_t)tokens[bt] * C, wpe + (size_t)(bt % T) * C,
                 C);
}

/* columns [c0, c1) of dwte and dwpe, all (b, t) */
ZL_CPU_VECTOR static void scatter_cols(float *dwte, float *dwpe, const float *dout,
                                       const int32_t *tokens, int B, int T, int C, int c0,
                                       int c1)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *we = dwte + (size_t)tokens[b * T + t] * C;
            float *wp = dwpe + (size_t)t * C;
#pragma omp simd
            for (int i = c0; i < c1; i++) {
                we[i] += d[i];
                wp[i] += d[i];
            }
        }
    }
}

void zl__cpu_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                const int32_t *tokens, int B, int T, int C)
{
#pragma omp parallel if ((size_t)B * T * C >= ZL_CPU_PAR_MIN)
    {
        int c0, c1;
        zl__cpu_thread_cols(C, &c0, &c1);
        if (c0 < c1) scatter_cols(dwte, dwpe, dout, tokens, B, T, C, c0, c1);
    }
}
