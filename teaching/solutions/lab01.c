/* Lab 01's reference solution: where the memory goes. */
#include "lab.h"
#include "../lab01-memory/student.h"

int count_params(const mem_setup *s, size_t *numel)
{
    size_t V = (size_t)s->vocab_size, P = (size_t)s->max_seq_len, C = (size_t)s->channels;
    size_t L = (size_t)s->num_layers;
    size_t embed = V * C + P * C; /* wte (also the output layer: tied) + wpe */
    size_t block = 2 * C             /* ln_1 weight, bias */
                   + 3 * C * C + 3 * C /* c_attn: Q, K, V */
                   + C * C + C         /* attn c_proj */
                   + 2 * C             /* ln_2 */
                   + 4 * C * C + 4 * C /* mlp c_fc */
                   + 4 * C * C + C;    /* mlp c_proj */
    size_t head = 2 * C;               /* ln_f */
    *numel = embed + L * block + head; /* = VC + PC + L(12C^2 + 13C) + 2C */
    return 0;
}

int predict_activations(const mem_setup *s, size_t *nbytes)
{
    size_t N = (size_t)s->micro_batch * s->seq_len, C = (size_t)s->channels;
    size_t V = (size_t)s->vocab_size, H = (size_t)s->num_heads, T = (size_t)s->seq_len;
    size_t B = (size_t)s->micro_batch, L = (size_t)s->num_layers;
    size_t d = s->mixed ? 2 : 4; /* the training dtype */
    size_t f32 = 4;              /* statistics */
    /* embed: its output (N,C) */
    size_t embed = N * C * d;
    /* block: ln1, r2, ln2, out (N,C) each; qkv (N,3C); atty (N,C); fch, fch_gelu (N,4C);
     * the attention probabilities (B,NH,T,T); LayerNorm mean and rstd twice (4N, fp32) */
    size_t block = (16 * N * C + B * H * T * T) * d + 4 * N * f32;
    /* head: lnf (N,C), the softmax probabilities (N,V); lnf mean, rstd and the losses (3N) */
    size_t head = (N * C + N * V) * d + 3 * N * f32;
    *nbytes = embed + L * block + head;
    return 0;
}

int predict_memory(const mem_setup *s, mem_bytes *out)
{
    size_t psi;
    int rc = count_params(s, &psi);
    if (rc != 0) return rc;
    size_t d = s->mixed ? 2 : 4;
    out->params = d * psi;
    out->grads = d * psi;
    out->master = s->mixed ? 4 * psi : 0; /* fp32 training updates the weights themselves */
    out->adam_m = 4 * psi;
    out->adam_v = 4 * psi;
    if ((rc = predict_activations(s, &out->activations)) != 0) return rc;
    out->total = out->params + out->grads + out->master + out->adam_m + out->adam_v +
                 out->activations;
    return 0;
}

int find_oom_threshold(fits_fn fits, void *ctx, int b_max, int *b_largest)
{
    int r = fits(ctx, 1);
    if (r < 0) return r;
    if (r == 0) {
        *b_largest = 0;
        return 0;
    }
    /* Doubling: lo fits; hi is the first power of two that does not (or b_max + 1). */
    int lo = 1, hi = b_max + 1;
    while (lo < b_max) {
        int b = lo * 2 > b_max ? b_max : lo * 2;
        if ((r = fits(ctx, b)) < 0) return r;
        if (r == 0) {
            hi = b;
            break;
        }
        lo = b;
    }
    /* Bisection on [lo, hi): lo fits, hi does not. */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if ((r = fits(ctx, mid)) < 0) return r;
        if (r == 1)
            lo = mid;
        else
            hi = mid;
    }
    *b_largest = lo;
    return 0;
}
