// The dropout loops (dropout_impl.h) built for AVX-512 (vpmullq: one instruction per 64-bit multiply; -mavx512f/dq/bw/vl).
#include "cpu/dropout_impl.h"

namespace fastlayers::dropout_detail {

const Kernels& dropout_kernels_avx512() { return kKernels; }

}  // namespace fastlayers::dropout_detail
