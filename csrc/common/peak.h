// Machine probes: the FP32 FMA peak (GFLOP/s) and the STREAM-triad memory bandwidth
// (GB/s) of this machine for a given thread count. Benchmarks report "% of peak"
// against these numbers (fastlayers.machine in Python caches and overrides them).
#pragma once

#include <cstdint>

namespace fastlayers {

// FP32 fused-multiply-add throughput in GFLOP/s (1 FMA = 2 flops) with `threads`
// OpenMP threads, each running many independent FMA chains on the current SIMD path
// (simd_path(): AVX-512, AVX2+FMA, or scalar mul+add). Spends about `seconds` in all
// and returns the best repeat. threads >= 1; 0 < seconds <= 60.
double measure_peak_gflops(int threads, double seconds);

// STREAM triad a[i] = b[i] + s * c[i] over three float32 arrays of `megabytes` MB
// (1 MB = 1e6 bytes) each, with `threads` OpenMP threads; best of a few repeats, in
// GB/s (1e9 bytes/s) counting 12 bytes per element. threads >= 1; 0 < megabytes <= 65536.
double measure_bandwidth_gbs(int threads, int64_t megabytes);

}  // namespace fastlayers
