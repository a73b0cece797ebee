// Optimiser update loops for AVX-512 (compiled with -mavx512f/dq/bw/vl -mfma: 16-wide loops).
// The loops live in optim_impl.h; this file only instantiates them with its flags.
#include "cpu/optim_impl.h"

namespace fastlayers {

const OptimKernels& optim_kernels_avx512() {
  static const OptimKernels kernels = make_optim_kernels();
  return kernels;
}

}  // namespace fastlayers
