// A CPU emulator of the CUDA execution model. A .cu file compiled by the host compiler with
// FASTLAYERS_CUDA_EMU defined includes this (through cuda/cuda_compat.h) instead of
// <cuda_runtime.h>, and the same kernel source runs on the CPU, so kernels are tested on
// machines without a GPU. Test builds only: it is slow (one context switch per thread per
// barrier) and checks everything it can.
//
// Model:
//  - Blocks run one after another; the threads of a block run as fibers (ucontext, one
//    stack each) driven by a scheduler, or as OS threads (set_engine("threads"), for
//    ThreadSanitizer). FL_SHARED arrays are function statics (one block at a time), NaN-filled per block.
//  - __syncthreads() and the warp operations (__shfl*_sync, __ballot_sync, __any_sync,
//    __all_sync, __syncwarp) are rendezvous points checked for call site, mask, exited
//    threads and deadlock; a violation aborts the launch with a diagnostic naming the
//    kernel, the block and the thread.
//  - The schedule (set_schedule) decides which runnable thread resumes when one blocks, so
//    ordering bugs (a missing __syncthreads) show under at least one schedule.
//  - cudaMalloc'd memory is filled with 0xFF bytes (float NaN) and surrounded by redzones
//    whose canaries are checked after every launch; launch configurations and pointer
//    arguments are validated before a kernel runs.
//  - Every byte a launch writes through its pointer arguments has one writing block, or
//    is written by atomics only (set_check_writers).
//
// What device code may use: threadIdx blockIdx blockDim gridDim warpSize, __syncthreads,
// __syncwarp, __shfl_sync/_up/_down/_xor (any 4- or 8-byte type, with width),
// __ballot_sync __any_sync __all_sync, atomicAdd (float double int unsigned
// unsigned long long), atomicSub, atomicMax/atomicMin (int unsigned), atomicCAS (int
// unsigned unsigned long long), atomicExch (int unsigned float), __ldg, float2/3/4
// int2/4 uint2/4 double2 + make_*, dim3 uint3, min/max, the float math of <cmath> plus
// rsqrtf __expf __logf __sinf __cosf __powf __fdividef __saturatef, __float_as_int
// __int_as_float __float_as_uint __uint_as_float __popc __clz __ffs __umulhi __brev.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if __cplusplus < 202002L
#error "the CUDA emulator needs C++20 (std::atomic_ref)"
#endif

// ---------------------------------------------------------------------------------------
// Qualifiers. Shared arrays are declared with FL_SHARED (below): a function static, since
// blocks run one at a time, NaN-filled per block.
// ---------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static_assert(false, "declare shared arrays with FL_SHARED(type, name, [dims]) (cuda_compat.h)");
#define __align__(n) __attribute__((aligned(n)))  // GNU attribute: allowed after `static`

// ---------------------------------------------------------------------------------------
// Vector types (global namespace, as in CUDA).
// ---------------------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) double2 { double x, y; };

inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

// ---------------------------------------------------------------------------------------
// Runtime API (the subset the launchers and bindings use).
// ---------------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct CUstream_st;  // opaque; the emulator runs everything synchronously
using cudaStream_t = CUstream_st*;

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();   // returns the last error and resets it
cudaError_t cudaPeekAtLastError();
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
// Stream-ordered allocation: the emulator runs every launch synchronously, so these are
// cudaMalloc / cudaFree (the stream is ignored).
inline cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t) { return cudaMalloc(ptr, bytes); }
inline cudaError_t cudaFreeAsync(void* ptr, cudaStream_t) { return cudaFree(ptr); }
// The pool behind them: its attributes are accepted and have no effect here.
struct CUmemPoolHandle_st;
using cudaMemPool_t = CUmemPoolHandle_st*;
enum cudaMemPoolAttr {
  cudaMemPoolAttrReleaseThreshold = 4,
};
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
// Raises the dynamic shared memory a kernel may be launched with above 48 KiB (up to
// 227 KiB, as on sm_90).
template <typename T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value);

// ---------------------------------------------------------------------------------------
// The emulator.
// ---------------------------------------------------------------------------------------
namespace fl_emu {

// Where a barrier or warp operation is called from.
struct Site {
  const char* file;
  int line;
};

// What an emulated CUDA thread sees; read by the threadIdx... macros.
struct ThreadCtx {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1};
  dim3 grid_dim{1, 1, 1};
  int tid = 0;            // linear thread id in the block (x fastest)
  void* block = nullptr;  // the emulator's block state
};

ThreadCtx& ctx();

// The diagnostic of the last failed launch or runtime call of this host thread ("" if
// none): kernel, block, thread and what happened.
std::string last_diagnostic();

// Thread schedule: "round-robin" (default), "greedy", "ascending", "descending", "random".
// ArgumentError-like std::invalid_argument for an unknown name.
void set_schedule(const std::string& name, uint64_t seed = 0);
std::pair<std::string, uint64_t> schedule();
extern const char* const kScheduleNames[];
extern const int kNumSchedules;

// Execution engine: "fibers" (default) or "threads" (one OS thread per CUDA thread, for
// ThreadSanitizer). The environment variable FASTLAYERS_EMU_ENGINE sets the default.
void set_engine(const std::string& name);
std::string engine();

// Live device allocations: (pointer, bytes).
std::vector<std::pair<uintptr_t, size_t>> live_allocations();
// Emulated device memory limit in bytes (cudaMalloc beyond it fails).
size_t memory_limit();

// Number of fiber context switches so far (for tests of the emulator itself).
uint64_t context_switches();

// The default pool's release threshold, as last set with cudaMemPoolSetAttribute (0 until
// then; it has no effect here).
uint64_t mempool_release_threshold();

// The one-writer check (on by default; FASTLAYERS_EMU_CHECK_WRITERS=0 turns it off): after
// each block, the allocations a kernel received as pointer arguments are compared with a
// snapshot, element by element (the pointer argument's element type), and an element
// changed by two different blocks of one launch fails the launch, naming both blocks,
// unless atomics changed it. On a GPU blocks run
// concurrently, so such a pair is a race. Returns the previous setting.
bool set_check_writers(bool on);
bool check_writers();
inline std::atomic<bool> g_check_writers{true};
// Atomics report their address while the check is on.
void note_atomic(const void* p, size_t bytes);
template <typename T>
inline void note_atomic(T* p) {
  if (g_check_writers.load(std::memory_order_relaxed)) note_atomic(static_cast<const void*>(p), sizeof(T));
}

// --- device-side entry points (called by the macros below) ------------------------------
void syncthreads(Site site);
enum class WarpOp : int { kSync, kShfl, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll };
// One lane's part of a warp rendezvous; returns the 64-bit result (bits of the shuffled
// value, or the vote).
uint64_t warp_op(Site site, WarpOp op, unsigned mask, uint64_t value, int arg, int width);
void* dynamic_shared();
// The first thread of a block to reach a FL_SHARED declaration fills the array with 0xFF
// bytes (float NaN), as a GPU block starts with undefined shared memory; later threads of
// the block, and later passes through the same declaration, leave it alone.
void fresh_shared(void* p, size_t bytes);
[[noreturn]] void device_fail(const std::string& what);

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && (sizeof(T) == 4 || sizeof(T) == 8),
                "warp shuffles take 4- or 8-byte values");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

template <typename T>
inline T shfl(Site s, WarpOp op, unsigned mask, T var, int arg, int width) {
  return from_bits<T>(warp_op(s, op, mask, to_bits(var), arg, width));
}
template <typename T>
inline T shfl_sync(Site s, unsigned mask, T var, int src_lane, int width = 32) {
  return shfl(s, WarpOp::kShfl, mask, var, src_lane, width);
}
template <typename T>
inline T shfl_up_sync(Site s, unsigned mask, T var, unsigned delta, int width = 32) {
  return shfl(s, WarpOp::kShflUp, mask, var, static_cast<int>(delta), width);
}
template <typename T>
inline T shfl_down_sync(Site s, unsigned mask, T var, unsigned delta, int width = 32) {
  return shfl(s, WarpOp::kShflDown, mask, var, static_cast<int>(delta), width);
}
template <typename T>
inline T shfl_xor_sync(Site s, unsigned mask, T var, int lane_mask, int width = 32) {
  return shfl(s, WarpOp::kShflXor, mask, var, lane_mask, width);
}
inline void syncwarp(Site s, unsigned mask = 0xffffffffu) { warp_op(s, WarpOp::kSync, mask, 0, 0, 32); }
inline unsigned ballot(Site s, unsigned mask, int pred) {
  return static_cast<unsigned>(warp_op(s, WarpOp::kBallot, mask, pred != 0, 0, 32));
}
inline int vote_any(Site s, unsigned mask, int pred) {
  return static_cast<int>(warp_op(s, WarpOp::kAny, mask, pred != 0, 0, 32));
}
inline int vote_all(Site s, unsigned mask, int pred) {
  return static_cast<int>(warp_op(s, WarpOp::kAll, mask, pred != 0, 0, 32));
}

// --- launch ---------------------------------------------------------------------------
struct PointerArg {
  int index;  // position in the argument list
  const void* ptr;
  size_t elem;  // size of the pointee (1 for void): the unit of the one-writer check
};

struct LaunchSpec {
  const char* kernel_name;
  const void* kernel;  // identity, for cudaFuncSetAttribute
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;
  std::vector<PointerArg> pointers;
  void (*run)(void*);  // runs the kernel body once for the current thread
  void* data;
};

// Validates and runs a launch; errors go to cudaGetLastError / last_diagnostic.
void launch_impl(const LaunchSpec& spec);
void set_max_dynamic_shared(const void* kernel, int bytes);

template <typename Tuple, size_t... I>
void collect_pointers(const Tuple& t, std::vector<PointerArg>& out, std::index_sequence<I...>) {
  (
      [&] {
        using E = std::tuple_element_t<I, Tuple>;
        if constexpr (std::is_pointer_v<E>) {
          using Pointee = std::remove_cv_t<std::remove_pointer_t<E>>;
          size_t elem = 1;
          if constexpr (!std::is_void_v<Pointee>) elem = sizeof(Pointee);
          out.push_back(PointerArg{static_cast<int>(I), reinterpret_cast<const void*>(std::get<I>(t)), elem});
        }
      }(),
      ...);
}

template <typename... P, typename... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t shmem,
            cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "FL_LAUNCH: wrong number of kernel arguments");
  // Arguments are converted to the parameter types at the launch, as CUDA does; each
  // emulated thread then receives its own copies.
  using Params = std::tuple<std::remove_cv_t<std::remove_reference_t<P>>...>;
  struct Frame {
    void (*kernel)(P...);
    Params params;
  };
  Frame frame{kernel, Params(static_cast<std::remove_cv_t<std::remove_reference_t<P>>>(std::forward<A>(args))...)};
  LaunchSpec spec{name, reinterpret_cast<const void*>(kernel), grid, block, shmem, stream, {},
                  [](void* d) {
                    Frame& f = *static_cast<Frame*>(d);
                    std::apply(f.kernel, f.params);
                  },
                  &frame};
  collect_pointers(frame.params, spec.pointers, std::make_index_sequence<sizeof...(P)>{});
  launch_impl(spec);
}

}  // namespace fl_emu

template <typename T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > 227 * 1024) {
    return cudaErrorInvalidValue;
  }
  ::fl_emu::set_max_dynamic_shared(reinterpret_cast<const void*>(kernel), value);
  return cudaSuccess;
}

// ---------------------------------------------------------------------------------------
// Built-in variables and device functions as macros over the current thread's context.
// ---------------------------------------------------------------------------------------
#define threadIdx (::fl_emu::ctx().thread_idx)
#define blockIdx (::fl_emu::ctx().block_idx)
#define blockDim (::fl_emu::ctx().block_dim)
#define gridDim (::fl_emu::ctx().grid_dim)
constexpr int warpSize = 32;

#define FL_EMU_SITE (::fl_emu::Site{__FILE__, __LINE__})
#define __syncthreads() ::fl_emu::syncthreads(FL_EMU_SITE)
#define __syncwarp(...) ::fl_emu::syncwarp(FL_EMU_SITE __VA_OPT__(, ) __VA_ARGS__)
#define __shfl_sync(...) ::fl_emu::shfl_sync(FL_EMU_SITE, __VA_ARGS__)
#define __shfl_up_sync(...) ::fl_emu::shfl_up_sync(FL_EMU_SITE, __VA_ARGS__)
#define __shfl_down_sync(...) ::fl_emu::shfl_down_sync(FL_EMU_SITE, __VA_ARGS__)
#define __shfl_xor_sync(...) ::fl_emu::shfl_xor_sync(FL_EMU_SITE, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::fl_emu::ballot(FL_EMU_SITE, (mask), (pred))
#define __any_sync(mask, pred) ::fl_emu::vote_any(FL_EMU_SITE, (mask), (pred))
#define __all_sync(mask, pred) ::fl_emu::vote_all(FL_EMU_SITE, (mask), (pred))

// FL_LAUNCH(kernel, grid, block, shmem_bytes, stream, args...): the launch runs to
// completion before the macro returns; errors are read with cudaGetLastError().
#define FL_LAUNCH(kernel, grid, block, shmem, stream, ...) \
  ::fl_emu::launch(#kernel, kernel, dim3(grid), dim3(block), (shmem), (stream) __VA_OPT__(, ) __VA_ARGS__)
#define FL_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::fl_emu::dynamic_shared())
// FL_SHARED(float, tile, [32][33]): a static shared array, a function static here (blocks
// run one at a time), NaN-filled at the start of each block.
#define FL_SHARED(type, name, ...) \
  static type name __VA_ARGS__;    \
  ::fl_emu::fresh_shared(&name, sizeof(name))

// ---------------------------------------------------------------------------------------
// Atomics (std::atomic_ref: real atomics, so the threads engine is race-free here too).
// ---------------------------------------------------------------------------------------
// Every atomic goes through fl_emu_atomic: it notes the address for the one-writer check,
// then applies `op` to a std::atomic_ref of the target.
template <typename T, typename Op>
inline T fl_emu_atomic(T* p, Op op) {
  ::fl_emu::note_atomic(p);
  std::atomic_ref<T> a(*p);
  return op(a);
}
// A read-modify-write by compare-and-swap: new value f(old); returns old.
template <typename T, typename F>
inline T fl_emu_atomic_update(T* p, F f) {
  return fl_emu_atomic(p, [&](std::atomic_ref<T>& a) {
    T old = a.load();
    while (!a.compare_exchange_weak(old, f(old))) {
    }
    return old;
  });
}

#define FL_EMU_ATOMIC(name, T, expr) \
  inline T name(T* p, T v) {         \
    return fl_emu_atomic(p, [v](std::atomic_ref<T>& a) { return expr; }); \
  }
FL_EMU_ATOMIC(atomicAdd, float, a.fetch_add(v))
FL_EMU_ATOMIC(atomicAdd, double, a.fetch_add(v))
FL_EMU_ATOMIC(atomicAdd, int, a.fetch_add(v))
FL_EMU_ATOMIC(atomicAdd, unsigned, a.fetch_add(v))
FL_EMU_ATOMIC(atomicAdd, unsigned long long, a.fetch_add(v))
FL_EMU_ATOMIC(atomicSub, int, a.fetch_sub(v))
FL_EMU_ATOMIC(atomicSub, unsigned, a.fetch_sub(v))
FL_EMU_ATOMIC(atomicExch, int, a.exchange(v))
FL_EMU_ATOMIC(atomicExch, unsigned, a.exchange(v))
FL_EMU_ATOMIC(atomicExch, float, a.exchange(v))
#undef FL_EMU_ATOMIC

inline int atomicMax(int* p, int v) { return fl_emu_atomic_update(p, [v](int o) { return o > v ? o : v; }); }
inline unsigned atomicMax(unsigned* p, unsigned v) {
  return fl_emu_atomic_update(p, [v](unsigned o) { return o > v ? o : v; });
}
inline int atomicMin(int* p, int v) { return fl_emu_atomic_update(p, [v](int o) { return o < v ? o : v; }); }
inline unsigned atomicMin(unsigned* p, unsigned v) {
  return fl_emu_atomic_update(p, [v](unsigned o) { return o < v ? o : v; });
}

template <typename T>
inline T fl_emu_atomic_cas(T* p, T compare, T value) {
  return fl_emu_atomic(p, [&](std::atomic_ref<T>& a) {
    a.compare_exchange_strong(compare, value);
    return compare;  // the old value either way
  });
}
inline int atomicCAS(int* p, int c, int v) { return fl_emu_atomic_cas(p, c, v); }
inline unsigned atomicCAS(unsigned* p, unsigned c, unsigned v) { return fl_emu_atomic_cas(p, c, v); }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long c, unsigned long long v) {
  return fl_emu_atomic_cas(p, c, v);
}

// ---------------------------------------------------------------------------------------
// Math and bit intrinsics.
// ---------------------------------------------------------------------------------------
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}

// CUDA's min/max overloads (device code calls them unqualified): fminf/fmaxf for floats,
// the common type for integers (min(int, long) is a long, as with nvcc).
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
template <typename A, typename B>
  requires(std::is_integral_v<A> && std::is_integral_v<B>)
inline constexpr std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(a) : static_cast<C>(b);
}
template <typename A, typename B>
  requires(std::is_integral_v<A> && std::is_integral_v<B>)
inline constexpr std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) > static_cast<C>(b) ? static_cast<C>(a) : static_cast<C>(b);
}
