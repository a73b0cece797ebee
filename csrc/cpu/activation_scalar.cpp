// The activation loops (activation_impl.h) built for the baseline instruction set (SSE2 on x86-64, 4 lanes), for CPUs without AVX2.
#include "cpu/activation_impl.h"

namespace fastlayers::activation_detail {

const Kernels& activation_kernels_scalar() { return kKernels; }

}  // namespace fastlayers::activation_detail
