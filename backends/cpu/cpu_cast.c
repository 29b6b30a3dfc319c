/* Element-wise conversion between f32, f16 and bf16, bit for bit the result of
 * zl_convert (base/dtype.c: round to nearest even, overflow to inf, f16 subnormals kept,
 * NaN quieted with its sign and top payload bits). base/dtype.c branches per case; here
 * every case is computed and the right one selected, so the loops vectorize, and the
 * f16 subnormal cases use an f32 addition or subtraction whose own rounding (to nearest
 * even, the default mode) does the work. f32 -> f16 uses the F16C instruction where the
 * CPU has it. Casts run on whole parameter and gradient buffers every step under mixed
 * precision, hence the effort. */
#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_half.h"
#include "base/log.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CAST_F16C 1
#endif

#ifdef CAST_F16C
/* The F16C instruction rounds to nearest even, keeps f16 subnormals and quiets NaN with its
 * top payload bits: zl_f32_to_f16 exactly (the test checks it bit for bit), 4x faster than
 * the selects below. (Its f16 -> f32 sibling would quiet signalling NaNs, which
 * zl_f16_to_f32 does not, so that direction stays in C.) */
__attribute__((target("avx,f16c"))) static size_t f32_to_f16_f16c(uint16_t *dst,
                                                                  const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}
#endif

ZL_CPU_VECTOR static void f32_to_f16_chunk(uint16_t *dst, const float *src, size_t n,
                                           bool f16c)
{
    size_t i = 0;
#ifdef CAST_F16C
    if (f16c) i = f32_to_f16_f16c(dst, src, n);
#endif
#pragma omp simd
    for (size_t j = i; j < n; j++) dst[j] = f32_to_f16(src[j]);
}

ZL_CPU_VECTOR static void f16_to_f32_chunk(float *dst, const uint16_t *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

ZL_CPU_VECTOR static void f32_to_bf16_chunk(uint16_t *dst, const float *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

ZL_CPU_VECTOR static void bf16_to_f32_chunk(float *dst, const uint16_t *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

ZL_CPU_VECTOR static void f16_to_bf16_chunk(uint16_t *dst, const uint16_t *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(f16_to_f32(src[i]));
}

ZL_CPU_VECTOR static void bf16_to_f16_chunk(uint16_t *dst, const uint16_t *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_f16(bf16_to_f32(src[i]));
}

static void cast_chunk(void *dst, zl_dtype dst_type, const void *src, zl_dtype src_type,
                       size_t i, size_t n, bool f16c)
{
    size_t dsz = dst_type == ZL_F32 ? 4 : 2, ssz = src_type == ZL_F32 ? 4 : 2;
    void *d = (char *)dst + i * dsz;
    const void *s = (const char *)src + i * ssz;
    if (src_type == ZL_F32 && dst_type == ZL_F16) f32_to_f16_chunk(d, s, n, f16c);
    else if (src_type == ZL_F32) f32_to_bf16_chunk(d, s, n);
    else if (src_type == ZL_F16 && dst_type == ZL_F32) f16_to_f32_chunk(d, s, n);
    else if (src_type == ZL_F16) f16_to_bf16_chunk(d, s, n);
    else if (dst_type == ZL_F32) bf16_to_f32_chunk(d, s, n);
    else bf16_to_f16_chunk(d, s, n);
}

void zl__cpu_cast(const zl_ops *self, void *dst, zl_dtype dst_type, const void *src,
                  zl_dtype src_type, size_t n)
{
    ZL_ASSERT(dst_type == ZL_F32 || dst_type == ZL_F16 || dst_type == ZL_BF16);
    ZL_ASSERT(src_type == ZL_F32 || src_type == ZL_F16 || src_type == ZL_BF16);
    if (dst_type == src_type) {
        /* same type: a copy; memmove, as zl_convert, in case the caller passes one buffer */
        zl__cpu_copy(self, dst, src, n * zl_dtype_nbytes(dst_type));
        return;
    }
    bool f16c = false;
#ifdef CAST_F16C
    f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#endif
    size_t nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i = c * ZL_CPU_CHUNK;
        cast_chunk(dst, dst_type, src, src_type, i, n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK,
                   f16c);
    }
}

/* Round in place through a 16-bit chunk on the stack: the same two conversions as a
 * store and a load of a 16-bit tensor, so bit for bit what zl_round_f16/bf16 give. */
void zl__cpu_round(const zl_ops *self, float *x, zl_dtype t, size_t n)
{
    ZL_ASSERT(t == ZL_F32 || t == ZL_F16 || t == ZL_BF16);
    if (t == ZL_F32) return;
    bool f16c = false;
#ifdef CAST_F16C
    f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#endif
    size_t nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        uint16_t h[ZL_CPU_CHUNK];
        size_t i = c * ZL_CPU_CHUNK, len = n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK;
        cast_chunk(h, t, x + i, ZL_F32, 0, len, f16c);
        cast_chunk(x + i, ZL_F32, h, t, 0, len, f16c);
    }
}

/* A drain's sum y + g with its NaN chosen explicitly, as ref's (ref_vector.c): y's NaN if
 * y is one, else g's, quieted with sign and payload kept. IEEE 754 leaves the choice
 * between two NaN operands open, x86 keeps an addition's first operand's, and the
 * compiler may swap the operands (gcc does at -O0 and -O3, not at -O2): nothing here may
 * depend on that. Selects, so the loops still vectorize. inf + -inf gives the CPU's
 * default NaN, in ref too. */
static inline float drain_add(float y, float g)
{
    float qy = bits_f32(f32_bits(y) | 0x00400000u), qg = bits_f32(f32_bits(g) | 0x00400000u);
    float sum = y + g;
    sum = g != g ? qg : sum;
    return y != y ? qy : sum;
}/* drain of bf16 gradients into a bf16 store, one fused loop (the bf16 conversions are a
 * few integer operations that vectorize; f16's are faster through F16C, hence the chunks
 * below): y (n) = y + round(x); x (n) = 0. Three times faster than the chunks on this
 * CPU, and the step drains every parameter's gradient. */
ZL_CPU_VECTOR static void drain_bf16_chunk(uint16_t *restrict y, float *restrict x, size_t n)
{
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        float cur = bf16_to_f32(y[j]), g = bf16_to_f32(f32_to_bf16(x[j]));
        /* drain_add's choice, with its quieting left to f32_to_bf16 (g is quiet already,
         * and the narrowing quiets y's): selects of the operands themselves keep this loop
         * at the speed of a plain sum; drain_add's here ran it 2x slower (38.6M elements,
         * 44 -> 88 ms at 1 thread). */
        float sum = cur + g;
        sum = g != g ? g : sum;
        sum = cur != cur ? cur : sum;
        y[j] = f32_to_bf16(sum);
        x[j] = 0.0f;
    }
}

#ifdef CAST_F16C
/* The same for fp16, 8 at a time with F16C: x rounded to f16 and back (exact: F16C's
 * narrowing is zl_f32_to_f16, and its widening of the quiet result is exact), y widened,
 * added, narrowed. F16C quiets a signalling NaN in y as it widens, where zl_f16_to_f32
 * does not, but drain_add quiets it too, and the narrowing would. The NaN is selected as
 * in drain_add: y's, else g's. Bit for bit the reference. Returns how many elements it
 * did (multiples of 8). */
__attribute__((target("avx,f16c"))) static size_t drain_f16_f16c(uint16_t *y, float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i gh = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        __m256 g = _mm256_cvtph_ps(gh);
        __m256 cur = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i)));
        __m256 y_nan = _mm256_cmp_ps(cur, cur, _CMP_UNORD_Q), g_nan = _mm256_cmp_ps(g, g, _CMP_UNORD_Q);
        __m256 sum = _mm256_blendv_ps(_mm256_add_ps(cur, g), g, g_nan); /* see drain_add */
        cur = _mm256_blendv_ps(sum, cur, y_nan);
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(cur, _MM_FROUND_TO_NEAREST_INT));
        _mm256_storeu_ps(x + i, _mm256_setzero_ps());
    }
    return i;
}
#endif

/* drain: per chunk, widen y and round x through 16-bit buffers on the stack, add, store;
 * one pass over memory instead of the five of cast-round-add-cast-zero. */
void zl__cpu_drain(const zl_ops *self, void *y, zl_dtype yt, float *x, zl_dtype xt, size_t n)
{
    if (xt == ZL_BF16 && yt == ZL_BF16) {
        size_t nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
        for (size_t c = 0; c < nchunks; c++) {
            size_t i = c * ZL_CPU_CHUNK, len = n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK;
            drain_bf16_chunk((uint16_t *)y + i, x + i, len);
        }
        return;
    }
    bool f16c = false;
#ifdef CAST_F16C
    f16c = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    if (f16c && xt == ZL_F16 && yt == ZL_F16) {
        /* the F16C loop on the multiple of 8, the chunks below on the rest: whole chunks
         * leave no rest, so it is all at the end */
        _Static_assert(ZL_CPU_CHUNK % 8 == 0, "whole chunks must be multiples of 8");
        size_t done = 0, nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN) reduction(+ : done)
        for (size_t c = 0; c < nchunks; c++) {
            size_t i = c * ZL_CPU_CHUNK, len = n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK;
            done += drain_f16_f16c((uint16_t *)y + i, x + i, len);
        }
        if (done == n) return;
        y = (uint16_t *)y + done;
        x += done;
        n -= done;
    }
#endif
    size_t ysz = zl_dtype_nbytes(yt), nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
#pragma omp parallel for schedule(static) if (n >= ZL_CPU_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        float acc[ZL_CPU_CHUNK];
        uint16_t h[ZL_CPU_CHUNK];
        size_t i = c * ZL_CPU_CHUNK, len = n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK;
        float *xi = x + i;
        void *yi = (char *)y + i * ysz;
        if (xt != ZL_F32) { /* round x in place: x is zeroed below anyway */
            cast_chunk(h, xt, xi, ZL_F32, 0, len, f16c);
            cast_chunk(xi, ZL_F32, h, xt, 0, len, f16c);
        }
        if (yt == ZL_F32) {
            float *yf = yi;
#pragma omp simd
            for (size_t j = 0; j < len; j++) yf[j] = drain_add(yf[j], xi[j]);
        } else {
            cast_chunk(acc, ZL_F32, yi, yt, 0, len, f16c);
#pragma omp simd
            for (size_t j = 0; j < len; j++) acc[j] = drain_add(acc[j], xi[j]);
            cast_chunk(yi, yt, acc, ZL_F32, 0, len, f16c);
        }
        memset(xi, 0, len * sizeof(float));
    }
}
