// SGEMM on the GPU: C = alpha * op(A) @ op(B) + beta * C, row-major, any size, every
// transpose, optionally batched and with a bias/ReLU epilogue (see gemm.h).
//
// The kernel is rung 5 of the ladder in gemm_ladder.cu ("vectorised"), promoted here
// without timing it (the machine it was written on has no GPU): a block computes a
// BM x BN tile of C, stepping through K in slices of BK. Each slice of op(A) (BM x BK)
// and op(B) (BK x BN) is staged in shared memory with float4 global loads where the
// pointer, the leading dimension and the bounds allow it (scalar, zero-filled loads at the
// edges); A is stored k-major in shared memory (As[kk][i]) whatever its transpose, so the
// inner loop reads one column of As and one row of Bs into registers and does TM x TN
// FMAs per thread (2-D register tiling). The epilogue applies alpha, beta (C read only
// when beta != 0), the bias and ReLU, and writes float4 where it can.
#include "cuda/gemm.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda/cuda_compat.h"
#include "cuda/workspace.h"

#if defined(FASTLAYERS_CUDA_EMU)
#define FL_LAUNCH_BOUNDS(n)
#define FL_UNROLL
#else
#define FL_LAUNCH_BOUNDS(n) __launch_bounds__(n)
#define FL_UNROLL _Pragma("unroll")
#endif

namespace fastlayers::cuda {
namespace {

// Everything but the pointers (those go as kernel arguments, where the emulator checks
// that each lies inside a device allocation).
struct GemmDims {
  int64_t m, n, k;
  int64_t lda, ldb, ldc;
  float alpha, beta;
  GemmBatch batch;
  int64_t z_base;      // batch index of blockIdx.z == 0 (launches of at most 65535)
  bool per_row;        // epilogue bias indexed by row (else column)
  int64_t bias_inner;  // bias offset per inner batch index
  bool relu;
  bool vec_a, vec_b, vec_c;  // float4 access allowed (16-byte aligned, ld % 4 == 0)
  int64_t k_split;           // > 0: split-K, blockIdx.z computes k in [z * k_split, (z+1) * k_split)
};

// Stage the BI x BK tile [i0, i0+BI) x [k0, k0+BK) of an (ni, nk) operand into S[kk][i]
// (zeros outside the operand). Element (i, k) is p[i * ld + k] when K_CONTIG, else
// p[k * ld + i]; each thread moves groups of four along the contiguous axis, as one
// float4 where `vec` allows (16-byte aligned, ld % 4 == 0) and the group is inside.
// op(A) (m, k) is K_CONTIG unless transposed; op(B) read as (n, k) is K_CONTIG when
// transposed (B stored (n, k)).
template <int BI, int BK, int NT, bool K_CONTIG>
__device__ __forceinline__ void load_tile(float (*S)[BI], const float* __restrict__ p, int64_t ld, bool vec,
                                          int64_t ni, int64_t nk, int64_t i0, int64_t k0, int t) {
  constexpr int QUADS = BI * BK / 4;
  for (int q = t; q < QUADS; q += NT) {
    if (K_CONTIG) {  // four consecutive k of one i
      const int ii = q / (BK / 4), kq = (q % (BK / 4)) * 4;
      const int64_t i = i0 + ii, kg = k0 + kq;
      if (vec && i < ni && kg + 3 < nk) {
        const float4 v = *reinterpret_cast<const float4*>(p + i * ld + kg);
        S[kq + 0][ii] = v.x;
        S[kq + 1][ii] = v.y;
        S[kq + 2][ii] = v.z;
        S[kq + 3][ii] = v.w;
      } else {
        for (int x = 0; x < 4; ++x) S[kq + x][ii] = (i < ni && kg + x < nk) ? p[i * ld + kg + x] : 0.0f;
      }
    } else {  // four consecutive i of one k
      const int kk = q / (BI / 4), iq = (q % (BI / 4)) * 4;
      const int64_t kg = k0 + kk, i = i0 + iq;
      if (vec && kg < nk && i + 3 < ni) {
        const float4 v = *reinterpret_cast<const float4*>(p + kg * ld + i);
        S[kk][iq + 0] = v.x;
        S[kk][iq + 1] = v.y;
        S[kk][iq + 2] = v.z;
        S[kk][iq + 3] = v.w;
      } else {
        for (int x = 0; x < 4; ++x) S[kk][iq + x] = (kg < nk && i + x < ni) ? p[kg * ld + i + x] : 0.0f;
      }
    }
  }
}

__device__ __forceinline__ float finish(float acc, float old, float bias, const GemmDims& d) {
  float v = d.alpha * acc;
  if (d.beta != 0.0f) v = fmaf(d.beta, old, v);
  v += bias;
  return d.relu ? fmaxf(v, 0.0f) : v;
}

// One block: the BM x BN tile (blockIdx.x, blockIdx.y) of C for batch entry
// z_base + blockIdx.z; (BM/TM) * (BN/TN) threads, each owning a TM x TN sub-tile.
template <int BM, int BN, int BK, int TM, int TN, bool TA, bool TB>
__global__ void FL_LAUNCH_BOUNDS((BM / TM) * (BN / TN))
    gemm_tile_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                     const float* __restrict__ bias, GemmDims d) {
  static_assert(BK % 4 == 0 && BM % 4 == 0 && BN % 4 == 0 && TM % 4 == 0 && TN % 4 == 0, "tiles hold whole float4s");
  constexpr int NT = (BM / TM) * (BN / TN);
  alignas(16) FL_SHARED(float, As, [BK][BM]);  // op(A) slice, k-major
  alignas(16) FL_SHARED(float, Bs, [BK][BN]);  // op(B) slice

  // This block's matrices within the batch.
  const int64_t z = d.z_base + blockIdx.z;
  const int64_t outer = z / d.batch.inner_count, inner = z % d.batch.inner_count;
  a += outer * d.batch.a_outer + inner * d.batch.a_inner;
  b += outer * d.batch.b_outer + inner * d.batch.b_inner;
  c += outer * d.batch.c_outer + inner * d.batch.c_inner;
  if (bias != nullptr) bias += inner * d.bias_inner;

  const int t = threadIdx.x;
  const int ty = t / (BN / TN), tx = t % (BN / TN);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * BM, j0 = static_cast<int64_t>(blockIdx.y) * BN;

  float acc[TM][TN];
  FL_UNROLL
  for (int r = 0; r < TM; ++r) {
    FL_UNROLL
    for (int s = 0; s < TN; ++s) acc[r][s] = 0.0f;
  }

  // This block's range of k: all of it, or its slice under split-K.
  const int64_t k_begin = d.k_split > 0 ? z * d.k_split : 0;
  const int64_t k_end = d.k_split > 0 ? (d.k - k_begin < d.k_split ? d.k : k_begin + d.k_split) : d.k;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    load_tile<BM, BK, NT, !TA>(As, a, d.lda, d.vec_a, d.m, k_end, i0, k0, t);
    load_tile<BN, BK, NT, TB>(Bs, b, d.ldb, d.vec_b, d.n, k_end, j0, k0, t);
    __syncthreads();
    FL_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      float ra[TM], rb[TN];
      // 128-bit shared-memory reads (rows of As/Bs are 16-byte aligned: BM, BN % 4 == 0).
      FL_UNROLL
      for (int r = 0; r < TM; r += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&As[kk][ty * TM + r]);
        ra[r] = v.x;
        ra[r + 1] = v.y;
        ra[r + 2] = v.z;
        ra[r + 3] = v.w;
      }
      FL_UNROLL
      for (int s = 0; s < TN; s += 4) {
        const float4 v = *reinterpret_cast<const float4*>(&Bs[kk][tx * TN + s]);
        rb[s] = v.x;
        rb[s + 1] = v.y;
        rb[s + 2] = v.z;
        rb[s + 3] = v.w;
      }
      FL_UNROLL
      for (int r = 0; r < TM; ++r) {
        FL_UNROLL
        for (int s = 0; s < TN; ++s) acc[r][s] = fmaf(ra[r], rb[s], acc[r][s]);
      }
    }
    __syncthreads();  // the next slice overwrites As/Bs
  }

  // Epilogue: float4 along the row where C allows it, scalars at the right edge. The
  // loops have constant trip counts (conditions, not breaks) so that they unroll and acc
  // stays in registers.
  FL_UNROLL
  for (int r = 0; r < TM; ++r) {
    const int64_t i = i0 + ty * TM + r;
    if (i < d.m) {
      float* crow = c + i * d.ldc;
      const float brow = (bias != nullptr && d.per_row) ? bias[i] : 0.0f;
      FL_UNROLL
      for (int s = 0; s < TN; s += 4) {
        const int64_t j = j0 + tx * TN + s;
        if (d.vec_c && j + 3 < d.n) {
          float4 old = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          if (d.beta != 0.0f) old = *reinterpret_cast<const float4*>(crow + j);
          float4 bv = make_float4(brow, brow, brow, brow);
          if (bias != nullptr && !d.per_row) bv = make_float4(bias[j], bias[j + 1], bias[j + 2], bias[j + 3]);
          float4 v;
          v.x = finish(acc[r][s + 0], old.x, bv.x, d);
          v.y = finish(acc[r][s + 1], old.y, bv.y, d);
          v.z = finish(acc[r][s + 2], old.z, bv.z, d);
          v.w = finish(acc[r][s + 3], old.w, bv.w, d);
          *reinterpret_cast<float4*>(crow + j) = v;
        } else {
          FL_UNROLL
          for (int x = 0; x < 4; ++x) {
            if (j + x < d.n) {
              const float old = d.beta != 0.0f ? crow[j + x] : 0.0f;
              const float bv = (bias != nullptr && !d.per_row) ? bias[j + x] : brow;
              crow[j + x] = finish(acc[r][s + x], old, bv, d);
            }
          }
        }
      }
    }
  }
}

// Split-K's second pass: C = epilogue(alpha * the sum of the `splits` partial products,
// in slice order (deterministic)), one thread per element of C (m x n, not batched).
__global__ void split_k_reduce_kernel(float* __restrict__ c, const float* __restrict__ partial,
                                      const float* __restrict__ bias, GemmDims d, int64_t splits) {
  const int64_t mn = d.m * d.n;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < mn; e += step) {
    const int64_t i = e / d.n, j = e % d.n;
    float acc = 0.0f;
    for (int64_t s = 0; s < splits; ++s) acc += partial[s * mn + e];
    const float old = d.beta != 0.0f ? c[i * d.ldc + j] : 0.0f;
    const float bv = bias == nullptr ? 0.0f : bias[d.per_row ? i : j];
    c[i * d.ldc + j] = finish(acc, old, bv, d);
  }
}

int g_force_tile = 0;
int g_force_split = 0;

// Split-K (see gemm_ex): at least this long a k, at most this many partial floats.
constexpr int64_t kSplitMinK = 2048;
constexpr int64_t kSplitMaxFloats = int64_t(1) << 26;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <int BM, int BN, int BK, int TM, int TN>
void launch_tiles(bool ta, bool tb, const float* a, const float* b, float* c, const float* bias,
                  const GemmDims& d0, cudaStream_t stream, const char* op, const std::string& sizes) {
  using Kernel = void (*)(const float*, const float*, float*, const float*, GemmDims);
  Kernel kernel = ta ? (tb ? &gemm_tile_kernel<BM, BN, BK, TM, TN, true, true>
                           : &gemm_tile_kernel<BM, BN, BK, TM, TN, true, false>)
                     : (tb ? &gemm_tile_kernel<BM, BN, BK, TM, TN, false, true>
                           : &gemm_tile_kernel<BM, BN, BK, TM, TN, false, false>);
  const int64_t gx = (d0.m + BM - 1) / BM, gy = (d0.n + BN - 1) / BN;
  if (gx > 2147483647 || gy > 65535) {
    throw CudaError(std::string(op) + " (" + sizes + "): too large for one launch (" + std::to_string(gx) +
                    " x " + std::to_string(gy) + " tiles; at most 2^31-1 x 65535)");
  }
  const dim3 block((BM / TM) * (BN / TN));
  for (int64_t z0 = 0; z0 < d0.batch.count; z0 += 65535) {
    GemmDims d = d0;
    d.z_base = z0;
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                    static_cast<unsigned>(std::min<int64_t>(65535, d0.batch.count - z0)));
    FL_LAUNCH(kernel, grid, block, 0, stream, a, b, c, bias, d);
    check_launch(op, sizes);
  }
}

}  // namespace

int gemm_force_tile(int mode) {
  const int old = g_force_tile;
  g_force_tile = mode;
  return old;
}

int gemm_force_split(int splits) {
  const int old = g_force_split;
  g_force_split = splits;
  return old;
}

void gemm_ex(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
             int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
             const GemmBatch& batch, const GemmEpilogue& epi, cudaStream_t stream, const char* op) {
  if (m <= 0 || n <= 0 || batch.count <= 0) return;
  const std::string sizes = "m=" + std::to_string(m) + ", n=" + std::to_string(n) + ", k=" +
                            std::to_string(k) + (batch.count > 1 ? ", batch=" + std::to_string(batch.count) : "") +
                            (trans_a ? ", trans_a" : "") + (trans_b ? ", trans_b" : "");
  GemmDims d{};
  d.m = m;
  d.n = n;
  d.k = alpha == 0.0f ? 0 : k;
  d.lda = lda;
  d.ldb = ldb;
  d.ldc = ldc;
  d.alpha = alpha;
  d.beta = beta;
  d.batch = batch;
  if (d.batch.inner_count < 1) d.batch.inner_count = 1;
  d.per_row = epi.per_row;
  d.bias_inner = epi.bias_inner;
  d.relu = epi.relu;
  d.vec_a = aligned16(a) && lda % 4 == 0 && batch.a_outer % 4 == 0 && batch.a_inner % 4 == 0;
  d.vec_b = aligned16(b) && ldb % 4 == 0 && batch.b_outer % 4 == 0 && batch.b_inner % 4 == 0;
  d.vec_c = aligned16(c) && ldc % 4 == 0 && batch.c_outer % 4 == 0 && batch.c_inner % 4 == 0;
  if (alpha == 0.0f) k = 0;      // BLAS: A and B are not read (NaN in them does not leak)
  if (k <= 0) a = b = nullptr;  // nothing is read; do not hand the kernel a dangling pointer

  // Split-K: few tiles of C over a long k (a weight gradient: m x n = K x C*R*S, k =
  // N*P*Q) would leave most of the GPU idle, each block running the whole of k. Then k is
  // cut into slices that separate blocks multiply into a workspace (alpha 1, no epilogue),
  // and a second pass sums the slices in order and applies alpha, beta, bias and ReLU.
  const int64_t tiles64 = ((m + 63) / 64) * ((n + 63) / 64) * batch.count;
  int64_t splits = g_force_split;
  if (splits == 0 && batch.count == 1 && k >= kSplitMinK && tiles64 < 128) {
    splits = std::min<int64_t>((256 + tiles64 - 1) / tiles64, k / 1024);  // about 256 blocks
  }
  if (splits > 1 && batch.count == 1 && k > 0) {
    const int64_t k_split = ((k + splits - 1) / splits + 15) / 16 * 16;  // whole BK = 16 slices
    splits = (k + k_split - 1) / k_split;
    if (splits > 1 && splits * m * n <= kSplitMaxFloats) {
      DeviceBuffer<float> part(splits * m * n, op, stream);
      GemmDims dp = d;
      dp.alpha = 1.0f;
      dp.beta = 0.0f;
      dp.relu = false;
      dp.ldc = n;
      dp.vec_c = n % 4 == 0 && aligned16(part.p);
      dp.batch = GemmBatch{};
      dp.batch.count = splits;
      dp.batch.c_outer = m * n;
      dp.k_split = k_split;
      launch_tiles<64, 64, 16, 4, 4>(trans_a, trans_b, a, b, part.p, nullptr, dp, stream, op, sizes);
      const int64_t blocks = std::min<int64_t>((m * n + 255) / 256, 4096);
      FL_LAUNCH(split_k_reduce_kernel, static_cast<unsigned>(blocks), 256, 0, stream, c, part.p, epi.bias, d,
                splits);
      check_launch(op, sizes);
      return;
    }
  }

  // The 128x128 tile needs enough tiles to fill the GPU (about two waves on a 132-SM
  // H100/H200); smaller problems get the 64x64 tile and four times more blocks.
  const int64_t big_tiles = ((m + 127) / 128) * ((n + 127) / 128) * batch.count;
  const bool big = g_force_tile == 2 || (g_force_tile == 0 && big_tiles >= 264);
  if (big) {
    launch_tiles<128, 128, 8, 8, 8>(trans_a, trans_b, a, b, c, epi.bias, d, stream, op, sizes);
  } else {
    launch_tiles<64, 64, 16, 4, 4>(trans_a, trans_b, a, b, c, epi.bias, d, stream, op, sizes);
  }
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          cudaStream_t stream) {
  gemm_ex(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, GemmBatch{}, GemmEpilogue{}, stream,
          "gemm");
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                          int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                          int64_t batch, cudaStream_t stream) {
  GemmBatch bt;
  bt.count = batch;
  bt.a_outer = stride_a;
  bt.b_outer = stride_b;
  bt.c_outer = stride_c;
  gemm_ex(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bt, GemmEpilogue{}, stream,
          "gemm_strided_batched");
}

}  // namespace fastlayers::cuda
