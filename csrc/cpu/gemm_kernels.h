// Internal interface between the GEMM driver (gemm.cpp, portable code) and the
// register-tiled micro-kernels, one translation unit per instruction set
// (gemm_avx512.cpp, gemm_avx2.cpp, gemm_scalar.cpp), each compiled with its own flags.
//
// Packed layouts the micro-kernel reads (both 64-byte aligned, zero-padded):
//   A micro-panel: kc columns of MR values:  a[p*MR + i] = A(i, p)   (i < MR)
//   B micro-panel: kc rows of NR values:     b[p*NR + j] = B(p, j)   (j < NR)
#pragma once

#include <cstdint>

namespace fastlayers {
namespace gemm_detail {

// Computes the MR x NR product of one A and one B micro-panel and writes its top-left
// m x n corner:  C(i, j) <- alpha * acc(i, j) + beta * C(i, j); C is not read when
// beta == 0. m <= MR and n <= NR; rows beyond m and columns beyond n are never touched.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c,
                             int64_t rs_c, int64_t cs_c, int m, int n, float alpha,
                             float beta);

// Packs rows [0, mc) x columns [0, kc) of A(i, p) = a[i*rs + p*cs] into MR-row panels.
using PackA = void (*)(float* dst, const float* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc);
// Packs one NR-column micro-panel of B(p, j) = b[p*rs + j*cs]: kc rows, nr valid columns.
using PackB = void (*)(float* dst, const float* b, int64_t rs, int64_t cs, int64_t kc, int nr);

// C(i, j) <- alpha * dot(A(i, :), B(:, j)) + beta * C(i, j) for problems with few columns,
// reading A rows and B columns in place (no packing): A(i, p) = a[i*rs_a + p] and
// B(p, j) = bt[j*rs_bt + p], both contiguous along k. Rows [0, m) only; C not read when
// beta == 0. Null where an ISA has no such kernel.
using DotGemm = void (*)(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a,
                         const float* bt, int64_t rs_bt, float* c, int64_t rs_c, int64_t cs_c,
                         float alpha, float beta);

// One instruction set's micro-kernel and packing routines with the block sizes tuned for it:
//   MR x NR  register tile (accumulators held in vector registers)
//   KC       depth of a packed panel: an NR-wide B micro-panel (KC x NR) stays in L1
//   MC       rows of the packed A block (MC x KC), sized for L2
//   NC       columns of the packed B panel (KC x NC), sized for L3
struct KernelInfo {
  const char* isa;
  int mr, nr, kc, mc, nc;
  MicroKernel micro;
  PackA pack_a;
  PackB pack_b;
  DotGemm dot;    // for n <= dot_max_n
  int dot_max_n;
};

const KernelInfo& kernel_scalar();
#if FL_HAVE_X86_SIMD
const KernelInfo& kernel_avx2();
const KernelInfo& kernel_avx512();
#endif

// The kernel of the SIMD path in force (fastlayers::simd_path()). Families that drive
// the micro-kernel themselves (conv) take it from here, so their panel widths agree.
const KernelInfo& active_kernel();

// Writes an m x n tile held in a dense MR x NR buffer (row stride ld) to C with any
// strides, applying alpha and beta. Shared by the micro-kernels for edge tiles and
// for C views whose columns are not contiguous. `static`: every ISA translation unit
// gets its own copy, so the linker can never hand AVX-512 code to the scalar path.
static inline void store_tile_generic(const float* tile, int ld, float* c, int64_t rs_c,
                               int64_t cs_c, int m, int n, float alpha, float beta) {
  for (int i = 0; i < m; ++i) {
    float* row = c + i * rs_c;
    const float* t = tile + i * ld;
    if (beta == 0.0f) {
      for (int j = 0; j < n; ++j) row[j * cs_c] = alpha * t[j];
    } else {
      for (int j = 0; j < n; ++j) row[j * cs_c] = alpha * t[j] + beta * row[j * cs_c];
    }
  }
}

}  // namespace gemm_detail
}  // namespace fastlayers
