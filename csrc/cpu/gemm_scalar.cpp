// Portable GEMM micro-kernel for CPUs without AVX2+FMA: a 4 x 16 tile of plain C++
// that the compiler vectorises for the baseline instruction set (SSE2 on x86-64).
#include "cpu/gemm_kernels.h"
#include "cpu/gemm_pack.h"

namespace fastlayers {
namespace gemm_detail {
namespace {

constexpr int MR = 4;
constexpr int NR = 16;

void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                  int64_t rs_c, int64_t cs_c, int m, int n, float alpha, float beta) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  store_tile_generic(&acc[0][0], NR, c, rs_c, cs_c, m, n, alpha, beta);
}

}  // namespace

const KernelInfo& kernel_scalar() {
  static const KernelInfo info{"scalar", MR, NR, 256, 128, 4096, &micro_kernel, &pack_a_impl<MR>, &pack_b_impl<NR>, nullptr, 0};
  return info;
}

}  // namespace gemm_detail
}  // namespace fastlayers
