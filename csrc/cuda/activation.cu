// CUDA kernels of the activation family (contract in cuda/activation.h; semantics and
// formulas in cpu/activation.h and fastlayers/reference/activation.py).
//
// One grid-stride kernel per (activation, direction), templated on the kind so each is
// branch-free, and on kVec: with every pointer 16-byte aligned a thread moves its group of
// elements as float4 vectors; otherwise (a CuPy view at an odd offset) as scalars. A thread
// handles a group of 8 elements for relu / leaky_relu, so it owns one whole byte of the
// packed mask (one writer per byte, no atomics), and 4 for every other kind. The last,
// partial group goes element by element. Memory-bound on a GPU: the math uses the precise
// CUDA functions (expf, erfcf, log1pf, expm1f, tanhf), not the __expf intrinsics.
#include "cuda/activation.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "cuda/eltwise.cuh"

namespace fastlayers::cuda {
namespace {

using eltwise::load_group;
using eltwise::store_group;

constexpr int kRelu = static_cast<int>(Activation::kRelu);
constexpr int kLeakyRelu = static_cast<int>(Activation::kLeakyRelu);
constexpr int kSigmoid = static_cast<int>(Activation::kSigmoid);
constexpr int kTanh = static_cast<int>(Activation::kTanh);
constexpr int kGelu = static_cast<int>(Activation::kGelu);
constexpr int kGeluTanh = static_cast<int>(Activation::kGeluTanh);
constexpr int kSoftplus = static_cast<int>(Activation::kSoftplus);
constexpr int kElu = static_cast<int>(Activation::kElu);

const char* const kKindNames[kNumActivations] = {"relu", "leaky_relu", "sigmoid", "tanh",
                                                  "gelu", "gelu_tanh", "softplus", "elu"};

// relu / leaky_relu: backward reads the packed mask, so a thread covers one mask byte.
__host__ __device__ constexpr bool masked(int kind) { return kind == kRelu || kind == kLeakyRelu; }
__host__ __device__ constexpr int group_size(int kind) { return masked(kind) ? 8 : 4; }

// ---------------------------------------------------------------------------------
// Element formulas. Written so that neither tail overflows to inf/NaN for finite x.
// ---------------------------------------------------------------------------------

// 1 / (1 + e^-x) through e^-|x|.
__device__ __forceinline__ float sigmoid_f(float x) {
  const float e = expf(-fabsf(x));
  const float r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;
}

// Phi(x) = erfc(-x / sqrt 2) / 2: keeps its relative accuracy in the left tail, where
// (1 + erf(x / sqrt 2)) / 2 cancels.
__device__ __forceinline__ float normal_cdf_f(float x) {
  return 0.5f * erfcf(-0.70710678118654752f * x);
}

constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1 / sqrt(2 pi)
constexpr float kGeluBeta = 0.79788456080286536f;    // sqrt(2 / pi)
constexpr float kGeluKappa = 0.044715f;

// GELU tanh form, with e = exp(-2|u|): 1 + tanh(u) = 2/(1+e) (u >= 0) or 2e/(1+e) (u < 0)
// and 1 - tanh(u)^2 = 4e/(1+e)^2, so neither tail cancels (as the CPU kernel).
struct TanhParts {
  float one_plus_t;
  float sech2;
};
__device__ __forceinline__ TanhParts gelu_tanh_parts(float x) {
  const float u = kGeluBeta * (x + kGeluKappa * x * x * x);
  const float e = expf(-2.0f * fabsf(u));
  const float r = 1.0f / (1.0f + e);
  return {2.0f * (u < 0.0f ? e : 1.0f) * r, 4.0f * e * r * r};
}

template <int kKind>
__device__ __forceinline__ float forward_f(float x, float alpha, float beta, float inv_beta,
                                           float threshold) {
  if constexpr (kKind == kRelu) {
    return x < 0.0f ? 0.0f : x;  // keeps NaN and -0, like torch.relu
  } else if constexpr (kKind == kLeakyRelu) {
    return x > 0.0f ? x : x * alpha;
  } else if constexpr (kKind == kSigmoid) {
    return sigmoid_f(x);
  } else if constexpr (kKind == kTanh) {
    return tanhf(x);
  } else if constexpr (kKind == kGelu) {
    return x * normal_cdf_f(x);
  } else if constexpr (kKind == kGeluTanh) {
    return 0.5f * x * gelu_tanh_parts(x).one_plus_t;
  } else if constexpr (kKind == kSoftplus) {
    // (max(z, 0) + log1p(e^-|z|)) / beta never overflows; linear above the threshold.
    const float z = beta * x;
    const float sp = ((z > 0.0f ? z : 0.0f) + log1pf(expf(-fabsf(z)))) * inv_beta;
    return z > threshold ? x : sp;
  } else {  // kElu
    return x > 0.0f ? x : alpha * expm1f(x);
  }
}

// f'(s), s the saved output (sigmoid, tanh) or input (gelu, softplus, elu).
template <int kKind>
__device__ __forceinline__ float grad_f(float s, float alpha, float beta, float threshold) {
  if constexpr (kKind == kSigmoid) {
    return s * (1.0f - s);
  } else if constexpr (kKind == kTanh) {
    return 1.0f - s * s;
  } else if constexpr (kKind == kGelu) {
    // Phi(x) + x phi(x); far out phi underflows to 0 (0 * x, never NaN for finite x).
    return normal_cdf_f(s) + s * (kInvSqrt2Pi * expf(-0.5f * s * s));
  } else if constexpr (kKind == kGeluTanh) {
    // (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 kappa x^2); the second term is 0 where
    // tanh has saturated, even when x^2 overflows.
    const TanhParts p = gelu_tanh_parts(s);
    const float right = 0.5f * s * p.sech2 * kGeluBeta * (1.0f + 3.0f * kGeluKappa * s * s);
    return 0.5f * p.one_plus_t + (p.sech2 == 0.0f ? 0.0f : right);
  } else if constexpr (kKind == kSoftplus) {
    const float z = beta * s;
    return z > threshold ? 1.0f : sigmoid_f(z);
  } else {  // kElu
    return s > 0.0f ? 1.0f : alpha * expf(s);
  }
}

// ---------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------

// y (n) = f(x (n)); for relu / leaky_relu also mask (ceil(n/8) bytes) unless null. Work
// item g = elements [G g, G g + G), and mask byte g when G == 8.
template <int kKind, bool kVec>
__global__ void activation_forward_kernel(float* y, uint8_t* mask, const float* x, int64_t n,
                                          float alpha, float beta, float inv_beta,
                                          float threshold) {
  constexpr int G = group_size(kKind);
  const int64_t groups = (n + G - 1) / G;
  for (int64_t g = eltwise::first_item(); g < groups; g += eltwise::grid_stride()) {
    const int64_t i = g * G;
    float v[G];
    load_group<G, kVec>(v, x, i, n);  // past n: 0, so those mask bits are 0
    unsigned bits = 0;
    if constexpr (masked(kKind)) {
#pragma unroll
      for (int k = 0; k < G; ++k) bits |= (v[k] > 0.0f ? 1u : 0u) << k;  // NaN: 0
    }
#pragma unroll
    for (int k = 0; k < G; ++k) v[k] = forward_f<kKind>(v[k], alpha, beta, inv_beta, threshold);
    store_group<G, kVec>(y, v, i, n);
    if (masked(kKind) && mask != nullptr) mask[g] = static_cast<uint8_t>(bits);
  }
}

// dx (n) = dy (n) * f'(.): from mask bit k of byte g (relu: a select, so a NaN in dy does
// not leak through a dropped element; leaky: dy * slope) or from saved (n).
template <int kKind, bool kVec>
__global__ void activation_backward_kernel(float* dx, const uint8_t* mask, const float* saved,
                                           const float* dy, int64_t n, float alpha, float beta,
                                           float threshold) {
  constexpr int G = group_size(kKind);
  const int64_t groups = (n + G - 1) / G;
  for (int64_t g = eltwise::first_item(); g < groups; g += eltwise::grid_stride()) {
    const int64_t i = g * G;
    float d[G];
    load_group<G, kVec>(d, dy, i, n);
    if constexpr (masked(kKind)) {
      const unsigned bits = mask[g];
#pragma unroll
      for (int k = 0; k < G; ++k) {
        const bool keep = (bits >> k) & 1u;
        d[k] = keep ? d[k] : (kKind == kLeakyRelu ? d[k] * alpha : 0.0f);
      }
    } else {
      float s[G];
      load_group<G, kVec>(s, saved, i, n);
#pragma unroll
      for (int k = 0; k < G; ++k) d[k] *= grad_f<kKind>(s[k], alpha, beta, threshold);
    }
    store_group<G, kVec>(dx, d, i, n);
  }
}

// y (n) = a (n) + b (n), 4 elements per work item.
template <bool kVec>
__global__ void add_kernel(float* y, const float* a, const float* b, int64_t n) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = eltwise::first_item(); g < groups; g += eltwise::grid_stride()) {
    float va[4], vb[4];
    load_group<4, kVec>(va, a, 4 * g, n);
    load_group<4, kVec>(vb, b, 4 * g, n);
#pragma unroll
    for (int k = 0; k < 4; ++k) va[k] += vb[k];
    store_group<4, kVec>(y, va, 4 * g, n);
  }
}

// ---------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------

EltwiseLaunch g_launch;  // see set_eltwise_launch

std::string sizes(int64_t n, Activation kind) {
  return "n=" + std::to_string(n) + ", kind=" + kKindNames[static_cast<int>(kind)];
}

template <int kKind>
void launch_forward(float* y, uint8_t* mask, const float* x, int64_t n,
                    const ActivationParams& p, cudaStream_t stream) {
  constexpr int G = group_size(kKind);
  auto* forward_kernel = eltwise::aligned16(y, x) ? &activation_forward_kernel<kKind, true>
                                                      : &activation_forward_kernel<kKind, false>;
  FL_LAUNCH(forward_kernel, eltwise::grid_for((n + G - 1) / G), eltwise::block_dim(), 0, stream,
            y, mask, x, n, p.alpha, p.beta, 1.0f / p.beta, p.threshold);
}

template <int kKind>
void launch_backward(float* dx, const uint8_t* mask, const float* saved, const float* dy, int64_t n,
                     const ActivationParams& p, cudaStream_t stream) {
  constexpr int G = group_size(kKind);
  auto* backward_kernel = eltwise::aligned16(dx, saved, dy)
                                  ? &activation_backward_kernel<kKind, true>
                                  : &activation_backward_kernel<kKind, false>;
  FL_LAUNCH(backward_kernel, eltwise::grid_for((n + G - 1) / G), eltwise::block_dim(), 0,
            stream, dx, mask, saved, dy, n, p.alpha, p.beta, p.threshold);
}

void check_kind(Activation kind) {
  const int k = static_cast<int>(kind);
  FL_CHECK(k >= 0 && k < kNumActivations, "kind: unknown activation ", k);
}

}  // namespace

EltwiseLaunch get_eltwise_launch() { return g_launch; }

void set_eltwise_launch(const EltwiseLaunch& shape) {
  FL_CHECK(shape.threads >= 1 && shape.threads <= 1024, "threads: expected 1..1024, got ",
           shape.threads);
  FL_CHECK(shape.max_blocks >= 1, "max_blocks: expected >= 1, got ", shape.max_blocks);
  g_launch = shape;
}

void activation_forward(float* y, uint8_t* mask, const float* x, int64_t n, Activation kind,
                        const ActivationParams& params, cudaStream_t stream) {
  check_kind(kind);
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  if (n == 0) return;
  switch (static_cast<int>(kind)) {
    case kRelu: launch_forward<kRelu>(y, mask, x, n, params, stream); break;
    case kLeakyRelu: launch_forward<kLeakyRelu>(y, mask, x, n, params, stream); break;
    case kSigmoid: launch_forward<kSigmoid>(y, mask, x, n, params, stream); break;
    case kTanh: launch_forward<kTanh>(y, mask, x, n, params, stream); break;
    case kGelu: launch_forward<kGelu>(y, mask, x, n, params, stream); break;
    case kGeluTanh: launch_forward<kGeluTanh>(y, mask, x, n, params, stream); break;
    case kSoftplus: launch_forward<kSoftplus>(y, mask, x, n, params, stream); break;
    default: launch_forward<kElu>(y, mask, x, n, params, stream); break;
  }
  check_launch("activation_forward", sizes(n, kind));
}

void activation_backward(float* dx, const uint8_t* mask, const float* saved, const float* dy,
                         int64_t n, Activation kind, const ActivationParams& params,
                         cudaStream_t stream) {
  check_kind(kind);
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  if (n == 0) return;
  if (masked(static_cast<int>(kind))) {
    FL_CHECK(mask != nullptr, "mask: this activation needs the mask written by forward");
  } else {
    FL_CHECK(saved != nullptr, "saved: this activation needs the saved input or output");
  }
  switch (static_cast<int>(kind)) {
    case kRelu: launch_backward<kRelu>(dx, mask, nullptr, dy, n, params, stream); break;
    case kLeakyRelu: launch_backward<kLeakyRelu>(dx, mask, nullptr, dy, n, params, stream); break;
    case kSigmoid: launch_backward<kSigmoid>(dx, nullptr, saved, dy, n, params, stream); break;
    case kTanh: launch_backward<kTanh>(dx, nullptr, saved, dy, n, params, stream); break;
    case kGelu: launch_backward<kGelu>(dx, nullptr, saved, dy, n, params, stream); break;
    case kGeluTanh: launch_backward<kGeluTanh>(dx, nullptr, saved, dy, n, params, stream); break;
    case kSoftplus: launch_backward<kSoftplus>(dx, nullptr, saved, dy, n, params, stream); break;
    default: launch_backward<kElu>(dx, nullptr, saved, dy, n, params, stream); break;
  }
  check_launch("activation_backward", sizes(n, kind));
}

void add_forward(float* y, const float* a, const float* b, int64_t n, cudaStream_t stream) {
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  if (n == 0) return;
  auto* add_vec_kernel = eltwise::aligned16(y, a, b) ? &add_kernel<true> : &add_kernel<false>;
  FL_LAUNCH(add_vec_kernel, eltwise::grid_for((n + 3) / 4), eltwise::block_dim(), 0, stream, y, a, b, n);
  check_launch("add_forward", "n=" + std::to_string(n));
}

}  // namespace fastlayers::cuda
