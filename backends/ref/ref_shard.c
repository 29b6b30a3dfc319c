/* Vocabulary-parallel embedding and cross-entropy (Megatron-LM's VocabParallelEmbedding
 * and vocab_parallel_cross_entropy): the ops a tensor-parallel rank runs on its rows
 * [v0, v1) of the vocabulary, between the sums over its group (backends/ops.h). Naive
 * loops: the readable specification, and what the cpu backend runs too (memory-bound, a
 * small share of a step next to the GEMMs). */
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"

void zl__ref_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                     const float *wte, int v0, int v1, const float *wpe, int B,
                                     int T, int C)
{
    (void)self;
    for (int bt = 0; bt < B * T; bt++) {
        float *o = out + (size_t)bt * C;
        int tok = tokens[bt];
        const float *w = tok >= v0 && tok < v1 ? wte + (size_t)(tok - v0) * C : NULL;
        const float *p = wpe ? wpe + (size_t)(bt % T) * C : NULL;
        for (int c = 0; c < C; c++) o[c] = (w ? w[c] : 0.0f) + (p ? p[c] : 0.0f);
    }
}

void zl__ref_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                      const float *dout, const int32_t *tokens, int v0, int v1,
                                      int B, int T, int C)
{
    (void)self;
    for (int bt = 0; bt < B * T; bt++) {
        const float *d = dout + (size_t)bt * C;
        int tok = tokens[bt];
        if (dwte && tok >= v0 && tok < v1)
            for (int c = 0; c < C; c++) dwte[(size_t)(tok - v0) * C + c] += d[c];
        if (dwpe)
            for (int c = 0; c < C; c++) dwpe[(size_t)(bt % T) * C + c] += d[c];
    }
}

void zl__ref_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N,
                                    int V)
{
    (void)self;
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float m = -INFINITY;
        for (int j = 0; j < V; j++)
            if (l[j] > m) m = l[j];
        rowmax[n] = m;
    }
}

void zl__ref_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum,
                                    const float *logits, const float *rowmax, int N, int V)
{
    (void)self;
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V, sum = 0.0f;
        for (int j = 0; j < V; j++) {
            p[j] = expf(l[j] - rowmax[n]);
            sum += p[j];
        }
        rowsum[n] = sum;
    }
}

void zl__ref_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs,
                                     const float *logits, const float *rowmax, const float *rowsum,
                                     const int32_t *targets, int v0, int N, int V)
{
    (void)self;
    for (int n = 0; n < N; n++) {
        float *p = probs + (size_t)n * V;
        for (int j = 0; j < V; j++) p[j] /= rowsum[n];
        int y = targets[n] - v0;
        losses[n] = targets[n] >= 0 && y >= 0 && y < V
                        ? logf(rowsum[n]) + rowmax[n] - logits[(size_t)n * V + y]
                        : 0.0f;
    }
}

void zl__ref_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                         const int32_t *targets, int v0, float dloss, int N, int V)
{
    (void)self;
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        int y = targets[n] - v0; /* this rank's column of the target, if any */
        const float *p = probs + (size_t)n * V;
        float *dl = dlogits + (size_t)n * V;
        for (int j = 0; j < V; j++) dl[j] += dloss * (p[j] - (j == y ? 1.0f : 0.0f));
    }
}
