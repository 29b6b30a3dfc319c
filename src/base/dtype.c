#include "base/dtype.h"

#include <string.h>
#include <strings.h>

#include "base/log.h"

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

size_t zl_dtype_nbytes(zl_dtype dt)
{
    switch (dt) {
    case ZL_F32: case ZL_I32: return 4;
    case ZL_F16: case ZL_BF16: case ZL_U16: return 2;
    case ZL_F64: return 8;
    default: ZL_ASSERT(!"bad dtype"); return 0;
    }
}

const char *zl_dtype_name(zl_dtype dt)
{
    static const char *names[ZL_DTYPE_COUNT] = {"f32", "f16", "bf16", "i32", "u16", "f64"};
    return (unsigned)dt < ZL_DTYPE_COUNT ? names[dt] : "?";
}

zl_status zl_dtype_parse(const char *name, zl_dtype *out)
{
    static const struct { const char *name; zl_dtype dt; } table[] = {
        {"f32", ZL_F32}, {"fp32", ZL_F32}, {"float32", ZL_F32}, {"float", ZL_F32},
        {"f16", ZL_F16}, {"fp16", ZL_F16}, {"float16", ZL_F16}, {"half", ZL_F16},
        {"bf16", ZL_BF16}, {"bfloat16", ZL_BF16},
        {"i32", ZL_I32}, {"int32", ZL_I32}, {"u16", ZL_U16}, {"uint16", ZL_U16},
        {"f64", ZL_F64}, {"fp64", ZL_F64}, {"float64", ZL_F64}, {"double", ZL_F64},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcasecmp(name, table[i].name)) {
            *out = table[i].dt;
            return ZL_OK;
        }
    return zl_errorf(ZL_ERR_INVALID, "unknown dtype '%s' (expected fp32, fp16 or bf16)", name);
}

/* f32 -> f16. f32: 1 sign, 8 exponent (bias 127), 23 mantissa bits; f16: 1, 5 (bias 15),
 * 10. The 13 (or more, for subnormals) dropped mantissa bits decide the rounding: above
 * half an ulp rounds up, below rounds down, exactly half rounds to the even neighbour. A
 * carry out of the mantissa bumps the exponent, which is how 65520 becomes infinity. */
uint16_t zl_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t man = u & 0x7fffffu;

    if (exp == 0xff) /* inf stays inf; NaN becomes a quiet NaN with the top payload bits */
        return sign | 0x7c00u | (man ? 0x200u | (uint16_t)(man >> 13) : 0);

    int32_t e = (int32_t)exp - 127 + 15; /* rebias */
    if (e >= 0x1f) return sign | 0x7c00u; /* too large even before rounding: inf */

    if (e <= 0) {
        /* Result is subnormal (or zero): shift the mantissa, with its implicit 1, right
         * so that it is in units of 2^-24, the smallest f16 subnormal. */
        if (e < -10) return sign; /* below half the smallest subnormal: rounds to 0 */
        uint32_t m = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e); /* 13 + (1 - e) */
        uint32_t half = 1u << (shift - 1);
        uint32_t rest = m & ((1u << shift) - 1);
        uint32_t h = m >> shift;
        if (rest > half || (rest == half && (h & 1))) h++; /* may carry into the exponent: fine */
        return sign | (uint16_t)h;
    }

    uint32_t h = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; /* carry may reach inf: correct */
    return sign | (uint16_t)h;
}

float zl_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* Subnormal: value = man * 2^-24, exact in f32. */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

/* f32 -> bf16 keeps the top 16 bits, rounded to nearest even on the low 16. Adding
 * 0x7fff plus the lowest kept bit does the tie-to-even; the carry handles overflow to
 * inf. NaN must be caught first: the addition could turn a NaN payload into inf. */
uint16_t zl_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu))
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN, sign kept */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float zl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

void zl_convert(void *dst, zl_dtype dst_type, const void *src, zl_dtype src_type, size_t n)
{
    ZL_ASSERT(dst_type == ZL_F32 || dst_type == ZL_F16 || dst_type == ZL_BF16);
    ZL_ASSERT(src_type == ZL_F32 || src_type == ZL_F16 || src_type == ZL_BF16);
    if (dst_type == src_type) {
        memmove(dst, src, n * zl_dtype_nbytes(dst_type));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float v;
        switch (src_type) {
        case ZL_F16: v = zl_f16_to_f32(((const uint16_t *)src)[i]); break;
        case ZL_BF16: v = zl_bf16_to_f32(((const uint16_t *)src)[i]); break;
        default: v = ((const float *)src)[i]; break;
        }
        switch (dst_type) {
        case ZL_F16: ((uint16_t *)dst)[i] = zl_f32_to_f16(v); break;
        case ZL_BF16: ((uint16_t *)dst)[i] = zl_f32_to_bf16(v); break;
        default: ((float *)dst)[i] = v; break;
        }
    }
}
