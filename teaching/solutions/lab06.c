/* Lab 06, reference solution: ZeRO stage 1 on flat buffers. */
#include "lab.h"
#include "../lab06-zero1/student.h"

int zero1_partition(size_t numel, int N, int r, size_t *padded, size_t *begin, size_t *end)
{
    size_t align = 2 * (size_t)N;            /* 2 elements per rank: 4-byte aligned in 16 bits */
    *padded = (numel + align - 1) / align * align;
    size_t shard = *padded / (size_t)N;
    *begin = (size_t)r * shard;
    *end = *begin + shard;
    return 0;
}

int zero1_owned_ranges(const zl_param_range *in, int n, size_t begin, size_t end,
                       zl_param_range *out, int *nout)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        size_t lo = in[i].offset, hi = in[i].offset + in[i].numel;
        if (lo < begin) lo = begin;
        if (hi > end) hi = end;
        if (lo >= hi) continue; /* not in this shard */
        out[k].offset = lo - begin;
        out[k].numel = hi - lo;
        out[k].decay = in[i].decay;
        k++;
    }
    *nout = k;
    return 0;
}

int zero1_state_bytes(size_t numel, int N, size_t *bytes)
{
    size_t padded, begin, end;
    zero1_partition(numel, N, 0, &padded, &begin, &end);
    /* fp32 master (4) + Adam m (4) + Adam v (4) per element of the shard */
    *bytes = 12 * (end - begin);
    return 0;
}

int zero1_step(const zero1_state *s, float *params, float *grads)
{
    size_t shard = s->end - s->begin;
    /* 1. only my shard's sum is needed: reduce-scatter, (N-1)/N of the bytes per rank
     *    instead of the allreduce's 2(N-1)/N; in place in my slot of grads */
    if (zl_comm_reduce_scatter(s->c, grads + s->begin, grads, shard, ZL_F32, ZL_REDUCE_SUM) != ZL_OK)
        return -1;
    /* 2. AdamW on my shard; the 1/N turns the sum into the mean */
    zl_adamw_step(s->adam, params + s->begin, grads + s->begin, s->ranges, s->nranges, s->lr,
                  s->beta1, 1.0f / (float)s->c->size);
    /* 3. everybody's updated shard to everybody (the other (N-1)/N of the traffic) */
    if (zl_comm_allgather(s->c, params, params + s->begin, shard, ZL_F32) != ZL_OK) return -1;
    return 0;
}
