/* Lab 03's reference solution: micro-batches and recomputation. */
#include "lab.h"
#include "../lab03-accumulation/student.h"

/* Python's // (the operands here are positive, but DeepSpeed's rule is floor division) */
static long floordiv(long a, long b)
{
    long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int batch_triad(long tb, long mb, long gas, int world, long out[3])
{
    long w = world;
    if (tb && mb && gas) {
        /* all three given: only checked */
    } else if (tb && mb) {
        gas = floordiv(floordiv(tb, mb), w);
    } else if (tb && gas) {
        mb = floordiv(floordiv(tb, w), gas);
    } else if (mb && gas) {
        tb = mb * gas * w;
    } else if (tb) {
        gas = 1;
        mb = floordiv(tb, w);
    } else if (mb) {
        gas = 1;
        tb = mb * w;
    } else {
        return 1; /* neither train_batch_size nor the micro batch */
    }
    if (tb < 1 || mb < 1 || gas < 1) return 1;
    if (tb != mb * gas * w) return 1;
    out[0] = tb, out[1] = mb, out[2] = gas;
    return 0;
}

int predict_activation_bytes(const act_model *m, int micro, int gas, int interval, size_t *nbytes)
{
    (void)gas; /* micro-batches run one after another: one micro-batch's activations live */
    size_t b = (size_t)micro;
    if (interval <= 0) {
        size_t all = 0;
        for (int l = 0; l < m->num_layers; l++) all += m->layer_bytes[l];
        *nbytes = b * all;
        return 0;
    }
    size_t largest = 0, inputs = 0;
    for (int begin = 0; begin < m->num_layers; begin += interval) {
        size_t seg = 0;
        for (int l = begin; l < begin + interval && l < m->num_layers; l++) seg += m->layer_bytes[l];
        if (seg > largest) largest = seg;
        if (begin > 0) inputs += m->stream_bytes; /* the first segment's input is the tokens */
    }
    *nbytes = b * (largest + inputs);
    return 0;
}

int predict_recompute_flops(const flop_model *m, int micro, int gas, int interval, double *flops)
{
    if (interval <= 0) {
        *flops = 0;
        return 0;
    }
    double B = micro, T = m->seq_len, C = m->channels, V = m->vocab_size, N = B * T;
    /* per block: the four projections (QKV 3C^2, attention out C^2, MLP 4C^2 + 4C^2 = 12 C^2
     * multiply-adds a token: 24 N C^2 FLOPs) and attention's two T x T products (4 B T^2 C);
     * the head's logits 2 N C V; the embedding is a lookup */
    double forward = m->num_layers * (24 * N * C * C + 4 * B * T * T * C) + 2 * N * C * V;
    *flops = gas * forward;
    return 0;
}
