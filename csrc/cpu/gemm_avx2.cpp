// AVX2+FMA GEMM micro-kernel: a 6 x 16 register tile (12 ymm accumulators).
//
// Per step p of the k loop: two aligned 8-float loads of the B micro-panel row and, for
// each of the 6 rows, one broadcast of A(i, p) feeding two FMAs: 12 accumulators +
// 2 B vectors + 1-2 broadcasts fit the 16 ymm registers. Edge rows are separate
// instantiations; edge columns go through a small buffer (AVX2 has no cheap masks
// for stores that must not touch memory past the end).
//
// This file alone is compiled with -mavx2 -mfma; everything in it has internal linkage.
#include <immintrin.h>

#include "cpu/gemm_kernels.h"
#include "cpu/gemm_pack.h"

namespace fastlayers {
namespace gemm_detail {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

template <int M>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                  int64_t rs_c, int64_t cs_c, int m, int n, float alpha, float beta) {
  __m256 acc0[M], acc1[M];
#pragma GCC unroll 6
  for (int i = 0; i < M; ++i) {
    acc0[i] = _mm256_setzero_ps();
    acc1[i] = _mm256_setzero_ps();
  }
  if (cs_c == 1) {
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += NR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  if (cs_c == 1 && n == NR) {
    if (beta == 0.0f) {
#pragma GCC unroll 6
      for (int i = 0; i < M; ++i) {
        float* row = c + i * rs_c;
        _mm256_storeu_ps(row, _mm256_mul_ps(va, acc0[i]));
        _mm256_storeu_ps(row + 8, _mm256_mul_ps(va, acc1[i]));
      }
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
      for (int i = 0; i < M; ++i) {
        float* row = c + i * rs_c;
        _mm256_storeu_ps(row, _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), _mm256_mul_ps(va, acc0[i])));
        _mm256_storeu_ps(row + 8,
                         _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), _mm256_mul_ps(va, acc1[i])));
      }
    }
  } else {
    // Fully unrolled like every loop over the accumulators: a loop GCC leaves rolled
    // indexes the arrays at run time, which forces them into memory and turns every FMA
    // of the k loop into an FMA plus a store.
    alignas(32) float tile[M * NR];
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      _mm256_store_ps(tile + i * NR, acc0[i]);
      _mm256_store_ps(tile + i * NR + 8, acc1[i]);
    }
    store_tile_generic(tile, NR, c, rs_c, cs_c, m, n, alpha, beta);
  }
}

void micro_dispatch(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                    int64_t cs_c, int m, int n, float alpha, float beta) {
  static constexpr MicroKernel kFns[MR] = {&micro_kernel<1>, &micro_kernel<2>, &micro_kernel<3>,
                                           &micro_kernel<4>, &micro_kernel<5>, &micro_kernel<6>};
  kFns[m - 1](kc, a, b, c, rs_c, cs_c, m, n, alpha, beta);
}

}  // namespace

const KernelInfo& kernel_avx2() {
  // KC: a 16-wide B micro-panel of 256 rows is 16 KiB (half of L1); the MC x KC A block
  // (144 x 256 floats = 144 KiB) sits in L2.
  static const KernelInfo info{"avx2", MR, NR, 256, 144, 4096, &micro_dispatch, &pack_a_impl<MR>, &pack_b_impl<NR>, nullptr, 0};
  return info;
}

}  // namespace gemm_detail
}  // namespace fastlayers
