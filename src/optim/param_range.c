/* Parameter ranges clipped to a shard. */
#include "optim/param_range.h"

#include "base/log.h"

int zl_param_ranges_clip(zl_param_range *out, const zl_param_range *in, int n, size_t begin,
                         size_t end)
{
    ZL_ASSERT(begin <= end);
    int k = 0;
    for (int i = 0; i < n; i++) {
        size_t lo = in[i].offset, hi = in[i].offset + in[i].numel;
        if (lo < begin) lo = begin;
        if (hi > end) hi = end;
        if (lo >= hi) continue;
        out[k++] = (zl_param_range){.offset = lo - begin, .numel = hi - lo, .decay = in[i].decay};
    }
    return k;
}
