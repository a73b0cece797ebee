// 2-D pooling on the CPU: max pool (with the argmax kept for backward), average pool
// (padded zeros counted in the divisor) and global average pool, forward and backward.
//
// Layout: NCHW float32, C-contiguous. Every (n, c) plane is pooled independently, so
// OpenMP threads own whole planes (no two threads write the same dx element).
//
// Window (oh, ow) covers input rows oh*sh - ph .. oh*sh - ph + kh - 1 and columns
// ow*sw - pw .. ow*sw - pw + kw - 1; positions outside the input are padding. Output
// sizes are floor((n + 2p - k) / s) + 1 (ceil_mode false), and p <= k / 2 as in PyTorch,
// which guarantees that every window holds at least one input element.
#pragma once

#include <cstdint>

namespace fastlayers {

struct Pool2dShape {
  int64_t n, c;      // batch, channels
  int64_t h, w;      // input plane
  int64_t kh, kw;    // window
  int64_t sh, sw;    // stride
  int64_t ph, pw;    // padding on each side
  int64_t oh, ow;    // output plane: floor((h + 2ph - kh) / sh) + 1, ...
};

// Max pool. The maximum of each window (padding excluded) goes to out; argmax, when not
// null, gets its flat index h * W + w in the input plane. Ties: the FIRST maximum in
// row-major window order wins. NaN counts as larger than every number: a window with a
// NaN outputs NaN and its argmax is the first NaN.
//   out    (N, C, OH, OW)
//   argmax (N, C, OH, OW) int32, or nullptr (inference: nothing saved)
//   x      (N, C, H, W)
void max_pool2d_forward(float* out, int32_t* argmax, const float* x, const Pool2dShape& s);

// dx = 0, then dx[n, c, argmax[n, c, o]] += dout[n, c, o] for every output o
// (overlapping windows accumulate). Throws if an argmax entry lies outside the plane; the
// 2x2 stride-2 path (which writes each window whole instead of scattering) ignores an
// entry outside its own window. Either way nothing outside dx is written.
//   dx (N, C, H, W); dout, argmax (N, C, OH, OW)
void max_pool2d_backward(float* dx, const float* dout, const int32_t* argmax, const Pool2dShape& s);

// Average pool, zero padding counted: out = sum(window) / (kh * kw).
//   out (N, C, OH, OW); x (N, C, H, W)
void avg_pool2d_forward(float* out, const float* x, const Pool2dShape& s);

// dx[i] = sum over the windows containing i of dout / (kh * kw).
//   dx (N, C, H, W); dout (N, C, OH, OW)
void avg_pool2d_backward(float* dx, const float* dout, const Pool2dShape& s);

// Mean over each plane: out[p] = sum(x[p, :]) / hw for p < planes.
//   out (planes,); x (planes, hw)
void global_avg_pool2d_forward(float* out, const float* x, int64_t planes, int64_t hw);

// dx[p, :] = dout[p] / hw.
//   dx (planes, hw); dout (planes,)
void global_avg_pool2d_backward(float* dx, const float* dout, int64_t planes, int64_t hw);

namespace pool_detail {

// One instruction set's build of the plane loops (pool_impl.h compiled by pool_avx512.cpp,
// pool_avx2.cpp and pool_scalar.cpp). Each function runs `nthreads` OpenMP threads over
// the N * C planes; shapes are already checked. max_backward returns the number of argmax
// entries it found out of range (and skipped; 0 from the 2x2 stride-2 path, see above).
struct PoolKernels {
  void (*max_forward)(float* out, int32_t* argmax, const float* x, const Pool2dShape& s, int nthreads);
  int64_t (*max_backward)(float* dx, const float* dout, const int32_t* argmax, const Pool2dShape& s,
                          int nthreads);
  void (*avg_forward)(float* out, const float* x, const Pool2dShape& s, int nthreads);
  void (*avg_backward)(float* dx, const float* dout, const Pool2dShape& s, int nthreads);
  void (*global_avg_forward)(float* out, const float* x, int64_t planes, int64_t hw, int nthreads);
  void (*global_avg_backward)(float* dx, const float* dout, int64_t planes, int64_t hw, int nthreads);
};

const PoolKernels& pool_kernels_scalar();
#if FL_HAVE_X86_SIMD
const PoolKernels& pool_kernels_avx2();
const PoolKernels& pool_kernels_avx512();
#endif

}  // namespace pool_detail
}  // namespace fastlayers
