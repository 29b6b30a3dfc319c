/* One Adam / AdamW step, fused: the gradient read in its storage type, the fp32 master, m
 * and v updated, and (optionally) the updated master rounded into the 16-bit parameters,
 * in one pass. The formulas, and which of torch's and DeepSpeed's optimizers each mode is,
 * are in backends/ref/ref_adamw.c. The arithmetic is ref's expressions in ref's order
 * (the decay term added where ref adds it, not as a + 0 * p, which would differ for an
 * infinite p or a -0), so it agrees with ref to the last bit, NaN payloads included: the
 * library is compiled as ISO C, which does not fuse multiply-adds, and no FMA intrinsic
 * is used.
 *
 * One pass over memory: per element, 12 bytes read and 12 written for master, m and v,
 * plus the gradient (4 or 2 bytes) and the copy-out (0, 2 or 4): 28 bytes in fp32, 28 in
 * bf16 with the copy-out, where the separate widen (2 + 4), step (28) and round (4 + 2)
 * passes it replaces moved 40. Memory bandwidth should be the limit. It is not unless the loop is
 * vectorized, and GCC will not vectorize sqrtf in a build that keeps errno semantics (the
 * default; a library should not impose -fno-math-errno on its users), so the loop is
 * written with intrinsics, whose sqrt instructions are the correctly rounded sqrtf. The
 * instruction set is chosen at run time (zl__cpu_adamw_isa):
 *   AVX-512F  16 lanes; the 16-bit conversions in registers: bf16 by shifts and the
 *             integer rounding of zl_f32_to_bf16; f16 by vcvtph2ps / vcvtps2ph (round to
 *             nearest even, subnormals kept, NaN quieted with its top payload bits: what
 *             zl_f32_to_f16 does). vcvtph2ps quiets a signalling NaN, which
 *             zl_f16_to_f32 does not, but the widened gradient is only ever an operand
 *             of g * grad_scale, and that multiply quiets it in either case, with the
 *             same payload: the results are the same bits (the test has sNaN gradients).
 *   AVX, SSE  8 and 4 lanes on f32 data; a 16-bit gradient is widened, and the copy-out
 *             narrowed, in L1-sized tiles by the exact C conversions, so memory is still
 *             crossed once.
 *   scalar    the C loop (non-x86, or forced by the tests).
 * Chunks of ZL_CPU_CHUNK elements are spread over the OpenMP threads. */
#include <math.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_half.h"
#include "base/log.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ADAMW_X86 1
#endif

typedef struct coeffs {
    float lr, b1, b2, one_minus_b1, one_minus_b2, eps, bc1, bc2, grad_scale, wd;
    bool adamw; /* decay in the update (AdamW) rather than in the gradient (Adam) */
} coeffs;

/* ---- the scalar element: ref's loop body ------------------------------------------- */

static inline float step_one(float *master, float *m, float *v, float grad, size_t i,
                             const coeffs *k)
{
    float p = master[i];
    float g = grad * k->grad_scale;
    if (!k->adamw) g += k->wd * p;
    float mi = k->b1 * m[i] + k->one_minus_b1 * g;
    float vi = k->b2 * v[i] + k->one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    float update = (mi / k->bc1) / (sqrtf(vi / k->bc2) + k->eps);
    if (k->adamw) update += k->wd * p;
    float r = p - k->lr * update;
    master[i] = r;
    return r;
}

/* ---- f32 vector bodies: n elements of f32 gradient; return how many they did -------- */

#ifdef ADAMW_X86
__attribute__((target("avx"))) static size_t step_avx(float *master, float *m, float *v,
                                                      const float *grad, size_t n,
                                                      const coeffs *k)
{
    __m256 lr = _mm256_set1_ps(k->lr), b1 = _mm256_set1_ps(k->b1), b2 = _mm256_set1_ps(k->b2);
    __m256 omb1 = _mm256_set1_ps(k->one_minus_b1), omb2 = _mm256_set1_ps(k->one_minus_b2);
    __m256 eps = _mm256_set1_ps(k->eps), bc1 = _mm256_set1_ps(k->bc1);
    __m256 bc2 = _mm256_set1_ps(k->bc2), gs = _mm256_set1_ps(k->grad_scale);
    __m256 wd = _mm256_set1_ps(k->wd);
    bool adamw = k->adamw;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 p = _mm256_loadu_ps(master + i);
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grad + i), gs);
        if (!adamw) g = _mm256_add_ps(g, _mm256_mul_ps(wd, p));
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)),
                                  _mm256_mul_ps(omb1, g));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                  _mm256_mul_ps(_mm256_mul_ps(omb2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vi, bc2)), eps);
        __m256 update = _mm256_div_ps(_mm256_div_ps(mi, bc1), denom);
        if (adamw) update = _mm256_add_ps(update, _mm256_mul_ps(wd, p));
        _mm256_storeu_ps(master + i, _mm256_sub_ps(p, _mm256_mul_ps(lr, update)));
    }
    return i;
}

/* the same with SSE, which every x86-64 has */
static size_t step_sse(float *master, float *m, float *v, const float *grad, size_t n,
                       const coeffs *k)
{
    __m128 lr = _mm_set1_ps(k->lr), b1 = _mm_set1_ps(k->b1), b2 = _mm_set1_ps(k->b2);
    __m128 omb1 = _mm_set1_ps(k->one_minus_b1), omb2 = _mm_set1_ps(k->one_minus_b2);
    __m128 eps = _mm_set1_ps(k->eps), bc1 = _mm_set1_ps(k->bc1);
    __m128 bc2 = _mm_set1_ps(k->bc2), gs = _mm_set1_ps(k->grad_scale);
    __m128 wd = _mm_set1_ps(k->wd);
    bool adamw = k->adamw;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m128 p = _mm_loadu_ps(master + i);
        __m128 g = _mm_mul_ps(_mm_loadu_ps(grad + i), gs);
        if (!adamw) g = _mm_add_ps(g, _mm_mul_ps(wd, p));
        __m128 mi = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(omb1, g));
        __m128 vi = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)),
                               _mm_mul_ps(_mm_mul_ps(omb2, g), g));
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        __m128 denom = _mm_add_ps(_mm_sqrt_ps(_mm_div_ps(vi, bc2)), eps);
        __m128 update = _mm_div_ps(_mm_div_ps(mi, bc1), denom);
        if (adamw) update = _mm_add_ps(update, _mm_mul_ps(wd, p));
        _mm_storeu_ps(master + i, _mm_sub_ps(p, _mm_mul_ps(lr, update)));
    }
    return i;
}

/* ---- AVX-512: 16 lanes, 16-bit gradient and copy-out converted in registers ---------- */

__attribute__((target("avx512f"))) static size_t step_avx512(float *master, float *m, float *v,
                                                             const void *grad, zl_dtype gt,
                                                             void *out, zl_dtype pt, size_t n,
                                                             const coeffs *k)
{
    __m512 lr = _mm512_set1_ps(k->lr), b1 = _mm512_set1_ps(k->b1), b2 = _mm512_set1_ps(k->b2);
    __m512 omb1 = _mm512_set1_ps(k->one_minus_b1), omb2 = _mm512_set1_ps(k->one_minus_b2);
    __m512 eps = _mm512_set1_ps(k->eps), bc1 = _mm512_set1_ps(k->bc1);
    __m512 bc2 = _mm512_set1_ps(k->bc2), gs = _mm512_set1_ps(k->grad_scale);
    __m512 wd = _mm512_set1_ps(k->wd);
    __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff);
    __m512i abs = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    __m512i quiet = _mm512_set1_epi32(0x40);
    bool adamw = k->adamw;
    const float *g32 = grad;
    const uint16_t *g16 = grad;
    float *o32 = out;
    uint16_t *o16 = out;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gl;
        if (gt == ZL_F32)
            gl = _mm512_loadu_ps(g32 + i);
        else if (gt == ZL_BF16)
            gl = _mm512_castsi512_ps(_mm512_slli_epi32(
                _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(g16 + i))), 16));
        else
            gl = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g16 + i)));
        __m512 p = _mm512_loadu_ps(master + i);
        __m512 g = _mm512_mul_ps(gl, gs);
        if (!adamw) g = _mm512_add_ps(g, _mm512_mul_ps(wd, p));
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)),
                                  _mm512_mul_ps(omb1, g));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)),
                                  _mm512_mul_ps(_mm512_mul_ps(omb2, g), g));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 denom = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vi, bc2)), eps);
        __m512 update = _mm512_div_ps(_mm512_div_ps(mi, bc1), denom);
        if (adamw) update = _mm512_add_ps(update, _mm512_mul_ps(wd, p));
        __m512 r = _mm512_sub_ps(p, _mm512_mul_ps(lr, update));
        _mm512_storeu_ps(master + i, r);
        if (!out) continue;
        if (pt == ZL_BF16) {
            /* f32_to_bf16 above, 16 lanes: round the low half to nearest even, or quiet a NaN */
            __m512i u = _mm512_castps_si512(r);
            __m512i hi = _mm512_srli_epi32(u, 16);
            __m512i rounded = _mm512_srli_epi32(
                _mm512_add_epi32(_mm512_add_epi32(u, half), _mm512_and_si512(hi, one)), 16);
            __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
            __m512i h = _mm512_mask_blend_epi32(nan, rounded, _mm512_or_si512(hi, quiet));
            _mm256_storeu_si256((__m256i *)(o16 + i), _mm512_cvtepi32_epi16(h));
        } else if (pt == ZL_F16) {
            _mm256_storeu_si256((__m256i *)(o16 + i), _mm512_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
        } else {
            _mm512_storeu_ps(o32 + i, r);
        }
    }
    return i;
}
#endif

/* ---- tiles: scalar, SSE and AVX ---------------------------------------------------- */

/* 16-bit data is converted through tiles this long (4 KiB of f32: stays in L1) */
#define ADAMW_TILE 1024

static void step_tiled(int isa, float *master, float *m, float *v, const void *grad,
                       zl_dtype gt, void *out, zl_dtype pt, size_t n, const coeffs *k)
{
    float wide[ADAMW_TILE];
    for (size_t t = 0; t < n; t += ADAMW_TILE) {
        size_t len = n - t < ADAMW_TILE ? n - t : ADAMW_TILE;
        const float *g = wide;
        if (gt == ZL_F32) {
            g = (const float *)grad + t;
        } else if (gt == ZL_BF16) {
            const uint16_t *h = (const uint16_t *)grad + t;
            for (size_t j = 0; j < len; j++) wide[j] = bf16_to_f32(h[j]);
        } else {
            const uint16_t *h = (const uint16_t *)grad + t;
            for (size_t j = 0; j < len; j++) wide[j] = zl_f16_to_f32(h[j]);
        }
        size_t i = 0;
#ifdef ADAMW_X86
        if (isa == ZL_CPU_ADAMW_AVX) i = step_avx(master + t, m + t, v + t, g, len, k);
        else if (isa == ZL_CPU_ADAMW_SSE) i = step_sse(master + t, m + t, v + t, g, len, k);
#endif
        for (; i < len; i++) step_one(master + t, m + t, v + t, g[i], i, k);
        if (!out) continue;
        const float *r = master + t;
        if (pt == ZL_BF16) {
            uint16_t *o = (uint16_t *)out + t;
            for (size_t j = 0; j < len; j++) o[j] = f32_to_bf16(r[j]);
        } else if (pt == ZL_F16) {
            uint16_t *o = (uint16_t *)out + t;
            for (size_t j = 0; j < len; j++) o[j] = zl_f32_to_f16(r[j]);
        } else {
            memcpy((float *)out + t, r, len * sizeof(float));
        }
    }
}

static void step_chunk(int isa, float *master, float *m, float *v, const void *grad,
                       zl_dtype gt, void *out, zl_dtype pt, size_t n, const coeffs *k)
{
    size_t i = 0;
#ifdef ADAMW_X86
    if (isa == ZL_CPU_ADAMW_AVX512) {
        i = step_avx512(master, m, v, grad, gt, out, pt, n, k);
        isa = ZL_CPU_ADAMW_SCALAR; /* the tail */
    }
#endif
    if (i == n) return;
    size_t gsz = zl_dtype_nbytes(gt), psz = out ? zl_dtype_nbytes(pt) : 0;
    step_tiled(isa, master + i, m + i, v + i, (const char *)grad + i * gsz,
               gt, out ? (char *)out + i * psz : NULL, pt, n - i, k);
}

/* The chunk's sum of squares of g * grad_scale (args.sumsq), after its step: the gradient
 * is still in cache, so this costs no memory traffic. */
ZL_CPU_VECTOR static double chunk_sumsq(const void *grad, zl_dtype gt, size_t n, float s)
{
    double sum = 0.0;
    if (gt == ZL_F32) {
        const float *g = grad;
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < n; i++) {
            float x = g[i] * s;
            sum += (double)x * x;
        }
    } else if (gt == ZL_BF16) {
        const uint16_t *h = grad;
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < n; i++) {
            float x = bf16_to_f32(h[i]) * s;
            sum += (double)x * x;
        }
    } else {
        const uint16_t *h = grad;
#pragma omp simd reduction(+ : sum)
        for (size_t i = 0; i < n; i++) {
            float x = f16_to_f32(h[i]) * s;
            sum += (double)x * x;
        }
    }
    return sum;
}

/* ---- the instruction set ------------------------------------------------------------- */

static int forced_isa = -1;

static bool isa_available(int level)
{
    switch (level) {
    case ZL_CPU_ADAMW_SCALAR: return true;
#ifdef ADAMW_X86
    case ZL_CPU_ADAMW_SSE: return true;
    case ZL_CPU_ADAMW_AVX: return __builtin_cpu_supports("avx");
    case ZL_CPU_ADAMW_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return false;
    }
}

int zl__cpu_adamw_isa(void)
{
    if (forced_isa >= 0) return forced_isa;
    for (int level = ZL_CPU_ADAMW_AVX512; level > ZL_CPU_ADAMW_SCALAR; level--)
        if (isa_available(level)) return level;
    return ZL_CPU_ADAMW_SCALAR;
}

bool zl__cpu_adamw_force_isa(int level)
{
    if (level < 0) {
        forced_isa = -1;
        return true;
    }
    if (!isa_available(level)) return false;
    forced_isa = level;
    return true;
}

const char *zl__cpu_adamw_isa_name(int level)
{
    static const char *const names[] = {"scalar", "SSE", "AVX", "AVX-512"};
    return level >= 0 && level <= ZL_CPU_ADAMW_AVX512 ? names[level] : "?";
}

void zl__cpu_adamw(const zl_ops *self, float *master, float *m, float *v, const void *grad,
                   zl_dtype grad_type, void *param_out, zl_dtype param_type, size_t n,
                   const zl_adamw_args *args)
{
    ZL_ASSERT(grad_type == ZL_F32 || grad_type == ZL_F16 || grad_type == ZL_BF16);
    ZL_ASSERT(!param_out || param_type == ZL_F32 || param_type == ZL_F16 || param_type == ZL_BF16);
    coeffs k = {
        .lr = args->lr,
        .b1 = args->beta1,
        .b2 = args->beta2,
        .one_minus_b1 = 1.0f - args->beta1,
        .one_minus_b2 = 1.0f - args->beta2,
        .eps = args->eps,
        .bc1 = args->bias_correction1,
        .bc2 = args->bias_correction2,
        .grad_scale = args->grad_scale,
        .wd = args->weight_decay,
        .adamw = args->adamw_mode,
    };
    int isa = zl__cpu_adamw_isa();
    size_t gsz = zl_dtype_nbytes(grad_type), psz = param_out ? zl_dtype_nbytes(param_type) : 0;
    size_t nchunks = (n + ZL_CPU_CHUNK - 1) / ZL_CPU_CHUNK;
    /* per-thread partial sums, added in thread order: the same total whatever the timing */
    double partial[ZL_CPU_MAX_THREADS];
    int maxth = omp_get_max_threads(), nth = 1;
    if (maxth > ZL_CPU_MAX_THREADS) maxth = ZL_CPU_MAX_THREADS;
#pragma omp parallel num_threads(maxth) if (n >= ZL_CPU_PAR_MIN)
    {
        double sum = 0.0;
#pragma omp for schedule(static)
        for (size_t c = 0; c < nchunks; c++) {
            size_t i = c * ZL_CPU_CHUNK, len = n - i < ZL_CPU_CHUNK ? n - i : ZL_CPU_CHUNK;
            const void *g = (const char *)grad + i * gsz;
            step_chunk(isa, master + i, m + i, v + i, g, grad_type,
                       param_out ? (char *)param_out + i * psz : NULL, param_type, len, &k);
            if (args->sumsq) sum += chunk_sumsq(g, grad_type, len, k.grad_scale);
        }
        partial[omp_get_thread_num()] = sum;
        if (omp_get_thread_num() == 0) nth = omp_get_num_threads();
    }
    if (args->sumsq)
        for (int t = 0; t < nth; t++) *args->sumsq += partial[t];
}
