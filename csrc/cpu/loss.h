// CPU kernels of the loss family: softmax and log-softmax along one axis, softmax
// cross-entropy with integer labels, binary cross-entropy with logits and mean squared
// error — forward and backward.
//
// Plain functions on raw float32 pointers and shape structs; the Python layer
// (fastlayers.ops.loss) validates arguments and documents the contract, these re-check
// what memory safety depends on (label range) and throw ArgumentError.
#pragma once

#include <cstdint>

namespace fastlayers {

// A C-contiguous array viewed as (outer, dim, inner), reduced along `dim`: for shape
// (d0, ..., dk) and axis a, outer = d0*...*d(a-1), dim = da, inner = d(a+1)*...*dk.
// inner == 1 is the row case ((N, C) along C); NCHW along C has inner = H*W.
struct SoftmaxShape {
  int64_t outer;
  int64_t dim;
  int64_t inner;
};

// y = softmax(x) (log_y false) or log_softmax(x) (log_y true) along dim.
// y, x: (outer, dim, inner), C-contiguous; y may not overlap x.
// Numerically stable: each line is shifted by its maximum. A line holding NaN or +inf
// becomes all NaN; -inf entries get probability 0 (all -inf: NaN).
void softmax_forward(float* y, const float* x, const SoftmaxShape& shape, bool log_y);

// dx from dy and the forward output y, all (outer, dim, inner):
//   softmax:     dx = y * (dy - sum_dim(dy * y))
//   log_softmax: dx = dy - exp(y) * sum_dim(dy)
void softmax_backward(float* dx, const float* dy, const float* y, const SoftmaxShape& shape,
                      bool log_y);

// logits (n, c) row-major, labels (n,) int64 in [0, c).
struct CrossEntropyShape {
  int64_t n;
  int64_t c;
};

// Returns sum_i -log_softmax(logits)[i, labels[i]] (in double; the caller divides by n
// for the mean). Saves per row stats[i] = {max_j x_ij, log sum_j exp(x_ij - max)}, which
// is all backward needs besides the logits. Throws ArgumentError for a label outside
// [0, c), before anything is read through it.
// stats: (n, 2); logits: (n, c); labels: (n,)
double softmax_cross_entropy_forward(float* stats, const float* logits, const int64_t* labels,
                                     const CrossEntropyShape& shape);

// dlogits = scale * (softmax(logits) - onehot(labels)), the softmax recomputed from the
// saved stats (scale = dloss / n for the mean, dloss for the sum).
// dlogits, logits: (n, c); stats: (n, 2); labels: (n,)
void softmax_cross_entropy_backward(float* dlogits, const float* stats, const float* logits,
                                    const int64_t* labels, float scale,
                                    const CrossEntropyShape& shape);

// sum over n elements of max(x, 0) - x t + log(1 + exp(-|x|)) (double).
double bce_with_logits_forward(const float* x, const float* t, int64_t n);

// dx = scale * (sigmoid(x) - t), dt = -scale * x; each of dx, dt may be null (skipped).
void bce_with_logits_backward(float* dx, float* dt, const float* x, const float* t, float scale,
                              int64_t n);

// sum over n elements of (p - t)^2 (double).
double mse_forward(const float* p, const float* t, int64_t n);

// dp = 2 scale (p - t), dt = -dp; each of dp, dt may be null (skipped).
void mse_backward(float* dp, float* dt, const float* p, const float* t, float scale, int64_t n);

}  // namespace fastlayers
