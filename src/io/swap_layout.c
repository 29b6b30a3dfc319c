/* DeepSpeed's swap folder layout (partitioned_param_swapper.py, optimizer_utils.py). */
#include "io/swap_layout.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

static zl_status put(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static zl_status put(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return zl_errorf(ZL_ERR_INVALID, "swap path longer than %zu bytes", cap);
    return ZL_OK;
}

/* PyTorch's name of the dtype (str(torch.float16).split(".")[1]). */
static const char *torch_name(zl_dtype dtype)
{
    switch (dtype) {
    case ZL_F32: return "float32";
    case ZL_F16: return "float16";
    case ZL_BF16: return "bfloat16";
    default: return NULL;
    }
}

zl_status zl_swap_param_subdir(char *out, size_t cap, zl_dtype dtype, int rank)
{
    const char *name = torch_name(dtype);
    if (!name)
        return zl_errorf(ZL_ERR_INVALID, "parameters of dtype %s cannot be swapped to NVMe "
                                         "(float32, float16 or bfloat16 only)",
                         zl_dtype_name(dtype));
    return put(out, cap, "zero_stage_3/%sparams/rank%d", name, rank);
}

zl_status zl_swap_optimizer_subdir(char *out, size_t cap, int rank)
{
    return put(out, cap, "zero_stage_3/optimizer/rank%d", rank);
}

zl_status zl_swap_param_file_name(char *out, size_t cap, int64_t id)
{
    return put(out, cap, "%" PRId64 "_param.tensor.swp", id);
}

zl_status zl_swap_optimizer_file_name(char *out, size_t cap, int64_t id)
{
    return put(out, cap, "%" PRId64 ".tensor.swp", id);
}

zl_status zl_swap_gradient_file_name(char *out, size_t cap, int64_t id, int64_t offset,
                                     int64_t numel)
{
    return put(out, cap, "%" PRId64 "_gradient_%" PRId64 "_%" PRId64 ".tensor.swp", id, offset,
               numel);
}
