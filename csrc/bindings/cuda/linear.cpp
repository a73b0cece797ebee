// CUDA bindings of the fully connected layer: the same entry points and argument order as
// _cpu.linear_forward / _cpu.linear_backward, on C-contiguous device arrays, plus `stream`.
// fastlayers.ops.linear flattens leading dimensions and allocates the outputs.
#include <pybind11/pybind11.h>

#include "bindings/cuda/registry.h"
#include "cuda/linear.h"

namespace fastlayers::cuda_bindings {
namespace {

struct Sizes {
  int64_t n, in, out;
};

// x (N, in) and w (out, in), checked to agree.
Sizes sizes_of(const DeviceView& x, const DeviceView& w) {
  FL_CHECK(x.dim(1) == w.dim(1), "x: expected ", w.dim(1), " in-features to match w of shape (", w.dim(0), ", ",
           w.dim(1), "), got ", x.dim(1));
  return Sizes{x.dim(0), x.dim(1), w.dim(0)};
}

void forward_binding(py::object y, py::object x, py::object w, py::object b, bool relu, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x", 2), wv = device_view(w, "w", 2);
  const Sizes s = sizes_of(xv, wv);
  const DeviceView yv = device_output(y, "out", 2);
  require_shape(yv, {s.n, s.out}, "out");
  const float* bp = nullptr;
  if (!b.is_none()) {
    const DeviceView bv = device_view(b, "b", 1);
    require_shape(bv, {s.out}, "b");
    bp = bv.f32();
  }
  py::gil_scoped_release release;
  cuda::linear_forward(yv.f32(), xv.f32(), wv.f32(), bp, s.n, s.in, s.out, relu, as_stream(stream));
}

void backward_binding(py::object dx, py::object dw, py::object db, py::object y, py::object dout, py::object x,
                      py::object w, bool relu, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x", 2), wv = device_view(w, "w", 2);
  const Sizes s = sizes_of(xv, wv);
  const DeviceView gv = device_view(dout, "dout", 2);
  require_shape(gv, {s.n, s.out}, "dout");
  const DeviceView dwv = device_output(dw, "dw", 2);
  require_shape(dwv, {s.out, s.in}, "dw");
  float* dxp = nullptr;
  if (!dx.is_none()) {
    const DeviceView v = device_output(dx, "dx", 2);
    require_shape(v, {s.n, s.in}, "dx");
    dxp = v.f32();
  }
  float* dbp = nullptr;
  if (!db.is_none()) {
    const DeviceView v = device_output(db, "db", 1);
    require_shape(v, {s.out}, "db");
    dbp = v.f32();
  }
  const float* yp = nullptr;
  if (relu) {
    FL_CHECK(!y.is_none(), "y: relu needs the forward output");
    const DeviceView v = device_view(y, "y");
    FL_CHECK(v.size() == s.n * s.out, "y: expected ", s.n * s.out, " elements, got ", v.size());
    yp = v.f32();
  }
  py::gil_scoped_release release;
  cuda::linear_backward(dxp, dwv.f32(), dbp, yp, gv.f32(), xv.f32(), wv.f32(), s.n, s.in, s.out, relu,
                        as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(linear, [](py::module_& m) {
  m.def("linear_forward", &forward_binding, py::arg("out"), py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("relu"), py::arg("stream") = 0,
        "out (N, out) <- act(x (N, in) @ w (out, in)^T + b); C-contiguous device arrays, b may be None.");
  m.def("linear_backward", &backward_binding, py::arg("dx"), py::arg("dw"), py::arg("db"), py::arg("y"),
        py::arg("dout"), py::arg("x"), py::arg("w"), py::arg("relu"), py::arg("stream") = 0,
        "dx <- dz @ w (skipped when None), dw <- dz^T @ x, db <- sum_n dz (when not None), "
        "dz = dout * [y > 0] for relu, else dout.");
});

}  // namespace fastlayers::cuda_bindings
