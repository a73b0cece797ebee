// A workspace of the CUDA launchers (host code), allocated and freed in the order of the
// launch's stream (cudaMallocAsync / cudaFreeAsync: no device-wide synchronisation per
// call), freed on every path out.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// `count` elements of T on the device (none, p == nullptr, when count <= 0); an allocation
// failure throws CudaError naming `op`.
template <typename T>
struct DeviceBuffer {
  T* p = nullptr;
  cudaStream_t stream;
  DeviceBuffer(int64_t count, const char* op, cudaStream_t s) : stream(s) {
    if (count > 0) p = device_alloc<T>(static_cast<size_t>(count), op, stream);
  }
  ~DeviceBuffer() {
    if (p != nullptr) cudaFreeAsync(p, stream);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace fastlayers::cuda
