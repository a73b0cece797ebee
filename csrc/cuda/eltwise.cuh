// Device helpers shared by the element-wise CUDA families (activation, dropout, optim):
// the launch shape of their grid-stride loops, and loads / stores of a small group of
// consecutive floats as float4 vectors, with a scalar path for the partial last group
// (and for pointers that are not 16-byte aligned, e.g. a CuPy view at an odd offset).
//
// Included by .cu files only (it holds device code); the bindings see the host side
// through cuda/activation.h (get/set_eltwise_launch).
#pragma once

#include <cstdint>

#include "cuda/activation.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda::eltwise {

// True when every pointer is 16-byte aligned (float4 loads allowed); null counts as aligned.
inline bool aligned16() { return true; }
template <typename P, typename... Rest>
inline bool aligned16(const P* p, const Rest*... rest) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && aligned16(rest...);
}

// Blocks for `items` grid-stride work items (>= 1 item), capped by the launch shape.
inline dim3 grid_for(int64_t items) {
  const EltwiseLaunch shape = get_eltwise_launch();
  const int64_t blocks = (items + shape.threads - 1) / shape.threads;
  return dim3(static_cast<unsigned>(blocks < shape.max_blocks ? blocks : shape.max_blocks));
}
inline dim3 block_dim() { return dim3(static_cast<unsigned>(get_eltwise_launch().threads)); }

// First work item of this thread, and the stride of the grid-stride loop.
__device__ __forceinline__ int64_t first_item() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// v[0..G) = p[i..i+G) (G a multiple of 4); elements at or past n read as 0. With kVec
// (p 16-byte aligned, i a multiple of 4) a full group is G/4 float4 loads.
template <int G, bool kVec>
__device__ __forceinline__ void load_group(float (&v)[G], const float* p, int64_t i, int64_t n) {
  if (kVec && i + G <= n) {
#pragma unroll
    for (int h = 0; h < G / 4; ++h) {
      const float4 q = *reinterpret_cast<const float4*>(p + i + 4 * h);
      v[4 * h] = q.x;
      v[4 * h + 1] = q.y;
      v[4 * h + 2] = q.z;
      v[4 * h + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < G; ++k) v[k] = i + k < n ? p[i + k] : 0.0f;
  }
}

// p[i..i+G) = v[0..G), elements at or past n not written.
template <int G, bool kVec>
__device__ __forceinline__ void store_group(float* p, const float (&v)[G], int64_t i, int64_t n) {
  if (kVec && i + G <= n) {
#pragma unroll
    for (int h = 0; h < G / 4; ++h) {
      *reinterpret_cast<float4*>(p + i + 4 * h) =
          make_float4(v[4 * h], v[4 * h + 1], v[4 * h + 2], v[4 * h + 3]);
    }
  } else {
#pragma unroll
    for (int k = 0; k < G; ++k) {
      if (i + k < n) p[i + k] = v[k];
    }
  }
}

}  // namespace fastlayers::cuda::eltwise
