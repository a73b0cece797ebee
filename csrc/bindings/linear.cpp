// Bindings for the fully connected layer: check what memory safety depends on,
// release the GIL, call. fastlayers.ops.linear validates the user's arguments, flattens
// leading dimensions and allocates the outputs.
#include <pybind11/numpy.h>

#include "bindings/registry.h"
#include "cpu/linear.h"

namespace fastlayers::bindings {
namespace {

ConstMatrixView view_of(const py::array& a, const char* name) {
  return ConstMatrixView{static_cast<const float*>(a.data()), element_stride(a, 0, name), element_stride(a, 1, name)};
}

// A C-contiguous writeable float32 array of the given 2-D shape (or 1-D when cols < 0).
float* output_pointer(py::array& a, int64_t rows, int64_t cols, const char* name) {
  require_float32(a, name);
  require_c_contiguous(a, name);
  require_writeable(a, name);
  if (cols < 0) {
    require_ndim(a, 1, name);
    FL_CHECK(a.shape(0) == rows, name, ": expected shape (", rows, ",), got (", a.shape(0), ",)");
  } else {
    require_ndim(a, 2, name);
    FL_CHECK(a.shape(0) == rows && a.shape(1) == cols, name, ": expected shape (", rows, ", ", cols,
             "), got (", a.shape(0), ", ", a.shape(1), ")");
  }
  return static_cast<float*>(a.mutable_data());
}

// x (N, in) and w (out, in): the shape, after checking that they agree.
LinearShape shape_of(const py::array& x, const py::array& w) {
  require_float32(x, "x");
  require_float32(w, "w");
  require_ndim(x, 2, "x");
  require_ndim(w, 2, "w");
  FL_CHECK(x.shape(1) == w.shape(1), "x: expected ", w.shape(1), " in-features to match w of shape (",
           w.shape(0), ", ", w.shape(1), "), got ", x.shape(1));
  return LinearShape{x.shape(0), x.shape(1), w.shape(0)};
}

LinearActivation to_act(bool relu) { return relu ? LinearActivation::kRelu : LinearActivation::kNone; }

void forward_binding(py::array y, py::array x, py::array w, py::object b, bool relu) {
  const LinearShape s = shape_of(x, w);
  float* yp = output_pointer(y, s.n, s.out, "out");
  const float* bp = nullptr;
  if (!b.is_none()) {
    const auto barr = py::cast<py::array>(b);
    require_input(barr, 1, "b");
    FL_CHECK(barr.shape(0) == s.out, "b: expected shape (", s.out, ",), got (", barr.shape(0), ",)");
    bp = static_cast<const float*>(barr.data());
  }
  const ConstMatrixView xv = view_of(x, "x"), wv = view_of(w, "w");
  py::gil_scoped_release release;
  linear_forward(yp, xv, wv, bp, s, to_act(relu));
}

void backward_binding(py::object dx, py::array dw, py::object db, py::object y, py::array dout,
                      py::array x, py::array w, bool relu) {
  const LinearShape s = shape_of(x, w);
  require_float32(dout, "dout");
  require_c_contiguous(dout, "dout");
  require_ndim(dout, 2, "dout");
  FL_CHECK(dout.shape(0) == s.n && dout.shape(1) == s.out, "dout: expected shape (", s.n, ", ", s.out,
           "), got (", dout.shape(0), ", ", dout.shape(1), ")");
  float* dwp = output_pointer(dw, s.out, s.in, "dw");
  float* dxp = nullptr;
  py::array dxa, dba;
  if (!dx.is_none()) {
    dxa = py::cast<py::array>(dx);
    dxp = output_pointer(dxa, s.n, s.in, "dx");
  }
  float* dbp = nullptr;
  if (!db.is_none()) {
    dba = py::cast<py::array>(db);
    dbp = output_pointer(dba, s.out, -1, "db");
  }
  const float* yp = nullptr;
  if (relu) {
    FL_CHECK(!y.is_none(), "y: relu needs the forward output");
    const auto ya = py::cast<py::array>(y);
    require_float32(ya, "y");
    require_c_contiguous(ya, "y");
    FL_CHECK(static_cast<int64_t>(ya.size()) == s.n * s.out, "y: expected ", s.n * s.out, " elements, got ", ya.size());
    yp = static_cast<const float*>(ya.data());
  }
  const ConstMatrixView xv = view_of(x, "x"), wv = view_of(w, "w");
  const auto* gp = static_cast<const float*>(dout.data());
  py::gil_scoped_release release;
  linear_backward(dxp, dwp, dbp, yp, gp, xv, wv, s, to_act(relu));
}

}  // namespace

FL_REGISTER_BINDINGS(linear, [](py::module_& m) {
  m.def("linear_forward", &forward_binding, py::arg("out"), py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("relu"), "out (N, out) <- act(x (N, in) @ w (out, in)^T + b); x and w any strides.");
  m.def("linear_backward", &backward_binding, py::arg("dx"), py::arg("dw"), py::arg("db"), py::arg("y"),
        py::arg("dout"), py::arg("x"), py::arg("w"), py::arg("relu"),
        "dx <- dz @ w (skipped when None), dw <- dz^T @ x, db <- sum_n dz (when not None), "
        "dz = dout * [y > 0] for relu, else dout.");
});

}  // namespace fastlayers::bindings
