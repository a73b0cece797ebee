// 2-D convolution on the CPU: implicit GEMM on the BLIS micro-kernel (cpu/gemm_*).
//
// No im2col matrix is ever built. The GEMM
//   forward        out_g (Kg, pixels) = W_g (Kg, CgRS) @ col_g (CgRS, pixels)
// runs panel by panel (NR output columns): the weights are packed once per call, and
// for each panel the im2col rows are produced straight in the micro-kernel's packed-B
// layout (or read in place) from a re-laid-out copy of the input, so no bounds are
// tested in the inner loops. Two layouts, chosen per call:
//
//   batch-blocked  (batch >= NR images, groups 1): NR images of a pixel are
//                  contiguous, so an output pixel of NR images is one panel, its im2col
//                  rows are already a packed panel (read in place), and taps that fall
//                  in the padding are skipped exactly (with AVX-512, one batch-reduce
//                  call per pixel and tile of output channels covers all its kernel
//                  rows). Rows of the image are processed in windows of a few MB, one
//                  whole window per thread.
//   NCHW panels    (other batches, and images left over): NR consecutive output pixels
//                  per panel, gathered by a few masked loads per row from a zero-padded
//                  copy whose rows are split by the horizontal stride into phases (so
//                  that consecutive output pixels read consecutive elements).
//
//   backward-data  stride 1: the forward of dout with the flipped, transposed kernel
//                  (dx = conv(dout, W'), W'[c, k] = W[k, c] rotated 180 degrees, padding
//                  d*(k-1) - pad); stride > 1: dcol = W_g^T @ dout, scattered by col2im.
//   backward-wt    dW_g (Kg, CgRS) += dout_g @ col_g^T as dot products along the pixels
//                  (6 x 4 tiles, conv_impl.h): both operands are contiguous along the
//                  reduction, so unlike a GEMM it needs no transposed packing.
//
// A 1x1 convolution with stride 1 and no padding is a plain GEMM per image (x is the
// im2col matrix). Depthwise convolutions (groups == C > 1) run a direct kernel.
//
// Threads: panels, pixel blocks or whole windows are shared out statically; each thread
// has its own buffers and a private dW summed at the end, so results do not depend on
// scheduling. Workspace is bounded (a few MB per thread), never N*C*R*S*P*Q.
#include "cpu/conv.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common/cpu_features.h"
#include "common/dispatch.h"
#include "common/error.h"
#include "common/scratch.h"
#include "common/threads.h"
#include "cpu/conv_kernels.h"
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"

namespace fastlayers {
namespace {

using conv_detail::ConvKernels;
using conv_detail::PanelPlan;
using conv_detail::PanelRun;
using gemm_detail::KernelInfo;

// The GEMM micro-kernel and packing routines of the active SIMD path (as gemm.cpp picks
// them) and this family's loops for the same path: their panel widths must agree.
const KernelInfo& gemm_kernel() { return gemm_detail::active_kernel(); }

const ConvKernels& conv_kernels() { return FL_SIMD_SELECT(conv_detail::conv_kernels); }

float* workspace(size_t count) {
  thread_local ScratchBuffer ws;
  return ws.get(count);
}
float* partial_workspace(size_t count) {
  thread_local ScratchBuffer ws;
  return ws.get(count);
}

// Hands out consecutive 64-byte aligned pieces of one workspace.
class Carver {
 public:
  static size_t aligned(size_t n) { return (n + 15) / 16 * 16; }
  explicit Carver(float* base) : p_(base) {}
  float* take(size_t n) {
    float* r = p_;
    p_ += aligned(n);
    return r;
  }

 private:
  float* p_;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Sizes derived from a Conv2dShape.
struct Dims {
  int64_t cg, kg;  // channels per group in / out
  int64_t crs;     // rows of the im2col matrix: Cg * R * S
  int64_t hw, pq;  // input / output pixels per channel
  bool is_1x1;     // 1x1, stride 1, no padding: x is the im2col matrix
};

Dims dims_of(const Conv2dShape& sh) {
  Dims d;
  d.cg = sh.c / sh.groups;
  d.kg = sh.k / sh.groups;
  d.crs = d.cg * sh.r * sh.s;
  d.hw = sh.h * sh.w;
  d.pq = sh.p * sh.q;
  d.is_1x1 = sh.r == 1 && sh.s == 1 && sh.stride_h == 1 && sh.stride_w == 1 && sh.pad_top == 0 &&
             sh.pad_left == 0 && sh.p == sh.h && sh.q == sh.w;
  return d;
}

// ---------------------------------------------------------------------------------
// The input as the packing routines read it: channel planes of hp rows with the zero
// padding materialised, each row stored as `phases` = stride_w interleaved phase rows
// of wq columns (padded column xc at (xc % phases)*wq + xc / phases). Then output pixel
// (oh, ow) and kernel tap (r, s) read
//   data[n*image + c*plane + (oh*stride_h + r*dil_h)*pitch + ow + col_off(s)]
// col_off(s) = ((s*dil_w) % phases)*wq + (s*dil_w) / phases: consecutive output pixels
// read consecutive elements whatever the stride, and no bounds are tested. When the
// convolution reads no padding and has stride_w 1, the input itself is used.
// ---------------------------------------------------------------------------------

struct SourceGeometry {
  int64_t hp, wp;  // padded rows / columns the windows reach
  int64_t phases;  // stride_w
  int64_t wq;      // columns per phase row: ceil(wp / phases)
  bool direct;     // x itself (no padding, stride_w 1): pitch W, plane H*W
  int64_t pitch, plane, image;
};

SourceGeometry source_geometry(const Conv2dShape& sh) {
  SourceGeometry g;
  g.hp = (sh.p - 1) * sh.stride_h + (sh.r - 1) * sh.dil_h + 1;
  g.wp = (sh.q - 1) * sh.stride_w + (sh.s - 1) * sh.dil_w + 1;
  g.phases = sh.stride_w;
  g.wq = ceil_div(g.wp, g.phases);
  g.direct = sh.pad_top == 0 && sh.pad_left == 0 && sh.stride_w == 1 && g.hp <= sh.h && g.wp <= sh.w;
  g.pitch = g.direct ? sh.w : g.phases * g.wq;
  g.plane = g.direct ? sh.h * sh.w : g.hp * g.pitch;
  g.image = sh.c * g.plane;
  return g;
}

// Padded copy budget (floats) for one chunk of images. One thread: 1 MB, so that the
// copy is still in L2 when the panels read it (AlexNet conv1, one 621 KB image per
// chunk: forward 3-7% and weight gradient 5% faster than with 8 MB chunks left in L3).
// Several threads: 8 MB, because each chunk costs two fork/join barriers, and on a
// shared machine a barrier waits for any thread that has lost its core (AlexNet conv1
// at 2 threads, 1-image chunks: 6x slower).
constexpr int64_t kPadChunkFloats1 = 256 * 1024;
constexpr int64_t kPadChunkFloatsN = 2 << 20;

int64_t images_per_chunk(const Conv2dShape& sh, const SourceGeometry& g, int nt) {
  if (g.direct) return sh.n;
  const int64_t budget = nt == 1 ? kPadChunkFloats1 : kPadChunkFloatsN;
  return std::max<int64_t>(1, std::min<int64_t>(sh.n, budget / std::max<int64_t>(g.image, 1)));
}

// xp (nb, C, hp, pitch) <- images [n0, n0 + nb) of x (N, C, H, W) with its zero padding,
// in the phase layout above.
void pad_chunk(float* xp, const float* x, const Conv2dShape& sh, const SourceGeometry& g, int64_t n0,
               int64_t nb, int nt) {
  const int64_t planes = nb * sh.c;
  const int64_t left = std::min(sh.pad_left, g.wp);
  const int64_t copy_w = std::clamp<int64_t>(g.wp - sh.pad_left, 0, sh.w);
  const ConvKernels& ck = conv_kernels();
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && planes > 1)
  for (int64_t i = 0; i < planes; ++i) {
    const float* src = x + (n0 * sh.c + i) * sh.h * sh.w;
    float* dst = xp + i * g.plane;
    for (int64_t y = 0; y < g.hp; ++y) {
      float* drow = dst + y * g.pitch;
      const int64_t ih = y - sh.pad_top;
      if (ih < 0 || ih >= sh.h) {
        std::memset(drow, 0, g.pitch * sizeof(float));
        continue;
      }
      const float* srow = src + ih * sh.w;
      if (g.phases == 1) {
        std::memset(drow, 0, left * sizeof(float));
        std::memcpy(drow + left, srow, copy_w * sizeof(float));
        std::memset(drow + left + copy_w, 0, (g.pitch - left - copy_w) * sizeof(float));
        continue;
      }
      // Columns [jlo, jhi) of every phase row read the image: one vectorised split
      // (AlexNet conv1: the scalar strided loop was 4% of forward and weight gradient).
      const int64_t P = g.phases;
      const int64_t end_col = std::min(left + copy_w, g.wp);  // padded columns [left, end_col)
      const int64_t jlo = ceil_div(sh.pad_left, P), jhi = std::min(g.wq, end_col / P);
      const bool split = jhi > jlo;
      if (split) ck.deinterleave(drow + jlo, g.wq, srow + (jlo * P - sh.pad_left), P, jhi - jlo);
      for (int64_t ph = 0; ph < g.phases; ++ph) {
        // Phase row ph holds padded columns j*phases + ph; the image's are those with
        // 0 <= j*phases + ph - pad_left < W (and < wp). [jlo, jhi) lies inside them.
        float* prow = drow + ph * g.wq;
        const int64_t first = ph >= left ? 0 : ceil_div(left - ph, P);
        const int64_t last = end_col > ph ? std::min(g.wq, ceil_div(end_col - ph, P)) : 0;
        const int64_t j0 = std::min(first, g.wq), j1 = std::max(j0, last);
        for (int64_t j = 0; j < j0; ++j) prow[j] = 0.0f;
        const float* s0 = srow + (j0 * P + ph - sh.pad_left);
        for (int64_t j = j0; j < (split ? jlo : j1); ++j) prow[j] = s0[(j - j0) * P];
        for (int64_t j = split ? jhi : j1; j < j1; ++j) prow[j] = s0[(j - j0) * P];
        for (int64_t j = j1; j < g.wq; ++j) prow[j] = 0.0f;
      }
    }
  }
}

// row_off[(c*R + r)*S + s]: where im2col row (c, r, s) starts, relative to channel 0.
std::vector<int64_t> row_offsets(const Conv2dShape& sh, const Dims& d, const SourceGeometry& g) {
  std::vector<int64_t> off(d.crs);
  for (int64_t c = 0; c < d.cg; ++c)
    for (int64_t r = 0; r < sh.r; ++r)
      for (int64_t s = 0; s < sh.s; ++s) {
        const int64_t xs = s * sh.dil_w;
        off[(c * sh.r + r) * sh.s + s] =
            c * g.plane + r * sh.dil_h * g.pitch + (xs % g.phases) * g.wq + xs / g.phases;
      }
  return off;
}

// The plan of the nr columns [col0, col0 + nr) of a chunk (column = image * PQ + pixel);
// columns at or past `total` are zero.
void build_plan(PanelPlan& pl, int64_t col0, int64_t total, const Conv2dShape& sh, int64_t pq,
                const SourceGeometry& g, int nr, int lanes) {
  pl.ncols = nr;
  pl.nruns = 0;
  pl.gather_ok = true;
  bool contiguous = true;
  // (n, oh, ow) of column col0, then stepped along without divisions.
  int64_t n = col0 / pq, oh = (col0 % pq) / sh.q, ow = (col0 % pq) % sh.q;
  const int64_t row_step = sh.stride_h * g.pitch;
  int64_t base = n * g.image + oh * row_step;  // offset of (n, oh, 0)
  const int valid = static_cast<int>(std::clamp<int64_t>(total - col0, 0, nr));
  for (int j = 0; j < valid; ++j) {
    const int64_t off = base + ow;  // the phase layout makes pixels consecutive
    pl.off[j] = off;
    if (j > 0 && off != pl.off[0] + j) contiguous = false;
    if (off > INT32_MAX) pl.gather_ok = false;
    PanelRun* last = pl.nruns ? &pl.runs[pl.nruns - 1] : nullptr;
    if (last && last->j0 + last->len == j && last->off + last->len == off && j % lanes != 0) {
      ++last->len;
    } else {
      pl.runs[pl.nruns++] = PanelRun{j, 1, off, j / lanes, 0u, off - j % lanes};
    }
    if (++ow == sh.q) {
      ow = 0;
      if (++oh == sh.p) {
        oh = 0;
        ++n;
        base = n * g.image;
      } else {
        base += row_step;
      }
    }
  }
  for (int j = valid; j < nr; ++j) pl.off[j] = -1;
  if (valid < nr) contiguous = false;
  for (int r = 0; r < pl.nruns; ++r) {
    PanelRun& run = pl.runs[r];
    const uint64_t bits = (uint64_t{1} << run.len) - 1;
    run.mask = static_cast<uint32_t>(bits << (run.j0 % lanes));
  }
  pl.contiguous = contiguous;
}

// ---------------------------------------------------------------------------------
// Forward: implicit GEMM.
// ---------------------------------------------------------------------------------

void implicit_forward(float* out, const float* x, const float* w, const float* bias,
                      const Conv2dShape& sh, int nt) {
  const Dims d = dims_of(sh);
  const KernelInfo& gk = gemm_kernel();
  const ConvKernels& ck = conv_kernels();
  FL_CHECK(ck.nr == gk.nr, "conv2d: internal error: panel widths differ (", ck.nr, " vs ", gk.nr, ")");
  const int MR = gk.mr, NR = gk.nr;
  const int64_t G = sh.groups, Kg = d.kg, crs = d.crs;
  // The bias rides along as one more depth row: a column of A holding it and a row of
  // ones in the B panel, so the micro-kernel adds it (one step of kc) instead of a
  // pass over the output panel afterwards.
  const int64_t depth = crs + (bias ? 1 : 0);
  // Depth blocks of the im2col rows: KC rows of an NR-wide panel stay in L1. (AlexNet
  // conv1, depth 364 in one block: its 46 KB panel overflows a 32 KB L1, yet two or
  // three blocks are no faster; the micro-kernel's B loads are not the bottleneck.)
  const int64_t kc_blocks = ceil_div(depth, gk.kc);
  const int64_t kc_max = ceil_div(depth, kc_blocks);
  const int64_t mpad = round_up(Kg, MR);

  const SourceGeometry g = source_geometry(sh);
  const int64_t chunk = images_per_chunk(sh, g, nt);
  const std::vector<int64_t> row_off = row_offsets(sh, d, g);

  // Workspace: packed weights (G, kc blocks, Kg/MR panels of MR x kc), the padded chunk,
  // and per thread one B micro-panel (kc_max, NR) and one C panel (mpad, NR).
  const size_t apack_n = Carver::aligned(static_cast<size_t>(G * mpad * depth));
  const size_t wb_n = bias ? Carver::aligned(static_cast<size_t>(sh.k * depth)) : 0;
  const size_t pad_n = g.direct ? 0 : Carver::aligned(static_cast<size_t>(chunk * g.image));
  const size_t thread_n = Carver::aligned(static_cast<size_t>(kc_max * NR)) +
                          Carver::aligned(static_cast<size_t>(mpad * NR));
  Carver carve(workspace(apack_n + wb_n + pad_n + thread_n * nt));
  float* apack = carve.take(apack_n);
  float* wb = carve.take(wb_n);
  float* xp = carve.take(pad_n);
  float* thread_bufs = carve.take(thread_n * nt);

  // The weights, packed once: W_g (Kg, CgRS) row-major, with the bias as a last column
  // (wb (K, depth)) when there is one.
  const float* wsrc = w;
  if (bias) {
    for (int64_t k = 0; k < sh.k; ++k) {
      std::memcpy(wb + k * depth, w + k * crs, crs * sizeof(float));
      wb[k * depth + crs] = bias[k];
    }
    wsrc = wb;
  }
  for (int64_t gi = 0; gi < G; ++gi)
    for (int64_t pc = 0; pc < depth; pc += kc_max)
      gk.pack_a(apack + gi * mpad * depth + pc * mpad, wsrc + gi * Kg * depth + pc, depth, 1, Kg,
                std::min(kc_max, depth - pc));

  for (int64_t n0 = 0; n0 < sh.n; n0 += chunk) {
    const int64_t nb = std::min(chunk, sh.n - n0);
    const float* src = x + n0 * sh.c * d.hw;
    if (!g.direct) {
      pad_chunk(xp, x, sh, g, n0, nb, nt);
      src = xp;
    }
    const int64_t total = nb * d.pq;
    const int64_t panels = ceil_div(total, NR);
    float* out0 = out + n0 * sh.k * d.pq;

#pragma omp parallel num_threads(nt) if (nt > 1 && panels > 1)
    {
      float* bpanel = thread_bufs + thread_n * omp_get_thread_num();
      float* cpanel = bpanel + Carver::aligned(static_cast<size_t>(kc_max * NR));
      PanelPlan plan;
#pragma omp for schedule(static)
      for (int64_t jp = 0; jp < panels; ++jp) {
        const int64_t col0 = jp * NR;
        build_plan(plan, col0, total, sh, d.pq, g, NR, ck.lanes);
        const int64_t valid = std::min<int64_t>(NR, total - col0);
        // A panel inside one image is written in place (its pixels are consecutive in
        // out); one that straddles two images goes through cpanel and is scattered.
        const int64_t n_first = col0 / d.pq, pix0 = col0 % d.pq;
        const bool in_place = (col0 + valid - 1) / d.pq == n_first;
        for (int64_t gi = 0; gi < G; ++gi) {
          const float* sg = src + gi * d.cg * g.plane;
          const float* ag = apack + gi * mpad * depth;
          float* cbase = in_place ? out0 + (n_first * sh.k + gi * Kg) * d.pq + pix0 : cpanel;
          const int64_t ldc = in_place ? d.pq : NR;
          const int ncols = in_place ? static_cast<int>(valid) : NR;
          for (int64_t pc = 0; pc < depth; pc += kc_max) {
            const int64_t kc = std::min(kc_max, depth - pc);
            const int64_t rows = std::min(kc, crs - pc);  // im2col rows; the rest is the ones row
            ck.pack_rows(bpanel, NR, sg, row_off.data() + pc, rows, plan);
            if (rows < kc)
              for (int t = 0; t < NR; ++t) bpanel[rows * NR + t] = 1.0f;
            for (int64_t ir = 0; ir < Kg; ir += MR) {
              const int mr = static_cast<int>(std::min<int64_t>(MR, Kg - ir));
              gk.micro(kc, ag + pc * mpad + ir * kc, bpanel, cbase + ir * ldc, ldc, 1, mr, ncols, 1.0f,
                       pc == 0 ? 0.0f : 1.0f);
            }
          }
          if (in_place) continue;
          // Scatter the panel (Kg, valid) to the images it covers.
          for (int64_t j = 0; j < valid;) {
            const int64_t col = col0 + j, n = col / d.pq, pix = col % d.pq;
            const int64_t len = std::min(valid - j, d.pq - pix);
            float* o = out0 + (n * sh.k + gi * Kg) * d.pq + pix;
            for (int64_t k = 0; k < Kg; ++k) {
              const float* c = cpanel + k * NR + j;
              float* orow = o + k * d.pq;
              for (int64_t t = 0; t < len; ++t) orow[t] = c[t];
            }
            j += len;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------
// Weight gradient: dot products along the pixels.
// ---------------------------------------------------------------------------------

// Columns per block: the reduction length of one pass of a 6 x 4 tile (its horizontal
// sums cost about as much as 2 steps of the tile, so longer is better) and the width
// of the dout block (Kg, B) that the tiles stream from L2 (kDwBlockFloats at most,
// half of L2). AlexNet conv1 (Kg 96): 1280 columns and groups of 16 rows are 4-5%
// faster than 512 and 32; 1024 or 2048 columns are not.
constexpr int64_t kDwBlockMin = 512;
constexpr int64_t kDwBlockMax = 1280;
constexpr int64_t kDwBlockFloats = 128 * 1024;
constexpr int kDwRows = 6;  // dout rows per tile
constexpr int kDwCols = 4;  // im2col rows per tile
// im2col rows packed at once by the NCHW weight gradient (16 x 1280 floats: 80 KB, L2).
constexpr int64_t kDwGroup = 16;

// Rows of the weight-gradient tile that starts at dout row i0 of Kg: tiles of 6, with
// the remainder spread so that no tile is much thinner than the others (a 2-row tile
// does 8 FMAs for 6 loads).
int dw_tile_rows(int64_t Kg, int64_t i0) {
  const int64_t tiles = ceil_div(Kg, kDwRows);
  const int64_t base = Kg / tiles, extra = Kg % tiles;  // the first `extra` tiles get base + 1
  const int64_t t = i0 < extra * (base + 1) ? i0 / (base + 1) : extra + (i0 - extra * (base + 1)) / base;
  return static_cast<int>(t < extra ? base + 1 : base);
}

void implicit_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& sh,
                              int nt) {
  const Dims d = dims_of(sh);
  const ConvKernels& ck = conv_kernels();
  const int NR = ck.nr;
  const int64_t G = sh.groups, Kg = d.kg, crs = d.crs;
  // Columns per block: as long as the dout block (Kg, B) stays within half of L2.
  const int64_t B = std::clamp<int64_t>(kDwBlockFloats / std::max<int64_t>(Kg, 1) / NR * NR, kDwBlockMin,
                                        kDwBlockMax);
  const int64_t w_size = sh.k * crs;

  const SourceGeometry g = source_geometry(sh);
  const int64_t chunk = images_per_chunk(sh, g, nt);
  const std::vector<int64_t> row_off = row_offsets(sh, d, g);

  // Workspace: padded chunk; per thread the dout block (Kg, B) and kDwCols im2col rows
  // (kDwGroup, B); per thread a private dW (none with one thread: dw itself).
  const size_t pad_n = g.direct ? 0 : Carver::aligned(static_cast<size_t>(chunk * g.image));
  const size_t thread_n = Carver::aligned(static_cast<size_t>(Kg * B)) +
                          Carver::aligned(static_cast<size_t>(kDwGroup * B));
  Carver carve(workspace(pad_n + thread_n * nt));
  float* xp = carve.take(pad_n);
  float* thread_bufs = carve.take(thread_n * nt);
  float* parts = nt > 1 ? partial_workspace(static_cast<size_t>(w_size) * nt) : dw;
  std::vector<PanelPlan> plans(static_cast<size_t>(nt) * (B / NR));

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < w_size * (nt > 1 ? nt : 1); ++i) parts[i] = 0.0f;

  for (int64_t n0 = 0; n0 < sh.n; n0 += chunk) {
    const int64_t nb = std::min(chunk, sh.n - n0);
    const float* src = x + n0 * sh.c * d.hw;
    if (!g.direct) {
      pad_chunk(xp, x, sh, g, n0, nb, nt);
      src = xp;
    }
    const int64_t total = nb * d.pq;
    const int64_t blocks = ceil_div(total, B);
    const float* dout0 = dout + n0 * sh.k * d.pq;

#pragma omp parallel num_threads(nt) if (nt > 1 && blocks > 1)
    {
      const int tid = omp_get_thread_num();
      float* dblk = thread_bufs + thread_n * tid;
      float* cols = dblk + Carver::aligned(static_cast<size_t>(Kg * B));
      float* part = parts + (nt > 1 ? w_size * tid : 0);
      PanelPlan* pl = plans.data() + static_cast<size_t>(tid) * (B / NR);
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t c0 = blk * B;
        const int64_t valid = std::min(B, total - c0);
        const int64_t npan = ceil_div(valid, NR);
        const int64_t len = round_up(valid, ck.lanes);  // <= npan * NR
        for (int64_t q = 0; q < npan; ++q) build_plan(pl[q], c0 + q * NR, total, sh, d.pq, g, NR, ck.lanes);
        for (int64_t gi = 0; gi < G; ++gi) {
          // dout rows of the block (Kg, len): read in place when the block lies inside
          // one image and needs no zero tail, else gathered (zero past `valid`).
          const int64_t n_first = c0 / d.pq;
          const bool in_place = len == valid && (c0 + valid - 1) / d.pq == n_first;
          const float* drows = in_place ? dout0 + (n_first * sh.k + gi * Kg) * d.pq + c0 % d.pq : dblk;
          const int64_t ldd = in_place ? d.pq : B;
          if (!in_place) {
            for (int64_t j = 0; j < valid;) {
              const int64_t col = c0 + j, n = col / d.pq, pix = col % d.pq;
              const int64_t run = std::min(valid - j, d.pq - pix);
              const float* s = dout0 + (n * sh.k + gi * Kg) * d.pq + pix;
              for (int64_t k = 0; k < Kg; ++k) std::memcpy(dblk + k * B + j, s + k * d.pq, run * sizeof(float));
              j += run;
            }
            if (len > valid)
              for (int64_t k = 0; k < Kg; ++k) std::memset(dblk + k * B + valid, 0, (len - valid) * sizeof(float));
          }
          const float* sg = src + gi * d.cg * g.plane;
          float* pg = part + gi * Kg * crs;
          // Groups of kDwGroup im2col rows are packed at once (few packing calls),
          // then each 6-row dout tile (kept in L1) meets all of the group's rows.
          for (int64_t g0 = 0; g0 < crs; g0 += kDwGroup) {
            const int64_t gr = std::min(kDwGroup, crs - g0);
            for (int64_t q = 0; q < npan; ++q) ck.pack_rows(cols + q * NR, B, sg, row_off.data() + g0, gr, pl[q]);
            for (int64_t i0 = 0; i0 < Kg;) {
              const int it = dw_tile_rows(Kg, i0);
              const float* drow[kDwRows];
              for (int i = 0; i < it; ++i) drow[i] = drows + (i0 + i) * ldd;
              for (int64_t j0 = 0; j0 < gr; j0 += kDwCols) {
                const int jt = static_cast<int>(std::min<int64_t>(kDwCols, gr - j0));
                const float* crow[kDwCols];
                for (int j = 0; j < jt; ++j) crow[j] = cols + (j0 + j) * B;
                ck.dot_tile(pg + i0 * crs + g0 + j0, crs, 1, drow, crow, len, 1, 0, 0, it, jt);
              }
              i0 += it;
            }
          }
        }
      }
    }
  }

  if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < w_size; ++i) {
      float s = 0.0f;
      for (int t = 0; t < nt; ++t) s += parts[t * w_size + i];
      dw[i] = s;
    }
  }
}

// ---------------------------------------------------------------------------------
// Batch-blocked path: L = NR images side by side.
//
// With the batch as the innermost dimension (the L images of one pixel contiguous),
// one output pixel of L images is one GEMM panel:
//   ot[k, pix, 0:L] = sum_{r, s, c} W[k, c, r, s] * xt[tap(pix, r), tap(pix, s), c, 0:L]
// Each im2col row is L contiguous floats, and each pixel skips exactly the kernel taps
// that fall in the padding (the weights are packed with the rows in (r, s, c) order, so
// the taps that remain are one contiguous range per kernel row). For the weight
// gradient (window layout (C, rows, wp, L)), each im2col row over a row of output
// pixels is contiguous, so the dot-product tiles read the windows in place. Getting
// into and out of the layout costs one transposing pass over the input and output.
// ---------------------------------------------------------------------------------

// The layout's geometry for a window of padded rows [y0, y0 + rows).
struct LaneGeometry {
  int64_t L;       // images per block (= NR)
  int64_t wp;      // padded columns that the windows reach
  int64_t rows;    // padded rows in the window
  int64_t pitch;   // wp * L
  int64_t plane;   // rows * pitch
};

LaneGeometry lane_geometry(int64_t L, int64_t wp, int64_t rows) {
  return LaneGeometry{L, wp, rows, wp * L, rows * wp * L};
}

std::atomic<int> g_force_path{0};  // see conv2d_force_path

// Transposed input and output of one row window, in floats: a few MB, so a window
// is still in cache when the panels read it and when it is transposed back.
constexpr int64_t kLaneWindowFloats = 2 << 20;

// The batch-blocked path needs a full block of images (the rest of the batch goes the
// NCHW way). Measured at least as fast as the NCHW panels for every layer of the
// benchmark set; the weight gradient needs stride_w 1 (so that the pixels of an output
// row are consecutive in the input).
bool lanes_batch(const Conv2dShape& sh) {
  return sh.n >= conv_kernels().nr && g_force_path.load(std::memory_order_relaxed) != 1;
}

bool use_lanes_forward(const Conv2dShape& sh) {
  // With several groups the im2col rows of a pixel are not consecutive in the window
  // and must be copied: measured, the NCHW panels are then faster.
  return lanes_batch(sh) && (sh.groups == 1 || g_force_path.load(std::memory_order_relaxed) == 2);
}

bool use_lanes_backward_weight(const Conv2dShape& sh) { return lanes_batch(sh) && sh.stride_w == 1; }

// Output rows per window when one output row needs out_row floats and one padded input
// row in_row floats (a window of m output rows reads (m - 1)*stride + (R - 1)*dil + 1).
int64_t lane_window_rows(const Conv2dShape& sh, int64_t out_row, int64_t in_row, int64_t budget) {
  int64_t m = 1;
  while (m < sh.p) {
    const int64_t next = m + 1;
    const int64_t in_rows = (next - 1) * sh.stride_h + (sh.r - 1) * sh.dil_h + 1;
    if (next * out_row + in_rows * in_row > budget) break;
    m = next;
  }
  return m;
}

// xt <- padded rows [y0, y0 + rows) of images [n0, n0 + L) of x (N, C, H, W), padded row
// y being image row y - pt and column xc image column xc - pl (zero outside the image).
// Layout (C, rows, wp, L) (planar), or (rows, wp, C, L) when channels_inner (then all
// channels of a pixel, and the pixels of a row, are consecutive).
void to_lanes(float* xt, const float* x, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl,
              const LaneGeometry& lg, int64_t y0, int64_t n0, bool channels_inner, int nt) {
  const ConvKernels& ck = conv_kernels();
  const int64_t L = lg.L;
  const int64_t left = std::min(pl, lg.wp);
  const int64_t cols = std::clamp<int64_t>(lg.wp - pl, 0, W);
  // Where (c, y, xc) goes, and the distance between two pixels of a row.
  const int64_t c_step = channels_inner ? L : lg.plane;
  const int64_t y_step = channels_inner ? lg.wp * C * L : lg.pitch;
  const int64_t x_step = channels_inner ? C * L : L;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && C > 1)
  for (int64_t c = 0; c < C; ++c) {
    const float* src[conv_detail::kMaxPanel];
    for (int64_t y = 0; y < lg.rows; ++y) {
      float* drow = xt + c * c_step + y * y_step;
      const int64_t ih = y0 + y - pt;
      const bool inside = ih >= 0 && ih < H && cols > 0;
      for (int64_t xc = 0; xc < lg.wp; ++xc) {
        if (inside && xc == left) {
          xc += cols - 1;
          continue;
        }
        std::memset(drow + xc * x_step, 0, L * sizeof(float));
      }
      if (!inside) continue;
      for (int64_t lane = 0; lane < L; ++lane) src[lane] = x + ((n0 + lane) * C + c) * H * W + ih * W;
      ck.to_lanes(drow + left * x_step, x_step, src, cols);
    }
  }
}

// out[n0 + lane, k, pix0 + i] = ot[k, i, lane] + bias[k] for i < count (bias may be null).
void from_lanes(float* out, const float* ot, const float* bias, int64_t K, int64_t PQ, int64_t pix0,
                int64_t count, int64_t L, int64_t n0, int nt) {
  const ConvKernels& ck = conv_kernels();
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && K > 1)
  for (int64_t k = 0; k < K; ++k) {
    float* dst[conv_detail::kMaxPanel];
    for (int64_t lane = 0; lane < L; ++lane) dst[lane] = out + ((n0 + lane) * K + k) * PQ + pix0;
    ck.from_lanes(dst, ot + k * count * L, count, bias ? bias[k] : 0.0f);
  }
}

// [first, last) of the taps t in [0, T) with 0 <= base + t*dil < size.
inline void tap_range(int64_t base, int64_t dil, int64_t T, int64_t size, int64_t& first, int64_t& last) {
  first = base >= 0 ? 0 : ceil_div(-base, dil);
  last = base + (T - 1) * dil < size ? T : (size - base > 0 ? ceil_div(size - base, dil) : 0);
  first = std::min(first, T);
  last = std::max(first, std::min(last, T));
}

void implicit_forward(float* out, const float* x, const float* w, const float* bias,
                      const Conv2dShape& sh, int nt);

// Threads share the work of the batch-blocked drivers as whole (block of images, row
// window) tasks, each with private buffers, so that a call forks and joins once: with
// a barrier per window, a thread that loses its core to another process stalls the
// other at every window. When there are fewer tasks than threads, the threads split
// each window instead.
struct LaneTasks {
  int64_t blocks, windows;  // images blocks x row windows
  bool coarse;              // one task per thread at a time
  int64_t count() const { return blocks * windows; }
};

LaneTasks lane_tasks(int64_t blocks, int64_t windows, int nt) {
  return LaneTasks{blocks, windows, nt == 1 || blocks * windows >= nt};
}

void lanes_forward(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& sh,
                   int nt) {
  const Dims d = dims_of(sh);
  const KernelInfo& gk = gemm_kernel();
  const ConvKernels& ck = conv_kernels();
  FL_CHECK(ck.nr == gk.nr, "conv2d: internal error: panel widths differ (", ck.nr, " vs ", gk.nr, ")");
  const int MR = gk.mr, NR = gk.nr;
  const int64_t L = NR, G = sh.groups, Kg = d.kg, Cg = d.cg, C = sh.c, crs = d.crs, S = sh.s, PQ = d.pq;
  // Depth blocks of the packed weights, aligned with kernel rows (S*Cg im2col rows)
  // where they fit: the taps of a pixel come one kernel row at a time, and a row split
  // by a block boundary costs an extra, shorter micro-kernel call.
  const int64_t unit = S * Cg;
  const int64_t kc_max = unit <= gk.kc ? unit * (gk.kc / unit) : ceil_div(unit, ceil_div(unit, gk.kc));
  const int64_t mpad = round_up(Kg, MR);
  const int64_t wp = (sh.q - 1) * sh.stride_w + (S - 1) * sh.dil_w + 1;
  // Window budget per thread: the threads' windows together stay within a few MB.
  const int64_t win = lane_window_rows(sh, sh.k * sh.q * L, C * wp * L, kLaneWindowFloats / nt);
  const int64_t win_in = (win - 1) * sh.stride_h + (sh.r - 1) * sh.dil_h + 1;
  const LaneTasks lt = lane_tasks(sh.n / L, ceil_div(sh.p, win), nt);
  // The window is stored (rows, wp, C, L): the im2col rows of one output pixel for one
  // kernel row r, in (s, c) order, are then consecutive NR-float rows, i.e. already a
  // packed B panel, which the micro-kernel reads in place. That needs one group and no
  // horizontal dilation; otherwise (or when a kernel row is too short to be worth a
  // call) the rows are copied into a panel first.
  const bool direct = G == 1 && sh.dil_w == 1 && S * Cg >= 32 && sh.r <= 64;
  const int64_t pixel = C * L;  // floats per pixel of the window

  // Workspace: packed weights (and their (r, s, c) reordering); per task slot a window
  // (rows, wp, C, L) and its output (K, pixels, L); per thread a B panel.
  const int64_t slots = lt.coarse ? nt : 1;
  const size_t apack_n = Carver::aligned(static_cast<size_t>(G * mpad * crs));
  const size_t wr_n = Carver::aligned(static_cast<size_t>(sh.k * crs));
  const size_t xt_n = Carver::aligned(static_cast<size_t>(win_in * wp * pixel));
  const size_t ot_n = Carver::aligned(static_cast<size_t>(sh.k * win * sh.q * L));
  const size_t thread_n = Carver::aligned(static_cast<size_t>(kc_max * NR));
  Carver carve(workspace(apack_n + wr_n + (xt_n + ot_n) * slots + thread_n * nt));
  float* apack = carve.take(apack_n);
  float* wr = carve.take(wr_n);
  float* xts = carve.take(xt_n * slots);
  float* ots = carve.take(ot_n * slots);
  float* thread_bufs = carve.take(thread_n * nt);

  // Weights with the im2col rows in (r, s, c) order, packed once.
  for (int64_t k = 0; k < sh.k; ++k)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t rs = 0; rs < sh.r * S; ++rs) wr[k * crs + rs * Cg + c] = w[(k * Cg + c) * sh.r * S + rs];
  // With a batch-reduce kernel (direct windows only, so one group), all taps of a pixel
  // are one call per tile of output channels: the weights are packed as whole rows of
  // crs per tile, a[k*m + i] at apack + i0*crs, and the tiles split K evenly (no thin
  // last tile: 64 = 4 x 13 + 12 rather than 4 x 14 + 8).
  const bool brg = direct && ck.brgemm != nullptr;
  std::vector<int64_t> tile_i0;  // first output channel of each tile, then K
  if (brg) {
    const int64_t tiles = ceil_div(Kg, ck.brgemm_mr), base = Kg / tiles, extra = Kg % tiles;
    for (int64_t t = 0, i0 = 0; t <= tiles; ++t) {
      tile_i0.push_back(i0);
      i0 += t < extra ? base + 1 : base;
    }
    for (size_t t = 0; t + 1 < tile_i0.size(); ++t) {
      const int64_t i0 = tile_i0[t], m = tile_i0[t + 1] - i0;
      float* a = apack + i0 * crs;
      for (int64_t k = 0; k < crs; ++k)
        for (int64_t i = 0; i < m; ++i) a[k * m + i] = wr[(i0 + i) * crs + k];
    }
  } else {
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t pc = 0; pc < crs; pc += kc_max)
        gk.pack_a(apack + gi * mpad * crs + pc * mpad, wr + gi * Kg * crs + pc, crs, 1, Kg,
                  std::min(kc_max, crs - pc));
  }

  // Output pixel i of the window starting at output row oh0 (window rows from y0).
  auto pixel_panel = [&](int64_t i, int64_t oh0, int64_t y0, int64_t npix, const float* xt, float* ot,
                         float* bpanel) {
    const int64_t pix = oh0 * sh.q + i, oh = pix / sh.q, ow = pix % sh.q;
    int64_t r0, r1, s0, s1;
    tap_range(oh * sh.stride_h - sh.pad_top, sh.dil_h, sh.r, sh.h, r0, r1);
    tap_range(ow * sh.stride_w - sh.pad_left, sh.dil_w, S, sh.w, s0, s1);
    float* oc = ot + i * L;  // row k at oc + k * npix * L
    if (r0 >= r1 || s0 >= s1) {
      for (int64_t k = 0; k < sh.k; ++k) std::memset(oc + k * npix * L, 0, L * sizeof(float));
      return;
    }
    // The taps that read the image, as ranges of rows: one per kernel row (one for all
    // when copying and every column tap is in, or a row of them is too short to be
    // worth its own range).
    int64_t ranges[2 * 64];
    int nranges = 0;
    if (!direct && (s1 - s0 == S || (s1 - s0) * Cg < 16 || r1 - r0 > 64)) {
      ranges[0] = r0 * S * Cg;
      ranges[1] = r1 * S * Cg;
      nranges = 1;
    } else {
      for (int64_t r = r0; r < r1; ++r) {  // r1 - r0 <= 64 here
        ranges[2 * nranges] = (r * S + s0) * Cg;
        ranges[2 * nranges + 1] = (r * S + s1) * Cg;
        ++nranges;
      }
    }
    const int64_t ih0 = oh * sh.stride_h - y0, iw0 = ow * sh.stride_w;  // in the window
    if (brg) {
      // One segment per kernel row: rows [ranges[2q], ranges[2q+1]) of A, and the
      // window's consecutive rows from tap (r, s0), channel 0.
      int64_t lens[64];
      const float* bs[64];
      const float* as[64];
      for (int q = 0; q < nranges; ++q) {
        const int64_t k = ranges[2 * q], rs = k / Cg, r = rs / S, s = rs % S;
        lens[q] = ranges[2 * q + 1] - k;
        bs[q] = xt + ((ih0 + r * sh.dil_h) * wp + iw0 + s) * pixel;
      }
      for (size_t t = 0; t + 1 < tile_i0.size(); ++t) {
        const int64_t i0 = tile_i0[t], m = tile_i0[t + 1] - i0;
        for (int q = 0; q < nranges; ++q) as[q] = apack + i0 * crs + ranges[2 * q] * m;
        ck.brgemm(static_cast<int>(m), nranges, lens, as, bs, oc + i0 * npix * L, npix * L);
      }
      return;
    }
    for (int64_t gi = 0; gi < G; ++gi) {
      const float* ag = apack + gi * mpad * crs;
      bool first = true;
      for (int q = 0; q < nranges; ++q) {
        for (int64_t k = ranges[2 * q], kb = ranges[2 * q + 1]; k < kb;) {
          const int64_t pc = (k / kc_max) * kc_max;
          const int64_t kcb = std::min(kc_max, crs - pc);
          const int64_t ke = std::min(kb, pc + kcb);
          const float* bp;
          if (direct) {
            // Rows [k, ke) lie in one kernel row: consecutive in the window.
            const int64_t c = k % Cg, rs = k / Cg, r = rs / S, s = rs % S;
            bp = xt + ((ih0 + r * sh.dil_h) * wp + iw0 + s) * pixel + c * L;
          } else {
            // Copy rows [k, ke) (order (r, s, c)): runs of consecutive rows, the channels
            // of a tap (or with one group and no dilation, all the kernel row's taps
            // from s on).
            float* dst = bpanel;
            for (int64_t kk = k; kk < ke;) {
              const int64_t c = kk % Cg, rs = kk / Cg, r = rs / S, s = rs % S;
              const float* src =
                  xt + ((ih0 + r * sh.dil_h) * wp + iw0 + s * sh.dil_w) * pixel + (gi * Cg + c) * L;
              const int64_t run = (G == 1 && sh.dil_w == 1) ? (S - s) * Cg - c : Cg - c;
              const int64_t cnt = std::min(ke - kk, run);
              ck.copy_rows(dst, src, L, cnt);
              dst += cnt * L;
              kk += cnt;
            }
            bp = bpanel;
          }
          for (int64_t ir = 0; ir < Kg; ir += MR) {
            const int mr = static_cast<int>(std::min<int64_t>(MR, Kg - ir));
            gk.micro(ke - k, ag + pc * mpad + ir * kcb + (k - pc) * MR, bp, oc + (gi * Kg + ir) * npix * L,
                     npix * L, 1, mr, NR, 1.0f, first ? 0.0f : 1.0f);
          }
          first = false;
          k = ke;
        }
      }
    }
  };

  // One (block, window) task; inner_nt threads share it (1 in coarse mode, where
  // `own` is the calling thread's B panel).
  auto window_task = [&](int64_t task, float* xt, float* ot, float* own, int inner_nt) {
    const int64_t nb = task / lt.windows, oh0 = (task % lt.windows) * win;
    const int64_t oh1 = std::min(sh.p, oh0 + win);
    const int64_t y0 = oh0 * sh.stride_h;  // first padded input row of the window
    const LaneGeometry lg = lane_geometry(L, wp, (oh1 - 1) * sh.stride_h + (sh.r - 1) * sh.dil_h + 1 - y0);
    const int64_t npix = (oh1 - oh0) * sh.q;
    to_lanes(xt, x, C, sh.h, sh.w, sh.pad_top, sh.pad_left, lg, y0, nb * L, true, inner_nt);
#pragma omp parallel for num_threads(inner_nt) schedule(static) if (inner_nt > 1)
    for (int64_t i = 0; i < npix; ++i)
      pixel_panel(i, oh0, y0, npix, xt, ot, inner_nt > 1 ? thread_bufs + thread_n * omp_get_thread_num() : own);
    from_lanes(out, ot, bias, sh.k, PQ, oh0 * sh.q, npix, L, nb * L, inner_nt);
  };

  if (lt.coarse) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < lt.count(); ++t) {
      const int tid = omp_get_thread_num();
      window_task(t, xts + xt_n * tid, ots + ot_n * tid, thread_bufs + thread_n * tid, 1);
    }
  } else {
    for (int64_t t = 0; t < lt.count(); ++t) window_task(t, xts, ots, thread_bufs, nt);
  }

  // Images left over after the full blocks.
  const int64_t done = lt.blocks * L;
  if (done < sh.n) {
    Conv2dShape rest = sh;
    rest.n = sh.n - done;
    implicit_forward(out + done * sh.k * PQ, x + done * sh.c * d.hw, w, bias, rest, nt);
  }
}

void implicit_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& sh,
                              int nt);

constexpr int64_t kLaneDwWindowFloats = int64_t{1} << 22;
// Floats of dout rows that one pass of the weight-gradient tiles streams (from L2): a
// longer pass sums its 24 accumulators horizontally less often (measured best ~1 MB).
constexpr int64_t kLaneDwPassFloats = 256 * 1024;
constexpr int64_t kLaneDwPartFloats = 128 * 1024;

void lanes_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& sh, int nt) {
  const Dims d = dims_of(sh);
  const ConvKernels& ck = conv_kernels();
  const int64_t L = ck.nr, G = sh.groups, Kg = d.kg, Cg = d.cg, crs = d.crs, PQ = d.pq;
  const int64_t w_size = sh.k * crs;
  const int64_t wp = (sh.q - 1) * sh.stride_w + (sh.s - 1) * sh.dil_w + 1;
  // The tiles stream the window from L2/L3 anyway: a larger window re-transposes fewer
  // halo rows.
  const int64_t win = lane_window_rows(sh, sh.k * sh.q * L, sh.c * wp * L, kLaneDwWindowFloats / nt);
  const int64_t win_in = (win - 1) * sh.stride_h + (sh.r - 1) * sh.dil_h + 1;
  const LaneTasks lt = lane_tasks(sh.n / L, ceil_div(sh.p, win), nt);

  // Workspace per task slot: the window of x (C, rows, wp, L) and of dout (K, rows, Q, L).
  // In coarse mode each thread also accumulates its own dW (summed at the end).
  const int64_t slots = lt.coarse ? nt : 1;
  const size_t xt_n = Carver::aligned(static_cast<size_t>(sh.c * win_in * wp * L));
  const size_t dt_n = Carver::aligned(static_cast<size_t>(sh.k * win * sh.q * L));
  Carver carve(workspace((xt_n + dt_n) * slots));
  float* xts = carve.take(xt_n * slots);
  float* dts = carve.take(dt_n * slots);
  float* parts = lt.coarse && nt > 1 ? partial_workspace(static_cast<size_t>(w_size) * nt) : dw;

  // Within a window, passes of the tiles cover a few output rows, so that the Kg dout
  // rows a pass streams stay in L2.
  const int64_t pass_rows = std::max<int64_t>(1, kLaneDwPassFloats / std::max<int64_t>(Kg * sh.q * L, 1));
  // A pass runs over the dout rows in parts of at most kLaneDwPartFloats (half of L2),
  // each part meeting every tile of x, so that the dout rows are still in L2 when the
  // next x tile reads them: ResNet 3x3 / VGG / Fashion conv2 weight gradient 1-2%
  // faster with 2 parts than with 1 (the pass length is kept for the horizontal sums).
  // part_i0: where the parts start, at tile boundaries, then Kg.
  const int64_t parts_n = std::clamp<int64_t>(ceil_div(Kg * pass_rows * sh.q * L, kLaneDwPartFloats), 1, Kg);
  std::vector<int64_t> part_i0{0};
  for (int64_t i0 = 0; i0 < Kg; i0 += dw_tile_rows(Kg, i0))
    if (i0 > part_i0.back() && i0 >= static_cast<int64_t>(part_i0.size()) * Kg / parts_n) part_i0.push_back(i0);
  part_i0.push_back(Kg);
  // Tiles of 4 dW columns. With 4 or more channels per group a tile is 4 channels of
  // one kernel tap (r, s): its 4 im2col rows then read the image at the same output
  // pixels, so the pixels whose tap falls in the padding are skipped exactly (rows
  // and the ends of rows). With fewer, 4 consecutive (c, r, s) columns, padding
  // included.
  const bool by_tap = Cg >= kDwCols;
  const int64_t RS = sh.r * sh.s;
  const int64_t cblocks = ceil_div(Cg, kDwCols);
  const int64_t jtiles = ceil_div(crs, kDwCols);
  const int64_t tiles = by_tap ? G * RS * cblocks : G * jtiles;  // disjoint parts of dW

  // Adds tile t's products over output rows oh0 + [a0, a1) of a window to dwp.
  auto tile = [&](int64_t t, float* dwp, const float* xt, const float* dt, const LaneGeometry& lg,
                  const LaneGeometry& lgd, int64_t oh0, int64_t a0, int64_t a1, int64_t ib, int64_t ie) {
    const float* crow[kDwCols];
    int jt;
    int64_t gi, ldj, dw_off, ra = a0, rb = a1, qa = 0, qb = sh.q;
    if (by_tap) {
      gi = t / (RS * cblocks);
      const int64_t rs = (t / cblocks) % RS, c0 = (t % cblocks) * kDwCols;
      const int64_t r = rs / sh.s, s = rs % sh.s;
      jt = static_cast<int>(std::min<int64_t>(kDwCols, Cg - c0));
      ldj = RS;
      dw_off = c0 * RS + rs;
      // Output rows and columns whose tap (r, s) reads the image.
      int64_t lo, hi;
      tap_range(r * sh.dil_h - sh.pad_top, sh.stride_h, sh.p, sh.h, lo, hi);
      ra = std::max(a0, lo - oh0);
      rb = std::min(a1, hi - oh0);
      tap_range(s * sh.dil_w - sh.pad_left, sh.stride_w, sh.q, sh.w, qa, qb);
      for (int j = 0; j < jt; ++j)
        crow[j] = xt + (gi * Cg + c0 + j) * lg.plane + r * sh.dil_h * lg.pitch + s * sh.dil_w * L;
    } else {
      gi = t / jtiles;
      const int64_t j0 = (t % jtiles) * kDwCols;
      jt = static_cast<int>(std::min<int64_t>(kDwCols, crs - j0));
      ldj = 1;
      dw_off = j0;
      for (int j = 0; j < jt; ++j) {
        const int64_t row = j0 + j, c = row / RS, r = (row / sh.s) % sh.r, s = row % sh.s;
        crow[j] = xt + (gi * Cg + c) * lg.plane + r * sh.dil_h * lg.pitch + s * sh.dil_w * L;
      }
    }
    if (ra >= rb || qa >= qb) return;
    // Start at output row oh0 + ra, column qa (stride_w is 1 here).
    for (int j = 0; j < jt; ++j) crow[j] += ra * sh.stride_h * lg.pitch + qa * L;
    const int64_t len = (qb - qa) * L;
    for (int64_t i0 = ib; i0 < ie;) {
      const int it = dw_tile_rows(Kg, i0);
      const float* drow[kDwRows];
      for (int i = 0; i < it; ++i) drow[i] = dt + (gi * Kg + i0 + i) * lgd.plane + ra * lgd.pitch + qa * L;
      ck.dot_tile(dwp + (gi * Kg + i0) * crs + dw_off, crs, ldj, drow, crow, len, rb - ra, lgd.pitch,
                  sh.stride_h * lg.pitch, it, jt);
      i0 += it;
    }
  };

  // One (block, window) task; inner_nt threads share it (1 in coarse mode: the tiles
  // are then disjoint parts of this thread's dW).
  auto window_task = [&](int64_t task, float* xt, float* dt, float* dwp, int inner_nt) {
    const int64_t nb = task / lt.windows, oh0 = (task % lt.windows) * win;
    const int64_t oh1 = std::min(sh.p, oh0 + win);
    const int64_t y0 = oh0 * sh.stride_h;
    const LaneGeometry lg = lane_geometry(L, wp, (oh1 - 1) * sh.stride_h + (sh.r - 1) * sh.dil_h + 1 - y0);
    const LaneGeometry lgd = lane_geometry(L, sh.q, oh1 - oh0);  // dout rows, unpadded
    to_lanes(xt, x, sh.c, sh.h, sh.w, sh.pad_top, sh.pad_left, lg, y0, nb * L, false, inner_nt);
    to_lanes(dt, dout, sh.k, sh.p, sh.q, 0, 0, lgd, oh0, nb * L, false, inner_nt);
    for (int64_t a0 = 0; a0 < oh1 - oh0; a0 += pass_rows) {
      const int64_t a1 = std::min(oh1 - oh0, a0 + pass_rows);
      // (With threads sharing the window, one part: a barrier per part would cost more.)
      const size_t np = inner_nt > 1 ? 1 : part_i0.size() - 1;
      for (size_t h = 0; h < np; ++h) {
        const int64_t ib = inner_nt > 1 ? 0 : part_i0[h], ie = inner_nt > 1 ? Kg : part_i0[h + 1];
#pragma omp parallel for num_threads(inner_nt) schedule(static) if (inner_nt > 1 && tiles > 1)
        for (int64_t t = 0; t < tiles; ++t) tile(t, dwp, xt, dt, lg, lgd, oh0, a0, a1, ib, ie);
      }
    }
  };

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < w_size * (parts == dw ? 1 : nt); ++i) parts[i] = 0.0f;
  if (lt.coarse) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < lt.count(); ++t) {
      const int tid = omp_get_thread_num();
      window_task(t, xts + xt_n * tid, dts + dt_n * tid, parts + (parts == dw ? 0 : w_size * tid), 1);
    }
    if (parts != dw) {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t i = 0; i < w_size; ++i) {
        float acc = 0.0f;
        for (int t = 0; t < nt; ++t) acc += parts[t * w_size + i];
        dw[i] = acc;
      }
    }
  } else {
    for (int64_t t = 0; t < lt.count(); ++t) window_task(t, xts, dts, dw, nt);
  }

  // Images left over after the full blocks: their dW separately, then added.
  const int64_t done = lt.blocks * L;
  if (done < sh.n) {
    Conv2dShape rest = sh;
    rest.n = sh.n - done;
    std::vector<float> extra(static_cast<size_t>(w_size));
    implicit_backward_weight(extra.data(), dout + done * sh.k * PQ, x + done * sh.c * d.hw, rest, nt);
    for (int64_t i = 0; i < w_size; ++i) dw[i] += extra[i];
  }
}

// ---------------------------------------------------------------------------------
// 1x1 convolutions with stride 1 and no padding: x is already the im2col matrix, so
// each image is a plain GEMM (the GEMM's own packing reads the channel planes as long
// contiguous rows, which streams better than panel-by-panel packing).
// ---------------------------------------------------------------------------------

// Images are shared out among threads (each GEMM on one thread) when there are enough
// of them; otherwise images run in turn with all threads in each GEMM.
template <typename Body>
void for_each_image(int64_t n, int nt, Body&& body) {
  if (nt > 1 && n >= nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i, omp_get_thread_num(), 1);
  } else {
    for (int64_t i = 0; i < n; ++i) body(i, 0, nt);
  }
}

void forward_1x1(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& sh,
                 int nt) {
  const Dims d = dims_of(sh);
  for_each_image(sh.n, nt, [&](int64_t n, int, int gnt) {
    for (int64_t gi = 0; gi < sh.groups; ++gi) {
      float* o = out + (n * sh.k + gi * d.kg) * d.hw;  // (Kg, HW)
      gemm(MatrixView{o, d.hw, 1}, ConstMatrixView{w + gi * d.kg * d.cg, d.cg, 1},
           ConstMatrixView{x + (n * sh.c + gi * d.cg) * d.hw, d.hw, 1}, GemmShape{d.kg, d.hw, d.cg}, 1.0f, 0.0f,
           gnt);
      if (bias) {
        for (int64_t k = 0; k < d.kg; ++k) {
          const float bv = bias[gi * d.kg + k];
          float* row = o + k * d.hw;
          for (int64_t t = 0; t < d.hw; ++t) row[t] += bv;
        }
      }
    }
  });
}

// dW_g (Kg, Cg) = sum_n dout_n,g (Kg, HW) @ x_n,g^T (HW, Cg), a private sum per thread.
void backward_weight_1x1(float* dw, const float* dout, const float* x, const Conv2dShape& sh, int nt) {
  const Dims d = dims_of(sh);
  const int64_t w_size = sh.k * d.cg;
  const bool split = nt > 1 && sh.n >= nt;
  float* parts = split ? partial_workspace(static_cast<size_t>(w_size) * nt) : dw;
  for (int64_t i = 0; i < w_size * (split ? nt : 1); ++i) parts[i] = 0.0f;
  for_each_image(sh.n, nt, [&](int64_t n, int tid, int gnt) {
    float* part = parts + (split ? w_size * tid : 0);
    for (int64_t gi = 0; gi < sh.groups; ++gi)
      gemm(MatrixView{part + gi * d.kg * d.cg, d.cg, 1},
           ConstMatrixView{dout + (n * sh.k + gi * d.kg) * d.hw, d.hw, 1},
           ConstMatrixView{x + (n * sh.c + gi * d.cg) * d.hw, 1, d.hw}, GemmShape{d.kg, d.cg, d.hw}, 1.0f, 1.0f,
           gnt);
  });
  if (split) {
    for (int64_t i = 0; i < w_size; ++i) {
      float acc = 0.0f;
      for (int t = 0; t < nt; ++t) acc += parts[t * w_size + i];
      dw[i] = acc;
    }
  }
}

// The forward on whichever path applies.
void forward_any(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& sh,
                 int nt) {
  if (dims_of(sh).is_1x1) return forward_1x1(out, x, w, bias, sh, nt);
  if (use_lanes_forward(sh)) return lanes_forward(out, x, w, bias, sh, nt);
  implicit_forward(out, x, w, bias, sh, nt);
}

// ---------------------------------------------------------------------------------
// Input gradient with stride > 1: GEMM + col2im over blocks of columns.
// ---------------------------------------------------------------------------------

// Column buffer per thread, in floats. 128 Ki floats = 512 KiB: the buffer im2col has
// just written is still in L2 when the GEMM packs it.
constexpr int64_t kColBudget = 128 * 1024;
// Fewest columns per block (a thinner GEMM is dominated by packing the weights).
constexpr int64_t kMinCols = 96;

// How the GEMM columns (N images x PQ pixels) are cut into blocks.
struct Blocking {
  int64_t images;      // images per block (> 1 only when whole images fit the budget)
  int64_t pixels;      // pixels per block (== pq when images > 1)
  int64_t per_image;   // blocks per image (1 when images > 1)
  int64_t n_blocks;
  int64_t cols() const { return images * pixels; }
};

Blocking choose_blocking(const Conv2dShape& sh, const Dims& d, int nt, bool allow_batching) {
  Blocking b;
  const int64_t fit = std::max(kMinCols, kColBudget / std::max<int64_t>(d.crs, 1));
  if (allow_batching && d.pq <= fit) {
    // Whole images side by side, but still at least one block per thread.
    b.images = std::max<int64_t>(1, std::min(fit / d.pq, ceil_div(sh.n, nt)));
    b.pixels = d.pq;
    b.per_image = 1;
    b.n_blocks = ceil_div(sh.n, b.images);
  } else {
    // Split the image's pixels evenly, in multiples of the micro-kernel width.
    const int64_t parts = ceil_div(d.pq, fit);
    b.images = 1;
    b.pixels = std::min(d.pq, round_up(ceil_div(d.pq, parts), 32));
    b.per_image = ceil_div(d.pq, b.pixels);
    b.n_blocks = sh.n * b.per_image;
  }
  return b;
}

// One block: images [n0, n0 + nb), pixels [p0, p0 + np) of each.
struct Block {
  int64_t n0, nb, p0, np;
};

Block block_at(const Blocking& b, const Conv2dShape& sh, const Dims& d, int64_t i) {
  Block blk;
  if (b.images > 1) {
    blk.n0 = i * b.images;
    blk.nb = std::min(b.images, sh.n - blk.n0);
    blk.p0 = 0;
    blk.np = d.pq;
  } else {
    blk.n0 = i / b.per_image;
    blk.nb = 1;
    blk.p0 = (i % b.per_image) * b.pixels;
    blk.np = std::min(b.pixels, d.pq - blk.p0);
  }
  return blk;
}

// For one kernel column offset s: output columns q in [q0, q0 + len) read input column
// iw = iw0 + (q - q0) * stride; returns [lo, hi), the part of [0, len) with 0 <= iw < W.
inline void valid_range(int64_t iw0, int64_t stride, int64_t width, int64_t len, int64_t& lo,
                        int64_t& hi) {
  lo = iw0 < 0 ? ceil_div(-iw0, stride) : 0;
  hi = iw0 <= width - 1 ? (width - 1 - iw0) / stride + 1 : 0;
  lo = std::min(lo, len);
  hi = std::max(lo, std::min(hi, len));
}

// The adjoint of im2col: dxg (Cg, H, W) += the columns [0, np) of dcol scattered back to
// the input pixels they were read from (padding positions are dropped).
void col2im(float* dxg, const float* dcol, int64_t ld, const Conv2dShape& sh, int64_t cg,
            int64_t p0, int64_t np) {
  const int64_t H = sh.h, W = sh.w, Q = sh.q, sw = sh.stride_w;
  for (int64_t c = 0; c < cg; ++c) {
    float* xc = dxg + c * H * W;
    for (int64_t r = 0; r < sh.r; ++r) {
      for (int64_t s = 0; s < sh.s; ++s) {
        const float* row = dcol + ((c * sh.r + r) * sh.s + s) * ld;
        int64_t j = 0, oh = p0 / Q, ow = p0 % Q;
        while (j < np) {
          const int64_t seg = std::min(Q - ow, np - j);
          const int64_t ih = oh * sh.stride_h - sh.pad_top + r * sh.dil_h;
          if (ih >= 0 && ih < H) {
            const int64_t iw0 = ow * sw - sh.pad_left + s * sh.dil_w;
            int64_t lo, hi;
            valid_range(iw0, sw, W, seg, lo, hi);
            float* dst = xc + ih * W + iw0;
            const float* src = row + j;
            if (sw == 1) {
              for (int64_t t = lo; t < hi; ++t) dst[t] += src[t];
            } else {
              for (int64_t t = lo; t < hi; ++t) dst[t * sw] += src[t];
            }
          }
          j += seg;
          ow = 0;
          ++oh;
        }
      }
    }
  }
}

// Runs body(block, thread_buffer, gemm_threads) for every block: statically shared out
// among nt threads (each GEMM single-threaded), or in turn with multi-threaded GEMMs
// when there are fewer blocks than threads. buf_floats: scratch per running block.
template <typename Body>
void for_each_block(int64_t n_blocks, int nt, size_t buf_floats, Body&& body) {
  const bool outer = nt > 1 && n_blocks >= nt;
  float* ws = workspace(buf_floats * (outer ? nt : 1));
  if (outer) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n_blocks; ++i) body(i, ws + buf_floats * omp_get_thread_num(), 1);
  } else {
    for (int64_t i = 0; i < n_blocks; ++i) body(i, ws, nt);
  }
}

// Input gradient as dcol = W_g^T @ dout followed by col2im (any stride). Used when the
// flipped-kernel forward does not apply (stride > 1).
void backward_data_col2im(float* dx, const float* dout, const float* w, const float* init,
                          const Conv2dShape& sh, const Dims& d, int nt) {

  // col2im of two pixel blocks of one image may write the same input pixel, so a task
  // is a whole image (or a multi-image block) and its pixel blocks run in turn.
  const Blocking bl = choose_blocking(sh, d, nt, !d.is_1x1);
  const int64_t cols = bl.cols();
  const int64_t n_tasks = bl.images > 1 ? bl.n_blocks : sh.n;
  const size_t col_floats = d.is_1x1 ? 0 : static_cast<size_t>(d.crs * cols);
  const size_t tmp_floats = bl.images > 1 ? static_cast<size_t>(d.kg * cols) : 0;

  for_each_block(n_tasks, nt, col_floats + tmp_floats, [&](int64_t task, float* buf, int gnt) {
    float* dcol = buf;
    float* tmp = buf + col_floats;
    const int64_t first = bl.images > 1 ? task : task * bl.per_image;
    const int64_t count = bl.images > 1 ? 1 : bl.per_image;
    // This task's images start from init (or zero); col2im then accumulates into them.
    {
      const Block b0 = block_at(bl, sh, d, first);
      for (int64_t j = 0; j < b0.nb; ++j) {
        for (int64_t c = 0; c < sh.c; ++c) {
          float* plane = dx + ((b0.n0 + j) * sh.c + c) * d.hw;
          const float v = init ? init[c] : 0.0f;
          for (int64_t t = 0; t < d.hw; ++t) plane[t] = v;
        }
      }
    }
    for (int64_t i = first; i < first + count; ++i) {
      const Block b = block_at(bl, sh, d, i);
      const int64_t nc = b.nb * b.np;
      for (int64_t g = 0; g < sh.groups; ++g) {
        const ConstMatrixView wgt{w + g * d.kg * d.crs, 1, d.crs};  // W_g^T (CgRS, Kg)
        ConstMatrixView gv;
        if (b.nb == 1) {
          gv = ConstMatrixView{dout + (b.n0 * sh.k + g * d.kg) * d.pq + b.p0, d.pq, 1};
        } else {
          // Gather the block's dout (Kg, nb * PQ).
          for (int64_t kk = 0; kk < d.kg; ++kk)
            for (int64_t j = 0; j < b.nb; ++j)
              std::memcpy(tmp + kk * nc + j * b.np, dout + ((b.n0 + j) * sh.k + g * d.kg + kk) * d.pq,
                          b.np * sizeof(float));
          gv = ConstMatrixView{tmp, nc, 1};
        }
        if (d.is_1x1) {
          // dx is the column matrix: the GEMM adds straight into it.
          float* dxg = dx + (b.n0 * sh.c + g * d.cg) * d.hw + b.p0;
          gemm(MatrixView{dxg, d.hw, 1}, wgt, gv, GemmShape{d.cg, nc, d.kg}, 1.0f, 1.0f, gnt);
        } else {
          gemm(MatrixView{dcol, nc, 1}, wgt, gv, GemmShape{d.crs, nc, d.kg}, 1.0f, 0.0f, gnt);
          for (int64_t j = 0; j < b.nb; ++j)
            col2im(dx + ((b.n0 + j) * sh.c + g * d.cg) * d.hw, dcol + j * b.np, nc, sh, d.cg, b.p0,
                   b.np);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------
// Depthwise (groups == C): each output channel k reads input channel k / Kg only.
// Direct loops over output rows; the inner loop runs along a row (vectorised for
// stride 1).
// ---------------------------------------------------------------------------------

// Output row op (Q) of plane (n, k) += the kernel taps of input plane xc (H, W).
void dw_forward_row(float* orow, const float* xc, const float* wk, const Conv2dShape& sh,
                    int64_t oh) {
  const int64_t W = sh.w, Q = sh.q, sw = sh.stride_w;
  for (int64_t r = 0; r < sh.r; ++r) {
    const int64_t ih = oh * sh.stride_h - sh.pad_top + r * sh.dil_h;
    if (ih < 0 || ih >= sh.h) continue;
    const float* xrow = xc + ih * W;
    for (int64_t s = 0; s < sh.s; ++s) {
      const float wv = wk[r * sh.s + s];
      const int64_t iw0 = -sh.pad_left + s * sh.dil_w;
      int64_t lo, hi;
      valid_range(iw0, sw, W, Q, lo, hi);
      const float* src = xrow + iw0;
      if (sw == 1) {
        for (int64_t t = lo; t < hi; ++t) orow[t] += wv * src[t];
      } else {
        for (int64_t t = lo; t < hi; ++t) orow[t] += wv * src[t * sw];
      }
    }
  }
}

void depthwise_forward(float* out, const float* x, const float* w, const float* bias,
                       const Conv2dShape& sh, const Dims& d, int nt) {
  const int64_t planes = sh.n * sh.k;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t nk = 0; nk < planes; ++nk) {
    const int64_t n = nk / sh.k, k = nk % sh.k;
    const float* xc = x + (n * sh.c + k / d.kg) * d.hw;
    const float* wk = w + k * sh.r * sh.s;
    float* o = out + nk * d.pq;
    const float b0 = bias ? bias[k] : 0.0f;
    for (int64_t t = 0; t < d.pq; ++t) o[t] = b0;
    for (int64_t oh = 0; oh < sh.p; ++oh) dw_forward_row(o + oh * sh.q, xc, wk, sh, oh);
  }
}

void depthwise_backward_data(float* dx, const float* dout, const float* w, const float* init,
                             const Conv2dShape& sh, const Dims& d, int nt) {
  const int64_t W = sh.w, Q = sh.q, sw = sh.stride_w;
  const int64_t planes = sh.n * sh.c;
  // One task per input plane (n, c): it gathers from the Kg output channels that read it.
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const int64_t n = nc / sh.c, c = nc % sh.c;
    float* dxc = dx + nc * d.hw;
    const float v0 = init ? init[c] : 0.0f;
    for (int64_t t = 0; t < d.hw; ++t) dxc[t] = v0;
    for (int64_t kk = 0; kk < d.kg; ++kk) {
      const int64_t k = c * d.kg + kk;
      const float* g = dout + (n * sh.k + k) * d.pq;
      const float* wk = w + k * sh.r * sh.s;
      for (int64_t oh = 0; oh < sh.p; ++oh) {
        const float* grow = g + oh * Q;
        for (int64_t r = 0; r < sh.r; ++r) {
          const int64_t ih = oh * sh.stride_h - sh.pad_top + r * sh.dil_h;
          if (ih < 0 || ih >= sh.h) continue;
          float* xrow = dxc + ih * W;
          for (int64_t s = 0; s < sh.s; ++s) {
            const float wv = wk[r * sh.s + s];
            const int64_t iw0 = -sh.pad_left + s * sh.dil_w;
            int64_t lo, hi;
            valid_range(iw0, sw, W, Q, lo, hi);
            float* dst = xrow + iw0;
            if (sw == 1) {
              for (int64_t t = lo; t < hi; ++t) dst[t] += wv * grow[t];
            } else {
              for (int64_t t = lo; t < hi; ++t) dst[t * sw] += wv * grow[t];
            }
          }
        }
      }
    }
  }
}

void depthwise_backward_weight(float* dw, const float* dout, const float* x,
                               const Conv2dShape& sh, const Dims& d, int nt) {
  const int64_t W = sh.w, Q = sh.q, sw = sh.stride_w, RS = sh.r * sh.s;
  // One task per output channel k: it owns dw[k] and loops over the batch (no races).
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t k = 0; k < sh.k; ++k) {
    const int64_t c = k / d.kg;
    double acc[512];  // RS <= 512 is checked by the caller; per-tap sums in double
    for (int64_t t = 0; t < RS; ++t) acc[t] = 0.0;
    for (int64_t n = 0; n < sh.n; ++n) {
      const float* g = dout + (n * sh.k + k) * d.pq;
      const float* xc = x + (n * sh.c + c) * d.hw;
      for (int64_t r = 0; r < sh.r; ++r) {
        for (int64_t s = 0; s < sh.s; ++s) {
          const int64_t iw0 = -sh.pad_left + s * sh.dil_w;
          int64_t lo, hi;
          valid_range(iw0, sw, W, Q, lo, hi);
          float sum = 0.0f;
          for (int64_t oh = 0; oh < sh.p; ++oh) {
            const int64_t ih = oh * sh.stride_h - sh.pad_top + r * sh.dil_h;
            if (ih < 0 || ih >= sh.h) continue;
            const float* src = xc + ih * W + iw0;
            const float* grow = g + oh * Q;
            if (sw == 1) {
#pragma omp simd reduction(+ : sum)
              for (int64_t t = lo; t < hi; ++t) sum += grow[t] * src[t];
            } else {
#pragma omp simd reduction(+ : sum)
              for (int64_t t = lo; t < hi; ++t) sum += grow[t] * src[t * sw];
            }
          }
          acc[r * sh.s + s] += sum;
        }
      }
    }
    for (int64_t t = 0; t < RS; ++t) dw[k * RS + t] = static_cast<float>(acc[t]);
  }
}

bool use_depthwise(const Conv2dShape& sh) {
  return sh.groups == sh.c && sh.groups > 1 && sh.r * sh.s <= 512;
}


}  // namespace

void conv2d_check_shape(const Conv2dShape& sh) {
  FL_CHECK(sh.n >= 1 && sh.c >= 1 && sh.h >= 1 && sh.w >= 1, "conv2d: input sizes must be >= 1, got (",
           sh.n, ", ", sh.c, ", ", sh.h, ", ", sh.w, ")");
  FL_CHECK(sh.k >= 1 && sh.r >= 1 && sh.s >= 1, "conv2d: weight sizes must be >= 1, got K=", sh.k,
           " R=", sh.r, " S=", sh.s);
  FL_CHECK(sh.p >= 1 && sh.q >= 1, "conv2d: output size must be >= 1, got ", sh.p, "x", sh.q);
  FL_CHECK(sh.stride_h >= 1 && sh.stride_w >= 1, "stride: must be >= 1, got (", sh.stride_h, ", ",
           sh.stride_w, ")");
  FL_CHECK(sh.dil_h >= 1 && sh.dil_w >= 1, "dilation: must be >= 1, got (", sh.dil_h, ", ", sh.dil_w, ")");
  FL_CHECK(sh.pad_top >= 0 && sh.pad_left >= 0, "padding: must be >= 0, got (", sh.pad_top, ", ",
           sh.pad_left, ")");
  FL_CHECK(sh.groups >= 1 && sh.c % sh.groups == 0 && sh.k % sh.groups == 0, "groups: ", sh.groups,
           " must divide the input channels ", sh.c, " and the output channels ", sh.k);
}


void conv2d_forward(float* out, const float* x, const float* w, const float* bias,
                    const Conv2dShape& sh) {
  conv2d_check_shape(sh);
  const int nt = get_num_threads();
  if (use_depthwise(sh)) return depthwise_forward(out, x, w, bias, sh, dims_of(sh), nt);
  forward_any(out, x, w, bias, sh, nt);
}

void conv2d_backward_data(float* dx, const float* dout, const float* w, const float* init,
                          const Conv2dShape& sh) {
  conv2d_check_shape(sh);
  const Dims d = dims_of(sh);
  const int nt = get_num_threads();
  if (use_depthwise(sh)) return depthwise_backward_data(dx, dout, w, init, sh, d, nt);
  const int64_t pad_t = sh.dil_h * (sh.r - 1) - sh.pad_top;
  const int64_t pad_l = sh.dil_w * (sh.s - 1) - sh.pad_left;
  if (sh.stride_h != 1 || sh.stride_w != 1 || pad_t < 0 || pad_l < 0)
    return backward_data_col2im(dx, dout, w, init, sh, d, nt);

  // Stride 1: dx[n, c, h, w] = sum_{k, r, s} W[k, c, r, s] dout[n, k, h + pad_top - r*dh, ...]
  // is the forward convolution of dout (K channels) with W' (C, K/groups, R, S),
  // W'[g*Cg + c, k, r, s] = W[g*Kg + k, c, R-1-r, S-1-s], and padding d*(k-1) - pad.
  const int64_t RS = sh.r * sh.s;
  float* wf = partial_workspace(static_cast<size_t>(sh.c * d.kg * RS));
  for (int64_t gi = 0; gi < sh.groups; ++gi)
    for (int64_t k = 0; k < d.kg; ++k)
      for (int64_t c = 0; c < d.cg; ++c) {
        const float* src = w + ((gi * d.kg + k) * d.cg + c) * RS;
        float* dst = wf + ((gi * d.cg + c) * d.kg + k) * RS;
        for (int64_t t = 0; t < RS; ++t) dst[t] = src[RS - 1 - t];
      }
  Conv2dShape t{};
  t.n = sh.n;
  t.c = sh.k;
  t.h = sh.p;
  t.w = sh.q;
  t.k = sh.c;
  t.r = sh.r;
  t.s = sh.s;
  t.p = sh.h;
  t.q = sh.w;
  t.stride_h = t.stride_w = 1;
  t.pad_top = pad_t;
  t.pad_left = pad_l;
  t.dil_h = sh.dil_h;
  t.dil_w = sh.dil_w;
  t.groups = sh.groups;
  forward_any(dx, dout, wf, init, t, nt);
}

void conv2d_backward_weight(float* dw, const float* dout, const float* x, const Conv2dShape& sh) {
  conv2d_check_shape(sh);
  const int nt = get_num_threads();
  if (use_depthwise(sh)) return depthwise_backward_weight(dw, dout, x, sh, dims_of(sh), nt);
  if (dims_of(sh).is_1x1) return backward_weight_1x1(dw, dout, x, sh, nt);
  if (use_lanes_backward_weight(sh)) return lanes_backward_weight(dw, dout, x, sh, nt);
  implicit_backward_weight(dw, dout, x, sh, nt);
}

int conv2d_force_path(int mode) {
  FL_CHECK(mode >= 0 && mode <= 2, "mode: expected 0, 1 or 2, got ", mode);
  g_force_path.store(mode, std::memory_order_relaxed);
  return conv_kernels().nr;
}

void conv2d_backward_bias(float* db, const float* dout, int64_t n, int64_t k, int64_t pq) {
  FL_CHECK(n >= 0 && k >= 0 && pq >= 0, "conv2d_backward_bias: negative size");
  const int nt = get_num_threads();
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && n * k * pq > 65536)
  for (int64_t kk = 0; kk < k; ++kk) {
    double acc = 0.0;  // sums of up to N*PQ terms: accumulate the per-plane sums in double
    for (int64_t i = 0; i < n; ++i) {
      const float* plane = dout + (i * k + kk) * pq;
      // 16 partial sums: independent add chains (vectorised), so the loop runs at the
      // speed of the loads rather than one add latency per vector (about 2x faster).
      float part[16] = {};
      int64_t t = 0;
      for (; t + 16 <= pq; t += 16)
        for (int j = 0; j < 16; ++j) part[j] += plane[t + j];
      float s = 0.0f;
      for (; t < pq; ++t) s += plane[t];
      for (int j = 0; j < 16; ++j) s += part[j];
      acc += s;
    }
    db[kk] = static_cast<float>(acc);
  }
}

}  // namespace fastlayers
