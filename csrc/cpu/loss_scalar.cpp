// The loss family's loops (loss_impl.h), portable build: baseline x86-64 (SSE2, 4-float
// vectors) or whatever the target's baseline is; the fallback of the other two paths.
#include "cpu/loss_impl.h"

namespace fastlayers {
namespace loss_detail {

const LossKernels& loss_kernels_scalar() {
  static const LossKernels table = FL_LOSS_TABLE("scalar");
  return table;
}

}  // namespace loss_detail
}  // namespace fastlayers
