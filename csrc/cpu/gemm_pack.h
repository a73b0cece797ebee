// Packing routines for the GEMM micro-kernels, compiled once per instruction set: the
// ISA translation units (gemm_avx512.cpp, gemm_avx2.cpp, gemm_scalar.cpp) include this
// header, and its anonymous namespace gives each of them a private copy built with its
// own flags. Where the source has to be transposed into the packed layout, 8 x 8
// blocks are transposed in AVX registers (when the unit is built with AVX).
//
//   pack_a: dst[panel][p*MR + i] = A(panel*MR + i, p)   rows past mc are zero
//   pack_b: dst[p*NR + j] = B(p, j)                      columns past nr are zero
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace fastlayers {
namespace gemm_detail {
namespace {

#if defined(__AVX__)
// In place: rows r[0..8) of an 8 x 8 block become its columns.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// dst[p*ld + q] = src[q*stride + p] for p < kc and q < 8: eight source lines of
// contiguous values become kc rows of 8 in the packed layout.
inline void transpose_lines8(float* dst, int64_t ld, const float* src, int64_t stride, int64_t kc) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8];
    for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + q * stride + p);
    transpose8x8(r);
    for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * ld, r[q]);
  }
  for (; p < kc; ++p)
    for (int q = 0; q < 8; ++q) dst[p * ld + q] = src[q * stride + p];
}
#endif

// Packs rows [0, mc) x columns [0, kc) of A (a points at A(0, 0)) into MR-row panels.
template <int MR>
void pack_a_impl(float* dst, const float* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc) {
  for (int64_t ip = 0; ip < mc; ip += MR) {
    const int mr = static_cast<int>(mc - ip < MR ? mc - ip : MR);
    const float* src = a + ip * rs;
    if (rs == 1 && mr == MR) {
      // Column-major A (trans_a): each column's MR values are contiguous.
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[p * cs + i];
    } else if (cs == 1) {
      // Row-major A: a transpose of mr rows into columns of MR.
      int i = 0;
#if defined(__AVX__)
      for (; i + 8 <= mr; i += 8) transpose_lines8(dst + i, MR, src + i * rs, rs, kc);
      if (mr == MR && MR > 8 && i < MR) {
        // The last partial block of 8 rows overlaps the previous one: rows written
        // twice receive the same values.
        i = MR - 8;
        transpose_lines8(dst + i, MR, src + i * rs, rs, kc);
        i = MR;
      }
#endif
      for (; i < mr; ++i) {
        const float* row = src + i * rs;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = row[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < mr; ++i) dst[p * MR + i] = src[i * rs + p * cs];
    }
    if (mr < MR) {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = mr; i < MR; ++i) dst[p * MR + i] = 0.0f;
    }
    dst += static_cast<int64_t>(MR) * kc;
  }
}

// Packs one micro-panel: kc rows x nr (<= NR) columns of B (b points at B(0, 0)).
template <int NR>
void pack_b_impl(float* dst, const float* b, int64_t rs, int64_t cs, int64_t kc, int nr) {
  if (cs == 1) {
    if (nr == NR) {
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = b[p * rs + j];
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int j = 0; j < nr; ++j) dst[p * NR + j] = b[p * rs + j];
        for (int j = nr; j < NR; ++j) dst[p * NR + j] = 0.0f;
      }
    }
    return;
  }
  int j = 0;
#if defined(__AVX__)
  if (rs == 1) {
    // trans_b: column j of B is contiguous; transpose 8 columns at a time.
    for (; j + 8 <= nr; j += 8) transpose_lines8(dst + j, NR, b + j * cs, cs, kc);
  }
#endif
  for (; j < nr; ++j) {
    const float* col = b + j * cs;
    for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = col[p * rs];
  }
  if (nr < NR) {
    for (int64_t p = 0; p < kc; ++p)
      for (int jj = nr; jj < NR; ++jj) dst[p * NR + jj] = 0.0f;
  }
}

}  // namespace
}  // namespace gemm_detail
}  // namespace fastlayers
