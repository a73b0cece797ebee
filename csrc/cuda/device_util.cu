// GPU discovery for the CUDA module. With the CUDA runtime linked statically this
// loads and runs on a machine without a driver: cudaGetDeviceCount then returns an
// error code, which becomes a "no GPU" status rather than an exception.
#include <cuda_runtime.h>

#include "cuda/device_util.h"

namespace fastlayers::cuda {

GpuStatus query_gpus() {
  GpuStatus s;
  cudaRuntimeGetVersion(&s.runtime_version);
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess) s.driver_version = 0;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.reason = std::string("no GPU: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return s;
  }
  if (count == 0) {
    s.reason = "no GPU: the CUDA driver reports no devices";
    return s;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    s.devices.push_back(DeviceInfo{i, prop.name, prop.major, prop.minor, prop.totalGlobalMem,
                                   prop.multiProcessorCount});
  }
  s.usable = !s.devices.empty();
  if (!s.usable) s.reason = "no GPU: no device could be queried";
  return s;
}

}  // namespace fastlayers::cuda
