// The pooling plane loops, written once and compiled per instruction set by
// pool_avx512.cpp, pool_avx2.cpp and pool_scalar.cpp (see common/dispatch.h). Everything
// here has internal linkage: each ISA unit gets its own copy.
//
// Plain C++ that the compiler vectorises across the output columns of a row: the loads of
// window element (a, b) for consecutive outputs are x[a*W + b + j*sw] (contiguous for
// stride 1, an interleaved group for stride 2), and the running max / argmax update is a
// compare and two selects. Each output row splits into
//   - the interior: windows that lie wholly inside the input (no clipping, vectorised);
//   - the border:  windows cut by the padding (a few per row; clipped scalar loop).
// Rows whose windows reach into the top or bottom padding are all border.
//
// Fast paths, by template arguments fixing the window and the column stride at compile
// time (the window loops unroll and the running max stays in registers):
//   2x2 stride 2, 3x3 stride 2 (the ResNet stem, pad 1); any window with stride 1 or 2
//   gets a fixed stride and a run-time window; anything else is fully run-time.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/pool.h"

namespace fastlayers {
namespace pool_detail {
namespace {

// True when b replaces the running maximum a: b is larger, or b is NaN and a is not.
// Together with "first element starts the scan, later ones replace only when they
// win", this picks the first maximum in window order, with NaN above every number.
// (Written without fmax: it must not be contracted into an instruction that prefers
// the non-NaN operand.)
inline bool replaces(float b, float a) { return b > a || (b != b && a == a); }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output columns [lo, hi) whose windows lie wholly inside the input columns.
struct ColumnSplit {
  int64_t lo, hi;
};
inline ColumnSplit interior_columns(const Pool2dShape& s) {
  const int64_t lo = std::min(s.ow, ceil_div(s.pw, s.sw));
  const int64_t last = s.w + s.pw - s.kw;  // w0 of the last window that still fits
  const int64_t hi = last >= 0 ? std::min(s.ow, last / s.sw + 1) : 0;
  return {lo, std::max(lo, hi)};
}

// ---------------------------------------------------------------------------
// Max pool forward
// ---------------------------------------------------------------------------

// One window clipped to the input rows [hs, he) and columns [ws, we) (never empty).
template <bool kIdx>
inline void max_window_clipped(float* out, int32_t* idx, const float* x, int64_t W, int64_t hs,
                               int64_t he, int64_t ws, int64_t we) {
  float best = x[hs * W + ws];
  int64_t bi = hs * W + ws;
  for (int64_t h = hs; h < he; ++h) {
    for (int64_t w = ws; w < we; ++w) {
      const float v = x[h * W + w];
      if (replaces(v, best)) {
        best = v;
        bi = h * W + w;
      }
    }
  }
  *out = best;
  if (kIdx) *idx = static_cast<int32_t>(bi);
}

// One plane. KH, KW, SW: window and column stride fixed at compile time, or 0 for the
// run-time value in s. kIdx: write the argmax.
//   out, idx (OH, OW); x (H, W)
template <int KH, int KW, int SW, bool kIdx>
void max_plane(float* __restrict out, int32_t* __restrict idx, const float* __restrict x,
               const Pool2dShape& s) {
  const int64_t kh = KH ? KH : s.kh, kw = KW ? KW : s.kw, sw = SW ? SW : s.sw;
  const int64_t H = s.h, W = s.w, OW = s.ow;
  const ColumnSplit cols = interior_columns(s);
  const int32_t W32 = static_cast<int32_t>(W);

  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const int64_t h0 = oh * s.sh - s.ph;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + kh, H);
    float* orow = out + oh * OW;
    int32_t* irow = kIdx ? idx + oh * OW : nullptr;
    const bool full_rows = h0 >= 0 && h0 + kh <= H;
    const int64_t lo = full_rows ? cols.lo : OW;  // rows cut by the padding: all border
    const int64_t hi = full_rows ? cols.hi : OW;

    // Border windows: [0, lo) and [hi, OW) (every column when the rows are cut).
    const auto border = [&](int64_t ow) {
      const int64_t w0 = ow * sw - s.pw;
      max_window_clipped<kIdx>(orow + ow, kIdx ? irow + ow : nullptr, x, W, hs, he,
                               std::max<int64_t>(w0, 0), std::min(w0 + kw, W));
    };
    for (int64_t ow = 0; ow < lo; ++ow) border(ow);
    for (int64_t ow = hi; ow < OW; ++ow) border(ow);
    if (lo >= hi) continue;

    // Interior: window j (output column lo + j) has its top-left element at xb[j * sw].
    const int64_t n = hi - lo;
    const int64_t first = h0 * W + lo * sw - s.pw;  // flat index of xb[0] in the plane
    const float* __restrict xb = x + first;
    float* __restrict o = orow + lo;
    int32_t* __restrict ix = kIdx ? irow + lo : nullptr;
    const int32_t base = static_cast<int32_t>(first);
    if constexpr (KH != 0 && KW != 0) {
      // Fixed window: the whole window per output, running max in registers.
      for (int64_t j = 0; j < n; ++j) {
        const float* p = xb + j * SW;
        float best = p[0];
        int32_t off = 0;
#pragma GCC unroll 16
        for (int a = 0; a < KH; ++a) {
#pragma GCC unroll 16
          for (int b = 0; b < KW; ++b) {
            if (a == 0 && b == 0) continue;
            const float v = p[a * W + b];
            const bool m = replaces(v, best);
            best = m ? v : best;
            off = m ? a * W32 + b : off;
          }
        }
        o[j] = best;
        if (kIdx) ix[j] = base + static_cast<int32_t>(j) * SW + off;
      }
    } else {
      // Run-time window: the output row is the running buffer; window elements in
      // row-major order in the outer loops, output columns in the vectorised inner loop.
      for (int64_t j = 0; j < n; ++j) o[j] = xb[j * sw];
      if (kIdx) {
        for (int64_t j = 0; j < n; ++j) ix[j] = base + static_cast<int32_t>(j * sw);
      }
      for (int64_t a = 0; a < kh; ++a) {
        for (int64_t b = 0; b < kw; ++b) {
          if (a == 0 && b == 0) continue;
          const float* __restrict q = xb + a * W + b;
          const int32_t qi = base + static_cast<int32_t>(a * W + b);
          if (kIdx) {
            for (int64_t j = 0; j < n; ++j) {
              const float v = q[j * sw];
              const bool m = replaces(v, o[j]);
              o[j] = m ? v : o[j];
              ix[j] = m ? qi + static_cast<int32_t>(j * sw) : ix[j];
            }
          } else {
            for (int64_t j = 0; j < n; ++j) {
              const float v = q[j * sw];
              o[j] = replaces(v, o[j]) ? v : o[j];
            }
          }
        }
      }
    }
  }
}

using MaxPlaneFn = void (*)(float*, int32_t*, const float*, const Pool2dShape&);

template <bool kIdx>
MaxPlaneFn select_max_plane(const Pool2dShape& s) {
  if (s.kh == 2 && s.kw == 2 && s.sw == 2) return &max_plane<2, 2, 2, kIdx>;
  if (s.kh == 3 && s.kw == 3 && s.sw == 2) return &max_plane<3, 3, 2, kIdx>;
  if (s.sw == 1) return &max_plane<0, 0, 1, kIdx>;
  if (s.sw == 2) return &max_plane<0, 0, 2, kIdx>;
  return &max_plane<0, 0, 0, kIdx>;
}

void max_forward(float* out, int32_t* argmax, const float* x, const Pool2dShape& s, int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const MaxPlaneFn fn = argmax ? select_max_plane<true>(s) : select_max_plane<false>(s);
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    fn(out + p * out_plane, argmax ? argmax + p * out_plane : nullptr, x + p * in_plane, s);
  }
}

// ---------------------------------------------------------------------------
// Max pool backward
// ---------------------------------------------------------------------------

// Non-overlapping windows that tile the plane from (0, 0) (stride == window, no padding):
// every dx element of a window is written once (dout where the argmax points, else 0),
// with no zeroing pass and no scatter. An argmax that points outside its own window (a
// corrupted cache) writes nothing, so memory safety does not depend on it.
//   dx (H, W); dout, idx (OH, OW)
template <int K>
void max_backward_plane_tiled(float* __restrict dx, const float* __restrict dout,
                              const int32_t* __restrict idx, const Pool2dShape& s) {
  const int64_t W = s.w, OW = s.ow;
  const int32_t W32 = static_cast<int32_t>(W);
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    float* __restrict r = dx + oh * K * W;
    const float* __restrict g = dout + oh * OW;
    const int32_t* __restrict ix = idx + oh * OW;
    const int32_t base = static_cast<int32_t>(oh * K * W);
    for (int64_t j = 0; j < OW; ++j) {
      const int32_t off = ix[j] - base - static_cast<int32_t>(j) * K;
#pragma GCC unroll 16
      for (int a = 0; a < K; ++a) {
#pragma GCC unroll 16
        for (int b = 0; b < K; ++b) r[a * W + j * K + b] = off == a * W32 + b ? g[j] : 0.0f;
      }
    }
    // Columns right of the last window.
    for (int a = 0; a < K; ++a) std::fill(r + a * W + OW * K, r + (a + 1) * W, 0.0f);
  }
  // Rows below the last window.
  std::fill(dx + s.oh * K * W, dx + s.h * W, 0.0f);
}

// General case: zero the plane (it stays in cache), then add each dout to its argmax
// element. Overlapping windows accumulate; the plane is private to the thread.
//   dx (H, W); dout, idx (OH, OW). Returns the number of out-of-range entries skipped.
int64_t max_backward_plane_scatter(float* __restrict dx, const float* __restrict dout,
                                   const int32_t* __restrict idx, const Pool2dShape& s) {
  const int64_t in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  std::fill(dx, dx + in_plane, 0.0f);
  int64_t bad = 0;
  for (int64_t o = 0; o < out_plane; ++o) {
    const int64_t i = idx[o];
    if (i < 0 || i >= in_plane) {
      ++bad;
      continue;
    }
    dx[i] += dout[o];
  }
  return bad;
}

int64_t max_backward(float* dx, const float* dout, const int32_t* argmax, const Pool2dShape& s,
                     int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const bool tiled2 = s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0;
  int64_t bad = 0;
#pragma omp parallel for num_threads(nthreads) schedule(static) reduction(+ : bad)
  for (int64_t p = 0; p < planes; ++p) {
    float* d = dx + p * in_plane;
    const float* g = dout + p * out_plane;
    const int32_t* ix = argmax + p * out_plane;
    if (tiled2) {
      max_backward_plane_tiled<2>(d, g, ix, s);
    } else {
      bad += max_backward_plane_scatter(d, g, ix, s);
    }
  }
  return bad;
}

// ---------------------------------------------------------------------------
// Average pool (padded zeros counted: the divisor is always kh * kw)
// ---------------------------------------------------------------------------

inline float sum_clipped(const float* x, int64_t W, int64_t hs, int64_t he, int64_t ws, int64_t we) {
  float acc = 0.0f;
  for (int64_t h = hs; h < he; ++h) {
    for (int64_t w = ws; w < we; ++w) acc += x[h * W + w];
  }
  return acc;
}

// One plane; template arguments as for max_plane.
//   out (OH, OW); x (H, W)
template <int KH, int KW, int SW>
void avg_plane(float* __restrict out, const float* __restrict x, const Pool2dShape& s) {
  const int64_t kh = KH ? KH : s.kh, kw = KW ? KW : s.kw, sw = SW ? SW : s.sw;
  const int64_t H = s.h, W = s.w, OW = s.ow;
  const float inv = 1.0f / static_cast<float>(kh * kw);
  const ColumnSplit cols = interior_columns(s);

  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const int64_t h0 = oh * s.sh - s.ph;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + kh, H);
    float* orow = out + oh * OW;
    const bool full_rows = h0 >= 0 && h0 + kh <= H;
    const int64_t lo = full_rows ? cols.lo : OW, hi = full_rows ? cols.hi : OW;
    const auto border = [&](int64_t ow) {
      const int64_t w0 = ow * sw - s.pw;
      orow[ow] = inv * sum_clipped(x, W, hs, he, std::max<int64_t>(w0, 0), std::min(w0 + kw, W));
    };
    for (int64_t ow = 0; ow < lo; ++ow) border(ow);
    for (int64_t ow = hi; ow < OW; ++ow) border(ow);
    if (lo >= hi) continue;

    const int64_t n = hi - lo;
    const float* __restrict xb = x + h0 * W + lo * sw - s.pw;
    float* __restrict o = orow + lo;
    if constexpr (KH != 0 && KW != 0) {
      for (int64_t j = 0; j < n; ++j) {
        const float* p = xb + j * SW;
        float acc = 0.0f;
#pragma GCC unroll 16
        for (int a = 0; a < KH; ++a) {
#pragma GCC unroll 16
          for (int b = 0; b < KW; ++b) acc += p[a * W + b];
        }
        o[j] = inv * acc;
      }
    } else {
      for (int64_t j = 0; j < n; ++j) o[j] = 0.0f;
      for (int64_t a = 0; a < kh; ++a) {
        for (int64_t b = 0; b < kw; ++b) {
          const float* __restrict q = xb + a * W + b;
          for (int64_t j = 0; j < n; ++j) o[j] += q[j * sw];
        }
      }
      for (int64_t j = 0; j < n; ++j) o[j] *= inv;
    }
  }
}

using AvgPlaneFn = void (*)(float*, const float*, const Pool2dShape&);

AvgPlaneFn select_avg_plane(const Pool2dShape& s) {
  if (s.kh == 2 && s.kw == 2 && s.sw == 2) return &avg_plane<2, 2, 2>;
  if (s.kh == 3 && s.kw == 3 && s.sw == 2) return &avg_plane<3, 3, 2>;
  if (s.sw == 1) return &avg_plane<0, 0, 1>;
  if (s.sw == 2) return &avg_plane<0, 0, 2>;
  return &avg_plane<0, 0, 0>;
}

void avg_forward(float* out, const float* x, const Pool2dShape& s, int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const AvgPlaneFn fn = select_avg_plane(s);
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t p = 0; p < planes; ++p) fn(out + p * out_plane, x + p * in_plane, s);
}

// Tiled case (stride == window, no padding): each dx element is dout / K^2 of its
// window, or 0 right of / below the last window. One write per element.
//   dx (H, W); dout (OH, OW)
template <int K>
void avg_backward_plane_tiled(float* __restrict dx, const float* __restrict dout, const Pool2dShape& s) {
  const int64_t W = s.w, OW = s.ow;
  const float inv = 1.0f / static_cast<float>(K * K);
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    float* __restrict r = dx + oh * K * W;
    const float* __restrict g = dout + oh * OW;
    for (int64_t j = 0; j < OW; ++j) {
      const float v = inv * g[j];
#pragma GCC unroll 16
      for (int a = 0; a < K; ++a) {
#pragma GCC unroll 16
        for (int b = 0; b < K; ++b) r[a * W + j * K + b] = v;
      }
    }
    for (int a = 0; a < K; ++a) std::fill(r + a * W + OW * K, r + (a + 1) * W, 0.0f);
  }
  std::fill(dx + s.oh * K * W, dx + s.h * W, 0.0f);
}

// General case: zero the plane, then add dout / (kh * kw) over each window's clipped
// extent (padding receives nothing).
//   dx (H, W); dout (OH, OW)
void avg_backward_plane_general(float* __restrict dx, const float* __restrict dout, const Pool2dShape& s) {
  const int64_t H = s.h, W = s.w;
  const float inv = 1.0f / static_cast<float>(s.kh * s.kw);
  std::fill(dx, dx + H * W, 0.0f);
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const int64_t h0 = oh * s.sh - s.ph;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kh, H);
    for (int64_t ow = 0; ow < s.ow; ++ow) {
      const int64_t w0 = ow * s.sw - s.pw;
      const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + s.kw, W);
      const float v = inv * dout[oh * s.ow + ow];
      for (int64_t h = hs; h < he; ++h) {
        float* __restrict r = dx + h * W;
        for (int64_t w = ws; w < we; ++w) r[w] += v;
      }
    }
  }
}

void avg_backward(float* dx, const float* dout, const Pool2dShape& s, int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const bool tiled2 = s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    if (tiled2) {
      avg_backward_plane_tiled<2>(dx + p * in_plane, dout + p * out_plane, s);
    } else {
      avg_backward_plane_general(dx + p * in_plane, dout + p * out_plane, s);
    }
  }
}

// ---------------------------------------------------------------------------
// Global average pool
// ---------------------------------------------------------------------------

void global_avg_forward(float* out, const float* x, int64_t planes, int64_t hw, int nthreads) {
  const float inv = 1.0f / static_cast<float>(hw);
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const float* __restrict xp = x + p * hw;
    float acc = 0.0f;
    // A vector of partial sums (omp simd reduction) also keeps the rounding error low.
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < hw; ++i) acc += xp[i];
    out[p] = acc * inv;
  }
}

void global_avg_backward(float* dx, const float* dout, int64_t planes, int64_t hw, int nthreads) {
  const float inv = 1.0f / static_cast<float>(hw);
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    float* __restrict d = dx + p * hw;
    const float v = dout[p] * inv;
    for (int64_t i = 0; i < hw; ++i) d[i] = v;
  }
}

const PoolKernels kKernels{&max_forward, &max_backward, &avg_forward,
                           &avg_backward, &global_avg_forward, &global_avg_backward};

}  // namespace
}  // namespace pool_detail
}  // namespace fastlayers
