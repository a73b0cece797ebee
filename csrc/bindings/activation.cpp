// Bindings for the activation family (activations and the residual add): check what
// memory safety depends on, release the GIL, call. fastlayers.ops.activation validates
// the user's arguments and allocates the outputs.
#include <pybind11/numpy.h>

#include "bindings/registry.h"
#include "cpu/activation.h"

namespace fastlayers::bindings {
namespace {

// A C-contiguous float32 array of exactly n elements.
void require_flat_float32(const py::array& arr, int64_t n, const char* name, bool writeable) {
  require_float32(arr, name);
  require_c_contiguous(arr, name);
  if (writeable) require_writeable(arr, name);
  FL_CHECK(static_cast<int64_t>(arr.size()) == n, name, ": expected ", n, " elements, got ", arr.size());
}

// The packed ReLU mask: C-contiguous uint8 with at least ceil(n / 8) bytes.
uint8_t* mask_pointer(const py::object& obj, int64_t n, bool writeable) {
  FL_CHECK(!obj.is_none(), "mask: this activation needs a mask array");
  const auto arr = py::cast<py::array>(obj);
  if (!arr.dtype().equal(py::dtype::of<uint8_t>())) {
    throw py::type_error("mask: expected dtype uint8");
  }
  require_c_contiguous(arr, "mask");
  if (writeable) require_writeable(arr, "mask");
  FL_CHECK(static_cast<int64_t>(arr.size()) >= activation_mask_bytes(n), "mask: expected at least ",
           activation_mask_bytes(n), " bytes, got ", arr.size());
  return static_cast<uint8_t*>(const_cast<void*>(arr.data()));
}

Activation to_kind(int kind) {
  FL_CHECK(kind >= 0 && kind < kNumActivations, "kind: unknown activation ", kind);
  return static_cast<Activation>(kind);
}

// out <- f(x); mask written for relu / leaky_relu.
void forward_binding(py::array out, py::object mask, py::array x, int kind_id, float alpha,
                     float beta, float threshold) {
  const Activation kind = to_kind(kind_id);
  const auto n = static_cast<int64_t>(x.size());
  require_flat_float32(x, n, "x", false);
  require_flat_float32(out, n, "out", true);
  // No mask (None) for forward-only calls.
  uint8_t* m = activation_saved(kind) == ActivationSaved::kMask && !mask.is_none()
                   ? mask_pointer(mask, n, true)
                   : nullptr;
  const ActivationParams params{alpha, beta, threshold};
  const auto* xp = static_cast<const float*>(x.data());
  auto* yp = static_cast<float*>(out.mutable_data());
  py::gil_scoped_release release;
  activation_forward(yp, m, xp, n, kind, params);
}

// dx <- dout * f'(.), from the mask (relu, leaky_relu) or the saved x / y.
void backward_binding(py::array dx, py::array dout, py::object saved, py::object mask, int kind_id,
                      float alpha, float beta, float threshold) {
  const Activation kind = to_kind(kind_id);
  const auto n = static_cast<int64_t>(dout.size());
  require_flat_float32(dout, n, "dout", false);
  require_flat_float32(dx, n, "dx", true);
  const uint8_t* m = nullptr;
  const float* s = nullptr;
  if (activation_saved(kind) == ActivationSaved::kMask) {
    m = mask_pointer(mask, n, false);
  } else {
    FL_CHECK(!saved.is_none(), "saved: this activation needs the saved input or output");
    const auto sarr = py::cast<py::array>(saved);
    require_flat_float32(sarr, n, "saved", false);
    s = static_cast<const float*>(sarr.data());
  }
  const ActivationParams params{alpha, beta, threshold};
  const auto* dyp = static_cast<const float*>(dout.data());
  auto* dxp = static_cast<float*>(dx.mutable_data());
  py::gil_scoped_release release;
  activation_backward(dxp, m, s, dyp, n, kind, params);
}

void add_binding(py::array out, py::array a, py::array b) {
  const auto n = static_cast<int64_t>(a.size());
  require_flat_float32(a, n, "a", false);
  require_flat_float32(b, n, "b", false);
  require_flat_float32(out, n, "out", true);
  const auto* ap = static_cast<const float*>(a.data());
  const auto* bp = static_cast<const float*>(b.data());
  auto* yp = static_cast<float*>(out.mutable_data());
  py::gil_scoped_release release;
  add_forward(yp, ap, bp, n);
}

}  // namespace

FL_REGISTER_BINDINGS(activation, [](py::module_& m) {
  m.def("activation_forward", &forward_binding, py::arg("out"), py::arg("mask"), py::arg("x"),
        py::arg("kind"), py::arg("alpha"), py::arg("beta"), py::arg("threshold"),
        "out <- f(x) for activation `kind` (float32, C-contiguous); mask (uint8, ceil(n/8) "
        "bytes) is written for relu / leaky_relu.");
  m.def("activation_backward", &backward_binding, py::arg("dx"), py::arg("dout"), py::arg("saved"),
        py::arg("mask"), py::arg("kind"), py::arg("alpha"), py::arg("beta"), py::arg("threshold"),
        "dx <- dout * f'(.) from the packed mask (relu, leaky_relu) or the saved x / y.");
  m.def("add_forward", &add_binding, py::arg("out"), py::arg("a"), py::arg("b"),
        "out <- a + b (float32, C-contiguous, same number of elements).");
});

}  // namespace fastlayers::bindings
