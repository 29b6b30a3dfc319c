/* The 16-bit conversions of base/dtype.c, bit for bit, written without branches so that
 * the loops that use them vectorize (every case is computed and the right one selected;
 * the f16 subnormal cases use an f32 addition or subtraction whose own rounding, to
 * nearest even, does the work). Shared by the cpu backend's casts, drains and AdamW. */
#ifndef ZL_BACKENDS_CPU_CPU_HALF_H
#define ZL_BACKENDS_CPU_CPU_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* f32 -> f16. a = |x| bits; thresholds are f32 bit patterns:
 *   a >  0x7f800000  NaN          -> 0x7e00 | top 9 payload bits
 *   a >= 0x47800000  >= 2^16      -> inf (also inf itself)
 *   a <  0x38800000  < 2^-14      -> f16 subnormal or zero: add 0.5, whose ulp is 2^-24
 *                                    (the f16 subnormal step), so the f32 addition rounds
 *                                    |x| to a multiple of 2^-24, ties to even; the low
 *                                    mantissa bits of the sum are then that multiple
 *   otherwise        normal       -> rebias the exponent (-112 << 23) and round the 13
 *                                    dropped bits: + 0xfff + the lowest kept bit carries
 *                                    exactly when above half, or at half with an odd
 *                                    neighbour; a carry into the exponent (even to inf,
 *                                    from 65520 on) is the correct result */
static inline uint16_t f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    uint32_t nan = 0x7e00u | ((a & 0x7fffffu) >> 13);
    uint32_t sub = f32_bits(bits_f32(a) + 0.5f) - 0x3f000000u;
    uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    uint32_t h = a > 0x7f800000u    ? nan
                 : a >= 0x47800000u ? 0x7c00u
                 : a < 0x38800000u  ? sub
                                    : normal;
    return (uint16_t)(h | sign);
}

/* f16 -> f32: move exponent and mantissa up 13 bits and rebias by 112 << 23; inf/NaN get
 * the rest of the way to an all-ones exponent; for zero and subnormals, man * 2^-24 =
 * (1.man * 2^-14) - 2^-14, which is exact. */
static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t exp = o & 0x0f800000u;
    o += 112u << 23;
    o = exp == 0x0f800000u ? o + (112u << 23) : o;
    float sub = bits_f32(o + (1u << 23)) - 0x1p-14f;
    uint32_t r = exp == 0 ? f32_bits(sub) : o;
    return bits_f32(r | sign);
}

/* f32 -> bf16: keep the top half, rounding the low 16 bits to nearest even; a NaN keeps
 * its sign and top payload and is quieted (the rounding add could turn it into inf). */
static inline uint16_t f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    uint32_t nan = (u >> 16) | 0x40u;
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

static inline float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

#endif
