// The SGEMM ladder (after siboehm's SGEMM_CUDA): the steps from a naive kernel to the
// one fastlayers promotes, kept so that every step is validated (tests/test_cuda_gemm.py,
// in the emulator) and timed against cuBLAS (benchmarks/bench_cuda_gemm_ladder.py).
//
// Every rung computes C (m, n) = A (m, k) @ B (k, n), row-major and C-contiguous, for
// any m, n, k (edges bounds-checked); no transposes, alpha 1, beta 0.
//
//   0 naive           one thread per C element, consecutive threads walk down a column of
//                     C: A loads are broadcast, B/C accesses strided (uncoalesced)
//   1 coalesced       consecutive threads take consecutive columns: B and C coalesced
//   2 shared memory   32x32 tiles of A and B staged in shared memory (1024 threads)
//   3 1-D registers   64x64 tile, each thread computes 8 rows of one column (TM = 8)
//   4 2-D registers   128x128 tile, each thread an 8x8 sub-tile (outer products)
//   5 vectorised      rung 4 with float4 global loads/stores and A stored k-major in
//                     shared memory: the kernel of gemm.cu (promoted; called from here)
//   6 warp tiling     128x128 tile, 4 warps each owning a 64x64 warp tile computed as
//                     several 8x4 thread sub-tiles (registers reused across a warp tile)
//   7 double buffered rung 5's tiles with two shared buffers: the global loads of the next
//                     slice are issued into registers before the current slice's FMAs and
//                     stored to the other buffer after them, one barrier per slice
#include <cstdint>
#include <string>

#include "cuda/cuda_compat.h"
#include "cuda/gemm.h"

namespace fastlayers::cuda {
namespace {

// ---- rung 0: naive ---------------------------------------------------------------------
__global__ void rung_naive(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t j = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  if (i >= m || j >= n) return;
  float acc = 0.0f;
  for (int64_t p = 0; p < k; ++p) acc += a[i * k + p] * b[p * n + j];
  c[i * n + j] = acc;
}

// ---- rung 1: coalesced -----------------------------------------------------------------
__global__ void rung_coalesced(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  if (i >= m || j >= n) return;
  float acc = 0.0f;
  for (int64_t p = 0; p < k; ++p) acc += a[i * k + p] * b[p * n + j];
  c[i * n + j] = acc;
}

// ---- rung 2: shared-memory blocking (32x32 tiles, block 32x32) -------------------------
__global__ void rung_shared(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  constexpr int T = 32;
  FL_SHARED(float, As, [T][T]);
  FL_SHARED(float, Bs, [T][T + 1]);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * T + ty;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * T + tx;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < k; k0 += T) {
    As[ty][tx] = (i < m && k0 + tx < k) ? a[i * k + k0 + tx] : 0.0f;
    Bs[ty][tx] = (k0 + ty < k && j < n) ? b[(k0 + ty) * n + j] : 0.0f;
    __syncthreads();
    for (int p = 0; p < T; ++p) acc += As[ty][p] * Bs[p][tx];
    __syncthreads();
  }
  if (i < m && j < n) c[i * n + j] = acc;
}

// ---- rung 3: 1-D register tiling (BM = BN = 64, BK = 8, TM = 8; 512 threads) -----------
__global__ void rung_reg1d(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  constexpr int BM = 64, BN = 64, BK = 8, TM = 8;
  FL_SHARED(float, As, [BM][BK]);
  FL_SHARED(float, Bs, [BK][BN]);
  const int t = threadIdx.x;
  const int tcol = t % BN, trow = t / BN;  // trow in [0, BM / TM)
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * BM, j0 = static_cast<int64_t>(blockIdx.x) * BN;
  float acc[TM] = {};
  for (int64_t k0 = 0; k0 < k; k0 += BK) {
    {  // 512 threads load 64x8 of A and 8x64 of B: one element each
      const int ar = t / BK, ac = t % BK;
      As[ar][ac] = (i0 + ar < m && k0 + ac < k) ? a[(i0 + ar) * k + k0 + ac] : 0.0f;
      const int br = t / BN, bc = t % BN;
      Bs[br][bc] = (k0 + br < k && j0 + bc < n) ? b[(k0 + br) * n + j0 + bc] : 0.0f;
    }
    __syncthreads();
    for (int p = 0; p < BK; ++p) {
      const float bv = Bs[p][tcol];
      for (int r = 0; r < TM; ++r) acc[r] += As[trow * TM + r][p] * bv;
    }
    __syncthreads();
  }
  const int64_t j = j0 + tcol;
  for (int r = 0; r < TM; ++r) {
    const int64_t i = i0 + trow * TM + r;
    if (i < m && j < n) c[i * n + j] = acc[r];
  }
}

// ---- rung 4: 2-D register tiling (BM = BN = 128, BK = 8, TM = TN = 8; 256 threads) -----
__global__ void rung_reg2d(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k) {
  constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8, NT = (BM / TM) * (BN / TN);
  FL_SHARED(float, As, [BM][BK]);
  FL_SHARED(float, Bs, [BK][BN]);
  const int t = threadIdx.x;
  const int ty = t / (BN / TN), tx = t % (BN / TN);
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * BM, j0 = static_cast<int64_t>(blockIdx.x) * BN;
  float acc[TM][TN] = {};
  for (int64_t k0 = 0; k0 < k; k0 += BK) {
    for (int e = t; e < BM * BK; e += NT) {
      const int r = e / BK, q = e % BK;
      As[r][q] = (i0 + r < m && k0 + q < k) ? a[(i0 + r) * k + k0 + q] : 0.0f;
    }
    for (int e = t; e < BK * BN; e += NT) {
      const int r = e / BN, q = e % BN;
      Bs[r][q] = (k0 + r < k && j0 + q < n) ? b[(k0 + r) * n + j0 + q] : 0.0f;
    }
    __syncthreads();
    for (int p = 0; p < BK; ++p) {
      float ra[TM], rb[TN];
      for (int r = 0; r < TM; ++r) ra[r] = As[ty * TM + r][p];
      for (int s = 0; s < TN; ++s) rb[s] = Bs[p][tx * TN + s];
      for (int r = 0; r < TM; ++r)
        for (int s = 0; s < TN; ++s) acc[r][s] += ra[r] * rb[s];
    }
    __syncthreads();
  }
  for (int r = 0; r < TM; ++r) {
    const int64_t i = i0 + ty * TM + r;
    for (int s = 0; s < TN; ++s) {
      const int64_t j = j0 + tx * TN + s;
      if (i < m && j < n) c[i * n + j] = acc[r][s];
    }
  }
}

// ---- rung 6: warp tiling ---------------------------------------------------------------
// Block tile 128x128, BK = 16, 4 warps in a 2x2 grid each owning a 64x64 warp tile. A
// warp tile is covered in WNITER = 4 steps of 64x16 (WMITER = 1); within one, the 32
// lanes form an 8 x 4 grid of 8x4 thread sub-tiles. Each thread keeps 8 x 16 sums.
constexpr int W_BM = 128, W_BN = 128, W_BK = 16, W_WM = 64, W_WN = 64, W_WNITER = 4, W_TM = 8, W_TN = 4;
constexpr int W_WSUBN = W_WN / W_WNITER;  // 16
constexpr int W_NT = (W_BM / W_WM) * (W_BN / W_WN) * 32;  // 128

__global__ void rung_warptile(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
                              bool vec) {
  FL_SHARED(float, As, [W_BK][W_BM]);  // k-major, as in rung 5
  FL_SHARED(float, Bs, [W_BK][W_BN]);
  const int t = threadIdx.x;
  const int warp = t / 32, lane = t % 32;
  const int wr = warp / (W_BN / W_WN), wc = warp % (W_BN / W_WN);  // warp tile position
  const int lr = lane / (W_WSUBN / W_TN), lc = lane % (W_WSUBN / W_TN);  // 8 x 4 lanes
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * W_BM, j0 = static_cast<int64_t>(blockIdx.x) * W_BN;
  float acc[W_TM][W_WNITER * W_TN] = {};
  for (int64_t k0 = 0; k0 < k; k0 += W_BK) {
    // A: 128 x 16 as float4 along k (transposed into As); B: 16 x 128 as float4 along n.
    for (int q = t; q < W_BM * W_BK / 4; q += W_NT) {
      const int r = q / (W_BK / 4), kq = (q % (W_BK / 4)) * 4;
      const int64_t i = i0 + r, kg = k0 + kq;
      if (vec && i < m && kg + 3 < k) {
        const float4 v = *reinterpret_cast<const float4*>(a + i * k + kg);
        As[kq][r] = v.x;
        As[kq + 1][r] = v.y;
        As[kq + 2][r] = v.z;
        As[kq + 3][r] = v.w;
      } else {
        for (int x = 0; x < 4; ++x) As[kq + x][r] = (i < m && kg + x < k) ? a[i * k + kg + x] : 0.0f;
      }
    }
    for (int q = t; q < W_BK * W_BN / 4; q += W_NT) {
      const int r = q / (W_BN / 4), jq = (q % (W_BN / 4)) * 4;
      const int64_t kg = k0 + r, j = j0 + jq;
      if (vec && kg < k && j + 3 < n) {
        const float4 v = *reinterpret_cast<const float4*>(b + kg * n + j);
        Bs[r][jq] = v.x;
        Bs[r][jq + 1] = v.y;
        Bs[r][jq + 2] = v.z;
        Bs[r][jq + 3] = v.w;
      } else {
        for (int x = 0; x < 4; ++x) Bs[r][jq + x] = (kg < k && j + x < n) ? b[kg * n + j + x] : 0.0f;
      }
    }
    __syncthreads();
    for (int p = 0; p < W_BK; ++p) {
      float ra[W_TM], rb[W_WNITER * W_TN];
      for (int r = 0; r < W_TM; ++r) ra[r] = As[p][wr * W_WM + lr * W_TM + r];
      for (int w = 0; w < W_WNITER; ++w)
        for (int s = 0; s < W_TN; ++s) rb[w * W_TN + s] = Bs[p][wc * W_WN + w * W_WSUBN + lc * W_TN + s];
      for (int r = 0; r < W_TM; ++r)
        for (int s = 0; s < W_WNITER * W_TN; ++s) acc[r][s] += ra[r] * rb[s];
    }
    __syncthreads();
  }
  for (int r = 0; r < W_TM; ++r) {
    const int64_t i = i0 + wr * W_WM + lr * W_TM + r;
    if (i >= m) continue;
    for (int w = 0; w < W_WNITER; ++w)
      for (int s = 0; s < W_TN; ++s) {
        const int64_t j = j0 + wc * W_WN + w * W_WSUBN + lc * W_TN + s;
        if (j < n) c[i * n + j] = acc[r][w * W_TN + s];
      }
  }
}

// ---- rung 7: double buffering ----------------------------------------------------------
// dst <- p[at .. at + 4), of which the first `room` lie inside the matrix (zeros past
// them): one float4 when `vec` allows and all four are inside.
__device__ __forceinline__ void load4(float (&dst)[4], const float* p, int64_t at, int64_t room, bool vec) {
  if (vec && room >= 4) {
    const float4 v = *reinterpret_cast<const float4*>(p + at);
    dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
  } else {
    for (int x = 0; x < 4; ++x) dst[x] = x < room ? p[at + x] : 0.0f;
  }
}

// BM = BN = 128, BK = 8, TM = TN = 8, 256 threads: each thread moves one float4 of the A
// slice (4 consecutive k of one row, stored k-major) and one of the B slice (4 consecutive
// n of one k) per step. While slice s is multiplied out of buffer s % 2, slice s + 1 is
// already on its way from global memory into registers, and lands in the other buffer,
// which nobody reads during slice s: one __syncthreads per slice instead of two.
__global__ void __launch_bounds__(256)
    rung_dbuf(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool vec) {
  constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
  alignas(16) FL_SHARED(float, As, [2][BK][BM]);
  alignas(16) FL_SHARED(float, Bs, [2][BK][BN]);
  const int t = threadIdx.x;
  const int ty = t / (BN / TN), tx = t % (BN / TN);
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * BM, j0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int ar = t / (BK / 4), ak = (t % (BK / 4)) * 4;  // this thread's A group: row ar, k ak..ak+3
  const int bk = t / (BN / 4), bn = (t % (BN / 4)) * 4;  // its B group: k bk, columns bn..bn+3
  float pa[4], pb[4];                                     // the next slice, in flight
  auto fetch = [&](int64_t k0) {
    const int64_t i = i0 + ar, ka = k0 + ak, kb = k0 + bk, j = j0 + bn;
    load4(pa, a, i * k + ka, i < m ? k - ka : 0, vec);
    load4(pb, b, kb * n + j, kb < k ? n - j : 0, vec);
  };
  auto stash = [&](int buf) {
    for (int x = 0; x < 4; ++x) As[buf][ak + x][ar] = pa[x];
    for (int x = 0; x < 4; ++x) Bs[buf][bk][bn + x] = pb[x];
  };

  float acc[TM][TN] = {};
  if (k > 0) {
    fetch(0);
    stash(0);
  }
  __syncthreads();
  int buf = 0;
  for (int64_t k0 = 0; k0 < k; k0 += BK) {
    const bool more = k0 + BK < k;
    if (more) fetch(k0 + BK);
    for (int p = 0; p < BK; ++p) {
      float ra[TM], rb[TN];
      for (int r = 0; r < TM; r += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&As[buf][p][ty * TM + r]);
        ra[r] = v.x, ra[r + 1] = v.y, ra[r + 2] = v.z, ra[r + 3] = v.w;
      }
      for (int s = 0; s < TN; s += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&Bs[buf][p][tx * TN + s]);
        rb[s] = v.x, rb[s + 1] = v.y, rb[s + 2] = v.z, rb[s + 3] = v.w;
      }
      for (int r = 0; r < TM; ++r)
        for (int s = 0; s < TN; ++s) acc[r][s] = fmaf(ra[r], rb[s], acc[r][s]);
    }
    if (more) stash(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }
  const bool vec_c = n % 4 == 0 && (reinterpret_cast<uintptr_t>(c) & 15u) == 0;
  for (int r = 0; r < TM; ++r) {
    const int64_t i = i0 + ty * TM + r;
    if (i >= m) continue;
    for (int s = 0; s < TN; s += 4) {
      const int64_t j = j0 + tx * TN + s;
      if (vec_c && j + 3 < n) {
        *reinterpret_cast<float4*>(c + i * n + j) = make_float4(acc[r][s], acc[r][s + 1], acc[r][s + 2], acc[r][s + 3]);
      } else {
        for (int x = 0; x < 4; ++x)
          if (j + x < n) c[i * n + j + x] = acc[r][s + x];
      }
    }
  }
}

const char* const kRungNames[] = {
    "naive", "coalesced", "shared memory", "1-D register tiling", "2-D register tiling",
    "vectorised (promoted: fastlayers gemm)", "warp tiling", "double buffered",
};
constexpr int kRungs = sizeof(kRungNames) / sizeof(kRungNames[0]);

unsigned blocks(int64_t extent, int tile) { return static_cast<unsigned>((extent + tile - 1) / tile); }

}  // namespace

int gemm_rung_count() { return kRungs; }

const char* gemm_rung_name(int rung) { return (rung >= 0 && rung < kRungs) ? kRungNames[rung] : "?"; }

void gemm_rung(int rung, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
               cudaStream_t stream) {
  const std::string sizes = "rung " + std::to_string(rung) + ", m=" + std::to_string(m) + ", n=" +
                            std::to_string(n) + ", k=" + std::to_string(k);
  if (rung < 0 || rung >= kRungs) throw CudaError("gemm_rung (" + sizes + "): no such rung");
  if (m <= 0 || n <= 0) return;
  if (rung == 5) {
    gemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n, stream);
    return;
  }
  if (k <= 0) a = b = nullptr;  // nothing is read
  switch (rung) {
    case 0:
      FL_LAUNCH(rung_naive, dim3(blocks(m, 32), blocks(n, 32)), dim3(32, 32), 0, stream, a, b, c, m, n, k);
      break;
    case 1:
      FL_LAUNCH(rung_coalesced, dim3(blocks(n, 32), blocks(m, 32)), dim3(32, 32), 0, stream, a, b, c, m, n, k);
      break;
    case 2:
      FL_LAUNCH(rung_shared, dim3(blocks(n, 32), blocks(m, 32)), dim3(32, 32), 0, stream, a, b, c, m, n, k);
      break;
    case 3:
      FL_LAUNCH(rung_reg1d, dim3(blocks(n, 64), blocks(m, 64)), dim3(512), 0, stream, a, b, c, m, n, k);
      break;
    case 4:
      FL_LAUNCH(rung_reg2d, dim3(blocks(n, 128), blocks(m, 128)), dim3(256), 0, stream, a, b, c, m, n, k);
      break;
    default: {
      const bool vec = k % 4 == 0 && n % 4 == 0 && (reinterpret_cast<uintptr_t>(a) & 15u) == 0 &&
                       (reinterpret_cast<uintptr_t>(b) & 15u) == 0;
      if (rung == 6) {
        FL_LAUNCH(rung_warptile, dim3(blocks(n, W_BN), blocks(m, W_BM)), dim3(W_NT), 0, stream, a, b, c, m, n,
                  k, vec);
      } else {
        FL_LAUNCH(rung_dbuf, dim3(blocks(n, 128), blocks(m, 128)), dim3(256), 0, stream, a, b, c, m, n, k, vec);
      }
      break;
    }
  }
  check_launch("gemm_rung", sizes);
}

}  // namespace fastlayers::cuda
