// Element-wise activations (ReLU, leaky ReLU, sigmoid, tanh, GELU, softplus, ELU) and
// the residual add, forward and backward, on flat float32 buffers of n elements.
//
// PyTorch semantics throughout (torch.nn.functional.<name>). What backward reads:
//   relu, leaky_relu     a bit mask, bit i = (x[i] > 0), packed 8 per byte with element
//                        8*j + b in bit b of byte j (numpy.packbits(bitorder="little")):
//                        n/8 bytes instead of keeping the 4n-byte input.
//   sigmoid, tanh        the forward output y.
//   gelu, softplus, elu  the forward input x.
// The loops live in activation_impl.h, compiled once per SIMD path; the entry points
// below pick the path at run time and split large arrays over OpenMP threads.
#pragma once

#include <cstdint>

namespace fastlayers {

enum class Activation : int {
  kRelu = 0,
  kLeakyRelu = 1,  // alpha = negative_slope
  kSigmoid = 2,
  kTanh = 3,
  kGelu = 4,       // exact: x * Phi(x), Phi the standard normal CDF
  kGeluTanh = 5,   // approximate="tanh"
  kSoftplus = 6,   // beta, threshold
  kElu = 7,        // alpha
};
constexpr int kNumActivations = 8;

struct ActivationParams {
  float alpha = 0.0f;       // leaky_relu: negative_slope; elu: alpha
  float beta = 1.0f;        // softplus: beta (nonzero)
  float threshold = 20.0f;  // softplus: linear where beta * x > threshold
};

// What backward needs from forward for this activation.
enum class ActivationSaved { kMask, kOutput, kInput };
ActivationSaved activation_saved(Activation kind);

// Bytes of the packed mask for n elements: ceil(n / 8).
inline int64_t activation_mask_bytes(int64_t n) { return (n + 7) / 8; }

// y (n) = f(x (n)). mask (ceil(n/8) bytes) is written when activation_saved(kind) is
// kMask and mask is not null (forward-only calls pass null); ignored otherwise. y may
// alias x (in place).
void activation_forward(float* y, uint8_t* mask, const float* x, int64_t n, Activation kind,
                        const ActivationParams& params);

// dx (n) = dy (n) * f'(x). `mask` / `saved` (y or x, n floats) as activation_saved(kind)
// says; the other may be null. dx may alias dy.
void activation_backward(float* dx, const uint8_t* mask, const float* saved, const float* dy,
                         int64_t n, Activation kind, const ActivationParams& params);

// y (n) = a (n) + b (n); y may alias a or b.
void add_forward(float* y, const float* a, const float* b, int64_t n);

namespace activation_detail {

// One SIMD path's loops, each over elements [0, n) of the pointers it is given. The
// entry points hand every thread a range starting at a multiple of 64 elements, so
// mask pointers advance by whole bytes.
struct Kernels {
  void (*forward)(float* y, uint8_t* mask, const float* x, int64_t n, Activation kind,
                  const ActivationParams& params);
  void (*backward)(float* dx, const uint8_t* mask, const float* saved, const float* dy,
                   int64_t n, Activation kind, const ActivationParams& params);
  void (*add)(float* y, const float* a, const float* b, int64_t n);
};

const Kernels& activation_kernels_scalar();
#if FL_HAVE_X86_SIMD
const Kernels& activation_kernels_avx2();
const Kernels& activation_kernels_avx512();
#endif

}  // namespace activation_detail
}  // namespace fastlayers
