// The loops of dropout, compiled once per SIMD path by dropout_avx512.cpp /
// dropout_avx2.cpp / dropout_scalar.cpp (see common/dispatch.h): the generator is two
// 64-bit multiplies per pair of elements, one instruction (vpmullq) with AVX-512DQ but
// a multi-instruction emulation on SSE2/AVX2, so the path matters. Every path computes
// the same integers, hence the same mask. Internal linkage only.
#pragma once

#include <cstdint>

#include "cpu/dropout.h"

namespace fastlayers {
namespace dropout_detail {
namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio
constexpr int64_t kBlock = 64;                      // elements per block (32 hashes)

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// j * kGamma for the 32 hashes of a block (a table rather than a multiply per lane).
struct Offsets {
  uint64_t v[kBlock / 2];
  constexpr Offsets() : v() {
    for (int j = 0; j < kBlock / 2; ++j) v[j] = static_cast<uint64_t>(j) * kGamma;
  }
};
constexpr Offsets kOffsets{};

// u[0..63] for the block of elements starting at i0 (a multiple of 64): hash j of the
// block gives element j its low half and element j + 32 its high half.
inline void uniforms(uint32_t* u, uint64_t key, int64_t i0) {
  const uint64_t base = key + (static_cast<uint64_t>(i0) / 2 + 1) * kGamma;
#pragma omp simd
  for (int j = 0; j < kBlock / 2; ++j) {
    const uint64_t h = mix64(base + kOffsets.v[j]);
    u[j] = static_cast<uint32_t>(h);
    u[j + kBlock / 2] = static_cast<uint32_t>(h >> 32);
  }
}

// y[i] = keep ? x[i] * scale : 0 for i in [begin, end), begin a multiple of 64.
void apply(float* y, const float* x, int64_t begin, int64_t end, uint64_t key, uint32_t thr, float scale) {
  alignas(64) uint32_t u[kBlock];
  for (int64_t i0 = begin; i0 < end; i0 += kBlock) {
    const int64_t len = end - i0 < kBlock ? end - i0 : kBlock;
    uniforms(u, key, i0);
    float* yb = y + i0;
    const float* xb = x + i0;
    // A select, not x * mask * scale: a dropped NaN or inf becomes 0.
#pragma omp simd
    for (int64_t k = 0; k < len; ++k) yb[k] = u[k] >= thr ? xb[k] * scale : 0.0f;
  }
}

// keep[i] = 1 / 0 for i in [begin, end), begin a multiple of 64; thr may be 2^32.
void mask(uint8_t* keep, int64_t begin, int64_t end, uint64_t key, uint64_t thr) {
  alignas(64) uint32_t u[kBlock];
  for (int64_t i0 = begin; i0 < end; i0 += kBlock) {
    const int64_t len = end - i0 < kBlock ? end - i0 : kBlock;
    uniforms(u, key, i0);
    for (int64_t k = 0; k < len; ++k) keep[i0 + k] = static_cast<uint64_t>(u[k]) >= thr ? 1 : 0;
  }
}

constexpr Kernels kKernels{&apply, &mask};

}  // namespace
}  // namespace dropout_detail
}  // namespace fastlayers
