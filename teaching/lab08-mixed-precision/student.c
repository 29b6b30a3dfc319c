/* Lab 08: your code. Contracts in student.h; README.md explains the formats. Replace each
 * LAB_TODO(); with your code and return 0. */
#include <string.h>

#include "lab.h"
#include "student.h"

int f32_to_bf16(float x, uint16_t *out)
{
    /* Hints: memcpy the float into a uint32_t; NaN first (exponent all ones, mantissa not
     * zero); then add 0x7fff plus the lowest bit you keep, and keep the top 16 bits. */
    (void)x; (void)out;
    LAB_TODO();
}

int f32_to_f16(float x, uint16_t *out)
{
    /* Hints: split sign / exponent / mantissa; rebias the exponent (127 -> 15); handle
     * inf/NaN, too large, normal, subnormal (shift the mantissa with its implicit 1) and
     * too small. Round on the dropped bits: above half up, exactly half to even. */
    (void)x; (void)out;
    LAB_TODO();
}

int scaler_update(lab08_scaler *s, bool overflow, bool *skip, bool *error)
{
    /* Hints (README, "The dynamic loss scaler"): an overflow uses up hysteresis before it
     * halves the scale (never below min_scale; at min_scale it is an error); a clean step
     * may refill hysteresis (consecutive_hysteresis) and grows the scale x2 after `window`
     * clean steps since the last overflow. cur_iter advances on every update but an error. */
    (void)s; (void)overflow; (void)skip; (void)error;
    LAB_TODO();
}

int fp16_flush_fraction(const float *x, size_t n, float scale, double *out)
{
    /* Hint: your f32_to_f16, and the bits of a signed zero. */
    (void)x; (void)n; (void)scale; (void)out;
    LAB_TODO();
}
