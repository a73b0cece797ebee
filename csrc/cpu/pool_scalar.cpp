// Baseline build of the pooling loops: SSE2 vectors (4 lanes) on x86-64, one lane in
// plain C++ elsewhere. The loops are in pool_impl.h; this unit defines the vector type
// they use and exports their table.
//
// The vector interface every ISA unit provides (F: N floats, I: N int32, M: N lane flags):
//   N                      lanes
//   load/store(p)          N floats at p (unaligned); loadi/storei the same for int32
//   load_n/store_n(p, n)   only the first n < N lanes (load_n zeroes the others); the
//                          int32 versions loadi_n/storei_n
//   load2(p, even, odd)    the 2N floats at p de-interleaved: even = p[0], p[2], ...
//   load2i                 the same for int32;  load2_n(p, m, ...): only m < 2N floats
//   store2(p, even, odd)   the inverse: 2N floats e0 o0 e1 o1 ... at p; store2_n: 2n floats
//   zero()                 0.0f in every lane
//   iota()                 0, 1, ..., N-1;  set1i(k): k in every lane;  addi/subi: a +- b
//   gt(a, b), eq(a, b)     ordered a > b, a == b (false when either is NaN)
//   isnan(a)               a is NaN
//   beats(c, v)            c > v, or c is NaN and v is not (the scan's "replaces")
//   lti(a, b), eqi(a, b)   int32 a < b, a == b
//   m_or, m_and            lane-wise or / and;  m_andnot(a, b): a and not b
//   sel(m, a, b)           m ? a : b per lane (floats);  seli the same for int32
#include <cstring>

#include "cpu/pool_impl.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace fastlayers {
namespace pool_detail {
namespace {

#if defined(__SSE2__)
struct VecSse2 {
  static constexpr int N = 4;
  using F = __m128;
  using I = __m128i;
  using M = __m128;  // all-ones / all-zeros lanes
  static F load(const float* p) { return _mm_loadu_ps(p); }
  static I loadi(const int32_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void store(float* p, F v) { _mm_storeu_ps(p, v); }
  static void storei(int32_t* p, I v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static void load2(const float* p, F& even, F& odd) {
    const F a = _mm_loadu_ps(p), b = _mm_loadu_ps(p + 4);
    even = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    odd = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  }
  static void load2_n(const float* p, int64_t m, F& even, F& odd) {  // m < 8 floats
    alignas(16) float t[2 * N] = {};
    std::memcpy(t, p, m * sizeof(float));
    load2(t, even, odd);
  }
  static void load2i(const int32_t* p, I& even, I& odd) {
    F e, o;
    load2(reinterpret_cast<const float*>(p), e, o);
    even = _mm_castps_si128(e);
    odd = _mm_castps_si128(o);
  }
  // Partial loads and stores go through a small buffer (SSE2 has no masked moves).
  static F load_n(const float* p, int64_t n) {
    alignas(16) float t[N] = {};
    std::memcpy(t, p, n * sizeof(float));
    return _mm_load_ps(t);
  }
  static I loadi_n(const int32_t* p, int64_t n) {
    alignas(16) int32_t t[N] = {};
    std::memcpy(t, p, n * sizeof(int32_t));
    return _mm_load_si128(reinterpret_cast<const __m128i*>(t));
  }
  static void store_n(float* p, F v, int64_t n) {
    alignas(16) float t[N];
    _mm_store_ps(t, v);
    std::memcpy(p, t, n * sizeof(float));
  }
  static void storei_n(int32_t* p, I v, int64_t n) {
    alignas(16) int32_t t[N];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), v);
    std::memcpy(p, t, n * sizeof(int32_t));
  }
  static void store2(float* p, F even, F odd) {
    _mm_storeu_ps(p, _mm_unpacklo_ps(even, odd));
    _mm_storeu_ps(p + 4, _mm_unpackhi_ps(even, odd));
  }
  static void store2_n(float* p, F even, F odd, int64_t n) {
    alignas(16) float t[2 * N];
    store2(t, even, odd);
    std::memcpy(p, t, 2 * n * sizeof(float));
  }
  static F zero() { return _mm_setzero_ps(); }
  static I iota() { return _mm_setr_epi32(0, 1, 2, 3); }
  static I set1i(int32_t k) { return _mm_set1_epi32(k); }
  static I addi(I a, I b) { return _mm_add_epi32(a, b); }
  static I subi(I a, I b) { return _mm_sub_epi32(a, b); }
  static M eqi(I a, I b) { return _mm_castsi128_ps(_mm_cmpeq_epi32(a, b)); }
  static M gt(F a, F b) { return _mm_cmpgt_ps(a, b); }
  static M eq(F a, F b) { return _mm_cmpeq_ps(a, b); }
  static M beats(F c, F v) { return _mm_and_ps(_mm_cmpord_ps(v, v), _mm_cmpnle_ps(c, v)); }
  static M isnan(F a) { return _mm_cmpunord_ps(a, a); }
  static M lti(I a, I b) { return _mm_castsi128_ps(_mm_cmplt_epi32(a, b)); }
  static M m_or(M a, M b) { return _mm_or_ps(a, b); }
  static M m_and(M a, M b) { return _mm_and_ps(a, b); }
  static M m_andnot(M a, M b) { return _mm_andnot_ps(b, a); }
  static F sel(M m, F a, F b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
  static I seli(M m, I a, I b) {
    return _mm_castps_si128(sel(m, _mm_castsi128_ps(a), _mm_castsi128_ps(b)));
  }
};
using Vec = VecSse2;
#else
// One lane of plain C++ (architectures without a SIMD build).
struct VecOne {
  static constexpr int N = 1;
  using F = float;
  using I = int32_t;
  using M = bool;
  static F load(const float* p) { return *p; }
  static I loadi(const int32_t* p) { return *p; }
  static void store(float* p, F v) { *p = v; }
  static void storei(int32_t* p, I v) { *p = v; }
  static void load2(const float* p, F& even, F& odd) { even = p[0], odd = p[1]; }
  static void load2i(const int32_t* p, I& even, I& odd) { even = p[0], odd = p[1]; }
  static void load2_n(const float* p, int64_t m, F& even, F& odd) {  // m < 2 floats
    even = m > 0 ? p[0] : 0.0f;
    odd = 0.0f;
  }
  static F load_n(const float*, int64_t) { return 0.0f; }  // n < N = 1: nothing
  static I loadi_n(const int32_t*, int64_t) { return 0; }
  static void store_n(float*, F, int64_t) {}
  static void storei_n(int32_t*, I, int64_t) {}
  static void store2(float* p, F even, F odd) { p[0] = even, p[1] = odd; }
  static void store2_n(float*, F, F, int64_t) {}
  static F zero() { return 0.0f; }
  static I iota() { return 0; }
  static I set1i(int32_t k) { return k; }
  static I addi(I a, I b) { return a + b; }
  static I subi(I a, I b) { return a - b; }
  static M eqi(I a, I b) { return a == b; }
  static M gt(F a, F b) { return a > b; }
  static M eq(F a, F b) { return a == b; }
  static M isnan(F a) { return a != a; }
  static M beats(F c, F v) { return (c > v) | ((c != c) & (v == v)); }
  static M lti(I a, I b) { return a < b; }
  static M m_or(M a, M b) { return a | b; }
  static M m_and(M a, M b) { return a & b; }
  static M m_andnot(M a, M b) { return a & !b; }
  static F sel(M m, F a, F b) { return m ? a : b; }
  static I seli(M m, I a, I b) { return m ? a : b; }
};
using Vec = VecOne;
#endif

}  // namespace

const PoolKernels& pool_kernels_scalar() { return kernels_for<Vec>(); }

}  // namespace pool_detail
}  // namespace fastlayers
