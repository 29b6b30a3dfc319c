/* Token and position embeddings (GPT-2: learned absolute positions).
 *
 *   out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]
 *
 * tokens (B,T) int32, wte (V,C), wpe (maxT,C) with maxT >= T, out (B,T,C). The caller has
 * checked 0 <= token < V. Backward scatters: a token that occurs several times collects
 * the sum of its rows of dout, and every position collects the sum over the batch. */
#include "backends/ref/ref.h"

void zl__ref_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                               const float *wte, const float *wpe, int B, int T, int C)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float *out_bt = out + ((size_t)b * T + t) * C;
            const float *wte_ix = wte + (size_t)tokens[b * T + t] * C;
            const float *wpe_t = wpe + (size_t)t * C;
            for (int i = 0; i < C; i++) out_bt[i] = wte_ix[i] + wpe_t[i];
        }
    }
}

void zl__ref_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                const int32_t *tokens, int B, int T, int C)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *dout_bt = dout + ((size_t)b * T + t) * C;
            float *dwte_ix = dwte + (size_t)tokens[b * T + t] * C;
            float *dwpe_t = dwpe + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                dwte_ix[i] += dout_bt[i];
                dwpe_t[i] += dout_bt[i];
            }
        }
    }
}
