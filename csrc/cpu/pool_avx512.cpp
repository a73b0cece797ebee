// AVX-512 build of the pooling loops (this file alone gets -mavx512f/dq/bw/vl -mfma):
// 16-lane vectors with mask registers. The loops are in pool_impl.h; the vector interface
// is described in pool_scalar.cpp.
#include <immintrin.h>

#include <algorithm>

#include "cpu/pool_impl.h"

namespace fastlayers {
namespace pool_detail {
namespace {

struct VecAvx512 {
  static constexpr int N = 16;
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static I loadi(const int32_t* p) { return _mm512_loadu_si512(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void storei(int32_t* p, I v) { _mm512_storeu_si512(p, v); }
  static __mmask16 first(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n <= 16
  static I even_lanes() { return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30); }
  static I odd_lanes() { return _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31); }
  static void load2(const float* p, F& even, F& odd) {
    const F a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    even = _mm512_permutex2var_ps(a, even_lanes(), b);
    odd = _mm512_permutex2var_ps(a, odd_lanes(), b);
  }
  static void load2_n(const float* p, int64_t m, F& even, F& odd) {  // m < 32 floats
    const F a = _mm512_maskz_loadu_ps(first(std::min<int64_t>(m, 16)), p);
    const F b = _mm512_maskz_loadu_ps(m > 16 ? first(m - 16) : __mmask16(0), p + 16);
    even = _mm512_permutex2var_ps(a, even_lanes(), b);
    odd = _mm512_permutex2var_ps(a, odd_lanes(), b);
  }
  static void load2i(const int32_t* p, I& even, I& odd) {
    const I a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 16);
    even = _mm512_permutex2var_epi32(a, even_lanes(), b);
    odd = _mm512_permutex2var_epi32(a, odd_lanes(), b);
  }
  static F load_n(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static I loadi_n(const int32_t* p, int64_t n) { return _mm512_maskz_loadu_epi32(first(n), p); }
  static void store_n(float* p, F v, int64_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static void storei_n(int32_t* p, I v, int64_t n) { _mm512_mask_storeu_epi32(p, first(n), v); }
  // Interleave even/odd into 2N floats at p: e0 o0 e1 o1 ...
  static void interleave(F even, F odd, F& lo, F& hi) {
    const I lo_lanes = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const I hi_lanes = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    lo = _mm512_permutex2var_ps(even, lo_lanes, odd);
    hi = _mm512_permutex2var_ps(even, hi_lanes, odd);
  }
  static void store2(float* p, F even, F odd) {
    F lo, hi;
    interleave(even, odd, lo, hi);
    _mm512_storeu_ps(p, lo);
    _mm512_storeu_ps(p + 16, hi);
  }
  static void store2_n(float* p, F even, F odd, int64_t n) {  // 2n floats, n < 16
    F lo, hi;
    interleave(even, odd, lo, hi);
    _mm512_mask_storeu_ps(p, n >= 8 ? __mmask16(0xffff) : first(2 * n), lo);
    _mm512_mask_storeu_ps(p + 16, n > 8 ? first(2 * n - 16) : __mmask16(0), hi);
  }
  static F zero() { return _mm512_setzero_ps(); }
  static I iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static I set1i(int32_t k) { return _mm512_set1_epi32(k); }
  static I addi(I a, I b) { return _mm512_add_epi32(a, b); }
  static I subi(I a, I b) { return _mm512_sub_epi32(a, b); }
  static M eqi(I a, I b) { return _mm512_cmpeq_epi32_mask(a, b); }
  static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M beats(F c, F v) {  // c > v, or c NaN and v not
    return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), c, v, _CMP_NLE_UQ);
  }
  static M isnan(F a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static M lti(I a, I b) { return _mm512_cmplt_epi32_mask(a, b); }
  static M m_or(M a, M b) { return static_cast<M>(a | b); }
  static M m_and(M a, M b) { return static_cast<M>(a & b); }
  static M m_andnot(M a, M b) { return static_cast<M>(a & ~b); }
  // mask_blend(k, x, y) takes y where k is set.
  static F sel(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static I seli(M m, I a, I b) { return _mm512_mask_blend_epi32(m, b, a); }
};

}  // namespace

const PoolKernels& pool_kernels_avx512() { return kernels_for<VecAvx512>(); }

}  // namespace pool_detail
}  // namespace fastlayers
