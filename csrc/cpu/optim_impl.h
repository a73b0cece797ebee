// The optimiser update loops, written once and compiled per instruction set by
// optim_avx512.cpp, optim_avx2.cpp and optim_scalar.cpp (see common/dispatch.h): the
// divisions and square roots of Adam, RMSprop and Adagrad make the baseline SSE2 loops
// compute-bound (Adam: ~1 G elements/s on one core, below what memory delivers), and
// 8- or 16-wide vectors double that.
//
// Everything here has internal linkage (anonymous namespace): each ISA translation unit
// gets its own copy, so the linker can never hand AVX-512 code to another path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/threads.h"
#include "cpu/optim.h"
#include "cpu/optim_kernels.h"

namespace fastlayers {
namespace {

// Elements per parallel work item, and the array size from which threads are used
// (below it, starting threads costs more than the update).
constexpr int64_t kChunk = int64_t{1} << 14;
constexpr int64_t kParallelMin = int64_t{1} << 17;

// Calls body(begin, end) over [0, n) in chunks, in parallel for large n.
template <typename Body>
void for_chunks(int64_t n, const Body& body) {
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const int nt = n >= kParallelMin ? static_cast<int>(std::min<int64_t>(get_num_threads(), nchunks)) : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t ci = 0; ci < nchunks; ++ci) body(ci * kChunk, std::min(n, (ci + 1) * kChunk));
}

// PyTorch's lerp: self + w * (end - self) for |w| < 0.5, else end - (end - self) * (1 - w).
template <bool kSmallWeight>
inline float lerp(float self, float end, float w, float one_minus_w) {
  return kSmallWeight ? self + w * (end - self) : end - (end - self) * one_minus_w;
}

// ---- SGD ------------------------------------------------------------------------------

template <bool kWd, bool kMomentum, bool kNesterov>
void sgd_impl(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p) {
  const float lr = static_cast<float>(p.lr), wd = static_cast<float>(p.weight_decay);
  const float mom = static_cast<float>(p.momentum);
  const float damp = static_cast<float>(1.0 - p.dampening);
  const bool first = p.first_step;
  for_chunks(n, [&](int64_t b, int64_t e) {
    if (kMomentum && first) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) {
        float g = grad[i];
        if (kWd) g = g + wd * param[i];
        const float buf = g;  // first step: the buffer is a copy of g (no dampening)
        velocity[i] = buf;
        g = kNesterov ? g + mom * buf : buf;
        param[i] = param[i] + (-lr) * g;
      }
    } else {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) {
        float g = grad[i];
        if (kWd) g = g + wd * param[i];
        if (kMomentum) {
          const float buf = velocity[i] * mom + damp * g;
          velocity[i] = buf;
          g = kNesterov ? g + mom * buf : buf;
        }
        param[i] = param[i] + (-lr) * g;
      }
    }
  });
}

// ---- RMSprop --------------------------------------------------------------------------

template <bool kWd, bool kMomentum, bool kCentered, bool kSmallWeight>
void rmsprop_impl(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                  const float* grad, int64_t n, const RmspropParams& p) {
  const float lr = static_cast<float>(p.lr), wd = static_cast<float>(p.weight_decay);
  const float alpha = static_cast<float>(p.alpha), one_m_alpha = static_cast<float>(1.0 - p.alpha);
  // lerp weight w = 1 - alpha and its complement for the large-weight form.
  const float lerp_c = static_cast<float>(p.alpha);
  const float eps = static_cast<float>(p.eps), mom = static_cast<float>(p.momentum);
  for_chunks(n, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      float g = grad[i];
      if (kWd) g = g + wd * param[i];
      const float sq = square_avg[i] * alpha + one_m_alpha * (g * g);
      square_avg[i] = sq;
      float avg;
      if (kCentered) {
        const float ga = lerp<kSmallWeight>(grad_avg[i], g, one_m_alpha, lerp_c);
        grad_avg[i] = ga;
        avg = std::sqrt(sq + (-1.0f) * (ga * ga)) + eps;
      } else {
        avg = std::sqrt(sq) + eps;
      }
      if (kMomentum) {
        const float buf = momentum_buf[i] * mom + g / avg;
        momentum_buf[i] = buf;
        param[i] = param[i] + (-lr) * buf;
      } else {
        param[i] = param[i] + (-lr) * (g / avg);
      }
    }
  });
}

// ---- Adagrad --------------------------------------------------------------------------

template <bool kWd>
void adagrad_impl(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p) {
  const float wd = static_cast<float>(p.weight_decay), eps = static_cast<float>(p.eps);
  // clr = lr / (1 + (step - 1) * lr_decay)
  const float clr = static_cast<float>(p.lr / (1.0 + static_cast<double>(p.step - 1) * p.lr_decay));
  for_chunks(n, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      float g = grad[i];
      if (kWd) g = g + wd * param[i];
      const float s = sum_sq[i] + g * g;
      sum_sq[i] = s;
      param[i] = param[i] + (-clr) * (g / (std::sqrt(s) + eps));
    }
  });
}

// ---- Adam / AdamW ---------------------------------------------------------------------

template <bool kL2, bool kDecoupled, bool kAmsgrad, bool kSmallWeight>
void adam_impl(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
               const AdamParams& p) {
  const double step = static_cast<double>(p.step);
  const double bc1 = 1.0 - std::pow(p.beta1, step);
  const double bc2 = 1.0 - std::pow(p.beta2, step);
  const float step_size = static_cast<float>(p.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float w1 = static_cast<float>(1.0 - p.beta1), w1c = static_cast<float>(p.beta1);
  const float beta2 = static_cast<float>(p.beta2), one_m_beta2 = static_cast<float>(1.0 - p.beta2);
  const float eps = static_cast<float>(p.eps), wd = static_cast<float>(p.weight_decay);
  const float decay = static_cast<float>(1.0 - p.lr * p.weight_decay);
  for_chunks(n, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      float pi = param[i];
      float g = grad[i];
      if (kDecoupled) pi = pi * decay;
      if (kL2) g = g + wd * pi;
      const float mi = lerp<kSmallWeight>(m[i], g, w1, w1c);
      const float vi = v[i] * beta2 + one_m_beta2 * (g * g);
      m[i] = mi;
      v[i] = vi;
      float vmax = vi;
      if (kAmsgrad) {
        vmax = std::max(max_v[i], vi);
        max_v[i] = vmax;
      }
      const float denom = std::sqrt(vmax) / bc2_sqrt + eps;
      param[i] = pi + (-step_size) * (mi / denom);
    }
  });
}

// ---- Template selection: one branch-free loop per combination of options ------------

void sgd_select(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p) {
  const bool wd = p.weight_decay != 0.0;
  if (p.momentum == 0.0) {
    wd ? sgd_impl<true, false, false>(param, velocity, grad, n, p)
       : sgd_impl<false, false, false>(param, velocity, grad, n, p);
  } else if (p.nesterov) {
    wd ? sgd_impl<true, true, true>(param, velocity, grad, n, p)
       : sgd_impl<false, true, true>(param, velocity, grad, n, p);
  } else {
    wd ? sgd_impl<true, true, false>(param, velocity, grad, n, p)
       : sgd_impl<false, true, false>(param, velocity, grad, n, p);
  }
}

void rmsprop_select(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                    const float* grad, int64_t n, const RmspropParams& p) {
  using Fn = void (*)(float*, float*, float*, float*, const float*, int64_t, const RmspropParams&);
  static const Fn table[16] = {
      rmsprop_impl<false, false, false, false>, rmsprop_impl<false, false, false, true>,
      rmsprop_impl<false, false, true, false>,  rmsprop_impl<false, false, true, true>,
      rmsprop_impl<false, true, false, false>,  rmsprop_impl<false, true, false, true>,
      rmsprop_impl<false, true, true, false>,   rmsprop_impl<false, true, true, true>,
      rmsprop_impl<true, false, false, false>,  rmsprop_impl<true, false, false, true>,
      rmsprop_impl<true, false, true, false>,   rmsprop_impl<true, false, true, true>,
      rmsprop_impl<true, true, false, false>,   rmsprop_impl<true, true, false, true>,
      rmsprop_impl<true, true, true, false>,    rmsprop_impl<true, true, true, true>,
  };
  const bool wd = p.weight_decay != 0.0, mom = p.momentum > 0.0;
  const bool small = std::fabs(1.0 - p.alpha) < 0.5;  // lerp weight 1 - alpha
  table[(wd ? 8 : 0) + (mom ? 4 : 0) + (p.centered ? 2 : 0) + (small ? 1 : 0)](
      param, square_avg, momentum_buf, grad_avg, grad, n, p);
}

void adagrad_select(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p) {
  p.weight_decay != 0.0 ? adagrad_impl<true>(param, sum_sq, grad, n, p)
                        : adagrad_impl<false>(param, sum_sq, grad, n, p);
}

void adam_select(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
                 const AdamParams& p) {
  using Fn = void (*)(float*, float*, float*, float*, const float*, int64_t, const AdamParams&);
  // L2 (index 4..7) and decoupled (8..11) weight decay never both hold.
  static const Fn table[12] = {
      adam_impl<false, false, false, false>, adam_impl<false, false, false, true>,
      adam_impl<false, false, true, false>,  adam_impl<false, false, true, true>,
      adam_impl<true, false, false, false>,  adam_impl<true, false, false, true>,
      adam_impl<true, false, true, false>,   adam_impl<true, false, true, true>,
      adam_impl<false, true, false, false>,  adam_impl<false, true, false, true>,
      adam_impl<false, true, true, false>,   adam_impl<false, true, true, true>,
  };
  const bool wd = p.weight_decay != 0.0;
  const bool l2 = wd && !p.decoupled_weight_decay, dec = wd && p.decoupled_weight_decay;
  const bool small = std::fabs(1.0 - p.beta1) < 0.5;  // lerp weight 1 - beta1
  table[(l2 ? 4 : dec ? 8 : 0) + (p.amsgrad ? 2 : 0) + (small ? 1 : 0)](param, m, v, max_v, grad, n, p);
}

OptimKernels make_optim_kernels() { return {sgd_select, rmsprop_select, adagrad_select, adam_select}; }

}  // namespace
}  // namespace fastlayers
