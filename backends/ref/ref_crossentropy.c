/* Fused softmax + cross-entropy over the vocabulary.
 *
 * Per row n of logits (N,V), with target y = targets[n]:
 *   probs[n,:] = softmax(logits[n,:])                  (N,V), written for every row
 *   losses[n]  = -log probs[n,y]                       (N); 0 when y < 0 (ignored)
 * computed as log(sum_j exp(l_j - max)) + max - l_y, which equals -log(probs[n,y]) but stays
 * finite when probs[n,y] underflows to 0.
 *
 * Backward for an objective sum_n dloss * losses[n] (dloss e.g. 1/N for a mean):
 *   dlogits[n,j] += dloss * (probs[n,j] - [j == y])      rows with y >= 0 only
 * Ignored rows (y < 0, e.g. padding, torch's ignore_index) get no gradient at all. */
#include <math.h>

#include "backends/ref/ref.h"

void zl__ref_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                  const float *logits, const int32_t *targets, int N, int V)
{
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;

        float maxval = -INFINITY;
        for (int j = 0; j < V; j++)
            if (l[j] > maxval) maxval = l[j];
        float sum = 0.0f;
        for (int j = 0; j < V; j++) {
            p[j] = expf(l[j] - maxval);
            sum += p[j];
        }
        for (int j = 0; j < V; j++) p[j] /= sum;

        int y = targets[n];
        losses[n] = y < 0 ? 0.0f : logf(sum) + maxval - l[y];
    }
}

void zl__ref_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, float dloss, int N, int V)
{
    for (int n = 0; n < N; n++) {
        int y = targets[n];
        if (y < 0) continue;
        const float *p = probs + (size_t)n * V;
        float *dl = dlogits + (size_t)n * V;
        for (int j = 0; j < V; j++) {
            float indicator = j == y ? 1.0f : 0.0f;
            dl[j] += dloss * (p[j] - indicator);
        }
    }
}
