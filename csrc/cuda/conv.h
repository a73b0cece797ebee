// 2-D convolution on the GPU (NCHW, float32): forward, backward-data, backward-weight and
// backward-bias, with the semantics and the shape struct of csrc/cpu/conv.h (stride,
// asymmetric padding implied by p/q, dilation, groups). conv_transpose2d needs no kernel of
// its own (see cpu/conv.h and python/fastlayers/ops/conv.py).
//
// How: im2col into a device workspace + the batched GEMM of gemm.cu (1x1 stride-1 unpadded
// convolutions skip im2col: x already is the column matrix), col2im as a gather (one
// writer per input pixel), and for the weight gradient one GEMM per chunk of images whose
// inner dimension runs over (image, output pixel), accumulated over chunks with beta = 1:
// every dw element has one writer per launch, and launches are ordered on the stream.
// The workspace holds as many images as fit in conv2d_workspace_limit() floats (at least
// one image), so a large batch runs in several chunks.
#pragma once

#include <cstdint>

#include "cpu/conv.h"  // Conv2dShape (a plain struct; nothing of the CPU kernels is linked)
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// out (N, K, P, Q) <- conv(x (N, C, H, W), w (K, C/groups, R, S)) + bias (K) or null.
void conv2d_forward(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& sh,
                    cudaStream_t stream);

// dx (N, C, H, W) <- init[c] (or 0 when init is null) + the transposed convolution of dout
// (N, K, P, Q) with w.
void conv2d_backward_data(float* dx, const float* dout, const float* w, const float* init, const Conv2dShape& sh,
                          cudaStream_t stream);

// dw (K, C/groups, R, S) <- sum over the batch of dout (N, K, P, Q) correlated with x.
void conv2d_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& sh,
                            cudaStream_t stream);

// db (K) <- dout (N, K, PQ) summed over N and PQ.
void conv2d_backward_bias(float* db, const float* dout, int64_t n, int64_t k, int64_t pq, cudaStream_t stream);

// Floats of workspace one call may use (default 2^26 = 256 MiB); for tests, a small limit
// forces several chunks. Returns the old limit; a value <= 0 only queries.
int64_t conv2d_workspace_limit(int64_t floats);

}  // namespace fastlayers::cuda
