// Entry points of the loss family: argument re-checks, the choice of per-ISA loops
// (FL_SIMD_SELECT over loss_kernels_*), and the split of the work over OpenMP threads.
//
// Threads only when there is enough work (kMinElemsPerThread per thread): a softmax of
// (128, 10) finishes before an OpenMP team wakes up. Whole-array sums are made of fixed
// chunks added in order, so a loss is bit-identical for every thread count.
#include "cpu/loss.h"

#include <algorithm>
#include <vector>

#include "common/dispatch.h"
#include "common/error.h"
#include "common/threads.h"
#include "cpu/loss_kernels.h"

namespace fastlayers {
namespace {

using loss_detail::kMaxTile;
using loss_detail::LossKernels;

const LossKernels& kernels() { return FL_SIMD_SELECT(loss_detail::loss_kernels); }

constexpr int64_t kMinElemsPerThread = int64_t{1} << 15;
// Chunk of the element-wise sums: the unit of both parallel work and summation order.
constexpr int64_t kSumChunk = int64_t{1} << 14;

int threads_for(int64_t elems, int64_t tasks) {
  const int64_t by_work = std::max<int64_t>(1, elems / kMinElemsPerThread);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({get_num_threads(), by_work, tasks})));
}

void check_softmax_shape(const SoftmaxShape& s) {
  FL_CHECK(s.outer >= 0 && s.dim >= 0 && s.inner >= 0, "softmax: negative size (outer=", s.outer,
           ", dim=", s.dim, ", inner=", s.inner, ")");
}

// Column tile for the strided softmax: the dim x w tile (read three times) should stay
// in L2, about 256 KiB; at least one 16-float vector wide, at most kMaxTile.
int64_t column_tile(int64_t dim, int64_t inner) {
  const int64_t fit = (int64_t{1} << 16) / std::max<int64_t>(dim, 1);
  const int64_t w = std::clamp<int64_t>(fit / 16 * 16, 16, kMaxTile);
  return std::min(w, inner);
}

void check_labels(const int64_t* labels, const CrossEntropyShape& s) {
  FL_CHECK(s.n >= 0 && s.c >= 1, "softmax_cross_entropy: bad shape (n=", s.n, ", c=", s.c, ")");
  for (int64_t i = 0; i < s.n; ++i) {
    FL_CHECK(labels[i] >= 0 && labels[i] < s.c, "labels: value ", labels[i], " at index ", i,
             " is outside [0, ", s.c, ")");
  }
}

// Runs body(begin, end) over [0, n) split into contiguous per-thread ranges.
template <typename Body>
void parallel_ranges(int64_t n, int nt, Body body) {
  if (nt <= 1) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) body(n * t / nt, n * (t + 1) / nt);
}

// Sum over [0, n) of sum_fn(offset, len), chunk by chunk, added in chunk order.
template <typename SumFn>
double chunked_sum(int64_t n, SumFn sum_fn) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  const int nt = threads_for(n, chunks);
  if (nt <= 1) {
    double total = 0.0;
    for (int64_t k = 0; k < chunks; ++k) total += sum_fn(k * kSumChunk, std::min(kSumChunk, n - k * kSumChunk));
    return total;
  }
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t k = 0; k < chunks; ++k) partial[k] = sum_fn(k * kSumChunk, std::min(kSumChunk, n - k * kSumChunk));
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void softmax_forward(float* y, const float* x, const SoftmaxShape& shape, bool log_y) {
  check_softmax_shape(shape);
  const int64_t outer = shape.outer, dim = shape.dim, inner = shape.inner;
  if (outer == 0 || dim == 0 || inner == 0) return;
  const LossKernels& k = kernels();
  const int64_t elems = outer * dim * inner;
  if (inner == 1) {
    parallel_ranges(outer, threads_for(elems, outer),
                    [&](int64_t r0, int64_t r1) { k.softmax_rows(y, x, r0, r1, dim, log_y); });
    return;
  }
  // Tasks are (block, column tile) pairs; block b is x[b] viewed as (dim, inner).
  const int64_t w = column_tile(dim, inner);
  const int64_t tiles = (inner + w - 1) / w;
  const int64_t tasks = outer * tiles;
  const int nt = threads_for(elems, tasks);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / tiles, j0 = (t % tiles) * w;
    const int64_t off = b * dim * inner;
    k.softmax_cols(y + off, x + off, dim, inner, j0, std::min(w, inner - j0), log_y);
  }
}

void softmax_backward(float* dx, const float* dy, const float* y, const SoftmaxShape& shape,
                      bool log_y) {
  check_softmax_shape(shape);
  const int64_t outer = shape.outer, dim = shape.dim, inner = shape.inner;
  if (outer == 0 || dim == 0 || inner == 0) return;
  const LossKernels& k = kernels();
  const int64_t elems = outer * dim * inner;
  if (inner == 1) {
    parallel_ranges(outer, threads_for(elems, outer), [&](int64_t r0, int64_t r1) {
      k.softmax_rows_backward(dx, dy, y, r0, r1, dim, log_y);
    });
    return;
  }
  const int64_t w = column_tile(dim, inner);
  const int64_t tiles = (inner + w - 1) / w;
  const int64_t tasks = outer * tiles;
  const int nt = threads_for(elems, tasks);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / tiles, j0 = (t % tiles) * w;
    const int64_t off = b * dim * inner;
    k.softmax_cols_backward(dx + off, dy + off, y + off, dim, inner, j0, std::min(w, inner - j0),
                            log_y);
  }
}

double softmax_cross_entropy_forward(float* stats, const float* logits, const int64_t* labels,
                                     const CrossEntropyShape& shape) {
  check_labels(labels, shape);
  const int64_t n = shape.n, c = shape.c;
  if (n == 0) return 0.0;
  const LossKernels& k = kernels();
  std::vector<float> row_loss(static_cast<size_t>(n));  // (n,)
  parallel_ranges(n, threads_for(n * c, n), [&](int64_t r0, int64_t r1) {
    k.cross_entropy_rows(row_loss.data(), stats, logits, labels, r0, r1, c);
  });
  double total = 0.0;
  for (float l : row_loss) total += l;
  return total;
}

void softmax_cross_entropy_backward(float* dlogits, const float* stats, const float* logits,
                                    const int64_t* labels, float scale,
                                    const CrossEntropyShape& shape) {
  check_labels(labels, shape);
  const int64_t n = shape.n, c = shape.c;
  if (n == 0) return;
  const LossKernels& k = kernels();
  parallel_ranges(n, threads_for(n * c, n), [&](int64_t r0, int64_t r1) {
    k.cross_entropy_rows_backward(dlogits, stats, logits, labels, scale, r0, r1, c);
  });
}

double bce_with_logits_forward(const float* x, const float* t, int64_t n) {
  FL_CHECK(n >= 0, "binary_cross_entropy_with_logits: negative size ", n);
  const LossKernels& k = kernels();
  return chunked_sum(n, [&](int64_t off, int64_t len) { return k.bce_sum(x + off, t + off, len); });
}

void bce_with_logits_backward(float* dx, float* dt, const float* x, const float* t, float scale,
                              int64_t n) {
  FL_CHECK(n >= 0, "binary_cross_entropy_with_logits: negative size ", n);
  const LossKernels& k = kernels();
  parallel_ranges(n, threads_for(n, n), [&](int64_t i0, int64_t i1) {
    k.bce_backward(dx ? dx + i0 : nullptr, dt ? dt + i0 : nullptr, x + i0, t + i0, scale, i1 - i0);
  });
}

double mse_forward(const float* p, const float* t, int64_t n) {
  FL_CHECK(n >= 0, "mse_loss: negative size ", n);
  const LossKernels& k = kernels();
  return chunked_sum(n, [&](int64_t off, int64_t len) { return k.mse_sum(p + off, t + off, len); });
}

void mse_backward(float* dp, float* dt, const float* p, const float* t, float scale, int64_t n) {
  FL_CHECK(n >= 0, "mse_loss: negative size ", n);
  const LossKernels& k = kernels();
  parallel_ranges(n, threads_for(n, n), [&](int64_t i0, int64_t i1) {
    k.mse_backward(dp ? dp + i0 : nullptr, dt ? dt + i0 : nullptr, p + i0, t + i0, scale, i1 - i0);
  });
}

}  // namespace fastlayers
