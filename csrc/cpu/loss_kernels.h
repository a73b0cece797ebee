// The table of per-ISA loss loops (built from loss_impl.h by loss_avx512.cpp,
// loss_avx2.cpp and loss_scalar.cpp); loss.cpp picks one with FL_SIMD_SELECT and splits
// the work over threads. Every entry works on a range so that one indirect call covers
// a thread's whole share.
#pragma once

#include <cstdint>

namespace fastlayers {
namespace loss_detail {

// Widest column tile of the strided softmax (inner > 1): per-column accumulators of this
// many floats live on the stack.
constexpr int64_t kMaxTile = 256;

struct LossKernels {
  const char* name;
  // Rows [r0, r1) of a (rows, c) C-contiguous array, softmax along c.
  void (*softmax_rows)(float* y, const float* x, int64_t r0, int64_t r1, int64_t c, bool log_y);
  void (*softmax_rows_backward)(float* dx, const float* dy, const float* y, int64_t r0, int64_t r1,
                                int64_t c, bool log_y);
  // Columns [j0, j0 + w) (w <= kMaxTile) of one (dim, inner) block, softmax along dim.
  void (*softmax_cols)(float* y, const float* x, int64_t dim, int64_t inner, int64_t j0, int64_t w,
                       bool log_y);
  void (*softmax_cols_backward)(float* dx, const float* dy, const float* y, int64_t dim,
                                int64_t inner, int64_t j0, int64_t w, bool log_y);
  // Rows [r0, r1) of (n, c) logits: row_loss[i] = -log_softmax(x)[i, label_i] and
  // stats[i] = {row max, log sum exp(x - max)}. Labels must already be checked.
  void (*cross_entropy_rows)(float* row_loss, float* stats, const float* logits,
                             const int64_t* labels, int64_t r0, int64_t r1, int64_t c);
  void (*cross_entropy_rows_backward)(float* dlogits, const float* stats, const float* logits,
                                      const int64_t* labels, float scale, int64_t r0, int64_t r1,
                                      int64_t c);
  // Element ranges (pointers already offset): sums in double, gradients elementwise.
  double (*bce_sum)(const float* x, const float* t, int64_t n);
  void (*bce_backward)(float* dx, float* dt, const float* x, const float* t, float scale, int64_t n);
  double (*mse_sum)(const float* p, const float* t, int64_t n);
  void (*mse_backward)(float* dp, float* dt, const float* p, const float* t, float scale, int64_t n);
};

const LossKernels& loss_kernels_avx512();
const LossKernels& loss_kernels_avx2();
const LossKernels& loss_kernels_scalar();

}  // namespace loss_detail
}  // namespace fastlayers
