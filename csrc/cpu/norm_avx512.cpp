// Batch-norm and layer-norm loops for AVX-512 (compiled with -mavx512f/dq/bw/vl -mfma: 16-wide loops).
// The loops live in norm_impl.h; this file only instantiates them with its flags.
#include "cpu/norm_impl.h"

namespace fastlayers {

const NormKernels& norm_kernels_avx512() {
  static const NormKernels kernels = make_norm_kernels();
  return kernels;
}

}  // namespace fastlayers
