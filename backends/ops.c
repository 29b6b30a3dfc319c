#include "backends/ops.h"
#include "backends/discrete/discrete.h"

#include <string.h>

#include "zl_build.h"

const zl_ops *zl_ops_find(const char *name)
{
    static const zl_ops *const all[] = {&zl_ops_ref, &zl_ops_cpu, &zl_ops_meta, &zl_ops_discrete,
#ifdef ZL_HAVE_CUDA
                                        &zl_ops_cuda,
#endif
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}
