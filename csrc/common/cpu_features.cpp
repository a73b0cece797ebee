// CPU feature detection (cpuid + xgetbv) and the run-time choice of SIMD path.
#include "common/cpu_features.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/error.h"

#if FL_HAVE_X86_SIMD
#include <cpuid.h>
#endif

namespace fastlayers {
namespace {

#if FL_HAVE_X86_SIMD
// XCR0 tells which register states the OS saves on a context switch; a CPU bit alone
// is not enough to use YMM/ZMM registers.
unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned int max_leaf = eax;
  char vendor[13];
  std::memcpy(vendor + 0, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  f.vendor = vendor;

  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  f.sse2 = (edx >> 26) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  const bool cpu_avx = (ecx >> 28) & 1;
  const bool cpu_fma = (ecx >> 12) & 1;
  bool ymm_ok = false, zmm_ok = false;
  if (osxsave) {
    const unsigned long long xcr0 = read_xcr0();
    ymm_ok = (xcr0 & 0x6) == 0x6;        // SSE and AVX state
    zmm_ok = (xcr0 & 0xe6) == 0xe6;      // plus opmask, ZMM_Hi256, Hi16_ZMM
  }
  f.avx = cpu_avx && ymm_ok;
  f.fma = cpu_fma && ymm_ok;
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
    f.avx2 = ((ebx >> 5) & 1) && ymm_ok;
    f.avx512f = ((ebx >> 16) & 1) && zmm_ok;
    f.avx512dq = ((ebx >> 17) & 1) && zmm_ok;
    f.avx512bw = ((ebx >> 30) & 1) && zmm_ok;
    f.avx512vl = ((ebx >> 31) & 1) && zmm_ok;
  }
  unsigned int max_ext = __get_cpuid_max(0x80000000, nullptr);
  if (max_ext >= 0x80000004) {
    char brand[49];
    for (unsigned int i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &eax, &ebx, &ecx, &edx);
      std::memcpy(brand + 16 * i + 0, &eax, 4);
      std::memcpy(brand + 16 * i + 4, &ebx, 4);
      std::memcpy(brand + 16 * i + 8, &ecx, 4);
      std::memcpy(brand + 16 * i + 12, &edx, 4);
    }
    brand[48] = '\0';
    f.brand = brand;
    const auto first = f.brand.find_first_not_of(' ');
    f.brand = first == std::string::npos ? "" : f.brand.substr(first);
    const auto last = f.brand.find_last_not_of(' ');
    if (last != std::string::npos) f.brand.resize(last + 1);
  }
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

struct Selection {
  SimdPath path = SimdPath::kScalar;
  std::string reason;
};

Selection& selection() {
  static Selection s;
  return s;
}

bool avx512_usable(const CpuFeatures& f) {
  return f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.fma;
}
bool avx2_usable(const CpuFeatures& f) { return f.avx2 && f.fma; }

void choose_default(Selection& s) {
  const CpuFeatures& f = cpu_features();
  const char* env = std::getenv("FASTLAYERS_SIMD");
  if (env != nullptr && *env != '\0') {
    SimdPath wanted;
    if (std::strcmp(env, "avx512") == 0) {
      wanted = SimdPath::kAvx512;
    } else if (std::strcmp(env, "avx2") == 0) {
      wanted = SimdPath::kAvx2;
    } else if (std::strcmp(env, "scalar") == 0) {
      wanted = SimdPath::kScalar;
    } else {
      throw ArgumentError(str_cat("FASTLAYERS_SIMD: expected one of avx512, avx2, scalar; got '",
                                  env, "'"));
    }
    if (!simd_path_supported(wanted)) {
      throw ArgumentError(str_cat("FASTLAYERS_SIMD=", env,
                                  ": this CPU (or this build) cannot run that path"));
    }
    s.path = wanted;
    s.reason = str_cat("forced by FASTLAYERS_SIMD=", env);
    return;
  }
  if (simd_path_supported(SimdPath::kAvx512)) {
    s.path = SimdPath::kAvx512;
    s.reason = "CPU and OS support AVX-512 F/DQ/BW/VL and FMA";
  } else if (simd_path_supported(SimdPath::kAvx2)) {
    s.path = SimdPath::kAvx2;
    s.reason = avx512_usable(f) ? "AVX-512 seen but not built in"
                                : "CPU and OS support AVX2 and FMA (no usable AVX-512)";
  } else {
    s.path = SimdPath::kScalar;
    s.reason = "no AVX2+FMA support: portable scalar code";
  }
}

std::once_flag g_select_once;

void ensure_selected() {
  std::call_once(g_select_once, [] { choose_default(selection()); });
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool simd_path_supported(SimdPath p) {
  const CpuFeatures& f = cpu_features();
  switch (p) {
    case SimdPath::kScalar:
      return true;
    case SimdPath::kAvx2:
      return FL_HAVE_X86_SIMD && avx2_usable(f);
    case SimdPath::kAvx512:
      return FL_HAVE_X86_SIMD && avx512_usable(f);
  }
  return false;
}

SimdPath simd_path() {
  ensure_selected();
  return selection().path;
}

const std::string& simd_reason() {
  ensure_selected();
  return selection().reason;
}

void set_simd_path(SimdPath p) {
  ensure_selected();
  FL_CHECK(simd_path_supported(p), "simd path '", simd_path_name(p),
           "' is not supported by this CPU or build");
  selection().path = p;
  selection().reason = str_cat("set by fastlayers.set_simd_path('", simd_path_name(p), "')");
}

const char* simd_path_name(SimdPath p) {
  switch (p) {
    case SimdPath::kAvx512:
      return "avx512";
    case SimdPath::kAvx2:
      return "avx2";
    case SimdPath::kScalar:
      return "scalar";
  }
  return "unknown";
}

}  // namespace fastlayers
