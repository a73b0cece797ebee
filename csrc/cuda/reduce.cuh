// Row reductions shared by the loss and norm CUDA families: their launch shape (256-thread
// blocks, one warp per row or one block per row) and the warp / block sums they use.
//
// Included by .cu files only (device code). The block sums keep their operands in static
// __shared__ arrays: every thread of the block must call them (they hold barriers).
#pragma once

#include <cstdint>

#include "cuda/cuda_compat.h"

namespace fastlayers::cuda::reduce {

constexpr int kThreads = 256;          // threads per block of every row-reduction launch
constexpr int64_t kMaxBlocks = 8192;   // grid-stride beyond this many blocks
constexpr unsigned kFullMask = 0xffffffffu;

// Blocks of `threads` for `total` grid-stride items: at least 1, at most kMaxBlocks.
inline unsigned grid_for(int64_t total, int threads = kThreads) {
  int64_t blocks = (total + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// Blocks for one warp per row (kThreads / 32 rows per block) or one block per row.
inline unsigned row_grid(int64_t rows, bool block_per_row) {
  const int64_t blocks = block_per_row ? rows : (rows + kThreads / 32 - 1) / (kThreads / 32);
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// Sum of v over the full warp; every lane holds it.
__device__ __forceinline__ float warp_allsum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Sum of v over the group (the warp, or the block when kBlock); every thread gets it, and
// every thread adds the warp sums in the same order (identical results).
// blockDim.x is a multiple of 32.
template <bool kBlock>
__device__ float group_sum(float v) {
  v = warp_allsum(v);
  if constexpr (kBlock) {
    FL_SHARED(float, part, [32]);
    const int nw = blockDim.x / 32;
    __syncthreads();  // earlier readers of part[] are done
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    v = part[0];
    for (int w = 1; w < nw; ++w) v += part[w];
  }
  return v;
}

// Block sum of doubles through a shared-memory tree (any blockDim.x <= 1024, fixed order);
// every thread gets it.
__device__ inline double block_sum_double(double v) {
  FL_SHARED(double, buf, [1024]);
  const int t = threadIdx.x;
  __syncthreads();  // earlier readers of buf[0] are done
  buf[t] = v;
  __syncthreads();
  for (int half = 512; half > 0; half >>= 1) {
    if (t < half && t + half < static_cast<int>(blockDim.x)) buf[t] += buf[t + half];
    __syncthreads();
  }
  return buf[0];
}

}  // namespace fastlayers::cuda::reduce
