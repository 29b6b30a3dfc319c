/* The ref backend's op table. Kernels live in the other files of this directory. */
#include <stdlib.h>
#include <string.h>

#include "backends/ops.h"
#include "backends/ref/ref.h"

static void *ref_alloc(const zl_ops *self, size_t nbytes)
{
    /* 64-byte alignment: a cache line, and what AVX-512 loads like. */
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

static void ref_free(const zl_ops *self, void *p) { free(p); }
static void ref_zero(const zl_ops *self, void *p, size_t nbytes) { memset(p, 0, nbytes); }
static void ref_copy(const zl_ops *self, void *dst, const void *src, size_t nbytes)
{
    memmove(dst, src, nbytes);
}
/* The ref device's memory is the process's: a transfer is a memcpy. */
void zl__ref_transfer(const zl_ops *self, void *dst, const void *src, size_t nbytes)
{
    if (nbytes) memcpy(dst, src, nbytes);
}

const zl_ops zl_ops_ref = {
    .name = "ref",
    .alloc = ref_alloc,
    .free = ref_free,
    .zero = ref_zero,
    .copy = ref_copy,
    .to_host = zl__ref_transfer,
    .to_device = zl__ref_transfer,

    .gemm = zl__ref_gemm,
    .gemm_lp = zl__ref_gemm_lp,
    .bias_forward = zl__ref_bias_forward,
    .bias_backward = zl__ref_bias_backward,

    .embedding_forward = zl__ref_embedding_forward,
    .embedding_backward = zl__ref_embedding_backward,
    .layernorm_forward = zl__ref_layernorm_forward,
    .layernorm_backward = zl__ref_layernorm_backward,
    .attention_forward = zl__ref_attention_forward,
    .attention_backward = zl__ref_attention_backward,
    .gelu_forward = zl__ref_gelu_forward,
    .gelu_backward = zl__ref_gelu_backward,
    .residual_forward = zl__ref_residual_forward,
    .crossentropy_forward = zl__ref_crossentropy_forward,
    .crossentropy_backward = zl__ref_crossentropy_backward,
    .embedding_shard_forward = zl__ref_embedding_shard_forward,
    .embedding_shard_backward = zl__ref_embedding_shard_backward,
    .crossentropy_shard_max = zl__ref_crossentropy_shard_max,
    .crossentropy_shard_exp = zl__ref_crossentropy_shard_exp,
    .crossentropy_shard_loss = zl__ref_crossentropy_shard_loss,
    .crossentropy_shard_backward = zl__ref_crossentropy_shard_backward,

    .adamw = zl__ref_adamw,
    .sumsq = zl__ref_sumsq,
    .nonfinite = zl__ref_nonfinite,
    .scale = zl__ref_scale,
    .axpy = zl__ref_axpy,
    .round = zl__ref_round,
    .drain = zl__ref_drain,
    .cast = zl__ref_cast,
};
