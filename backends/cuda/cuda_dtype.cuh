/* f32 <-> f16 / bf16 conversions for CUDA kernels, bit for bit base/dtype.c's.
 *
 * Why not cuda_fp16.h's __float2half_rn / __float2bfloat16_rn: they round to nearest
 * even (subnormals and overflow included), but a NaN comes back as the canonical 0x7fff,
 * where the host keeps the sign and the top payload bits (dtype.c). A 16-bit tensor
 * written on the GPU must have the bits ref writes (checksums, checkpoints, the tests'
 * bit-equality), so these are dtype.c's integer recipes, line for line; they cost a few
 * integer instructions per element in kernels that are memory bound.
 *
 * The header is also plain C (no CUDA keywords outside __CUDACC__): tests/unit/
 * check_cuda_dtype.c compiles it on the host and compares it with dtype.c, so the
 * conversions the GPU runs are tested on a machine without one. */
#ifndef ZL_BACKENDS_CUDA_CUDA_DTYPE_CUH
#define ZL_BACKENDS_CUDA_CUDA_DTYPE_CUH

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define ZL_HD_STATIC static __host__ __device__ __forceinline__
#else
#include <string.h>
#define ZL_HD_STATIC static inline
#endif

ZL_HD_STATIC uint32_t zl__hd_f32_bits(float x)
{
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
#endif
}

ZL_HD_STATIC float zl__hd_bits_f32(uint32_t u)
{
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x;
    memcpy(&x, &u, 4);
    return x;
#endif
}

/* dtype.c's zl_f32_to_f16: round to nearest even, overflow to inf, subnormals kept, NaN
 * quieted with sign and top payload bits. */
ZL_HD_STATIC uint16_t zl__hd_f32_to_f16(float x)
{
    uint32_t u = zl__hd_f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t man = u & 0x7fffffu;

    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));

    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);

    if (e <= 0) {
        if (e < -10) return sign;
        uint32_t m = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = 1u << (shift - 1);
        uint32_t rest = m & ((1u << shift) - 1);
        uint32_t h = m >> shift;
        if (rest > half || (rest == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }

    uint32_t h = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

/* dtype.c's zl_f16_to_f32 (exact; a NaN keeps its payload). */
ZL_HD_STATIC float zl__hd_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return zl__hd_bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return zl__hd_bits_f32(sign);
        float v = (float)man * 0x1p-24f; /* subnormal: man * 2^-24, exact in f32 */
        return sign ? -v : v;
    }
    return zl__hd_bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

/* dtype.c's zl_f32_to_bf16: the top 16 bits rounded to nearest even; NaN quieted first
 * (the rounding addition could carry a NaN's payload into inf). */
ZL_HD_STATIC uint16_t zl__hd_f32_to_bf16(float x)
{
    uint32_t u = zl__hd_f32_bits(x);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

ZL_HD_STATIC float zl__hd_bf16_to_f32(uint16_t h) { return zl__hd_bits_f32((uint32_t)h << 16); }

/* The value of element i of x stored as t (0 = f32, 1 = f16, 2 = bf16: zl_dtype's values),
 * widened exactly; and its storing, rounded as zl_convert rounds. */
ZL_HD_STATIC float zl__hd_load(const void *x, int t, size_t i)
{
    if (t == 1) return zl__hd_f16_to_f32(((const uint16_t *)x)[i]);
    if (t == 2) return zl__hd_bf16_to_f32(((const uint16_t *)x)[i]);
    return ((const float *)x)[i];
}

ZL_HD_STATIC void zl__hd_store(void *x, int t, size_t i, float v)
{
    if (t == 1) ((uint16_t *)x)[i] = zl__hd_f32_to_f16(v);
    else if (t == 2) ((uint16_t *)x)[i] = zl__hd_f32_to_bf16(v);
    else ((float *)x)[i] = v;
}

/* x rounded through t and back (zl_round_f16 / zl_round_bf16; f32 unchanged). */
ZL_HD_STATIC float zl__hd_round(float x, int t)
{
    if (t == 1) return zl__hd_f16_to_f32(zl__hd_f32_to_f16(x));
    if (t == 2) return zl__hd_bf16_to_f32(zl__hd_f32_to_bf16(x));
    return x;
}

#endif
