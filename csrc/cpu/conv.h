// 2-D convolution on the CPU (NCHW, float32): forward, backward-data and
// backward-weight, built on the BLIS-style GEMM (csrc/cpu/gemm.h).
//
// PyTorch semantics (cross-correlation):
//   out[n, k, p, q] = b[k] + sum_{c, r, s} w[k, c, r, s] *
//                     x[n, g*Cg + c, p*stride_h - pad_top + r*dil_h, q*stride_w - pad_left + s*dil_w]
// with g = k / (K / groups), Cg = C / groups, and x read as 0 outside the image.
//
// conv_transpose2d needs no kernel of its own: it is the adjoint of conv2d with respect
// to its input, so its forward is conv2d_backward_data (with the bias as the initial
// value), its input gradient is conv2d_forward, and its weight gradient is
// conv2d_backward_weight with the roles of x and dout exchanged (see ops/conv.py).
#pragma once

#include <cstdint>

#include "common/error.h"

namespace fastlayers {

// Sizes of one convolution. The output size (p, q) is stored rather than derived:
// conv_transpose2d with output_padding uses a conv whose formula would give a larger
// output than the one it needs. Every input access is bounds-checked against (h, w), so
// any p, q >= 1 is memory-safe; padding below/right of the image is implied by p and q.
struct Conv2dShape {
  int64_t n;                   // batch
  int64_t c, h, w;             // input channels, height, width
  int64_t k;                   // output channels
  int64_t r, s;                // kernel height, width
  int64_t p, q;                // output height, width
  int64_t stride_h, stride_w;  // >= 1
  int64_t pad_top, pad_left;   // >= 0: zero rows above / columns left of the image
  int64_t dil_h, dil_w;        // >= 1
  int64_t groups;              // divides c and k
};

// Throws ArgumentError unless every size is positive and groups divides c and k.
void conv2d_check_shape(const Conv2dShape& sh);

// The convolution described by the shapes of an input-side array x (N, C, H, W), the
// weights w (K, C/groups, R, S) and an output-side array o (N, K, P, Q), checked for
// consistency: ArgumentError naming the arrays (xname, wname, oname) otherwise. Header
// only, so that the CPU and the CUDA bindings share it (the CUDA module does not link the
// CPU kernels).
inline Conv2dShape conv2d_shape_of(const int64_t x[4], const char* xname, const int64_t w[4], const char* wname,
                                   const int64_t o[4], const char* oname, int64_t stride_h, int64_t stride_w,
                                   int64_t pad_top, int64_t pad_left, int64_t dil_h, int64_t dil_w,
                                   int64_t groups) {
  const Conv2dShape sh{x[0], x[1], x[2], x[3], w[0], w[2], w[3], o[2], o[3],
                       stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, groups};
  FL_CHECK(groups >= 1, "groups: must be >= 1, got ", groups);
  FL_CHECK(stride_h >= 1 && stride_w >= 1, "stride: must be >= 1, got (", stride_h, ", ", stride_w, ")");
  FL_CHECK(dil_h >= 1 && dil_w >= 1, "dilation: must be >= 1, got (", dil_h, ", ", dil_w, ")");
  FL_CHECK(pad_top >= 0 && pad_left >= 0, "padding: must be >= 0, got (", pad_top, ", ", pad_left, ")");
  FL_CHECK(sh.n >= 1 && sh.c >= 1 && sh.h >= 1 && sh.w >= 1, xname, ": every dimension must be >= 1");
  FL_CHECK(sh.k >= 1 && w[1] >= 1 && sh.r >= 1 && sh.s >= 1, wname, ": every dimension must be >= 1");
  FL_CHECK(sh.p >= 1 && sh.q >= 1, oname, ": every dimension must be >= 1");
  FL_CHECK(sh.c % groups == 0, "groups: ", groups, " does not divide the ", sh.c, " channels of ", xname);
  FL_CHECK(sh.k % groups == 0, "groups: ", groups, " does not divide the ", sh.k, " channels of ", wname);
  FL_CHECK(w[1] * groups == sh.c, wname, ": expected ", sh.c, "/", groups, " input channels per group to match ",
           xname, ", got ", w[1]);
  FL_CHECK(o[0] == sh.n && o[1] == sh.k, oname, ": expected shape (", sh.n, ", ", sh.k, ", P, Q), got (", o[0],
           ", ", o[1], ", ", o[2], ", ", o[3], ")");
  return sh;
}

// out (N, K, P, Q) <- conv(x (N, C, H, W), w (K, C/groups, R, S)) + bias (K) or nullptr.
void conv2d_forward(float* out, const float* x, const float* w, const float* bias,
                    const Conv2dShape& sh);

// dx (N, C, H, W) <- d(sum out * dout)/dx for dout (N, K, P, Q), w (K, C/groups, R, S):
// the transposed convolution of dout. dx is overwritten; when `init` (C) is not null,
// dx[n, c] starts from init[c] instead of 0 (the bias of conv_transpose2d).
void conv2d_backward_data(float* dx, const float* dout, const float* w, const float* init,
                          const Conv2dShape& sh);

// dw (K, C/groups, R, S) <- sum_n d(out)/dw contracted with dout (N, K, P, Q), for the
// input x (N, C, H, W). dw is overwritten.
void conv2d_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& sh);

// db (K) <- sum over n, p, q of dout (N, K, PQ): the bias gradient. Overwrites db.
void conv2d_backward_bias(float* db, const float* dout, int64_t n, int64_t k, int64_t pq);

// For tests: which path the kernels take. 0 (default) chooses by size; 1 never uses the
// batch-blocked path; 2 uses it whenever the batch has a full block of images. Returns
// the number of images per block (the panel width of the active SIMD path).
int conv2d_force_path(int mode);

}  // namespace fastlayers
