// The loops of the activation family, written once and compiled once per SIMD path by
// activation_avx512.cpp / activation_avx2.cpp / activation_scalar.cpp (see
// common/dispatch.h). Plain C++ under `#pragma omp simd`, which GCC vectorises for the
// translation unit's instruction set; only the ReLU bit-mask packing uses intrinsics
// (a movemask has no portable spelling). Everything has internal linkage.
//
// Accuracy (float32, measured against float64 in tests/test_activation.py): every
// forward and derivative within a few 1e-7 absolute / relative of the exact value, with
// no overflow to inf/NaN for finite inputs (exp saturates, tails select the limit).
// One exception: exact GELU's left tail (x < -2) is within ~1e-5 relative only (Juffa's
// erf is accurate to 1 ulp of erf, not of erfc), i.e. < 1e-8 absolute.
// Speed: on one core the cheap ops (relu, leaky_relu, add, sigmoid/tanh backward) are
// memory-bound; exp/log/erf-based ones are bound by the count of FMA-pipe vector ops
// (multiply / FMA: ~1 zmm per cycle on the Zen 4 here; adds, compares, selects and
// shifts go to other pipes). Hence: constants folded into polynomial coefficients
// (GELU's 1/sqrt 2, 1/2, log2 e), exp2 with an exact reduction where log2 e can be
// folded, exp without the clamps a non-positive argument does not need, and log1p as a
// plain polynomial (no division). At 16 M elements GELU and softplus then run at
// ~15-18 GB/s, close to the ~20 GB/s the core streams.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "common/vmath.h"
#include "cpu/activation.h"

namespace fastlayers {
namespace activation_detail {
namespace {

namespace vm = ::fastlayers::vmath;

// ---------------------------------------------------------------------------------
// Scalar formulas, inlined into the vector loops. Each branch of a `c ? a : b` is
// evaluated for every lane, so both sides must stay finite (or be harmless) for any x.
// ---------------------------------------------------------------------------------

inline float abs_f(float x) { return __builtin_fabsf(x); }

// e^x for x <= 0 (softplus's e^-|z|): vm::exp without the upper clamp, with the last
// Horner steps as plain FMAs (p r^2 + r + 1 becomes ((p r + 1/2) r + 1) r + 1), and
// the reduction r = x - n ln2 as one FMA with ln2 rounded to float (vm::exp splits
// ln2 in two). That rounding (1.9e-9) adds |n| 1.9e-9 to the < 3e-7 relative error of
// vm::exp: < 5e-8 more for x >= -17 (results above ~4e-8), 2.4e-7 at worst near -87.
// Exactly 0 below -87.33 (never a denormal or NaN). (x * log2 e feeding exp2_nonpos
// would save one more FMA but lose |x| 6e-8 relative to the rounding of the product.)
inline float exp_nonpos(float x) {
  const float big = 12582912.0f + 127.0f;  // 1.5 * 2^23 + exponent bias
  const bool underflow = x < -87.33654f;
  const float xc = underflow ? -87.33654f : x;
  const float t = xc * 1.44269504088896341f + big;
  const float n = t - big;  // round(x / ln2)
  const float r = xc - n * 0.693147182464599609375f;  // ln2 rounded to float
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = vm::bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(vm::float_to_bits(t)) << 23));
  return underflow ? 0.0f : p * scale;
}

// 2^y for y <= 0: y = n + r, n = round(y), r in [-1/2, 1/2] exact (a subtraction, no
// ln2 constant: two FMA-pipe operations fewer than exp_nonpos), then vm::exp's
// polynomial for e^(r ln2) with the coefficients scaled by powers of ln2, so the same
// < 3e-7 relative accuracy. For callers that can fold log2(e) into the polynomial that
// makes y. Exactly 0 below -126 (never a denormal or NaN).
inline float exp2_nonpos(float y) {
  const float big = 12582912.0f + 127.0f;  // 1.5 * 2^23 + exponent bias
  const bool underflow = y < -126.0f;
  const float yc = underflow ? -126.0f : y;
  const float t = yc + big;
  const float n = t - big;  // round(y)
  const float r = yc - n;   // exact
  float p = 1.5506794443e-04f;
  p = p * r + 1.3333747629e-03f;
  p = p * r + 9.6179284155e-03f;
  p = p * r + 5.5504105985e-02f;
  p = p * r + 2.4022650719e-01f;
  p = p * r + 6.9314718246e-01f;
  p = p * r + 1.0f;
  const float scale = vm::bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(vm::float_to_bits(t)) << 23));
  return underflow ? 0.0f : p * scale;
}

// log(1 + u) for u in [0, 1] (softplus): u P(u), P a degree-8 least-max-relative-error
// fit of log1p(u) / u (fit error 7e-8 relative; float32 rounding adds ~1e-7). No
// division, no log, and full relative accuracy as u -> 0.
inline float log1p_f(float u) {
  float p = 5.4809509018e-03f;
  p = p * u - 3.0459358592e-02f;
  p = p * u + 7.9704799235e-02f;
  p = p * u - 1.3781211060e-01f;
  p = p * u + 1.9157064315e-01f;
  p = p * u - 2.4854478931e-01f;
  p = p * u + 3.3320229328e-01f;
  p = p * u - 4.9999515682e-01f;
  p = p * u + 9.9999995991e-01f;
  return p * u;
}

// Phi(x), the standard normal CDF, with s = x^2 passed in (the backward shares it with
// the density). Phi = (1 + erf(x / sqrt 2)) / 2 from minimax approximations of erf by
// N. Juffa (max error ~1 ulp), with z = x / sqrt(2), the halving and (in the tail)
// log2(e) folded into the coefficients, so no multiply is spent on any of them:
//   |x| <= 0.927734375 sqrt 2:  Phi = 1/2 + x P(x^2)
//   otherwise:  erfc(|z|) / 2 = 2^Q(|x|), Q = log2(e) Q_juffa(|x| / sqrt 2) - 1, and
//               Phi = erfc(-z) / 2 (left tail: directly, so it keeps its relative
//               accuracy where Phi -> 0).
inline float normal_cdf_f(float x, float s) {
  const float t = abs_f(x);
  float r = -6.5933477345e-06f;
  r = r * s + 1.1029084999e-04f;
  r = r * s - 1.1829956202e-03f;
  r = r * s + 9.9719669670e-03f;
  r = r * s - 6.6490195692e-02f;
  r = r * s + 3.9894229174e-01f;
  const float cdf_small = r * x + 0.5f;
  float q = -2.2041831471e-06f * t + 6.9104571594e-05f;
  const float u = -9.9054630846e-04f * t + 8.7480060756e-03f;
  q = q * s + u;
  q = q * t - 5.4464161396e-02f;
  q = q * t - 4.5794507861e-01f;
  q = q * t - 1.1514493227f;  // Juffa's (q t - 0.128717512) t - t, with the -t folded in
  q = q * t - 1.0f;           // log2(1/2)
  const float half_erfc = exp2_nonpos(q);  // erfc(|z|) / 2; q -> -inf for large |x|, 2^q -> 0
  const float tail = x < 0.0f ? half_erfc : 1.0f - half_erfc;
  return t <= 1.31201458f ? cdf_small : tail;  // 0.927734375 sqrt 2
}

constexpr float kLogSqrt2Pi = 0.91893853320467274f;   // log(sqrt(2 pi))
constexpr float kLog2e = 1.44269504088896341f;        // log2(e)
constexpr float kGeluBeta = 0.79788456080286536f;     // sqrt(2 / pi)
constexpr float kGeluKappa = 0.044715f;

// GELU, exact: x * Phi(x).
inline float gelu_f(float x) { return x * normal_cdf_f(x, x * x); }
// d/dx = Phi(x) + x phi(x), phi(x) = 2^(-log2(e) (x^2/2 + log sqrt(2 pi))) the standard
// normal density (1/2 and 1/sqrt(2 pi) folded into the exponent, one FMA whose rounding
// matches that of -x^2/2 - log sqrt(2 pi); 0 * 0 far out, never NaN).
inline float gelu_grad_f(float x) {
  const float s = x * x;
  const float pdf = exp2_nonpos(s * (-0.5f * kLog2e) - kLogSqrt2Pi * kLog2e);
  return normal_cdf_f(x, s) + x * pdf;
}

// GELU, tanh approximation: x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
// With e = exp(-2|u|): 1 + tanh(u) = 2/(1+e) for u >= 0 and 2e/(1+e) for u < 0, and
// 1 - tanh(u)^2 = 4e/(1+e)^2, so neither tail cancels (1 + t for t near -1 would).
struct TanhParts {
  float one_plus_t;  // 1 + tanh(u)
  float sech2;       // 1 - tanh(u)^2
};
inline TanhParts gelu_tanh_parts(float x) {
  const float u = kGeluBeta * (x + kGeluKappa * x * x * x);
  const float e = vm::exp(-2.0f * abs_f(u));
  const float r = 1.0f / (1.0f + e);
  return {2.0f * (u < 0.0f ? e : 1.0f) * r, 4.0f * e * r * r};
}
inline float gelu_tanh_f(float x) { return 0.5f * x * gelu_tanh_parts(x).one_plus_t; }
// d/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), as PyTorch; where
// tanh has saturated (sech2 == 0) the second term is 0 even when x^2 overflows.
inline float gelu_tanh_grad_f(float x) {
  const TanhParts p = gelu_tanh_parts(x);
  const float right = 0.5f * x * p.sech2 * kGeluBeta * (1.0f + 3.0f * kGeluKappa * x * x);
  return 0.5f * p.one_plus_t + (p.sech2 == 0.0f ? 0.0f : right);
}

// softplus: x where beta x > threshold, else log(1 + e^{beta x}) / beta, computed as
// (max(z, 0) + log1p(e^-|z|)) / beta, z = beta x, which never overflows.
// inv_beta = 1 / beta: a multiply where PyTorch divides (at most 1 ulp apart).
inline float softplus_f(float x, float beta, float inv_beta, float threshold) {
  const float z = beta * x;
  const float sp = (z > 0.0f ? z : 0.0f) + log1p_f(exp_nonpos(-abs_f(z)));
  return z > threshold ? x : sp * inv_beta;
}
// d/dx = sigmoid(beta x) (1 above the threshold).
inline float softplus_grad_f(float x, float beta, float threshold) {
  const float z = beta * x;
  return z > threshold ? 1.0f : vm::sigmoid(z);
}

// ELU: x for x > 0, alpha (e^x - 1) otherwise; d/dx = 1 or alpha e^x.
inline float elu_f(float x, float alpha) { return x > 0.0f ? x : alpha * vm::expm1(x); }
inline float elu_grad_f(float x, float alpha) { return x > 0.0f ? 1.0f : alpha * vm::exp(x); }

// ---------------------------------------------------------------------------------
// Loops. `#pragma omp simd` promises no dependence between iterations, which also
// holds when y aliases x exactly (in place), so no __restrict.
// ---------------------------------------------------------------------------------

template <typename F>
inline void map_forward(float* y, const float* x, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// dx = dy * g(s), s the saved input or output.
template <typename G>
inline void map_backward(float* dx, const float* s, const float* dy, int64_t n, G g) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * g(s[i]);
}

// mask bit i = (x[i] > 0), i in [0, n): byte i/8, bit i%8 (NaN gives 0).
inline void positive_mask(uint8_t* mask, const float* x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 zero = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const uint16_t bits = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), zero, _CMP_GT_OQ);
    std::memcpy(mask + i / 8, &bits, 2);  // little-endian: elements i..i+7 in the first byte
  }
#elif defined(__AVX2__)
  const __m256 zero = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    mask[i / 8] = static_cast<uint8_t>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ)));
  }
#elif defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    const int lo = _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(x + i), zero));
    const int hi = _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(x + i + 4), zero));
    mask[i / 8] = static_cast<uint8_t>(lo | (hi << 4));
  }
#endif
  for (; i < n; i += 8) {  // the last partial byte (and the non-x86 build)
    unsigned bits = 0;
    for (int b = 0; b < 8 && i + b < n; ++b) bits |= static_cast<unsigned>(x[i + b] > 0.0f) << b;
    mask[i / 8] = static_cast<uint8_t>(bits);
  }
}

// dx[i] = dy[i] where mask bit i is set; otherwise 0 (relu: a select, so NaN in dy
// does not leak through a dropped element, as in PyTorch) or dy[i] * slope (leaky).
template <bool kLeaky>
inline void masked_grad(float* dx, const uint8_t* mask, const float* dy, int64_t n, float slope) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 vs = _mm512_set1_ps(slope);
  for (; i + 16 <= n; i += 16) {
    uint16_t bits;
    std::memcpy(&bits, mask + i / 8, 2);
    const __m512 g = _mm512_loadu_ps(dy + i);
    _mm512_storeu_ps(dx + i, kLeaky ? _mm512_mask_blend_ps(bits, _mm512_mul_ps(g, vs), g)
                                    : _mm512_maskz_mov_ps(bits, g));
  }
#elif defined(__AVX2__)
  const __m256 vs = _mm256_set1_ps(slope);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (; i + 8 <= n; i += 8) {
    const __m256i m = _mm256_and_si256(_mm256_set1_epi32(mask[i / 8]), lane_bit);
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, lane_bit));
    const __m256 g = _mm256_loadu_ps(dy + i);
    _mm256_storeu_ps(dx + i, kLeaky ? _mm256_blendv_ps(_mm256_mul_ps(g, vs), g, keep)
                                    : _mm256_and_ps(keep, g));
  }
#elif defined(__SSE2__)
  const __m128 vs = _mm_set1_ps(slope);
  const __m128i lane_bit_lo = _mm_setr_epi32(1, 2, 4, 8);
  const __m128i lane_bit_hi = _mm_setr_epi32(16, 32, 64, 128);
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_set1_epi32(mask[i / 8]);
    for (int h = 0; h < 2; ++h) {
      const __m128i lb = h == 0 ? lane_bit_lo : lane_bit_hi;
      const __m128 keep = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(b, lb), lb));
      const __m128 g = _mm_loadu_ps(dy + i + 4 * h);
      const __m128 other = kLeaky ? _mm_andnot_ps(keep, _mm_mul_ps(g, vs)) : _mm_setzero_ps();
      _mm_storeu_ps(dx + i + 4 * h, _mm_or_ps(_mm_and_ps(keep, g), other));
    }
  }
#endif
  for (; i < n; ++i) {
    const bool keep = (mask[i / 8] >> (i % 8)) & 1u;
    dx[i] = keep ? dy[i] : (kLeaky ? dy[i] * slope : 0.0f);
  }
}

// relu / leaky_relu forward: y and the mask in one pass over x, blocked so the second
// look at x (for the mask) hits L1.
template <bool kLeaky>
inline void rectifier_forward(float* y, uint8_t* mask, const float* x, int64_t n, float slope) {
  constexpr int64_t kBlock = 2048;  // multiple of 8: mask bytes never straddle blocks
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t len = n - i0 < kBlock ? n - i0 : kBlock;
    if (kLeaky) {
      map_forward(y + i0, x + i0, len, [slope](float v) { return v > 0.0f ? v : v * slope; });
    } else {
      // x < 0 ? 0 : x keeps NaN (like torch.relu) and -0.
      map_forward(y + i0, x + i0, len, [](float v) { return v < 0.0f ? 0.0f : v; });
    }
    if (mask != nullptr) positive_mask(mask + i0 / 8, x + i0, len);
  }
}

void forward(float* y, uint8_t* mask, const float* x, int64_t n, Activation kind,
             const ActivationParams& p) {
  const float alpha = p.alpha, beta = p.beta, threshold = p.threshold;
  switch (kind) {
    case Activation::kRelu:
      rectifier_forward<false>(y, mask, x, n, 0.0f);
      break;
    case Activation::kLeakyRelu:
      rectifier_forward<true>(y, mask, x, n, alpha);
      break;
    case Activation::kSigmoid:
      map_forward(y, x, n, [](float v) { return vm::sigmoid(v); });
      break;
    case Activation::kTanh:
      map_forward(y, x, n, [](float v) { return vm::tanh(v); });
      break;
    case Activation::kGelu:
      map_forward(y, x, n, [](float v) { return gelu_f(v); });
      break;
    case Activation::kGeluTanh:
      map_forward(y, x, n, [](float v) { return gelu_tanh_f(v); });
      break;
    case Activation::kSoftplus: {
      const float inv_beta = 1.0f / beta;
      map_forward(y, x, n, [beta, inv_beta, threshold](float v) { return softplus_f(v, beta, inv_beta, threshold); });
      break;
    }
    case Activation::kElu:
      map_forward(y, x, n, [alpha](float v) { return elu_f(v, alpha); });
      break;
  }
}

void backward(float* dx, const uint8_t* mask, const float* s, const float* dy, int64_t n,
              Activation kind, const ActivationParams& p) {
  const float alpha = p.alpha, beta = p.beta, threshold = p.threshold;
  switch (kind) {
    case Activation::kRelu:
      masked_grad<false>(dx, mask, dy, n, 0.0f);
      break;
    case Activation::kLeakyRelu:
      masked_grad<true>(dx, mask, dy, n, alpha);
      break;
    case Activation::kSigmoid:  // s = y: y (1 - y)
      map_backward(dx, s, dy, n, [](float v) { return v * (1.0f - v); });
      break;
    case Activation::kTanh:  // s = y: 1 - y^2
      map_backward(dx, s, dy, n, [](float v) { return 1.0f - v * v; });
      break;
    case Activation::kGelu:
      map_backward(dx, s, dy, n, [](float v) { return gelu_grad_f(v); });
      break;
    case Activation::kGeluTanh:
      map_backward(dx, s, dy, n, [](float v) { return gelu_tanh_grad_f(v); });
      break;
    case Activation::kSoftplus:
      map_backward(dx, s, dy, n, [beta, threshold](float v) { return softplus_grad_f(v, beta, threshold); });
      break;
    case Activation::kElu:
      map_backward(dx, s, dy, n, [alpha](float v) { return elu_grad_f(v, alpha); });
      break;
  }
}

void add(float* y, const float* a, const float* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

constexpr Kernels kKernels{&forward, &backward, &add};

}  // namespace
}  // namespace activation_detail
}  // namespace fastlayers
