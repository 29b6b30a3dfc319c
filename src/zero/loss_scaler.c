/* DeepSpeed's loss scaler (runtime/fp16/loss_scaler.py, fused_optimizer.py) as a state machine. */
#include "zero/loss_scaler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define ZL_SCALE_FACTOR 2.0 /* DeepSpeed's scale_factor; not configurable in the fp16 block */

/* Shortest of %.15g/%.17g that reads back exactly, so powers of two print as integers
 * (1048576, not 1.04858e+06) and the log shows the exact scale. */
static const char *fmt_scale(char *buf, size_t n, double x)
{
    snprintf(buf, n, "%.15g", x);
    if (strtod(buf, NULL) != x)
        snprintf(buf, n, "%.17g", x);
    return buf;
}

static void set_event(char *event, size_t event_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_event(char *event, size_t event_len, const char *fmt, ...)
{
    if (!event || event_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(event, event_len, fmt, ap);
    va_end(ap);
}

zl_status zl_loss_scaler_init(zl_loss_scaler *ls, zl_scaler_kind kind, double static_scale,
                              int64_t initial_scale_power, int64_t window, int64_t hysteresis,
                              bool consecutive_hysteresis, double min_scale)
{
    if (kind != ZL_SCALER_ZERO && kind != ZL_SCALER_FP16_OPTIMIZER)
        return zl_errorf(ZL_ERR_INVALID, "loss scaler: unknown kind %d", (int)kind);
    if (!isfinite(static_scale) || static_scale < 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "fp16.loss_scale must be a finite number >= 0 (0 = dynamic), got %g",
                         static_scale);
    *ls = (zl_loss_scaler){
        .dynamic = static_scale == 0,
        .kind = kind,
        .min_scale = min_scale,
        .window = window,
        .hysteresis = kind == ZL_SCALER_ZERO ? hysteresis : 1,
        .consecutive_hysteresis = kind == ZL_SCALER_ZERO && consecutive_hysteresis,
        .cur_scale = static_scale,
        .cur_iter = 0,
        .last_overflow_iter = -1,
    };
    ls->cur_hysteresis = ls->hysteresis;
    if (!ls->dynamic)
        return ZL_OK;

    if (window <= 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "fp16.loss_scale_window must be > 0 with dynamic loss scaling, got "
                         "%lld",
                         (long long)window);
    if (!(min_scale > 0) || !isfinite(min_scale))
        return zl_errorf(ZL_ERR_CONFIG,
                         "fp16.min_loss_scale must be > 0 with dynamic loss scaling, got %g",
                         min_scale);
    if (kind == ZL_SCALER_ZERO && hysteresis < 1)
        return zl_errorf(ZL_ERR_CONFIG,
                         "fp16.hysteresis must be >= 1 (1 = halve on every overflow), got %lld",
                         (long long)hysteresis);
    /* ldexp stays exact for powers of two; outside the double range the scale is useless. */
    double init = ldexp(1.0, (int)(initial_scale_power > 2000    ? 2000
                                    : initial_scale_power < -2000 ? -2000
                                                                  : initial_scale_power));
    if (!isfinite(init) || init < 0x1p-1022)
        return zl_errorf(ZL_ERR_CONFIG,
                         "fp16.initial_scale_power %lld gives a loss scale outside the double "
                         "range; use a value such as 16 (the default)",
                         (long long)initial_scale_power);
    ls->cur_scale = init;
    return ZL_OK;
}

/* Overflow at a dynamic scale: hysteresis first (ZeRO kind), then halve. */
static zl_status on_overflow(zl_loss_scaler *ls, char *event, size_t event_len)
{
    char a[40], b[40];
    double prev = ls->cur_scale;
    if (ls->kind == ZL_SCALER_FP16_OPTIMIZER) {
        ls->cur_scale = fmax(prev / ZL_SCALE_FACTOR, ls->min_scale);
        set_event(event, event_len,
                  "Grad overflow on iteration %lld. Reducing dynamic loss scale from %s to %s. "
                  "Overflow detected. Skipping step.",
                  (long long)ls->cur_iter, fmt_scale(a, sizeof a, prev),
                  fmt_scale(b, sizeof b, ls->cur_scale));
    } else if (ls->hysteresis == 1 || ls->cur_hysteresis == 1) {
        if (prev == ls->min_scale) {
            set_event(event, event_len,
                      "Current loss scale already at minimum - cannot decrease scale anymore. "
                      "Exiting run.");
            return zl_errorf(ZL_ERR_TRAINING,
                             "Current loss scale already at minimum - cannot decrease scale "
                             "anymore. Exiting run. (gradient overflow at iteration %lld with "
                             "loss scale %s = fp16.min_loss_scale; lower min_loss_scale or find "
                             "the source of the inf/nan gradients)",
                             (long long)ls->cur_iter, fmt_scale(a, sizeof a, prev));
        }
        ls->cur_scale = fmax(prev / ZL_SCALE_FACTOR, ls->min_scale);
        set_event(event, event_len,
                  "OVERFLOW! Rank 0 Skipping step. Attempted loss scale: %s, reducing to %s",
                  fmt_scale(a, sizeof a, prev), fmt_scale(b, sizeof b, ls->cur_scale));
    } else {
        /* The scale holds; cur_hysteresis is not refilled when the scale later drops. */
        set_event(event, event_len,
                  "OVERFLOW! Rank 0 Skipping step. Attempted loss scale: %s, but hysteresis "
                  "is %lld. Reducing hysteresis to %lld",
                  fmt_scale(a, sizeof a, prev), (long long)ls->cur_hysteresis,
                  (long long)(ls->cur_hysteresis - 1));
        ls->cur_hysteresis -= 1;
    }
    ls->last_overflow_iter = ls->cur_iter;
    return ZL_OK;
}

/* Clean step at a dynamic scale: maybe refill hysteresis, maybe grow. */
static void on_clean(zl_loss_scaler *ls, char *event, size_t event_len)
{
    char a[40], b[40];
    bool refilled = false;
    if (ls->consecutive_hysteresis && ls->cur_hysteresis != ls->hysteresis) {
        ls->cur_hysteresis = ls->hysteresis;
        refilled = true;
        set_event(event, event_len, "Consecutive hysteresis is enabled. Restoring hysteresis to %lld",
                  (long long)ls->hysteresis);
    }
    int64_t stable = ls->cur_iter - ls->last_overflow_iter - 1;
    if (stable > 0 && stable % ls->window == 0) {
        double prev = ls->cur_scale;
        ls->cur_hysteresis = ls->hysteresis;
        ls->cur_scale = prev * ZL_SCALE_FACTOR;
        set_event(event, event_len,
                  "%sNo overflow for %lld iterations. Increasing loss scale from %s to %s",
                  refilled ? "Consecutive hysteresis is enabled. Restoring hysteresis. " : "",
                  (long long)ls->window, fmt_scale(a, sizeof a, prev),
                  fmt_scale(b, sizeof b, ls->cur_scale));
    }
}

zl_status zl_loss_scaler_update(zl_loss_scaler *ls, bool overflow, bool *skip, char *event,
                                size_t event_len)
{
    if (skip)
        *skip = overflow;
    set_event(event, event_len, "%s", "");
    if (!ls->dynamic) {
        if (overflow) {
            char a[40];
            set_event(event, event_len,
                      "Grad overflow on iteration %lld. Using static loss scale of %s. "
                      "Skipping step.",
                      (long long)ls->cur_iter, fmt_scale(a, sizeof a, ls->cur_scale));
        }
    } else if (overflow) {
        zl_status st = on_overflow(ls, event, event_len);
        if (st != ZL_OK)
            return st;
    } else {
        on_clean(ls, event, event_len);
    }
    ls->cur_iter += 1;
    return ZL_OK;
}
