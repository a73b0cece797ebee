// Convolution inner loops, compiled once per instruction set: conv_avx512.cpp,
// conv_avx2.cpp and conv_scalar.cpp include this header, and its anonymous namespace
// gives each a private copy built with its own flags (see common/dispatch.h).
//
//   pack_rows   im2col rows of one panel of output columns, straight into the GEMM's
//               packed B layout (forward) or into row-major rows (weight gradient)
//   copy_rows   the same for the batch-blocked layout, where a row is NR images side
//               by side: a plain copy of NR floats
//   to_lanes / from_lanes  transposes into and out of that layout (16 x 16 blocks)
//   deinterleave  one input row split into its stride_w phases (the padded copy of the
//               NCHW path; AVX-512 permutes for strides 2 and 4)
//   dot_tile    a 6 x 4 tile of the weight gradient: dot products along the pixels
//               (both operands are contiguous along the reduction, so nothing needs
//               transposing; 24 vector accumulators, summed horizontally at the end)
//   brgemm      (AVX-512 only) the GEMM micro-kernel's register tile run over several
//               (A, B) segments before C is stored: all kernel rows of one output pixel
//               of the batch-blocked forward in one call
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cpu/conv_kernels.h"

namespace fastlayers {
namespace conv_detail {
namespace {

// ---------------------------------------------------------------------------------
// pack_rows
// ---------------------------------------------------------------------------------

// Portable version: run by run; long runs are plain copies the compiler vectorises.
void pack_rows_generic(float* dst, int64_t ld, const float* src, const int64_t* row_off, int64_t rows,
                       const PanelPlan& plan) {
  const int n = plan.ncols;
  if (plan.contiguous) {
    const int64_t off = plan.runs[0].off;
    for (int64_t p = 0; p < rows; ++p) {
      const float* s = src + row_off[p] + off;
      float* d = dst + p * ld;
      for (int j = 0; j < n; ++j) d[j] = s[j];
    }
    return;
  }
  for (int64_t p = 0; p < rows; ++p) {
    float* d = dst + p * ld;
    const float* s = src + row_off[p];
    for (int j = 0; j < n; ++j) d[j] = 0.0f;
    for (int r = 0; r < plan.nruns; ++r) {
      const PanelRun& run = plan.runs[r];
      const float* sr = s + run.off;
      float* dr = d + run.j0;
      for (int t = 0; t < run.len; ++t) dr[t] = sr[t];
    }
  }
}

#if defined(__AVX512F__)
// N0 runs fill the first vector and N1 the second: with the counts known at compile
// time the masks and offsets stay in registers across the rows. (Zero-masked loads
// ORed together, to break the chain of merge-masked loads through v0, measured no
// faster on AlexNet conv1.)
template <int N0, int N1>
void pack_runs_avx512(float* dst, int64_t ld, const float* src, const int64_t* row_off, int64_t rows,
                      const PanelRun* runs) {
  __mmask16 mask[N0 + N1];
  int64_t delta[N0 + N1];
#pragma GCC unroll 8
  for (int r = 0; r < N0 + N1; ++r) {
    mask[r] = static_cast<__mmask16>(runs[r].mask);
    delta[r] = runs[r].delta;
  }
  for (int64_t p = 0; p < rows; ++p) {
    const float* s = src + row_off[p];
    __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < N0; ++r) v0 = _mm512_mask_loadu_ps(v0, mask[r], s + delta[r]);
#pragma GCC unroll 4
    for (int r = N0; r < N0 + N1; ++r) v1 = _mm512_mask_loadu_ps(v1, mask[r], s + delta[r]);
    _mm512_storeu_ps(dst + p * ld, v0);
    _mm512_storeu_ps(dst + p * ld + 16, v1);
  }
}

using PackRunsFn = void (*)(float*, int64_t, const float*, const int64_t*, int64_t, const PanelRun*);

template <int N0>
struct PackRunsRow {
  static constexpr PackRunsFn fns[5] = {&pack_runs_avx512<N0, 0>, &pack_runs_avx512<N0, 1>,
                                        &pack_runs_avx512<N0, 2>, &pack_runs_avx512<N0, 3>,
                                        &pack_runs_avx512<N0, 4>};
};
constexpr const PackRunsFn* pack_runs_table[4] = {PackRunsRow<1>::fns, PackRunsRow<2>::fns,
                                                  PackRunsRow<3>::fns, PackRunsRow<4>::fns};

// AVX-512, panels of 32 columns = two vectors. Each run is one masked load (lanes
// outside every run stay zero; masked-off lanes are never read, so runs at the edge of
// the buffer are safe). Many short runs (a horizontal stride > 1) use gathers.
void pack_rows_avx512(float* dst, int64_t ld, const float* src, const int64_t* row_off, int64_t rows,
                      const PanelPlan& plan) {
  if (plan.ncols != 32) return pack_rows_generic(dst, ld, src, row_off, rows, plan);
  if (plan.contiguous) {
    const int64_t off = plan.runs[0].off;
    for (int64_t p = 0; p < rows; ++p) {
      const float* s = src + row_off[p] + off;
      _mm512_storeu_ps(dst + p * ld, _mm512_loadu_ps(s));
      _mm512_storeu_ps(dst + p * ld + 16, _mm512_loadu_ps(s + 16));
    }
    return;
  }
  int n0 = 0;
  while (n0 < plan.nruns && plan.runs[n0].vec == 0) ++n0;
  const int nr = plan.nruns;
  if (nr > 8 && plan.gather_ok) {
    alignas(64) int32_t idx[32];
    uint32_t valid = 0;
    for (int j = 0; j < 32; ++j) {
      idx[j] = plan.off[j] >= 0 ? static_cast<int32_t>(plan.off[j]) : 0;
      if (plan.off[j] >= 0) valid |= 1u << j;
    }
    const __m512i i0 = _mm512_load_si512(idx), i1 = _mm512_load_si512(idx + 16);
    const __mmask16 m0 = static_cast<__mmask16>(valid), m1 = static_cast<__mmask16>(valid >> 16);
    const __m512 z = _mm512_setzero_ps();
    for (int64_t p = 0; p < rows; ++p) {
      const float* s = src + row_off[p];
      _mm512_storeu_ps(dst + p * ld, _mm512_mask_i32gather_ps(z, m0, i0, s, 4));
      _mm512_storeu_ps(dst + p * ld + 16, _mm512_mask_i32gather_ps(z, m1, i1, s, 4));
    }
    return;
  }
  if (n0 >= 1 && n0 <= 4 && nr - n0 <= 4) return pack_runs_table[n0 - 1][nr - n0](dst, ld, src, row_off, rows, plan.runs);
  __mmask16 mask[32];
  int64_t delta[32];
  for (int r = 0; r < nr; ++r) {
    mask[r] = static_cast<__mmask16>(plan.runs[r].mask);
    delta[r] = plan.runs[r].delta;
  }
  for (int64_t p = 0; p < rows; ++p) {
    const float* s = src + row_off[p];
    __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
    for (int r = 0; r < n0; ++r) v0 = _mm512_mask_loadu_ps(v0, mask[r], s + delta[r]);
    for (int r = n0; r < nr; ++r) v1 = _mm512_mask_loadu_ps(v1, mask[r], s + delta[r]);
    _mm512_storeu_ps(dst + p * ld, v0);
    _mm512_storeu_ps(dst + p * ld + 16, v1);
  }
}
#endif

// ---------------------------------------------------------------------------------
// deinterleave: one row of the input split into its stride_w phases
// ---------------------------------------------------------------------------------

// Portable version; phases 2 and 4 as compile-time constants, so that the compiler can
// vectorise the constant-stride loads (AVX2: permutes).
template <int P>
void deinterleave_fixed(float* dst, int64_t dst_stride, const float* src, int64_t count) {
  for (int64_t j = 0; j < count; ++j)
    for (int ph = 0; ph < P; ++ph) dst[ph * dst_stride + j] = src[j * P + ph];
}

void deinterleave_generic(float* dst, int64_t dst_stride, const float* src, int64_t phases, int64_t count) {
  if (phases == 2) return deinterleave_fixed<2>(dst, dst_stride, src, count);
  if (phases == 4) return deinterleave_fixed<4>(dst, dst_stride, src, count);
  for (int64_t ph = 0; ph < phases; ++ph) {
    float* d = dst + ph * dst_stride;
    for (int64_t j = 0; j < count; ++j) d[j] = src[j * phases + ph];
  }
}

#if defined(__AVX512F__)
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// Phases 2 and 4 (the common strides) by two-source permutes, 16 outputs per phase
// per step; a masked last step reads no element past src[count*phases).
void deinterleave_avx512(float* dst, int64_t dst_stride, const float* src, int64_t phases, int64_t count) {
  if (phases == 2) {
    const __m512i i0 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(1));
    for (int64_t j = 0; j < count; j += 16) {
      const int64_t n = count - j;  // outputs left; the source has 2n floats from j*2
      const float* s = src + 2 * j;
      const __m512 a = _mm512_maskz_loadu_ps(first_lanes(2 * n), s);
      const __m512 b = _mm512_maskz_loadu_ps(first_lanes(2 * n - 16), s + 16);
      const __mmask16 m = first_lanes(n);
      _mm512_mask_storeu_ps(dst + j, m, _mm512_permutex2var_ps(a, i0, b));
      _mm512_mask_storeu_ps(dst + dst_stride + j, m, _mm512_permutex2var_ps(a, i1, b));
    }
    return;
  }
  if (phases == 4) {
    // Lane i of phase ph: element ph + 4*(i % 8) of (a, b) for i < 8, of (c, d) above.
    const __m512i base = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    for (int64_t j = 0; j < count; j += 16) {
      const int64_t n = count - j;
      const float* s = src + 4 * j;
      const __m512 a = _mm512_maskz_loadu_ps(first_lanes(4 * n), s);
      const __m512 b = _mm512_maskz_loadu_ps(first_lanes(4 * n - 16), s + 16);
      const __m512 c = _mm512_maskz_loadu_ps(first_lanes(4 * n - 32), s + 32);
      const __m512 d = _mm512_maskz_loadu_ps(first_lanes(4 * n - 48), s + 48);
      const __mmask16 m = first_lanes(n);
#pragma GCC unroll 4
      for (int ph = 0; ph < 4; ++ph) {
        const __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32(ph));
        const __m512 lo = _mm512_permutex2var_ps(a, idx, b), hi = _mm512_permutex2var_ps(c, idx, d);
        _mm512_mask_storeu_ps(dst + ph * dst_stride + j, m, _mm512_mask_blend_ps(0xFF00, lo, hi));
      }
    }
    return;
  }
  deinterleave_generic(dst, dst_stride, src, phases, count);
}
#endif

// ---------------------------------------------------------------------------------
// dot_tile
// ---------------------------------------------------------------------------------

// copy_rows: `count` rows of NR floats, `stride` apart, into a packed B micro-panel.
template <int NR>
void copy_rows_generic(float* dst, const float* src, int64_t stride, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float* s = src + i * stride;
    float* d = dst + i * NR;
    for (int t = 0; t < NR; ++t) d[t] = s[t];
  }
}

#if defined(__AVX512F__)
void copy_rows_avx512(float* dst, const float* src, int64_t stride, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float* s = src + i * stride;
    _mm512_store_ps(dst + i * 32, _mm512_load_ps(s));
    _mm512_store_ps(dst + i * 32 + 16, _mm512_load_ps(s + 16));
  }
}
#endif

// to_lanes / from_lanes: transposes between NR separate rows and NR-wide interleaved rows.
template <int NR>
void to_lanes_generic(float* dst, int64_t stride, const float* const* src, int64_t count) {
  for (int l = 0; l < NR; ++l) {
    const float* s = src[l];
    for (int64_t i = 0; i < count; ++i) dst[i * stride + l] = s[i];
  }
}

template <int NR>
void from_lanes_generic(float* const* dst, const float* src, int64_t count, float bias) {
  for (int l = 0; l < NR; ++l) {
    float* d = dst[l];
    for (int64_t i = 0; i < count; ++i) d[i] = src[i * NR + l] + bias;
  }
}

#if defined(__AVX512F__)
// GCC 12's AVX-512 shuffle intrinsics pass _mm512_undefined_ps() as the (unused) merge
// source, which -Wmaybe-uninitialized reports once inlined; the values are never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// In place: rows r[0..16) of a 16 x 16 block become its columns (64 shuffles).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + m], 128-bit lane L: rows 4i..4i+3 of column 4L + m.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // Column 4L + m gathers lane L of u[m], u[4+m], u[8+m], u[12+m].
  for (int m = 0; m < 4; ++m) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xEE);
    t[m] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    t[4 + m] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    t[8 + m] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    t[12 + m] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

void to_lanes_avx512(float* dst, int64_t stride, const float* const* src, int64_t count) {
  for (int64_t i0 = 0; i0 < count; i0 += 16) {
    const int n = static_cast<int>(count - i0 < 16 ? count - i0 : 16);
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    for (int lb = 0; lb < 32; lb += 16) {
      __m512 r[16];
      for (int l = 0; l < 16; ++l) r[l] = _mm512_maskz_loadu_ps(m, src[lb + l] + i0);
      transpose16x16(r);
      for (int j = 0; j < n; ++j) _mm512_storeu_ps(dst + (i0 + j) * stride + lb, r[j]);
    }
  }
}

void from_lanes_avx512(float* const* dst, const float* src, int64_t count, float bias) {
  const __m512 b = _mm512_set1_ps(bias);
  for (int64_t i0 = 0; i0 < count; i0 += 16) {
    const int n = static_cast<int>(count - i0 < 16 ? count - i0 : 16);
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    for (int lb = 0; lb < 32; lb += 16) {
      __m512 r[16];
      for (int j = 0; j < 16; ++j) r[j] = j < n ? _mm512_loadu_ps(src + (i0 + j) * 32 + lb) : _mm512_setzero_ps();
      transpose16x16(r);
      for (int l = 0; l < 16; ++l) _mm512_mask_storeu_ps(dst[lb + l] + i0, m, _mm512_add_ps(r[l], b));
    }
  }
}
#pragma GCC diagnostic pop
#endif

// Portable version: one dot product at a time.
[[maybe_unused]] void dot_tile_generic(float* dw, int64_t ldw, int64_t ldj, const float* const* d, const float* const* col,
                      int64_t len, int64_t nrows, int64_t d_rs, int64_t c_rs, int it, int jt) {
  for (int i = 0; i < it; ++i) {
    for (int j = 0; j < jt; ++j) {
      float s = 0.0f;
      for (int64_t row = 0; row < nrows; ++row) {
        const float* di = d[i] + row * d_rs;
        const float* cj = col[j] + row * c_rs;
#pragma omp simd reduction(+ : s)
        for (int64_t t = 0; t < len; ++t) s += di[t] * cj[t];
      }
      dw[i * ldw + j * ldj] += s;
    }
  }
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// AVX2: IT (<= 3) rows of d x JT (<= 4) rows of col, 8 pixels per step (12 accumulators
// + 4 col vectors + 1 d vector of the 16 ymm registers).
template <int IT, int JT>
void dot_tile_avx2_t(float* dw, int64_t ldw, int64_t ldj, const float* const* d, const float* const* col,
                     int64_t len, int64_t nrows, int64_t d_rs, int64_t c_rs) {
  __m256 acc[IT][JT];
  for (int i = 0; i < IT; ++i)
    for (int j = 0; j < JT; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t row = 0; row < nrows; ++row) {
    const float* dp[IT];
    const float* cp[JT];
    for (int i = 0; i < IT; ++i) dp[i] = d[i] + row * d_rs;
    for (int j = 0; j < JT; ++j) cp[j] = col[j] + row * c_rs;
    for (int64_t t = 0; t < len; t += 8) {
      __m256 c[JT];
      for (int j = 0; j < JT; ++j) c[j] = _mm256_loadu_ps(cp[j] + t);
      for (int i = 0; i < IT; ++i) {
        const __m256 di = _mm256_loadu_ps(dp[i] + t);
        for (int j = 0; j < JT; ++j) acc[i][j] = _mm256_fmadd_ps(di, c[j], acc[i][j]);
      }
    }
  }
  for (int i = 0; i < IT; ++i) {
    alignas(32) float v[8];
    for (int j = 0; j < JT; ++j) {
      _mm256_store_ps(v, acc[i][j]);
      dw[i * ldw + j * ldj] += ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    }
  }
}

using DotTile2Fn = void (*)(float*, int64_t, int64_t, const float* const*, const float* const*, int64_t,
                            int64_t, int64_t, int64_t);

template <int IT>
struct Dot2Row {
  static constexpr DotTile2Fn fns[4] = {&dot_tile_avx2_t<IT, 1>, &dot_tile_avx2_t<IT, 2>,
                                        &dot_tile_avx2_t<IT, 3>, &dot_tile_avx2_t<IT, 4>};
};

// Tiles of up to 6 rows run as sub-tiles of up to 3 (the register budget of AVX2).
void dot_tile_avx2(float* dw, int64_t ldw, int64_t ldj, const float* const* d, const float* const* col,
                   int64_t len, int64_t nrows, int64_t d_rs, int64_t c_rs, int it, int jt) {
  static constexpr const DotTile2Fn* table[3] = {Dot2Row<1>::fns, Dot2Row<2>::fns, Dot2Row<3>::fns};
  for (int i0 = 0; i0 < it; i0 += 3) {
    const int n = it - i0 < 3 ? it - i0 : 3;
    table[n - 1][jt - 1](dw + i0 * ldw, ldw, ldj, d + i0, col, len, nrows, d_rs, c_rs);
  }
}
#endif

#if defined(__AVX512F__)
// Sums of four vectors: [sum(a), sum(b), sum(c), sum(d)].
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m256 a8 = _mm256_add_ps(_mm512_extractf32x8_ps(a, 0), _mm512_extractf32x8_ps(a, 1));
  const __m256 b8 = _mm256_add_ps(_mm512_extractf32x8_ps(b, 0), _mm512_extractf32x8_ps(b, 1));
  const __m256 c8 = _mm256_add_ps(_mm512_extractf32x8_ps(c, 0), _mm512_extractf32x8_ps(c, 1));
  const __m256 d8 = _mm256_add_ps(_mm512_extractf32x8_ps(d, 0), _mm512_extractf32x8_ps(d, 1));
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// IT rows of d x JT rows of col, 16 pixels per step: IT + JT loads feed IT*JT FMAs.
template <int IT, int JT>
void dot_tile_avx512_t(float* dw, int64_t ldw, int64_t ldj, const float* const* d, const float* const* col,
                       int64_t len, int64_t nrows, int64_t d_rs, int64_t c_rs) {
  __m512 acc[IT][4];
#pragma GCC unroll 6
  for (int i = 0; i < IT; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  const float* dp[IT];
  const float* cp[JT];
  for (int i = 0; i < IT; ++i) dp[i] = d[i];
  for (int j = 0; j < JT; ++j) cp[j] = col[j];
  for (int64_t row = 0; row < nrows; ++row) {
    for (int64_t t = 0; t < len; t += 16) {
      __m512 c[JT];
#pragma GCC unroll 4
      for (int j = 0; j < JT; ++j) c[j] = _mm512_loadu_ps(cp[j] + t);
#pragma GCC unroll 6
      for (int i = 0; i < IT; ++i) {
        const __m512 di = _mm512_loadu_ps(dp[i] + t);
#pragma GCC unroll 4
        for (int j = 0; j < JT; ++j) acc[i][j] = _mm512_fmadd_ps(di, c[j], acc[i][j]);
      }
    }
    for (int i = 0; i < IT; ++i) dp[i] += d_rs;
    for (int j = 0; j < JT; ++j) cp[j] += c_rs;
  }
#pragma GCC unroll 6
  for (int i = 0; i < IT; ++i) {
    const __m128 s = hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
    float* row = dw + i * ldw;
    if (JT == 4 && ldj == 1) {
      _mm_storeu_ps(row, _mm_add_ps(_mm_loadu_ps(row), s));
    } else {
      alignas(16) float v[4];
      _mm_store_ps(v, s);
      for (int j = 0; j < JT; ++j) row[j * ldj] += v[j];
    }
  }
}

using DotTileFn = void (*)(float*, int64_t, int64_t, const float* const*, const float* const*, int64_t,
                           int64_t, int64_t, int64_t);

template <int IT>
struct DotRow {
  static constexpr DotTileFn fns[4] = {&dot_tile_avx512_t<IT, 1>, &dot_tile_avx512_t<IT, 2>,
                                       &dot_tile_avx512_t<IT, 3>, &dot_tile_avx512_t<IT, 4>};
};

void dot_tile_avx512(float* dw, int64_t ldw, int64_t ldj, const float* const* d, const float* const* col,
                     int64_t len, int64_t nrows, int64_t d_rs, int64_t c_rs, int it, int jt) {
  static constexpr const DotTileFn* table[6] = {DotRow<1>::fns, DotRow<2>::fns, DotRow<3>::fns,
                                                DotRow<4>::fns, DotRow<5>::fns, DotRow<6>::fns};
  table[it - 1][jt - 1](dw, ldw, ldj, d, col, len, nrows, d_rs, c_rs);
}

// ---------------------------------------------------------------------------------
// brgemm: the GEMM micro-kernel's 14 x 32 register tile (two zmm per row, one
// broadcast of A per row and step), run over several (A, B) segments before C is
// stored. One call covers every kernel row of an output pixel, where the GEMM
// micro-kernel needs one call (and one load and store of C) per kernel row.
// ---------------------------------------------------------------------------------

constexpr int kBrgemmMr = 14;

template <int M>
void brgemm_avx512_t(int nseg, const int64_t* len, const float* const* as, const float* const* bs, float* c,
                     int64_t ldc) {
  __m512 acc[M][2];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    acc[i][0] = _mm512_setzero_ps();
    acc[i][1] = _mm512_setzero_ps();
  }
  for (int q = 0; q < nseg; ++q) {
    const float* __restrict a = as[q];
    const float* __restrict b = bs[q];
    const int64_t kc = len[q];
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; ++p) {
      const __m512 b0 = _mm512_load_ps(b);
      const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]);
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      }
      a += M;
      b += 32;
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
  }
}

using BrgemmFn = void (*)(int, const int64_t*, const float* const*, const float* const*, float*, int64_t);

template <int... Is>
constexpr std::array<BrgemmFn, sizeof...(Is)> make_brgemm_table(std::integer_sequence<int, Is...>) {
  return {&brgemm_avx512_t<Is + 1>...};
}

void brgemm_avx512(int m, int nseg, const int64_t* len, const float* const* a, const float* const* b, float* c,
                   int64_t ldc) {
  static constexpr auto table = make_brgemm_table(std::make_integer_sequence<int, kBrgemmMr>{});
  table[m - 1](nseg, len, a, b, c, ldc);
}
#endif

}  // namespace
}  // namespace conv_detail
}  // namespace fastlayers
