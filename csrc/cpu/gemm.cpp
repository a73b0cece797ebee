// GEMM driver: the five loops of BLIS around a register-tiled micro-kernel.
//
//   for jc in N step NC:                 B panel  (KC x NC) packed once, shared   -> L3
//     for pc in K step KC:
//       pack B(pc:pc+KC, jc:jc+NC)       (threads pack disjoint NR-wide micro-panels)
//       for ic in this thread's rows step MC:  A block (MC x KC), per thread     -> L2
//         for jr in this thread's columns step NR:  B micro-panel (KC x NR)     -> L1
//           for ir in MC step MR:        micro-kernel: MR x NR tile in registers
//
// A thread owns either a range of C's rows or a range of each B panel's columns,
// whichever balances the work better (see the split in gemm()).
//
// Portable code: the only ISA-specific part is the micro-kernel, picked at run time
// from the SIMD path (csrc/common/cpu_features.cpp).
#include "cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "common/cpu_features.h"
#include "common/dispatch.h"
#include "common/error.h"
#include "common/scratch.h"
#include "common/threads.h"
#include "cpu/gemm_kernels.h"

namespace fastlayers {
namespace {

using gemm_detail::KernelInfo;
using gemm_detail::active_kernel;


int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

float* a_scratch(size_t count) {
  thread_local ScratchBuffer buf;
  return buf.get(count);
}
float* b_scratch(size_t count) {
  thread_local ScratchBuffer buf;
  return buf.get(count);
}

// C <- beta * C for the cases with no product to add (k == 0 or alpha == 0).
void scale_c(MatrixView c, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c.data + i * c.rs;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < n; ++j) row[j * c.cs] = 0.0f;
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < n; ++j) row[j * c.cs] *= beta;
    }
  }
}

// Fraction of the computed tile columns that are real when n columns are padded to NR.
double column_efficiency(int64_t n, int NR) {
  return static_cast<double>(n) / static_cast<double>(round_up(n, NR));
}

// Below this many flops a GEMM runs on one thread: waking the OpenMP team costs more
// than it saves.
constexpr double kMinFlopsPerThread = 1.0e6;

// C = alpha * A @ B + beta * C through the dot-product kernel; B's columns are copied to
// contiguous rows first unless they already are (b.rs == 1, e.g. trans_b of a weight).
void gemm_narrow(const KernelInfo& kern, MatrixView c, ConstMatrixView a, ConstMatrixView b,
                 int64_t m, int64_t n, int64_t k, float alpha, float beta, int nthreads) {
  const float* bt = b.data;
  int64_t rs_bt = b.cs;
  if (b.rs != 1) {
    float* copy = b_scratch(static_cast<size_t>(n) * k);  // (n, k): B transposed
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) copy[j * k + p] = b.data[p * b.rs + j * b.cs];
    bt = copy;
    rs_bt = k;
  }
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int64_t row_blocks = ceil_div(m, 4);
  const int nt = static_cast<int>(std::min<double>(
      {static_cast<double>(nthreads), std::max(1.0, flops / kMinFlopsPerThread),
       static_cast<double>(row_blocks)}));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num();
    const int64_t r0 = row_blocks * t / nt * 4;
    const int64_t r1 = std::min(m, row_blocks * (t + 1) / nt * 4);
    if (r1 > r0) {
      kern.dot(r1 - r0, n, k, a.data + r0 * a.rs, a.rs, bt, rs_bt, c.data + r0 * c.rs, c.rs, c.cs,
               alpha, beta);
    }
  }
}

}  // namespace

namespace gemm_detail {
const KernelInfo& active_kernel() { return FL_SIMD_SELECT(kernel); }
}  // namespace gemm_detail

void gemm(MatrixView c, ConstMatrixView a, ConstMatrixView b, const GemmShape& shape,
          float alpha, float beta, int nthreads) {
  int64_t m = shape.m, n = shape.n;
  const int64_t k = shape.k;
  FL_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative size (m=", m, ", n=", n, ", k=", k, ")");
  FL_CHECK(nthreads >= 1, "gemm: nthreads must be >= 1, got ", nthreads);
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    scale_c(c, m, n, beta);
    return;
  }

  const KernelInfo& kern = active_kernel();
  const int MR = kern.mr, NR = kern.nr;

  // Narrow C (a classifier layer's 10 outputs, say): the packed path would pad each row
  // of C to NR columns or transpose all of A into panels; dot products of A rows and B
  // columns read both in place instead.
  if (kern.dot != nullptr && n <= kern.dot_max_n && k >= 16 && a.cs == 1) {
    gemm_narrow(kern, c, a, b, m, n, k, alpha, beta, nthreads);
    return;
  }

  // Edge rows cost nothing (the micro-kernel is instantiated per row count) but edge
  // columns are padded to NR. When that wastes much, compute C^T = B^T A^T instead:
  // swapping the roles is only a swap of strides.
  if (column_efficiency(n, NR) < 0.75 && column_efficiency(m, NR) > column_efficiency(n, NR)) {
    std::swap(m, n);
    const ConstMatrixView at{b.data, b.cs, b.rs};
    const ConstMatrixView bt{a.data, a.cs, a.rs};
    a = at;
    b = bt;
    c = MatrixView{c.data, c.cs, c.rs};
  }

  // Block sizes: split K and N evenly into blocks no larger than KC / NC, so that a
  // remainder never produces a sliver of a block.
  const int64_t kc_blocks = ceil_div(k, kern.kc);
  const int64_t kc_max = ceil_div(k, kc_blocks);
  const int64_t nc_max = std::min<int64_t>(round_up(n, NR), round_up(kern.nc, NR));

  // Threads: by flops, then by the work available.
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  int nt = static_cast<int>(std::min<double>(nthreads, std::max(1.0, flops / kMinFlopsPerThread)));

  // Work split: each thread takes either a contiguous range of MR-row panels of C (and
  // packs only its own rows of A) or, when that balances worse, a range of NR-column
  // panels of every B panel (and packs all of A itself). Ranges differ by at most one
  // panel; rows are processed in A blocks of at most MC rows either way.
  const int64_t row_panels = ceil_div(m, MR);
  const int64_t col_panels = ceil_div(n, NR);
  nt = static_cast<int>(std::min<int64_t>(nt, std::max(row_panels, col_panels)));
  bool split_columns = false;
  if (nt > 1) {
    const int64_t rows_per_thread = std::min(m, ceil_div(row_panels, nt) * MR);
    const int64_t cols_per_thread = std::min(n, ceil_div(col_panels, nt) * NR);
    // Largest share of multiply-adds a thread gets either way (columns padded to NR).
    const double cost_rows = static_cast<double>(rows_per_thread) * round_up(n, NR);
    const double cost_cols = static_cast<double>(m) * round_up(cols_per_thread, NR);
    split_columns = cost_cols < cost_rows;
  }
  const int64_t mc_panels = std::max<int64_t>(1, kern.mc / MR);  // A block height, in panels

  // Scratch is taken before the parallel region: an allocation failure must surface as
  // an exception in the calling thread, not inside an OpenMP region (where it aborts).
  const size_t a_block = static_cast<size_t>(mc_panels) * MR * kc_max;
  float* bpack = b_scratch(static_cast<size_t>(kc_max) * nc_max);
  float* apack_all = a_scratch(a_block * nt);

#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num();
    float* apack = apack_all + a_block * t;
    // This thread's rows of C, in MR-row panels.
    const int64_t pr0 = split_columns ? 0 : row_panels * t / nt;
    const int64_t pr1 = split_columns ? row_panels : row_panels * (t + 1) / nt;
    for (int64_t jc = 0; jc < n; jc += nc_max) {
      const int64_t nc = std::min(nc_max, n - jc);
      const int64_t n_panels = ceil_div(nc, NR);
      // This thread's columns of the B panel, in NR-column micro-panels.
      const int64_t pj0 = split_columns ? n_panels * t / nt : 0;
      const int64_t pj1 = split_columns ? n_panels * (t + 1) / nt : n_panels;
      for (int64_t pc = 0; pc < k; pc += kc_max) {
        const int64_t kc = std::min(kc_max, k - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;

#pragma omp for schedule(static)
        for (int64_t jp = 0; jp < n_panels; ++jp) {
          const int nr = static_cast<int>(std::min<int64_t>(NR, nc - jp * NR));
          kern.pack_b(bpack + jp * NR * kc, b.data + pc * b.rs + (jc + jp * NR) * b.cs, b.rs, b.cs,
                      kc, nr);
        }  // implicit barrier: the B panel is complete before anyone uses it

        for (int64_t pb = pr0; pb < pr1; pb += mc_panels) {
          const int64_t ic = pb * MR;
          const int64_t mcur = std::min(std::min(pr1, pb + mc_panels) * MR, m) - ic;
          kern.pack_a(apack, a.data + ic * a.rs + pc * a.cs, a.rs, a.cs, mcur, kc);
          for (int64_t jp = pj0; jp < pj1; ++jp) {
            const int64_t jr = jp * NR;
            const int nr = static_cast<int>(std::min<int64_t>(NR, nc - jr));
            const float* bp = bpack + jr * kc;
            for (int64_t ir = 0; ir < mcur; ir += MR) {
              const int mr = static_cast<int>(std::min<int64_t>(MR, mcur - ir));
              float* cp = c.data + (ic + ir) * c.rs + (jc + jr) * c.cs;
              kern.micro(kc, apack + ir * kc, bp, cp, c.rs, c.cs, mr, nr, alpha, beta_eff);
            }
          }
        }
#pragma omp barrier  // nobody repacks B while others still read it
      }
    }
  }
}

void gemm(MatrixView c, ConstMatrixView a, ConstMatrixView b, const GemmShape& shape,
          float alpha, float beta) {
  gemm(c, a, b, shape, alpha, beta, get_num_threads());
}

GemmBlocking gemm_blocking() {
  const KernelInfo& k = active_kernel();
  return GemmBlocking{k.isa, k.mr, k.nr, k.kc, k.mc, k.nc};
}

}  // namespace fastlayers
