// Entry points of the activation family: pick the SIMD path's loops and split large
// arrays over OpenMP threads (small ones stay on the calling thread).
#include "cpu/activation.h"

#include <algorithm>

#include "common/dispatch.h"
#include "common/error.h"
#include "common/threads.h"

namespace fastlayers {
namespace {

using activation_detail::Kernels;

const Kernels& kernels() { return FL_SIMD_SELECT(activation_detail::activation_kernels); }

// Fewest elements worth a thread of their own: waking a thread costs a few
// microseconds, in which one core streams ~50 K elements of a memory-bound op but only
// a few thousand through exp/erf.
int64_t min_elements_per_thread(Activation kind) {
  switch (kind) {
    case Activation::kRelu:
    case Activation::kLeakyRelu:
      return int64_t{1} << 16;
    default:
      return int64_t{1} << 13;
  }
}

// Runs body(begin, end) over [0, n) on up to get_num_threads() threads, each range
// starting at a multiple of 64 elements (whole mask bytes, whole cache lines).
template <typename Body>
void parallel_ranges(int64_t n, int64_t min_per_thread, Body body) {
  const int64_t max_nt = std::max<int64_t>(1, n / min_per_thread);
  const int nt = static_cast<int>(std::min<int64_t>(get_num_threads(), max_nt));
  if (nt <= 1) {
    body(int64_t{0}, n);
    return;
  }
  const int64_t chunk = (n / nt + 63) / 64 * 64;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) {
    const int64_t begin = std::min(n, t * chunk);
    const int64_t end = t == nt - 1 ? n : std::min(n, begin + chunk);
    if (begin < end) body(begin, end);
  }
}

void check_kind(Activation kind) {
  const int k = static_cast<int>(kind);
  FL_CHECK(k >= 0 && k < kNumActivations, "activation: unknown kind ", k);
}

}  // namespace

ActivationSaved activation_saved(Activation kind) {
  switch (kind) {
    case Activation::kRelu:
    case Activation::kLeakyRelu:
      return ActivationSaved::kMask;
    case Activation::kSigmoid:
    case Activation::kTanh:
      return ActivationSaved::kOutput;
    default:
      return ActivationSaved::kInput;
  }
}

void activation_forward(float* y, uint8_t* mask, const float* x, int64_t n, Activation kind,
                        const ActivationParams& params) {
  check_kind(kind);
  FL_CHECK(n >= 0, "activation_forward: negative size ", n);
  FL_CHECK(kind != Activation::kSoftplus || params.beta != 0.0f, "softplus: beta must be nonzero");
  if (n == 0) return;
  const Kernels& k = kernels();
  parallel_ranges(n, min_elements_per_thread(kind), [&](int64_t b, int64_t e) {
    k.forward(y + b, mask != nullptr ? mask + b / 8 : nullptr, x + b, e - b, kind, params);
  });
}

void activation_backward(float* dx, const uint8_t* mask, const float* saved, const float* dy,
                         int64_t n, Activation kind, const ActivationParams& params) {
  check_kind(kind);
  FL_CHECK(n >= 0, "activation_backward: negative size ", n);
  const bool needs_mask = activation_saved(kind) == ActivationSaved::kMask;
  FL_CHECK(n == 0 || (needs_mask ? mask != nullptr : saved != nullptr),
           "activation_backward: missing the saved ", needs_mask ? "mask" : "tensor");
  FL_CHECK(kind != Activation::kSoftplus || params.beta != 0.0f, "softplus: beta must be nonzero");
  if (n == 0) return;
  const Kernels& k = kernels();
  parallel_ranges(n, min_elements_per_thread(kind), [&](int64_t b, int64_t e) {
    k.backward(dx + b, needs_mask ? mask + b / 8 : nullptr, needs_mask ? nullptr : saved + b,
               dy + b, e - b, kind, params);
  });
}

void add_forward(float* y, const float* a, const float* b, int64_t n) {
  FL_CHECK(n >= 0, "add: negative size ", n);
  if (n == 0) return;
  const Kernels& k = kernels();
  parallel_ranges(n, int64_t{1} << 16, [&](int64_t s, int64_t e) { k.add(y + s, a + s, b + s, e - s); });
}

}  // namespace fastlayers
