// Fully connected layer on the GPU (torch.nn.Linear layout), on the GEMM of gemm.cu:
//
//   forward   y (N, out) = act(x (N, in) @ w (out, in)^T + b (out))     act: none | relu
//             (one GEMM; bias and ReLU fused into its epilogue)
//   backward  dz = dout * [y > 0] (relu, in a workspace) or dout
//             dx (N, in) = dz @ w      dw (out, in) = dz^T @ x      db (out) = sum_n dz
//
// The same contract as csrc/cpu/linear.h, with C-contiguous device arrays.
#pragma once

#include <cstdint>

#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// y (n, out) <- act(x (n, in) @ w (out, in)^T + b); b may be null.
void linear_forward(float* y, const float* x, const float* w, const float* b, int64_t n, int64_t in,
                    int64_t out, bool relu, cudaStream_t stream);

// dx (n, in) (null: skipped), dw (out, in), db (out) (null: skipped) from dout (n, out),
// the forward's x and w, and its output y (read only when relu).
void linear_backward(float* dx, float* dw, float* db, const float* y, const float* dout, const float* x,
                     const float* w, int64_t n, int64_t in, int64_t out, bool relu, cudaStream_t stream);

}  // namespace fastlayers::cuda
