/* Lab 08: the reference solution (what the instructor shows afterwards). */
#include <math.h>
#include <string.h>

#include "lab.h"
#include "../lab08-mixed-precision/student.h"

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

int f32_to_bf16(float x, uint16_t *out)
{
    uint32_t u = bits_of(x);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) { /* NaN: quiet, keep sign */
        *out = (uint16_t)((u >> 16) | 0x40u);
        return 0;
    }
    /* Round to nearest even on the low 16 bits: 0x7fff rounds "above half" up; the kept
     * LSB adds the one more that turns an exact half up only when the LSB is odd. A carry
     * runs into the exponent, and from the largest finite value to inf, as it should. */
    u += 0x7fffu + ((u >> 16) & 1u);
    *out = (uint16_t)(u >> 16);
    return 0;
}

int f32_to_f16(float x, uint16_t *out)
{
    uint32_t u = bits_of(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu, man = u & 0x7fffffu;
    if (exp == 0xff) { /* inf stays inf, NaN stays a (quiet) NaN */
        *out = sign | 0x7c00u | (man ? (uint16_t)(0x200u | (man >> 13)) : 0);
        return 0;
    }
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) { /* 2^16 and above: inf even before rounding */
        *out = sign | 0x7c00u;
        return 0;
    }
    if (e <= 0) { /* subnormal or zero: in units of 2^-24 */
        if (e < -10) { /* below half of 2^-24 (and f32 subnormals): zero */
            *out = sign;
            return 0;
        }
        uint32_t m = man | 0x800000u, shift = (uint32_t)(14 - e);
        uint32_t half = 1u << (shift - 1), rest = m & ((1u << shift) - 1), h = m >> shift;
        if (rest > half || (rest == half && (h & 1))) h++; /* may become the smallest normal */
        *out = sign | (uint16_t)h;
        return 0;
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; /* the carry may reach inf */
    *out = sign | (uint16_t)h;
    return 0;
}

int scaler_update(lab08_scaler *s, bool overflow, bool *skip, bool *error)
{
    *skip = overflow;
    *error = false;
    if (overflow) {
        if (s->hysteresis == 1 || s->cur_hysteresis == 1) {
            if (s->scale == s->min_scale) { /* DeepSpeed raises; nothing is recorded */
                *error = true;
                return 0;
            }
            s->scale = fmax(s->scale / 2, s->min_scale);
        } else {
            s->cur_hysteresis -= 1; /* the scale holds this time */
        }
        s->last_overflow_iter = s->cur_iter;
    } else {
        if (s->consecutive_hysteresis) s->cur_hysteresis = s->hysteresis;
        int64_t stable = s->cur_iter - s->last_overflow_iter - 1;
        if (stable > 0 && stable % s->window == 0) {
            s->cur_hysteresis = s->hysteresis;
            s->scale *= 2;
        }
    }
    s->cur_iter += 1;
    return 0;
}

int fp16_flush_fraction(const float *x, size_t n, float scale, double *out)
{
    size_t nonzero = 0, flushed = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] == 0.0f) continue;
        nonzero++;
        uint16_t h;
        f32_to_f16(x[i] * scale, &h);
        if ((h & 0x7fffu) == 0) flushed++;
    }
    *out = nonzero ? (double)flushed / (double)nonzero : 0.0;
    return 0;
}
