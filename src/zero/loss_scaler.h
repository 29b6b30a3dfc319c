/* The fp16 loss scaler: DeepSpeed's static and dynamic loss scaling as a pure state machine.
 *
 * The precision policy (zero/precision.h) multiplies the loss by cur_scale before
 * backward, checks the gradients for inf/nan (agreed over all ranks), and calls
 * zl_loss_scaler_update() once per optimizer step with the outcome. The scaler says whether the step must be skipped and adjusts the
 * scale for the next step. Nothing here touches tensors.
 *
 * Two dynamic variants, as in DeepSpeed:
 *   ZL_SCALER_ZERO           DynamicLossScaler used by the ZeRO 1/2/3 optimizers: hysteresis
 *                            (an overflow first uses up hysteresis, then halves the scale),
 *                            and an error when an overflow happens at min_scale.
 *   ZL_SCALER_FP16_OPTIMIZER FP16_Optimizer (no ZeRO): no hysteresis, every overflow halves
 *                            the scale, clamped at min_scale, never an error.
 * Both grow the scale x2 after `window` consecutive clean steps since the last overflow:
 *     stable = cur_iter - last_overflow_iter - 1;  grow if stable > 0 && stable % window == 0
 * and advance cur_iter on every update (overflow or not).
 *
 * A static scaler (static_scale > 0) never changes its scale; an overflow still skips the step.
 *
 * Checkpointing: the struct is plain data and can be saved and restored as is. The state
 * that changes during training is cur_scale, cur_hysteresis, cur_iter and last_overflow_iter;
 * the other fields are the configuration (dynamic, kind, min_scale, window, hysteresis,
 * consecutive_hysteresis) and never change after init. */
#ifndef ZL_ZERO_LOSS_SCALER_H
#define ZL_ZERO_LOSS_SCALER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum zl_scaler_kind {
    ZL_SCALER_ZERO = 0,           /* DeepSpeed's ZeRO optimizers (DynamicLossScaler) */
    ZL_SCALER_FP16_OPTIMIZER = 1, /* non-ZeRO FP16_Optimizer: no hysteresis, clamps at min */
} zl_scaler_kind;

typedef struct zl_loss_scaler {
    /* configuration */
    bool dynamic;                /* false: static scale */
    zl_scaler_kind kind;
    double min_scale;            /* min_loss_scale (dynamic only) */
    int64_t window;              /* loss_scale_window (dynamic only) */
    int64_t hysteresis;          /* delayed shift; 1 for FP16_OPTIMIZER (no hysteresis) */
    bool consecutive_hysteresis; /* refill cur_hysteresis after every clean step */
    /* state */
    double cur_scale;           /* the loss scale to use for the next step */
    int64_t cur_hysteresis;     /* overflows left before the scale halves (ZeRO kind) */
    int64_t cur_iter;           /* number of updates so far */
    int64_t last_overflow_iter; /* cur_iter of the last overflow, -1 if none */
} zl_loss_scaler;

/* Set up a scaler. static_scale > 0 selects a static scale (the other arguments are then
 * ignored); static_scale == 0 selects dynamic scaling starting at 2^initial_scale_power.
 * Validation as DeepSpeed's fp16 block: static_scale a finite number >= 0; when dynamic,
 * window > 0 and min_scale > 0; and (zerolab) hysteresis >= 1 for the ZeRO kind and an
 * initial scale that is a finite positive double. Failures return ZL_ERR_CONFIG naming the
 * fp16 config key. */
zl_status zl_loss_scaler_init(zl_loss_scaler *ls, zl_scaler_kind kind, double static_scale,
                              int64_t initial_scale_power, int64_t window, int64_t hysteresis,
                              bool consecutive_hysteresis, double min_scale);

/* Record one optimizer step's outcome (overflow = some gradient was inf/nan on some rank).
 * *skip (optional) is set to `overflow`: an overflowing step is always skipped, static or
 * dynamic. If event/event_len are given, event receives a one-line description of what
 * changed in DeepSpeed's wording ("OVERFLOW! Rank 0 Skipping step. Attempted loss scale: A,
 * reducing to B", "... but hysteresis is H. Reducing hysteresis to H-1", a growth line), or
 * "" when nothing changed.
 * Returns ZL_OK, or ZL_ERR_TRAINING with DeepSpeed's message ("Current loss scale already at
 * minimum - cannot decrease scale anymore. Exiting run.") when the ZeRO kind must halve a
 * scale that is already min_scale; the state is then left unchanged, as in DeepSpeed where
 * the exception leaves the scaler before it records the overflow. */
zl_status zl_loss_scaler_update(zl_loss_scaler *ls, bool overflow, bool *skip, char *event,
                                size_t event_len);

#endif
