// The loss family's loops (loss_impl.h), AVX2+FMA build: this file alone is compiled with
// -mavx2 -mfma (by its name), so the loops run on 8-float vectors.
#include "cpu/loss_impl.h"

namespace fastlayers {
namespace loss_detail {

const LossKernels& loss_kernels_avx2() {
  static const LossKernels table = FL_LOSS_TABLE("avx2");
  return table;
}

}  // namespace loss_detail
}  // namespace fastlayers
