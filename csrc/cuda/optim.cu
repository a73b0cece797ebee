// CUDA kernels of the optimiser updates (contract in cuda/optim.h; formulas in
// fastlayers/reference/optim.py). Each step is one grid-stride pass in which a thread
// reads param, grad and the state buffers of 4 consecutive elements (float4 when every
// pointer is 16-byte aligned), updates them in registers and writes them back: every
// element has exactly one reader and writer. The options that change which buffers are
// touched (weight decay, momentum, Nesterov, centered, AMSGrad, decoupled decay) are
// template parameters, as in cpu/optim_impl.h, so the element math matches the CPU kernel
// step for step (scalar coefficients computed in double on the host, rounded once).
#include "cuda/optim.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "cuda/eltwise.cuh"

namespace fastlayers::cuda {
namespace {

using eltwise::load_group;
using eltwise::store_group;

// PyTorch's lerp: self + w (end - self) for |w| < 0.5, else end - (end - self)(1 - w).
__device__ __forceinline__ float lerp(float self, float end, float w, float one_minus_w, bool small) {
  return small ? self + w * (end - self) : end - (end - self) * one_minus_w;
}

// ---- SGD ------------------------------------------------------------------------------

template <bool kWd, bool kMomentum, bool kNesterov, bool kVec>
__global__ void sgd_kernel(float* param, float* velocity, const float* grad, int64_t n, float lr,
                           float wd, float mom, float damp, bool first) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t gi = eltwise::first_item(); gi < groups; gi += eltwise::grid_stride()) {
    const int64_t i = 4 * gi;
    float p[4], g[4], buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // buf: not read on the first step
    load_group<4, kVec>(p, param, i, n);
    load_group<4, kVec>(g, grad, i, n);
    if (kMomentum && !first) load_group<4, kVec>(buf, velocity, i, n);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float gk = g[k];
      if (kWd) gk = gk + wd * p[k];
      if (kMomentum) {
        // First step: the buffer is a copy of g (PyTorch's "buffer is None", no dampening).
        buf[k] = first ? gk : buf[k] * mom + damp * gk;
        gk = kNesterov ? gk + mom * buf[k] : buf[k];
      }
      p[k] = p[k] + (-lr) * gk;
    }
    store_group<4, kVec>(param, p, i, n);
    if (kMomentum) store_group<4, kVec>(velocity, buf, i, n);
  }
}

// ---- RMSprop --------------------------------------------------------------------------

template <bool kWd, bool kMomentum, bool kCentered, bool kVec>
__global__ void rmsprop_kernel(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                               const float* grad, int64_t n, float lr, float wd, float alpha,
                               float one_m_alpha, float eps, float mom, bool small_weight) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t gi = eltwise::first_item(); gi < groups; gi += eltwise::grid_stride()) {
    const int64_t i = 4 * gi;
    float p[4], g[4], sq[4], buf[4], ga[4];
    load_group<4, kVec>(p, param, i, n);
    load_group<4, kVec>(g, grad, i, n);
    load_group<4, kVec>(sq, square_avg, i, n);
    if (kMomentum) load_group<4, kVec>(buf, momentum_buf, i, n);
    if (kCentered) load_group<4, kVec>(ga, grad_avg, i, n);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float gk = g[k];
      if (kWd) gk = gk + wd * p[k];
      sq[k] = sq[k] * alpha + one_m_alpha * (gk * gk);
      float avg;
      if (kCentered) {
        ga[k] = lerp(ga[k], gk, one_m_alpha, alpha, small_weight);  // weight 1 - alpha
        avg = sqrtf(sq[k] + (-1.0f) * (ga[k] * ga[k])) + eps;
      } else {
        avg = sqrtf(sq[k]) + eps;
      }
      if (kMomentum) {
        buf[k] = buf[k] * mom + gk / avg;
        p[k] = p[k] + (-lr) * buf[k];
      } else {
        p[k] = p[k] + (-lr) * (gk / avg);
      }
    }
    store_group<4, kVec>(param, p, i, n);
    store_group<4, kVec>(square_avg, sq, i, n);
    if (kMomentum) store_group<4, kVec>(momentum_buf, buf, i, n);
    if (kCentered) store_group<4, kVec>(grad_avg, ga, i, n);
  }
}

// ---- Adagrad --------------------------------------------------------------------------

template <bool kWd, bool kVec>
__global__ void adagrad_kernel(float* param, float* sum_sq, const float* grad, int64_t n, float clr,
                               float wd, float eps) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t gi = eltwise::first_item(); gi < groups; gi += eltwise::grid_stride()) {
    const int64_t i = 4 * gi;
    float p[4], g[4], s[4];
    load_group<4, kVec>(p, param, i, n);
    load_group<4, kVec>(g, grad, i, n);
    load_group<4, kVec>(s, sum_sq, i, n);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float gk = g[k];
      if (kWd) gk = gk + wd * p[k];
      s[k] = s[k] + gk * gk;
      p[k] = p[k] + (-clr) * (gk / (sqrtf(s[k]) + eps));
    }
    store_group<4, kVec>(param, p, i, n);
    store_group<4, kVec>(sum_sq, s, i, n);
  }
}

// ---- Adam / AdamW ---------------------------------------------------------------------

struct AdamCoef {
  float step_size;  // lr / (1 - beta1^t)
  float bc2_sqrt;   // sqrt(1 - beta2^t)
  float w1, w1c;    // lerp weight 1 - beta1 and its complement beta1
  float beta2, one_m_beta2, eps, wd;
  float decay;      // AdamW: 1 - lr wd
  bool small_weight;
};

template <bool kL2, bool kDecoupled, bool kAmsgrad, bool kVec>
__global__ void adam_kernel(float* param, float* m, float* v, float* max_v, const float* grad,
                            int64_t n, AdamCoef c) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t gi = eltwise::first_item(); gi < groups; gi += eltwise::grid_stride()) {
    const int64_t i = 4 * gi;
    float p[4], g[4], mk[4], vk[4], mv[4];
    load_group<4, kVec>(p, param, i, n);
    load_group<4, kVec>(g, grad, i, n);
    load_group<4, kVec>(mk, m, i, n);
    load_group<4, kVec>(vk, v, i, n);
    if (kAmsgrad) load_group<4, kVec>(mv, max_v, i, n);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float pk = p[k], gk = g[k];
      if (kDecoupled) pk = pk * c.decay;
      if (kL2) gk = gk + c.wd * pk;
      mk[k] = lerp(mk[k], gk, c.w1, c.w1c, c.small_weight);
      vk[k] = vk[k] * c.beta2 + c.one_m_beta2 * (gk * gk);
      float vmax = vk[k];
      if (kAmsgrad) {
        vmax = mv[k] < vk[k] ? vk[k] : mv[k];  // std::max(max_v, v), as the CPU kernel
        mv[k] = vmax;
      }
      const float denom = sqrtf(vmax) / c.bc2_sqrt + c.eps;
      p[k] = pk + (-c.step_size) * (mk[k] / denom);
    }
    store_group<4, kVec>(param, p, i, n);
    store_group<4, kVec>(m, mk, i, n);
    store_group<4, kVec>(v, vk, i, n);
    if (kAmsgrad) store_group<4, kVec>(max_v, mv, i, n);
  }
}

// ---- Launch helpers -------------------------------------------------------------------

dim3 grid(int64_t n) { return eltwise::grid_for((n + 3) / 4); }

void check_common(const void* param, const void* grad, int64_t n, double lr) {
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  FL_CHECK(n == 0 || (param && grad), "param/grad: null pointer");
  FL_CHECK(lr >= 0.0, "lr: expected >= 0, got ", lr);
}

template <bool kWd, bool kMomentum, bool kNesterov>
void launch_sgd(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p,
                cudaStream_t stream) {
  auto* kernel = eltwise::aligned16(param, velocity, grad) ? &sgd_kernel<kWd, kMomentum, kNesterov, true>
                                                           : &sgd_kernel<kWd, kMomentum, kNesterov, false>;
  FL_LAUNCH(kernel, grid(n), eltwise::block_dim(), 0, stream, param, velocity, grad, n,
            static_cast<float>(p.lr), static_cast<float>(p.weight_decay), static_cast<float>(p.momentum),
            static_cast<float>(1.0 - p.dampening), p.first_step);
}

template <bool kWd, bool kMomentum, bool kCentered>
void launch_rmsprop(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                    const float* grad, int64_t n, const RmspropParams& p, cudaStream_t stream) {
  auto* kernel = eltwise::aligned16(param, square_avg, momentum_buf, grad_avg, grad)
                     ? &rmsprop_kernel<kWd, kMomentum, kCentered, true>
                     : &rmsprop_kernel<kWd, kMomentum, kCentered, false>;
  const bool small = std::fabs(1.0 - p.alpha) < 0.5;  // lerp weight 1 - alpha
  FL_LAUNCH(kernel, grid(n), eltwise::block_dim(), 0, stream, param, square_avg, momentum_buf, grad_avg,
            grad, n, static_cast<float>(p.lr), static_cast<float>(p.weight_decay),
            static_cast<float>(p.alpha), static_cast<float>(1.0 - p.alpha), static_cast<float>(p.eps),
            static_cast<float>(p.momentum), small);
}

template <bool kL2, bool kDecoupled, bool kAmsgrad>
void launch_adam(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
                 const AdamCoef& c, cudaStream_t stream) {
  auto* kernel = eltwise::aligned16(param, m, v, max_v, grad) ? &adam_kernel<kL2, kDecoupled, kAmsgrad, true>
                                                             : &adam_kernel<kL2, kDecoupled, kAmsgrad, false>;
  FL_LAUNCH(kernel, grid(n), eltwise::block_dim(), 0, stream, param, m, v, max_v, grad, n, c);
}

std::string n_str(int64_t n) { return "n=" + std::to_string(n); }

}  // namespace

void sgd_step(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p,
              cudaStream_t stream) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(p.momentum >= 0.0, "momentum: expected >= 0, got ", p.momentum);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(!p.nesterov || (p.momentum > 0.0 && p.dampening == 0.0),
           "nesterov: requires momentum > 0 and dampening == 0");
  const bool mom = p.momentum != 0.0, wd = p.weight_decay != 0.0;
  FL_CHECK(!mom || n == 0 || velocity, "velocity: required when momentum != 0");
  if (n == 0) return;
  if (!mom) {
    wd ? launch_sgd<true, false, false>(param, nullptr, grad, n, p, stream)
       : launch_sgd<false, false, false>(param, nullptr, grad, n, p, stream);
  } else if (p.nesterov) {
    wd ? launch_sgd<true, true, true>(param, velocity, grad, n, p, stream)
       : launch_sgd<false, true, true>(param, velocity, grad, n, p, stream);
  } else {
    wd ? launch_sgd<true, true, false>(param, velocity, grad, n, p, stream)
       : launch_sgd<false, true, false>(param, velocity, grad, n, p, stream);
  }
  check_launch("sgd_step", n_str(n));
}

void rmsprop_step(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                  const float* grad, int64_t n, const RmspropParams& p, cudaStream_t stream) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(p.alpha >= 0.0, "alpha: expected >= 0, got ", p.alpha);
  FL_CHECK(p.eps >= 0.0, "eps: expected >= 0, got ", p.eps);
  FL_CHECK(p.momentum >= 0.0, "momentum: expected >= 0, got ", p.momentum);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(n == 0 || square_avg, "square_avg: null pointer");
  const bool mom = p.momentum > 0.0, wd = p.weight_decay != 0.0;
  FL_CHECK(!mom || n == 0 || momentum_buf, "momentum_buf: required when momentum > 0");
  FL_CHECK(!p.centered || n == 0 || grad_avg, "grad_avg: required when centered");
  if (n == 0) return;
  float* mb = mom ? momentum_buf : nullptr;
  float* ga = p.centered ? grad_avg : nullptr;
  using Launch = void (*)(float*, float*, float*, float*, const float*, int64_t, const RmspropParams&,
                          cudaStream_t);
  static const Launch table[8] = {
      launch_rmsprop<false, false, false>, launch_rmsprop<false, false, true>,
      launch_rmsprop<false, true, false>,  launch_rmsprop<false, true, true>,
      launch_rmsprop<true, false, false>,  launch_rmsprop<true, false, true>,
      launch_rmsprop<true, true, false>,   launch_rmsprop<true, true, true>,
  };
  table[(wd ? 4 : 0) + (mom ? 2 : 0) + (p.centered ? 1 : 0)](param, square_avg, mb, ga, grad, n, p, stream);
  check_launch("rmsprop_step", n_str(n));
}

void adagrad_step(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p,
                  cudaStream_t stream) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(n == 0 || sum_sq, "sum_sq: null pointer");
  FL_CHECK(p.eps >= 0.0, "eps: expected >= 0, got ", p.eps);
  FL_CHECK(p.lr_decay >= 0.0, "lr_decay: expected >= 0, got ", p.lr_decay);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(p.step >= 1, "step: expected >= 1, got ", p.step);
  if (n == 0) return;
  // clr = lr / (1 + (step - 1) lr_decay), in double as the CPU kernel.
  const float clr = static_cast<float>(p.lr / (1.0 + static_cast<double>(p.step - 1) * p.lr_decay));
  const float wd = static_cast<float>(p.weight_decay), eps = static_cast<float>(p.eps);
  const bool vec = eltwise::aligned16(param, sum_sq, grad);
  auto* kernel = p.weight_decay != 0.0 ? (vec ? &adagrad_kernel<true, true> : &adagrad_kernel<true, false>)
                                       : (vec ? &adagrad_kernel<false, true> : &adagrad_kernel<false, false>);
  FL_LAUNCH(kernel, grid(n), eltwise::block_dim(), 0, stream, param, sum_sq, grad, n, clr, wd, eps);
  check_launch("adagrad_step", n_str(n));
}

void adam_step(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
               const AdamParams& p, cudaStream_t stream) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(n == 0 || (m && v), "m/v: null pointer");
  FL_CHECK(p.beta1 >= 0.0 && p.beta1 < 1.0, "beta1: expected in [0, 1), got ", p.beta1);
  FL_CHECK(p.beta2 >= 0.0 && p.beta2 < 1.0, "beta2: expected in [0, 1), got ", p.beta2);
  FL_CHECK(p.eps >= 0.0, "eps: expected >= 0, got ", p.eps);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(p.step >= 1, "step: expected >= 1, got ", p.step);
  FL_CHECK(!p.amsgrad || n == 0 || max_v, "max_v: required when amsgrad");
  if (n == 0) return;
  const double step = static_cast<double>(p.step);
  AdamCoef c;
  c.step_size = static_cast<float>(p.lr / (1.0 - std::pow(p.beta1, step)));
  c.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(p.beta2, step)));
  c.w1 = static_cast<float>(1.0 - p.beta1);
  c.w1c = static_cast<float>(p.beta1);
  c.beta2 = static_cast<float>(p.beta2);
  c.one_m_beta2 = static_cast<float>(1.0 - p.beta2);
  c.eps = static_cast<float>(p.eps);
  c.wd = static_cast<float>(p.weight_decay);
  c.decay = static_cast<float>(1.0 - p.lr * p.weight_decay);
  c.small_weight = std::fabs(1.0 - p.beta1) < 0.5;  // lerp weight 1 - beta1
  const bool wd = p.weight_decay != 0.0;
  const bool l2 = wd && !p.decoupled_weight_decay, dec = wd && p.decoupled_weight_decay;
  float* mv = p.amsgrad ? max_v : nullptr;
  if (l2) {
    p.amsgrad ? launch_adam<true, false, true>(param, m, v, mv, grad, n, c, stream)
              : launch_adam<true, false, false>(param, m, v, mv, grad, n, c, stream);
  } else if (dec) {
    p.amsgrad ? launch_adam<false, true, true>(param, m, v, mv, grad, n, c, stream)
              : launch_adam<false, true, false>(param, m, v, mv, grad, n, c, stream);
  } else {
    p.amsgrad ? launch_adam<false, false, true>(param, m, v, mv, grad, n, c, stream)
              : launch_adam<false, false, false>(param, m, v, mv, grad, n, c, stream);
  }
  check_launch("adam_step", n_str(n));
}

}  // namespace fastlayers::cuda
