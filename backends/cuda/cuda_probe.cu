#include "backends/cuda/cuda_probe.h"

#include <cuda_runtime.h>
#include <stdlib.h>

__global__ static void add_one(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}

extern "C" int zl_cuda_device_count(void)
{
    int n = 0;
    /* No driver, or a driver without devices, is "zero devices", not an error. */
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" zl_status zl_cuda_selftest(int n)
{
    if (zl_cuda_device_count() == 0) return zl_errorf(ZL_ERR_NOT_FOUND, "no CUDA device");
    float *host = (float *)malloc((size_t)n * sizeof(float)), *dev = NULL;
    if (!host) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    for (int i = 0; i < n; i++) host[i] = (float)i;
    cudaError_t err = cudaMalloc(&dev, (size_t)n * sizeof(float));
    if (err == cudaSuccess) err = cudaMemcpy(dev, host, (size_t)n * sizeof(float), cudaMemcpyHostToDevice);
    if (err == cudaSuccess) {
        add_one<<<(n + 255) / 256, 256>>>(dev, n);
        err = cudaGetLastError();
    }
    if (err == cudaSuccess) err = cudaMemcpy(host, dev, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(dev);
    zl_status st = ZL_OK;
    if (err != cudaSuccess) {
        st = zl_errorf(ZL_ERR_DEVICE, "CUDA self-test failed: %s", cudaGetErrorString(err));
    } else {
        for (int i = 0; i < n; i++)
            if (host[i] != (float)i + 1.0f) {
                st = zl_errorf(ZL_ERR_DEVICE, "CUDA self-test: element %d is %g, expected %g", i,
                               host[i], (double)i + 1.0);
                break;
            }
    }
    free(host);
    return st;
}
