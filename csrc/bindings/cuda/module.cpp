// The CUDA extension modules, built from this one file twice: fastlayers._cuda (nvcc and
// the real runtime) and fastlayers._cuda_emu (host compiler and the CPU emulator of the
// CUDA execution model, csrc/cuda/emu). FL_CUDA_MODULE_NAME says which. Every op family
// registers its bindings in its own file (registry.h); this file calls them all and maps
// the C++ exceptions to Python ones.
#include <pybind11/pybind11.h>

#include "bindings/cuda/registry.h"
#include "common/error.h"
#include "cuda/cuda_compat.h"
#if !defined(FASTLAYERS_CUDA_EMU)
#include "cuda/device_util.h"
#endif

#ifndef FL_CUDA_MODULE_NAME
#define FL_CUDA_MODULE_NAME _cuda
#endif

namespace py = pybind11;

namespace fastlayers::cuda_bindings {

std::vector<BindingEntry>& binding_registry() {
  static std::vector<BindingEntry> entries;
  return entries;
}

namespace {

#if defined(FASTLAYERS_CUDA_EMU)
py::dict runtime_info() {
  py::dict info;
  info["version"] = FL_VERSION;
  info["emulator"] = true;
  info["architectures"] = "emulated";
  info["gpu_usable"] = false;
  info["reason"] = "fastlayers._cuda_emu runs CUDA kernels on the CPU through an emulator (tests only)";
  info["engine"] = ::fl_emu::engine();
  const auto sched = ::fl_emu::schedule();
  info["schedule"] = py::make_tuple(sched.first, sched.second);
  py::list sanitizers;
#if defined(__SANITIZE_ADDRESS__)
  sanitizers.append("address");
#endif
#if defined(__SANITIZE_THREAD__)
  sanitizers.append("thread");
#endif
#if defined(FL_EMU_UBSAN)
  sanitizers.append("undefined");
#endif
  info["sanitizers"] = sanitizers;
  info["devices"] = py::list();
  return info;
}
#else
py::dict runtime_info() {
  const fastlayers::cuda::GpuStatus s = fastlayers::cuda::query_gpus();
  py::list devices;
  for (const auto& d : s.devices) {
    py::dict dd;
    dd["index"] = d.index;
    dd["name"] = d.name;
    dd["compute_capability"] = py::make_tuple(d.major, d.minor);
    dd["total_memory"] = d.total_memory;
    dd["multiprocessors"] = d.multiprocessors;
    devices.append(dd);
  }
  py::dict info;
  info["version"] = FL_VERSION;
  info["emulator"] = false;
  info["architectures"] = FL_CUDA_ARCHS;
  info["gpu_usable"] = s.usable;
  info["reason"] = s.reason;
  info["driver_version"] = s.driver_version;
  info["runtime_version"] = s.runtime_version;
  info["devices"] = devices;
  return info;
}
#endif

}  // namespace
}  // namespace fastlayers::cuda_bindings

PYBIND11_MODULE(FL_CUDA_MODULE_NAME, m) {
  using namespace fastlayers::cuda_bindings;
#if defined(FASTLAYERS_CUDA_EMU)
  m.doc() = "fastlayers CUDA kernels, run on the CPU by the emulator of the CUDA execution model (tests)";
#else
  m.doc() = "fastlayers CUDA kernels";
#endif
  // Most derived first: OutOfMemory is a CudaError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const fastlayers::ArgumentError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const fastlayers::cuda::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const fastlayers::cuda::CudaError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  m.def("runtime_info", &runtime_info, "Build and device information of this module.");
  for (const BindingEntry& e : binding_registry()) e.fn(m);
}
