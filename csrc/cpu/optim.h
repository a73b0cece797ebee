// Optimiser updates on the CPU: SGD (momentum, Nesterov, weight decay), RMSprop, Adagrad,
// Adam / AdamW (optionally AMSGrad). Each is one fused pass over flat float32 arrays of
// n elements that updates the parameters and their state buffers in place, with the
// arithmetic of PyTorch's single-tensor torch.optim implementations (float32 element
// math; scalar coefficients computed in double and rounded to float once).
#pragma once

#include <cstdint>

namespace fastlayers {

struct SgdParams {
  double lr;
  double momentum;      // 0 disables the velocity buffer
  double dampening;
  double weight_decay;  // L2 term added to the gradient: g = grad + wd * param
  bool nesterov;        // g = g + momentum * buf instead of g = buf
  bool first_step;      // the velocity is initialised to g (PyTorch's "buffer is None")
};
// param (n) updated; velocity (n) updated, may be null when momentum == 0; grad (n).
void sgd_step(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p);

struct RmspropParams {
  double lr;
  double alpha;
  double eps;
  double weight_decay;
  double momentum;  // > 0 uses momentum_buf
  bool centered;    // uses grad_avg
};
// param, square_avg (n) updated; momentum_buf (n) used when momentum > 0, grad_avg (n)
// when centered (else may be null); grad (n).
void rmsprop_step(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                  const float* grad, int64_t n, const RmspropParams& p);

struct AdagradParams {
  double lr;
  double eps;
  double weight_decay;
  double lr_decay;
  int64_t step;  // 1 on the first call
};
// param, sum_sq (n) updated; grad (n).
void adagrad_step(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p);

struct AdamParams {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  int64_t step;                 // 1 on the first call (bias correction 1 - beta^step)
  bool decoupled_weight_decay;  // AdamW: param *= 1 - lr * wd before the update
  bool amsgrad;                 // uses max_v
};
// param, m, v (n) updated; max_v (n) updated when amsgrad (else may be null); grad (n).
void adam_step(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
               const AdamParams& p);

}  // namespace fastlayers
