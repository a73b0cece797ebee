// CUDA bindings of 2-D convolution: the same entry points and argument order as _cpu's
// conv2d_forward / conv2d_backward_data / conv2d_backward_weight / conv2d_backward_bias,
// on C-contiguous device arrays, plus `stream`. fastlayers.ops.conv validates the user's
// arguments and builds conv_transpose2d from these four (see csrc/cpu/conv.h); here every
// array's shape is re-checked against the one convolution they describe: x / dx (N, C, H,
// W), w / dw (K, C/groups, R, S), out / dout (N, K, P, Q), bias (K) or init (C).
#include <pybind11/pybind11.h>

#include "bindings/cuda/registry.h"
#include "cuda/conv.h"

namespace fastlayers::cuda_bindings {
namespace {

// The convolution described by an input-side array xs (N, C, H, W), the weights w and an
// output-side array os (N, K, P, Q), checked for consistency (cpu/conv.h).
Conv2dShape make_shape(const DeviceView& xs, const char* xname, const DeviceView& w, const char* wname,
                       const DeviceView& os, const char* oname, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                       int64_t pad_left, int64_t dil_h, int64_t dil_w, int64_t groups) {
  return conv2d_shape_of(xs.shape.data(), xname, w.shape.data(), wname, os.shape.data(), oname, stride_h, stride_w,
                         pad_top, pad_left, dil_h, dil_w, groups);
}

const float* optional_vector(const py::object& v, int64_t len, const char* name) {
  if (v.is_none()) return nullptr;
  const DeviceView dv = device_view(v, name, 1);
  require_shape(dv, {len}, name);
  return dv.f32();
}

void forward_binding(py::object out, py::object x, py::object w, py::object bias, int64_t sh_, int64_t sw_,
                     int64_t pt, int64_t pl, int64_t dh, int64_t dw_, int64_t groups, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x", 4), wv = device_view(w, "w", 4), ov = device_output(out, "out", 4);
  const Conv2dShape sh = make_shape(xv, "x", wv, "w", ov, "out", sh_, sw_, pt, pl, dh, dw_, groups);
  const float* b = optional_vector(bias, sh.k, "b");
  py::gil_scoped_release release;
  cuda::conv2d_forward(ov.f32(), xv.f32(), wv.f32(), b, sh, as_stream(stream));
}

void backward_data_binding(py::object dx, py::object dout, py::object w, py::object init, int64_t sh_, int64_t sw_,
                           int64_t pt, int64_t pl, int64_t dh, int64_t dw_, int64_t groups, uintptr_t stream) {
  const DeviceView dxv = device_output(dx, "dx", 4), gv = device_view(dout, "dout", 4), wv = device_view(w, "w", 4);
  const Conv2dShape sh = make_shape(dxv, "dx", wv, "w", gv, "dout", sh_, sw_, pt, pl, dh, dw_, groups);
  const float* i0 = optional_vector(init, sh.c, "init");
  py::gil_scoped_release release;
  cuda::conv2d_backward_data(dxv.f32(), gv.f32(), wv.f32(), i0, sh, as_stream(stream));
}

void backward_weight_binding(py::object dw, py::object dout, py::object x, int64_t sh_, int64_t sw_, int64_t pt,
                             int64_t pl, int64_t dh, int64_t dw_, int64_t groups, uintptr_t stream) {
  const DeviceView dwv = device_output(dw, "dw", 4), gv = device_view(dout, "dout", 4), xv = device_view(x, "x", 4);
  const Conv2dShape sh = make_shape(xv, "x", dwv, "dw", gv, "dout", sh_, sw_, pt, pl, dh, dw_, groups);
  py::gil_scoped_release release;
  cuda::conv2d_backward_weight(dwv.f32(), gv.f32(), xv.f32(), sh, as_stream(stream));
}

void backward_bias_binding(py::object db, py::object dout, uintptr_t stream) {
  const DeviceView gv = device_view(dout, "dout", 4), dbv = device_output(db, "db", 1);
  require_shape(dbv, {gv.dim(1)}, "db");
  const int64_t n = gv.dim(0), k = gv.dim(1), pq = gv.dim(2) * gv.dim(3);
  py::gil_scoped_release release;
  cuda::conv2d_backward_bias(dbv.f32(), gv.f32(), n, k, pq, as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(conv, [](py::module_& m) {
  m.def("conv2d_forward", &forward_binding, py::arg("out"), py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"), py::arg("dil_h"),
        py::arg("dil_w"), py::arg("groups"), py::arg("stream") = 0,
        "out (N, K, P, Q) <- conv2d(x (N, C, H, W), w (K, C/groups, R, S)) + b (K) or None.");
  m.def("conv2d_backward_data", &backward_data_binding, py::arg("dx"), py::arg("dout"), py::arg("w"),
        py::arg("init"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"),
        py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"), py::arg("stream") = 0,
        "dx (N, C, H, W) <- init (C) or 0, plus the transposed convolution of dout (N, K, P, Q).");
  m.def("conv2d_backward_weight", &backward_weight_binding, py::arg("dw"), py::arg("dout"), py::arg("x"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"), py::arg("dil_h"),
        py::arg("dil_w"), py::arg("groups"), py::arg("stream") = 0,
        "dw (K, C/groups, R, S) <- weight gradient of conv2d for dout (N, K, P, Q) and x.");
  m.def("conv2d_backward_bias", &backward_bias_binding, py::arg("db"), py::arg("dout"), py::arg("stream") = 0,
        "db (K) <- dout (N, K, P, Q) summed over N, P, Q.");
  m.def("_conv2d_workspace_limit", &cuda::conv2d_workspace_limit, py::arg("floats"),
        "For tests: the workspace (floats) one conv call may use; a small limit forces several chunks of "
        "images. <= 0 only queries. Returns the old limit.");
});

}  // namespace fastlayers::cuda_bindings
