// AVX2 build of the pooling loops (this file alone gets -mavx2 -mfma): 8-lane vectors.
// The loops are in pool_impl.h; the vector interface is described in pool_scalar.cpp.
#include <immintrin.h>

#include "cpu/pool_impl.h"

namespace fastlayers {
namespace pool_detail {
namespace {

struct VecAvx2 {
  static constexpr int N = 8;
  using F = __m256;
  using I = __m256i;
  using M = __m256;  // all-ones / all-zeros lanes
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static I loadi(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static void storei(int32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void load2(const float* p, F& even, F& odd) {
    const F a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    // shuffle_ps works within 128-bit halves: [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit
    // permute (0, 2, 1, 3) puts the pairs in order: [a0 a2 a4 a6 b0 b2 b4 b6].
    const F e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const F o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static void load2_n(const float* p, int64_t m, F& even, F& odd) {  // m < 16 floats
    const F a = _mm256_maskload_ps(p, first(m)), b = _mm256_maskload_ps(p + 8, first(m - 8));
    const F e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const F o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static void load2i(const int32_t* p, I& even, I& odd) {
    F e, o;
    load2(reinterpret_cast<const float*>(p), e, o);
    even = _mm256_castps_si256(e);
    odd = _mm256_castps_si256(o);
  }
  static I first(int64_t n) {  // lanes < n all ones (n may be <= 0 or >= 8)
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)), iota());
  }
  static F load_n(const float* p, int64_t n) { return _mm256_maskload_ps(p, first(n)); }
  static I loadi_n(const int32_t* p, int64_t n) { return _mm256_maskload_epi32(p, first(n)); }
  static void store_n(float* p, F v, int64_t n) { _mm256_maskstore_ps(p, first(n), v); }
  static void storei_n(int32_t* p, I v, int64_t n) { _mm256_maskstore_epi32(p, first(n), v); }
  // Interleave even/odd: unpack works within 128-bit halves, permute2f128 joins them.
  static void interleave(F even, F odd, F& lo, F& hi) {
    const F a = _mm256_unpacklo_ps(even, odd);  // e0 o0 e1 o1 | e4 o4 e5 o5
    const F b = _mm256_unpackhi_ps(even, odd);  // e2 o2 e3 o3 | e6 o6 e7 o7
    lo = _mm256_permute2f128_ps(a, b, 0x20);
    hi = _mm256_permute2f128_ps(a, b, 0x31);
  }
  static void store2(float* p, F even, F odd) {
    F lo, hi;
    interleave(even, odd, lo, hi);
    _mm256_storeu_ps(p, lo);
    _mm256_storeu_ps(p + 8, hi);
  }
  static void store2_n(float* p, F even, F odd, int64_t n) {  // 2n floats
    F lo, hi;
    interleave(even, odd, lo, hi);
    _mm256_maskstore_ps(p, first(2 * n), lo);
    _mm256_maskstore_ps(p + 8, first(2 * n - 8), hi);
  }
  static F zero() { return _mm256_setzero_ps(); }
  static I iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static I set1i(int32_t k) { return _mm256_set1_epi32(k); }
  static I addi(I a, I b) { return _mm256_add_epi32(a, b); }
  static I subi(I a, I b) { return _mm256_sub_epi32(a, b); }
  static M eqi(I a, I b) { return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)); }
  static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M beats(F c, F v) {  // c > v, or c NaN and v not
    return _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_ORD_Q), _mm256_cmp_ps(c, v, _CMP_NLE_UQ));
  }
  static M isnan(F a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static M lti(I a, I b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(b, a)); }
  static M m_or(M a, M b) { return _mm256_or_ps(a, b); }
  static M m_and(M a, M b) { return _mm256_and_ps(a, b); }
  static M m_andnot(M a, M b) { return _mm256_andnot_ps(b, a); }
  static F sel(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static I seli(M m, I a, I b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
  }
};

}  // namespace

const PoolKernels& pool_kernels_avx2() { return kernels_for<VecAvx2>(); }

}  // namespace pool_detail
}  // namespace fastlayers
