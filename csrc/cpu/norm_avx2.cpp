// Batch-norm and layer-norm loops for AVX2 + FMA (compiled with -mavx2 -mfma: 8-wide loops).
// The loops live in norm_impl.h; this file only instantiates them with its flags.
#include "cpu/norm_impl.h"

namespace fastlayers {

const NormKernels& norm_kernels_avx2() {
  static const NormKernels kernels = make_norm_kernels();
  return kernels;
}

}  // namespace fastlayers
