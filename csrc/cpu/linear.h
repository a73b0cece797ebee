// Fully connected layer (torch.nn.Linear layout), forward and backward, on the GEMM:
//
//   forward   y (N, out) = act(x (N, in) @ w (out, in)^T + b (out))     act: none | relu
//   backward  dz = dout * [y > 0] (relu) or dout
//             dx (N, in) = dz @ w      dw (out, in) = dz^T @ x      db (out) = sum_n dz
//
// w^T and dz^T are stride swaps handed to gemm(): nothing is transposed in memory.
#pragma once

#include <cstdint>

#include "cpu/gemm.h"

namespace fastlayers {

enum class LinearActivation : int { kNone = 0, kRelu = 1 };

struct LinearShape {
  int64_t n;    // rows of x and y (the batch, leading dimensions flattened)
  int64_t in;   // in-features: columns of x and w
  int64_t out;  // out-features: rows of w, columns of y
};

// y (N, out), C-contiguous, = act(x @ w^T + b). x (N, in) and w (out, in) are strided
// views; b (out) may be null. y must not overlap x, w or b.
void linear_forward(float* y, ConstMatrixView x, ConstMatrixView w, const float* b,
                    const LinearShape& shape, LinearActivation act);

// dx (N, in) (null: not computed), dw (out, in), db (out) (null: no bias), all
// C-contiguous. y (N, out) is the forward output, read only when act is relu; dout
// (N, out) C-contiguous.
void linear_backward(float* dx, float* dw, float* db, const float* y, const float* dout,
                     ConstMatrixView x, ConstMatrixView w, const LinearShape& shape,
                     LinearActivation act);

}  // namespace fastlayers
