// Inverted dropout with a counter-based random generator.
//
//   y[i] = keep(seed, i) ? x[i] * scale : 0,   scale = 1 / (1 - p)  (0 when p == 1)
//
// Whether element i (its index in the C-order flattening) is kept depends only on
// (seed, i): the same mask for any thread count, SIMD path or chunking, and a CUDA
// kernel (or the NumPy reference) can reproduce it bit for bit. The generator is
// SplitMix64's output function applied to a counter; each 64-bit hash gives the
// uniform 32-bit numbers of two elements 32 apart in a block of 64:
//
//   key  = mix64(seed ^ 0x6A09E667F3BCC909)
//   h_j  = mix64(key + (j + 1) * 0x9E3779B97F4A7C15)        (mod 2^64)
//   u_i  = low 32 bits of h_j if r < 32, high 32 bits if r >= 32,
//          where b = i / 64, r = i % 64, j = 32 b + r % 32
//   keep = u_i >= floor(p * 2^32)
//   mix64(z): z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
//
// (Halves 32 apart rather than neighbours: the vector loop then stores each half
// contiguously; interleaving them cost twice the time of the whole hash.)
//
// Backward is the same map applied to dout (dx = dout * mask * scale), so nothing but
// the seed needs to be kept between forward and backward.
#pragma once

#include <cstdint>

namespace fastlayers {

// The drop threshold floor(p * 2^32) (2^32 when p == 1: nothing kept), p in [0, 1].
uint64_t dropout_threshold(double p);
// The float32 scale of kept elements: 1 / (1 - p) rounded once, or 0 when p == 1.
float dropout_scale(double p);

// y (n) = x (n) with element i kept (times scale) or zeroed. y may alias x.
void dropout_apply(float* y, const float* x, int64_t n, uint64_t seed, double p);

// keep (n bytes) = 1 where element i is kept, else 0 (for tests and debugging).
void dropout_mask(uint8_t* keep, int64_t n, uint64_t seed, double p);

namespace dropout_detail {

// One SIMD path's loops over elements [begin, end) (begin even) of the whole arrays;
// key = mix64(seed ^ salt), thr = dropout_threshold(p).
struct Kernels {
  void (*apply)(float* y, const float* x, int64_t begin, int64_t end, uint64_t key, uint32_t thr, float scale);
  void (*mask)(uint8_t* keep, int64_t begin, int64_t end, uint64_t key, uint64_t thr);
};

const Kernels& dropout_kernels_scalar();
#if FL_HAVE_X86_SIMD
const Kernels& dropout_kernels_avx2();
const Kernels& dropout_kernels_avx512();
#endif

}  // namespace dropout_detail

}  // namespace fastlayers
