// The loss family's loops (loss_impl.h), AVX-512 build: this file alone is compiled with
// -mavx512f/dq/bw/vl -mfma (by its name), so the loops run on 16-float vectors.
#include "cpu/loss_impl.h"

namespace fastlayers {
namespace loss_detail {

const LossKernels& loss_kernels_avx512() {
  static const LossKernels table = FL_LOSS_TABLE("avx512");
  return table;
}

}  // namespace loss_detail
}  // namespace fastlayers
