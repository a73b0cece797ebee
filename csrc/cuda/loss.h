// CUDA kernels of the loss family: softmax / log-softmax along one axis, softmax
// cross-entropy with int64 labels, binary cross-entropy with logits, mean squared error —
// forward and backward, with the semantics of the CPU kernels (cpu/loss.h, whose shape
// structs they share). Launched on the caller's stream; every launch checked.
//
// The loss forwards return the SUM of the per-element (per-row) losses as a double, as
// the CPU ones do: per-block partial sums in double, then one small kernel adds them in a
// fixed order (deterministic, no atomics), and the result is copied to the host (this
// synchronises the stream, like torch's .item()).
#pragma once

#include <cstdint>

#include "cpu/loss.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// y = softmax(x) (log_y false) or log_softmax(x) (log_y true) along dim.
// y, x: (outer, dim, inner); y may not overlap x. NaN/+inf in a line: the line is NaN;
// -inf entries get probability 0 (a line of only -inf is NaN).
void softmax_forward(float* y, const float* x, const SoftmaxShape& shape, bool log_y, cudaStream_t stream);

// softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy).
void softmax_backward(float* dx, const float* dy, const float* y, const SoftmaxShape& shape, bool log_y,
                      cudaStream_t stream);

// Returns sum_i (logsumexp(logits_i) - logits_i[labels_i]); stats (n, 2) <- per row
// {max, log sum exp(x - max)}. A label outside [0, c) is never used as an index: the
// call throws ArgumentError (ValueError) after the kernels ran.
// stats (n, 2); logits (n, c); labels (n,) int64
double softmax_cross_entropy_forward(float* stats, const float* logits, const int64_t* labels,
                                     const CrossEntropyShape& shape, cudaStream_t stream);

// The same without waiting for the GPU: loss[0] (one float on the device) <- scale * the
// sum. The labels are not checked (the caller has): a label outside [0, c) makes the loss
// NaN and is never used as an index.
void softmax_cross_entropy_forward_to(float* loss, float* stats, const float* logits, const int64_t* labels,
                                      double scale, const CrossEntropyShape& shape, cudaStream_t stream);

// dlogits = scale * (softmax(logits) - onehot(labels)) from the saved stats. A row whose
// label is outside [0, c) becomes NaN (it cannot be reported without a synchronisation).
void softmax_cross_entropy_backward(float* dlogits, const float* stats, const float* logits,
                                    const int64_t* labels, float scale, const CrossEntropyShape& shape,
                                    cudaStream_t stream);

// sum of max(x, 0) - x t + log(1 + exp(-|x|)) over n elements.
double bce_with_logits_forward(const float* x, const float* t, int64_t n, cudaStream_t stream);
// loss[0] (device) <- scale * that sum, without waiting for the GPU.
void bce_with_logits_forward_to(float* loss, const float* x, const float* t, int64_t n, double scale,
                                cudaStream_t stream);

// dx = scale (sigmoid(x) - t), dt = -scale x; either may be null (not written).
void bce_with_logits_backward(float* dx, float* dt, const float* x, const float* t, float scale, int64_t n,
                              cudaStream_t stream);

// sum of (p - t)^2 over n elements.
double mse_forward(const float* p, const float* t, int64_t n, cudaStream_t stream);
// loss[0] (device) <- scale * that sum, without waiting for the GPU.
void mse_forward_to(float* loss, const float* p, const float* t, int64_t n, double scale, cudaStream_t stream);

// dp = 2 scale (p - t), dt = -dp; either may be null.
void mse_backward(float* dp, float* dt, const float* p, const float* t, float scale, int64_t n,
                  cudaStream_t stream);

}  // namespace fastlayers::cuda
