// Optimiser updates on the CPU (contract in optim.h): argument checks, then the loops
// of the SIMD path in use (optim_impl.h, built per ISA; chosen by FL_SIMD_SELECT).
//
// Each update is one pass: every element of param, grad and the state buffers is read and
// written once, in a vectorisable loop over a chunk; chunks are spread over threads for
// large arrays. Options that change the arithmetic are template parameters, so each inner
// loop is branch-free. Element math follows PyTorch's single-tensor code step by step
// (e.g. lerp for Adam's first moment), so results agree to float rounding.
#include "cpu/optim.h"

#include "common/dispatch.h"
#include "common/error.h"
#include "cpu/optim_kernels.h"

namespace fastlayers {
namespace {

void check_common(const void* param, const void* grad, int64_t n, double lr) {
  FL_CHECK(n >= 0, "n: expected >= 0, got ", n);
  FL_CHECK(n == 0 || (param && grad), "param/grad: null pointer");
  FL_CHECK(lr >= 0.0, "lr: expected >= 0, got ", lr);
}

}  // namespace

void sgd_step(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(p.momentum >= 0.0, "momentum: expected >= 0, got ", p.momentum);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(!p.nesterov || (p.momentum > 0.0 && p.dampening == 0.0),
           "nesterov: requires momentum > 0 and dampening == 0");
  const bool mom = p.momentum != 0.0;
  FL_CHECK(!mom || n == 0 || velocity, "velocity: required when momentum != 0");
  FL_SIMD_SELECT(optim_kernels).sgd(param, velocity, grad, n, p);
}

void rmsprop_step(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                  const float* grad, int64_t n, const RmspropParams& p) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(p.alpha >= 0.0, "alpha: expected >= 0, got ", p.alpha);
  FL_CHECK(p.eps >= 0.0, "eps: expected >= 0, got ", p.eps);
  FL_CHECK(p.momentum >= 0.0, "momentum: expected >= 0, got ", p.momentum);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(n == 0 || square_avg, "square_avg: null pointer");
  const bool mom = p.momentum > 0.0;
  FL_CHECK(!mom || n == 0 || momentum_buf, "momentum_buf: required when momentum > 0");
  FL_CHECK(!p.centered || n == 0 || grad_avg, "grad_avg: required when centered");
  FL_SIMD_SELECT(optim_kernels).rmsprop(param, square_avg, momentum_buf, grad_avg, grad, n, p);
}

void adagrad_step(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(n == 0 || sum_sq, "sum_sq: null pointer");
  FL_CHECK(p.eps >= 0.0, "eps: expected >= 0, got ", p.eps);
  FL_CHECK(p.lr_decay >= 0.0, "lr_decay: expected >= 0, got ", p.lr_decay);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(p.step >= 1, "step: expected >= 1, got ", p.step);
  FL_SIMD_SELECT(optim_kernels).adagrad(param, sum_sq, grad, n, p);
}

void adam_step(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
               const AdamParams& p) {
  check_common(param, grad, n, p.lr);
  FL_CHECK(n == 0 || (m && v), "m/v: null pointer");
  FL_CHECK(p.beta1 >= 0.0 && p.beta1 < 1.0, "beta1: expected in [0, 1), got ", p.beta1);
  FL_CHECK(p.beta2 >= 0.0 && p.beta2 < 1.0, "beta2: expected in [0, 1), got ", p.beta2);
  FL_CHECK(p.eps >= 0.0, "eps: expected >= 0, got ", p.eps);
  FL_CHECK(p.weight_decay >= 0.0, "weight_decay: expected >= 0, got ", p.weight_decay);
  FL_CHECK(p.step >= 1, "step: expected >= 1, got ", p.step);
  FL_CHECK(!p.amsgrad || n == 0 || max_v, "max_v: required when amsgrad");
  FL_SIMD_SELECT(optim_kernels).adam(param, m, v, max_v, grad, n, p);
}

}  // namespace fastlayers
