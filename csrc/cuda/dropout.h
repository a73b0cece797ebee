// CUDA launchers of inverted dropout, with exactly the generator of cpu/dropout.h
// (SplitMix64's mix64 on a counter, two 32-bit uniforms per hash for elements 32 apart in
// blocks of 64), so the GPU keeps exactly the elements the CPU and the NumPy reference keep
// for the same (seed, p).
#pragma once

#include <cstdint>

#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// y (n) = keep(seed, i) ? x[i] / (1 - p) : 0 (0 everywhere when p == 1). y may alias x.
// ArgumentError unless p is in [0, 1].
void dropout_apply(float* y, const float* x, int64_t n, uint64_t seed, double p, cudaStream_t stream);

// keep (n bytes) = 1 where element i is kept, else 0.
void dropout_mask(uint8_t* keep, int64_t n, uint64_t seed, double p, cudaStream_t stream);

}  // namespace fastlayers::cuda
