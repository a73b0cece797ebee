// CPU feature detection and the run-time choice of SIMD path.
#pragma once

#include <string>

namespace fastlayers {

enum class SimdPath { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  std::string vendor;      // "GenuineIntel", "AuthenticAMD", ...
  std::string brand;       // "AMD EPYC 9R14 96-Core Processor", ...
  bool sse2 = false;
  bool avx = false;        // CPU has it and the OS saves the YMM state
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;    // CPU has it and the OS saves the ZMM state
  bool avx512dq = false;
  bool avx512bw = false;
  bool avx512vl = false;
};

// What the processor and the operating system support (queried once, cached).
const CpuFeatures& cpu_features();

// The path kernels use, and a sentence saying why it was chosen. The environment
// variable FASTLAYERS_SIMD=avx512|avx2|scalar forces a path (for tests and benchmarks);
// forcing a path the CPU cannot run is refused at import with an error.
SimdPath simd_path();
const std::string& simd_reason();
const char* simd_path_name(SimdPath p);

// Re-selects the path (used by fastlayers.set_simd_path for tests and benchmarks).
// Throws ArgumentError when the CPU cannot run the requested path.
void set_simd_path(SimdPath p);

// Whether this build contains code for the path and the CPU can run it.
bool simd_path_supported(SimdPath p);

}  // namespace fastlayers
