// Convolution inner loops for the portable path (baseline x86-64 or any other CPU).
// Panels are 16 columns wide, matching the scalar GEMM micro-kernel (4 x 16).
#include "cpu/conv_impl.h"

namespace fastlayers {
namespace conv_detail {

const ConvKernels& conv_kernels_scalar() {
  static const ConvKernels k{"scalar", 16, 16, &pack_rows_generic, &copy_rows_generic<16>,
                                 &to_lanes_generic<16>, &from_lanes_generic<16>, &dot_tile_generic, nullptr, 0,
                                 &deinterleave_generic};
  return k;
}

}  // namespace conv_detail
}  // namespace fastlayers
