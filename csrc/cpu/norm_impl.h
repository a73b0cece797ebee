// The batch-norm and layer-norm loops, written once and compiled per instruction set by
// norm_avx512.cpp, norm_avx2.cpp and norm_scalar.cpp (see common/dispatch.h). The large
// activations are memory-bound on any path; shapes that fit in cache (layer norm and
// 2-D batch norm of (128, 512), small feature maps) run 30-50% faster with 8-wide
// vectors than with SSE2. Accuracy scheme and contract: norm.h.
//
// Memory traffic: batch norm reads each channel once for its statistics and once more to
// normalise (the second read usually hits L2: one channel of the usual CNN shapes is a
// few hundred KB); the backward reads x and dout once for the two channel sums and once
// for dx. Threads own channels (batch norm) or rows (layer norm), so the per-channel sums
// need no atomics; layer norm's dweight/dbias use per-thread partial sums.
//
// Everything here has internal linkage (anonymous namespace): each ISA translation unit
// gets its own copy, so the linker can never hand AVX-512 code to another path.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/threads.h"
#include "cpu/norm.h"
#include "cpu/norm_kernels.h"

namespace fastlayers {
namespace {

// Elements per float partial sum: each vector lane adds at most 32 values (SSE2), 16
// (AVX2) or 8 (AVX-512) before the partial is added into a double.
constexpr int64_t kBlock = 128;
// Below this many elements a kernel runs on one thread (start-up would dominate).
constexpr int64_t kParallelMin = int64_t{1} << 15;
// 2-D batch norm: features are contiguous within a row, so a thread owns a block of
// features and sweeps the rows with one vector loop per row.
constexpr int64_t kFeatBlock = 64;
// 2-D batch norm and layer norm: rows added in float before flushing into double.
constexpr int64_t kRowChunk = 16;
// Samples averaged for the shift K.
constexpr int64_t kShiftSamples = 16;

int threads_for(int64_t elements, int64_t units) {
  if (elements < kParallelMin || units < 2) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), units)));
}

struct Sums {
  double s1 = 0.0;
  double s2 = 0.0;
};

// s.s1 += sum(x - k), s.s2 += sum((x - k)^2) over len floats. Not inlined: GCC fails to
// vectorise this `omp simd` reduction once it is inlined into an outlined parallel region.
__attribute__((noinline)) void add_shifted_sums(const float* x, int64_t len, float k, Sums& s) {
  for (int64_t i = 0; i < len; i += kBlock) {
    const int64_t e = std::min(len, i + kBlock);
    float a1 = 0.f, a2 = 0.f;
#pragma omp simd reduction(+ : a1, a2)
    for (int64_t j = i; j < e; ++j) {
      const float d = x[j] - k;
      a1 += d;
      a2 += d * d;
    }
    s.s1 += a1;
    s.s2 += a2;
  }
}

// s.s1 += sum(dy), s.s2 += sum(dy * (x - mean)) with mean = mhi + mlo (not inlined, as above).
__attribute__((noinline)) void add_grad_sums(const float* dy, const float* x, int64_t len,
                                             float mhi, float mlo, Sums& s) {
  for (int64_t i = 0; i < len; i += kBlock) {
    const int64_t e = std::min(len, i + kBlock);
    float a1 = 0.f, a2 = 0.f;
#pragma omp simd reduction(+ : a1, a2)
    for (int64_t j = i; j < e; ++j) {
      const float d = (x[j] - mhi) - mlo;
      a1 += dy[j];
      a2 += dy[j] * d;
    }
    s.s1 += a1;
    s.s2 += a2;
  }
}

// Mean and biased variance of m values from their shifted sums.
struct Moments {
  double mean;
  double var;
};
inline Moments moments_from(const Sums& s, double k, int64_t m) {
  const double dm = s.s1 / static_cast<double>(m);
  return {k + dm, std::max(0.0, s.s2 / static_cast<double>(m) - dm * dm)};
}
// var = s2/m - dm^2 loses accuracy in proportion to (var + dm^2) / var: redo the sums
// around the mean when the shift was more than one standard deviation off.
inline bool poor_shift(const Sums& s, int64_t m) {
  const double dm = s.s1 / static_cast<double>(m);
  return 2.0 * dm * dm > s.s2 / static_cast<double>(m);
}

// Mean and biased variance over nseg segments of len floats, segment i at x + i*stride.
Moments segment_moments(const float* x, int64_t nseg, int64_t stride, int64_t len) {
  const int64_t m = nseg * len;
  const int64_t samples = std::min(m, kShiftSamples);
  double ksum = 0.0;
  for (int64_t i = 0; i < samples; ++i) {
    const int64_t j = i * m / samples;  // evenly spaced over the m values
    ksum += x[(j / len) * stride + j % len];
  }
  float k = static_cast<float>(ksum / static_cast<double>(samples));
  Sums s;
  for (int64_t i = 0; i < nseg; ++i) add_shifted_sums(x + i * stride, len, k, s);
  if (poor_shift(s, m)) {
    k = static_cast<float>(moments_from(s, k, m).mean);
    s = Sums{};
    for (int64_t i = 0; i < nseg; ++i) add_shifted_sums(x + i * stride, len, k, s);
  }
  return moments_from(s, k, m);
}

// The mean as hi + lo floats: (x - hi) - lo is x - mean to float accuracy even when the
// mean is large compared to the spread.
struct SplitMean {
  float hi, lo;
};
inline SplitMean split(double mean) {
  const float hi = static_cast<float>(mean);
  return {hi, static_cast<float>(mean - static_cast<double>(hi))};
}

// y = ((x - hi) - lo) * scale + shift over len floats.
inline void normalise(float* y, const float* x, int64_t len, SplitMean m, float scale, float shift) {
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) y[j] = ((x[j] - m.hi) - m.lo) * scale + shift;
}

// Running statistics: PyTorch's rm = (1 - momentum) * rm + momentum * mean and
// rv = (1 - momentum) * rv + momentum * var * M / (M - 1).
inline void update_running(float* running_mean, float* running_var, int64_t c, Moments mo,
                           int64_t m, double momentum) {
  if (running_mean) {
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mo.mean);
  }
  if (running_var) {
    const double unbiased = mo.var * static_cast<double>(m) / static_cast<double>(m - 1);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
  }
}

// ---------------------------------------------------------------------------------------
// 2-D batch norm (S == 1): x is (N, F); one thread sweeps the rows for a block of features.
// ---------------------------------------------------------------------------------------

// Per-feature shifted sums for features [f0, f0 + nb) with shifts k[0..nb).
void feature_block_sums(const float* x, int64_t n, int64_t f, int64_t f0, int64_t nb,
                        const float* k, double* s1, double* s2) {
  float a1[kFeatBlock], a2[kFeatBlock];
  std::fill(s1, s1 + nb, 0.0);
  std::fill(s2, s2 + nb, 0.0);
  for (int64_t r0 = 0; r0 < n; r0 += kRowChunk) {
    const int64_t r1 = std::min(n, r0 + kRowChunk);
    std::fill(a1, a1 + nb, 0.f);
    std::fill(a2, a2 + nb, 0.f);
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * f + f0;
#pragma omp simd
      for (int64_t j = 0; j < nb; ++j) {
        const float d = xr[j] - k[j];
        a1[j] += d;
        a2[j] += d * d;
      }
    }
    for (int64_t j = 0; j < nb; ++j) {
      s1[j] += a1[j];
      s2[j] += a2[j];
    }
  }
}

// Moments of features [f0, f0 + nb) of the (n, f) array x.
void feature_block_moments(const float* x, int64_t n, int64_t f, int64_t f0, int64_t nb,
                           Moments* out) {
  float k[kFeatBlock];
  double s1[kFeatBlock], s2[kFeatBlock];
  const int64_t samples = std::min(n, kShiftSamples);
  for (int64_t j = 0; j < nb; ++j) {
    double ksum = 0.0;
    for (int64_t i = 0; i < samples; ++i) ksum += x[(i * n / samples) * f + f0 + j];
    k[j] = static_cast<float>(ksum / static_cast<double>(samples));
  }
  feature_block_sums(x, n, f, f0, nb, k, s1, s2);
  bool redo = false;
  for (int64_t j = 0; j < nb; ++j) {
    if (poor_shift(Sums{s1[j], s2[j]}, n)) {
      k[j] = static_cast<float>(moments_from(Sums{s1[j], s2[j]}, k[j], n).mean);
      redo = true;
    }
  }
  if (redo) feature_block_sums(x, n, f, f0, nb, k, s1, s2);
  for (int64_t j = 0; j < nb; ++j) out[j] = moments_from(Sums{s1[j], s2[j]}, k[j], n);
}

// y[:, f0:f0+nb] = (x - mean) * scale + shift per feature.
void feature_block_normalise(float* y, const float* x, int64_t n, int64_t f, int64_t f0,
                             int64_t nb, const float* hi, const float* lo, const float* scale,
                             const float* shift) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * f + f0;
    float* yr = y + r * f + f0;
#pragma omp simd
    for (int64_t j = 0; j < nb; ++j) yr[j] = ((xr[j] - hi[j]) - lo[j]) * scale[j] + shift[j];
  }
}

void batch_norm_2d_forward(float* y, double* save_mean, double* save_invstd, float* running_mean,
                           float* running_var, const float* x, const float* gamma,
                           const float* beta, const BatchNormShape& sh, bool training,
                           double momentum, double eps) {
  const int64_t n = sh.n, f = sh.c;
  const int64_t nblocks = (f + kFeatBlock - 1) / kFeatBlock;
  const int nt = threads_for(n * f, nblocks);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t f0 = b * kFeatBlock, nb = std::min(kFeatBlock, f - f0);
    Moments mo[kFeatBlock];
    float hi[kFeatBlock], lo[kFeatBlock], scale[kFeatBlock], shift[kFeatBlock];
    if (training) {
      feature_block_moments(x, n, f, f0, nb, mo);
    } else {
      for (int64_t j = 0; j < nb; ++j) mo[j] = {running_mean[f0 + j], running_var[f0 + j]};
    }
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t c = f0 + j;
      const double invstd = 1.0 / std::sqrt(mo[j].var + eps);
      save_mean[c] = mo[j].mean;
      save_invstd[c] = invstd;
      const SplitMean sm = split(mo[j].mean);
      hi[j] = sm.hi;
      lo[j] = sm.lo;
      scale[j] = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
      shift[j] = beta ? beta[c] : 0.f;
      if (training) update_running(running_mean, running_var, c, mo[j], n, momentum);
    }
    feature_block_normalise(y, x, n, f, f0, nb, hi, lo, scale, shift);
  }
}

void batch_norm_2d_backward(float* dx, float* dgamma, float* dbeta, const float* dout,
                            const float* x, const double* save_mean, const double* save_invstd,
                            const float* gamma, const BatchNormShape& sh, bool training) {
  const int64_t n = sh.n, f = sh.c;
  const int64_t nblocks = (f + kFeatBlock - 1) / kFeatBlock;
  const int nt = threads_for(n * f, nblocks);
  const bool need_sums = training || dgamma || dbeta;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t f0 = b * kFeatBlock, nb = std::min(kFeatBlock, f - f0);
    float hi[kFeatBlock], lo[kFeatBlock], ca[kFeatBlock], cb[kFeatBlock], cc[kFeatBlock];
    double s1[kFeatBlock] = {}, s2[kFeatBlock] = {};
    for (int64_t j = 0; j < nb; ++j) {
      const SplitMean sm = split(save_mean[f0 + j]);
      hi[j] = sm.hi;
      lo[j] = sm.lo;
    }
    if (need_sums) {
      float a1[kFeatBlock], a2[kFeatBlock];
      for (int64_t r0 = 0; r0 < n; r0 += kRowChunk) {
        const int64_t r1 = std::min(n, r0 + kRowChunk);
        std::fill(a1, a1 + nb, 0.f);
        std::fill(a2, a2 + nb, 0.f);
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * f + f0;
          const float* dyr = dout + r * f + f0;
#pragma omp simd
          for (int64_t j = 0; j < nb; ++j) {
            a1[j] += dyr[j];
            a2[j] += dyr[j] * ((xr[j] - hi[j]) - lo[j]);
          }
        }
        for (int64_t j = 0; j < nb; ++j) {
          s1[j] += a1[j];
          s2[j] += a2[j];
        }
      }
    }
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t c = f0 + j;
      const double invstd = save_invstd[c];
      const double g = gamma ? gamma[c] : 1.0;
      if (dgamma) dgamma[c] = static_cast<float>(s2[j] * invstd);
      if (dbeta) dbeta[c] = static_cast<float>(s1[j]);
      // dx = a * dy + b * (x - mean) + c0 (c0 and b vanish in eval mode).
      ca[j] = static_cast<float>(g * invstd);
      cb[j] = training ? static_cast<float>(-g * invstd * invstd * invstd * s2[j] / n) : 0.f;
      cc[j] = training ? static_cast<float>(-g * invstd * s1[j] / n) : 0.f;
    }
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x + r * f + f0;
      const float* dyr = dout + r * f + f0;
      float* dxr = dx + r * f + f0;
      if (training) {
#pragma omp simd
        for (int64_t j = 0; j < nb; ++j) {
          dxr[j] = ca[j] * dyr[j] + cb[j] * ((xr[j] - hi[j]) - lo[j]) + cc[j];
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < nb; ++j) dxr[j] = ca[j] * dyr[j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// 4-D batch norm (S > 1): one thread per channel; channel c is N segments of S floats.
// ---------------------------------------------------------------------------------------

void batch_norm_4d_forward(float* y, double* save_mean, double* save_invstd, float* running_mean,
                           float* running_var, const float* x, const float* gamma,
                           const float* beta, const BatchNormShape& sh, bool training,
                           double momentum, double eps) {
  const int64_t n = sh.n, ch = sh.c, s = sh.s, stride = ch * s;
  const int nt = threads_for(n * ch * s, ch);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < ch; ++c) {
    const float* xc = x + c * s;
    float* yc = y + c * s;
    Moments mo{};
    if (training) {
      mo = segment_moments(xc, n, stride, s);
      update_running(running_mean, running_var, c, mo, n * s, momentum);
    } else {
      mo = {running_mean[c], running_var[c]};
    }
    const double invstd = 1.0 / std::sqrt(mo.var + eps);
    save_mean[c] = mo.mean;
    save_invstd[c] = invstd;
    const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
    const float shift = beta ? beta[c] : 0.f;
    const SplitMean sm = split(mo.mean);
    for (int64_t i = 0; i < n; ++i) normalise(yc + i * stride, xc + i * stride, s, sm, scale, shift);
  }
}

void batch_norm_4d_backward(float* dx, float* dgamma, float* dbeta, const float* dout,
                            const float* x, const double* save_mean, const double* save_invstd,
                            const float* gamma, const BatchNormShape& sh, bool training) {
  const int64_t n = sh.n, ch = sh.c, s = sh.s, stride = ch * s, m = n * s;
  const int nt = threads_for(n * ch * s, ch);
  const bool need_sums = training || dgamma || dbeta;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < ch; ++c) {
    const float* xc = x + c * s;
    const float* dyc = dout + c * s;
    float* dxc = dx + c * s;
    const SplitMean sm = split(save_mean[c]);
    const double invstd = save_invstd[c];
    const double g = gamma ? gamma[c] : 1.0;
    Sums sums;
    if (need_sums) {
      for (int64_t i = 0; i < n; ++i) add_grad_sums(dyc + i * stride, xc + i * stride, s, sm.hi, sm.lo, sums);
    }
    if (dgamma) dgamma[c] = static_cast<float>(sums.s2 * invstd);
    if (dbeta) dbeta[c] = static_cast<float>(sums.s1);
    const float a = static_cast<float>(g * invstd);
    if (training) {
      // gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)) = a*dy + b*(x - mean) + c0
      const float b = static_cast<float>(-g * invstd * invstd * invstd * sums.s2 / m);
      const float c0 = static_cast<float>(-g * invstd * sums.s1 / m);
      for (int64_t i = 0; i < n; ++i) {
        const float* xs = xc + i * stride;
        const float* dys = dyc + i * stride;
        float* dxs = dxc + i * stride;
#pragma omp simd
        for (int64_t j = 0; j < s; ++j) dxs[j] = a * dys[j] + b * ((xs[j] - sm.hi) - sm.lo) + c0;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const float* dys = dyc + i * stride;
        float* dxs = dxc + i * stride;
#pragma omp simd
        for (int64_t j = 0; j < s; ++j) dxs[j] = a * dys[j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Layer norm: one row of D values per normalisation; threads own contiguous row ranges.
// ---------------------------------------------------------------------------------------

void layer_norm_forward_impl(float* y, double* save_mean, double* save_invstd, const float* x,
                        const float* weight, const float* bias, const LayerNormShape& shape,
                        double eps) {
  const int64_t rows = shape.rows, d = shape.d;
  const int nt = threads_for(rows * d, rows);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    const Moments mo = segment_moments(xr, 1, 0, d);
    const double invstd = 1.0 / std::sqrt(mo.var + eps);
    save_mean[r] = mo.mean;
    save_invstd[r] = invstd;
    const SplitMean sm = split(mo.mean);
    const float is = static_cast<float>(invstd);
    if (weight && bias) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = ((xr[j] - sm.hi) - sm.lo) * is * weight[j] + bias[j];
    } else if (weight) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = ((xr[j] - sm.hi) - sm.lo) * is * weight[j];
    } else if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = ((xr[j] - sm.hi) - sm.lo) * is + bias[j];
    } else {
      normalise(yr, xr, d, sm, is, 0.f);
    }
  }
}

void layer_norm_backward_impl(float* dx, float* dweight, float* dbias, const float* dout,
                         const float* x, const double* save_mean, const double* save_invstd,
                         const float* weight, const LayerNormShape& shape) {
  const int64_t rows = shape.rows, d = shape.d;
  const bool need_params = dweight || dbias;
  const int nt = threads_for(rows * d, rows);
  // Per-thread partial dweight / dbias, (nt, D) each, in double; each thread first adds
  // kRowChunk rows in float (fa_w, fa_b) and then flushes into its double row.
  std::vector<double> part_w(need_params ? static_cast<size_t>(nt * d) : 0, 0.0);
  std::vector<double> part_b(need_params ? static_cast<size_t>(nt * d) : 0, 0.0);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int64_t r_begin = rows * t / nt, r_end = rows * (t + 1) / nt;
    std::vector<float> fa_w(need_params ? d : 0), fa_b(need_params ? d : 0);
    double* pw = need_params ? part_w.data() + t * d : nullptr;
    double* pb = need_params ? part_b.data() + t * d : nullptr;
    int64_t pending = 0;
    for (int64_t r = r_begin; r < r_end; ++r) {
      const float* xr = x + r * d;
      const float* dyr = dout + r * d;
      float* dxr = dx + r * d;
      const SplitMean sm = split(save_mean[r]);
      const double invstd = save_invstd[r];
      // Sums over the row of g = dy * weight and g * (x - mean).
      Sums sums;
      for (int64_t i = 0; i < d; i += kBlock) {
        const int64_t e = std::min(d, i + kBlock);
        float a1 = 0.f, a2 = 0.f;
        if (weight) {
#pragma omp simd reduction(+ : a1, a2)
          for (int64_t j = i; j < e; ++j) {
            const float g = dyr[j] * weight[j];
            a1 += g;
            a2 += g * ((xr[j] - sm.hi) - sm.lo);
          }
        } else {
#pragma omp simd reduction(+ : a1, a2)
          for (int64_t j = i; j < e; ++j) {
            a1 += dyr[j];
            a2 += dyr[j] * ((xr[j] - sm.hi) - sm.lo);
          }
        }
        sums.s1 += a1;
        sums.s2 += a2;
      }
      // dx = invstd * (g - mean(g)) - invstd^3 * mean(g * (x - mean)) * (x - mean)
      const float a = static_cast<float>(invstd);
      const float b = static_cast<float>(-invstd * invstd * invstd * sums.s2 / d);
      const float c0 = static_cast<float>(-invstd * sums.s1 / d);
      if (weight) {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) {
          dxr[j] = a * (dyr[j] * weight[j]) + b * ((xr[j] - sm.hi) - sm.lo) + c0;
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) dxr[j] = a * dyr[j] + b * ((xr[j] - sm.hi) - sm.lo) + c0;
      }
      if (need_params) {
        float* fw = fa_w.data();
        float* fb = fa_b.data();
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) {
          fw[j] += dyr[j] * (((xr[j] - sm.hi) - sm.lo) * a);
          fb[j] += dyr[j];
        }
        if (++pending == kRowChunk || r + 1 == r_end) {
          for (int64_t j = 0; j < d; ++j) {
            pw[j] += fw[j];
            pb[j] += fb[j];
            fw[j] = 0.f;
            fb[j] = 0.f;
          }
          pending = 0;
        }
      }
    }
  }
  if (!need_params) return;
  for (int64_t j = 0; j < d; ++j) {
    double w = 0.0, b = 0.0;
    for (int t = 0; t < nt; ++t) {
      w += part_w[t * d + j];
      b += part_b[t * d + j];
    }
    if (dweight) dweight[j] = static_cast<float>(w);
    if (dbias) dbias[j] = static_cast<float>(b);
  }
}

// ---------------------------------------------------------------------------------------
// Entry points of the table: arguments already checked by norm.cpp.
// ---------------------------------------------------------------------------------------

void batch_norm_forward_impl(float* y, double* save_mean, double* save_invstd, float* running_mean,
                             float* running_var, const float* x, const float* gamma,
                             const float* beta, const BatchNormShape& shape, bool training,
                             double momentum, double eps) {
  if (shape.s == 1) {
    batch_norm_2d_forward(y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                          shape, training, momentum, eps);
  } else {
    batch_norm_4d_forward(y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                          shape, training, momentum, eps);
  }
}

void batch_norm_backward_impl(float* dx, float* dgamma, float* dbeta, const float* dout,
                              const float* x, const double* save_mean, const double* save_invstd,
                              const float* gamma, const BatchNormShape& shape, bool training) {
  if (shape.s == 1) {
    batch_norm_2d_backward(dx, dgamma, dbeta, dout, x, save_mean, save_invstd, gamma, shape, training);
  } else {
    batch_norm_4d_backward(dx, dgamma, dbeta, dout, x, save_mean, save_invstd, gamma, shape, training);
  }
}

NormKernels make_norm_kernels() {
  return {batch_norm_forward_impl, batch_norm_backward_impl, layer_norm_forward_impl,
          layer_norm_backward_impl};
}

}  // namespace
}  // namespace fastlayers
