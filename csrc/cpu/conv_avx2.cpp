// Convolution inner loops for AVX2 + FMA (this file alone is built with -mavx2 -mfma):
// the portable loops of conv_impl.h, vectorised by the compiler. Panels are 16 columns
// wide, matching the AVX2 GEMM micro-kernel (6 x 16).
#include "cpu/conv_impl.h"

namespace fastlayers {
namespace conv_detail {

const ConvKernels& conv_kernels_avx2() {
  static const ConvKernels k{"avx2", 16, 16, &pack_rows_generic, &copy_rows_generic<16>,
                                 &to_lanes_generic<16>, &from_lanes_generic<16>, &dot_tile_avx2, nullptr, 0,
                                 &deinterleave_generic};
  return k;
}

}  // namespace conv_detail
}  // namespace fastlayers
