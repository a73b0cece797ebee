// AVX2 build of the pooling loops (this file alone gets -mavx2 -mfma).
// The loops are in pool_impl.h; this unit only compiles them and exports their table.
#include "cpu/pool_impl.h"

namespace fastlayers {
namespace pool_detail {

const PoolKernels& pool_kernels_avx2() { return kKernels; }

}  // namespace pool_detail
}  // namespace fastlayers
