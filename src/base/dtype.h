/* Element types and the exact conversions between them.
 *
 * Half-precision tensors are stored as 16-bit patterns and converted to f32 for
 * arithmetic. The conversions are the IEEE ones, bit for bit: round to nearest, ties to
 * even; values past the largest finite half round to infinity; f16 subnormals are kept;
 * NaN stays NaN (quieted, sign kept). So an fp16 gradient overflows here exactly where it
 * would on a GPU, and the loss scaler has real work to do. */
#ifndef ZL_BASE_DTYPE_H
#define ZL_BASE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#ifdef __cplusplus
extern "C" { /* the CUDA backend's .cu files call these too */
#endif

typedef enum zl_dtype {
    ZL_F32 = 0,
    ZL_F16 = 1,
    ZL_BF16 = 2,
    ZL_I32 = 3, /* token ids in memory */
    ZL_U16 = 4, /* token ids in llm.c shard files */
    ZL_F64 = 5, /* norms and statistics reduced across ranks in double precision */
    ZL_DTYPE_COUNT
} zl_dtype;

size_t zl_dtype_nbytes(zl_dtype dt);
const char *zl_dtype_name(zl_dtype dt); /* "f32", "f16", "bf16", "i32", "u16", "f64" */
/* Accepts our names and DeepSpeed/PyTorch spellings ("fp32", "float16", "bfloat16"). */
zl_status zl_dtype_parse(const char *name, zl_dtype *out);

uint16_t zl_f32_to_f16(float x);
float zl_f16_to_f32(uint16_t h);
uint16_t zl_f32_to_bf16(float x);
float zl_bf16_to_f32(uint16_t h);

/* Round an f32 through a 16-bit type and back (what storing and reloading does). */
static inline float zl_round_f16(float x) { return zl_f16_to_f32(zl_f32_to_f16(x)); }
static inline float zl_round_bf16(float x) { return zl_bf16_to_f32(zl_f32_to_bf16(x)); }

/* Element-wise conversion between any two float types (f32, f16, bf16); n elements. */
void zl_convert(void *dst, zl_dtype dst_type, const void *src, zl_dtype src_type, size_t n);

#ifdef __cplusplus
}
#endif

#endif
