// The activation loops (activation_impl.h) built for AVX2 + FMA (8 lanes; compiled with -mavx2 -mfma).
#include "cpu/activation_impl.h"

namespace fastlayers::activation_detail {

const Kernels& activation_kernels_avx2() { return kKernels; }

}  // namespace fastlayers::activation_detail
