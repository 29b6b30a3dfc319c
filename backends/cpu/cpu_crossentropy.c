/* Fused softmax + cross-entropy over the vocabulary; the formulas are in
 * backends/ref/ref_crossentropy.c.
 *
 * A GPT-2 row is V = 50257 logits (196 KiB): it is read from memory once and then stays in
 * L2 for the three passes over it (maximum; exp and sum, written into probs; scaling by
 * 1/sum). The loss comes from log(sum) rather than from the rounded probability, so it stays
 * finite when the target's probability underflows. Rows are spread over threads. */
#include <math.h>

#include "backends/cpu/cpu.h"

ZL_CPU_VECTOR static float softmax_row(float *p, const float *l, int V, float *maxval_out)
{
    float maxval = l[0];
#pragma omp simd reduction(max : maxval)
    for (int j = 0; j < V; j++) maxval = l[j] > maxval ? l[j] : maxval;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; j++) {
        p[j] = zl__cpu_expf(l[j] - maxval);
        sum += p[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < V; j++) p[j] *= inv;
    *maxval_out = maxval;
    return sum;
}

void zl__cpu_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                  const float *logits, const int32_t *targets, int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V >= ZL_CPU_PAR_MIN && N > 1)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float maxval;
        float sum = softmax_row(probs + (size_t)n * V, l, V, &maxval);
        int y = targets[n];
        losses[n] = y < 0 ? 0.0f : logf(sum) + maxval - l[y];
    }
}

ZL_CPU_VECTOR static void backward_row(float *dl, const float *p, float dloss, int V)
{
#pragma omp simd
    for (int j = 0; j < V; j++) dl[j] += dloss * p[j];
}

void zl__cpu_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, float dloss, int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V >= ZL_CPU_PAR_MIN && N > 1)
    for (int n = 0; n < N; n++) {
        int y = targets[n];
        if (y < 0) continue; /* ignored row: no gradient at all */
        float *dl = dlogits + (size_t)n * V;
        const float *p = probs + (size_t)n * V;
        /* The target element is redone from its old value so that it is rounded exactly
         * as dloss * (p - 1), not as dloss * p followed by - dloss. */
        float old = dl[y];
        backward_row(dl, p, dloss, V);
        dl[y] = old + dloss * (p[y] - 1.0f);
    }
}
