// Fully connected layer on the GPU: forward and backward as GEMMs (gemm.cu) plus two
// small kernels, the ReLU mask of the upstream gradient and the bias gradient's column sum.
#include "cuda/linear.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda/cuda_compat.h"
#include "cuda/gemm.h"
#include "cuda/workspace.h"

namespace fastlayers::cuda {
namespace {

// dz[i] = y[i] > 0 ? dout[i] : 0 over `count` elements: float4 body (when every pointer
// is 16-byte aligned), scalar tail, grid-stride loops.
__global__ void relu_mask_kernel(float* __restrict__ dz, const float* __restrict__ dout,
                                 const float* __restrict__ y, int64_t count, bool vec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t start = 0;
  if (vec) {
    const int64_t quads = count / 4;
    for (int64_t q = tid; q < quads; q += stride) {
      const float4 g = reinterpret_cast<const float4*>(dout)[q];
      const float4 v = reinterpret_cast<const float4*>(y)[q];
      reinterpret_cast<float4*>(dz)[q] =
          make_float4(v.x > 0.0f ? g.x : 0.0f, v.y > 0.0f ? g.y : 0.0f, v.z > 0.0f ? g.z : 0.0f,
                      v.w > 0.0f ? g.w : 0.0f);
    }
    start = quads * 4;
  }
  for (int64_t i = start + tid; i < count; i += stride) dz[i] = y[i] > 0.0f ? dout[i] : 0.0f;
}

// db[j] = sum_i dz[i, j] for dz (rows, cols): a block of 32 x 8 threads owns 32 columns;
// its 8 rows of threads stride down the rows (coalesced across the 32 columns) and
// combine their partial sums through shared memory. One writer per db element.
constexpr int kColTile = 32, kRowThreads = 8;
__global__ void column_sum_kernel(float* __restrict__ db, const float* __restrict__ dz, int64_t rows,
                                  int64_t cols) {
  FL_SHARED(float, part, [kRowThreads][kColTile + 1]);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColTile + tx;
  float acc = 0.0f;
  if (j < cols) {
    for (int64_t i = ty; i < rows; i += kRowThreads) acc += dz[i * cols + j];
  }
  part[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && j < cols) {
    float s = 0.0f;
    for (int r = 0; r < kRowThreads; ++r) s += part[r][tx];
    db[j] = s;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

std::string sizes_of(int64_t n, int64_t in, int64_t out, bool relu) {
  return "n=" + std::to_string(n) + ", in=" + std::to_string(in) + ", out=" + std::to_string(out) +
         (relu ? ", relu" : "");
}

}  // namespace

void linear_forward(float* y, const float* x, const float* w, const float* b, int64_t n, int64_t in,
                    int64_t out, bool relu, cudaStream_t stream) {
  GemmEpilogue epi;
  epi.bias = b;
  epi.per_row = false;  // one bias per output feature: a column of y
  epi.relu = relu;
  gemm_ex(false, true, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out, GemmBatch{}, epi, stream, "linear_forward");
}

void linear_backward(float* dx, float* dw, float* db, const float* y, const float* dout, const float* x,
                     const float* w, int64_t n, int64_t in, int64_t out, bool relu, cudaStream_t stream) {
  const std::string sizes = sizes_of(n, in, out, relu);
  const char* op = "linear_backward";
  const int64_t count = n * out;
  // dz (n, out): dout itself, or masked by the ReLU into a workspace.
  DeviceBuffer<float> ws(relu ? count : 0, op, stream);
  const float* dz = dout;
  if (relu && count > 0) {
    const bool vec = aligned16(ws.p) && aligned16(dout) && aligned16(y);
    const int threads = 256;
    const int64_t work = vec ? (count + 3) / 4 : count;
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>((work + threads - 1) / threads, 65535));
    FL_LAUNCH(relu_mask_kernel, dim3(grid), dim3(threads), 0, stream, ws.p, dout, y, count, vec);
    check_launch(op, sizes);
    dz = ws.p;
  }
  if (dx != nullptr) {
    gemm_ex(false, false, n, in, out, 1.0f, dz, out, w, in, 0.0f, dx, in, GemmBatch{}, GemmEpilogue{}, stream, op);
  }
  gemm_ex(true, false, out, in, n, 1.0f, dz, out, x, in, 0.0f, dw, in, GemmBatch{}, GemmEpilogue{}, stream, op);
  if (db != nullptr && out > 0) {
    const unsigned grid = static_cast<unsigned>((out + kColTile - 1) / kColTile);
    FL_LAUNCH(column_sum_kernel, dim3(grid), dim3(kColTile, kRowThreads), 0, stream, db, n > 0 ? dz : nullptr, n,
              out);
    check_launch(op, sizes);
  }
}

}  // namespace fastlayers::cuda
