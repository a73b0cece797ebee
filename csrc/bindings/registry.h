// Each op family's binding file registers a function that adds its entry points to the
// `fastlayers._cpu` module, so adding a family never touches a shared file:
//
//   FL_REGISTER_BINDINGS(gemm, [](py::module_& m) { m.def("gemm", ...); });
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"

namespace fastlayers::bindings {

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

// Byte strides of a NumPy float32 array converted to element strides; refuses strides
// that are not a whole number of elements (such views are copied in Python first).
inline int64_t element_stride(const py::array& arr, int axis, const char* name) {
  const auto bytes = static_cast<int64_t>(arr.strides(axis));
  FL_CHECK(bytes % static_cast<int64_t>(sizeof(float)) == 0, name,
           ": stride of ", bytes, " bytes is not a multiple of the 4-byte float32 element");
  return bytes / static_cast<int64_t>(sizeof(float));
}

inline void require_float32(const py::array& arr, const char* name) {
  if (!arr.dtype().equal(py::dtype::of<float>())) {
    throw py::type_error(str_cat(name, ": expected dtype float32, got ",
                                 std::string(py::str(arr.dtype()))));
  }
}

inline void require_ndim(const py::array& arr, int ndim, const char* name) {
  FL_CHECK(arr.ndim() == ndim, name, ": expected a ", ndim, "-D array, got ", arr.ndim(), "-D");
}

inline void require_c_contiguous(const py::array& arr, const char* name) {
  FL_CHECK(arr.flags() & py::array::c_style, name, ": expected a C-contiguous array");
}

inline void require_writeable(const py::array& arr, const char* name) {
  FL_CHECK(arr.writeable(), name, ": array is read-only");
}

// What every kernel input must be: float32, `ndim` dimensions, C-contiguous.
inline void require_input(const py::array& arr, int ndim, const char* name) {
  require_float32(arr, name);
  require_ndim(arr, ndim, name);
  require_c_contiguous(arr, name);
}

// A kernel output: an input's checks, and writeable.
inline void require_output(const py::array& arr, int ndim, const char* name) {
  require_input(arr, ndim, name);
  require_writeable(arr, name);
}

}  // namespace fastlayers::bindings

#define FL_CONCAT_INNER(a, b) a##b
#define FL_CONCAT(a, b) FL_CONCAT_INNER(a, b)
#define FL_REGISTER_BINDINGS(family, fn) \
  static ::fastlayers::bindings::Registrar FL_CONCAT(fl_registrar_, family)(#family, fn)
