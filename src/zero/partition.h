/* How ZeRO cuts the flat parameter vector across data-parallel ranks (stages 1 and 2).
 *
 * As DeepSpeed's stage_1_and_2.py does: the flat vector of numel elements is padded to a
 * multiple of 2 x dp_size (the 2 keeps every partition 4-byte aligned in 16-bit types,
 * which NCCL wants) and split into dp_size equal, contiguous partitions. Partition
 * boundaries cut through parameters; rank r owns [r*P, (r+1)*P) with P = padded / dp_size.
 * The padding sits at the end of the last partition and is never a parameter. */
#ifndef ZL_ZERO_PARTITION_H
#define ZL_ZERO_PARTITION_H

#include <stddef.h>

typedef struct zl_partition {
    int dp_size, dp_rank;
    size_t numel;           /* Psi: real elements */
    size_t padded_numel;    /* multiple of 2 * dp_size */
    size_t partition_numel; /* P = padded_numel / dp_size */
    size_t begin, end;      /* this rank's partition [begin, end), in flat coordinates */
} zl_partition;

void zl_partition_init(zl_partition *p, size_t numel, int dp_size, int dp_rank);

/* The real (non-padding) elements of this rank's partition: [begin, min(end, numel)). */
static inline size_t zl_partition_real_numel(const zl_partition *p)
{
    return p->begin >= p->numel ? 0 : (p->end < p->numel ? p->end : p->numel) - p->begin;
}

#endif
