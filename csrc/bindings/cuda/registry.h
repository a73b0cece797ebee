// Bindings of the CUDA kernels. Each family's file registers its entry points:
//
//   FL_REGISTER_CUDA_BINDINGS(gemm, [](py::module_& m) { m.def("gemm", ...); });
//
// and the same sources build two modules: fastlayers._cuda (nvcc, the real runtime) and
// fastlayers._cuda_emu (host compiler, the CPU emulator). Arrays arrive as any Python
// object with __cuda_array_interface__ (CuPy arrays, fastlayers.cuda_emu.EmuArray);
// device_view() reads and checks it. Outputs are allocated by the Python caller.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda/cuda_compat.h"

namespace fastlayers::cuda_bindings {

namespace py = pybind11;

using BindFunction = void (*)(py::module_&);

struct BindingEntry {
  const char* family;
  BindFunction fn;
};

std::vector<BindingEntry>& binding_registry();

struct Registrar {
  Registrar(const char* family, BindFunction fn) { binding_registry().push_back({family, fn}); }
};

// A C-contiguous device array described by __cuda_array_interface__.
struct DeviceView {
  void* data = nullptr;
  std::vector<int64_t> shape;
  std::string typestr;  // e.g. "<f4"
  bool readonly = false;

  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  float* f32() const { return static_cast<float*>(data); }
};

// Reads obj.__cuda_array_interface__; TypeError when obj has none or its dtype is not
// `typestr`; ValueError when it is not C-contiguous, or has not `ndim` dimensions
// (ndim < 0: any).
inline DeviceView device_view(const py::handle& obj, const char* name, int ndim = -1,
                              const char* typestr = "<f4") {
  if (!py::hasattr(obj, "__cuda_array_interface__")) {
    throw py::type_error(str_cat(name, ": expected a GPU array (with __cuda_array_interface__, e.g. a "
                                       "cupy.ndarray), got ",
                                 std::string(py::str(py::type::handle_of(obj).attr("__name__")))));
  }
  const py::dict cai = obj.attr("__cuda_array_interface__");
  DeviceView v;
  v.typestr = cai["typestr"].cast<std::string>();
  if (v.typestr != typestr) {
    throw py::type_error(str_cat(name, ": expected dtype ", typestr, ", got ", v.typestr));
  }
  for (const auto& d : cai["shape"]) v.shape.push_back(d.cast<int64_t>());
  const py::tuple data = cai["data"];
  v.data = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
  v.readonly = data[1].cast<bool>();
  FL_CHECK(ndim < 0 || v.ndim() == ndim, name, ": expected a ", ndim, "-D array, got ", v.ndim(), "-D");
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    const int64_t item = 4;
    int64_t expect = item;
    const py::tuple strides = cai["strides"];
    for (int i = v.ndim() - 1; i >= 0; --i) {
      if (v.dim(i) != 1) {
        FL_CHECK(strides[static_cast<size_t>(i)].cast<int64_t>() == expect, name,
                 ": expected a C-contiguous array");
      }
      expect *= v.dim(i);
    }
  }
  FL_CHECK(v.size() == 0 || v.data != nullptr, name, ": null device pointer");
  return v;
}

// device_view of an array the kernel writes.
inline DeviceView device_output(const py::handle& obj, const char* name, int ndim = -1,
                                const char* typestr = "<f4") {
  DeviceView v = device_view(obj, name, ndim, typestr);
  FL_CHECK(!v.readonly, name, ": array is read-only");
  return v;
}

// ValueError unless `v` has exactly `shape`.
inline void require_shape(const DeviceView& v, const std::vector<int64_t>& shape, const char* name) {
  if (v.shape != shape) {
    std::string got, want;
    for (int64_t d : v.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    throw ArgumentError(str_cat(name, ": expected shape (", want, "), got (", got, ")"));
  }
}

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

}  // namespace fastlayers::cuda_bindings

#define FL_CUDA_CONCAT_INNER(a, b) a##b
#define FL_CUDA_CONCAT(a, b) FL_CUDA_CONCAT_INNER(a, b)
#define FL_REGISTER_CUDA_BINDINGS(family, fn) \
  static ::fastlayers::cuda_bindings::Registrar FL_CUDA_CONCAT(fl_cuda_registrar_, family)(#family, fn)
