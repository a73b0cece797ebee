// CUDA kernels of batch norm (2-D (N, F) and 4-D (N, C, H, W) input) and layer norm,
// forward and backward, with the semantics of the CPU kernels (cpu/norm.h, whose shape
// structs they share): saved mean / invstd in double, running statistics updated in place
// in training mode (running_var with the unbiased variance). Launched on the caller's
// stream; every launch checked; workspaces are cudaMalloc'ed per call and freed on every
// path.
//
// Numerics: statistics are accumulated on data shifted by one sample of the channel/row
// (x - K), per thread by Welford (batch norm) or two passes (layer norm), and combined
// across threads and blocks in double (Chan's formula), so a mean of 1e4 with a standard
// deviation of 1e-2 keeps its variance. The mean is applied as two floats (hi + lo).
#pragma once

#include <cstdint>

#include "cpu/norm.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// Training-mode forward (see fastlayers::batch_norm_forward_train); running_mean,
// running_var, gamma, beta may be null. Requires M = N*S >= 2 when running_var is given.
void batch_norm_forward_train(float* y, double* save_mean, double* save_invstd, float* running_mean,
                              float* running_var, const float* x, const float* gamma, const float* beta,
                              const BatchNormShape& shape, double momentum, double eps, cudaStream_t stream);

// Eval-mode forward with the running statistics (required); save_mean / save_invstd get
// running_mean and 1 / sqrt(running_var + eps).
void batch_norm_forward_eval(float* y, double* save_mean, double* save_invstd, const float* x,
                             const float* running_mean, const float* running_var, const float* gamma,
                             const float* beta, const BatchNormShape& shape, double eps, cudaStream_t stream);

// dx and (when not null) dgamma = sum(dout * xhat), dbeta = sum(dout) per channel.
void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dout, const float* x,
                         const double* save_mean, const double* save_invstd, const float* gamma,
                         const BatchNormShape& shape, bool training, cudaStream_t stream);

// y (rows, D); save_mean, save_invstd (rows,) double; x (rows, D); weight, bias (D,) or null.
void layer_norm_forward(float* y, double* save_mean, double* save_invstd, const float* x, const float* weight,
                        const float* bias, const LayerNormShape& shape, double eps, cudaStream_t stream);

// dx (rows, D); dweight, dbias (D,) or null (not written).
void layer_norm_backward(float* dx, float* dweight, float* dbias, const float* dout, const float* x,
                         const double* save_mean, const double* save_invstd, const float* weight,
                         const LayerNormShape& shape, cudaStream_t stream);

}  // namespace fastlayers::cuda
