// Normalisation kernels on the CPU: batch norm (2-D (N, F) and 4-D (N, C, H, W) input)
// and layer norm, forward and backward, PyTorch semantics.
//
// Statistics are accumulated per channel (batch norm) or per row (layer norm) as sums of
// d = x - K for a shift K close to the mean (the mean of a few samples), in float over
// short blocks and in double across blocks, so that large offsets (mean 1e4, std 1e-2)
// and large N*H*W stay accurate in a single pass; a second pass with K = mean runs only
// when the first shows the shift was poor. The mean is kept in double (the saved state)
// and applied as two floats (hi + lo), because a float mean of 1e4 is off by up to 5e-4,
// which is 5% of a 1e-2 standard deviation.
#pragma once

#include <cstdint>

namespace fastlayers {

// Batch-norm input viewed as (N, C, S): S = H*W for 4-D input, S = 1 for 2-D (N, F)
// input (C = F). Statistics are over the M = N*S elements of each channel.
struct BatchNormShape {
  int64_t n;
  int64_t c;
  int64_t s;
};

// Training-mode forward: batch mean and biased variance per channel.
//   y            (N, C, S)  output
//   save_mean    (C,)       batch mean, double (for backward)
//   save_invstd  (C,)       1 / sqrt(biased var + eps), double (for backward)
//   running_mean (C,)       updated in place: (1 - momentum) * rm + momentum * mean; may be null
//   running_var  (C,)       updated in place with the UNBIASED variance (M / (M - 1)); may be null
//   x            (N, C, S)
//   gamma, beta  (C,)       may be null (scale 1, shift 0)
// Requires M = N*S >= 2 when running_var is given, eps > 0.
void batch_norm_forward_train(float* y, double* save_mean, double* save_invstd,
                              float* running_mean, float* running_var, const float* x,
                              const float* gamma, const float* beta, const BatchNormShape& shape,
                              double momentum, double eps);

// Eval-mode forward with the running statistics: y = (x - rm) / sqrt(rv + eps) * gamma + beta.
// save_mean / save_invstd receive rm and 1 / sqrt(rv + eps) for backward.
void batch_norm_forward_eval(float* y, double* save_mean, double* save_invstd, const float* x,
                             const float* running_mean, const float* running_var,
                             const float* gamma, const float* beta, const BatchNormShape& shape,
                             double eps);

// Backward. training: dx = gamma * invstd / M * (M * dout - sum(dout) - xhat * sum(dout * xhat));
// eval: dx = dout * gamma * invstd (the statistics are constants). dgamma = sum(dout * xhat),
// dbeta = sum(dout) per channel.
//   dx (N, C, S); dgamma, dbeta (C,) may be null (not written); dout, x (N, C, S);
//   save_mean, save_invstd (C,) from the forward; gamma (C,) may be null.
void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dout,
                         const float* x, const double* save_mean, const double* save_invstd,
                         const float* gamma, const BatchNormShape& shape, bool training);

// Layer norm over the last D elements of each of `rows` rows.
struct LayerNormShape {
  int64_t rows;
  int64_t d;
};

//   y (rows, D); save_mean, save_invstd (rows,) double; x (rows, D); weight, bias (D,) may be null.
void layer_norm_forward(float* y, double* save_mean, double* save_invstd, const float* x,
                        const float* weight, const float* bias, const LayerNormShape& shape,
                        double eps);

// dx (rows, D); dweight, dbias (D,) may be null (not written); dout, x (rows, D);
// save_mean, save_invstd (rows,); weight (D,) may be null.
void layer_norm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                         const float* x, const double* save_mean, const double* save_invstd,
                         const float* weight, const LayerNormShape& shape);

}  // namespace fastlayers
