// Bindings for 2-D convolution: check, release the GIL, call.
//
// The Python layer (fastlayers.ops.conv) validates arguments, computes output sizes and
// the asymmetric "same" padding, and allocates the results; these functions re-check
// what memory safety depends on: dtypes, ranks, contiguity and that every array's shape
// agrees with the one convolution they describe (x / dx (N, C, H, W), w / dw
// (K, C/groups, R, S), out / dout (N, K, P, Q), bias (K) or init (C)).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>

#include "bindings/registry.h"
#include "cpu/conv.h"

namespace fastlayers::bindings {
namespace {

// The convolution described by an input-side array (N, C, H, W), the weights and an
// output-side array (N, K, P, Q), checked for consistency.
Conv2dShape make_shape(const py::array& xs, const char* xname, const py::array& w, const char* wname,
                       const py::array& os, const char* oname, int64_t stride_h, int64_t stride_w,
                       int64_t pad_top, int64_t pad_left, int64_t dil_h, int64_t dil_w,
                       int64_t groups) {
  require_input(xs, 4, xname);
  require_input(w, 4, wname);
  require_input(os, 4, oname);
  int64_t x4[4], w4[4], o4[4];
  for (int i = 0; i < 4; ++i) {
    x4[i] = xs.shape(i);
    w4[i] = w.shape(i);
    o4[i] = os.shape(i);
  }
  const Conv2dShape sh = conv2d_shape_of(x4, xname, w4, wname, o4, oname, stride_h, stride_w, pad_top, pad_left,
                                         dil_h, dil_w, groups);
  conv2d_check_shape(sh);
  return sh;
}

const float* optional_vector(const std::optional<py::array>& v, int64_t len, const char* name) {
  if (!v) return nullptr;
  require_float32(*v, name);
  require_ndim(*v, 1, name);
  require_c_contiguous(*v, name);
  FL_CHECK(v->shape(0) == len, name, ": expected shape (", len, ",), got (", v->shape(0), ",)");
  return static_cast<const float*>(v->data());
}

void forward_binding(py::array out, py::array x, py::array w, std::optional<py::array> bias,
                     int64_t sh_, int64_t sw_, int64_t pt, int64_t pl, int64_t dh, int64_t dw_,
                     int64_t groups) {
  const Conv2dShape sh = make_shape(x, "x", w, "w", out, "out", sh_, sw_, pt, pl, dh, dw_, groups);
  require_writeable(out, "out");
  const float* b = optional_vector(bias, sh.k, "b");
  py::gil_scoped_release release;
  conv2d_forward(static_cast<float*>(out.mutable_data()), static_cast<const float*>(x.data()),
                 static_cast<const float*>(w.data()), b, sh);
}

void backward_data_binding(py::array dx, py::array dout, py::array w, std::optional<py::array> init,
                           int64_t sh_, int64_t sw_, int64_t pt, int64_t pl, int64_t dh, int64_t dw_,
                           int64_t groups) {
  const Conv2dShape sh = make_shape(dx, "dx", w, "w", dout, "dout", sh_, sw_, pt, pl, dh, dw_, groups);
  require_writeable(dx, "dx");
  const float* i0 = optional_vector(init, sh.c, "init");
  py::gil_scoped_release release;
  conv2d_backward_data(static_cast<float*>(dx.mutable_data()), static_cast<const float*>(dout.data()),
                       static_cast<const float*>(w.data()), i0, sh);
}

void backward_weight_binding(py::array dw, py::array dout, py::array x, int64_t sh_, int64_t sw_,
                             int64_t pt, int64_t pl, int64_t dh, int64_t dw_, int64_t groups) {
  const Conv2dShape sh = make_shape(x, "x", dw, "dw", dout, "dout", sh_, sw_, pt, pl, dh, dw_, groups);
  require_writeable(dw, "dw");
  py::gil_scoped_release release;
  conv2d_backward_weight(static_cast<float*>(dw.mutable_data()), static_cast<const float*>(dout.data()),
                         static_cast<const float*>(x.data()), sh);
}

void backward_bias_binding(py::array db, py::array dout) {
  require_input(dout, 4, "dout");
  require_output(db, 1, "db");
  FL_CHECK(db.shape(0) == dout.shape(1), "db: expected shape (", dout.shape(1), ",), got (",
           db.shape(0), ",)");
  const int64_t n = dout.shape(0), k = dout.shape(1), pq = dout.shape(2) * dout.shape(3);
  py::gil_scoped_release release;
  conv2d_backward_bias(static_cast<float*>(db.mutable_data()), static_cast<const float*>(dout.data()),
                       n, k, pq);
}

}  // namespace

FL_REGISTER_BINDINGS(conv, [](py::module_& m) {
  m.def("conv2d_forward", &forward_binding, py::arg("out"), py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"),
        py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"),
        "out (N, K, P, Q) <- conv2d(x (N, C, H, W), w (K, C/groups, R, S)) + b (K) or None.");
  m.def("conv2d_backward_data", &backward_data_binding, py::arg("dx"), py::arg("dout"), py::arg("w"),
        py::arg("init"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"),
        py::arg("pad_left"), py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"),
        "dx (N, C, H, W) <- init (C) or 0, plus the transposed convolution of dout (N, K, P, Q).");
  m.def("conv2d_backward_weight", &backward_weight_binding, py::arg("dw"), py::arg("dout"), py::arg("x"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"),
        py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"),
        "dw (K, C/groups, R, S) <- weight gradient of conv2d for dout (N, K, P, Q) and x.");
  m.def("_conv2d_force_path", &conv2d_force_path, py::arg("mode"),
        "For tests: 0 = choose the kernel path by size, 1 = never the batch-blocked path, "
        "2 = the batch-blocked path whenever the batch allows. Returns its images per block.");
  m.def("conv2d_backward_bias", &backward_bias_binding, py::arg("db"), py::arg("dout"),
        "db (K) <- dout (N, K, P, Q) summed over N, P, Q.");
});

}  // namespace fastlayers::bindings
