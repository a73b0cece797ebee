// Fully connected layer on the GEMM, with the bias and ReLU applied in one pass over
// the output while it is still in cache (see linear.h for the formulas).
#include "cpu/linear.h"

#include <algorithm>
#include <memory>

#include "common/error.h"
#include "common/threads.h"

namespace fastlayers {
namespace {

// Below this many output elements the epilogue passes run on one thread.
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

int threads_for(int64_t elements) {
  return static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, elements / kMinParallelElements)));
}

// y (N, out) <- act(y + b), rows split over threads.
void bias_activation(float* y, const float* b, int64_t n, int64_t out, LinearActivation act) {
  const bool relu = act == LinearActivation::kRelu;
  if (b == nullptr && !relu) return;
  const int nt = threads_for(n * out);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) {
    float* row = y + i * out;
    if (b != nullptr && relu) {
#pragma omp simd
      for (int64_t j = 0; j < out; ++j) {
        const float v = row[j] + b[j];
        row[j] = v < 0.0f ? 0.0f : v;  // keeps NaN, like torch.relu
      }
    } else if (b != nullptr) {
#pragma omp simd
      for (int64_t j = 0; j < out; ++j) row[j] += b[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < out; ++j) row[j] = row[j] < 0.0f ? 0.0f : row[j];
    }
  }
}

// One pass over dout (N, out): dz = dout * [y > 0] when y is given (relu), and
// db = column sums of dz when db is given. Threads own blocks of columns, so the sums
// need no reduction and do not depend on the thread count; accumulated in double.
void mask_and_bias_grad(float* dz, float* db, const float* y, const float* dout, int64_t n, int64_t out) {
  constexpr int64_t kCols = 64;
  const int64_t blocks = (out + kCols - 1) / kCols;
  const int nt = static_cast<int>(std::min<int64_t>(threads_for(n * out), blocks));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kCols;
    const int64_t nc = std::min(kCols, out - c0);
    double acc[kCols] = {};
    for (int64_t i = 0; i < n; ++i) {
      const float* g = dout + i * out + c0;
      if (y != nullptr) {
        const float* yr = y + i * out + c0;
        float* z = dz + i * out + c0;
#pragma omp simd
        for (int64_t c = 0; c < nc; ++c) {
          const float v = yr[c] > 0.0f ? g[c] : 0.0f;
          z[c] = v;
          acc[c] += v;
        }
      } else {
#pragma omp simd
        for (int64_t c = 0; c < nc; ++c) acc[c] += g[c];
      }
    }
    if (db != nullptr) {
      for (int64_t c = 0; c < nc; ++c) db[c0 + c] = static_cast<float>(acc[c]);
    }
  }
}

// A grow-only scratch buffer per calling thread for dz: a fresh allocation of this size
// is an mmap, and its page faults cost more than the masking pass itself.
float* dz_scratch(size_t count) {
  struct Buffer {
    std::unique_ptr<float[]> data;
    size_t capacity = 0;
  };
  thread_local Buffer buf;
  if (count > buf.capacity) {
    buf.data.reset(new float[count]);  // throws std::bad_alloc before any parallel region
    buf.capacity = count;
  }
  return buf.data.get();
}

void check_shape(const LinearShape& s) {
  FL_CHECK(s.n >= 0 && s.in >= 0 && s.out >= 0, "linear: negative size (n=", s.n, ", in=", s.in,
           ", out=", s.out, ")");
}

}  // namespace

void linear_forward(float* y, ConstMatrixView x, ConstMatrixView w, const float* b,
                    const LinearShape& s, LinearActivation act) {
  check_shape(s);
  if (s.n == 0 || s.out == 0) return;
  // y = x @ w^T: B(k, j) = w(j, k) is w with its strides swapped.
  const ConstMatrixView wt{w.data, w.cs, w.rs};
  gemm(MatrixView{y, s.out, 1}, x, wt, GemmShape{s.n, s.out, s.in}, 1.0f, 0.0f);
  // Bias (and ReLU) after the GEMM, one pass over y in cache. Measured against
  // pre-filling y with b and running the GEMM with beta = 1: the same time (the pass is
  // ~1% of the GEMM at MLP sizes), and the ReLU comes free in this pass.
  bias_activation(y, b, s.n, s.out, act);
}

void linear_backward(float* dx, float* dw, float* db, const float* y, const float* dout,
                     ConstMatrixView x, ConstMatrixView w, const LinearShape& s,
                     LinearActivation act) {
  check_shape(s);
  const bool relu = act == LinearActivation::kRelu;
  FL_CHECK(!relu || y != nullptr, "linear_backward: relu needs the forward output");
  // dz = dout * [y > 0] needs a buffer (dout is the caller's); without relu dz = dout.
  float* dz_buf = nullptr;
  const float* dz = dout;
  if (relu && s.n * s.out > 0) {
    dz_buf = dz_scratch(static_cast<size_t>(s.n * s.out));
    dz = dz_buf;
  }
  if ((relu || db != nullptr) && s.out > 0) {
    mask_and_bias_grad(dz_buf, db, relu ? y : nullptr, dout, s.n, s.out);
  }
  // dx (N, in) = dz (N, out) @ w (out, in)
  if (dx != nullptr && s.n > 0 && s.in > 0) {
    gemm(MatrixView{dx, s.in, 1}, ConstMatrixView{dz, s.out, 1}, w, GemmShape{s.n, s.in, s.out}, 1.0f, 0.0f);
  }
  // dw (out, in) = dz^T (out, N) @ x (N, in)
  if (s.out > 0 && s.in > 0) {
    gemm(MatrixView{dw, s.in, 1}, ConstMatrixView{dz, 1, s.out}, x, GemmShape{s.out, s.in, s.n}, 1.0f, 0.0f);
  }
}

}  // namespace fastlayers
