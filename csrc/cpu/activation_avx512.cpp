// The activation loops (activation_impl.h) built for AVX-512 (16 lanes; compiled with -mavx512f/dq/bw/vl -mfma).
#include "cpu/activation_impl.h"

namespace fastlayers::activation_detail {

const Kernels& activation_kernels_avx512() { return kKernels; }

}  // namespace fastlayers::activation_detail
