// Internal interface between the convolution drivers (conv.cpp, portable code) and the
// per-ISA inner loops (conv_impl.h, compiled by conv_avx512.cpp / conv_avx2.cpp /
// conv_scalar.cpp with their own flags; see common/dispatch.h).
//
// The drivers never build a full im2col matrix. They describe a group of NR output
// columns (output pixels, possibly of several images) by a PanelPlan: column j reads
// source element  row_base + off[j]  of a zero-padded input, for every row (c, r, s) of
// the im2col matrix; consecutive columns usually read consecutive elements, so the plan
// is a handful of "runs" that the AVX-512 code turns into masked vector loads.
#pragma once

#include <cstdint>

namespace fastlayers {
namespace conv_detail {

constexpr int kMaxPanel = 32;  // the widest GEMM micro-panel (AVX-512: NR = 32)

// Columns [j0, j0 + len) read src[off + (j - j0)]. Runs never cross a multiple of the
// ISA's vector width (ConvKernels::lanes), so each run is one masked load of vector
// `vec` = j0 / lanes: lanes set in `mask` read src[delta + lane].
struct PanelRun {
  int32_t j0, len;
  int64_t off;
  int32_t vec;
  uint32_t mask;
  int64_t delta;  // off - (j0 % lanes)
};

struct PanelPlan {
  int ncols;                   // panel width; columns in no run are zero
  int nruns;                   // runs, in increasing j0 (so grouped by vec)
  bool contiguous;             // one run covering every column
  bool gather_ok;              // every off fits in an int32 (for gather instructions)
  PanelRun runs[kMaxPanel];
  int64_t off[kMaxPanel];      // per column; -1: a zero column (past the last pixel)
};

struct ConvKernels {
  const char* isa;
  int lanes;  // runs are split at multiples of it (the vector width for masked loads)
  int nr;     // panel width: the NR of the same ISA's GEMM micro-kernel

  // dst[p*ld + j] = src[row_off[p] + plan.off[j]] (0 for zero columns), p < rows, j < ncols.
  void (*pack_rows)(float* dst, int64_t ld, const float* src, const int64_t* row_off, int64_t rows,
                    const PanelPlan& plan);

  // dst[i*nr + t] = src[i*stride + t] for i < count, t < nr: `count` rows of the
  // batch-blocked layout (nr images side by side) into a packed B micro-panel.
  void (*copy_rows)(float* dst, const float* src, int64_t stride, int64_t count);

  // Into / out of the batch-blocked layout, for i < count and lane l < nr:
  //   to_lanes:   dst[i*stride + l] = src[l][i]      (stride a multiple of nr)
  //   from_lanes: dst[l][i] = src[i*nr + l] + bias
  void (*to_lanes)(float* dst, int64_t stride, const float* const* src, int64_t count);
  void (*from_lanes)(float* const* dst, const float* src, int64_t count, float bias);

  // Weight-gradient tile, for i < it (<= 6), j < jt (<= 4):
  //   dw[i*ldw + j*ldj] += sum_{row < nrows} sum_{t < len} d[i][row*d_rs + t] * col[j][row*c_rs + t]
  // len a multiple of `lanes`; d and col are arrays of it / jt row pointers.
  void (*dot_tile)(float* dw, int64_t ldw, int64_t ldj, const float* const* d, const float* const* col,
                   int64_t len, int64_t nrows, int64_t d_rs, int64_t c_rs, int it, int jt);

  // Batch-reduce micro-kernel (the forward's taps of one output pixel in one call):
  //   c[i*ldc + t] = sum_{q < nseg} sum_{p < len[q]} a[q][p*m + i] * b[q][p*nr + t]
  // for i < m <= brgemm_mr, t < nr. The accumulators stay in registers across the
  // segments (one per kernel row), so C is written once, never read. Null (and
  // brgemm_mr 0) where the ISA has none; the drivers then call the GEMM micro-kernel
  // once per segment.
  void (*brgemm)(int m, int nseg, const int64_t* len, const float* const* a, const float* const* b, float* c,
                 int64_t ldc);
  int brgemm_mr;

  // Stride-phase split of one input row (the padded layout of conv.cpp):
  //   dst[ph*dst_stride + j] = src[j*phases + ph]   for ph < phases, j < count.
  void (*deinterleave)(float* dst, int64_t dst_stride, const float* src, int64_t phases, int64_t count);
};

const ConvKernels& conv_kernels_scalar();
#if FL_HAVE_X86_SIMD
const ConvKernels& conv_kernels_avx2();
const ConvKernels& conv_kernels_avx512();
#endif

}  // namespace conv_detail
}  // namespace fastlayers
