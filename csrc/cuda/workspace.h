// A cudaMalloc'ed workspace of the CUDA launchers (host code), freed on every path out.
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
  DeviceBuffer(int64_t count, const char* op) {
    if (count > 0) p = device_alloc<T>(static_cast<size_t>(count), op);
  }
  ~DeviceBuffer() {
    if (p != nullptr) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace fastlayers::cuda
