/* The ref backend's kernels: naive loops, one file per concept, gathered into zl_ops_ref by
 * ref.c. The semantics of every function are those of the matching field in backends/ops.h
 * (shapes, accumulation, ignored targets); this header only declares them. */
#ifndef ZL_BACKENDS_REF_REF_H
#define ZL_BACKENDS_REF_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ops.h"

/* ref_gemm.c */
/* host <-> device transfer of a backend whose memory is the process's (ref, cpu) */
void zl__ref_transfer(const zl_ops *self, void *dst, const void *src, size_t nbytes);
void zl__ref_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                  int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta);
void zl__ref_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC);
void zl__ref_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC);

/* ref_embedding.c */
void zl__ref_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                               const float *wte, const float *wpe, int B, int T, int C);
void zl__ref_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                const int32_t *tokens, int B, int T, int C);

/* ref_layernorm.c */
void zl__ref_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                               const float *inp, const float *weight, const float *bias, int N,
                               int C);
void zl__ref_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                const float *mean, const float *rstd, int N, int C);

/* ref_attention.c */
void zl__ref_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                               int T, int C, int NH);
void zl__ref_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                const float *qkv, const float *att, int B, int T, int C, int NH);

/* ref_gelu.c */
void zl__ref_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n);
void zl__ref_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                           size_t n);

/* ref_shard.c: vocabulary-parallel embedding and cross-entropy (ops.h) */
void zl__ref_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens,
                                     const float *wte, int v0, int v1, const float *wpe, int B,
                                     int T, int C);
void zl__ref_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe,
                                      const float *dout, const int32_t *tokens, int v0, int v1,
                                      int B, int T, int C);
void zl__ref_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N,
                                    int V);
void zl__ref_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum,
                                    const float *logits, const float *rowmax, int N, int V);
void zl__ref_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs,
                                     const float *logits, const float *rowmax, const float *rowsum,
                                     const int32_t *targets, int v0, int N, int V);
void zl__ref_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs,
                                         const int32_t *targets, int v0, float dloss, int N, int V);

/* ref_crossentropy.c */
void zl__ref_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                  const float *logits, const int32_t *targets, int N, int V);
void zl__ref_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, float dloss, int N, int V);

/* ref_adamw.c */
void zl__ref_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                   zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                   const zl_adamw_args *args);

/* ref_vector.c */
void zl__ref_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                              size_t n);
double zl__ref_sumsq(const zl_ops *self, const float *x, size_t n);
bool zl__ref_nonfinite(const zl_ops *self, const float *x, size_t n);
void zl__ref_scale(const zl_ops *self, float *x, float s, size_t n);
void zl__ref_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n);
void zl__ref_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                     zl_dtype t,
                     int m, int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b,
                     float alpha, float beta);
void zl__ref_round(const zl_ops *self, float *x, zl_dtype t, size_t n);
void zl__ref_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n);
void zl__ref_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                  zl_dtype src_type, size_t n);

#endif
