// AVX-512 GEMM micro-kernel: a 14 x 32 register tile (28 zmm accumulators).
//
// Per step p of the k loop: two aligned 16-float loads of the B micro-panel row, and
// for each of the 14 rows one broadcast of A(i, p) feeding two FMAs. 28 accumulators
// + 2 B vectors + 1 broadcast = 31 of the 32 zmm registers. Rows of an edge tile are
// handled by instantiating the kernel for each row count (no wasted FMAs); columns by
// AVX-512 write masks (nothing outside the m x n corner is read or written).
//
// This file alone is compiled with -mavx512f/dq/bw/vl -mfma; everything in it has
// internal linkage so no AVX-512 code can leak into paths chosen for other CPUs.
#include <immintrin.h>

#include <array>
#include <utility>

#include "cpu/gemm_kernels.h"
#include "cpu/gemm_pack.h"

namespace fastlayers {
namespace gemm_detail {
namespace {

constexpr int MR = 14;
constexpr int NV = 2;         // zmm vectors per tile row
constexpr int NR = 16 * NV;

// Write mask for the 16 columns of vector v when only n columns of the tile are valid.
inline __mmask16 column_mask(int n, int v) {
  const int left = n - 16 * v;
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
}

// U <= NV: the vectors per row actually used. An edge panel with at most 16 valid
// columns runs with U = 1 and skips the FMAs whose lanes would all be masked out.
template <int M, int U>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                  int64_t rs_c, int64_t cs_c, int m, int n, float alpha, float beta) {
  __m512 acc[M][U];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < U; ++v) acc[i][v] = _mm512_setzero_ps();
  if (cs_c == 1) {
    // Every 64-byte line of the tile's rows: C is read (beta != 0) or written only after
    // the k loop, by which time the lines are in L1.
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < U; ++v)
        _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c + 16 * v), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    __m512 bv[U];
#pragma GCC unroll 4
    for (int v = 0; v < U; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < U; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  if (cs_c == 1) {
    __mmask16 mask[U];
    for (int v = 0; v < U; ++v) mask[v] = column_mask(n, v);
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      float* row = c + i * rs_c;
#pragma GCC unroll 4
      for (int v = 0; v < U; ++v) {
        __m512 r = _mm512_mul_ps(va, acc[i][v]);
        if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], row + 16 * v), r);
        _mm512_mask_storeu_ps(row + 16 * v, mask[v], r);
      }
    }
  } else {
    alignas(64) float tile[M * NR];
    for (int i = 0; i < M; ++i)
      for (int v = 0; v < U; ++v) _mm512_store_ps(tile + i * NR + 16 * v, acc[i][v]);
    store_tile_generic(tile, NR, c, rs_c, cs_c, m, n, alpha, beta);
  }
}

// micro_kernel<1, U> ... micro_kernel<MR, U>, indexed by row count - 1.
template <int U, int... Is>
constexpr std::array<MicroKernel, sizeof...(Is)> make_row_table(std::integer_sequence<int, Is...>) {
  return {&micro_kernel<Is + 1, U>...};
}
constexpr auto kRowKernels = make_row_table<NV>(std::make_integer_sequence<int, MR>{});
constexpr auto kRowKernelsHalf = make_row_table<1>(std::make_integer_sequence<int, MR>{});
static_assert(NV == 2, "the narrow-panel table assumes two vectors per row");

void micro_dispatch(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                    int64_t cs_c, int m, int n, float alpha, float beta) {
  (n <= 16 ? kRowKernelsHalf : kRowKernels)[m - 1](kc, a, b, c, rs_c, cs_c, m, n, alpha, beta);
}

// Dot-product tile for narrow C: MI rows x NJ columns of C, each the dot product of an A
// row and a B column over k, accumulated 16 lanes at a time (MI*NJ <= 24 accumulators,
// MI + 1 more registers for the loads) and reduced horizontally at the end. The k tail
// uses masked loads, so nothing past row ends is read.
template <int MI, int NJ>
void dot_tile(int64_t k, const float* a, int64_t rs_a, const float* bt, int64_t rs_bt, float* c,
              int64_t rs_c, int64_t cs_c, float alpha, float beta) {
  __m512 acc[MI][NJ];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < NJ; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    __m512 av[MI];
    for (int i = 0; i < MI; ++i) av[i] = _mm512_loadu_ps(a + i * rs_a + p);
    for (int j = 0; j < NJ; ++j) {
      const __m512 bv = _mm512_loadu_ps(bt + j * rs_bt + p);
      for (int i = 0; i < MI; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if (p < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - p)) - 1u);
    __m512 av[MI];
    for (int i = 0; i < MI; ++i) av[i] = _mm512_maskz_loadu_ps(mask, a + i * rs_a + p);
    for (int j = 0; j < NJ; ++j) {
      const __m512 bv = _mm512_maskz_loadu_ps(mask, bt + j * rs_bt + p);
      for (int i = 0; i < MI; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  for (int i = 0; i < MI; ++i) {
    for (int j = 0; j < NJ; ++j) {
      float* cij = c + i * rs_c + j * cs_c;
      const float s = alpha * _mm512_reduce_add_ps(acc[i][j]);
      *cij = beta == 0.0f ? s : s + beta * *cij;
    }
  }
}

constexpr int kDotRows = 4;
constexpr int kDotCols = 6;

template <int MI>
void dot_row_block(int64_t n, int64_t k, const float* a, int64_t rs_a, const float* bt,
                   int64_t rs_bt, float* c, int64_t rs_c, int64_t cs_c, float alpha, float beta) {
  using Tile = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t,
                        int64_t, float, float);
  static constexpr Tile kTiles[kDotCols] = {&dot_tile<MI, 1>, &dot_tile<MI, 2>, &dot_tile<MI, 3>,
                                            &dot_tile<MI, 4>, &dot_tile<MI, 5>, &dot_tile<MI, 6>};
  for (int64_t j = 0; j < n; j += kDotCols) {
    const int nj = static_cast<int>(n - j < kDotCols ? n - j : kDotCols);
    kTiles[nj - 1](k, a, rs_a, bt + j * rs_bt, rs_bt, c + j * cs_c, rs_c, cs_c, alpha, beta);
  }
}

void dot_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, const float* bt,
              int64_t rs_bt, float* c, int64_t rs_c, int64_t cs_c, float alpha, float beta) {
  using Block = void (*)(int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                         int64_t, int64_t, float, float);
  static constexpr Block kBlocks[kDotRows] = {&dot_row_block<1>, &dot_row_block<2>,
                                              &dot_row_block<3>, &dot_row_block<4>};
  for (int64_t i = 0; i < m; i += kDotRows) {
    const int mi = static_cast<int>(m - i < kDotRows ? m - i : kDotRows);
    kBlocks[mi - 1](n, k, a + i * rs_a, rs_a, bt, rs_bt, c + i * rs_c, rs_c, cs_c, alpha, beta);
  }
}

}  // namespace

const KernelInfo& kernel_avx512() {
  // KC = 512: the 14-row A micro-panels (28 KiB) and the 32-wide B micro-panel (64 KiB)
  // stream from L2, where the MC x KC A block (112 x 512 floats = 224 KiB) stays; a
  // larger KC halves the passes over C. Measured on Zen 4 (1 MiB L2, per-thread CPU
  // time, interleaved with OpenBLAS): KC/MC = 512/112 beat 256/224, 384/168 and 192/280
  // by 2-5% at 1024^3 and 2048^3 and tied on the MLP shapes. NC: the KC x NC B panel in L3.
  static const KernelInfo info{"avx512", MR, NR, 512, 112, 4096, &micro_dispatch,
                               &pack_a_impl<MR>, &pack_b_impl<NR>, &dot_gemm, 12};
  return info;
}

}  // namespace gemm_detail
}  // namespace fastlayers
