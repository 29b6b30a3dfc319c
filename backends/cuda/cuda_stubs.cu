/* TEMPORARY (the lead deletes it at merge): every zl_cuda_* kernel of cuda_ops.h as a call
 * that records "not built yet", so that the table (cuda.cu) links before the kernel files
 * land. Generated from cuda_ops.h. */
#include "backends/cuda/cuda_ops.h"

extern "C" void zl_cuda_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    (void)c; (void)a; (void)b; (void)m; (void)n; (void)k; (void)lda; (void)ldb; (void)ldc; (void)trans_a; (void)trans_b; (void)alpha; (void)beta;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_gemm", "not built yet");
}

extern "C" void zl_cuda_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type, zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta)
{
    (void)c; (void)a; (void)b; (void)b_type; (void)t; (void)m; (void)n; (void)k; (void)lda; (void)ldb; (void)ldc; (void)trans_a; (void)trans_b; (void)alpha; (void)beta;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_gemm_lp", "not built yet");
}

extern "C" void zl_cuda_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC)
{
    (void)out; (void)bias; (void)N; (void)OC;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_bias_forward", "not built yet");
}

extern "C" void zl_cuda_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC)
{
    (void)dbias; (void)dout; (void)N; (void)OC;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_bias_backward", "not built yet");
}

extern "C" void zl_cuda_residual_forward(const zl_ops *self, float *out, const float *a, const float *b, size_t n)
{
    (void)out; (void)a; (void)b; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_residual_forward", "not built yet");
}

extern "C" double zl_cuda_sumsq(const zl_ops *self, const float *x, size_t n)
{
    (void)x; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_sumsq", "not built yet");
    return 0.0;
}

extern "C" bool zl_cuda_nonfinite(const zl_ops *self, const float *x, size_t n)
{
    (void)x; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_nonfinite", "not built yet");
    return false;
}

extern "C" void zl_cuda_scale(const zl_ops *self, float *x, float s, size_t n)
{
    (void)x; (void)s; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_scale", "not built yet");
}

extern "C" void zl_cuda_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n)
{
    (void)y; (void)a; (void)x; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_axpy", "not built yet");
}

extern "C" void zl_cuda_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    (void)x; (void)t; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_round", "not built yet");
}

extern "C" void zl_cuda_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    (void)y; (void)yt; (void)x; (void)xt; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_drain", "not built yet");
}

extern "C" void zl_cuda_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src, zl_dtype src_type, size_t n)
{
    (void)dst; (void)dst_type; (void)src; (void)src_type; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_cast", "not built yet");
}

extern "C" void zl_cuda_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n)
{
    (void)out; (void)inp; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_gelu_forward", "not built yet");
}

extern "C" void zl_cuda_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout, size_t n)
{
    (void)dinp; (void)inp; (void)dout; (void)n;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_gelu_backward", "not built yet");
}

extern "C" void zl_cuda_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens, const float *wte, const float *wpe, int B, int T, int C)
{
    (void)out; (void)tokens; (void)wte; (void)wpe; (void)B; (void)T; (void)C;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_embedding_forward", "not built yet");
}

extern "C" void zl_cuda_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int B, int T, int C)
{
    (void)dwte; (void)dwpe; (void)dout; (void)tokens; (void)B; (void)T; (void)C;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_embedding_backward", "not built yet");
}

extern "C" void zl_cuda_embedding_shard_forward(const zl_ops *self, float *out, const int32_t *tokens, const float *wte, int v0, int v1, const float *wpe, int B, int T, int C)
{
    (void)out; (void)tokens; (void)wte; (void)v0; (void)v1; (void)wpe; (void)B; (void)T; (void)C;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_embedding_shard_forward", "not built yet");
}

extern "C" void zl_cuda_embedding_shard_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int v0, int v1, int B, int T, int C)
{
    (void)dwte; (void)dwpe; (void)dout; (void)tokens; (void)v0; (void)v1; (void)B; (void)T; (void)C;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_embedding_shard_backward", "not built yet");
}

extern "C" void zl_cuda_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad, zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n, const zl_adamw_args *args)
{
    (void)master; (void)m; (void)v; (void)grad; (void)grad_type; (void)param_out; (void)param_type; (void)n; (void)args;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_adamw", "not built yet");
}

extern "C" void zl_cuda_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias, int N, int C)
{
    (void)out; (void)mean; (void)rstd; (void)inp; (void)weight; (void)bias; (void)N; (void)C;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_layernorm_forward", "not built yet");
}

extern "C" void zl_cuda_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight, const float *mean, const float *rstd, int N, int C)
{
    (void)dinp; (void)dweight; (void)dbias; (void)dout; (void)inp; (void)weight; (void)mean; (void)rstd; (void)N; (void)C;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_layernorm_backward", "not built yet");
}

extern "C" void zl_cuda_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B, int T, int C, int NH)
{
    (void)out; (void)att; (void)qkv; (void)B; (void)T; (void)C; (void)NH;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_attention_forward", "not built yet");
}

extern "C" void zl_cuda_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att, int B, int T, int C, int NH)
{
    (void)dqkv; (void)scratch; (void)dout; (void)qkv; (void)att; (void)B; (void)T; (void)C; (void)NH;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_attention_backward", "not built yet");
}

extern "C" void zl_cuda_crossentropy_forward(const zl_ops *self, float *losses, float *probs, const float *logits, const int32_t *targets, int N, int V)
{
    (void)losses; (void)probs; (void)logits; (void)targets; (void)N; (void)V;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_crossentropy_forward", "not built yet");
}

extern "C" void zl_cuda_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs, const int32_t *targets, float dloss, int N, int V)
{
    (void)dlogits; (void)probs; (void)targets; (void)dloss; (void)N; (void)V;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_crossentropy_backward", "not built yet");
}

extern "C" void zl_cuda_crossentropy_shard_max(const zl_ops *self, float *rowmax, const float *logits, int N, int V)
{
    (void)rowmax; (void)logits; (void)N; (void)V;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_crossentropy_shard_max", "not built yet");
}

extern "C" void zl_cuda_crossentropy_shard_exp(const zl_ops *self, float *probs, float *rowsum, const float *logits, const float *rowmax, int N, int V)
{
    (void)probs; (void)rowsum; (void)logits; (void)rowmax; (void)N; (void)V;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_crossentropy_shard_exp", "not built yet");
}

extern "C" void zl_cuda_crossentropy_shard_loss(const zl_ops *self, float *losses, float *probs, const float *logits, const float *rowmax, const float *rowsum, const int32_t *targets, int v0, int N, int V)
{
    (void)losses; (void)probs; (void)logits; (void)rowmax; (void)rowsum; (void)targets; (void)v0; (void)N; (void)V;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_crossentropy_shard_loss", "not built yet");
}

extern "C" void zl_cuda_crossentropy_shard_backward(const zl_ops *self, float *dlogits, const float *probs, const int32_t *targets, int v0, float dloss, int N, int V)
{
    (void)dlogits; (void)probs; (void)targets; (void)v0; (void)dloss; (void)N; (void)V;
    zl__cuda_fail(zl_cuda_ctx_of(self), "zl_cuda_crossentropy_shard_backward", "not built yet");
}
