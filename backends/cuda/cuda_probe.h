/* The CUDA backend's first brick: find devices, and prove the toolchain end to end by
 * running one kernel. The op table (cuBLAS + kernels) and the NCCL communicator follow
 * with the CUDA issue; until then `--backend=cuda` is not offered. */
#ifndef ZL_BACKENDS_CUDA_PROBE_H
#define ZL_BACKENDS_CUDA_PROBE_H

#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices (0 when there is no driver or no device). */
int zl_cuda_device_count(void);

/* Run a kernel that adds 1 to n floats on device 0 and check the result on the host.
 * ZL_ERR_NOT_FOUND without a device; ZL_ERR_DEVICE with CUDA's message on failure. */
zl_status zl_cuda_selftest(int n);

#ifdef __cplusplus
}
#endif

#endif
