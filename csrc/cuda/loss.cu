// CUDA loss kernels (see cuda/loss.h for the contract).
//
// Softmax-like row reductions come in three shapes:
// - rows (inner == 1) with dim <= kWarpRowMax: one warp per row, 8 rows per block; lanes
//   stride the row (coalesced), reduce with __shfl_xor_sync;
// - longer rows: one block of 256 threads per row, warp shuffles then one value per warp
//   through shared memory;
// - columns (inner > 1, e.g. NCHW along C): one thread per (outer, inner) line, stepping
//   dim with stride inner, so a warp reads 32 consecutive floats at every step.
// Softmax uses the "online" max/sum: each thread keeps (m, s) with s = sum exp(x - m) and
// rescales s when m grows; partial (m, s) pairs merge the same way. Loss sums: per-thread
// double accumulators, a shared-memory tree per block, partials to a workspace, one
// single-block kernel adds the partials in a fixed order.
#include <cmath>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "cuda/cuda_compat.h"
#include "cuda/loss.h"
#include "cuda/reduce.cuh"
#include "cuda/workspace.h"

namespace fastlayers::cuda {
namespace {

constexpr int64_t kWarpRowMax = 1024;   // rows up to this long: one warp per row
constexpr int kSumBlocks = 1024;        // partial sums of the loss forwards (at most)
constexpr unsigned kFull = 0xffffffffu;

using reduce::block_sum_double;
using reduce::grid_for;
using reduce::group_sum;
using reduce::kThreads;
using reduce::row_grid;
using reduce::warp_allsum;

// ---------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------

// Adds the partial softmax (om, os) into (m, s): s = sum exp(x - m) over both parts.
// Written so that -inf maxima give 0 (not exp(-inf + inf) = NaN) while a NaN sum stays NaN.
__device__ __forceinline__ void ms_merge(float& m, float& s, float om, float os) {
  if (om > m) {
    s = s * (m == -INFINITY ? 0.0f : expf(m - om)) + os;
    m = om;
  } else {
    s += os * (om == -INFINITY ? 0.0f : expf(om - m));
  }
}

__device__ __forceinline__ void warp_allmerge(float& m, float& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(kFull, m, o);
    const float os = __shfl_xor_sync(kFull, s, o);
    ms_merge(m, s, om, os);
  }
}

// (m, s) merged over the group, as group_sum.
template <bool kBlock>
__device__ void group_merge(float& m, float& s) {
  warp_allmerge(m, s);
  if constexpr (kBlock) {
    FL_SHARED(float, pm, [32]);
    FL_SHARED(float, ps, [32]);
    const int nw = blockDim.x / 32;
    __syncthreads();
    if (threadIdx.x % 32 == 0) {
      pm[threadIdx.x / 32] = m;
      ps[threadIdx.x / 32] = s;
    }
    __syncthreads();
    m = pm[0];
    s = ps[0];
    for (int w = 1; w < nw; ++w) ms_merge(m, s, pm[w], ps[w]);
  }
}

// The sum of partial[0 .. n) in double, one block, fixed order, into total[0] (double)
// or, when `loss` is given, into loss[0] as float(scale * sum).
__global__ void sum_partials_kernel(double* __restrict__ total, float* __restrict__ loss, double scale,
                                    const double* __restrict__ partial, int64_t n) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = block_sum_double(acc);
  if (threadIdx.x == 0) {
    if (loss != nullptr) {
      loss[0] = static_cast<float>(scale * acc);
    } else {
      total[0] = acc;
    }
  }
}

// The sum of `partials` doubles on the device, copied to the host (synchronises).
double finish_sum(double* partials, int64_t count, double* total, cudaStream_t stream, const char* op,
                  const std::string& sizes) {
  FL_LAUNCH(sum_partials_kernel, 1, kThreads, 0, stream, total, static_cast<float*>(nullptr), 1.0, partials,
            count);
  check_launch(op, sizes);
  double host = 0.0;
  check(cudaMemcpyAsync(&host, total, sizeof(double), cudaMemcpyDeviceToHost, stream), op, sizes);
  check(cudaStreamSynchronize(stream), op, sizes);
  return host;
}

// scale * the sum of `partials` into loss[0] on the device; does not wait for the GPU.
void finish_sum_to(float* loss, double scale, double* partials, int64_t count, cudaStream_t stream, const char* op,
                   const std::string& sizes) {
  FL_LAUNCH(sum_partials_kernel, 1, kThreads, 0, stream, static_cast<double*>(nullptr), loss, scale, partials,
            count);
  check_launch(op, sizes);
}

// Final (m, s) of a line: a +inf maximum makes the whole line NaN, as on the CPU.
__device__ __forceinline__ float finish_s(float m, float s) { return m == INFINITY ? NAN : s; }

// ---------------------------------------------------------------------------
// Softmax / log-softmax
// ---------------------------------------------------------------------------

// Rows (outer, dim), inner == 1. kBlock: one block per row; else one warp per row.
template <bool kBlock>
__global__ void softmax_rows_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t rows,
                                    int64_t dim, bool log_y) {
  const int lanes = kBlock ? blockDim.x : 32;
  const int lane = kBlock ? threadIdx.x : threadIdx.x % 32;
  const int64_t groups_per_block = kBlock ? 1 : blockDim.x / 32;
  const int64_t first = blockIdx.x * groups_per_block + (kBlock ? 0 : threadIdx.x / 32);
  const int64_t step = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t r = first; r < rows; r += step) {  // uniform across the group
    const float* xr = x + r * dim;
    float m = -INFINITY, s = 0.0f;
    for (int64_t j = lane; j < dim; j += lanes) ms_merge(m, s, xr[j], 1.0f);
    group_merge<kBlock>(m, s);
    s = finish_s(m, s);
    float* yr = y + r * dim;
    if (log_y) {
      const float lse = logf(s);
      for (int64_t j = lane; j < dim; j += lanes) yr[j] = (xr[j] - m) - lse;
    } else {
      const float inv = 1.0f / s;
      for (int64_t j = lane; j < dim; j += lanes) yr[j] = expf(xr[j] - m) * inv;
    }
  }
}

// Lines along dim with stride inner: one thread per (outer, inner) pair.
__global__ void softmax_cols_kernel(float* __restrict__ y, const float* __restrict__ x, SoftmaxShape sh,
                                    bool log_y) {
  const int64_t lines = sh.outer * sh.inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; l < lines; l += stride) {
    const int64_t o = l / sh.inner, i = l % sh.inner;
    const float* xl = x + o * sh.dim * sh.inner + i;
    float* yl = y + o * sh.dim * sh.inner + i;
    float m = -INFINITY, s = 0.0f;
    for (int64_t j = 0; j < sh.dim; ++j) ms_merge(m, s, xl[j * sh.inner], 1.0f);
    s = finish_s(m, s);
    if (log_y) {
      const float lse = logf(s);
      for (int64_t j = 0; j < sh.dim; ++j) yl[j * sh.inner] = (xl[j * sh.inner] - m) - lse;
    } else {
      const float inv = 1.0f / s;
      for (int64_t j = 0; j < sh.dim; ++j) yl[j * sh.inner] = expf(xl[j * sh.inner] - m) * inv;
    }
  }
}

// softmax: dx = y (dy - sum(dy y)); log_softmax: dx = dy - exp(y) sum(dy). Rows.
template <bool kBlock>
__global__ void softmax_backward_rows_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                             const float* __restrict__ y, int64_t rows, int64_t dim,
                                             bool log_y) {
  const int lanes = kBlock ? blockDim.x : 32;
  const int lane = kBlock ? threadIdx.x : threadIdx.x % 32;
  const int64_t groups_per_block = kBlock ? 1 : blockDim.x / 32;
  const int64_t first = blockIdx.x * groups_per_block + (kBlock ? 0 : threadIdx.x / 32);
  const int64_t step = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t r = first; r < rows; r += step) {
    const float* g = dy + r * dim;
    const float* yr = y + r * dim;
    float* d = dx + r * dim;
    float acc = 0.0f;
    for (int64_t j = lane; j < dim; j += lanes) acc += log_y ? g[j] : g[j] * yr[j];
    const float sum = group_sum<kBlock>(acc);
    if (log_y) {
      for (int64_t j = lane; j < dim; j += lanes) d[j] = g[j] - expf(yr[j]) * sum;
    } else {
      for (int64_t j = lane; j < dim; j += lanes) d[j] = yr[j] * (g[j] - sum);
    }
  }
}

__global__ void softmax_backward_cols_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                             const float* __restrict__ y, SoftmaxShape sh, bool log_y) {
  const int64_t lines = sh.outer * sh.inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; l < lines; l += stride) {
    const int64_t off = (l / sh.inner) * sh.dim * sh.inner + l % sh.inner;
    const float* g = dy + off;
    const float* yl = y + off;
    float* d = dx + off;
    float sum = 0.0f;
    for (int64_t j = 0; j < sh.dim; ++j) sum += log_y ? g[j * sh.inner] : g[j * sh.inner] * yl[j * sh.inner];
    for (int64_t j = 0; j < sh.dim; ++j) {
      const int64_t k = j * sh.inner;
      d[k] = log_y ? g[k] - expf(yl[k]) * sum : yl[k] * (g[k] - sum);
    }
  }
}

// ---------------------------------------------------------------------------
// Softmax cross-entropy
// ---------------------------------------------------------------------------

// Per row: stats {max, log sum exp(x - max)} and the row's loss (double). A label outside
// [0, c) gives a NaN loss, sets *bad and is never used as an index.
template <bool kBlock>
__global__ void cross_entropy_rows_kernel(float* __restrict__ stats, double* __restrict__ row_loss,
                                          int* __restrict__ bad, const float* __restrict__ logits,
                                          const int64_t* __restrict__ labels, int64_t n, int64_t c) {
  const int lanes = kBlock ? blockDim.x : 32;
  const int lane = kBlock ? threadIdx.x : threadIdx.x % 32;
  const int64_t groups_per_block = kBlock ? 1 : blockDim.x / 32;
  const int64_t first = blockIdx.x * groups_per_block + (kBlock ? 0 : threadIdx.x / 32);
  const int64_t step = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t r = first; r < n; r += step) {
    const float* xr = logits + r * c;
    float m = -INFINITY, s = 0.0f;
    for (int64_t j = lane; j < c; j += lanes) ms_merge(m, s, xr[j], 1.0f);
    group_merge<kBlock>(m, s);
    if (lane == 0) {
      const float lse = logf(finish_s(m, s));
      stats[2 * r] = m;
      stats[2 * r + 1] = lse;
      const int64_t label = labels[r];
      if (label >= 0 && label < c) {
        row_loss[r] = static_cast<double>((m + lse) - xr[label]);
      } else {
        row_loss[r] = NAN;
        atomicAdd(bad, 1);
      }
    }
  }
}

// dlogits (n, c) element-wise from the stats.
__global__ void cross_entropy_backward_kernel(float* __restrict__ dlogits, const float* __restrict__ stats,
                                              const float* __restrict__ logits,
                                              const int64_t* __restrict__ labels, float scale, int64_t n,
                                              int64_t c) {
  const int64_t total = n * c;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / c, j = i % c;
    const int64_t label = labels[r];
    float p = expf((logits[i] - stats[2 * r]) - stats[2 * r + 1]);
    if (j == label) p -= 1.0f;
    dlogits[i] = (label >= 0 && label < c) ? scale * p : NAN;
  }
}

// ---------------------------------------------------------------------------
// BCE with logits and MSE
// ---------------------------------------------------------------------------

__device__ __forceinline__ float bce_term(float x, float t) {
  return fmaxf(x, 0.0f) - x * t + log1pf(expf(-fabsf(x)));
}

__device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

// partial[blockIdx.x] <- sum over this block's grid-stride share of term(a[i], b[i]).
template <int kOp>  // 0: BCE with logits, 1: squared error
__global__ void pair_sum_kernel(double* __restrict__ partial, const float* __restrict__ a,
                                const float* __restrict__ b, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  double acc = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if constexpr (kOp == 0) {
      acc += static_cast<double>(bce_term(a[i], b[i]));
    } else {
      const float d = a[i] - b[i];
      acc += static_cast<double>(d * d);
    }
  }
  acc = block_sum_double(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// BCE backward: dx = scale (sigmoid(x) - t), dt = -scale x (each optional). Scalar; the
// vector kernel below does the aligned bulk.
__global__ void bce_backward_kernel(float* __restrict__ dx, float* __restrict__ dt, const float* __restrict__ x,
                                    const float* __restrict__ t, float scale, int64_t begin, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = begin + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (dx) dx[i] = scale * (sigmoid(x[i]) - t[i]);
    if (dt) dt[i] = -scale * x[i];
  }
}

__global__ void bce_backward_vec4_kernel(float4* __restrict__ dx, float4* __restrict__ dt,
                                         const float4* __restrict__ x, const float4* __restrict__ t,
                                         float scale, int64_t n4) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 xv = x[i];
    if (dx) {
      const float4 tv = t[i];
      dx[i] = make_float4(scale * (sigmoid(xv.x) - tv.x), scale * (sigmoid(xv.y) - tv.y),
                          scale * (sigmoid(xv.z) - tv.z), scale * (sigmoid(xv.w) - tv.w));
    }
    if (dt) dt[i] = make_float4(-scale * xv.x, -scale * xv.y, -scale * xv.z, -scale * xv.w);
  }
}

// MSE backward: dp = 2 scale (p - t), dt = -dp (each optional).
__global__ void mse_backward_kernel(float* __restrict__ dp, float* __restrict__ dt, const float* __restrict__ p,
                                    const float* __restrict__ t, float scale, int64_t begin, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float k = 2.0f * scale;
  for (int64_t i = begin + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float g = k * (p[i] - t[i]);
    if (dp) dp[i] = g;
    if (dt) dt[i] = -g;
  }
}

__global__ void mse_backward_vec4_kernel(float4* __restrict__ dp, float4* __restrict__ dt,
                                         const float4* __restrict__ p, const float4* __restrict__ t,
                                         float scale, int64_t n4) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float k = 2.0f * scale;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 pv = p[i], tv = t[i];
    const float4 g = make_float4(k * (pv.x - tv.x), k * (pv.y - tv.y), k * (pv.z - tv.z), k * (pv.w - tv.w));
    if (dp) dp[i] = g;
    if (dt) dt[i] = make_float4(-g.x, -g.y, -g.z, -g.w);
  }
}

inline bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

std::string softmax_sizes(const SoftmaxShape& s) {
  return "outer " + std::to_string(s.outer) + ", dim " + std::to_string(s.dim) + ", inner " +
         std::to_string(s.inner);
}

std::string ce_sizes(const CrossEntropyShape& s) {
  return "logits (" + std::to_string(s.n) + ", " + std::to_string(s.c) + ")";
}

// Both halves of the loss forwards: partial sums per block, then the total on the host.
// The sum of the terms over n elements: returned (synchronises), or, with `loss`, scale
// times it written to loss[0] on the device (returns 0 without waiting).
template <int kOp>
double pair_sum(const float* a, const float* b, int64_t n, float* loss, double scale, cudaStream_t stream,
                const char* op) {
  const std::string sizes = "n " + std::to_string(n);
  if (n == 0) {
    if (loss != nullptr) check(cudaMemsetAsync(loss, 0, sizeof(float), stream), op, sizes);
    return 0.0;
  }
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > kSumBlocks) blocks = kSumBlocks;
  DeviceBuffer<double> ws(static_cast<size_t>(blocks) + 1, op, stream);  // partials, then the total
  auto* pair_sum_blocks = &pair_sum_kernel<kOp>;
  FL_LAUNCH(pair_sum_blocks, static_cast<unsigned>(blocks), kThreads, 0, stream, ws.p, a, b, n);
  check_launch(op, sizes);
  if (loss != nullptr) {
    finish_sum_to(loss, scale, ws.p, blocks, stream, op, sizes);
    return 0.0;
  }
  return finish_sum(ws.p, blocks, ws.p + blocks, stream, op, sizes);
}

}  // namespace

void softmax_forward(float* y, const float* x, const SoftmaxShape& s, bool log_y, cudaStream_t stream) {
  if (s.outer * s.dim * s.inner == 0) return;
  const char* op = log_y ? "log_softmax_forward" : "softmax_forward";
  if (s.inner == 1) {
    const bool block = s.dim > kWarpRowMax;
    auto* softmax_rows = block ? &softmax_rows_kernel<true> : &softmax_rows_kernel<false>;
    FL_LAUNCH(softmax_rows, row_grid(s.outer, block), kThreads, 0, stream, y, x, s.outer, s.dim, log_y);
  } else {
    FL_LAUNCH(softmax_cols_kernel, grid_for(s.outer * s.inner), kThreads, 0, stream, y, x, s, log_y);
  }
  check_launch(op, softmax_sizes(s));
}

void softmax_backward(float* dx, const float* dy, const float* y, const SoftmaxShape& s, bool log_y,
                      cudaStream_t stream) {
  if (s.outer * s.dim * s.inner == 0) return;
  const char* op = log_y ? "log_softmax_backward" : "softmax_backward";
  if (s.inner == 1) {
    const bool block = s.dim > kWarpRowMax;
    auto* softmax_backward_rows =
        block ? &softmax_backward_rows_kernel<true> : &softmax_backward_rows_kernel<false>;
    FL_LAUNCH(softmax_backward_rows, row_grid(s.outer, block), kThreads, 0, stream, dx, dy, y, s.outer, s.dim,
              log_y);
  } else {
    FL_LAUNCH(softmax_backward_cols_kernel, grid_for(s.outer * s.inner), kThreads, 0, stream, dx, dy, y, s,
              log_y);
  }
  check_launch(op, softmax_sizes(s));
}

namespace {

// The rows' losses into a workspace of n + 2 doubles: n row losses, room for the total,
// and the bad-label counter (in a double's room).
void cross_entropy_rows(DeviceBuffer<double>& ws, float* stats, const float* logits, const int64_t* labels,
                        const CrossEntropyShape& s, cudaStream_t stream, const char* op, const std::string& sizes) {
  int* bad = reinterpret_cast<int*>(ws.p + s.n + 1);
  check(cudaMemsetAsync(bad, 0, sizeof(int), stream), op, sizes);
  const bool block = s.c > kWarpRowMax;
  auto* rows_kernel = block ? &cross_entropy_rows_kernel<true> : &cross_entropy_rows_kernel<false>;
  FL_LAUNCH(rows_kernel, row_grid(s.n, block), kThreads, 0, stream, stats, ws.p, bad, logits, labels, s.n, s.c);
  check_launch(op, sizes);
}

}  // namespace

void softmax_cross_entropy_forward_to(float* loss, float* stats, const float* logits, const int64_t* labels,
                                      double scale, const CrossEntropyShape& s, cudaStream_t stream) {
  const char* op = "softmax_cross_entropy_forward";
  const std::string sizes = ce_sizes(s);
  if (s.n == 0) {
    check(cudaMemsetAsync(loss, 0, sizeof(float), stream), op, sizes);
    return;
  }
  DeviceBuffer<double> ws(static_cast<size_t>(s.n) + 2, op, stream);
  cross_entropy_rows(ws, stats, logits, labels, s, stream, op, sizes);
  finish_sum_to(loss, scale, ws.p, s.n, stream, op, sizes);
}

double softmax_cross_entropy_forward(float* stats, const float* logits, const int64_t* labels,
                                     const CrossEntropyShape& s, cudaStream_t stream) {
  const char* op = "softmax_cross_entropy_forward";
  const std::string sizes = ce_sizes(s);
  if (s.n == 0) return 0.0;
  DeviceBuffer<double> ws(static_cast<size_t>(s.n) + 2, op, stream);
  cross_entropy_rows(ws, stats, logits, labels, s, stream, op, sizes);
  int* bad = reinterpret_cast<int*>(ws.p + s.n + 1);
  const double sum = finish_sum(ws.p, s.n, ws.p + s.n, stream, op, sizes);
  int host_bad = 0;
  // On the launch's stream: a plain cudaMemcpy would not wait for a non-blocking stream.
  check(cudaMemcpyAsync(&host_bad, bad, sizeof(int), cudaMemcpyDeviceToHost, stream), op, sizes);
  check(cudaStreamSynchronize(stream), op, sizes);
  FL_CHECK(host_bad == 0, "labels: ", host_bad, " value(s) outside [0, ", s.c, ") for ", s.c, " classes");
  return sum;
}

void softmax_cross_entropy_backward(float* dlogits, const float* stats, const float* logits,
                                    const int64_t* labels, float scale, const CrossEntropyShape& s,
                                    cudaStream_t stream) {
  if (s.n * s.c == 0) return;
  FL_LAUNCH(cross_entropy_backward_kernel, grid_for(s.n * s.c), kThreads, 0, stream, dlogits, stats, logits,
            labels, scale, s.n, s.c);
  check_launch("softmax_cross_entropy_backward", ce_sizes(s));
}

double bce_with_logits_forward(const float* x, const float* t, int64_t n, cudaStream_t stream) {
  return pair_sum<0>(x, t, n, nullptr, 1.0, stream, "bce_with_logits_forward");
}

void bce_with_logits_forward_to(float* loss, const float* x, const float* t, int64_t n, double scale,
                                cudaStream_t stream) {
  pair_sum<0>(x, t, n, loss, scale, stream, "bce_with_logits_forward");
}

double mse_forward(const float* p, const float* t, int64_t n, cudaStream_t stream) {
  return pair_sum<1>(p, t, n, nullptr, 1.0, stream, "mse_forward");
}

void mse_forward_to(float* loss, const float* p, const float* t, int64_t n, double scale, cudaStream_t stream) {
  pair_sum<1>(p, t, n, loss, scale, stream, "mse_forward");
}

void bce_with_logits_backward(float* dx, float* dt, const float* x, const float* t, float scale, int64_t n,
                              cudaStream_t stream) {
  if (n == 0 || (!dx && !dt)) return;
  const std::string sizes = "n " + std::to_string(n);
  int64_t begin = 0;
  if (aligned16(dx) && aligned16(dt) && aligned16(x) && aligned16(t) && n >= 4) {
    const int64_t n4 = n / 4;
    FL_LAUNCH(bce_backward_vec4_kernel, grid_for(n4), kThreads, 0, stream, reinterpret_cast<float4*>(dx),
              reinterpret_cast<float4*>(dt), reinterpret_cast<const float4*>(x),
              reinterpret_cast<const float4*>(t), scale, n4);
    check_launch("bce_with_logits_backward", sizes);
    begin = n4 * 4;
  }
  if (begin < n) {
    FL_LAUNCH(bce_backward_kernel, grid_for(n - begin), kThreads, 0, stream, dx, dt, x, t, scale, begin, n);
    check_launch("bce_with_logits_backward", sizes);
  }
}

void mse_backward(float* dp, float* dt, const float* p, const float* t, float scale, int64_t n,
                  cudaStream_t stream) {
  if (n == 0 || (!dp && !dt)) return;
  const std::string sizes = "n " + std::to_string(n);
  int64_t begin = 0;
  if (aligned16(dp) && aligned16(dt) && aligned16(p) && aligned16(t) && n >= 4) {
    const int64_t n4 = n / 4;
    FL_LAUNCH(mse_backward_vec4_kernel, grid_for(n4), kThreads, 0, stream, reinterpret_cast<float4*>(dp),
              reinterpret_cast<float4*>(dt), reinterpret_cast<const float4*>(p),
              reinterpret_cast<const float4*>(t), scale, n4);
    check_launch("mse_backward", sizes);
    begin = n4 * 4;
  }
  if (begin < n) {
    FL_LAUNCH(mse_backward_kernel, grid_for(n - begin), kThreads, 0, stream, dp, dt, p, t, scale, begin, n);
    check_launch("mse_backward", sizes);
  }
}

}  // namespace fastlayers::cuda
