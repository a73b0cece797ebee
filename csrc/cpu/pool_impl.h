// The pooling plane loops, written once and compiled per instruction set by
// pool_avx512.cpp, pool_avx2.cpp and pool_scalar.cpp (see common/dispatch.h). Everything
// here has internal linkage: each ISA unit gets its own copy.
//
// Max pool (forward, and the 2x2 backward) uses explicit vectors: a type V with N float
// lanes and the few operations listed in pool_scalar.cpp (load, store, de-interleaving
// load, compare, select), defined by each ISA unit. Explicit because the compiler's own
// vectorisation of the compare-and-select loops was fragile: whenever it left a scalar
// remainder (every row shorter than a vector or not a multiple of one), that remainder
// compiled to branches that random data mispredicts, running 5-10x slower. The other
// loops (sums, copies, scatters) are plain C++ that the compiler vectorises per ISA.
//
// Each output row splits into
//   - the interior: windows that lie wholly inside the input columns (vectorised);
//   - the border:  windows cut by the left/right padding (a few per row; scalar).
// Rows cut by the top/bottom padding just reduce fewer input rows.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/pool.h"

namespace fastlayers {
namespace pool_detail {
namespace {

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
//
// With explicit vectors V (the ISA unit's vector type; interface in pool_scalar.cpp), two
// ways:
// - fast path, for a fixed 2x2 or 3x3 window with column stride 2 on rows wholly inside
//   the input: every output's candidates straight from x (max_row_direct);
// - separable, for everything else:
//   1. columns: for every input column w, the best of the window's rows:
//      colv[w], coli[w] (value, flat index), contiguous loads of each input row;
//   2. rows:    for each interior output, the best of colv/coli over its kw columns,
//      loaded at stride 1 or (de-interleaved) stride 2; other strides compute every
//      column position and then pick every sw-th;
//   3. border:  the few windows cut by the left/right padding, scalar, from colv/coli.
// "Best" is the first maximum in row-major window order, NaN above every number. The
// flat index h*W + w grows in row-major window order, so the rule is: larger value wins,
// equal values (or two NaNs) go to the smaller index — an order-free combination, which
// is what lets the columns be reduced before the rows. Step 1 meets candidates in
// increasing row order and so only needs "strictly larger".
// ---------------------------------------------------------------------------

inline int32_t float_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
inline float bits_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// Scalar combine of the candidate (v, i) into (best, bi) with the rule above, written with
// integer masks so that it compiles without branches (random data would mispredict them).
inline void combine_scalar(float v, int32_t i, float& best, int32_t& bi) {
  const bool vn = v != v, bn = best != best;
  const bool take = (v > best) | (vn & !bn) | (((v == best) | (vn & bn)) & (i < bi));
  const int32_t m = -static_cast<int32_t>(take);
  best = bits_float((float_bits(v) & m) | (float_bits(best) & ~m));
  bi = (i & m) | (bi & ~m);
}

// Scalar step of a scan in row-major window order: (v, i) replaces (best, bi) when v is
// larger, or NaN while best is not. Branch-free like combine_scalar.
inline void replace_scalar(float v, int32_t i, float& best, int32_t& bi) {
  const bool take = (v > best) | ((v != v) & (best == best));
  const int32_t m = -static_cast<int32_t>(take);
  best = bits_float((float_bits(v) & m) | (float_bits(best) & ~m));
  bi = (i & m) | (bi & ~m);
}

// (v, i) <- (c, ci) where c beats v by the rule (ties to the smaller index).
template <class V>
inline void combine(typename V::F c, typename V::I ci, typename V::F& v, typename V::I& i) {
  const auto cn = V::isnan(c), vn = V::isnan(v);
  const auto tie = V::m_or(V::eq(c, v), V::m_and(cn, vn));
  const auto take = V::m_or(V::m_or(V::gt(c, v), V::m_andnot(cn, vn)), V::m_and(tie, V::lti(ci, i)));
  v = V::sel(take, c, v);
  i = V::seli(take, ci, i);
}

// Per-thread scratch rows, zeroed once (entries past the row are read but never used).
struct MaxScratch {
  std::vector<float> colv, hv;
  std::vector<int32_t> coli, hi;
  explicit MaxScratch(int64_t n) : colv(n, 0.0f), hv(n, 0.0f), coli(n, 0), hi(n, 0) {}
};

template <class V>
inline int64_t scratch_size(const Pool2dShape& s) {
  return s.w + (s.sw + 2) * V::N + s.kw + 16;
}

// Step 1 for input rows [hs, he): colv/coli[w] for w in [0, W).
//   x (H, W); colv, coli (scratch_size)
template <class V>
void column_best(float* __restrict colv, int32_t* __restrict coli, const float* __restrict x,
                 int64_t W, int64_t hs, int64_t he) {
  constexpr int N = V::N;
  // The N values of row h from column w; a plane narrower than a vector loads only its
  // W columns (nothing past the row end is read).
  const auto load = [&](int64_t h, int64_t w) {
    return W >= N ? V::load(x + h * W + w) : V::load_n(x + h * W, W);
  };
  const auto step = [&](int64_t w) {
    typename V::F v = load(hs, w);
    typename V::I i = V::addi(V::iota(), V::set1i(static_cast<int32_t>(hs * W + w)));
    for (int64_t h = hs + 1; h < he; ++h) {
      const typename V::F c = load(h, w);
      const auto take = V::beats(c, v);
      v = V::sel(take, c, v);
      i = V::seli(take, V::addi(V::iota(), V::set1i(static_cast<int32_t>(h * W + w))), i);
    }
    V::store(colv + w, v);
    V::storei(coli + w, i);
  };
  int64_t w = 0;
  for (; w + N <= W; w += N) step(w);
  // The last partial vector is recomputed overlapping the previous one (same values).
  if (w < W) step(W >= N ? W - N : 0);
}

// Step 2 for SW = 1 or 2 (0: any stride, through hv/hi): outputs j in [0, n) of the
// interior, whose windows start at column c0 + j*sw of colv/coli.
//   out, idx: the n interior outputs of the row
template <class V, int SW, bool kIdx>
void row_best(float* __restrict out, int32_t* __restrict idx, const float* __restrict colv,
              const int32_t* __restrict coli, float* __restrict hv, int32_t* __restrict hi,
              int64_t c0, int64_t n, int64_t kw, int64_t sw) {
  constexpr int N = V::N;
  if constexpr (SW == 0) {
    // Any stride: the best over [p, p + kw) at every column p, then every sw-th.
    const int64_t span = (n - 1) * sw + 1;
    row_best<V, 1, true>(hv, hi, colv, coli, nullptr, nullptr, c0, span, kw, 1);
    for (int64_t j = 0; j < n; ++j) {
      out[j] = hv[j * sw];
      if (kIdx) idx[j] = hi[j * sw];
    }
  } else {
    const auto chunk = [&](int64_t j, typename V::F& v, typename V::I& i) {
      const float* cv = colv + c0 + j * SW;
      const int32_t* ci = coli + c0 + j * SW;
      v = V::zero();  // (kw >= 1: column 0 below sets them)
      i = V::set1i(0);
      for (int64_t b = 0; b < kw; ++b) {
        typename V::F c;
        typename V::I cidx;
        if constexpr (SW == 1) {
          c = V::load(cv + b);
          cidx = V::loadi(ci + b);
        } else {
          // Stride 2: window column b of the N outputs is every other element from b.
          typename V::F even, odd;
          typename V::I ieven, iodd;
          V::load2(cv + (b & ~int64_t(1)), even, odd);
          V::load2i(ci + (b & ~int64_t(1)), ieven, iodd);
          c = (b & 1) ? odd : even;
          cidx = (b & 1) ? iodd : ieven;
        }
        if (b == 0) {
          v = c;
          i = cidx;
        } else {
          combine<V>(c, cidx, v, i);
        }
      }
    };
    typename V::F v = V::zero();
    typename V::I i = V::set1i(0);
    if (n >= N) {
      int64_t j = 0;
      for (; j + N <= n; j += N) {
        chunk(j, v, i);
        V::store(out + j, v);
        if (kIdx) V::storei(idx + j, i);
      }
      if (j < n) {  // overlapping last vector
        chunk(n - N, v, i);
        V::store(out + n - N, v);
        if (kIdx) V::storei(idx + n - N, i);
      }
    } else {
      chunk(0, v, i);
      V::store_n(out, v, n);
      if (kIdx) V::storei_n(idx, i, n);
    }
  }
}

// Fast path for a fixed KH x KW window with column stride 2 (2x2/2, 3x3/2), on rows whose
// windows lie wholly inside the input: each output's KH*KW candidates straight from x
// (de-interleaving loads), scanned in row-major order with "strictly larger replaces",
// the argmax kept as a small in-window offset. About half the work of the separable path.
// The scan is short and latency-bound, hence one chain per window row.
// Outputs j in [0, n) have their window's top-left element at xr[2j].
//   out, idx: the n outputs; xr: row h0 of the plane, from column c0; W: the row length
template <class V, int KH, int KW, bool kIdx>
void max_row_direct(float* __restrict out, int32_t* __restrict idx, const float* __restrict xr,
                    int64_t W, int32_t first, int64_t n, const float* plane_end) {
  constexpr int N = V::N;
  const auto chunk = [&](int64_t j, int64_t count, typename V::F& v, typename V::I& off) {
    const float* p = xr + 2 * j;
    // One scan per window row (independent, so they overlap in the pipeline), then the
    // rows folded in order: a later row wins only when strictly better, which keeps ties
    // on the earlier row without comparing indices.
    typename V::F rv[KH];
    typename V::I ro[KH];
#pragma GCC unroll 4
    for (int a = 0; a < KH; ++a) {
#pragma GCC unroll 4
      for (int b = 0; b < KW; b += 2) {
        // Window columns b and b + 1 of the `count` outputs: the even and odd elements of
        // q[0 ...]. They need 2*count - 1 floats, one more for column b + 1; a full load
        // reads 2N, which is fine anywhere but at the very end of the plane.
        const float* q = p + a * W + b;
        const int64_t need = 2 * count - 1 + (b + 1 < KW ? 1 : 0);
        typename V::F even, odd;
        if (need >= 2 * N || plane_end - q >= 2 * N) {
          V::load2(q, even, odd);
        } else {
          V::load2_n(q, need, even, odd);
        }
        for (int c = 0; c < 2 && b + c < KW; ++c) {
          const typename V::F cand = c == 0 ? even : odd;
          const typename V::I o = V::set1i(static_cast<int32_t>(a * W + b + c));
          if (b + c == 0) {
            rv[a] = cand;
            ro[a] = o;
          } else {
            const auto take = V::beats(cand, rv[a]);
            rv[a] = V::sel(take, cand, rv[a]);
            ro[a] = V::seli(take, o, ro[a]);
          }
        }
      }
    }
    v = rv[0];
    off = ro[0];
#pragma GCC unroll 4
    for (int a = 1; a < KH; ++a) {
      const auto take = V::beats(rv[a], v);
      v = V::sel(take, rv[a], v);
      off = V::seli(take, ro[a], off);
    }
  };
  const auto emit = [&](int64_t j, int64_t count) {
    typename V::F v = V::zero();
    typename V::I off = V::set1i(0);
    chunk(j, count, v, off);
    // flat index = first + 2j + 2 * lane + offset in the window
    const typename V::I i = V::addi(V::addi(V::set1i(first + static_cast<int32_t>(2 * j)),
                                            V::addi(V::iota(), V::iota())), off);
    if (count == N) {
      V::store(out + j, v);
      if (kIdx) V::storei(idx + j, i);
    } else {
      V::store_n(out + j, v, count);
      if (kIdx) V::storei_n(idx + j, i, count);
    }
  };
  if (n >= N) {
    int64_t j = 0;
    for (; j + N <= n; j += N) emit(j, N);
    if (j < n) emit(n - N, N);  // overlapping last vector (same values)
  } else {
    emit(0, n);
  }
}

// One window clipped to the input rows [hs, he) and columns [ws, we), scalar, straight
// from x (the border windows of the fast path).
inline void max_window_scalar(float* out, int32_t* idx, const float* x, int64_t W, int64_t hs,
                              int64_t he, int64_t ws, int64_t we) {
  float best = x[hs * W + ws];
  int32_t bi = static_cast<int32_t>(hs * W + ws);
  for (int64_t h = hs; h < he; ++h) {
    for (int64_t w = ws; w < we; ++w) replace_scalar(x[h * W + w], static_cast<int32_t>(h * W + w), best, bi);
  }
  *out = best;
  if (idx) *idx = bi;
}

// One plane. SW: 1 or 2 for those column strides, 0 for any; KH, KW: the fast path's
// window (0: separable path only).
//   out, idx (OH, OW); x (H, W)
template <class V, int SW, int KH, int KW, bool kIdx>
void max_plane(float* __restrict out, int32_t* __restrict idx, const float* __restrict x,
               const Pool2dShape& s, MaxScratch& scratch) {
  const int64_t H = s.h, W = s.w, OW = s.ow;
  const ColumnSplit cols = interior_columns(s);
  float* colv = scratch.colv.data();
  int32_t* coli = scratch.coli.data();
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const int64_t h0 = oh * s.sh - s.ph;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kh, H);
    float* orow = out + oh * OW;
    int32_t* irow = kIdx ? idx + oh * OW : nullptr;

    if constexpr (KH != 0) {
      if (h0 >= 0 && h0 + KH <= H) {
        const auto border = [&](int64_t ow) {
          const int64_t w0 = ow * s.sw - s.pw;
          max_window_scalar(orow + ow, kIdx ? irow + ow : nullptr, x, W, hs, he,
                            std::max<int64_t>(w0, 0), std::min(w0 + s.kw, W));
        };
        for (int64_t ow = 0; ow < cols.lo; ++ow) border(ow);
        for (int64_t ow = cols.hi; ow < OW; ++ow) border(ow);
        if (cols.lo < cols.hi) {
          const int64_t c0 = cols.lo * 2 - s.pw;
          max_row_direct<V, KH, KW, kIdx>(orow + cols.lo, kIdx ? irow + cols.lo : nullptr,
                                          x + h0 * W + c0, W, static_cast<int32_t>(h0 * W + c0),
                                          cols.hi - cols.lo, x + H * W);
        }
        continue;
      }
    }

    column_best<V>(colv, coli, x, W, hs, he);
    // Border windows: clipped to the input columns [ws, we), combined from colv/coli.
    const auto border = [&](int64_t ow) {
      const int64_t w0 = ow * s.sw - s.pw;
      const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + s.kw, W);
      float best = colv[ws];
      int32_t bi = coli[ws];
      for (int64_t w = ws + 1; w < we; ++w) combine_scalar(colv[w], coli[w], best, bi);
      orow[ow] = best;
      if (kIdx) irow[ow] = bi;
    };
    for (int64_t ow = 0; ow < cols.lo; ++ow) border(ow);
    for (int64_t ow = cols.hi; ow < OW; ++ow) border(ow);
    if (cols.lo < cols.hi) {
      row_best<V, SW, kIdx>(orow + cols.lo, kIdx ? irow + cols.lo : nullptr, colv, coli,
                            scratch.hv.data(), scratch.hi.data(), cols.lo * s.sw - s.pw,
                            cols.hi - cols.lo, s.kw, s.sw);
    }
  }
}

template <class V, bool kIdx>
void max_forward_t(float* out, int32_t* argmax, const float* x, const Pool2dShape& s, int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  using PlaneFn = void (*)(float*, int32_t*, const float*, const Pool2dShape&, MaxScratch&);
  PlaneFn fn = &max_plane<V, 0, 0, 0, kIdx>;
  if (s.sw == 1) fn = &max_plane<V, 1, 0, 0, kIdx>;
  if (s.sw == 2) fn = &max_plane<V, 2, 0, 0, kIdx>;
  if (s.sw == 2 && s.kh == 2 && s.kw == 2) fn = &max_plane<V, 2, 2, 2, kIdx>;
  if (s.sw == 2 && s.kh == 3 && s.kw == 3) fn = &max_plane<V, 2, 3, 3, kIdx>;
#pragma omp parallel num_threads(nthreads)
  {
    MaxScratch scratch(scratch_size<V>(s));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      fn(out + p * out_plane, kIdx ? argmax + p * out_plane : nullptr, x + p * in_plane, s, scratch);
    }
  }
}

template <class V>
void max_forward(float* out, int32_t* argmax, const float* x, const Pool2dShape& s, int nthreads) {
  if (argmax) {
    max_forward_t<V, true>(out, argmax, x, s, nthreads);
  } else {
    max_forward_t<V, false>(out, nullptr, x, s, nthreads);
  }
}

// ---------------------------------------------------------------------------
// Max pool backward
// ---------------------------------------------------------------------------

// 2x2 windows with stride 2 and no padding tile the plane from (0, 0): every dx element
// of a window is written once (dout where the argmax points, else 0), with no zeroing
// pass and no scatter. An argmax that points outside its own window (a corrupted cache)
// writes nothing, so memory safety does not depend on it.
//   dx (H, W); dout, idx (OH, OW)
template <class V>
void max_backward_plane_2x2(float* __restrict dx, const float* __restrict dout,
                            const int32_t* __restrict idx, const Pool2dShape& s) {
  constexpr int N = V::N;
  const int64_t W = s.w, OW = s.ow;
  const typename V::F zero = V::zero();
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    float* __restrict r = dx + oh * 2 * W;  // the window rows 2*oh and 2*oh + 1
    const float* __restrict g = dout + oh * OW;
    const int32_t* __restrict ix = idx + oh * OW;
    // Outputs [j, j + N): the argmax offset inside each window (0, 1, W or W + 1).
    const auto chunk = [&](int64_t j, int64_t count) {
      const typename V::F gv = count == N ? V::load(g + j) : V::load_n(g + j, count);
      const typename V::I iv = count == N ? V::loadi(ix + j) : V::loadi_n(ix + j, count);
      const typename V::I first = V::addi(V::set1i(static_cast<int32_t>(oh * 2 * W + 2 * j)),
                                          V::addi(V::iota(), V::iota()));
      const typename V::I off = V::subi(iv, first);
      for (int a = 0; a < 2; ++a) {
        const int32_t o = static_cast<int32_t>(a * W);
        const typename V::F even = V::sel(V::eqi(off, V::set1i(o)), gv, zero);
        const typename V::F odd = V::sel(V::eqi(off, V::set1i(o + 1)), gv, zero);
        if (count == N) {
          V::store2(r + a * W + 2 * j, even, odd);
        } else {
          V::store2_n(r + a * W + 2 * j, even, odd, count);
        }
      }
    };
    if (OW >= N) {
      int64_t j = 0;
      for (; j + N <= OW; j += N) chunk(j, N);
      if (j < OW) chunk(OW - N, N);  // overlapping last vector (same values)
    } else {
      chunk(0, OW);
    }
    // Column W - 1 when W is odd: in no window.
    if (W > 2 * OW) r[W - 1] = r[2 * W - 1] = 0.0f;
  }
  // Row H - 1 when H is odd.
  std::fill(dx + s.oh * 2 * W, dx + s.h * W, 0.0f);
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

template <class V>
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
      max_backward_plane_2x2<V>(d, g, ix, s);
    } else {
      bad += max_backward_plane_scatter(d, g, ix, s);
    }
  }
  return bad;
}

// ---------------------------------------------------------------------------
// Average pool (padded zeros counted: the divisor is always kh * kw)
// ---------------------------------------------------------------------------

// One plane, separable: colsum[w] = the sum of the window's input rows at column w, then
// each output is the sum of kw consecutive (stride sw) colsum entries, times 1 / (kh * kw).
// Plain loops without selects: the compiler vectorises them for every ISA. SW: 1 or 2
// fixes the column stride at compile time (contiguous / interleaved loads), 0 = any.
// KH, KW (fast path, 2x2/2 and 3x3/2): rows wholly inside the input sum each interior
// window straight from x, the window unrolled (one pass, no colsum round trip).
//   out (OH, OW); x (H, W); colsum (W)
template <int SW, int KH, int KW>
void avg_plane(float* __restrict out, const float* __restrict x, const Pool2dShape& s,
               float* __restrict colsum) {
  const int64_t H = s.h, W = s.w, OW = s.ow, sw = SW ? SW : s.sw;
  const float inv = 1.0f / static_cast<float>(s.kh * s.kw);
  const ColumnSplit cols = interior_columns(s);
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const int64_t h0 = oh * s.sh - s.ph;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kh, H);
    float* __restrict orow = out + oh * OW;
    if constexpr (KH != 0) {
      if (h0 >= 0 && h0 + KH <= H) {
        const auto border = [&](int64_t ow) {
          const int64_t w0 = ow * sw - s.pw;
          float acc = 0.0f;
          for (int64_t h = hs; h < he; ++h) {
            for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + s.kw, W); ++w) acc += x[h * W + w];
          }
          orow[ow] = inv * acc;
        };
        for (int64_t ow = 0; ow < cols.lo; ++ow) border(ow);
        for (int64_t ow = cols.hi; ow < OW; ++ow) border(ow);
        const float* __restrict xb = x + h0 * W + cols.lo * sw - s.pw;
        float* __restrict o = orow + cols.lo;
        for (int64_t j = 0; j < cols.hi - cols.lo; ++j) {
          const float* p = xb + j * SW;
          float acc = 0.0f;
#pragma GCC unroll 16
          for (int a = 0; a < KH; ++a) {
#pragma GCC unroll 16
            for (int b = 0; b < KW; ++b) acc += p[a * W + b];
          }
          o[j] = inv * acc;
        }
        continue;
      }
    }
    for (int64_t w = 0; w < W; ++w) colsum[w] = x[hs * W + w];
    for (int64_t h = hs + 1; h < he; ++h) {
      const float* __restrict r = x + h * W;
      for (int64_t w = 0; w < W; ++w) colsum[w] += r[w];
    }
    // Border windows: the clipped columns (padding adds zeros).
    const auto border = [&](int64_t ow) {
      const int64_t w0 = ow * sw - s.pw;
      float acc = 0.0f;
      for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + s.kw, W); ++w) acc += colsum[w];
      orow[ow] = inv * acc;
    };
    for (int64_t ow = 0; ow < cols.lo; ++ow) border(ow);
    for (int64_t ow = cols.hi; ow < OW; ++ow) border(ow);
    if (cols.lo < cols.hi) {
      const int64_t n = cols.hi - cols.lo;
      const float* __restrict c = colsum + cols.lo * sw - s.pw;
      float* __restrict o = orow + cols.lo;
      for (int64_t j = 0; j < n; ++j) o[j] = c[j * sw];
      for (int64_t b = 1; b < s.kw; ++b) {
        for (int64_t j = 0; j < n; ++j) o[j] += c[j * sw + b];
      }
      for (int64_t j = 0; j < n; ++j) o[j] *= inv;
    }
  }
}

void avg_forward(float* out, const float* x, const Pool2dShape& s, int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  using PlaneFn = void (*)(float*, const float*, const Pool2dShape&, float*);
  PlaneFn fn = &avg_plane<0, 0, 0>;
  if (s.sw == 1) fn = &avg_plane<1, 0, 0>;
  if (s.sw == 2) fn = &avg_plane<2, 0, 0>;
  if (s.sw == 2 && s.kh == 2 && s.kw == 2) fn = &avg_plane<2, 2, 2>;
  if (s.sw == 2 && s.kh == 3 && s.kw == 3) fn = &avg_plane<2, 3, 3>;
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> colsum(s.w);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) fn(out + p * out_plane, x + p * in_plane, s, colsum.data());
  }
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

// General case, separable (the transpose of avg_plane): for each output row, spread
// dout / (kh * kw) along a line of W columns (each window's share to its columns), then add
// the line to the window's input rows. SW as in avg_plane.
//   dx (H, W); dout (OH, OW); line (W); halves (W + kw + 4): scratch for stride 2
template <int SW>
void avg_backward_plane_general(float* __restrict dx, const float* __restrict dout,
                                const Pool2dShape& s, float* __restrict line,
                                float* __restrict halves) {
  const int64_t H = s.h, W = s.w, OW = s.ow, sw = SW ? SW : s.sw;
  const float inv = 1.0f / static_cast<float>(s.kh * s.kw);
  const ColumnSplit cols = interior_columns(s);
  // dx rows are written on first touch and accumulated after (no zeroing pass over the
  // plane); rows no window covers are zeroed. Rows [0, fresh) have been written.
  int64_t fresh = 0;
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const int64_t h0 = oh * s.sh - s.ph;
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kh, H);
    const float* __restrict g = dout + oh * OW;
    std::fill(line, line + W, 0.0f);
    // Interior windows, one window column b at a time (no two outputs share a column
    // within one pass, so the adds vectorise).
    if (cols.lo < cols.hi) {
      const int64_t n = cols.hi - cols.lo;
      float* __restrict l = line + cols.lo * sw - s.pw;
      const float* __restrict gi = g + cols.lo;
      if constexpr (SW == 2) {
        // Stride 2: window column b of output j lands on line column 2 (j + b/2) + b%2, so
        // the even and the odd line columns are each a sum of shifted copies of dout:
        // contiguous adds into two half lines, then one interleaving add into the line.
        float* __restrict even = halves;
        float* __restrict odd = halves + (W + s.kw + 1) / 2 + 1;
        const int64_t ne = n + (s.kw - 1) / 2;            // even columns touched
        const int64_t no = s.kw > 1 ? n + (s.kw - 2) / 2 : 0;  // odd columns touched
        std::fill(even, even + ne, 0.0f);
        std::fill(odd, odd + no, 0.0f);
        for (int64_t b = 0; b < s.kw; ++b) {
          float* __restrict h = (b & 1 ? odd : even) + b / 2;
          for (int64_t j = 0; j < n; ++j) h[j] += inv * gi[j];
        }
        for (int64_t m = 0; m < no; ++m) {
          l[2 * m] += even[m];
          l[2 * m + 1] += odd[m];
        }
        for (int64_t m = no; m < ne; ++m) l[2 * m] += even[m];
      } else {
        for (int64_t b = 0; b < s.kw; ++b) {
          for (int64_t j = 0; j < n; ++j) l[j * sw + b] += inv * gi[j];
        }
      }
    }
    const auto border = [&](int64_t ow) {
      const int64_t w0 = ow * sw - s.pw;
      const float v = inv * g[ow];
      for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + s.kw, W); ++w) line[w] += v;
    };
    for (int64_t ow = 0; ow < cols.lo; ++ow) border(ow);
    for (int64_t ow = cols.hi; ow < OW; ++ow) border(ow);
    if (hs > fresh) std::fill(dx + fresh * W, dx + hs * W, 0.0f);  // rows between windows
    for (int64_t h = hs; h < he; ++h) {
      float* __restrict r = dx + h * W;
      if (h >= fresh) {
        std::copy(line, line + W, r);
      } else {
        for (int64_t w = 0; w < W; ++w) r[w] += line[w];
      }
    }
    fresh = std::max(fresh, he);
  }
  std::fill(dx + fresh * W, dx + H * W, 0.0f);  // rows below the last window
}

void avg_backward(float* dx, const float* dout, const Pool2dShape& s, int nthreads) {
  const int64_t planes = s.n * s.c, in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const bool tiled2 = s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0;
  using PlaneFn = void (*)(float*, const float*, const Pool2dShape&, float*, float*);
  const PlaneFn general = s.sw == 1   ? &avg_backward_plane_general<1>
                          : s.sw == 2 ? &avg_backward_plane_general<2>
                                      : &avg_backward_plane_general<0>;
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> line(tiled2 ? 0 : s.w), halves(tiled2 ? 0 : s.w + s.kw + 4);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      if (tiled2) {
        avg_backward_plane_tiled<2>(dx + p * in_plane, dout + p * out_plane, s);
      } else {
        general(dx + p * in_plane, dout + p * out_plane, s, line.data(), halves.data());
      }
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

// The table of one ISA unit: V is its vector type (defined in pool_<isa>.cpp).
template <class V>
const PoolKernels& kernels_for() {
  static const PoolKernels table{&max_forward<V>, &max_backward<V>,  &avg_forward,
                                 &avg_backward,   &global_avg_forward, &global_avg_backward};
  return table;
}

}  // namespace
}  // namespace pool_detail
}  // namespace fastlayers
