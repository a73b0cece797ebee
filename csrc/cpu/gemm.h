// Single-precision GEMM on the CPU, BLIS/GotoBLAS style.
//
//   C(i, j) <- alpha * sum_k A(i, k) * B(k, j) + beta * C(i, j)
//
// Matrices are strided views: element (i, j) of a view lives at data[i*rs + j*cs].
// Transposition is a swap of the two strides, so trans_a / trans_b (and any NumPy
// view with positive or negative element strides) need no copy: packing reads them.
// When beta == 0, C is written without being read (NaN/Inf already in C do not leak).
#pragma once

#include <cstdint>

namespace fastlayers {

struct GemmShape {
  int64_t m;  // rows of C and A
  int64_t n;  // columns of C and B
  int64_t k;  // columns of A, rows of B
};

struct ConstMatrixView {
  const float* data;
  int64_t rs;  // distance between rows, in elements
  int64_t cs;  // distance between columns, in elements
};

struct MatrixView {
  float* data;
  int64_t rs;
  int64_t cs;
};

// C (m x n) = alpha * A (m x k) @ B (k x n) + beta * C. Threads: get_num_threads().
// C must not overlap A or B.
void gemm(MatrixView c, ConstMatrixView a, ConstMatrixView b, const GemmShape& shape,
          float alpha, float beta);

// Same, with an explicit thread count (kernels that already run inside their own
// parallel region call it with nthreads = 1).
void gemm(MatrixView c, ConstMatrixView a, ConstMatrixView b, const GemmShape& shape,
          float alpha, float beta, int nthreads);

// Name and block sizes of the micro-kernel the current SIMD path uses, for info().
struct GemmBlocking {
  const char* isa;
  int mr, nr, kc, mc, nc;
};
GemmBlocking gemm_blocking();

}  // namespace fastlayers
