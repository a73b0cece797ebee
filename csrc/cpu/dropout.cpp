// Inverted dropout entry points (see dropout.h for the generator): pick the SIMD
// path's loops (dropout_impl.h) and split large arrays over threads, each range
// starting at a multiple of 64 elements (whole generator blocks).
#include "cpu/dropout.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/dispatch.h"
#include "common/error.h"
#include "common/threads.h"

namespace fastlayers {
namespace {

constexpr uint64_t kSeedSalt = 0x6A09E667F3BCC909ull;  // fractional bits of sqrt(2)
constexpr int64_t kBlock = 64;

// The same finaliser as in dropout_impl.h, for the key (once per call).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

const dropout_detail::Kernels& kernels() { return FL_SIMD_SELECT(dropout_detail::dropout_kernels); }

// Runs body(begin, end) over [0, n) on up to get_num_threads() threads, each range
// starting at a multiple of 64; below ~64 K elements per thread, on one thread.
template <typename Body>
void parallel_ranges(int64_t n, Body body) {
  constexpr int64_t kMinPerThread = int64_t{1} << 16;
  const int nt = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, n / kMinPerThread)));
  if (nt <= 1) {
    body(int64_t{0}, n);
    return;
  }
  const int64_t chunk = (n / nt + kBlock - 1) / kBlock * kBlock;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) {
    const int64_t begin = std::min(n, t * chunk);
    const int64_t end = t == nt - 1 ? n : std::min(n, begin + chunk);
    if (begin < end) body(begin, end);
  }
}

void check_p(double p) {
  FL_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
}

}  // namespace

uint64_t dropout_threshold(double p) {
  check_p(p);
  return static_cast<uint64_t>(std::floor(p * 4294967296.0));  // exact: p * 2^32 is a scaling
}

float dropout_scale(double p) {
  check_p(p);
  return p == 1.0 ? 0.0f : static_cast<float>(1.0 / (1.0 - p));
}

void dropout_apply(float* y, const float* x, int64_t n, uint64_t seed, double p) {
  FL_CHECK(n >= 0, "dropout: negative size ", n);
  const uint64_t thr = dropout_threshold(p);
  if (n == 0) return;
  if (thr > 0xFFFFFFFFull) {  // p == 1: nothing kept
    std::memset(y, 0, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const float scale = dropout_scale(p);
  const uint64_t key = mix64(seed ^ kSeedSalt);
  const auto& k = kernels();
  parallel_ranges(n, [&](int64_t begin, int64_t end) {
    k.apply(y, x, begin, end, key, static_cast<uint32_t>(thr), scale);
  });
}

void dropout_mask(uint8_t* keep, int64_t n, uint64_t seed, double p) {
  FL_CHECK(n >= 0, "dropout: negative size ", n);
  const uint64_t thr = dropout_threshold(p);
  const uint64_t key = mix64(seed ^ kSeedSalt);
  const auto& k = kernels();
  parallel_ranges(n, [&](int64_t begin, int64_t end) { k.mask(keep, begin, end, key, thr); });
}

}  // namespace fastlayers
