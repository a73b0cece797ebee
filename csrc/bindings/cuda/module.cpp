// The `fastlayers._cuda` extension module. For now: build and GPU information; the
// CUDA kernels register here as they arrive.
#include <pybind11/pybind11.h>

#include "cuda/device_util.h"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastlayers CUDA kernels";
  m.def("runtime_info", [] {
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
    info["architectures"] = FL_CUDA_ARCHS;
    info["gpu_usable"] = s.usable;
    info["reason"] = s.reason;
    info["driver_version"] = s.driver_version;
    info["runtime_version"] = s.runtime_version;
    info["devices"] = devices;
    return info;
  });
}
