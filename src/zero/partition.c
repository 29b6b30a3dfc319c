#include "zero/partition.h"

#include "base/log.h"

void zl_partition_init(zl_partition *p, size_t numel, int dp_size, int dp_rank)
{
    ZL_ASSERT(dp_size >= 1 && dp_rank >= 0 && dp_rank < dp_size);
    size_t align = 2 * (size_t)dp_size;
    p->dp_size = dp_size;
    p->dp_rank = dp_rank;
    p->numel = numel;
    p->padded_numel = (numel + align - 1) / align * align;
    p->partition_numel = p->padded_numel / (size_t)dp_size;
    p->begin = (size_t)dp_rank * p->partition_numel;
    p->end = p->begin + p->partition_numel;
}
