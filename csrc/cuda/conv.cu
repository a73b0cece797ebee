// 2-D convolution on the GPU: im2col / col2im / permute / bias-sum kernels around the
// batched GEMM of gemm.cu (see conv.h for the plan). Notation: x (N, C, H, W), w (K, Cg,
// R, S) with Cg = C / G, Kg = K / G for G groups, out (N, K, P, Q); PQ = P * Q, RS = R * S.
#include "cuda/conv.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda/cuda_compat.h"
#include "cuda/gemm.h"
#include "cuda/workspace.h"

namespace fastlayers::cuda {
namespace {

// The geometry the kernels need, passed by value.
struct Geom {
  int64_t c, h, w, k, r, s, p, q;
  int64_t sh, sw, pt, pl, dh, dw;
};

Geom geom_of(const Conv2dShape& s) {
  return Geom{s.c, s.h, s.w, s.k, s.r, s.s, s.p, s.q, s.stride_h, s.stride_w, s.pad_top, s.pad_left, s.dil_h, s.dil_w};
}

constexpr int kThreads = 256;

unsigned grid_for(int64_t count) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((count + kThreads - 1) / kThreads, 65535)));
}

// im2col for `nb` images starting at x (the chunk's first image): element (n, c, r, s, p, q)
// = x[n, c, p*sh - pt + r*dh, q*sw - pl + s*dw] (0 outside the image), written to
// col[n * img_stride + ((c*R + r)*S + s) * row_stride + p*Q + q]. The per-image layout
// (img_stride = C*RS*PQ, row_stride = PQ) feeds the forward GEMM; the (c, r, s)-major
// layout (img_stride = PQ, row_stride = nb*PQ) the weight-gradient GEMM. One thread per
// element, consecutive threads along q: coalesced writes.
__global__ void im2col_kernel(float* __restrict__ col, const float* __restrict__ x, Geom g, int64_t nb,
                              int64_t img_stride, int64_t row_stride) {
  const int64_t pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t total = nb * crs * pq;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t opix = idx % pq, t = idx / pq;
    const int64_t row = t % crs, n = t / crs;
    const int64_t sidx = row % g.s, rc = row / g.s;
    const int64_t ridx = rc % g.r, c = rc / g.r;
    const int64_t p = opix / g.q, q = opix % g.q;
    const int64_t hi = p * g.sh - g.pt + ridx * g.dh, wi = q * g.sw - g.pl + sidx * g.dw;
    float v = 0.0f;
    if (hi >= 0 && hi < g.h && wi >= 0 && wi < g.w) v = x[((n * g.c + c) * g.h + hi) * g.w + wi];
    col[n * img_stride + row * row_stride + opix] = v;
  }
}

// col2im as a gather for `nb` images: dx[n, c, h, w] = init[c] (or 0) + the sum of
// dcol[n, (c, r, s), p, q] (per-image layout) over every (r, s, p, q) that reads pixel
// (h, w): p*sh - pt + r*dh == h, q likewise. One thread (and writer) per pixel.
__global__ void col2im_kernel(float* __restrict__ dx, const float* __restrict__ dcol, const float* __restrict__ init,
                              Geom g, int64_t nb) {
  const int64_t hw = g.h * g.w, pq = g.p * g.q, rs = g.r * g.s;
  const int64_t total = nb * g.c * hw;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t wi = idx % g.w, t = idx / g.w;
    const int64_t hi = t % g.h, nc = t / g.h;
    const int64_t c = nc % g.c, n = nc / g.c;
    const float* d = dcol + (n * g.c + c) * rs * pq;  // rows (c, 0, 0) .. (c, R-1, S-1) of image n
    float acc = init != nullptr ? init[c] : 0.0f;
    for (int64_t r = 0; r < g.r; ++r) {
      const int64_t ph = hi + g.pt - r * g.dh;  // = p * sh
      if (ph < 0 || ph % g.sh != 0) continue;
      const int64_t p = ph / g.sh;
      if (p >= g.p) continue;
      for (int64_t s = 0; s < g.s; ++s) {
        const int64_t qw = wi + g.pl - s * g.dw;
        if (qw < 0 || qw % g.sw != 0) continue;
        const int64_t q = qw / g.sw;
        if (q >= g.q) continue;
        acc += d[(r * g.s + s) * pq + p * g.q + q];
      }
    }
    dx[idx] = acc;
  }
}

// dst (K, nb, PQ) <- src (nb, K, PQ): the chunk's upstream gradient with the channel
// first, so that (image, pixel) is one contiguous GEMM dimension.
__global__ void channel_major_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t nb, int64_t k,
                                     int64_t pq) {
  const int64_t total = nb * k * pq;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t opix = idx % pq, t = idx / pq;
    const int64_t n = t % nb, ch = t / nb;
    dst[idx] = src[(n * k + ch) * pq + opix];
  }
}

// db[k] = sum_{n, i} dout[n, k, i] for dout (N, K, PQ): block k; each thread sums a strided
// share, then warp shuffles and a shared-memory pass combine the block's partial sums.
__global__ void bias_grad_kernel(float* __restrict__ db, const float* __restrict__ dout, int64_t n, int64_t k,
                                 int64_t pq) {
  FL_SHARED(float, warp_sums, [32]);
  const int64_t ch = blockIdx.x;
  float acc = 0.0f;
  for (int64_t img = 0; img < n; ++img) {
    const float* row = dout + (img * k + ch) * pq;
    for (int64_t i = threadIdx.x; i < pq; i += blockDim.x) acc += row[i];
  }
  // blockDim.x is a multiple of 32 (the launcher's 256): every warp is full.
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    const int nwarps = blockDim.x / 32;
    float v = lane < nwarps ? warp_sums[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) db[ch] = v;
  }
}

int64_t g_workspace_limit = int64_t{1} << 26;

std::string sizes_of(const Conv2dShape& s) {
  return "x=(" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " +
         std::to_string(s.w) + "), w=(" + std::to_string(s.k) + ", " + std::to_string(s.c / s.groups) + ", " +
         std::to_string(s.r) + ", " + std::to_string(s.s) + "), out=(" + std::to_string(s.n) + ", " +
         std::to_string(s.k) + ", " + std::to_string(s.p) + ", " + std::to_string(s.q) + "), stride=(" +
         std::to_string(s.stride_h) + ", " + std::to_string(s.stride_w) + "), pad=(" + std::to_string(s.pad_top) +
         ", " + std::to_string(s.pad_left) + "), dilation=(" + std::to_string(s.dil_h) + ", " +
         std::to_string(s.dil_w) + "), groups=" + std::to_string(s.groups);
}

// 1x1 kernel, stride 1, no padding, output as large as the input: x[n] (C, HW) already is
// the column matrix.
bool is_pointwise(const Conv2dShape& s) {
  return s.r == 1 && s.s == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0 &&
         s.p == s.h && s.q == s.w;
}

// Images per chunk when each image needs `per_image` floats of workspace.
int64_t chunk_images(int64_t n, int64_t per_image) {
  return std::max<int64_t>(1, std::min<int64_t>(n, g_workspace_limit / std::max<int64_t>(per_image, 1)));
}

}  // namespace

int64_t conv2d_workspace_limit(int64_t floats) {
  const int64_t old = g_workspace_limit;
  if (floats > 0) g_workspace_limit = floats;
  return old;
}

void conv2d_forward(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& s,
                    cudaStream_t stream) {
  const char* op = "conv2d_forward";
  const std::string sizes = sizes_of(s);
  const int64_t G = s.groups, cg = s.c / G, kg = s.k / G, pq = s.p * s.q, rs = s.r * s.s;
  const int64_t crs = s.c * rs, cgrs = cg * rs;
  GemmEpilogue epi;
  epi.bias = bias;
  epi.per_row = true;  // rows of out[n, g] are output channels
  epi.bias_inner = kg;
  if (is_pointwise(s)) {
    // out[n, g] (Kg, PQ) = w_g (Kg, Cg) @ x[n, g] (Cg, HW), batched over (n, g).
    GemmBatch bt;
    bt.count = s.n * G;
    bt.inner_count = G;
    bt.a_inner = kg * cg;
    bt.b_outer = s.c * pq;
    bt.b_inner = cg * pq;
    bt.c_outer = s.k * pq;
    bt.c_inner = kg * pq;
    gemm_ex(false, false, kg, pq, cg, 1.0f, w, cg, x, pq, 0.0f, out, pq, bt, epi, stream, op);
    return;
  }
  const int64_t nb = chunk_images(s.n, crs * pq);
  DeviceBuffer<float> col(nb * crs * pq, op, stream);  // (nb, C*RS, PQ)
  const Geom g = geom_of(s);
  for (int64_t n0 = 0; n0 < s.n; n0 += nb) {
    const int64_t cur = std::min(nb, s.n - n0);
    FL_LAUNCH(im2col_kernel, dim3(grid_for(cur * crs * pq)), dim3(kThreads), 0, stream, col.p,
              x + n0 * s.c * s.h * s.w, g, cur, crs * pq, pq);
    check_launch(op, sizes);
    // out[n, g] (Kg, PQ) = w_g (Kg, Cg*RS) @ col[n, g] (Cg*RS, PQ).
    GemmBatch bt;
    bt.count = cur * G;
    bt.inner_count = G;
    bt.a_inner = kg * cgrs;
    bt.b_outer = crs * pq;
    bt.b_inner = cgrs * pq;
    bt.c_outer = s.k * pq;
    bt.c_inner = kg * pq;
    gemm_ex(false, false, kg, pq, cgrs, 1.0f, w, cgrs, col.p, pq, 0.0f, out + n0 * s.k * pq, pq, bt, epi, stream,
            op);
  }
}

void conv2d_backward_data(float* dx, const float* dout, const float* w, const float* init, const Conv2dShape& s,
                          cudaStream_t stream) {
  const char* op = "conv2d_backward_data";
  const std::string sizes = sizes_of(s);
  const int64_t G = s.groups, cg = s.c / G, kg = s.k / G, pq = s.p * s.q, rs = s.r * s.s;
  const int64_t crs = s.c * rs, cgrs = cg * rs, chw = s.c * s.h * s.w;
  if (is_pointwise(s)) {
    // dx[n, g] (Cg, HW) = w_g^T (Cg, Kg) @ dout[n, g] (Kg, PQ) + init.
    GemmBatch bt;
    bt.count = s.n * G;
    bt.inner_count = G;
    bt.a_inner = kg * cg;
    bt.b_outer = s.k * pq;
    bt.b_inner = kg * pq;
    bt.c_outer = chw;
    bt.c_inner = cg * pq;
    GemmEpilogue epi;
    epi.bias = init;
    epi.per_row = true;
    epi.bias_inner = cg;
    gemm_ex(true, false, cg, pq, kg, 1.0f, w, cg, dout, pq, 0.0f, dx, pq, bt, epi, stream, op);
    return;
  }
  const int64_t nb = chunk_images(s.n, crs * pq);
  DeviceBuffer<float> dcol(nb * crs * pq, op, stream);  // (nb, C*RS, PQ)
  const Geom g = geom_of(s);
  for (int64_t n0 = 0; n0 < s.n; n0 += nb) {
    const int64_t cur = std::min(nb, s.n - n0);
    // dcol[n, g] (Cg*RS, PQ) = w_g^T (Cg*RS, Kg) @ dout[n, g] (Kg, PQ).
    GemmBatch bt;
    bt.count = cur * G;
    bt.inner_count = G;
    bt.a_inner = kg * cgrs;
    bt.b_outer = s.k * pq;
    bt.b_inner = kg * pq;
    bt.c_outer = crs * pq;
    bt.c_inner = cgrs * pq;
    gemm_ex(true, false, cgrs, pq, kg, 1.0f, w, cgrs, dout + n0 * s.k * pq, pq, 0.0f, dcol.p, pq, bt,
            GemmEpilogue{}, stream, op);
    FL_LAUNCH(col2im_kernel, dim3(grid_for(cur * chw)), dim3(kThreads), 0, stream, dx + n0 * chw, dcol.p, init, g,
              cur);
    check_launch(op, sizes);
  }
}

void conv2d_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& s,
                            cudaStream_t stream) {
  const char* op = "conv2d_backward_weight";
  const std::string sizes = sizes_of(s);
  const int64_t G = s.groups, cg = s.c / G, kg = s.k / G, pq = s.p * s.q, rs = s.r * s.s;
  const int64_t crs = s.c * rs, cgrs = cg * rs;
  const int64_t nb = chunk_images(s.n, (crs + s.k) * pq);
  DeviceBuffer<float> col(nb * crs * pq, op, stream);    // (C*RS, nb*PQ)
  DeviceBuffer<float> dcm(nb * s.k * pq, op, stream);    // (K, nb*PQ): dout channel-major
  const Geom g = geom_of(s);
  for (int64_t n0 = 0; n0 < s.n; n0 += nb) {
    const int64_t cur = std::min(nb, s.n - n0), npq = cur * pq;
    FL_LAUNCH(im2col_kernel, dim3(grid_for(cur * crs * pq)), dim3(kThreads), 0, stream, col.p,
              x + n0 * s.c * s.h * s.w, g, cur, pq, npq);
    check_launch(op, sizes);
    FL_LAUNCH(channel_major_kernel, dim3(grid_for(cur * s.k * pq)), dim3(kThreads), 0, stream, dcm.p,
              dout + n0 * s.k * pq, cur, s.k, pq);
    check_launch(op, sizes);
    // dw_g (Kg, Cg*RS) (+)= dcm_g (Kg, nb*PQ) @ col_g^T (nb*PQ, Cg*RS), batched over groups.
    GemmBatch bt;
    bt.count = G;
    bt.a_outer = kg * npq;
    bt.b_outer = cgrs * npq;
    bt.c_outer = kg * cgrs;
    gemm_ex(false, true, kg, cgrs, npq, 1.0f, dcm.p, npq, col.p, npq, n0 == 0 ? 0.0f : 1.0f, dw, cgrs, bt,
            GemmEpilogue{}, stream, op);
  }
}

void conv2d_backward_bias(float* db, const float* dout, int64_t n, int64_t k, int64_t pq, cudaStream_t stream) {
  if (k <= 0) return;
  const std::string sizes = "dout=(" + std::to_string(n) + ", " + std::to_string(k) + ", " + std::to_string(pq) + ")";
  FL_LAUNCH(bias_grad_kernel, dim3(static_cast<unsigned>(k)), dim3(kThreads), 0, stream, db,
            n > 0 && pq > 0 ? dout : nullptr, n, k, pq);
  check_launch("conv2d_backward_bias", sizes);
}

}  // namespace fastlayers::cuda
