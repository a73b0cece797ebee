// Run-time choice between per-ISA builds of one op family.
//
// A family whose loops gain from wide vectors writes them once and compiles them three
// times, like GEMM's micro-kernels:
//   csrc/cpu/<family>_impl.h      the loops, plain C++ with `#pragma omp simd`, inside an
//                                 anonymous namespace (a private copy per unit); may use
//                                 common/vmath.h for exp/log/tanh
//   csrc/cpu/<family>_avx512.cpp  includes the impl, returns its table of function
//   csrc/cpu/<family>_avx2.cpp    pointers from <family>_kernels_avx512() / _avx2() /
//   csrc/cpu/<family>_scalar.cpp  _scalar()   (CMake adds the ISA flags by file name)
//   csrc/cpu/<family>.cpp         the entry points; picks the table with FL_SIMD_SELECT
// Nothing with external linkage may be defined in the impl header: the linker would be
// free to hand the AVX-512 copy to a CPU without AVX-512.
#pragma once

#include "common/cpu_features.h"

#if FL_HAVE_X86_SIMD
#define FL_SIMD_SELECT(prefix)                                              \
  (::fastlayers::simd_path() == ::fastlayers::SimdPath::kAvx512 ? prefix##_avx512() \
   : ::fastlayers::simd_path() == ::fastlayers::SimdPath::kAvx2 ? prefix##_avx2()   \
                                                                : prefix##_scalar())
#else
#define FL_SIMD_SELECT(prefix) prefix##_scalar()
#endif
