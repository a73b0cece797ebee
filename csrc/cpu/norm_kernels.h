// Internal interface between the normalisation entry points (norm.cpp: checks, then a
// call) and the per-ISA builds of their loops (norm_impl.h compiled by norm_avx512.cpp,
// norm_avx2.cpp, norm_scalar.cpp). norm.cpp picks a table with FL_SIMD_SELECT.
#pragma once

#include <cstdint>

#include "cpu/norm.h"

namespace fastlayers {

// One instruction set's loops; arguments as the public functions in norm.h, checked.
struct NormKernels {
  // Both modes: training uses (and updates) batch statistics, eval reads running_mean/var.
  void (*batch_norm_forward)(float* y, double* save_mean, double* save_invstd,
                             float* running_mean, float* running_var, const float* x,
                             const float* gamma, const float* beta, const BatchNormShape& shape,
                             bool training, double momentum, double eps);
  void (*batch_norm_backward)(float* dx, float* dgamma, float* dbeta, const float* dout,
                              const float* x, const double* save_mean, const double* save_invstd,
                              const float* gamma, const BatchNormShape& shape, bool training);
  void (*layer_norm_forward)(float* y, double* save_mean, double* save_invstd, const float* x,
                             const float* weight, const float* bias, const LayerNormShape& shape,
                             double eps);
  void (*layer_norm_backward)(float* dx, float* dweight, float* dbias, const float* dout,
                              const float* x, const double* save_mean, const double* save_invstd,
                              const float* weight, const LayerNormShape& shape);
};

const NormKernels& norm_kernels_scalar();
#if FL_HAVE_X86_SIMD
const NormKernels& norm_kernels_avx2();
const NormKernels& norm_kernels_avx512();
#endif

}  // namespace fastlayers
