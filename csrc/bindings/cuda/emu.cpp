// Bindings of the emulator itself (fastlayers._cuda_emu only): device memory for
// fastlayers.cuda_emu.EmuArray, the schedule and engine settings, and the launchers of the
// emulator's self-test kernels (csrc/cuda/emu/selftest.cu).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/cuda/registry.h"
#include "cuda/emu/selftest.h"

namespace fastlayers::cuda_bindings {
namespace {

namespace cu = fastlayers::cuda;

void* as_ptr(uintptr_t p) { return reinterpret_cast<void*>(p); }

// cu::check, after clearing the error from the per-thread state (a runtime call's error
// would otherwise be reported again by the next launch's cudaGetLastError).
void check(cudaError_t err, const char* op, const std::string& sizes) {
  if (err != cudaSuccess) (void)cudaGetLastError();
  cu::check(err, op, sizes);
}

uintptr_t emu_malloc(size_t nbytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, nbytes), "malloc", str_cat(nbytes, " bytes"));
  return reinterpret_cast<uintptr_t>(p);
}

void emu_free(uintptr_t ptr) { check(cudaFree(as_ptr(ptr)), "free", str_cat("pointer 0x", std::hex, ptr)); }

// A C-contiguous numpy array's bytes.
void require_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) throw ArgumentError(str_cat(name, ": expected a C-contiguous array"));
}

void memcpy_htod(uintptr_t dst, const py::array& src) {
  require_contiguous(src, "src");
  const size_t n = static_cast<size_t>(src.nbytes());
  check(cudaMemcpy(as_ptr(dst), src.data(), n, cudaMemcpyHostToDevice), "memcpy_htod", str_cat(n, " bytes"));
}

void memcpy_dtoh(py::array& dst, uintptr_t src) {
  require_contiguous(dst, "dst");
  if (!dst.writeable()) throw ArgumentError("dst: array is read-only");
  const size_t n = static_cast<size_t>(dst.nbytes());
  check(cudaMemcpy(dst.mutable_data(), as_ptr(src), n, cudaMemcpyDeviceToHost), "memcpy_dtoh", str_cat(n, " bytes"));
}

void memset_d(uintptr_t dst, int value, size_t nbytes) {
  check(cudaMemset(as_ptr(dst), value, nbytes), "memset", str_cat(nbytes, " bytes"));
}

template <typename F>
void invalid_to_value_error(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    throw ArgumentError(e.what());
  }
}

void bind(py::module_& m) {
  m.def("malloc", &emu_malloc, py::arg("nbytes"),
        "Allocate emulated device memory (filled with 0xFF bytes, i.e. float NaN); returns the pointer.");
  m.def("free", &emu_free, py::arg("ptr"), "Free emulated device memory; RuntimeError if a redzone was clobbered.");
  m.def("memcpy_htod", &memcpy_htod, py::arg("dst"), py::arg("src"), "Copy a C-contiguous numpy array to device memory.");
  m.def("memcpy_dtoh", &memcpy_dtoh, py::arg("dst"), py::arg("src"), "Copy device memory into a C-contiguous numpy array.");
  m.def("memset", &memset_d, py::arg("dst"), py::arg("value"), py::arg("nbytes"));
  m.def(
      "set_schedule",
      [](const std::string& name, uint64_t seed) { invalid_to_value_error([&] { ::fl_emu::set_schedule(name, seed); }); },
      py::arg("name"), py::arg("seed") = 0,
      "Thread schedule of the fiber engine: 'round-robin', 'greedy', 'ascending', 'descending', 'random'.");
  m.def("schedule", [] { return ::fl_emu::schedule(); }, "The current (name, seed).");
  m.def(
      "set_engine", [](const std::string& name) { invalid_to_value_error([&] { ::fl_emu::set_engine(name); }); },
      py::arg("name"), "'fibers' (default) or 'threads' (one OS thread per CUDA thread, for ThreadSanitizer).");
  m.def("engine", [] { return ::fl_emu::engine(); });
  m.def("schedules", [] {
    py::list l;
    for (int i = 0; i < ::fl_emu::kNumSchedules; ++i) l.append(::fl_emu::kScheduleNames[i]);
    return py::tuple(l);
  });
  m.def("live_allocations", [] { return ::fl_emu::live_allocations(); }, "[(pointer, bytes)] of live allocations.");
  m.def("memory_limit", [] { return ::fl_emu::memory_limit(); });
  m.def("context_switches", [] { return ::fl_emu::context_switches(); });
  m.def("set_check_writers", [](bool on) { return ::fl_emu::set_check_writers(on); }, py::arg("on"),
        "Turn the one-writer check on or off (see cuda_emu.h); returns the previous setting.");
  m.def("check_writers", [] { return ::fl_emu::check_writers(); });
  m.def("mempool_release_threshold", [] { return ::fl_emu::mempool_release_threshold(); },
        "The default pool's release threshold as the kernels' launchers last set it (0: never set).");

  // Self-test kernels. Arrays are device arrays (EmuArray), as in the op bindings.
  namespace st = ::fl_emu::selftest;
  m.def(
      "selftest_block_reverse",
      [](const py::object& out, const py::object& in, int block, bool sync) {
        const DeviceView o = device_output(out, "out", 1), i = device_view(in, "in", 1);
        FL_CHECK(o.size() == i.size() && o.size() % block == 0, "out, in: sizes must match and be a multiple of block");
        py::gil_scoped_release nogil;
        st::block_reverse(o.f32(), i.f32(), static_cast<int>(o.size()), block, sync, nullptr);
      },
      py::arg("out"), py::arg("in"), py::arg("block"), py::arg("sync") = true);
  m.def(
      "selftest_bounded_copy",
      [](const py::object& out, const py::object& in, int block, bool checked) {
        const DeviceView o = device_output(out, "out", 1), i = device_view(in, "in", 1);
        FL_CHECK(o.size() == i.size(), "out, in: sizes must match");
        py::gil_scoped_release nogil;
        st::bounded_copy(o.f32(), i.f32(), static_cast<int>(o.size()), block, checked, nullptr);
      },
      py::arg("out"), py::arg("in"), py::arg("block"), py::arg("checked") = true);
  m.def(
      "selftest_warp_sum",
      [](const py::object& out, const py::object& in, bool full_mask) {
        const DeviceView o = device_output(out, "out", 1), i = device_view(in, "in", 1);
        FL_CHECK(i.size() >= 1 && i.size() <= 1024 && o.size() == (i.size() + 31) / 32, "in: 1..1024 elements, out: one per warp");
        py::gil_scoped_release nogil;
        st::warp_sum(o.f32(), i.f32(), static_cast<int>(i.size()), full_mask, nullptr);
      },
      py::arg("out"), py::arg("in"), py::arg("full_mask") = false);
  m.def(
      "selftest_block_sums",
      [](const py::object& out, const py::object& in, int block, bool all_slots) {
        const DeviceView o = device_output(out, "out", 1), i = device_view(in, "in", 1);
        FL_CHECK(block % 32 == 0 && block >= 32 && block <= 1024, "block: a multiple of 32 in 32..1024");
        FL_CHECK(o.size() >= 1 && i.size() == o.size() * block, "in: block elements per element of out");
        py::gil_scoped_release nogil;
        st::block_sums(o.f32(), i.f32(), static_cast<int>(o.size()), block, all_slots, nullptr);
      },
      py::arg("out"), py::arg("in"), py::arg("block"), py::arg("all_slots") = false);
  m.def(
      "selftest_prefix_sums",
      [](const py::object& out, const py::object& in, bool chained) {
        const DeviceView o = device_output(out, "out", 1), i = device_view(in, "in", 1);
        FL_CHECK(o.size() >= 1 && o.size() == i.size(), "out, in: sizes must match");
        py::gil_scoped_release nogil;
        st::prefix_sums(o.f32(), i.f32(), static_cast<int>(o.size()), chained, nullptr);
      },
      py::arg("out"), py::arg("in"), py::arg("chained") = false);
  m.def(
      "selftest_two_writers",
      [](const py::object& out, bool atomic) {
        const DeviceView o = device_output(out, "out", 1);
        FL_CHECK(o.size() == 32, "out: expected 32 elements");
        py::gil_scoped_release nogil;
        st::two_writers(o.f32(), atomic, nullptr);
      },
      py::arg("out"), py::arg("atomic") = true);
  m.def(
      "selftest_barrier_in_if",
      [](const py::object& out, bool divergent) {
        const DeviceView o = device_output(out, "out", 1);
        py::gil_scoped_release nogil;
        st::barrier_in_if(o.f32(), static_cast<int>(o.size()), divergent, nullptr);
      },
      py::arg("out"), py::arg("divergent") = false);
  m.def(
      "selftest_fill_ones",
      [](const py::object& out, bool host_pointer) {
        const DeviceView o = device_output(out, "out", 1);
        std::vector<float> host(static_cast<size_t>(o.size()));
        py::gil_scoped_release nogil;
        st::fill_ones(host_pointer ? host.data() : o.f32(), static_cast<int>(o.size()), nullptr);
      },
      py::arg("out"), py::arg("host_pointer") = false);
  m.def(
      "selftest_warp_then_barrier",
      [](const py::object& out, bool deadlock) {
        const DeviceView o = device_output(out, "out", 1);
        require_shape(o, {32}, "out");
        py::gil_scoped_release nogil;
        st::warp_then_barrier(o.f32(), deadlock, nullptr);
      },
      py::arg("out"), py::arg("deadlock") = false);
  m.def(
      "selftest_two_barriers",
      [](const py::object& out, bool bug) {
        const DeviceView o = device_output(out, "out", 1);
        require_shape(o, {8}, "out");
        py::gil_scoped_release nogil;
        st::two_barriers(o.f32(), bug, nullptr);
      },
      py::arg("out"), py::arg("bug") = false);
  m.def(
      "selftest_warp_ops",
      [](const py::object& out, const py::object& counter) {
        const DeviceView o = device_output(out, "out", 2);
        const DeviceView c = device_output(counter, "counter", 1, "<i4");
        FL_CHECK(o.dim(0) == 6 && o.dim(1) % 32 == 0 && o.dim(1) <= 1024, "out: expected shape (6, 32k)");
        py::gil_scoped_release nogil;
        st::warp_ops(o.f32(), static_cast<int*>(c.data), static_cast<int>(o.dim(1)), nullptr);
      },
      py::arg("out"), py::arg("counter"));
  m.def(
      "selftest_launch_config",
      [](const py::object& out, std::array<unsigned, 3> grid, std::array<unsigned, 3> block, size_t shmem) {
        const DeviceView o = device_output(out, "out", 1);
        FL_CHECK(static_cast<uint64_t>(o.size()) >= uint64_t(block[0]) * block[1] * block[2] || uint64_t(block[0]) * block[1] * block[2] > 1024,
                 "out: one element per thread of a block");
        py::gil_scoped_release nogil;
        st::launch_config(o.f32(), dim3(grid[0], grid[1], grid[2]), dim3(block[0], block[1], block[2]), shmem, nullptr);
      },
      py::arg("out"), py::arg("grid"), py::arg("block"), py::arg("shmem") = 0);
  m.def(
      "selftest_pointer",
      [](uintptr_t ptr, int n) {
        py::gil_scoped_release nogil;
        st::fill_ones(reinterpret_cast<float*>(ptr), n, nullptr);
      },
      py::arg("ptr"), py::arg("n"), "fill_ones on a raw pointer (tests of the pointer checks).");
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(emu, bind);

}  // namespace fastlayers::cuda_bindings
