// Single-precision GEMM on the GPU (row-major, the BLAS sgemm contract):
//
//   C (m, n) <- alpha * op(A) @ op(B) + beta * C          op(X) = X or X^T
//
// A is stored (m, k) with row stride lda (trans_a: (k, m)), B (k, n) with ldb (trans_b:
// (n, k)), C (m, n) with ldc. When beta == 0, C is never read (NaN in it does not leak).
// Any m, n, k >= 0 (k == 0 gives beta * C). The kernel (gemm.cu) is the promoted rung of
// the SGEMM ladder (gemm_ladder.cu): shared-memory blocking, 2-D register tiling, float4
// global loads/stores where the pointers and leading dimensions allow it.
//
// gemm_ex adds what linear and conv need on top: a batch with two-level strides
// (batch z = outer * inner_count + inner, e.g. images x groups) and a fused epilogue
// (bias per row or per column, then ReLU).
#pragma once

#include <cstdint>

#include "cuda/cuda_compat.h"

namespace fastlayers::cuda {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          cudaStream_t stream);

// `batch` independent GEMMs; matrix i starts at a + i * stride_a (b, c likewise). A
// stride of 0 shares one matrix across the batch.
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                          int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                          int64_t batch, cudaStream_t stream);

// Batch z in [0, count) is (outer, inner) = (z / inner_count, z % inner_count); matrix z of
// X starts at x + outer * x_outer + inner * x_inner.
struct GemmBatch {
  int64_t count = 1;
  int64_t inner_count = 1;
  int64_t a_outer = 0, a_inner = 0;
  int64_t b_outer = 0, b_inner = 0;
  int64_t c_outer = 0, c_inner = 0;
};

// After alpha * op(A) op(B) + beta * C: + bias, then max(., 0) when relu. bias (null: none)
// is indexed by the row i (per_row) or the column j of C, from bias + inner * bias_inner
// (so groups of a convolution read their own slice).
struct GemmEpilogue {
  const float* bias = nullptr;
  bool per_row = true;
  int64_t bias_inner = 0;
  bool relu = false;
};

// gemm with a batch and an epilogue; `op` names the caller in error messages.
void gemm_ex(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
             int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
             const GemmBatch& batch, const GemmEpilogue& epi, cudaStream_t stream, const char* op);

// For tests: which tile configuration gemm uses. 0 (default) chooses by size, 1 forces the
// 64x64 tile (4x4 per thread), 2 the 128x128 tile (8x8 per thread). Returns the old mode.
int gemm_force_tile(int mode);

// For tests: split-K. 0 (default) splits a GEMM with few tiles of C and a long k by size,
// -1 never splits, s >= 2 cuts k into (about) s slices whenever the GEMM is not batched.
// Returns the old setting.
int gemm_force_split(int splits);

// The SGEMM ladder (gemm_ladder.cu): C (m, n) = A (m, k) @ B (k, n), all row-major and
// C-contiguous, alpha 1, beta 0, with rung `rung` (0 .. gemm_rung_count() - 1).
int gemm_rung_count();
const char* gemm_rung_name(int rung);
void gemm_rung(int rung, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
               cudaStream_t stream);

}  // namespace fastlayers::cuda
