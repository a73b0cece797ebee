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

#include "cpu/gemm_kernels.h"
#include "cpu/gemm_pack.h"

namespace fastlayers {
namespace gemm_detail {
namespace {

constexpr int MR = 14;
constexpr int NR = 32;

template <int M>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                  int64_t rs_c, int64_t cs_c, int m, int n, float alpha, float beta) {
  __m512 acc0[M], acc1[M];
#pragma GCC unroll 14
  for (int i = 0; i < M; ++i) {
    acc0[i] = _mm512_setzero_ps();
    acc1[i] = _mm512_setzero_ps();
  }
  if (cs_c == 1) {
#pragma GCC unroll 14
    for (int i = 0; i < M; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < M; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += NR;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  if (cs_c == 1) {
    const __mmask16 k0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
    const __mmask16 k1 = n >= 32 ? __mmask16(0xffff)
                         : n > 16 ? __mmask16((1u << (n - 16)) - 1u)
                                  : __mmask16(0);
    if (beta == 0.0f) {
#pragma GCC unroll 14
      for (int i = 0; i < M; ++i) {
        float* row = c + i * rs_c;
        _mm512_mask_storeu_ps(row, k0, _mm512_mul_ps(va, acc0[i]));
        _mm512_mask_storeu_ps(row + 16, k1, _mm512_mul_ps(va, acc1[i]));
      }
    } else {
      const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
      for (int i = 0; i < M; ++i) {
        float* row = c + i * rs_c;
        const __m512 c0 = _mm512_maskz_loadu_ps(k0, row);
        const __m512 c1 = _mm512_maskz_loadu_ps(k1, row + 16);
        _mm512_mask_storeu_ps(row, k0, _mm512_fmadd_ps(vb, c0, _mm512_mul_ps(va, acc0[i])));
        _mm512_mask_storeu_ps(row + 16, k1, _mm512_fmadd_ps(vb, c1, _mm512_mul_ps(va, acc1[i])));
      }
    }
  } else {
    alignas(64) float tile[M * NR];
    for (int i = 0; i < M; ++i) {
      _mm512_store_ps(tile + i * NR, acc0[i]);
      _mm512_store_ps(tile + i * NR + 16, acc1[i]);
    }
    store_tile_generic(tile, NR, c, rs_c, cs_c, m, n, alpha, beta);
  }
}

template <int... Ms>
struct Table {
  static constexpr MicroKernel fns[sizeof...(Ms)] = {&micro_kernel<Ms>...};
};

void micro_dispatch(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                    int64_t cs_c, int m, int n, float alpha, float beta) {
  using T = Table<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14>;
  T::fns[m - 1](kc, a, b, c, rs_c, cs_c, m, n, alpha, beta);
}

}  // namespace

const KernelInfo& kernel_avx512() {
  // KC: a 32-wide B micro-panel of 256 rows is 32 KiB, streamed through L1 while the
  // 14-row A micro-panels (14 KiB each) come from the MC x KC block in L2.
  static const KernelInfo info{"avx512", MR, NR, 256, 224, 4096, &micro_dispatch, &pack_a_impl<MR>, &pack_b_impl<NR>};
  return info;
}

}  // namespace gemm_detail
}  // namespace fastlayers
