// CUDA kernels of the pooling family: max pool (with the int32 argmax for backward),
// average pool (zero padding counted) and global average pool, forward and backward.
// Same geometry and semantics as the CPU kernels (cpu/pool.h, whose Pool2dShape they
// share); launched on the caller's stream, every launch checked (CudaError names the op
// and the sizes).
//
// Every output element has exactly one writer: the backward passes run one thread per
// INPUT element and gather from the windows that contain it, so overlapping windows need
// no atomics and the sums do not depend on the schedule.
#pragma once

#include <cstdint>

#include "cpu/pool.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

// out (N, C, OH, OW) <- max over each window of x (N, C, H, W); argmax (N, C, OH, OW), when
// not null, <- the flat plane index h * W + w of the chosen element. Ties: the first
// maximum in row-major window order; NaN counts as larger than every number.
void max_pool2d_forward(float* out, int32_t* argmax, const float* x, const Pool2dShape& s,
                        cudaStream_t stream);

// dx (N, C, H, W) <- for every input element, the sum of dout (N, C, OH, OW) over the
// windows whose argmax names it (zero elsewhere). argmax entries outside their window are
// never matched (so nothing outside dx is written, whatever argmax holds).
void max_pool2d_backward(float* dx, const float* dout, const int32_t* argmax, const Pool2dShape& s,
                         cudaStream_t stream);

// out (N, C, OH, OW) <- sum(window of x) / (kh * kw).
void avg_pool2d_forward(float* out, const float* x, const Pool2dShape& s, cudaStream_t stream);

// dx (N, C, H, W) <- sum over the windows containing each element of dout / (kh * kw).
void avg_pool2d_backward(float* dx, const float* dout, const Pool2dShape& s, cudaStream_t stream);

// out (planes,) <- mean of each row of x (planes, hw).
void global_avg_pool2d_forward(float* out, const float* x, int64_t planes, int64_t hw,
                               cudaStream_t stream);

// dx (planes, hw) <- dout[p] / hw.
void global_avg_pool2d_backward(float* dx, const float* dout, int64_t planes, int64_t hw,
                                cudaStream_t stream);

}  // namespace fastlayers::cuda
