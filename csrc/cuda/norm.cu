// CUDA batch norm and layer norm (see cuda/norm.h for the contract and the numerics).
//
// Batch norm, per channel over M = N*S values, in three launches:
//   1. partial statistics: grid (C, P); block (c, p) reduces chunk p of channel c
//      (Welford on x - K per thread, merged by warp shuffles, then across warps in
//      double) into a workspace: (count, mean, M2) per (c, p);
//   2. finalize: one thread per channel merges its P partials in order (Chan, double),
//      writes save_mean / save_invstd, updates the running statistics and the per-channel
//      coefficients of step 3;
//   3. apply: element-wise y = ((x - mean_hi) - mean_lo) * a + b.
// Backward has the same shape: partial sums of dout and dout * xhat, finalize (dgamma,
// dbeta and the dx coefficients), apply. Every value has one writer; partials are summed
// in a fixed order, so results do not depend on the schedule.
//
// Layer norm: one warp per row for D <= 1024, one block per row beyond; two passes over
// the (cached) row for the mean and variance of x - K, a third writes y. The parameter
// gradients are column sums over rows: blocks of 32 columns x 8 rows, partials per row
// chunk, then a finalize over chunks.
#include <cmath>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "cuda/cuda_compat.h"
#include "cuda/norm.h"
#include "cuda/reduce.cuh"
#include "cuda/workspace.h"

namespace fastlayers::cuda {
namespace {

constexpr int64_t kChunk = 2048;        // batch-norm values per block (at least)
constexpr int64_t kTargetBlocks = 1024;  // batch-norm statistics blocks to aim for
constexpr int64_t kWarpRowMax = 1024;   // layer-norm rows up to this long: a warp per row
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

// Welford state (count, mean, M2) and Chan's merge of two states.
template <typename T>
__device__ __forceinline__ void welford_merge(T& n, T& mean, T& m2, T bn, T bmean, T bm2) {
  if (bn == T(0)) return;
  if (n == T(0)) {
    n = bn;
    mean = bmean;
    m2 = bm2;
    return;
  }
  const T total = n + bn;
  const T delta = bmean - mean;
  mean += delta * (bn / total);
  m2 += bm2 + delta * delta * (n * bn / total);
  n = total;
}

// The mean as two floats: hi + lo carries about 48 bits, so x - hi - lo loses nothing to
// the rounding of a large mean.
__device__ __forceinline__ void split_mean(double mu, float& hi, float& lo) {
  hi = static_cast<float>(mu);
  lo = static_cast<float>(mu - static_cast<double>(hi));
}

// ---------------------------------------------------------------------------
// Batch norm
// ---------------------------------------------------------------------------

// Step 1: partial[(c * P + p) * 3 + {0, 1, 2}] <- (count, mean, M2) of x - K over chunk p of
// channel c = blockIdx.x, p = blockIdx.y, chunk values per block; K = the channel's first value.
__global__ void bn_stats_kernel(double* __restrict__ partial, const float* __restrict__ x, BatchNormShape sh,
                                int64_t chunk) {
  const int64_t c = blockIdx.x, p = blockIdx.y, P = gridDim.y;
  const int64_t m_total = sh.n * sh.s;
  const int64_t begin = p * chunk;
  const int64_t end = begin + chunk < m_total ? begin + chunk : m_total;
  const float k = x[c * sh.s];
  float n = 0.0f, mean = 0.0f, m2 = 0.0f;
  for (int64_t m = begin + threadIdx.x; m < end; m += blockDim.x) {
    const int64_t b = m / sh.s, s = m % sh.s;
    const float v = x[(b * sh.c + c) * sh.s + s] - k;
    n += 1.0f;
    const float d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float bn = __shfl_xor_sync(kFull, n, o);
    const float bmean = __shfl_xor_sync(kFull, mean, o);
    const float bm2 = __shfl_xor_sync(kFull, m2, o);
    welford_merge(n, mean, m2, bn, bmean, bm2);
  }
  FL_SHARED(float, wn, [32]);
  FL_SHARED(float, wmean, [32]);
  FL_SHARED(float, wm2, [32]);
  if (threadIdx.x % 32 == 0) {
    wn[threadIdx.x / 32] = n;
    wmean[threadIdx.x / 32] = mean;
    wm2[threadIdx.x / 32] = m2;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double dn = 0.0, dmean = 0.0, dm2 = 0.0;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) welford_merge<double>(dn, dmean, dm2, wn[w], wmean[w], wm2[w]);
    double* out = partial + (c * P + p) * 3;
    out[0] = dn;
    out[1] = dmean;
    out[2] = dm2;
  }
}

// Step 2 (training): one thread per channel. coef[c * 4 + {0..3}] <- mean_hi, mean_lo,
// a = invstd * gamma, b = beta.
__global__ void bn_finalize_train_kernel(double* __restrict__ save_mean, double* __restrict__ save_invstd,
                                         float* __restrict__ running_mean, float* __restrict__ running_var,
                                         float* __restrict__ coef, const double* __restrict__ partial,
                                         const float* __restrict__ x, const float* __restrict__ gamma,
                                         const float* __restrict__ beta, BatchNormShape sh, int P, double momentum,
                                         double eps) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= sh.c) return;
  double n = 0.0, mean = 0.0, m2 = 0.0;
  for (int p = 0; p < P; ++p) {
    const double* q = partial + (c * P + p) * 3;
    welford_merge(n, mean, m2, q[0], q[1], q[2]);
  }
  const double mu = static_cast<double>(x[c * sh.s]) + mean;
  const double var = m2 / n;  // biased
  const double invstd = 1.0 / sqrt(var + eps);
  save_mean[c] = mu;
  save_invstd[c] = invstd;
  if (running_mean) running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
  if (running_var) {
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * var * (n / (n - 1.0)));
  }
  float hi, lo;
  split_mean(mu, hi, lo);
  coef[c * 4 + 0] = hi;
  coef[c * 4 + 1] = lo;
  coef[c * 4 + 2] = static_cast<float>(invstd * (gamma ? gamma[c] : 1.0f));
  coef[c * 4 + 3] = beta ? beta[c] : 0.0f;
}

// Step 2 (eval): the running statistics instead of the batch's.
__global__ void bn_finalize_eval_kernel(double* __restrict__ save_mean, double* __restrict__ save_invstd,
                                        float* __restrict__ coef, const float* __restrict__ running_mean,
                                        const float* __restrict__ running_var, const float* __restrict__ gamma,
                                        const float* __restrict__ beta, int64_t channels, double eps) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const double mu = running_mean[c];
  const double invstd = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
  save_mean[c] = mu;
  save_invstd[c] = invstd;
  coef[c * 4 + 0] = static_cast<float>(mu);
  coef[c * 4 + 1] = 0.0f;
  coef[c * 4 + 2] = static_cast<float>(invstd * (gamma ? gamma[c] : 1.0f));
  coef[c * 4 + 3] = beta ? beta[c] : 0.0f;
}

// Step 3: y (N, C, S) <- ((x - hi) - lo) * a + b with the channel's coefficients.
__global__ void bn_apply_kernel(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ coef,
                                BatchNormShape sh, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const float* q = coef + ((i / sh.s) % sh.c) * 4;
    y[i] = ((x[i] - q[0]) - q[1]) * q[2] + q[3];
  }
}

// Backward step 1: partial[(c * P + p) * 2 + {0, 1}] <- sums of dout and dout * xhat over
// chunk p of channel c.
__global__ void bn_backward_sums_kernel(double* __restrict__ partial, const float* __restrict__ dout,
                                        const float* __restrict__ x, const double* __restrict__ save_mean,
                                        const double* __restrict__ save_invstd, BatchNormShape sh, int64_t chunk) {
  const int64_t c = blockIdx.x, p = blockIdx.y, P = gridDim.y;
  const int64_t m_total = sh.n * sh.s;
  const int64_t begin = p * chunk;
  const int64_t end = begin + chunk < m_total ? begin + chunk : m_total;
  float hi, lo;
  split_mean(save_mean[c], hi, lo);
  const float inv = static_cast<float>(save_invstd[c]);
  float s1 = 0.0f, s2 = 0.0f;
  for (int64_t m = begin + threadIdx.x; m < end; m += blockDim.x) {
    const int64_t i = ((m / sh.s) * sh.c + c) * sh.s + m % sh.s;
    const float g = dout[i];
    s1 += g;
    s2 += g * (((x[i] - hi) - lo) * inv);
  }
  const double t1 = block_sum_double(s1);
  const double t2 = block_sum_double(s2);
  if (threadIdx.x == 0) {
    partial[(c * P + p) * 2] = t1;
    partial[(c * P + p) * 2 + 1] = t2;
  }
}

// Backward step 2: one thread per channel. dgamma, dbeta (optional) and
// coef[c * 6 + {0..5}] <- hi, lo, invstd, k1, k2, k3 with dx = k1 dout - k2 - k3 xhat.
__global__ void bn_backward_finalize_kernel(float* __restrict__ dgamma, float* __restrict__ dbeta,
                                            float* __restrict__ coef, const double* __restrict__ partial,
                                            const double* __restrict__ save_mean,
                                            const double* __restrict__ save_invstd, const float* __restrict__ gamma,
                                            BatchNormShape sh, int P, bool training) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= sh.c) return;
  double sdy = 0.0, sdyx = 0.0;
  for (int p = 0; p < P; ++p) {
    sdy += partial[(c * P + p) * 2];
    sdyx += partial[(c * P + p) * 2 + 1];
  }
  if (dgamma) dgamma[c] = static_cast<float>(sdyx);
  if (dbeta) dbeta[c] = static_cast<float>(sdy);
  const double invstd = save_invstd[c];
  const double k1 = invstd * (gamma ? gamma[c] : 1.0f);
  const double m = static_cast<double>(sh.n * sh.s);
  float hi, lo;
  split_mean(save_mean[c], hi, lo);
  float* q = coef + c * 6;
  q[0] = hi;
  q[1] = lo;
  q[2] = static_cast<float>(invstd);
  q[3] = static_cast<float>(k1);
  q[4] = training ? static_cast<float>(k1 * sdy / m) : 0.0f;
  q[5] = training ? static_cast<float>(k1 * sdyx / m) : 0.0f;
}

// Backward step 3: dx = k1 dout - k2 - k3 xhat.
__global__ void bn_backward_apply_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                         const float* __restrict__ x, const float* __restrict__ coef,
                                         BatchNormShape sh, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const float* q = coef + ((i / sh.s) % sh.c) * 6;
    const float xhat = ((x[i] - q[0]) - q[1]) * q[2];
    dx[i] = q[3] * dout[i] - q[4] - q[5] * xhat;
  }
}

// Chunks per channel: enough blocks to fill the GPU, at least kChunk values each.
int64_t bn_chunks(const BatchNormShape& sh) {
  const int64_t m = sh.n * sh.s;
  int64_t p = (m + kChunk - 1) / kChunk;
  const int64_t want = (kTargetBlocks + sh.c - 1) / sh.c;
  if (p > want) p = want;
  if (p < 1) p = 1;
  return p;
}

std::string bn_sizes(const BatchNormShape& sh) {
  return "x (N " + std::to_string(sh.n) + ", C " + std::to_string(sh.c) + ", S " + std::to_string(sh.s) + ")";
}

// ---------------------------------------------------------------------------
// Layer norm
// ---------------------------------------------------------------------------

// One group (warp or block) per row: mean and variance of x - K in two passes, then y.
template <bool kBlock>
__global__ void ln_forward_kernel(float* __restrict__ y, double* __restrict__ save_mean,
                                  double* __restrict__ save_invstd, const float* __restrict__ x,
                                  const float* __restrict__ weight, const float* __restrict__ bias, int64_t rows,
                                  int64_t d, double eps) {
  const int lanes = kBlock ? blockDim.x : 32;
  const int lane = kBlock ? threadIdx.x : threadIdx.x % 32;
  const int64_t groups_per_block = kBlock ? 1 : blockDim.x / 32;
  const int64_t first = blockIdx.x * groups_per_block + (kBlock ? 0 : threadIdx.x / 32);
  const int64_t step = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t r = first; r < rows; r += step) {  // uniform across the group
    const float* xr = x + r * d;
    const float k = xr[0];
    float s = 0.0f;
    for (int64_t j = lane; j < d; j += lanes) s += xr[j] - k;
    const float md = group_sum<kBlock>(s) / static_cast<float>(d);
    float q = 0.0f;
    for (int64_t j = lane; j < d; j += lanes) {
      const float v = (xr[j] - k) - md;
      q += v * v;
    }
    const float var = group_sum<kBlock>(q) / static_cast<float>(d);
    const double invstd = 1.0 / sqrt(static_cast<double>(var) + eps);
    if (lane == 0) {
      save_mean[r] = static_cast<double>(k) + static_cast<double>(md);
      save_invstd[r] = invstd;
    }
    const float inv = static_cast<float>(invstd);
    float* yr = y + r * d;
    for (int64_t j = lane; j < d; j += lanes) {
      float v = ((xr[j] - k) - md) * inv;
      if (weight) v *= weight[j];
      if (bias) v += bias[j];
      yr[j] = v;
    }
  }
}

// dx per row: dx = invstd (dxhat - sum(dxhat) / D - xhat sum(dxhat xhat) / D), dxhat = dout * w.
template <bool kBlock>
__global__ void ln_backward_rows_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                        const float* __restrict__ x, const double* __restrict__ save_mean,
                                        const double* __restrict__ save_invstd, const float* __restrict__ weight,
                                        int64_t rows, int64_t d) {
  const int lanes = kBlock ? blockDim.x : 32;
  const int lane = kBlock ? threadIdx.x : threadIdx.x % 32;
  const int64_t groups_per_block = kBlock ? 1 : blockDim.x / 32;
  const int64_t first = blockIdx.x * groups_per_block + (kBlock ? 0 : threadIdx.x / 32);
  const int64_t step = static_cast<int64_t>(gridDim.x) * groups_per_block;
  for (int64_t r = first; r < rows; r += step) {
    const float* xr = x + r * d;
    const float* gr = dout + r * d;
    float hi, lo;
    split_mean(save_mean[r], hi, lo);
    const float inv = static_cast<float>(save_invstd[r]);
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t j = lane; j < d; j += lanes) {
      const float g = weight ? gr[j] * weight[j] : gr[j];
      s1 += g;
      s2 += g * (((xr[j] - hi) - lo) * inv);
    }
    const float a = group_sum<kBlock>(s1) / static_cast<float>(d);
    const float b = group_sum<kBlock>(s2) / static_cast<float>(d);
    float* dr = dx + r * d;
    for (int64_t j = lane; j < d; j += lanes) {
      const float g = weight ? gr[j] * weight[j] : gr[j];
      dr[j] = inv * (g - a - (((xr[j] - hi) - lo) * inv) * b);
    }
  }
}

// Parameter gradients, step 1: block (32, 8) sums 32 columns over the rows of chunk
// blockIdx.y: partial[(chunk * 2 + {0, 1}) * D + j] <- sums of dout * xhat and dout.
__global__ void ln_param_partial_kernel(double* __restrict__ partial, const float* __restrict__ dout,
                                        const float* __restrict__ x, const double* __restrict__ save_mean,
                                        const double* __restrict__ save_invstd, int64_t rows, int64_t d,
                                        int64_t rows_per_chunk) {
  FL_SHARED(float, sw, [8][33]);
  FL_SHARED(float, sb, [8][33]);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float aw = 0.0f, ab = 0.0f;
  if (j < d) {
    for (int64_t r = r0 + ty; r < r1; r += blockDim.y) {
      float hi, lo;
      split_mean(save_mean[r], hi, lo);
      const float g = dout[r * d + j];
      aw += g * (((x[r * d + j] - hi) - lo) * static_cast<float>(save_invstd[r]));
      ab += g;
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && j < d) {
    double tw = 0.0, tb = 0.0;
    for (int k = 0; k < static_cast<int>(blockDim.y); ++k) {
      tw += sw[k][tx];
      tb += sb[k][tx];
    }
    partial[(blockIdx.y * 2) * d + j] = tw;
    partial[(blockIdx.y * 2 + 1) * d + j] = tb;
  }
}

// Step 2: one thread per column adds the chunks in order.
__global__ void ln_param_finalize_kernel(float* __restrict__ dweight, float* __restrict__ dbias,
                                         const double* __restrict__ partial, int64_t d, int chunks) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= d) return;
  double tw = 0.0, tb = 0.0;
  for (int k = 0; k < chunks; ++k) {
    tw += partial[(k * 2) * d + j];
    tb += partial[(k * 2 + 1) * d + j];
  }
  if (dweight) dweight[j] = static_cast<float>(tw);
  if (dbias) dbias[j] = static_cast<float>(tb);
}

std::string ln_sizes(const LayerNormShape& sh) {
  return "rows " + std::to_string(sh.rows) + ", d " + std::to_string(sh.d);
}

}  // namespace

void batch_norm_forward_train(float* y, double* save_mean, double* save_invstd, float* running_mean,
                              float* running_var, const float* x, const float* gamma, const float* beta,
                              const BatchNormShape& sh, double momentum, double eps, cudaStream_t stream) {
  const char* op = "batch_norm_forward";
  const std::string sizes = bn_sizes(sh);
  FL_CHECK(eps > 0, "eps: expected > 0, got ", eps);
  FL_CHECK(sh.n * sh.s > 1 || running_var == nullptr,
           "x: expected more than 1 value per channel when training, got N*H*W = ", sh.n * sh.s);
  const int64_t total = sh.n * sh.c * sh.s;
  if (total == 0) return;
  FL_CHECK(sh.c <= 2147483647, "x: too many channels");
  const int64_t p = bn_chunks(sh);
  const int64_t chunk = (sh.n * sh.s + p - 1) / p;
  DeviceBuffer<double> partial(static_cast<size_t>(sh.c * p * 3), op, stream);
  DeviceBuffer<float> coef(static_cast<size_t>(sh.c * 4), op, stream);
  FL_LAUNCH(bn_stats_kernel, dim3(static_cast<unsigned>(sh.c), static_cast<unsigned>(p)), kThreads, 0, stream,
            partial.p, x, sh, chunk);
  check_launch(op, sizes);
  FL_LAUNCH(bn_finalize_train_kernel, grid_for(sh.c), kThreads, 0, stream, save_mean, save_invstd, running_mean,
            running_var, coef.p, partial.p, x, gamma, beta, sh, static_cast<int>(p), momentum, eps);
  check_launch(op, sizes);
  FL_LAUNCH(bn_apply_kernel, grid_for(total), kThreads, 0, stream, y, x, coef.p, sh, total);
  check_launch(op, sizes);
}

void batch_norm_forward_eval(float* y, double* save_mean, double* save_invstd, const float* x,
                             const float* running_mean, const float* running_var, const float* gamma,
                             const float* beta, const BatchNormShape& sh, double eps, cudaStream_t stream) {
  const char* op = "batch_norm_forward";
  const std::string sizes = bn_sizes(sh);
  FL_CHECK(eps > 0, "eps: expected > 0, got ", eps);
  FL_CHECK(running_mean && running_var, "running_mean/running_var: required in eval mode");
  const int64_t total = sh.n * sh.c * sh.s;
  if (sh.c == 0) return;
  DeviceBuffer<float> coef(static_cast<size_t>(sh.c * 4), op, stream);
  FL_LAUNCH(bn_finalize_eval_kernel, grid_for(sh.c), kThreads, 0, stream, save_mean, save_invstd, coef.p,
            running_mean, running_var, gamma, beta, sh.c, eps);
  check_launch(op, sizes);
  if (total == 0) return;
  FL_LAUNCH(bn_apply_kernel, grid_for(total), kThreads, 0, stream, y, x, coef.p, sh, total);
  check_launch(op, sizes);
}

void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dout, const float* x,
                         const double* save_mean, const double* save_invstd, const float* gamma,
                         const BatchNormShape& sh, bool training, cudaStream_t stream) {
  const char* op = "batch_norm_backward";
  const std::string sizes = bn_sizes(sh);
  const int64_t total = sh.n * sh.c * sh.s;
  if (total == 0) return;
  FL_CHECK(sh.c <= 2147483647, "x: too many channels");
  const int64_t p = bn_chunks(sh);
  const int64_t chunk = (sh.n * sh.s + p - 1) / p;
  DeviceBuffer<double> partial(static_cast<size_t>(sh.c * p * 2), op, stream);
  DeviceBuffer<float> coef(static_cast<size_t>(sh.c * 6), op, stream);
  FL_LAUNCH(bn_backward_sums_kernel, dim3(static_cast<unsigned>(sh.c), static_cast<unsigned>(p)), kThreads, 0,
            stream, partial.p, dout, x, save_mean, save_invstd, sh, chunk);
  check_launch(op, sizes);
  FL_LAUNCH(bn_backward_finalize_kernel, grid_for(sh.c), kThreads, 0, stream, dgamma, dbeta, coef.p, partial.p,
            save_mean, save_invstd, gamma, sh, static_cast<int>(p), training);
  check_launch(op, sizes);
  FL_LAUNCH(bn_backward_apply_kernel, grid_for(total), kThreads, 0, stream, dx, dout, x, coef.p, sh, total);
  check_launch(op, sizes);
}

void layer_norm_forward(float* y, double* save_mean, double* save_invstd, const float* x, const float* weight,
                        const float* bias, const LayerNormShape& sh, double eps, cudaStream_t stream) {
  FL_CHECK(eps > 0, "eps: expected > 0, got ", eps);
  if (sh.rows == 0 || sh.d == 0) return;
  const bool block = sh.d > kWarpRowMax;
  auto* ln_forward = block ? &ln_forward_kernel<true> : &ln_forward_kernel<false>;
  FL_LAUNCH(ln_forward, row_grid(sh.rows, block), kThreads, 0, stream, y, save_mean, save_invstd, x, weight, bias,
            sh.rows, sh.d, eps);
  check_launch("layer_norm_forward", ln_sizes(sh));
}

void layer_norm_backward(float* dx, float* dweight, float* dbias, const float* dout, const float* x,
                         const double* save_mean, const double* save_invstd, const float* weight,
                         const LayerNormShape& sh, cudaStream_t stream) {
  const char* op = "layer_norm_backward";
  const std::string sizes = ln_sizes(sh);
  if (sh.d == 0) return;
  if (sh.rows > 0) {
    const bool block = sh.d > kWarpRowMax;
    auto* ln_backward_rows = block ? &ln_backward_rows_kernel<true> : &ln_backward_rows_kernel<false>;
    FL_LAUNCH(ln_backward_rows, row_grid(sh.rows, block), kThreads, 0, stream, dx, dout, x, save_mean, save_invstd,
              weight, sh.rows, sh.d);
    check_launch(op, sizes);
  }
  if (!dweight && !dbias) return;
  // Row chunks: at most 128, at least 32 rows each (rows == 0: one empty chunk, zeros).
  int64_t chunks = (sh.rows + 31) / 32;
  if (chunks > 128) chunks = 128;
  if (chunks < 1) chunks = 1;
  const int64_t rows_per_chunk = sh.rows > 0 ? (sh.rows + chunks - 1) / chunks : 1;
  const int64_t col_blocks = (sh.d + 31) / 32;
  FL_CHECK(col_blocks <= 2147483647, "d: too large");
  DeviceBuffer<double> partial(static_cast<size_t>(chunks * 2 * sh.d), op, stream);
  FL_LAUNCH(ln_param_partial_kernel, dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(chunks)),
            dim3(32, 8), 0, stream, partial.p, dout, x, save_mean, save_invstd, sh.rows, sh.d, rows_per_chunk);
  check_launch(op, sizes);
  FL_LAUNCH(ln_param_finalize_kernel, grid_for(sh.d), kThreads, 0, stream, dweight, dbias, partial.p, sh.d,
            static_cast<int>(chunks));
  check_launch(op, sizes);
}

}  // namespace fastlayers::cuda
