// Grow-only, 64-byte aligned scratch memory for kernels.
//
// Kernels keep one ScratchBuffer per calling thread (thread_local), so steady-state
// calls allocate nothing: a fresh multi-megabyte malloc is an mmap, and every call would
// pay its page faults again. Take scratch before entering an OpenMP region: an
// allocation failure must throw in the calling thread, not inside the region.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace fastlayers {

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  // At least `count` floats, 64-byte aligned; previous contents are not kept when it grows.
  float* get(size_t count) {
    if (count > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data_ == nullptr) throw std::bad_alloc();
      capacity_ = count;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace fastlayers
