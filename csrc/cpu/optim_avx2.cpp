// Optimiser update loops for AVX2 + FMA (compiled with -mavx2 -mfma: 8-wide loops).
// The loops live in optim_impl.h; this file only instantiates them with its flags.
#include "cpu/optim_impl.h"

namespace fastlayers {

const OptimKernels& optim_kernels_avx2() {
  static const OptimKernels kernels = make_optim_kernels();
  return kernels;
}

}  // namespace fastlayers
