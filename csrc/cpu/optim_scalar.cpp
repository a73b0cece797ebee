// Optimiser update loops for baseline x86-64 / portable (SSE2 on x86-64: 4-wide loops).
// The loops live in optim_impl.h; this file only instantiates them with its flags.
#include "cpu/optim_impl.h"

namespace fastlayers {

const OptimKernels& optim_kernels_scalar() {
  static const OptimKernels kernels = make_optim_kernels();
  return kernels;
}

}  // namespace fastlayers
