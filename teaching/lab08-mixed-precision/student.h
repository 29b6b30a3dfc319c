/* Lab 08: the functions you write (student.c). Read README.md first.
 * Every function returns 0 when done and writes its result through a pointer. */
#ifndef LAB08_STUDENT_H
#define LAB08_STUDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Task 1. fp32 -> bf16 bits (1 sign, 8 exponent, 7 mantissa bits): the top 16 bits of the
 * fp32 pattern, rounded to nearest, ties to even, on the 16 bits dropped. A carry out of
 * the mantissa goes into the exponent (up to inf). NaN stays NaN: the top 16 bits with
 * the quiet bit (0x0040) set, sign and top payload kept. Graded bitwise against the
 * library's zl_f32_to_bf16. */
int f32_to_bf16(float x, uint16_t *out);

/* Task 2. fp32 -> fp16 bits (1 sign, 5 exponent (bias 15), 10 mantissa bits): round to
 * nearest, ties to even. Past the largest finite half (65504, after rounding): inf.
 * Results below 2^-14 are subnormals (units of 2^-24), rounded the same way; below half
 * of 2^-24: signed zero. inf stays inf. NaN: sign | 0x7c00 | 0x0200 | (mantissa >> 13)
 * (quiet, top payload bits kept). Graded bitwise against zl_f32_to_f16. */
int f32_to_f16(float x, uint16_t *out);

/* Task 3. DeepSpeed's dynamic loss scaler as the ZeRO optimizers use it
 * (DynamicLossScaler with hysteresis). Configuration fields never change; update changes
 * the state fields. */
typedef struct lab08_scaler {
    /* configuration (the "fp16" block) */
    int64_t window;              /* loss_scale_window */
    int64_t hysteresis;          /* hysteresis (delayed shift), >= 1 */
    bool consecutive_hysteresis; /* consecutive_hysteresis */
    double min_scale;            /* min_loss_scale */
    /* state */
    double scale;                /* the loss scale for the next step; starts at
                                  * 2^initial_scale_power */
    int64_t cur_hysteresis;      /* starts at hysteresis */
    int64_t cur_iter;            /* updates so far, starts at 0 */
    int64_t last_overflow_iter;  /* cur_iter of the last overflow, starts at -1 */
} lab08_scaler;

/* Record one optimizer step's outcome: overflow = some gradient was inf/nan. Sets *skip
 * (the step is skipped when it overflowed). When the scale must halve but is already
 * min_scale, sets *error (DeepSpeed raises "Current loss scale already at minimum") and
 * leaves the state unchanged; else *error = false. Returns 0. */
int scaler_update(lab08_scaler *s, bool overflow, bool *skip, bool *error);

/* Task 4. Of the n values x[i] that are not zero, the fraction whose x[i] * scale (in
 * fp32) becomes a (signed) zero in fp16; 0 when none is nonzero. */
int fp16_flush_fraction(const float *x, size_t n, float scale, double *out);

#endif
