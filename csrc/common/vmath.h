// Branch-free float32 exp / log / tanh / sigmoid that GCC auto-vectorises in loops
// marked `#pragma omp simd` (SSE2, AVX2 or AVX-512, whatever the translation unit is
// compiled for). Accuracy: relative error < 3e-7 for exp over [-87, 88], < 5e-7 for
// expm1 and tanh, log < 1e-7; exp returns 0 below -87.34 and saturates near 2.2e38 above
// 88.3 (never inf/NaN for finite input). Needs -fno-trapping-math to vectorise (set for
// all kernels in CMake).
//
// Everything here is `static inline` so every ISA translation unit gets a private copy
// (the linker can never substitute an AVX-512 copy into the scalar path).
#pragma once

#include <cstdint>

namespace fastlayers::vmath {

static inline float bits_to_float(int32_t i) { return __builtin_bit_cast(float, i); }
static inline int32_t float_to_bits(float f) { return __builtin_bit_cast(int32_t, f); }

// e^x. Range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r.
// Rounding to nearest uses the 1.5 * 2^23 trick (SSE2 has no vector floor); adding the
// exponent bias 127 to that constant leaves n + 127 in the low bits of t, so one shift
// makes 2^n. x is clamped to [-87.33, 88.3] so that n + 127 stays a normal exponent:
// e^x saturates near 2.2e38 (never inf) and is exactly 0 below -87.33.
static inline float exp(float x) {
  const float big = 12582912.0f + 127.0f;  // 1.5 * 2^23 + exponent bias
  const bool underflow = x < -87.33654f;
  float xc = underflow ? -87.33654f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  const float t = xc * 1.44269504088896341f + big;
  const float n = t - big;                        // round(x / ln2)
  float r = xc - n * 0.693145751953125f;          // ln2 split in two for accuracy
  r = r - n * 1.428606765330187e-06f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(float_to_bits(t)) << 23));
  return underflow ? 0.0f : p * scale;
}

// e^x - 1, accurate near 0 where e^x - 1 cancels: with x = n ln2 + r as in exp,
// e^x - 1 = 2^n (e^r - 1) + (2^n - 1), and e^r - 1 = r + r^2 P(r) never forms e^r
// (exact for n == 0; 2^n - 1 is exact for the n that matter). Relative error < 5e-7;
// -1 below x = -87.3.
static inline float expm1(float x) {
  const float big = 12582912.0f + 127.0f;
  float xc = x < -87.33654f ? -87.33654f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  const float t = xc * 1.44269504088896341f + big;
  const float n = t - big;
  float r = xc - n * 0.693145751953125f;
  r = r - n * 1.428606765330187e-06f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float em1_r = p * r * r + r;  // e^r - 1
  const float scale = bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(float_to_bits(t)) << 23));
  return scale * em1_r + (scale - 1.0f);
}

// Natural log for x > 0 (x <= 0 gives a large negative number / garbage: callers clamp).
// x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) from a polynomial in (m-1).
// Denormal inputs are treated as if normal (callers clamp to >= FLT_MIN when it matters).
static inline float log(float x) {
  int32_t bits = float_to_bits(x);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  float m = bits_to_float((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  const bool hi = m > 1.41421356f;
  m = hi ? m * 0.5f : m;
  e = hi ? e + 1 : e;
  const float f = m - 1.0f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  const float ef = static_cast<float>(e);
  y += ef * -2.12194440e-4f;
  y += -0.5f * z;
  return f + y + ef * 0.693359375f;
}

// Logistic function 1 / (1 + e^-x), accurate in both tails.
static inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

// tanh(x) = -m / (2 + m) with m = expm1(-2|x|), sign restored: full relative accuracy
// near 0 too (the (1 - e) / (1 + e) form cancels there); one expm1 and one division.
static inline float tanh(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float m = expm1(-2.0f * ax);
  const float t = -m / (2.0f + m);
  return x < 0.0f ? -t : t;
}

}  // namespace fastlayers::vmath
