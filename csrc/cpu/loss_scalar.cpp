// The loss family's loops (loss_impl.h), Portable build for baseline x86-64 (SSE2, 4-float vectors) and for
// CPUs without the other paths.
#include "cpu/loss_impl.h"

namespace fastlayers {
namespace loss_detail {

const LossKernels& loss_kernels_scalar() {
  static const LossKernels table = FL_LOSS_TABLE("scalar");
  return table;
}

}  // namespace loss_detail
}  // namespace fastlayers
