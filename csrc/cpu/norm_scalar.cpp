// Batch-norm and layer-norm loops for baseline x86-64 / portable (SSE2 on x86-64: 4-wide loops).
// The loops live in norm_impl.h; this file only instantiates them with its flags.
#include "cpu/norm_impl.h"

namespace fastlayers {

const NormKernels& norm_kernels_scalar() {
  static const NormKernels kernels = make_norm_kernels();
  return kernels;
}

}  // namespace fastlayers
