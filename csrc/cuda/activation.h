// CUDA launchers of the activation family: the element-wise activations of
// cpu/activation.h (same kinds, parameters, packed ReLU mask and saved tensors) and the
// residual add, on device pointers, launched on the caller's stream.
//
// Also the launch shape shared by the element-wise families (activation, dropout, optim),
// which the tests shrink to run partial blocks and several grid-stride rounds in the
// emulator.
#pragma once

#include <cstdint>

#include "cpu/activation.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// Threads per block of the element-wise kernels, and the most blocks their grid-stride
// loops are launched with.
struct EltwiseLaunch {
  int threads = 256;
  int max_blocks = 4096;
};
EltwiseLaunch get_eltwise_launch();
// ArgumentError unless threads is in [1, 1024] and max_blocks >= 1.
void set_eltwise_launch(const EltwiseLaunch& shape);

// y (n) = f(x (n)); mask (ceil(n/8) bytes, bit i = x[i] > 0, 8 per byte, little bit
// order) written for relu / leaky_relu when not null. y may alias x.
void activation_forward(float* y, uint8_t* mask, const float* x, int64_t n, Activation kind,
                        const ActivationParams& params, cudaStream_t stream);

// dx (n) = dy (n) * f'(.), from the mask (relu, leaky_relu), the saved output (sigmoid,
// tanh) or the saved input (gelu, softplus, elu). dx may alias dy.
void activation_backward(float* dx, const uint8_t* mask, const float* saved, const float* dy,
                         int64_t n, Activation kind, const ActivationParams& params,
                         cudaStream_t stream);

// y (n) = a (n) + b (n); y may alias a or b.
void add_forward(float* y, const float* a, const float* b, int64_t n, cudaStream_t stream);

}  // namespace fastlayers::cuda
