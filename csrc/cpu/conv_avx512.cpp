// Convolution inner loops for AVX-512 (this file alone is built with -mavx512f/dq/bw/vl
// -mfma; everything in conv_impl.h has internal linkage). Panels are 32 columns wide,
// matching the AVX-512 GEMM micro-kernel (14 x 32).
#include "cpu/conv_impl.h"

namespace fastlayers {
namespace conv_detail {

const ConvKernels& conv_kernels_avx512() {
  static const ConvKernels k{"avx512", 16, 32, &pack_rows_avx512, &copy_rows_avx512,
                                 &to_lanes_avx512, &from_lanes_avx512, &dot_tile_avx512, &brgemm_avx512, kBrgemmMr,
                                 &deinterleave_avx512};
  return k;
}

}  // namespace conv_detail
}  // namespace fastlayers
