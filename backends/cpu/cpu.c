/* The cpu backend's op table. Kernels live in the other files of this directory. */
#include "backends/ops.h"

const zl_ops zl_ops_cpu = {
    .name = "cpu",
};
