/* The cpu backend's kernels: OpenBLAS sgemm for every matrix product (attention included;
 * oneDNN's sgemm instead for the shapes where it was measured faster: cpu_gemm_choice.c)
 * and OpenMP loops for the memory-bound rest. One file per concept, gathered into
 * zl_ops_cpu by cpu.c; the semantics of every function are those of the matching field in
 * backends/ops.h, and backends/ref/ holds the naive loops they are tested against.
 *
 * How the loops are written, and why:
 *  - Parallel regions only dispatch. The arithmetic sits in static "chunk" or "row"
 *    functions marked ZL_CPU_VECTOR, which (GCC, x86-64) are compiled three times, for
 *    AVX-512 (x86-64-v4), AVX2 (v3) and the baseline, with the best the CPU runs picked
 *    at load time: the library is built without -march, and OpenMP's outlined functions
 *    would not inherit per-function options anyway. The AVX-512 clones made the bf16
 *    drain 3.4x faster than the AVX2 ones (7M elements, 2 threads: 6.4 -> 2.1 ms) and
 *    GELU 1.5-2x (gpt2-124m step, profiled: 12 + 24 -> 8 + 12 ms) on an Intel Xeon with
 *    AVX-512; reductions then sum in 16 lanes instead of 8, a different rounding order,
 *    not a different result within the tests' tolerances.
 *  - The files that include this header drop trapping math, a C default that stops GCC
 *    from vectorizing (it blocks if-conversion of float compares, so a clamp becomes a
 *    branch). It changes no result: we never read floating-point exception flags. (The
 *    pragma also asks for no errno, but GCC fixes sqrtf's errno semantics for the whole
 *    translation unit, hence the intrinsics in cpu_adamw.c.)
 *  - Multiply-adds are not fused (ISO C mode), so results do not depend on which clone
 *    runs, and the kernels that compute ref's expressions in ref's order (residual, axpy,
 *    adamw, ...) agree with it bit for bit.
 *  - Every parallel region has an if() clause: tiny shapes (the tests, small labs) run
 *    serially instead of paying for a team wake-up.
 *  - Kernels never allocate; reductions that cross rows are split by columns so every
 *    thread owns what it writes, and results do not depend on the order threads finish. */
#ifndef ZL_BACKENDS_CPU_CPU_H
#define ZL_BACKENDS_CPU_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <omp.h>

#include "backends/ops.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define ZL_CPU_VECTOR __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ZL_CPU_VECTOR
#endif

/* Element-wise loops are cut into chunks of this many elements (a multiple of 16, so
 * chunks start 64-byte aligned when the array does) and go parallel from ZL_CPU_PAR_MIN
 * elements: below that a parallel region costs more than it saves. */
#define ZL_CPU_CHUNK 8192
#define ZL_CPU_PAR_MIN 32768
/* Partial sums of a reduction, one per thread, live on the stack: at most this many. */
#define ZL_CPU_MAX_THREADS 256

/* Inside a parallel region: this thread's share [*lo, *hi) of n columns, cut at multiples
 * of 16 floats (64 bytes) so that no two threads write the same cache line. Empty when
 * there are more threads than 16-column groups. */
static inline void zl__cpu_thread_cols(int n, int *lo, int *hi)
{
    int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    int per = ((n + nth - 1) / nth + 15) / 16 * 16;
    *lo = tid * per < n ? tid * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* exp(x) for float, written so that loops calling it vectorize (glibc's expf does not
 * without -ffast-math). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-7
 * polynomial for e^r (Cephes' coefficients) evaluated in Estrin's scheme (a shallower
 * dependency chain than Horner's, which is what limits these loops), and 2^n built in the
 * exponent bits: within 2 ulp (1.2e-7 relative) over the clamped range. Inputs are clamped
 * to [-87, 88], so exp of a very negative number is ~1e-38 instead of 0 (below anything a
 * softmax can notice) and nothing overflows to inf: every caller either subtracts a
 * maximum first or (GELU) only needs the limits. NaN gives NaN. */
static inline float zl__cpu_expf(float x_in)
{
    /* clamped so that NaN becomes -87 too (the comparisons are false for it): n below must
     * be an integer in range before it is converted, and the NaN is returned at the end */
    float x = x_in > -87.0f ? x_in : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    /* round(x / ln2) with the 1.5 * 2^23 trick: no call to rintf, so it vectorizes */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f; /* ln2 split in two: the high part is exact in f32 */
    r = r - n * -2.12194440e-4f;
    float r2 = r * r, r4 = r2 * r2;
    float a = 5.0000001201e-1f + 1.6666665459e-1f * r;
    float b = 4.1665795894e-2f + 8.3334519073e-3f * r;
    float c = 1.3981999507e-3f + 1.9875691500e-4f * r;
    float p = (1.0f + r) + r2 * ((a + r2 * b) + r4 * c);
    int32_t bits = ((int32_t)n + 127) * (1 << 23); /* n in [-126, 127]: a normal 2^n */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return x_in != x_in ? x_in : p * two_n; /* NaN in, NaN out */
}

/* cpu.c: memory */
void *zl__cpu_alloc(const zl_ops *self, size_t nbytes);
void zl__cpu_free(const zl_ops *self, void *ptr);
void zl__cpu_zero(const zl_ops *self, void *ptr, size_t nbytes);
void zl__cpu_copy(const zl_ops *self, void *dst, const void *src, size_t nbytes);

/* cpu_gemm.c */
void zl__cpu_gemm(const zl_ops *self, float *c, const float *a, const float *b, int m, int n, int k,
                  int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha, float beta);
void zl__cpu_bias_forward(const zl_ops *self, float *out, const float *bias, int N, int OC);
void zl__cpu_bias_backward(const zl_ops *self, float *dbias, const float *dout, int N, int OC);

/* cpu_embedding.c */
void zl__cpu_embedding_forward(const zl_ops *self, float *out, const int32_t *tokens,
                               const float *wte, const float *wpe, int B, int T, int C);
void zl__cpu_embedding_backward(const zl_ops *self, float *dwte, float *dwpe, const float *dout,
                                const int32_t *tokens, int B, int T, int C);

/* cpu_layernorm.c */
void zl__cpu_layernorm_forward(const zl_ops *self, float *out, float *mean, float *rstd,
                               const float *inp, const float *weight, const float *bias, int N,
                               int C);
void zl__cpu_layernorm_backward(const zl_ops *self, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                const float *mean, const float *rstd, int N, int C);

/* cpu_attention.c */
void zl__cpu_attention_forward(const zl_ops *self, float *out, float *att, const float *qkv, int B,
                               int T, int C, int NH);
void zl__cpu_attention_backward(const zl_ops *self, float *dqkv, float *scratch, const float *dout,
                                const float *qkv, const float *att, int B, int T, int C, int NH);

/* cpu_gelu.c */
void zl__cpu_gelu_forward(const zl_ops *self, float *out, const float *inp, size_t n);
void zl__cpu_gelu_backward(const zl_ops *self, float *dinp, const float *inp, const float *dout,
                           size_t n);

/* cpu_crossentropy.c */
void zl__cpu_crossentropy_forward(const zl_ops *self, float *losses, float *probs,
                                  const float *logits, const int32_t *targets, int N, int V);
void zl__cpu_crossentropy_backward(const zl_ops *self, float *dlogits, const float *probs,
                                   const int32_t *targets, float dloss, int N, int V);

/* cpu_adamw.c */
void zl__cpu_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                   zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                   const zl_adamw_args *args);
/* The instruction set zl__cpu_adamw uses: ZL_CPU_ADAMW_SCALAR (the C loop), _SSE, _AVX or
 * _AVX512. By default the best the CPU has; _force (for tests and benchmarks, not
 * thread-safe against a running step) pins one, or restores the default with -1, and
 * returns false, changing nothing, when the CPU lacks it. */
enum { ZL_CPU_ADAMW_SCALAR = 0, ZL_CPU_ADAMW_SSE, ZL_CPU_ADAMW_AVX, ZL_CPU_ADAMW_AVX512 };
bool zl__cpu_adamw_force_isa(int level);
int zl__cpu_adamw_isa(void);
const char *zl__cpu_adamw_isa_name(int level);

/* cpu_vector.c */
void zl__cpu_residual_forward(const zl_ops *self, float *out, const float *a, const float *b,
                              size_t n);
double zl__cpu_sumsq(const zl_ops *self, const float *x, size_t n);
bool zl__cpu_nonfinite(const zl_ops *self, const float *x, size_t n);
void zl__cpu_scale(const zl_ops *self, float *x, float s, size_t n);
void zl__cpu_axpy(const zl_ops *self, float *y, float a, const float *x, size_t n);

/* cpu_cast.c */
void zl__cpu_round(const zl_ops *self, float *x, zl_dtype t, size_t n);
void zl__cpu_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n);
/* cpu_gemm_lp.c (single-threaded callers: it keeps a primitive cache and workspace). How
 * many products went to oneDNN's bf16 matmul so far (0 without oneDNN). */
long zl__cpu_gemm_lp_onednn_calls(void);
/* The bf16 product on oneDNN whatever its size (the benchmark's handle on the size rules):
 * false, C untouched, without oneDNN or AVX512-BF16, or if oneDNN fails. B as in gemm_lp:
 * f32 holding bf16 values, or bf16 (b_type). */
bool zl__cpu_gemm_lp_onednn(float *c, const float *a, const void *b, zl_dtype b_type, int m, int n,
                            int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b,
                            float alpha, float beta);
/* The same product on sgemm, a 16-bit B widened first (into a buffer of this file's). */
void zl__cpu_gemm_lp_sgemm(const zl_ops *self, float *c, const float *a, const void *b,
                           zl_dtype b_type, int m, int n, int k, int lda, int ldb, int ldc,
                           bool trans_a, bool trans_b, float alpha, float beta);
void zl__cpu_gemm_lp(const zl_ops *self, float *c, const float *a, const void *b, zl_dtype b_type,
                     zl_dtype t, int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                     bool trans_b, float alpha, float beta);
/* Whether oneDNN's bf16 matmul can run here at all (built in, AVX512-BF16). */
bool zl__cpu_gemm_lp_onednn_usable(void);

/* cpu_gemm_f32.c: the fp32 product on oneDNN's sgemm. False, C untouched, without oneDNN
 * (or if it fails). How many products it ran; whether it is built in. */
bool zl__cpu_gemm_f32_onednn(float *c, const float *a, const float *b, int m, int n, int k,
                             int lda, int ldb, int ldc, bool trans_a, bool trans_b, float alpha,
                             float beta);
long zl__cpu_gemm_f32_onednn_calls(void);
bool zl__cpu_gemm_f32_onednn_usable(void);
/* Below this many multiply-adds an fp32 product runs on OpenBLAS without a measurement:
 * at 64^3 (0.26M) and below the two paths were within a microsecond of each other, from
 * 96^3 (0.9M) up oneDNN's was 1.1-2.4x faster on every transpose (2 threads, Xeon;
 * docs/benchmarks.md, "GEMM paths"). */
#define ZL_CPU_GEMM_F32_MIN_MACS ((double)(1 << 19))
/* cpu_gemm.c: the fp32 product on OpenBLAS (its row split included), whatever its size;
 * zl__cpu_gemm runs this or oneDNN's, per shape. */
void zl__cpu_gemm_openblas(const zl_ops *self, float *c, const float *a, const float *b, int m,
                           int n, int k, int lda, int ldb, int ldc, bool trans_a, bool trans_b,
                           float alpha, float beta);

/* cpu_gemm_choice.c: which path runs a product of each shape, measured at its first use,
 * for two decisions (kinds):
 *  - bf16: oneDNN's bf16 matmul or sgemm. ZL_GEMM_LP=measure (the default), =onednn
 *    (oneDNN wherever it can run), =sgemm (never);
 *  - fp32: oneDNN's sgemm or OpenBLAS's. ZL_GEMM_F32=measure (the default), =onednn,
 *    =openblas. */
typedef enum { ZL_GEMM_CHOICE_BF16, ZL_GEMM_CHOICE_F32, ZL_GEMM_CHOICE_KINDS } zl_gemm_choice_kind;
bool zl__cpu_gemm_lp_use_onednn(const zl_ops *self, const float *a, const void *b, zl_dtype b_type,
                                int m, int n, int k, int lda, int ldb, bool trans_a, bool trans_b,
                                float alpha);
/* c, ldc, beta: the caller's C; with beta = 0 the measurement's timed runs write it. */
bool zl__cpu_gemm_f32_use_onednn(const zl_ops *self, float *c, const float *a, const float *b,
                                 int m, int n, int k, int lda, int ldb, int ldc, bool trans_a,
                                 bool trans_b, float alpha, float beta);
/* The decision: oneDNN when it was faster (ties go to the other path, which every build
 * has). */
bool zl_gemm_prefer_onednn(double t_onednn, double t_other);
/* "sgemm" or "openblas": the name of the path that is not oneDNN's */
const char *zl__cpu_gemm_choice_other_name(zl_gemm_choice_kind kind);
/* Tests: time the paths with `timer` (seconds for one product of that kind and shape)
 * instead of running them (NULL: run them); forget every choice made (and read
 * ZL_GEMM_LP and ZL_GEMM_F32 again); look one up (-1: none yet, 0: the other path, 1:
 * oneDNN; the times it was decided by). */
typedef double (*zl_gemm_timer)(zl_gemm_choice_kind kind, bool onednn, int m, int n, int k,
                                bool trans_a, bool trans_b);
void zl__cpu_gemm_choice_set_timer(zl_gemm_timer timer);
void zl__cpu_gemm_choice_forget(void);
int zl__cpu_gemm_choice(zl_gemm_choice_kind kind, int m, int n, int k, bool trans_a, bool trans_b,
                        int nthr, double *t_onednn, double *t_other);
/* The choices made so far as text (one line each), for a checkpoint: writes at most len
 * bytes (NUL-terminated) and returns the bytes the whole text needs; and the choices of
 * such a text put in the table (lines not understood are skipped), how many. */
size_t zl__cpu_gemm_choices_save(char *buf, size_t len);
int zl__cpu_gemm_choices_load(const char *text);
void zl__cpu_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                  zl_dtype src_type, size_t n);

#endif
