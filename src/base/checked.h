/* Checked size arithmetic: element and byte counts computed from user input (model
 * dimensions, micro-batch, sequence) must not wrap. size_t is 64 bits here; these report
 * overflow instead of wrapping, or saturate at SIZE_MAX so that a chain of products
 * carries the overflow to one check at its end. */
#ifndef ZL_BASE_CHECKED_H
#define ZL_BASE_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* *out = a * b (a + b); false, *out unspecified, if it does not fit in size_t. */
static inline bool zl_checked_mul(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool zl_checked_add(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* a * b and a + b, SIZE_MAX when they would wrap (or when an operand already is
 * SIZE_MAX, the mark of an earlier overflow; a product with 0 stays 0). */
static inline size_t zl_sat_mul(size_t a, size_t b)
{
    size_t r;
    if (a == SIZE_MAX || b == SIZE_MAX) return a && b ? SIZE_MAX : 0;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
static inline size_t zl_sat_add(size_t a, size_t b)
{
    size_t r;
    return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

/* int64 a + b saturating at INT64_MAX (both non-negative). */
static inline int64_t zl_sat_add_i64(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

#endif
