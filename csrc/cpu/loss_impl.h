// The loss family's loops, written once and compiled per instruction set: included by
// loss_avx512.cpp / loss_avx2.cpp / loss_scalar.cpp, each of which builds its own
// private copy (anonymous namespace) with its own flags and returns a table built by
// FL_LOSS_TABLE.
//
// Every loop is a `#pragma omp simd` loop over contiguous floats; exp/log come from
// common/vmath.h so that they vectorise. Sums of a row are float lane sums (a row is at
// most a few 10^4 terms of magnitude <= 1 after the max shift); whole-array sums (BCE,
// MSE) add float block sums of kSumBlock elements into a double.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/vmath.h"
#include "cpu/loss_kernels.h"

namespace fastlayers {
namespace loss_detail {
namespace {

constexpr int64_t kSumBlock = 1024;

// Lanes: rows are processed in blocks of kL floats with one accumulator per lane (one
// zmm, two ymm or four xmm registers), so every loop has a fixed trip count of kL and
// compiles to vector code with no scalar epilogue. The last c % kL elements of a row
// go through a kL-float buffer padded with a neutral value. That matters: GCC's scalar
// epilogue of an exp loop costs more than a whole vector of exps, and for C = 10 it
// would be the whole row.
constexpr int kL = 16;

// buf[0, n) = src[0, n), buf[n, kL) = pad (n < kL). Reads nothing past src + n. Written
// as one conditional loop (masked loads where the ISA has them): two plain loops would
// become calls to memset and memcpy, which cost more than the row's arithmetic.
inline void load_padded(float* buf, const float* src, int n, float pad) {
#pragma omp simd
  for (int l = 0; l < kL; ++l) buf[l] = l < n ? src[l] : pad;
}

// dst[0, n) = buf[0, n) (n < kL), as a conditional (masked) store.
inline void store_first(float* dst, const float* buf, int n) {
#pragma omp simd
  for (int l = 0; l < kL; ++l) {
    if (l < n) dst[l] = buf[l];
  }
}

// Horizontal max / sum of the lanes (log2(kL) vector steps).
inline float lanes_max(const float* lane) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int l = 0; l < kL; ++l) m = lane[l] > m ? lane[l] : m;
  return m;
}

inline float lanes_sum(const float* lane) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int l = 0; l < kL; ++l) s += lane[l];
  return s;
}

// ---------------------------------------------------------------------------
// Softmax along contiguous rows: max, then exp and sum, then normalise.
// ---------------------------------------------------------------------------

inline float row_max(const float* __restrict x, int64_t c) {
  // The comparison skips NaN, so NaN never becomes the max; it reaches the sum through
  // exp(NaN - m) instead and turns the whole row into NaN (like the reference).
  const int64_t cm = c - c % kL;
  float lane[kL];
  for (int l = 0; l < kL; ++l) lane[l] = -INFINITY;
  for (int64_t j = 0; j < cm; j += kL) {
#pragma omp simd
    for (int l = 0; l < kL; ++l) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  }
  if (cm < c) {
    // Padded like the exp loops: scalar updates of lane[] followed by the vector
    // reduction's load of it would stall store-to-load forwarding.
    float buf[kL];
    load_padded(buf, x + cm, static_cast<int>(c - cm), -INFINITY);
#pragma omp simd
    for (int l = 0; l < kL; ++l) lane[l] = buf[l] > lane[l] ? buf[l] : lane[l];
  }
  return lanes_max(lane);
}

// sum_j exp(x_j - m). With kStore, the exps of the first c - c % kL elements go to y
// and those of the rest stay in tail[0, c % kL), for the caller to scale and store: a
// masked store read back at once would stall (no store-to-load forwarding).
// Padding with -inf adds exp(-inf) = 0 (for a finite m; an infinite m makes the row
// NaN either way).
template <bool kStore>
inline float row_exp_sum(float* __restrict y, float* __restrict tail, const float* __restrict x,
                         float m, int64_t c) {
  const int64_t cm = c - c % kL;
  float acc[kL] = {};
  for (int64_t j = 0; j < cm; j += kL) {
#pragma omp simd
    for (int l = 0; l < kL; ++l) {
      const float e = vmath::exp(x[j + l] - m);
      if (kStore) y[j + l] = e;
      acc[l] += e;
    }
  }
  if (cm < c) {
    float buf[kL];
    load_padded(buf, x + cm, static_cast<int>(c - cm), -INFINITY);
#pragma omp simd
    for (int l = 0; l < kL; ++l) {
      buf[l] = vmath::exp(buf[l] - m);
      acc[l] += buf[l];
      if (kStore) tail[l] = buf[l];
    }
  }
  return lanes_sum(acc);
}

// out_j = scale * (exp((x_j - m) - ls) - [j == label]): the cross-entropy gradient,
// the one-hot term folded in (subtracting it afterwards would re-read a masked store).
inline void row_exp_scaled(float* __restrict out, const float* __restrict x, float m, float ls,
                           float scale, int64_t label, int64_t c) {
  const int64_t cm = c - c % kL;
  // The label's lane within block j as a 32-bit int (-1 outside the block): a 64-bit
  // compare has no vector form before SSE4.1.
  auto lane_of = [label](int64_t j) {
    return label >= j && label < j + kL ? static_cast<int>(label - j) : -1;
  };
  for (int64_t j = 0; j < cm; j += kL) {
    const int hot = lane_of(j);
#pragma omp simd
    for (int l = 0; l < kL; ++l) {
      const float onehot = l == hot ? 1.0f : 0.0f;
      out[j + l] = scale * (vmath::exp((x[j + l] - m) - ls) - onehot);
    }
  }
  if (cm < c) {
    const int hot = lane_of(cm);
    float buf[kL];
    load_padded(buf, x + cm, static_cast<int>(c - cm), 0.0f);
#pragma omp simd
    for (int l = 0; l < kL; ++l) {
      const float onehot = l == hot ? 1.0f : 0.0f;
      buf[l] = scale * (vmath::exp((buf[l] - m) - ls) - onehot);
    }
    store_first(out + cm, buf, static_cast<int>(c - cm));
  }
}

template <bool kLog>
void softmax_rows_t(float* __restrict y, const float* __restrict x, int64_t r0, int64_t r1,
                    int64_t c) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * c;  // (c,)
    float* yr = y + r * c;        // (c,)
    const float m = row_max(xr, c);
    if (kLog) {
      // (x - m) - log s rather than x - (m + log s): x - m is exact when x is near m,
      // so large logits (1e4) keep full precision in the result. std::log (not vmath)
      // because it propagates NaN.
      const float ls = std::log(row_exp_sum<false>(nullptr, nullptr, xr, m, c));
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - m) - ls;
    } else {
      const int64_t cm = c - c % kL;
      float tail[kL];
      const float inv = 1.0f / row_exp_sum<true>(yr, tail, xr, m, c);
#pragma omp simd
      for (int64_t j = 0; j < cm; ++j) yr[j] *= inv;
      if (cm < c) {
#pragma omp simd
        for (int l = 0; l < kL; ++l) tail[l] *= inv;
        store_first(yr + cm, tail, static_cast<int>(c - cm));
      }
    }
  }
}

void softmax_rows(float* y, const float* x, int64_t r0, int64_t r1, int64_t c, bool log_y) {
  if (log_y) {
    softmax_rows_t<true>(y, x, r0, r1, c);
  } else {
    softmax_rows_t<false>(y, x, r0, r1, c);
  }
}

template <bool kLog>
void softmax_rows_backward_t(float* __restrict dx, const float* __restrict dy,
                             const float* __restrict y, int64_t r0, int64_t r1, int64_t c) {
  const int64_t cm = c - c % kL;
  for (int64_t r = r0; r < r1; ++r) {
    const float* dyr = dy + r * c;  // (c,)
    const float* yr = y + r * c;    // (c,)
    float* dxr = dx + r * c;        // (c,)
    float acc[kL] = {};
    for (int64_t j = 0; j < cm; j += kL) {
#pragma omp simd
      for (int l = 0; l < kL; ++l) acc[l] += kLog ? dyr[j + l] : dyr[j + l] * yr[j + l];
    }
    if (cm < c) {
      float ybuf[kL], dbuf[kL];
      load_padded(dbuf, dyr + cm, static_cast<int>(c - cm), 0.0f);
      if (!kLog) load_padded(ybuf, yr + cm, static_cast<int>(c - cm), 0.0f);
#pragma omp simd
      for (int l = 0; l < kL; ++l) acc[l] += kLog ? dbuf[l] : dbuf[l] * ybuf[l];
    }
    const float s = lanes_sum(acc);
    if (kLog) {
      // dx = dy - exp(y) * s: an exp per element, so the tail is padded.
      for (int64_t j = 0; j < cm; j += kL) {
#pragma omp simd
        for (int l = 0; l < kL; ++l) dxr[j + l] = dyr[j + l] - vmath::exp(yr[j + l]) * s;
      }
      if (cm < c) {
        const int n = static_cast<int>(c - cm);
        float ybuf[kL], dbuf[kL];
        load_padded(ybuf, yr + cm, n, 0.0f);
        load_padded(dbuf, dyr + cm, n, 0.0f);
#pragma omp simd
        for (int l = 0; l < kL; ++l) dbuf[l] = dbuf[l] - vmath::exp(ybuf[l]) * s;
        store_first(dxr + cm, dbuf, n);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) dxr[j] = yr[j] * (dyr[j] - s);
    }
  }
}

void softmax_rows_backward(float* dx, const float* dy, const float* y, int64_t r0, int64_t r1,
                           int64_t c, bool log_y) {
  if (log_y) {
    softmax_rows_backward_t<true>(dx, dy, y, r0, r1, c);
  } else {
    softmax_rows_backward_t<false>(dx, dy, y, r0, r1, c);
  }
}

// ---------------------------------------------------------------------------
// Softmax along a strided axis (NCHW along C): the reduction runs across rows of a
// (dim, inner) block, so the vectors run along `inner` — w columns at a time, with one
// accumulator per column — and no transpose is needed. The caller picks w so that the
// dim x w tile stays in cache over the three passes. Columns past the last multiple of
// kL go through a padded buffer where an exp is involved (as for rows).
// ---------------------------------------------------------------------------

template <bool kLog>
void softmax_cols_t(float* __restrict y, const float* __restrict x, int64_t dim, int64_t inner,
                    int64_t j0, int64_t w) {
  const int64_t wm = w - w % kL;
  const int tn = static_cast<int>(w - wm);
  const int64_t wp = wm + (tn ? kL : 0);  // columns with storage, padding included (<= kMaxTile)
  float mx[kMaxTile], acc[kMaxTile];  // per column: max, then sum of exp (then its log / inverse)
#pragma omp simd
  for (int64_t j = 0; j < wp; ++j) {
    mx[j] = -INFINITY;
    acc[j] = 0.0f;
  }
  for (int64_t d = 0; d < dim; ++d) {
    const float* xr = x + d * inner + j0;  // (w,) slice of row d
#pragma omp simd
    for (int64_t j = 0; j < wm; ++j) mx[j] = xr[j] > mx[j] ? xr[j] : mx[j];
    for (int64_t j = wm; j < w; ++j) mx[j] = xr[j] > mx[j] ? xr[j] : mx[j];
  }
  for (int64_t j = w; j < wp; ++j) mx[j] = 0.0f;  // padding lanes: exp(0 - 0), harmless
  for (int64_t d = 0; d < dim; ++d) {
    const float* xr = x + d * inner + j0;
    float* yr = y + d * inner + j0;
#pragma omp simd
    for (int64_t j = 0; j < wm; ++j) {
      const float e = vmath::exp(xr[j] - mx[j]);
      if (!kLog) yr[j] = e;
      acc[j] += e;
    }
    if (tn) {
      float buf[kL];
      load_padded(buf, xr + wm, tn, 0.0f);
#pragma omp simd
      for (int l = 0; l < kL; ++l) {
        buf[l] = vmath::exp(buf[l] - mx[wm + l]);
        acc[wm + l] += buf[l];
      }
      if (!kLog) store_first(yr + wm, buf, tn);
    }
  }
  if (kLog) {
    for (int64_t j = 0; j < w; ++j) acc[j] = std::log(acc[j]);  // std::log propagates NaN
    for (int64_t d = 0; d < dim; ++d) {
      const float* xr = x + d * inner + j0;
      float* yr = y + d * inner + j0;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) yr[j] = (xr[j] - mx[j]) - acc[j];
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) acc[j] = 1.0f / acc[j];
    for (int64_t d = 0; d < dim; ++d) {
      float* yr = y + d * inner + j0;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) yr[j] *= acc[j];
    }
  }
}

void softmax_cols(float* y, const float* x, int64_t dim, int64_t inner, int64_t j0, int64_t w,
                  bool log_y) {
  if (log_y) {
    softmax_cols_t<true>(y, x, dim, inner, j0, w);
  } else {
    softmax_cols_t<false>(y, x, dim, inner, j0, w);
  }
}

template <bool kLog>
void softmax_cols_backward_t(float* __restrict dx, const float* __restrict dy,
                             const float* __restrict y, int64_t dim, int64_t inner, int64_t j0,
                             int64_t w) {
  const int64_t wm = w - w % kL;
  const int tn = static_cast<int>(w - wm);
  float acc[kMaxTile];  // per column: sum(dy * y) (softmax) or sum(dy) (log_softmax)
#pragma omp simd
  for (int64_t j = 0; j < w; ++j) acc[j] = 0.0f;
  for (int64_t d = 0; d < dim; ++d) {
    const float* dyr = dy + d * inner + j0;
    const float* yr = y + d * inner + j0;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) acc[j] += kLog ? dyr[j] : dyr[j] * yr[j];
  }
  for (int64_t d = 0; d < dim; ++d) {
    const float* dyr = dy + d * inner + j0;
    const float* yr = y + d * inner + j0;
    float* dxr = dx + d * inner + j0;
    if (kLog) {
#pragma omp simd
      for (int64_t j = 0; j < wm; ++j) dxr[j] = dyr[j] - vmath::exp(yr[j]) * acc[j];
      if (tn) {
        float ybuf[kL], dbuf[kL], abuf[kL];
        load_padded(ybuf, yr + wm, tn, 0.0f);
        load_padded(dbuf, dyr + wm, tn, 0.0f);
        load_padded(abuf, acc + wm, tn, 0.0f);
#pragma omp simd
        for (int l = 0; l < kL; ++l) dbuf[l] = dbuf[l] - vmath::exp(ybuf[l]) * abuf[l];
        store_first(dxr + wm, dbuf, tn);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dxr[j] = yr[j] * (dyr[j] - acc[j]);
    }
  }
}

void softmax_cols_backward(float* dx, const float* dy, const float* y, int64_t dim, int64_t inner,
                           int64_t j0, int64_t w, bool log_y) {
  if (log_y) {
    softmax_cols_backward_t<true>(dx, dy, y, dim, inner, j0, w);
  } else {
    softmax_cols_backward_t<false>(dx, dy, y, dim, inner, j0, w);
  }
}

// ---------------------------------------------------------------------------
// Softmax cross-entropy: one read of the row for the max, one for the sum of exp (the
// row is in L1/L2 by then). Backward recomputes the probabilities from the saved
// {max, log-sum} instead of caching an (n, c) softmax: that costs an exp per element
// but saves writing and re-reading n*c floats (see benchmarks/bench_loss.py).
// ---------------------------------------------------------------------------

void cross_entropy_rows(float* row_loss, float* stats, const float* logits, const int64_t* labels,
                        int64_t r0, int64_t r1, int64_t c) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = logits + r * c;  // (c,)
    const float m = row_max(xr, c);
    const float ls = std::log(row_exp_sum<false>(nullptr, nullptr, xr, m, c));
    stats[2 * r] = m;
    stats[2 * r + 1] = ls;
    // -log p_label = log s - (x_label - m); the shift keeps precision for large logits.
    row_loss[r] = ls - (xr[labels[r]] - m);
  }
}

void cross_entropy_rows_backward(float* __restrict dlogits, const float* stats,
                                 const float* __restrict logits, const int64_t* labels,
                                 float scale, int64_t r0, int64_t r1, int64_t c) {
  for (int64_t r = r0; r < r1; ++r) {
    row_exp_scaled(dlogits + r * c, logits + r * c, stats[2 * r], stats[2 * r + 1], scale,
                   labels[r], c);  // (c,) rows
  }
}

// ---------------------------------------------------------------------------
// Element-wise losses.
// ---------------------------------------------------------------------------

// log(1 + e) for e in [0, 1], accurate for tiny e (where 1 + e rounds to 1): the
// classic log(u) * e / (u - 1) correction with u = 1 + e.
inline float log1p_unit(float e) {
  const float u = 1.0f + e;
  const float d = u - 1.0f;
  return d == 0.0f ? e : vmath::log(u) * (e / d);
}

inline float bce_term(float x, float t) {
  const float relu = x > 0.0f ? x : 0.0f;
  return relu - x * t + log1p_unit(vmath::exp(-std::fabs(x)));
}

double bce_sum(const float* x, const float* t, int64_t n) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t len = n - b < kSumBlock ? n - b : kSumBlock;
    const float* xb = x + b;
    const float* tb = t + b;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) s += bce_term(xb[i], tb[i]);
    total += s;
  }
  return total;
}

void bce_backward(float* __restrict dx, float* __restrict dt, const float* __restrict x,
                  const float* __restrict t, float scale, int64_t n) {
  if (dx != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = scale * (vmath::sigmoid(x[i]) - t[i]);
  }
  if (dt != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dt[i] = -scale * x[i];
  }
}

double mse_sum(const float* p, const float* t, int64_t n) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t len = n - b < kSumBlock ? n - b : kSumBlock;
    const float* pb = p + b;
    const float* tb = t + b;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) {
      const float d = pb[i] - tb[i];
      s += d * d;
    }
    total += s;
  }
  return total;
}

void mse_backward(float* __restrict dp, float* __restrict dt, const float* __restrict p,
                  const float* __restrict t, float scale, int64_t n) {
  const float two_s = 2.0f * scale;
  if (dp != nullptr && dt != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = two_s * (p[i] - t[i]);
      dp[i] = g;
      dt[i] = -g;
    }
  } else if (dp != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dp[i] = two_s * (p[i] - t[i]);
  } else if (dt != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dt[i] = -two_s * (p[i] - t[i]);
  }
}

}  // namespace
}  // namespace loss_detail
}  // namespace fastlayers

// Each ISA file defines its table with this initializer (name first).
#define FL_LOSS_TABLE(name)                                                               \
  {name,                                                                                  \
   &softmax_rows,                                                                         \
   &softmax_rows_backward,                                                                \
   &softmax_cols,                                                                         \
   &softmax_cols_backward,                                                                \
   &cross_entropy_rows,                                                                   \
   &cross_entropy_rows_backward,                                                          \
   &bce_sum,                                                                              \
   &bce_backward,                                                                         \
   &mse_sum,                                                                              \
   &mse_backward}
