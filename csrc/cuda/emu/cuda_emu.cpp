// The CPU emulator of the CUDA execution model: runtime API (memory with redzones, errors),
// launch validation, and the two engines that run a block: fibers (ucontext, driven by a
// scheduler with a choice of schedules) and OS threads (for ThreadSanitizer). The checks
// of barriers and warp operations live in Block and are shared by both engines.
#include "cuda/emu/cuda_emu.h"

#include <pthread.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define FL_EMU_ASAN 1
#define FL_EMU_NO_ASAN __attribute__((no_sanitize_address))
#else
#define FL_EMU_ASAN 0
#define FL_EMU_NO_ASAN
#endif
#if defined(__SANITIZE_THREAD__)
#define FL_EMU_TSAN 1
#else
#define FL_EMU_TSAN 0
#endif

namespace fl_emu {
namespace {

// ---------------------------------------------------------------------------------------
// Per-host-thread error state (as in CUDA, the last error is per host thread).
// ---------------------------------------------------------------------------------------
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local std::string t_diagnostic;

cudaError_t set_error(cudaError_t err, std::string diag) {
  t_last_error = err;
  t_diagnostic = std::move(diag);
  return err;
}

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

const char* basename_of(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

std::string site_str(Site s) { return cat(basename_of(s.file), ":", s.line); }
bool same_site(Site a, Site b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

// ---------------------------------------------------------------------------------------
// Device memory: [front redzone | user bytes | back redzone], the user bytes filled with
// 0xFF (float NaN), the redzones with a canary that depends on the allocation, so a value
// copied out of one allocation's redzone into another's is still seen.
// ---------------------------------------------------------------------------------------
constexpr size_t kRedzone = 512;
constexpr size_t kAlign = 256;

struct Allocation {
  char* raw;      // start of the front redzone
  size_t bytes;   // user bytes
  size_t total;   // redzones + user bytes, rounded up
  uint32_t salt;
};

std::mutex g_mem_mutex;
std::map<uintptr_t, Allocation> g_allocs;  // keyed by user pointer
size_t g_mem_in_use = 0;
uint32_t g_alloc_serial = 0;

size_t default_memory_limit() {
  if (const char* e = std::getenv("FASTLAYERS_EMU_MEMORY")) return static_cast<size_t>(std::strtoull(e, nullptr, 10));
  return size_t(4) << 30;  // 4 GiB
}

inline uint8_t canary_byte(uint32_t salt, size_t offset) {
  // Word w of the redzone is a quiet NaN whose payload mixes salt and w: reading a redzone
  // as floats gives NaN, and no two allocations share a pattern.
  uint32_t w = static_cast<uint32_t>(offset / 4) * 0x9E3779B1u ^ salt;
  w ^= w >> 15;
  w *= 0x85EBCA77u;
  w ^= w >> 13;
  const uint32_t word = 0x7FC00000u | (w & 0x003FFFFFu);
  return static_cast<uint8_t>(word >> (8 * (offset % 4)));
}

void write_canary(char* base, size_t from, size_t to, uint32_t salt) {
  for (size_t o = from; o < to; ++o) base[o] = static_cast<char>(canary_byte(salt, o));
}

// The first clobbered byte offset in [from, to), or `to`. Reads poisoned memory under ASan.
FL_EMU_NO_ASAN size_t check_canary(const char* base, size_t from, size_t to, uint32_t salt) {
  for (size_t o = from; o < to; ++o) {
    if (static_cast<uint8_t>(base[o]) != canary_byte(salt, o)) return o;
  }
  return to;
}

void poison(const void* p, size_t n) {
#if FL_EMU_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}
void unpoison(const void* p, size_t n) {
#if FL_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

// Describes a clobbered redzone of `a`, or returns "".
std::string redzone_damage(const Allocation& a) {
  const size_t user_end = kRedzone + a.bytes;
  const size_t before = check_canary(a.raw, 0, kRedzone, a.salt);
  if (before != kRedzone) {
    return cat("out-of-bounds write before the start of an allocation of ", a.bytes, " bytes at 0x", std::hex,
               reinterpret_cast<uintptr_t>(a.raw + kRedzone), std::dec, " (", kRedzone - before,
               " bytes before it)");
  }
  const size_t after = check_canary(a.raw, user_end, a.total, a.salt);
  if (after != a.total) {
    return cat("out-of-bounds write past the end of an allocation of ", a.bytes, " bytes at 0x", std::hex,
               reinterpret_cast<uintptr_t>(a.raw + kRedzone), std::dec, " (byte ", after - kRedzone,
               ", i.e. ", after - user_end, " bytes past the end)");
  }
  return "";
}

// The allocation containing [p, p + n) (n = 0: p may also be its end), or nullptr.
const Allocation* find_allocation(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  const uintptr_t base = it->first;
  if (a < base || a > base + it->second.bytes) return nullptr;
  if (n > it->second.bytes - (a - base)) return nullptr;
  return &it->second;
}

std::string describe_pointer(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  std::string near;
  if (it != g_allocs.begin()) {
    auto prev = std::prev(it);
    if (a >= prev->first + prev->second.bytes && a - (prev->first + prev->second.bytes) < 65536) {
      near = cat(" (", a - (prev->first + prev->second.bytes), " bytes past the end of the allocation of ",
                 prev->second.bytes, " bytes at 0x", std::hex, prev->first, ")");
    }
  }
  return cat("0x", std::hex, a, std::dec, near);
}

// ---------------------------------------------------------------------------------------
// Settings.
// ---------------------------------------------------------------------------------------
enum class Order { kAscending, kDescending, kRandom };
enum class Policy { kRoundRobin, kGreedy };

struct ScheduleSetting {
  std::string name = "round-robin";
  uint64_t seed = 0;
  Order order = Order::kAscending;
  Policy policy = Policy::kRoundRobin;
};

std::mutex g_settings_mutex;
ScheduleSetting g_schedule;
std::string g_engine;
std::unordered_map<const void*, int> g_max_dynamic_shared;
std::atomic<uint64_t> g_switches{0};

ScheduleSetting make_schedule(const std::string& name, uint64_t seed) {
  ScheduleSetting s;
  s.name = name;
  s.seed = seed;
  if (name == "round-robin" || name == "ascending") {
    s.order = Order::kAscending;
    s.policy = Policy::kRoundRobin;
  } else if (name == "greedy") {
    s.order = Order::kAscending;
    s.policy = Policy::kGreedy;
  } else if (name == "descending") {
    s.order = Order::kDescending;
    s.policy = Policy::kRoundRobin;
  } else if (name == "random") {
    s.order = Order::kRandom;
    s.policy = Policy::kRoundRobin;
  } else {
    std::string names;
    for (int i = 0; i < kNumSchedules; ++i) names += cat(i ? ", '" : "'", kScheduleNames[i], "'");
    throw std::invalid_argument(cat("schedule: expected one of ", names, ", got '", name, "'"));
  }
  return s;
}

std::string default_engine() {
#if FL_EMU_TSAN
  return "threads";  // TSan does not understand ucontext fibers
#else
  if (const char* e = std::getenv("FASTLAYERS_EMU_ENGINE"); e && *e) return e;
  return "fibers";
#endif
}

struct SettingsInit {
  SettingsInit() {
    g_engine = default_engine();
    if (g_engine != "fibers" && g_engine != "threads") {
      std::fprintf(stderr, "fastlayers emulator: FASTLAYERS_EMU_ENGINE='%s' is not 'fibers' or 'threads'; using fibers\n",
                   g_engine.c_str());
      g_engine = "fibers";
    }
    if (const char* e = std::getenv("FASTLAYERS_EMU_CHECK_WRITERS"); e && *e) {
      g_check_writers = std::string(e) != "0";
    }
    if (const char* e = std::getenv("FASTLAYERS_EMU_SCHEDULE"); e && *e) {
      try {
        g_schedule = make_schedule(e, 0);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "fastlayers emulator: FASTLAYERS_EMU_SCHEDULE: %s\n", ex.what());
      }
    }
  }
} g_settings_init;

// ---------------------------------------------------------------------------------------
// A block being run: the per-thread states and the rules of barriers and warp operations.
// Engine-independent; the engine supplies how a thread waits and how a failure unwinds.
// ---------------------------------------------------------------------------------------
enum class State { kRunnable, kBarrier, kWarp, kExited };

struct ThreadState {
  State state = State::kRunnable;
  Site site{"", 0};
  // Warp operation in progress.
  WarpOp op = WarpOp::kSync;
  unsigned mask = 0;
  uint64_t value = 0;
  int arg = 0;
  int width = 32;
  uint64_t result = 0;
};

struct Launch;

struct Block {
  const Launch* launch = nullptr;
  uint3 block_idx{0, 0, 0};
  int nthreads = 0;
  std::vector<ThreadState> th;
  std::vector<ThreadCtx> ctxs;
  int live = 0;      // not exited
  int runnable = 0;  // state == kRunnable (including the one running)
  int exited = 0;
  int at_barrier = 0;
  bool failed = false;
  std::string error;  // set when failed
  // Static shared arrays already NaN-filled in this block (see fresh_shared).
  std::vector<const void*> fresh;
  std::mutex fresh_mutex;  // the threads engine runs the block's threads concurrently

  std::string thread_str(int tid) const {
    const ThreadCtx& c = ctxs[static_cast<size_t>(tid)];
    return cat("(", c.thread_idx.x, ",", c.thread_idx.y, ",", c.thread_idx.z, ")");
  }
  std::string threads_str(const std::vector<int>& tids, size_t max_listed = 8) const {
    std::string s;
    for (size_t i = 0; i < tids.size() && i < max_listed; ++i) s += (i ? " " : "") + thread_str(tids[i]);
    if (tids.size() > max_listed) s += cat(" and ", tids.size() - max_listed, " more");
    return s;
  }

  // Records the failure of thread `tid`. The engine then stops the thread.
  void record_failure(int tid, const std::string& what);

  void set_state(int tid, State s) {
    ThreadState& t = th[static_cast<size_t>(tid)];
    if (t.state == State::kRunnable) --runnable;
    if (t.state == State::kBarrier) --at_barrier;
    t.state = s;
    if (s == State::kRunnable) ++runnable;
    if (s == State::kBarrier) ++at_barrier;
  }

  static const char* op_name(WarpOp op) {
    switch (op) {
      case WarpOp::kSync: return "__syncwarp";
      case WarpOp::kShfl: return "__shfl_sync";
      case WarpOp::kShflUp: return "__shfl_up_sync";
      case WarpOp::kShflDown: return "__shfl_down_sync";
      case WarpOp::kShflXor: return "__shfl_xor_sync";
      case WarpOp::kBallot: return "__ballot_sync";
      case WarpOp::kAny: return "__any_sync";
      case WarpOp::kAll: return "__all_sync";
    }
    return "?";
  }

  // "" if the block can still progress, else the deadlock description: the waiting
  // threads grouped by where they wait.
  std::string check_progress() const {
    if (runnable > 0 || live == 0) return "";
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    for (int i = 0; i < nthreads; ++i) {
      const ThreadState& t = th[static_cast<size_t>(i)];
      if (t.state == State::kExited) continue;
      std::string where = t.state == State::kBarrier
                              ? std::string("__syncthreads")
                              : cat(op_name(t.op), "(mask 0x", std::hex, t.mask, ")");
      where += " (" + site_str(t.site) + ")";
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == where; });
      if (it == groups.end()) {
        groups.push_back({where, {i}});
      } else {
        it->second.push_back(i);
      }
    }
    std::string s = "deadlock: no thread can run; waiting:";
    for (size_t k = 0; k < groups.size(); ++k) {
      s += cat(k ? "; " : " ", groups[k].second.size(), " thread(s) at ", groups[k].first, ": ",
               threads_str(groups[k].second, 4));
    }
    if (exited > 0) s += cat("; ", exited, " thread(s) exited");
    return s;
  }

  // --- __syncthreads ---------------------------------------------------------------------
  // Returns "" on success (and the thread is waiting or released), else the error.
  std::string arrive_barrier(int tid, Site site) {
    if (exited > 0) {
      std::vector<int> gone;
      for (int i = 0; i < nthreads; ++i) {
        if (th[static_cast<size_t>(i)].state == State::kExited) gone.push_back(i);
      }
      return cat("__syncthreads (", site_str(site), ") reached after ", exited, " thread(s) of the block exited (",
                 threads_str(gone), "): every thread of the block must reach the same __syncthreads");
    }
    for (int i = 0; i < nthreads; ++i) {
      const ThreadState& t = th[static_cast<size_t>(i)];
      if (t.state == State::kBarrier && !same_site(t.site, site)) {
        return cat("__syncthreads reached from different places: this thread at ", site_str(site), ", thread ",
                   thread_str(i), " waits at ", site_str(t.site));
      }
    }
    th[static_cast<size_t>(tid)].site = site;
    set_state(tid, State::kBarrier);
    if (at_barrier == live) {
      for (int i = 0; i < nthreads; ++i) {
        if (th[static_cast<size_t>(i)].state == State::kBarrier) set_state(i, State::kRunnable);
      }
      return "";
    }
    return check_progress();
  }

  // --- warp operations ----------------------------------------------------------------
  int warp_lanes(int warp) const { return std::min(32, nthreads - warp * 32); }

  std::string arrive_warp(int tid, Site site, WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
    const int lane = tid % 32, warp = tid / 32, base = warp * 32;
    const int nl = warp_lanes(warp);
    const char* name = op_name(op);
    if (!(mask >> lane & 1u)) {
      return cat(name, " (", site_str(site), "): the calling lane ", lane, " is not in the mask 0x", std::hex, mask);
    }
    if (nl < 32 && (mask >> nl) != 0) {
      return cat(name, " (", site_str(site), "): the mask 0x", std::hex, mask, std::dec, " names lanes ", nl,
                 "..31, which do not exist: warp ", warp, " has only ", nl, " lanes (the block has ", nthreads,
                 " threads)");
    }
    if (op >= WarpOp::kShfl && op <= WarpOp::kShflXor && (width < 1 || width > 32 || (width & (width - 1)))) {
      return cat(name, " (", site_str(site), "): width ", width, " is not a power of two in 1..32");
    }
    for (int l = 0; l < nl; ++l) {
      if ((mask >> l & 1u) && th[static_cast<size_t>(base + l)].state == State::kExited) {
        return cat(name, " (", site_str(site), "): the mask 0x", std::hex, mask, std::dec, " names lane ", l,
                   " (thread ", thread_str(base + l), "), which has exited");
      }
    }
    ThreadState& me = th[static_cast<size_t>(tid)];
    me.site = site;
    me.op = op;
    me.mask = mask;
    me.value = value;
    me.arg = arg;
    me.width = width;
    set_state(tid, State::kWarp);
    // Complete when every lane of the mask waits here with the same mask.
    for (int l = 0; l < nl; ++l) {
      if (!(mask >> l & 1u)) continue;
      const ThreadState& t = th[static_cast<size_t>(base + l)];
      if (t.state != State::kWarp || !same_site(t.site, site) || t.mask != mask) return check_progress();
    }
    std::string err = complete_warp(base, nl, op, mask);
    if (!err.empty()) return err;
    for (int l = 0; l < nl; ++l) {
      if (mask >> l & 1u) set_state(base + l, State::kRunnable);
    }
    return "";
  }

  std::string complete_warp(int base, int nl, WarpOp op, unsigned mask) {
    if (op == WarpOp::kSync) return "";
    if (op == WarpOp::kBallot || op == WarpOp::kAny || op == WarpOp::kAll) {
      unsigned votes = 0;
      for (int l = 0; l < nl; ++l) {
        if ((mask >> l & 1u) && th[static_cast<size_t>(base + l)].value) votes |= 1u << l;
      }
      const uint64_t r = op == WarpOp::kBallot ? votes : op == WarpOp::kAny ? (votes != 0) : (votes == mask);
      for (int l = 0; l < nl; ++l) {
        if (mask >> l & 1u) th[static_cast<size_t>(base + l)].result = r;
      }
      return "";
    }
    for (int l = 0; l < nl; ++l) {
      if (!(mask >> l & 1u)) continue;
      ThreadState& t = th[static_cast<size_t>(base + l)];
      const int w = t.width, seg = l & ~(w - 1), a = t.arg;
      int src = l;
      switch (op) {
        case WarpOp::kShfl: src = seg + (a & (w - 1)); break;
        case WarpOp::kShflUp: src = (l - seg) >= a ? l - a : l; break;
        case WarpOp::kShflDown: src = (l - seg) + a < w ? l + a : l; break;
        case WarpOp::kShflXor: src = l ^ a; if (src >= seg + w || src < 0 || src > 31) src = l; break;
        default: break;
      }
      if (src != l && (src >= nl || !(mask >> src & 1u))) {
        return cat(op_name(op), " (", site_str(t.site), "): lane ", l, " (thread ", thread_str(base + l),
                   ") reads from lane ", src, ", which is not in the mask 0x", std::hex, mask,
                   src >= nl ? " and does not exist" : "");
      }
      t.result = th[static_cast<size_t>(base + src)].value;
    }
    return "";
  }

  // --- thread exit ----------------------------------------------------------------------
  std::string exit_thread(int tid) {
    const int lane = tid % 32, base = tid - lane;
    if (at_barrier > 0) {
      std::vector<int> waiting;
      Site s{"", 0};
      for (int i = 0; i < nthreads; ++i) {
        if (th[static_cast<size_t>(i)].state == State::kBarrier) {
          waiting.push_back(i);
          s = th[static_cast<size_t>(i)].site;
        }
      }
      return cat("thread exited while ", waiting.size(), " thread(s) wait at __syncthreads (", site_str(s), "): ",
                 threads_str(waiting), "; every thread of the block must reach the same __syncthreads");
    }
    for (int l = 0; l < warp_lanes(tid / 32); ++l) {
      const ThreadState& t = th[static_cast<size_t>(base + l)];
      if (t.state == State::kWarp && (t.mask >> lane & 1u)) {
        return cat("thread exited while lane ", l, " (thread ", thread_str(base + l), ") waits for it at ",
                   op_name(t.op), " (", site_str(t.site), ") with mask 0x", std::hex, t.mask);
      }
    }
    set_state(tid, State::kExited);
    --live;
    ++exited;
    return check_progress();
  }
};

// ---------------------------------------------------------------------------------------
// A launch being run.
// ---------------------------------------------------------------------------------------
struct Launch {
  const LaunchSpec* spec = nullptr;
  char* dyn_shared = nullptr;
  std::string error;  // first failure, with kernel/block/thread
};

void Block::record_failure(int tid, const std::string& what) {
  if (failed) return;
  failed = true;
  error = cat("kernel ", launch->spec->kernel_name, ", block (", block_idx.x, ",", block_idx.y, ",", block_idx.z,
              "), thread ", thread_str(tid), ": ", what);
}

thread_local ThreadCtx* t_ctx = nullptr;
ThreadCtx g_host_ctx;  // threadIdx etc. outside a kernel read zeros
thread_local Launch* t_launch = nullptr;

// ---------------------------------------------------------------------------------------
// Fiber engine.
// ---------------------------------------------------------------------------------------
#if FL_EMU_ASAN
constexpr size_t kFiberStack = 256 * 1024;
#else
constexpr size_t kFiberStack = 64 * 1024;
#endif

struct FiberStack {
  char* mem = nullptr;  // guard page, then the stack
  size_t size = 0;      // usable size
  char* bottom() const { return mem + static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
};

std::vector<FiberStack>& stack_pool() {
  static std::vector<FiberStack> pool;
  return pool;
}

FiberStack& fiber_stack(size_t i) {
  auto& pool = stack_pool();
  while (pool.size() <= i) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* m = mmap(nullptr, kFiberStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    mprotect(m, page, PROT_NONE);  // a stack overflow faults instead of corrupting memory
    pool.push_back(FiberStack{static_cast<char*>(m), kFiberStack});
  }
  return pool[i];
}

struct FiberEngine {
  Block* block = nullptr;
  ucontext_t sched_ctx;
  std::vector<ucontext_t> ctxs;
  int current = -1;
#if FL_EMU_ASAN
  void* sched_fake_stack = nullptr;
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
#endif
};

thread_local FiberEngine* t_fibers = nullptr;

// Back to the scheduler from the running fiber. `final`: the fiber never resumes.
void fiber_yield(bool final) {
  FiberEngine& e = *t_fibers;
  const int me = e.current;
  g_switches.fetch_add(1, std::memory_order_relaxed);
#if FL_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(final ? nullptr : &fake, e.sched_stack_bottom, e.sched_stack_size);
  swapcontext(&e.ctxs[static_cast<size_t>(me)], &e.sched_ctx);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  (void)final;
  swapcontext(&e.ctxs[static_cast<size_t>(me)], &e.sched_ctx);
#endif
}

void fiber_entry() {
  FiberEngine& e = *t_fibers;
#if FL_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &e.sched_stack_bottom, &e.sched_stack_size);
#endif
  const Launch& l = *t_launch;
  l.spec->run(l.spec->data);
  Block& b = *e.block;
  const std::string err = b.exit_thread(e.current);
  if (!err.empty()) b.record_failure(e.current, err);
  fiber_yield(true);
  std::abort();  // never resumed
}

// Order in which a schedule scans threads.
std::vector<int> scan_order(const ScheduleSetting& s, int n, uint64_t block_linear) {
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (s.order == Order::kDescending) std::reverse(order.begin(), order.end());
  return order;
}

// ---------------------------------------------------------------------------------------
// The one-writer check: which block changed each byte of the allocations a launch
// received as pointer arguments.
// ---------------------------------------------------------------------------------------
std::atomic<uint64_t> g_release_threshold{0};  // as set with cudaMemPoolSetAttribute

std::mutex g_atomic_mutex;
std::unordered_set<uintptr_t> g_atomic_bytes;  // bytes changed by atomics in this launch

constexpr uint32_t kNoWriter = 0xFFFFFFFFu;

struct WriterCheck {
  struct Watched {
    char* user;
    size_t bytes;
    size_t unit;  // bytes per element: the smallest pointee among the arguments into it
    std::vector<char> snap;
    std::vector<uint32_t> writer;  // per element: linear index of the block that changed it
  };
  std::vector<Watched> watched;

  explicit WriterCheck(const LaunchSpec& spec) {
    std::lock_guard<std::mutex> lk(g_mem_mutex);
    for (const PointerArg& p : spec.pointers) {
      const Allocation* a = p.ptr ? find_allocation(p.ptr, 0) : nullptr;
      if (a == nullptr || a->bytes == 0) continue;
      char* user = a->raw + kRedzone;
      const size_t unit = std::max<size_t>(1, p.elem);
      Watched* same = nullptr;
      for (Watched& w : watched) same = w.user == user ? &w : same;
      if (same != nullptr) {
        same->unit = std::min(same->unit, unit);
        continue;
      }
      watched.push_back(Watched{user, a->bytes, unit, std::vector<char>(user, user + a->bytes), {}});
    }
    for (Watched& w : watched) w.writer.assign((w.bytes + w.unit - 1) / w.unit, kNoWriter);
    std::lock_guard<std::mutex> alk(g_atomic_mutex);
    g_atomic_bytes.clear();
  }

  // After block `linear` ran: records the elements it changed; "" or the first conflict.
  // (By element, not byte: 2.0f -> 3.0f changes byte 2, while 0.0f -> 2.0f changed byte 3.)
  std::string after_block(uint64_t linear, const dim3& g) {
    const auto me = static_cast<uint32_t>(std::min<uint64_t>(linear, kNoWriter - 1));
    for (Watched& w : watched) {
      if (std::memcmp(w.user, w.snap.data(), w.bytes) == 0) continue;
      std::lock_guard<std::mutex> alk(g_atomic_mutex);
      for (size_t e = 0; e < w.writer.size(); ++e) {
        const size_t o = e * w.unit, len = std::min(w.unit, w.bytes - o);
        if (std::memcmp(w.user + o, w.snap.data() + o, len) == 0) continue;
        std::memcpy(w.snap.data() + o, w.user + o, len);
        if (g_atomic_bytes.count(reinterpret_cast<uintptr_t>(w.user + o))) continue;
        const uint32_t first = w.writer[e];
        if (first == kNoWriter || first == me) {
          w.writer[e] = me;
          continue;
        }
        return cat("blocks ", block_str(first, g), " and ", block_str(me, g), " both wrote element ", e, " (",
                   w.unit, " bytes at offset ", o, ") of the allocation of ", w.bytes, " bytes at 0x", std::hex,
                   reinterpret_cast<uintptr_t>(w.user), std::dec,
                   " without atomics; blocks run concurrently on a GPU, so this is a race: give each output "
                   "element one writing block, or use atomics");
      }
    }
    return "";
  }

  static std::string block_str(uint64_t linear, const dim3& g) {
    return cat("(", linear % g.x, ",", linear / g.x % g.y, ",", linear / (uint64_t(g.x) * g.y), ")");
  }
};

// Order in which a launch runs its blocks (linear indices x + gx * (y + gy * z)):
// ascending, except under the descending and random schedules. The random order is an
// affine permutation i -> (a*i + c) mod n with a coprime to n, so no table is needed.
struct BlockOrder {
  Order order;
  uint64_t n, a = 1, c = 0;
  BlockOrder(const ScheduleSetting& s, uint64_t count) : order(s.order), n(count) {
    if (order != Order::kRandom || n < 2) return;
    std::mt19937_64 rng(s.seed * 0x9E3779B97F4A7C15ull + n);
    c = rng() % n;
    do a = rng() % n; while (a == 0 || std::gcd(a, n) != 1);
  }
  uint64_t operator[](uint64_t i) const {
    if (order == Order::kDescending) return n - 1 - i;
    if (order == Order::kRandom) return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * i + c) % n);
    return i;
  }
};

void run_block_fibers(Block& b, const ScheduleSetting& sched, uint64_t block_linear) {
  FiberEngine e;
  e.block = &b;
  e.ctxs.resize(static_cast<size_t>(b.nthreads));
  for (int i = 0; i < b.nthreads; ++i) {
    FiberStack& st = fiber_stack(static_cast<size_t>(i));
    unpoison(st.bottom(), st.size);  // frames abandoned by an aborted launch left poison
    ucontext_t& c = e.ctxs[static_cast<size_t>(i)];
    getcontext(&c);
    c.uc_stack.ss_sp = st.bottom();
    c.uc_stack.ss_size = st.size;
    c.uc_link = nullptr;
    makecontext(&c, fiber_entry, 0);
  }
  FiberEngine* saved = t_fibers;
  t_fibers = &e;
  const std::vector<int> order = scan_order(sched, b.nthreads, block_linear);
  std::mt19937_64 rng(sched.seed * 0x9E3779B97F4A7C15ull + block_linear + 1);
  std::vector<int> candidates;
  size_t pos = order.size() - 1;  // round-robin cursor: the first pick is order[0]
  while (!b.failed && b.live > 0) {
    int next = -1;
    if (sched.order == Order::kRandom) {
      candidates.clear();
      for (int i = 0; i < b.nthreads; ++i) {
        if (b.th[static_cast<size_t>(i)].state == State::kRunnable) candidates.push_back(i);
      }
      if (!candidates.empty()) next = candidates[rng() % candidates.size()];
    } else {
      const size_t n = order.size();
      const size_t start = sched.policy == Policy::kGreedy ? 0 : (pos + 1) % n;
      for (size_t k = 0; k < n; ++k) {
        const size_t p = (start + k) % n;
        if (b.th[static_cast<size_t>(order[p])].state == State::kRunnable) {
          next = order[p];
          pos = p;
          break;
        }
      }
    }
    if (next < 0) {  // cannot happen: arrivals check progress; kept as a safety net
      b.record_failure(0, b.check_progress());
      break;
    }
    e.current = next;
    t_ctx = &b.ctxs[static_cast<size_t>(next)];
    g_switches.fetch_add(1, std::memory_order_relaxed);
#if FL_EMU_ASAN
    FiberStack& st = fiber_stack(static_cast<size_t>(next));
    __sanitizer_start_switch_fiber(&e.sched_fake_stack, st.bottom(), st.size);
    swapcontext(&e.sched_ctx, &e.ctxs[static_cast<size_t>(next)]);
    __sanitizer_finish_switch_fiber(e.sched_fake_stack, nullptr, nullptr);
#else
    swapcontext(&e.sched_ctx, &e.ctxs[static_cast<size_t>(next)]);
#endif
  }
  t_ctx = nullptr;
  t_fibers = saved;
}

// ---------------------------------------------------------------------------------------
// Threads engine: one OS thread per CUDA thread, waiting on a condition variable. The
// threads are a pool kept for the life of the process (thread creation is what costs,
// above all under ThreadSanitizer); worker i runs CUDA thread i of every block.
// ---------------------------------------------------------------------------------------
struct AbortThread {};

struct ThreadsEngine {
  std::mutex mu;                // guards everything below and the Block being run
  std::condition_variable cv;   // rendezvous of the CUDA threads of a block
  std::condition_variable pool_cv;  // block start / all done
  Block* block = nullptr;
  Launch* launch = nullptr;
  uint64_t generation = 0;      // bumped for every block
  int want = 0;                 // CUDA threads in the block
  int done = 0;                 // workers finished with the current block
  int workers = 0;
};

ThreadsEngine& threads_engine() {
  static ThreadsEngine* e = new ThreadsEngine;  // never destroyed: workers outlive exit
  return *e;
}

thread_local ThreadsEngine* t_threads = nullptr;

void* worker_main(void* p) {
  const int tid = static_cast<int>(reinterpret_cast<intptr_t>(p));
  ThreadsEngine& e = threads_engine();
  t_threads = &e;
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lk(e.mu);
  for (;;) {
    e.pool_cv.wait(lk, [&] { return e.generation != seen; });
    seen = e.generation;
    if (tid >= e.want) continue;
    Block& b = *e.block;
    t_launch = e.launch;
    t_ctx = &b.ctxs[static_cast<size_t>(tid)];
    lk.unlock();
    bool aborted = false;
    try {
      t_launch->spec->run(t_launch->spec->data);
    } catch (const AbortThread&) {
      aborted = true;
    }
    lk.lock();
    if (!aborted && !b.failed) {
      const std::string err = b.exit_thread(tid);
      if (!err.empty()) b.record_failure(tid, err);
      e.cv.notify_all();  // an exit can complete nothing, but it can end in a deadlock
    }
    t_ctx = nullptr;
    t_launch = nullptr;
    if (++e.done == e.want) e.pool_cv.notify_all();
  }
  return nullptr;
}

void run_block_threads(Block& b, Launch& launch) {
  ThreadsEngine& e = threads_engine();
  std::unique_lock<std::mutex> lk(e.mu);
  while (e.workers < b.nthreads) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, FL_EMU_TSAN ? 1 << 20 : 256 << 10);
    pthread_t h;
    const int rc = pthread_create(&h, &attr, worker_main, reinterpret_cast<void*>(static_cast<intptr_t>(e.workers)));
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      b.record_failure(0, cat("the threads engine could not create OS thread ", e.workers + 1, " of ", b.nthreads));
      return;
    }
    pthread_detach(h);
    ++e.workers;
  }
  e.block = &b;
  e.launch = &launch;
  e.want = b.nthreads;
  e.done = 0;
  ++e.generation;
  e.pool_cv.notify_all();
  e.pool_cv.wait(lk, [&] { return e.done == e.want; });
  e.block = nullptr;
  e.launch = nullptr;
}

// ---------------------------------------------------------------------------------------
// Engine-independent entry points for device code.
// ---------------------------------------------------------------------------------------
Block& current_block() { return *static_cast<Block*>(t_ctx->block); }

// Blocks the calling thread until its state is runnable again. Precondition: in a
// kernel; threads engine: `lk` holds the engine mutex.
void wait_runnable(Block& b, int tid, std::unique_lock<std::mutex>* lk) {
  if (t_threads) {
    // Only the thread that completes a rendezvous makes others runnable: it wakes them.
    if (b.th[static_cast<size_t>(tid)].state == State::kRunnable) {
      t_threads->cv.notify_all();
      return;
    }
    t_threads->cv.wait(*lk, [&] { return b.failed || b.th[static_cast<size_t>(tid)].state == State::kRunnable; });
    if (b.failed) throw AbortThread{};
  } else {
    fiber_yield(false);
  }
}

[[noreturn]] void fail_current(Block& b, int tid, const std::string& err) {
  b.record_failure(tid, err);
  if (t_threads) {
    t_threads->cv.notify_all();
    throw AbortThread{};
  }
  fiber_yield(true);
  std::abort();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public emulator API.
// ---------------------------------------------------------------------------------------
const char* const kScheduleNames[] = {"round-robin", "greedy", "ascending", "descending", "random"};
const int kNumSchedules = 5;

ThreadCtx& ctx() { return t_ctx ? *t_ctx : g_host_ctx; }

std::string last_diagnostic() { return t_diagnostic; }

void set_schedule(const std::string& name, uint64_t seed) {
  ScheduleSetting s = make_schedule(name, seed);
  std::lock_guard<std::mutex> lk(g_settings_mutex);
  g_schedule = s;
}

std::pair<std::string, uint64_t> schedule() {
  std::lock_guard<std::mutex> lk(g_settings_mutex);
  return {g_schedule.name, g_schedule.seed};
}

void set_engine(const std::string& name) {
  if (name != "fibers" && name != "threads") {
    throw std::invalid_argument(cat("engine: expected 'fibers' or 'threads', got '", name, "'"));
  }
#if FL_EMU_TSAN
  if (name == "fibers") throw std::invalid_argument("engine: ThreadSanitizer builds support only 'threads'");
#endif
  std::lock_guard<std::mutex> lk(g_settings_mutex);
  g_engine = name;
}

std::string engine() {
  std::lock_guard<std::mutex> lk(g_settings_mutex);
  return g_engine;
}

std::vector<std::pair<uintptr_t, size_t>> live_allocations() {
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  std::vector<std::pair<uintptr_t, size_t>> out;
  for (const auto& [p, a] : g_allocs) out.emplace_back(p, a.bytes);
  return out;
}

size_t memory_limit() {
  static const size_t limit = default_memory_limit();
  return limit;
}

uint64_t context_switches() { return g_switches.load(); }

uint64_t mempool_release_threshold() { return g_release_threshold.load(); }

bool set_check_writers(bool on) { return g_check_writers.exchange(on); }
bool check_writers() { return g_check_writers.load(); }

void note_atomic(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lk(g_atomic_mutex);
  for (size_t i = 0; i < bytes; ++i) g_atomic_bytes.insert(reinterpret_cast<uintptr_t>(p) + i);
}

void set_max_dynamic_shared(const void* kernel, int bytes) {
  std::lock_guard<std::mutex> lk(g_settings_mutex);
  g_max_dynamic_shared[kernel] = bytes;
}

void* dynamic_shared() {
  if (!t_launch) return nullptr;
  return t_launch->dyn_shared;
}

void fresh_shared(void* p, size_t bytes) {
  if (!t_ctx) return;
  Block& b = current_block();
  std::lock_guard<std::mutex> lk(b.fresh_mutex);
  if (std::find(b.fresh.begin(), b.fresh.end(), p) != b.fresh.end()) return;
  b.fresh.push_back(p);
  std::memset(p, 0xFF, bytes);
}

[[noreturn]] void device_fail(const std::string& what) {
  if (!t_ctx) throw std::logic_error(what);
  Block& b = current_block();
  if (t_threads) {
    std::lock_guard<std::mutex> lk(t_threads->mu);
    b.record_failure(t_ctx->tid, what);
    t_threads->cv.notify_all();
    throw AbortThread{};
  }
  fail_current(b, t_ctx->tid, what);
}

void syncthreads(Site site) {
  if (!t_ctx) return;  // host code
  Block& b = current_block();
  const int tid = t_ctx->tid;
  std::unique_lock<std::mutex> lk;
  if (t_threads) lk = std::unique_lock<std::mutex>(t_threads->mu);
  if (b.failed) throw AbortThread{};  // only reachable in the threads engine
  const std::string err = b.arrive_barrier(tid, site);
  if (!err.empty()) fail_current(b, tid, err);
  wait_runnable(b, tid, t_threads ? &lk : nullptr);
}

uint64_t warp_op(Site site, WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
  if (!t_ctx) return value;
  Block& b = current_block();
  const int tid = t_ctx->tid;
  std::unique_lock<std::mutex> lk;
  if (t_threads) lk = std::unique_lock<std::mutex>(t_threads->mu);
  if (b.failed) throw AbortThread{};
  const std::string err = b.arrive_warp(tid, site, op, mask, value, arg, width);
  if (!err.empty()) fail_current(b, tid, err);
  wait_runnable(b, tid, t_threads ? &lk : nullptr);
  return b.th[static_cast<size_t>(tid)].result;
}

void launch_impl(const LaunchSpec& spec) {
  const dim3 g = spec.grid, bd = spec.block;
  const std::string head = cat("launch of kernel ", spec.kernel_name, " with grid (", g.x, ",", g.y, ",", g.z,
                               "), block (", bd.x, ",", bd.y, ",", bd.z, "), ", spec.shmem, " bytes of dynamic shared memory: ");
  // Configuration, as checked by CUDA on sm_90.
  const uint64_t nthreads = uint64_t(bd.x) * bd.y * bd.z;
  std::string bad;
  if (bd.x < 1 || bd.y < 1 || bd.z < 1 || nthreads > 1024) {
    bad = cat("a block must have 1..1024 threads, this one has ", nthreads);
  } else if (bd.x > 1024 || bd.y > 1024 || bd.z > 64) {
    bad = "block dimensions must be at most (1024, 1024, 64)";
  } else if (g.x < 1 || g.x > 2147483647u || g.y < 1 || g.y > 65535 || g.z < 1 || g.z > 65535) {
    bad = "grid dimensions must be in 1..(2^31-1, 65535, 65535)";
  } else {
    size_t limit = 48 * 1024;
    {
      std::lock_guard<std::mutex> lk(g_settings_mutex);
      auto it = g_max_dynamic_shared.find(spec.kernel);
      if (it != g_max_dynamic_shared.end()) limit = std::max<size_t>(limit, static_cast<size_t>(it->second));
    }
    if (spec.shmem > limit) bad = cat("dynamic shared memory is limited to ", limit, " bytes");
  }
  if (!bad.empty()) {
    set_error(cudaErrorInvalidConfiguration, head + bad);
    return;
  }
  // Pointer arguments must be null or inside a live device allocation.
  {
    std::lock_guard<std::mutex> lk(g_mem_mutex);
    for (const PointerArg& p : spec.pointers) {
      if (p.ptr == nullptr || find_allocation(p.ptr, 0)) continue;
      set_error(cudaErrorInvalidDevicePointer,
                cat(head, "argument ", p.index + 1, " is the pointer ", describe_pointer(p.ptr),
                    ", which is not inside any live device allocation (a host pointer, or freed memory?)"));
      return;
    }
  }

  ScheduleSetting sched;
  std::string eng;
  {
    std::lock_guard<std::mutex> lk(g_settings_mutex);
    sched = g_schedule;
    eng = g_engine;
  }
  // Blocks run one at a time, and __shared__ variables are statics: one launch at a time.
  static std::recursive_mutex launch_mutex;
  std::lock_guard<std::recursive_mutex> launch_lock(launch_mutex);

  Launch launch;
  launch.spec = &spec;
  // Dynamic shared memory: NaN-filled per block, with a poisoned tail under ASan.
  std::vector<char> dyn(spec.shmem + kRedzone + 16);
  char* dyn_base = dyn.data() + (16 - reinterpret_cast<uintptr_t>(dyn.data()) % 16) % 16;
  launch.dyn_shared = spec.shmem ? dyn_base : nullptr;
  Launch* saved_launch = t_launch;
  t_launch = &launch;

  Block b;
  b.launch = &launch;
  b.nthreads = static_cast<int>(nthreads);
  b.th.resize(nthreads);
  b.ctxs.resize(nthreads);
  std::string error;
  // Blocks run in the schedule's order too: a kernel whose result depends on the order in
  // which blocks run (one block reading what another writes) differs between schedules.
  std::unique_ptr<WriterCheck> writers;
  if (g_check_writers.load()) writers = std::make_unique<WriterCheck>(spec);
  const BlockOrder blocks(sched, uint64_t(g.x) * g.y * g.z);
  for (uint64_t i = 0; i < blocks.n && error.empty(); ++i) {
    const uint64_t linear = blocks[i];
    const auto bx = static_cast<unsigned>(linear % g.x), by = static_cast<unsigned>(linear / g.x % g.y),
           bz = static_cast<unsigned>(linear / (uint64_t(g.x) * g.y));
    b.block_idx = uint3{bx, by, bz};
    b.live = b.runnable = b.nthreads;
    b.exited = b.at_barrier = 0;
    b.failed = false;
    b.error.clear();
    b.fresh.clear();
    for (int t = 0; t < b.nthreads; ++t) {
      b.th[static_cast<size_t>(t)] = ThreadState{};
      ThreadCtx& c = b.ctxs[static_cast<size_t>(t)];
      c.thread_idx = uint3{t % bd.x, (t / bd.x) % bd.y, t / (bd.x * bd.y)};
      c.block_idx = b.block_idx;
      c.block_dim = bd;
      c.grid_dim = g;
      c.tid = t;
      c.block = &b;
    }
    if (spec.shmem) {
      unpoison(dyn_base, spec.shmem + kRedzone);
      std::memset(dyn_base, 0xFF, spec.shmem);
      poison(dyn_base + spec.shmem, kRedzone);
    }
    if (eng == "threads") {
      run_block_threads(b, launch);
    } else {
      run_block_fibers(b, sched, linear);
    }
    if (b.failed) {
      error = b.error;
    } else if (writers) {
      const std::string conflict = writers->after_block(linear, g);
      if (!conflict.empty()) error = cat("kernel ", spec.kernel_name, ": ", conflict);
    }
  }
  if (spec.shmem) unpoison(dyn_base, spec.shmem + kRedzone);
  t_launch = saved_launch;
  if (!error.empty()) {
    set_error(cudaErrorLaunchFailure, error);
    return;
  }
  // Redzones of every live allocation.
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  for (const auto& [p, a] : g_allocs) {
    const std::string damage = redzone_damage(a);
    if (!damage.empty()) {
      set_error(cudaErrorLaunchFailure, cat(damage, ", detected after kernel ", spec.kernel_name));
      // Repair, so the next launch does not report the same damage.
      unpoison(a.raw, a.total);
      write_canary(a.raw, 0, kRedzone, a.salt);
      write_canary(a.raw, kRedzone + a.bytes, a.total, a.salt);
      poison(a.raw, kRedzone);
      poison(a.raw + kRedzone + a.bytes, a.total - kRedzone - a.bytes);
      return;
    }
  }
}

}  // namespace fl_emu

// ---------------------------------------------------------------------------------------
// Runtime API.
// ---------------------------------------------------------------------------------------
using fl_emu::cat;
using fl_emu::set_error;

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = fl_emu::t_last_error;
  fl_emu::t_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return fl_emu::t_last_error; }

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  using namespace fl_emu;
  if (!ptr) return set_error(cudaErrorInvalidValue, "cudaMalloc: null output pointer");
  *ptr = nullptr;
  const size_t total = (kRedzone + bytes + kRedzone + kAlign - 1) / kAlign * kAlign;
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  if (bytes > memory_limit() || g_mem_in_use + total > memory_limit()) {
    return set_error(cudaErrorMemoryAllocation,
                     cat("cudaMalloc of ", bytes, " bytes: the emulated device has ", memory_limit(), " bytes, ",
                         g_mem_in_use, " in use (FASTLAYERS_EMU_MEMORY sets the limit)"));
  }
  char* raw = static_cast<char*>(std::aligned_alloc(kAlign, total));
  if (!raw) return set_error(cudaErrorMemoryAllocation, cat("cudaMalloc of ", bytes, " bytes: host allocation failed"));
  Allocation a{raw, bytes, total, ++g_alloc_serial * 0x2545F491u + 0x1234567u};
  write_canary(raw, 0, kRedzone, a.salt);
  std::memset(raw + kRedzone, 0xFF, bytes);  // NaN: reads of uninitialised memory show
  write_canary(raw, kRedzone + bytes, total, a.salt);
  poison(raw, kRedzone);
  poison(raw + kRedzone + bytes, total - kRedzone - bytes);
  g_allocs.emplace(reinterpret_cast<uintptr_t>(raw + kRedzone), a);
  g_mem_in_use += total;
  *ptr = raw + kRedzone;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  using namespace fl_emu;
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == g_allocs.end()) {
    return set_error(cudaErrorInvalidDevicePointer,
                     cat("cudaFree(", describe_pointer(ptr), "): not the start of a live device allocation (double free?)"));
  }
  const Allocation a = it->second;
  g_allocs.erase(it);
  g_mem_in_use -= a.total;
  const std::string damage = redzone_damage(a);
  unpoison(a.raw, a.total);
  std::free(a.raw);
  if (!damage.empty()) return set_error(cudaErrorLaunchFailure, damage + ", detected at cudaFree");
  return cudaSuccess;
}

namespace {
// Checks that [p, p + n) lies inside one device allocation.
bool device_range_ok(const void* p, size_t n, const char* call, const char* what) {
  using namespace fl_emu;
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  if (find_allocation(p, n)) return true;
  set_error(cudaErrorInvalidValue, cat(call, ": the ", what, " range of ", n, " bytes at ", describe_pointer(p),
                                       " is not inside one live device allocation"));
  return false;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) {
    // Unified addressing: whichever side is a device allocation.
  } else if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
    return set_error(cudaErrorInvalidMemcpyDirection, cat("cudaMemcpy: invalid kind ", static_cast<int>(kind)));
  }
  if (!dst || !src) return set_error(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  if (dst_dev && !device_range_ok(dst, bytes, "cudaMemcpy", "destination")) return cudaErrorInvalidValue;
  if (src_dev && !device_range_ok(src, bytes, "cudaMemcpy", "source")) return cudaErrorInvalidValue;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!device_range_ok(ptr, bytes, "cudaMemset", "destination")) return cudaErrorInvalidValue;
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) { return cudaMemset(ptr, value, bytes); }

// Launches complete synchronously; their errors are reported by cudaGetLastError.
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  if (!stream) return set_error(cudaErrorInvalidValue, "cudaStreamCreate: null output pointer");
  static std::atomic<uintptr_t> next{0x5000};
  *stream = reinterpret_cast<cudaStream_t>(next.fetch_add(0x10));
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int* count) {
  if (count) *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (device) *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) {
    return set_error(cudaErrorInvalidValue, cat("cudaDeviceGetDefaultMemPool(", device, "): the emulator has device 0 only"));
  }
  static int token = 0;  // a distinct non-null handle
  if (pool) *pool = reinterpret_cast<cudaMemPool_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool == nullptr || value == nullptr) return set_error(cudaErrorInvalidValue, "cudaMemPoolSetAttribute: null argument");
  if (attr == cudaMemPoolAttrReleaseThreshold) fl_emu::g_release_threshold = *static_cast<uint64_t*>(value);
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0) return set_error(cudaErrorInvalidValue, cat("cudaSetDevice(", device, "): the emulator has device 0 only"));
  return cudaSuccess;
}
