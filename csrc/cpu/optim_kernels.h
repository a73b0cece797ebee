// Internal interface between the optimiser entry points (optim.cpp: checks, then a call)
// and the per-ISA builds of their loops (optim_impl.h compiled by optim_avx512.cpp,
// optim_avx2.cpp, optim_scalar.cpp). optim.cpp picks a table with FL_SIMD_SELECT.
#pragma once

#include <cstdint>

#include "cpu/optim.h"

namespace fastlayers {

// One instruction set's update loops; arguments as the public functions in optim.h,
// already validated.
struct OptimKernels {
  void (*sgd)(float* param, float* velocity, const float* grad, int64_t n, const SgdParams& p);
  void (*rmsprop)(float* param, float* square_avg, float* momentum_buf, float* grad_avg,
                  const float* grad, int64_t n, const RmspropParams& p);
  void (*adagrad)(float* param, float* sum_sq, const float* grad, int64_t n, const AdagradParams& p);
  void (*adam)(float* param, float* m, float* v, float* max_v, const float* grad, int64_t n,
               const AdamParams& p);
};

const OptimKernels& optim_kernels_scalar();
#if FL_HAVE_X86_SIMD
const OptimKernels& optim_kernels_avx2();
const OptimKernels& optim_kernels_avx512();
#endif

}  // namespace fastlayers
