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
