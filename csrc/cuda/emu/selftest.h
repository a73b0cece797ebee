// Launchers of the emulator's own test kernels (csrc/cuda/emu/selftest.cu): each kernel
// comes in a correct variant and one with a planted bug that the emulator must catch.
// They throw fastlayers::cuda::CudaError when the launch fails.
#pragma once

#include <cstdint>

#include "cuda/cuda_compat.h"

namespace fl_emu::selftest {

// out[b*B + t] = in[b*B + B-1-t] through dynamic shared memory; n = grid * B.
// Bug (sync=false): no __syncthreads between the write and the read of shared memory.
void block_reverse(float* out, const float* in, int n, int block, bool sync, cudaStream_t stream);

// out[i] = in[i] for i < n with `block`-thread blocks. Bug (checked=false): no bounds check,
// so the last block writes past out[n - 1].
void bounded_copy(float* out, const float* in, int n, int block, bool checked, cudaStream_t stream);

// One block of `block` threads; out[w] = sum of in over warp w. Correct: each warp's mask
// names its existing lanes and the shuffle width is its lane count (a power of two).
// Bug (full_mask=true): mask 0xffffffff in a partial last warp.
void warp_sum(float* out, const float* in, int block, bool full_mask, cudaStream_t stream);

// One block of `block` threads: out[t] = t + 1 after a barrier. Bug (divergent=true): the
// barrier is inside `if (threadIdx.x < 16)`.
void barrier_in_if(float* out, int block, bool divergent, cudaStream_t stream);

// out[i] = 1 for i < n, launched with `out` as given (the test passes a host pointer).
void fill_ones(float* out, int n, cudaStream_t stream);

// Deadlock: lanes 0..15 of a block of 32 wait at __syncwarp(0xffff) after lanes 16..31
// wait at __syncthreads, when deadlock=true; else both halves reach the same barrier.
void warp_then_barrier(float* out, bool deadlock, cudaStream_t stream);

// Two barriers at different lines reached by different threads (bug) or one barrier.
void two_barriers(float* out, bool bug, cudaStream_t stream);

// out[b] = sum of in[b*block : (b+1)*block] over `grid` blocks: warp shuffles, one partial
// per warp in a static shared array, then thread 0 adds the partials. Bug (all_slots=true):
// thread 0 adds all 32 slots, most of which no warp of the block wrote.
void block_sums(float* out, const float* in, int grid, int block, bool all_slots, cudaStream_t stream);

// out[b] = in[0] + ... + in[b], one block per element. Correct: block b adds its own inputs.
// Bug (chained=true): block b adds in[b] to out[b-1], which another block writes, so the
// result depends on the order in which blocks run.
void prefix_sums(float* out, const float* in, int n, bool chained, cudaStream_t stream);

// Two blocks of 32 threads each add blockIdx.x + 1 to out[threadIdx.x] (32 elements): with
// atomicAdd (correct), or by a plain read-modify-write (bug: two blocks write one element).
void two_writers(float* out, bool atomic, cudaStream_t stream);

// Shuffle, vote and atomics sampler: out (6, block) (see selftest.cu).
void warp_ops(float* out, int* counter, int block, cudaStream_t stream);

// A trivial kernel (out[linear thread id] = 1 for the first block) launched with the given
// configuration, to test the launch checks.
void launch_config(float* out, dim3 grid, dim3 block, size_t shmem, cudaStream_t stream);

}  // namespace fl_emu::selftest
