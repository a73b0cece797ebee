// The dropout loops (dropout_impl.h) built for AVX2 (64-bit multiplies emulated with vpmuludq; -mavx2 -mfma).
#include "cpu/dropout_impl.h"

namespace fastlayers::dropout_detail {

const Kernels& dropout_kernels_avx2() { return kKernels; }

}  // namespace fastlayers::dropout_detail
