// CUDA kernels of inverted dropout (contract in cuda/dropout.h; the generator is
// documented in cpu/dropout.h and reproduced here bit for bit):
//
//   key = mix64(seed ^ 0x6A09E667F3BCC909),  h_j = mix64(key + (j + 1) * 0x9E3779B97F4A7C15)
//   block b of 64 elements: hash j = 32 b + r gives element 64 b + r its low 32 bits and
//   element 64 b + r + 32 its high 32 bits (r < 32); keep = u >= floor(p * 2^32).
//
// Work item q = four consecutive hashes of one block (8 items per block): elements
// [lo, lo + 4) and [lo + 32, lo + 36), lo = 64 (q / 8) + 4 (q % 8), each a float4 when the
// pointers are 16-byte aligned and the block is complete. Consecutive threads touch
// consecutive float4s, so a warp reads 4 blocks in 8 fully used 128-byte segments.
// The 64-bit multiplies of mix64 are a few 32-bit instructions each: still memory-bound.
#include "cuda/dropout.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "cuda/eltwise.cuh"

namespace fastlayers::cuda {
namespace {

constexpr uint64_t kSeedSalt = 0x6A09E667F3BCC909ull;  // fractional bits of sqrt(2)
constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;     // 2^64 / golden ratio

__host__ __device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The four hashes of work item q, and the first element of its low half.
struct Quad {
  int64_t lo;
  uint64_t h[4];
};
__device__ __forceinline__ Quad quad_hashes(uint64_t key, int64_t q) {
  Quad r;
  const int64_t block = q / 8, r0 = 4 * (q % 8);
  r.lo = 64 * block + r0;
  const uint64_t j0 = static_cast<uint64_t>(32 * block + r0);
#pragma unroll
  for (int k = 0; k < 4; ++k) r.h[k] = mix64(key + (j0 + k + 1) * kGamma);
  return r;
}

// y = keep ? x * scale : 0 (a select: a dropped NaN or inf becomes 0, as on the CPU).
// thr = floor(p * 2^32), 2^32 when p == 1 (nothing kept).
template <bool kVec>
__global__ void dropout_apply_kernel(float* y, const float* x, int64_t n, uint64_t key,
                                     uint64_t thr, float scale) {
  const int64_t quads = 8 * ((n + 63) / 64);
  for (int64_t q = eltwise::first_item(); q < quads; q += eltwise::grid_stride()) {
    const Quad qd = quad_hashes(key, q);
#pragma unroll
    for (int half = 0; half < 2; ++half) {  // low 32 bits, then high 32 bits
      const int64_t i = qd.lo + 32 * half;
      if (i >= n) break;
      float v[4];
      eltwise::load_group<4, kVec>(v, x, i, n);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint64_t u = half == 0 ? (qd.h[k] & 0xFFFFFFFFull) : (qd.h[k] >> 32);
        v[k] = u >= thr ? v[k] * scale : 0.0f;
      }
      eltwise::store_group<4, kVec>(y, v, i, n);
    }
  }
}

// keep[i] = 1 / 0.
__global__ void dropout_mask_kernel(uint8_t* keep, int64_t n, uint64_t key, uint64_t thr) {
  const int64_t quads = 8 * ((n + 63) / 64);
  for (int64_t q = eltwise::first_item(); q < quads; q += eltwise::grid_stride()) {
    const Quad qd = quad_hashes(key, q);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = qd.lo + k;
      if (i < n) keep[i] = (qd.h[k] & 0xFFFFFFFFull) >= thr ? 1 : 0;
      if (i + 32 < n) keep[i + 32] = (qd.h[k] >> 32) >= thr ? 1 : 0;
    }
  }
}

struct Draw {
  uint64_t key, thr;
  float scale;
};

// The per-call constants, as cpu/dropout.cpp computes them.
Draw draw(uint64_t seed, double p) {
  FL_CHECK(p >= 0.0 && p <= 1.0, "p: expected a probability in [0, 1], got ", p);
  return {mix64(seed ^ kSeedSalt), static_cast<uint64_t>(std::floor(p * 4294967296.0)),
          p == 1.0 ? 0.0f : static_cast<float>(1.0 / (1.0 - p))};
}

std::string sizes(int64_t n, uint64_t seed, double p) {
  return "n=" + std::to_string(n) + ", seed=" + std::to_string(seed) + ", p=" + std::to_string(p);
}

}  // namespace

void dropout_apply(float* y, const float* x, int64_t n, uint64_t seed, double p, cudaStream_t stream) {
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  const Draw d = draw(seed, p);
  if (n == 0) return;
  auto* apply_kernel = eltwise::aligned16(y, x) ? &dropout_apply_kernel<true> : &dropout_apply_kernel<false>;
  FL_LAUNCH(apply_kernel, eltwise::grid_for(8 * ((n + 63) / 64)), eltwise::block_dim(), 0, stream,
            y, x, n, d.key, d.thr, d.scale);
  check_launch("dropout_apply", sizes(n, seed, p));
}

void dropout_mask(uint8_t* keep, int64_t n, uint64_t seed, double p, cudaStream_t stream) {
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  const Draw d = draw(seed, p);
  if (n == 0) return;
  FL_LAUNCH(dropout_mask_kernel, eltwise::grid_for(8 * ((n + 63) / 64)), eltwise::block_dim(), 0,
            stream, keep, n, d.key, d.thr);
  check_launch("dropout_mask", sizes(n, seed, p));
}

}  // namespace fastlayers::cuda
