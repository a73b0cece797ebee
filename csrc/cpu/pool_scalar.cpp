// Baseline build of the pooling loops (SSE2 on x86-64; the compiler still vectorises).
// The loops are in pool_impl.h; this unit only compiles them and exports their table.
#include "cpu/pool_impl.h"

namespace fastlayers {
namespace pool_detail {

const PoolKernels& pool_kernels_scalar() { return kKernels; }

}  // namespace pool_detail
}  // namespace fastlayers
