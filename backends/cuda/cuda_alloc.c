#include "backends/cuda/cuda_alloc.h"
#include "backends/cuda/cuda.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

bool zl_cuda_alloc_init(zl_cuda_alloc *a, size_t capacity)
{
    memset(a, 0, sizeof *a);
    a->capacity = capacity / ZL_CUDA_ALIGN * ZL_CUDA_ALIGN;
    a->cap = 64;
    a->blocks = malloc(a->cap * sizeof *a->blocks);
    if (!a->blocks) return false;
    /* One free block covers the arena; an empty arena has no block. */
    if (a->capacity) a->blocks[a->nblocks++] = (zl_cuda_block){0, a->capacity, false};
    return true;
}

void zl_cuda_alloc_destroy(zl_cuda_alloc *a)
{
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

size_t zl_cuda_alloc_take(zl_cuda_alloc *a, size_t nbytes)
{
    if (nbytes == 0) nbytes = 1;
    if (nbytes > a->capacity) return ZL_CUDA_NO_BLOCK;
    size_t need = (nbytes + ZL_CUDA_ALIGN - 1) / ZL_CUDA_ALIGN * ZL_CUDA_ALIGN;
    /* Best fit: a linear scan. A training run holds thousands of tensors at most, and
     * allocations happen per layer, not per element: the scan costs microseconds. */
    size_t best = ZL_CUDA_NO_BLOCK;
    for (size_t i = 0; i < a->nblocks; i++) {
        const zl_cuda_block *b = &a->blocks[i];
        if (!b->used && b->size >= need && (best == ZL_CUDA_NO_BLOCK || b->size < a->blocks[best].size))
            best = i;
    }
    if (best == ZL_CUDA_NO_BLOCK) return ZL_CUDA_NO_BLOCK;
    zl_cuda_block *b = &a->blocks[best];
    if (b->size > need) { /* split: the rest stays free, right after the block */
        if (a->nblocks == a->cap) {
            zl_cuda_block *grown = realloc(a->blocks, 2 * a->cap * sizeof *grown);
            if (!grown) return ZL_CUDA_NO_BLOCK;
            a->blocks = grown;
            a->cap *= 2;
            b = &a->blocks[best];
        }
        memmove(b + 2, b + 1, (a->nblocks - best - 1) * sizeof *b);
        b[1] = (zl_cuda_block){b->offset + need, b->size - need, false};
        b->size = need;
        a->nblocks++;
    }
    b->used = true;
    a->used_nbytes += b->size;
    if (a->used_nbytes > a->peak_nbytes) a->peak_nbytes = a->used_nbytes;
    a->live++;
    return b->offset;
}

/* The index of the block starting at offset, or nblocks. */
static size_t find(const zl_cuda_alloc *a, size_t offset)
{
    size_t lo = 0, hi = a->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->blocks[mid].offset < offset) lo = mid + 1;
        else hi = mid;
    }
    return lo < a->nblocks && a->blocks[lo].offset == offset ? lo : a->nblocks;
}

bool zl_cuda_alloc_give(zl_cuda_alloc *a, size_t offset, size_t *nbytes)
{
    size_t i = find(a, offset);
    if (i == a->nblocks || !a->blocks[i].used) return false;
    zl_cuda_block *b = a->blocks;
    if (nbytes) *nbytes = b[i].size;
    a->used_nbytes -= b[i].size;
    a->live--;
    b[i].used = false;
    /* Coalesce: with the next block, then the previous one absorbs this. */
    if (i + 1 < a->nblocks && !b[i + 1].used) {
        b[i].size += b[i + 1].size;
        memmove(&b[i + 1], &b[i + 2], (a->nblocks - i - 2) * sizeof *b);
        a->nblocks--;
    }
    if (i > 0 && !b[i - 1].used) {
        b[i - 1].size += b[i].size;
        memmove(&b[i], &b[i + 1], (a->nblocks - i - 1) * sizeof *b);
        a->nblocks--;
    }
    return true;
}

size_t zl_cuda_alloc_largest_free(const zl_cuda_alloc *a)
{
    size_t best = 0;
    for (size_t i = 0; i < a->nblocks; i++)
        if (!a->blocks[i].used && a->blocks[i].size > best) best = a->blocks[i].size;
    return best;
}

/* ---- cuda.h: the device's pick and the budget, plain C so that every build tests them ---- */

int zl_cuda_local_rank(void)
{
    static const char *vars[] = {"MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long r = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && r >= 0 && r < 1 << 20) return (int)r;
    }
    return 0;
}

size_t zl_cuda_budget(size_t asked, size_t card_free, int *short_of)
{
    size_t usable = card_free > ZL_CUDA_RESERVE_BYTES ? card_free - ZL_CUDA_RESERVE_BYTES : 0;
    *short_of = asked > usable;
    return asked && asked < usable ? asked : usable;
}

zl_status zl__cuda_arena_budget(int device, size_t asked, size_t card_free, size_t *budget)
{
    int short_of = 0;
    char b1[32], b2[32], b3[32], b4[32];
    *budget = zl_cuda_budget(asked, card_free, &short_of);
    /* Refused only when the card is what is short: a small budget asked of a card that has
     * it (a test's tight ledger) is that budget, not "too little free". */
    if (*budget < ((size_t)1 << 20) && (!asked || short_of))
        return zl_errorf(ZL_ERR_OOM, "GPU %d has %s free, too little to train on (%s is kept "
                         "for NCCL and cuBLAS)\n  hint: free the GPU (nvidia-smi lists the "
                         "processes holding it)", device, zl_format_bytes(b1, sizeof b1, card_free),
                         zl_format_bytes(b2, sizeof b2, ZL_CUDA_RESERVE_BYTES));
    if (asked && short_of)
        zl_log_warn("GPU %d has %s free (%s of it kept for NCCL and cuBLAS): the budget is %s, "
                    "less than the %s asked", device, zl_format_bytes(b1, sizeof b1, card_free),
                    zl_format_bytes(b2, sizeof b2, ZL_CUDA_RESERVE_BYTES),
                    zl_format_bytes(b3, sizeof b3, *budget), zl_format_bytes(b4, sizeof b4, asked));
    return ZL_OK;
}
