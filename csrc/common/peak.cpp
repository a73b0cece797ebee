// Machine probes: FP32 FMA peak and STREAM-triad bandwidth (see common/peak.h).
//
// The peak probe is a loop of independent FMA chains per thread: an FMA has a latency
// of ~4 cycles and 1-2 issue per cycle, so a core only reaches its peak with at least
// latency x throughput (4 x 2 = 8) chains in flight. We use 16 zmm chains on AVX-512
// (32 registers) and 12 ymm chains on AVX2 (16 registers: 12 accumulators plus the two
// constants fit without spills). The vector width is chosen at run time from
// simd_path(); the SIMD functions carry their ISA in a target attribute, so this file
// builds with the baseline flags like the rest of common/.
#include "common/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>

#include "common/cpu_features.h"
#include "common/error.h"

#if FL_HAVE_X86_SIMD
#include <immintrin.h>
#endif

namespace fastlayers {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Each chain iterates acc <- acc * kMul + kAdd, which converges to kAdd / (1 - kMul)
// = 1: no overflow, no denormals (which would be slow), whatever the iteration count.
constexpr float kMul = 0.999999f;
constexpr float kAdd = 0.000001f;

// The result of every probe run is stored here so the compiler must compute it.
volatile float g_sink = 0.0f;

// One probe kernel: runs `iters` iterations from per-thread starting value `seed`
// (distinct starting values keep the compiler from merging identical chains) and
// returns the sum of its accumulators.
using FmaLoop = float (*)(int64_t iters, float seed);

#if FL_HAVE_X86_SIMD
// 16 accumulators x 16 lanes x 2 flops = 512 flops per iteration.
__attribute__((target("avx512f,fma"))) float fma_loop_avx512(int64_t iters, float seed) {
  const __m512 m = _mm512_set1_ps(kMul);
  const __m512 c = _mm512_set1_ps(kAdd);
  const __m512 s = _mm512_set1_ps(seed);
  const __m512 d = _mm512_set1_ps(0.001f);
  __m512 a0 = s, a1 = _mm512_add_ps(a0, d), a2 = _mm512_add_ps(a1, d), a3 = _mm512_add_ps(a2, d);
  __m512 a4 = _mm512_add_ps(a3, d), a5 = _mm512_add_ps(a4, d), a6 = _mm512_add_ps(a5, d);
  __m512 a7 = _mm512_add_ps(a6, d), a8 = _mm512_add_ps(a7, d), a9 = _mm512_add_ps(a8, d);
  __m512 a10 = _mm512_add_ps(a9, d), a11 = _mm512_add_ps(a10, d), a12 = _mm512_add_ps(a11, d);
  __m512 a13 = _mm512_add_ps(a12, d), a14 = _mm512_add_ps(a13, d), a15 = _mm512_add_ps(a14, d);
  for (int64_t i = 0; i < iters; ++i) {
    a0 = _mm512_fmadd_ps(a0, m, c);
    a1 = _mm512_fmadd_ps(a1, m, c);
    a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c);
    a4 = _mm512_fmadd_ps(a4, m, c);
    a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c);
    a7 = _mm512_fmadd_ps(a7, m, c);
    a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c);
    a10 = _mm512_fmadd_ps(a10, m, c);
    a11 = _mm512_fmadd_ps(a11, m, c);
    a12 = _mm512_fmadd_ps(a12, m, c);
    a13 = _mm512_fmadd_ps(a13, m, c);
    a14 = _mm512_fmadd_ps(a14, m, c);
    a15 = _mm512_fmadd_ps(a15, m, c);
  }
  const __m512 sum = _mm512_add_ps(
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                    _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                    _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  // Through memory rather than _mm512_reduce_add_ps, which trips GCC 12's
  // -Wuninitialized on an intrinsic's internal placeholder.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  float total = 0.0f;
  for (float v : lanes) total += v;
  return total;
}

// 12 accumulators x 8 lanes x 2 flops = 192 flops per iteration.
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters, float seed) {
  const __m256 m = _mm256_set1_ps(kMul);
  const __m256 c = _mm256_set1_ps(kAdd);
  const __m256 s = _mm256_set1_ps(seed);
  const __m256 d = _mm256_set1_ps(0.001f);
  __m256 a0 = s, a1 = _mm256_add_ps(a0, d), a2 = _mm256_add_ps(a1, d), a3 = _mm256_add_ps(a2, d);
  __m256 a4 = _mm256_add_ps(a3, d), a5 = _mm256_add_ps(a4, d), a6 = _mm256_add_ps(a5, d);
  __m256 a7 = _mm256_add_ps(a6, d), a8 = _mm256_add_ps(a7, d), a9 = _mm256_add_ps(a8, d);
  __m256 a10 = _mm256_add_ps(a9, d), a11 = _mm256_add_ps(a10, d);
  for (int64_t i = 0; i < iters; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c);
    a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c);
    a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c);
    a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    a10 = _mm256_fmadd_ps(a10, m, c);
    a11 = _mm256_fmadd_ps(a11, m, c);
  }
  const __m256 sum = _mm256_add_ps(
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                    _mm256_add_ps(a4, a5)),
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a6, a7), _mm256_add_ps(a8, a9)),
                    _mm256_add_ps(a10, a11)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (float v : lanes) total += v;
  return total;
}
#endif

// Portable path: 16 scalar chains of multiply + add (2 flops each). Without FMA
// hardware in the baseline ISA these stay separate instructions; the compiler may
// put them in SSE registers, which is what the scalar GEMM kernel gets too.
constexpr int kScalarChains = 16;
float fma_loop_scalar(int64_t iters, float seed) {
  float acc[kScalarChains];
  for (int j = 0; j < kScalarChains; ++j) acc[j] = seed + 0.001f * static_cast<float>(j);
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < kScalarChains; ++j) acc[j] = acc[j] * kMul + kAdd;
  }
  float total = 0.0f;
  for (int j = 0; j < kScalarChains; ++j) total += acc[j];
  return total;
}

struct Probe {
  FmaLoop loop;
  double flops_per_iter;  // per thread
};

Probe active_probe() {
#if FL_HAVE_X86_SIMD
  switch (simd_path()) {
    case SimdPath::kAvx512:
      return {&fma_loop_avx512, 16.0 * 16.0 * 2.0};
    case SimdPath::kAvx2:
      return {&fma_loop_avx2, 12.0 * 8.0 * 2.0};
    case SimdPath::kScalar:
      break;
  }
#endif
  return {&fma_loop_scalar, kScalarChains * 2.0};
}

// One timed run: every thread runs `iters` iterations; returns GFLOP/s over the wall
// time from a barrier before the loops to a barrier after them.
double run_peak_once(const Probe& probe, int threads, int64_t iters) {
  Clock::time_point t0, t1;
  int team = 1;
#pragma omp parallel num_threads(threads)
  {
#pragma omp barrier
#pragma omp single
    {
      team = omp_get_num_threads();  // the runtime may give fewer than asked
      t0 = Clock::now();
    }  // implied barrier: every thread starts after t0
    const float r = probe.loop(iters, 0.5f + 0.01f * static_cast<float>(omp_get_thread_num()));
    g_sink = r;
#pragma omp barrier
#pragma omp single
    t1 = Clock::now();
  }
  const double elapsed = std::chrono::duration<double>(t1 - t0).count();
  return probe.flops_per_iter * static_cast<double>(iters) * team / elapsed * 1e-9;
}

void check_threads(int threads) {
  FL_CHECK(threads >= 1 && threads <= 4096, "threads: expected an integer in [1, 4096], got ", threads);
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using FloatBuffer = std::unique_ptr<float[], AlignedFree>;

FloatBuffer aligned_floats(int64_t count) {
  const size_t bytes = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw std::bad_alloc();
  return FloatBuffer(p);
}

}  // namespace

double measure_peak_gflops(int threads, double seconds) {
  check_threads(threads);
  FL_CHECK(seconds > 0.0 && seconds <= 60.0, "seconds: expected a duration in (0, 60], got ",
           seconds);
  const Probe probe = active_probe();
  const auto start = Clock::now();

  // Many short repeats, best wins: on a shared machine a 10 ms window is more likely
  // to run undisturbed than one long run.
  const double target = std::min(seconds / 5.0, 0.01);
  // Calibrate on the calling thread alone (a thread's loop takes the same time at any
  // thread count, and a team's fork/join latency must not shrink the count): double
  // the iterations until a loop takes >= target / 2, then scale to the target from the
  // fastest of three loops. The floor keeps a disturbed calibration from leaving
  // runs so short that the fork/join would dominate them.
  int64_t iters = 256;
  double loop_s = 0.0;
  for (;;) {
    auto t = Clock::now();
    g_sink = probe.loop(iters, 0.5f);
    loop_s = seconds_since(t);
    if (loop_s >= target / 2.0 || iters >= (int64_t{1} << 40)) break;
    iters *= 2;
  }
  for (int rep = 0; rep < 2; ++rep) {
    auto t = Clock::now();
    g_sink = probe.loop(iters, 0.5f);
    loop_s = std::min(loop_s, seconds_since(t));
  }
  iters = std::max<int64_t>(4096, static_cast<int64_t>(static_cast<double>(iters) * target / loop_s));
  double best = 0.0;
  for (int rep = 0; rep < 3 || (seconds_since(start) < seconds && rep < 10000); ++rep) {
    best = std::max(best, run_peak_once(probe, threads, iters));
  }
  return best;
}

double measure_bandwidth_gbs(int threads, int64_t megabytes) {
  check_threads(threads);
  FL_CHECK(megabytes >= 1 && megabytes <= 65536, "megabytes: expected an integer in [1, 65536], got ",
           megabytes);
  const int64_t n = megabytes * 1000000 / static_cast<int64_t>(sizeof(float));
  FloatBuffer a = aligned_floats(n), b = aligned_floats(n), c = aligned_floats(n);  // (n,) each
  float* pa = a.get();
  float* pb = b.get();
  float* pc = c.get();

  // First touch with the same static schedule as the triad, so each page is mapped
  // near the thread that streams it (matters on NUMA machines), and no page fault
  // lands inside a timed run.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    pa[i] = 0.0f;
    pb[i] = 1.0f;
    pc[i] = 2.0f;
  }

  const float s = 3.0f;
  // The STREAM convention: 12 bytes per element (read b, read c, write a). A cached
  // store also reads a's line first (write-allocate), so the memory bus really moves
  // 16 bytes per element; like STREAM we do not count that.
  const double bytes = 12.0 * static_cast<double>(n);
  double best = 0.0;
  constexpr int kRuns = 6;  // the first is a warm-up and is not counted
  for (int rep = 0; rep < kRuns; ++rep) {
    const auto t0 = Clock::now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    const double elapsed = seconds_since(t0);
    if (rep > 0) best = std::max(best, bytes / elapsed * 1e-9);
  }
  // Read the result back: the stores must happen, and a wrong triad is a bug.
  const float probe_value = pa[0] + pa[n / 2] + pa[n - 1];
  g_sink = probe_value;
  if (probe_value != 21.0f) {
    throw std::runtime_error(str_cat("bandwidth probe: triad produced ", probe_value, ", expected 21"));
  }
  return best;
}

}  // namespace fastlayers
