// Small kernels for the emulator's own tests: each in a correct variant and one with a
// planted bug (the tests assert that the emulator catches every bug, and that every
// correct variant passes under every schedule). Built into fastlayers._cuda_emu only.
#include "cuda/emu/selftest.h"

#include <string>

namespace fl_emu::selftest {

using fastlayers::cuda::check_launch;

__global__ void block_reverse_kernel(float* out, const float* in, bool sync) {
  FL_DYNAMIC_SHARED(float, s);  // (blockDim.x,)
  const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
  s[t] = in[base + t];
  if (sync) __syncthreads();
  out[base + t] = s[blockDim.x - 1 - t];
}

void block_reverse(float* out, const float* in, int n, int block, bool sync, cudaStream_t stream) {
  FL_LAUNCH(block_reverse_kernel, n / block, block, block * sizeof(float), stream, out, in, sync);
  check_launch("block_reverse", "n=" + std::to_string(n) + ", block=" + std::to_string(block));
}

__global__ void bounded_copy_kernel(float* out, const float* in, int n, bool checked) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (checked && i >= n) return;
  out[i] = i < n ? in[i] : 0.0f;  // the read is in bounds either way: the bug is the write
}

void bounded_copy(float* out, const float* in, int n, int block, bool checked, cudaStream_t stream) {
  FL_LAUNCH(bounded_copy_kernel, (n + block - 1) / block, block, 0, stream, out, in, n, checked);
  check_launch("bounded_copy", "n=" + std::to_string(n) + ", block=" + std::to_string(block));
}

__global__ void warp_sum_kernel(float* out, const float* in, bool full_mask) {
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  const int lanes = min(32, static_cast<int>(blockDim.x) - warp * 32);
  const unsigned mask = full_mask || lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  float v = in[t];
  for (int offset = lanes / 2; offset > 0; offset /= 2) v += __shfl_down_sync(mask, v, offset, lanes);
  if (lane == 0) out[warp] = v;
}

void warp_sum(float* out, const float* in, int block, bool full_mask, cudaStream_t stream) {
  FL_LAUNCH(warp_sum_kernel, 1, block, 0, stream, out, in, full_mask);
  check_launch("warp_sum", "block=" + std::to_string(block));
}

__global__ void barrier_in_if_kernel(float* out, bool divergent) {
  const int t = threadIdx.x;
  if (divergent) {
    if (t < 16) __syncthreads();
  } else {
    __syncthreads();
  }
  out[t] = static_cast<float>(t + 1);
}

void barrier_in_if(float* out, int block, bool divergent, cudaStream_t stream) {
  FL_LAUNCH(barrier_in_if_kernel, 1, block, 0, stream, out, divergent);
  check_launch("barrier_in_if", "block=" + std::to_string(block));
}

__global__ void fill_ones_kernel(float* out, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = 1.0f;
}

void fill_ones(float* out, int n, cudaStream_t stream) {
  FL_LAUNCH(fill_ones_kernel, 2, 64, 0, stream, out, n);
  check_launch("fill_ones", "n=" + std::to_string(n));
}

__global__ void warp_then_barrier_kernel(float* out, bool deadlock) {
  const int t = threadIdx.x;
  if (deadlock && t < 16) __syncwarp(0xffffffffu);  // lanes 16..31 never come
  __syncthreads();
  out[t] = 1.0f;
}

void warp_then_barrier(float* out, bool deadlock, cudaStream_t stream) {
  FL_LAUNCH(warp_then_barrier_kernel, 1, 32, 0, stream, out, deadlock);
  check_launch("warp_then_barrier", "block=32");
}

__global__ void two_barriers_kernel(float* out, bool bug) {
  const int t = threadIdx.x;
  if (bug && t % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[t] = 2.0f;
}

void two_barriers(float* out, bool bug, cudaStream_t stream) {
  FL_LAUNCH(two_barriers_kernel, 1, 8, 0, stream, out, bug);
  check_launch("two_barriers", "block=8");
}

__global__ void block_sums_kernel(float* out, const float* in, bool all_slots) {
  FL_SHARED(float, part, [32]);
  const int t = threadIdx.x, lane = t % 32, warp = t / 32, nwarps = (blockDim.x + 31) / 32;
  float v = in[blockIdx.x * blockDim.x + t];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (t == 0) {
    float sum = 0.0f;
    for (int w = 0; w < (all_slots ? 32 : nwarps); ++w) sum += part[w];
    out[blockIdx.x] = sum;
  }
}

void block_sums(float* out, const float* in, int grid, int block, bool all_slots, cudaStream_t stream) {
  FL_LAUNCH(block_sums_kernel, grid, block, 0, stream, out, in, all_slots);
  check_launch("block_sums", "grid=" + std::to_string(grid) + ", block=" + std::to_string(block));
}

__global__ void prefix_sums_kernel(float* out, const float* in, bool chained) {
  if (threadIdx.x != 0) return;
  const int b = blockIdx.x;
  if (chained) {
    out[b] = in[b] + (b > 0 ? out[b - 1] : 0.0f);
  } else {
    float sum = 0.0f;
    for (int i = 0; i <= b; ++i) sum += in[i];
    out[b] = sum;
  }
}

void prefix_sums(float* out, const float* in, int n, bool chained, cudaStream_t stream) {
  FL_LAUNCH(prefix_sums_kernel, n, 32, 0, stream, out, in, chained);
  check_launch("prefix_sums", "n=" + std::to_string(n));
}

__global__ void two_writers_kernel(float* out, bool atomic) {
  const float v = static_cast<float>(blockIdx.x + 1);
  if (atomic) {
    atomicAdd(out + threadIdx.x, v);
  } else {
    out[threadIdx.x] += v;
  }
}

void two_writers(float* out, bool atomic, cudaStream_t stream) {
  FL_LAUNCH(two_writers_kernel, 2, 32, 0, stream, out, atomic);
  check_launch("two_writers", "grid=2, block=32");
}

// out (6, blockDim.x): shfl_xor(t, 1), shfl_up(t, 3), any(t == 5), all(t < 64),
// popc(ballot(t odd)), shfl(t, lane 7, width 8); counter accumulates the thread count by
// atomicAdd.
__global__ void warp_ops_kernel(float* out, int* counter) {
  const int t = threadIdx.x;
  const int x = __shfl_xor_sync(0xffffffffu, t, 1);
  const int up = __shfl_up_sync(0xffffffffu, t, 3);
  const int any = __any_sync(0xffffffffu, t == 5);
  const int all = __all_sync(0xffffffffu, t < 64);
  const unsigned odd = __ballot_sync(0xffffffffu, t % 2);
  const float bcast = __shfl_sync(0xffffffffu, static_cast<float>(t), 7, 8);
  __syncwarp();
  atomicAdd(counter, 1);
  const int n = blockDim.x;
  out[0 * n + t] = x;
  out[1 * n + t] = up;
  out[2 * n + t] = any;
  out[3 * n + t] = all;
  out[4 * n + t] = __popc(odd);
  out[5 * n + t] = bcast;
}

void warp_ops(float* out, int* counter, int block, cudaStream_t stream) {
  FL_LAUNCH(warp_ops_kernel, 1, block, 0, stream, out, counter);
  check_launch("warp_ops", "block=" + std::to_string(block));
}

__global__ void config_kernel(float* out) {
  if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0) {
    out[(threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x] = 1.0f;
  }
}

void launch_config(float* out, dim3 grid, dim3 block, size_t shmem, cudaStream_t stream) {
  FL_LAUNCH(config_kernel, grid, block, shmem, stream, out);
  check_launch("launch_config", "grid=(" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
                                    std::to_string(grid.z) + "), block=(" + std::to_string(block.x) + "," +
                                    std::to_string(block.y) + "," + std::to_string(block.z) + ")");
}

}  // namespace fl_emu::selftest
