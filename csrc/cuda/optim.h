// CUDA launchers of the optimiser updates of cpu/optim.h (SGD with momentum / Nesterov /
// weight decay, RMSprop, Adagrad, Adam / AdamW / AMSGrad): the same parameter structs and
// the same float32 element arithmetic (PyTorch's single-tensor torch.optim code), one fused
// pass over device arrays of n elements, updated in place on the caller's stream.
#pragma once

#include <cstdint>

#include "cpu/optim.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// param (n) updated; velocity (n) updated, may be null when momentum == 0; grad (n).
void sgd_step(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p,
              cudaStream_t stream);

// param, square_avg (n) updated; momentum_buf (n) when momentum > 0, grad_avg (n) when
// centered (else may be null); grad (n).
void rmsprop_step(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                  const float* grad, int64_t n, const RmspropParams& p, cudaStream_t stream);

// param, sum_sq (n) updated; grad (n).
void adagrad_step(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p,
                  cudaStream_t stream);

// param, m, v (n) updated; max_v (n) when amsgrad (else may be null); grad (n).
void adam_step(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
               const AdamParams& p, cudaStream_t stream);

}  // namespace fastlayers::cuda
