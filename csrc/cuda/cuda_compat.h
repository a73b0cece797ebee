// The one header a .cu file includes for CUDA. Compiled by nvcc it is real CUDA; compiled
// by the host compiler with FASTLAYERS_CUDA_EMU defined, the same source runs on the CPU
// through the emulator of the CUDA execution model (cuda/emu/cuda_emu.h), which is how the
// kernels are tested on machines without a GPU.
//
// What a kernel source may use beyond plain C++ is listed in cuda/emu/cuda_emu.h. Three
// things are not written the CUDA way, two because the host compiler cannot parse them:
//
//   FL_LAUNCH(kernel, grid, block, shmem_bytes, stream, args...)   instead of  <<<...>>>
//   FL_DYNAMIC_SHARED(float, smem);                                 instead of  extern __shared__
//   FL_SHARED(float, tile, [32][33]);                               instead of  __shared__
//
// (The last one so that the emulator can fill each block's shared arrays with NaN, as a
// block's shared memory starts undefined on a GPU; alignment goes in front:
// alignas(16) FL_SHARED(float, As, [8][128]).)
//
// A template kernel is launched through a pointer, since a macro argument cannot hold
// the commas of a template argument list:
//
//   auto* kernel = &gemm_tile_kernel<64, 64, 8>;
//   FL_LAUNCH(kernel, grid, block, 0, stream, a, b, c, m, n, k);
//
// After a launch, check_launch("gemm", sizes) turns a failed launch (bad configuration,
// a kernel fault, or an emulator diagnostic) into a CudaError naming the op and sizes.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(FASTLAYERS_CUDA_EMU)
#include "cuda/emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#define FL_LAUNCH(kernel, grid, block, shmem, stream, ...) \
  kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#define FL_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#define FL_SHARED(type, name, ...) __shared__ type name __VA_ARGS__
#endif

namespace fastlayers::cuda {

// A CUDA runtime or launch failure; bound to Python's RuntimeError (MemoryError for an
// allocation failure, see OutOfMemory).
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// cudaErrorMemoryAllocation: the message says how many bytes were asked for.
class OutOfMemory : public CudaError {
 public:
  using CudaError::CudaError;
};

namespace detail {
inline std::string describe(cudaError_t err) {
  std::string s = cudaGetErrorName(err);
  s += ": ";
  s += cudaGetErrorString(err);
#if defined(FASTLAYERS_CUDA_EMU)
  const std::string diag = ::fl_emu::last_diagnostic();
  if (!diag.empty()) s += " [emulator: " + diag + "]";
#endif
  return s;
}
}  // namespace detail

// Throw CudaError "<op> (<sizes>): <error>" when a runtime call failed.
inline void check(cudaError_t err, const char* op, const std::string& sizes) {
  if (err == cudaSuccess) return;
  const std::string msg = std::string(op) + " (" + sizes + "): " + detail::describe(err);
  if (err == cudaErrorMemoryAllocation) throw OutOfMemory(msg);
  throw CudaError(msg);
}

// After FL_LAUNCH: the launch's own error (configuration, arguments). Asynchronous
// faults surface at the next synchronising call, as in CUDA.
inline void check_launch(const char* op, const std::string& sizes) {
  check(cudaGetLastError(), op, sizes);
}

// A stream-ordered allocation (cudaMallocAsync: freeing it with cudaFreeAsync on the same
// stream does not synchronise the device, unlike cudaFree) that throws OutOfMemory naming
// the op and the bytes asked for.
// The stream-ordered allocator's default pool hands its unused memory back to the driver
// at every synchronisation unless told to keep some (its release threshold is 0 by
// default): a workspace allocated anew after each synchronisation (a training step's loss
// read back, a benchmark's timed call) would then cost a driver allocation every time.
// Keep up to kPoolKeepBytes cached, set once per device on its first workspace.
inline constexpr uint64_t kPoolKeepBytes = uint64_t(2) << 30;  // 2 GiB

inline void keep_pool_memory() {
  static std::atomic<uint64_t> done{0};  // bit d: device d's pool is set
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    (void)cudaGetLastError();
    return;
  }
  const uint64_t bit = uint64_t(1) << dev;
  if (done.load(std::memory_order_relaxed) & bit) return;
  cudaMemPool_t pool = nullptr;
  uint64_t keep = kPoolKeepBytes;
  if (cudaDeviceGetDefaultMemPool(&pool, dev) != cudaSuccess ||
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) {
    (void)cudaGetLastError();  // a pool that cannot be tuned still allocates
  }
  done.fetch_or(bit);
}

template <typename T>
T* device_alloc(size_t count, const char* op, cudaStream_t stream) {
  keep_pool_memory();
  void* p = nullptr;
  const size_t bytes = count * sizeof(T);
  const cudaError_t err = cudaMallocAsync(&p, bytes, stream);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error state
    check(err, op, "workspace of " + std::to_string(bytes) + " bytes");
  }
  return static_cast<T*>(p);
}

}  // namespace fastlayers::cuda
