// CUDA pooling kernels (see cuda/pool.h for the contract). Layout NCHW float32.
//
// - max / avg forward: one thread per output element, grid-stride; consecutive threads
//   take consecutive output columns, so loads of a window row are coalesced across the
//   warp (stride sw apart) and the overlapping windows are served from L1/L2.
// - max / avg backward: one thread per input element, which gathers dout from the (few)
//   windows that contain it: one writer per dx element, no atomics, no zero-fill pass.
// - global average pool forward: one warp per plane for small planes (the usual 7x7 before
//   a classifier), one block per plane for large ones; backward is element-wise, float4
//   when a plane is a whole number of vectors.
#include <cmath>
#include <cstdint>
#include <string>

#include "cuda/cuda_compat.h"
#include "cuda/pool.h"

namespace fastlayers::cuda {
namespace {

constexpr int kThreads = 256;      // threads per block of the element-wise kernels
constexpr int64_t kMaxBlocks = 8192;  // grid-stride beyond this many blocks

// Blocks for `total` items at one item per thread, capped (the loops are grid-stride).
inline unsigned grid_for(int64_t total, int threads = kThreads) {
  int64_t blocks = (total + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

std::string shape_text(const Pool2dShape& s) {
  return "x (" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " +
         std::to_string(s.w) + "), kernel (" + std::to_string(s.kh) + ", " + std::to_string(s.kw) +
         "), stride (" + std::to_string(s.sh) + ", " + std::to_string(s.sw) + "), padding (" +
         std::to_string(s.ph) + ", " + std::to_string(s.pw) + ")";
}

// ceil(a / b) for b > 0 and any sign of a, clamped below at 0 (first window index).
__device__ __forceinline__ int64_t first_window(int64_t a, int64_t b) {
  return a <= 0 ? 0 : (a + b - 1) / b;
}

// ---------------------------------------------------------------------------
// Max pool
// ---------------------------------------------------------------------------

// out, argmax (N*C*OH*OW); x (N*C, H, W). argmax may be null.
__global__ void max_pool2d_forward_kernel(float* __restrict__ out, int32_t* __restrict__ argmax,
                                          const float* __restrict__ x, Pool2dShape s, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t ow = i % s.ow;
    const int64_t oh = (i / s.ow) % s.oh;
    const int64_t plane = i / (s.ow * s.oh);
    const int64_t h0 = oh * s.sh - s.ph, w0 = ow * s.sw - s.pw;
    const int64_t hs = h0 > 0 ? h0 : 0, he = h0 + s.kh < s.h ? h0 + s.kh : s.h;
    const int64_t ws = w0 > 0 ? w0 : 0, we = w0 + s.kw < s.w ? w0 + s.kw : s.w;
    const float* xp = x + plane * s.h * s.w;
    float best = -INFINITY;
    int32_t bi = -1;
    if (hs < he && ws < we) {  // always true when 2 * padding <= kernel (checked by the binding)
      // Row-major scan: "strictly larger, or NaN over a number" keeps the FIRST maximum and
      // the first NaN.
      bi = static_cast<int32_t>(hs * s.w + ws);
      best = xp[bi];
      for (int64_t h = hs; h < he; ++h) {
        for (int64_t w = (h == hs ? ws + 1 : ws); w < we; ++w) {
          const float v = xp[h * s.w + w];
          if (v > best || (v != v && best == best)) {
            best = v;
            bi = static_cast<int32_t>(h * s.w + w);
          }
        }
      }
    }
    out[i] = best;
    if (argmax) argmax[i] = bi;
  }
}

// dx (N*C, H, W); dout, argmax (N*C, OH, OW). One thread per dx element.
__global__ void max_pool2d_backward_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                           const int32_t* __restrict__ argmax, Pool2dShape s,
                                           int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t w = i % s.w;
    const int64_t h = (i / s.w) % s.h;
    const int64_t plane = i / (s.w * s.h);
    const int32_t self = static_cast<int32_t>(h * s.w + w);
    // Windows oh with oh*sh - ph <= h <= oh*sh - ph + kh - 1, likewise ow.
    const int64_t oh_lo = first_window(h + s.ph - s.kh + 1, s.sh);
    const int64_t oh_hi = (h + s.ph) / s.sh < s.oh - 1 ? (h + s.ph) / s.sh : s.oh - 1;
    const int64_t ow_lo = first_window(w + s.pw - s.kw + 1, s.sw);
    const int64_t ow_hi = (w + s.pw) / s.sw < s.ow - 1 ? (w + s.pw) / s.sw : s.ow - 1;
    const int64_t base = plane * s.oh * s.ow;
    float acc = 0.0f;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        const int64_t o = base + oh * s.ow + ow;
        if (argmax[o] == self) acc += dout[o];
      }
    }
    dx[i] = acc;
  }
}

// ---------------------------------------------------------------------------
// Average pool
// ---------------------------------------------------------------------------

__global__ void avg_pool2d_forward_kernel(float* __restrict__ out, const float* __restrict__ x,
                                          Pool2dShape s, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float inv = 1.0f / static_cast<float>(s.kh * s.kw);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t ow = i % s.ow;
    const int64_t oh = (i / s.ow) % s.oh;
    const int64_t plane = i / (s.ow * s.oh);
    const int64_t h0 = oh * s.sh - s.ph, w0 = ow * s.sw - s.pw;
    const int64_t hs = h0 > 0 ? h0 : 0, he = h0 + s.kh < s.h ? h0 + s.kh : s.h;
    const int64_t ws = w0 > 0 ? w0 : 0, we = w0 + s.kw < s.w ? w0 + s.kw : s.w;
    const float* xp = x + plane * s.h * s.w;
    float acc = 0.0f;  // padded zeros add nothing but count in the divisor
    for (int64_t h = hs; h < he; ++h) {
      for (int64_t w = ws; w < we; ++w) acc += xp[h * s.w + w];
    }
    out[i] = acc * inv;
  }
}

__global__ void avg_pool2d_backward_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                           Pool2dShape s, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float inv = 1.0f / static_cast<float>(s.kh * s.kw);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t w = i % s.w;
    const int64_t h = (i / s.w) % s.h;
    const int64_t plane = i / (s.w * s.h);
    const int64_t oh_lo = first_window(h + s.ph - s.kh + 1, s.sh);
    const int64_t oh_hi = (h + s.ph) / s.sh < s.oh - 1 ? (h + s.ph) / s.sh : s.oh - 1;
    const int64_t ow_lo = first_window(w + s.pw - s.kw + 1, s.sw);
    const int64_t ow_hi = (w + s.pw) / s.sw < s.ow - 1 ? (w + s.pw) / s.sw : s.ow - 1;
    const float* g = dout + plane * s.oh * s.ow;
    float acc = 0.0f;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) acc += g[oh * s.ow + ow];
    }
    dx[i] = acc * inv;
  }
}

// ---------------------------------------------------------------------------
// Global average pool
// ---------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;  // lane 0 holds the sum
}

// One warp per plane; blockDim.x must be a multiple of 32. out (planes,); x (planes, hw).
__global__ void global_avg_warp_kernel(float* __restrict__ out, const float* __restrict__ x,
                                       int64_t planes, int64_t hw) {
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_block = blockDim.x / 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * warps_per_block;
  // The loop condition is uniform across a warp, so the shuffles see all 32 lanes.
  for (int64_t p = blockIdx.x * warps_per_block + threadIdx.x / 32; p < planes; p += step) {
    const float* xp = x + p * hw;
    float acc = 0.0f;
    for (int64_t j = lane; j < hw; j += 32) acc += xp[j];
    acc = warp_sum(acc);
    if (lane == 0) out[p] = acc / static_cast<float>(hw);
  }
}

// One block per plane (large planes); any blockDim.x that is a multiple of 32, <= 1024.
__global__ void global_avg_block_kernel(float* __restrict__ out, const float* __restrict__ x,
                                        int64_t planes, int64_t hw) {
  FL_SHARED(float, partial, [32]);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int nwarps = blockDim.x / 32;
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const float* xp = x + p * hw;
    float acc = 0.0f;
    for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) acc += xp[j];
    acc = warp_sum(acc);
    if (lane == 0) partial[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      float v = lane < nwarps ? partial[lane] : 0.0f;
      v = warp_sum(v);
      if (lane == 0) out[p] = v / static_cast<float>(hw);
    }
    __syncthreads();  // partial[] is reused by the next plane
  }
}

// dx (planes, hw) <- dout[p] / hw; scalar.
__global__ void global_avg_backward_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                           int64_t hw, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float d = static_cast<float>(hw);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    dx[i] = dout[i / hw] / d;
  }
}

// The same with float4 stores; hw % 4 == 0 (a vector never straddles two planes) and dx
// 16-byte aligned. total4 = planes * hw / 4.
__global__ void global_avg_backward_vec4_kernel(float4* __restrict__ dx, const float* __restrict__ dout,
                                                int64_t hw4, int64_t total4, float hw) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total4; i += stride) {
    const float v = dout[i / hw4] / hw;
    dx[i] = make_float4(v, v, v, v);
  }
}

}  // namespace

void max_pool2d_forward(float* out, int32_t* argmax, const float* x, const Pool2dShape& s,
                        cudaStream_t stream) {
  const int64_t total = s.n * s.c * s.oh * s.ow;
  if (total == 0) return;
  FL_LAUNCH(max_pool2d_forward_kernel, grid_for(total), kThreads, 0, stream, out, argmax, x, s, total);
  check_launch("max_pool2d_forward", shape_text(s));
}

void max_pool2d_backward(float* dx, const float* dout, const int32_t* argmax, const Pool2dShape& s,
                         cudaStream_t stream) {
  const int64_t total = s.n * s.c * s.h * s.w;
  if (total == 0) return;
  FL_LAUNCH(max_pool2d_backward_kernel, grid_for(total), kThreads, 0, stream, dx, dout, argmax, s, total);
  check_launch("max_pool2d_backward", shape_text(s));
}

void avg_pool2d_forward(float* out, const float* x, const Pool2dShape& s, cudaStream_t stream) {
  const int64_t total = s.n * s.c * s.oh * s.ow;
  if (total == 0) return;
  FL_LAUNCH(avg_pool2d_forward_kernel, grid_for(total), kThreads, 0, stream, out, x, s, total);
  check_launch("avg_pool2d_forward", shape_text(s));
}

void avg_pool2d_backward(float* dx, const float* dout, const Pool2dShape& s, cudaStream_t stream) {
  const int64_t total = s.n * s.c * s.h * s.w;
  if (total == 0) return;
  FL_LAUNCH(avg_pool2d_backward_kernel, grid_for(total), kThreads, 0, stream, dx, dout, s, total);
  check_launch("avg_pool2d_backward", shape_text(s));
}

void global_avg_pool2d_forward(float* out, const float* x, int64_t planes, int64_t hw,
                               cudaStream_t stream) {
  if (planes == 0 || hw == 0) return;
  const std::string sizes = "planes " + std::to_string(planes) + ", hw " + std::to_string(hw);
  if (hw <= 1024) {
    // 8 warps per block, one plane each.
    const int64_t blocks = (planes + 7) / 8;
    FL_LAUNCH(global_avg_warp_kernel, static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks),
              kThreads, 0, stream, out, x, planes, hw);
  } else {
    FL_LAUNCH(global_avg_block_kernel, static_cast<unsigned>(planes < kMaxBlocks ? planes : kMaxBlocks),
              kThreads, 0, stream, out, x, planes, hw);
  }
  check_launch("global_avg_pool2d_forward", sizes);
}

void global_avg_pool2d_backward(float* dx, const float* dout, int64_t planes, int64_t hw,
                                cudaStream_t stream) {
  const int64_t total = planes * hw;
  if (total == 0) return;
  const std::string sizes = "planes " + std::to_string(planes) + ", hw " + std::to_string(hw);
  if (hw % 4 == 0 && reinterpret_cast<uintptr_t>(dx) % 16 == 0) {
    FL_LAUNCH(global_avg_backward_vec4_kernel, grid_for(total / 4), kThreads, 0, stream,
              reinterpret_cast<float4*>(dx), dout, hw / 4, total / 4, static_cast<float>(hw));
  } else {
    FL_LAUNCH(global_avg_backward_kernel, grid_for(total), kThreads, 0, stream, dx, dout, hw, total);
  }
  check_launch("global_avg_pool2d_backward", sizes);
}

}  // namespace fastlayers::cuda
