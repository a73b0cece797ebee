// The dropout loops (dropout_impl.h) built for the baseline instruction set (SSE2 on x86-64), for CPUs without AVX2.
#include "cpu/dropout_impl.h"

namespace fastlayers::dropout_detail {

const Kernels& dropout_kernels_scalar() { return kKernels; }

}  // namespace fastlayers::dropout_detail
