// Branch-free float32 exp / log / tanh / sigmoid that GCC auto-vectorises in loops
// marked `#pragma omp simd` (SSE2, AVX2 or AVX-512, whatever the translation unit is
// compiled for). Accuracy: relative error < 3e-7 for exp over [-87, 88], log < 1e-7;
// exp returns 0 below -87.34 and saturates near 3.4e38 above 88.72 (never inf/NaN for
// finite input). Needs -fno-trapping-math to vectorise (set for all kernels in CMake).
//
// Everything here is `static inline` so every ISA translation unit gets a private copy
// (the linker can never substitute an AVX-512 copy into the scalar path).
#pragma once

#include <cstdint>

namespace fastlayers::vmath {

static inline float bits_to_float(int32_t i) { return __builtin_bit_cast(float, i); }
static inline int32_t float_to_bits(float f) { return __builtin_bit_cast(int32_t, f); }

// e^x. Range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r
// and 2^n built in the exponent bits. Rounding to nearest uses the 1.5 * 2^23 trick, so
// no floor() is needed (SSE2 has no vector floor).
static inline float exp(float x) {
  const float big = 12582912.0f;  // 1.5 * 2^23
  const bool underflow = x < -87.33654f;
  x = underflow ? -87.33654f : x;
  x = x > 88.72283f ? 88.72283f : x;
  const float t = x * 1.44269504088896341f + big;
  const float n = t - big;                        // round(x / ln2)
  const int32_t ni = float_to_bits(t) - float_to_bits(big);
  float r = x - n * 0.693145751953125f;           // ln2 split in two for accuracy
  r = r - n * 1.428606765330187e-06f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n in two steps so that n = 128 (x near 88.72) does not overflow the exponent.
  const int32_t n1 = ni >> 1;
  const int32_t n2 = ni - n1;
  const float result = p * bits_to_float((n1 + 127) << 23) * bits_to_float((n2 + 127) << 23);
  return underflow ? 0.0f : result;
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

// tanh via e^{-2|x|}: tanh(|x|) = (1 - e) / (1 + e), sign restored; exact 0 at 0.
static inline float tanh(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float e = exp(-2.0f * ax);
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}

}  // namespace fastlayers::vmath
