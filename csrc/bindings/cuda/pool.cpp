// CUDA bindings of the pooling family: the same names, arguments and meaning as the _cpu
// bindings (bindings/pool.cpp), arrays as device arrays (__cuda_array_interface__), plus
// a final `stream` (0: the default stream). Check, release the GIL, launch.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/cuda/registry.h"
#include "cuda/pool.h"

namespace fastlayers::cuda_bindings {
namespace {

// Geometry from the input shape and the pooling parameters (the floor formula). Also
// refuses padding above half the window, which would leave windows with no input element.
Pool2dShape make_shape(const std::vector<int64_t>& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                       int64_t ph, int64_t pw) {
  const int64_t h = x[2], w = x[3];
  FL_CHECK(kh >= 1 && kw >= 1, "kernel_size: expected >= 1, got (", kh, ", ", kw, ")");
  FL_CHECK(sh >= 1 && sw >= 1, "stride: expected >= 1, got (", sh, ", ", sw, ")");
  FL_CHECK(ph >= 0 && pw >= 0, "padding: expected >= 0, got (", ph, ", ", pw, ")");
  FL_CHECK(2 * ph <= kh && 2 * pw <= kw, "padding: expected at most half the kernel size, got (", ph,
           ", ", pw, ") for kernel (", kh, ", ", kw, ")");
  FL_CHECK(h >= 1 && w >= 1, "x: expected a spatial size of at least 1x1, got ", h, "x", w);
  FL_CHECK(h + 2 * ph >= kh && w + 2 * pw >= kw, "kernel_size: (", kh, ", ", kw,
           ") is larger than the padded input (", h + 2 * ph, ", ", w + 2 * pw, ")");
  FL_CHECK(h * w <= INT32_MAX, "x: a plane of ", h, "x", w, " is too large for int32 argmax indices");
  return Pool2dShape{x[0], x[1], h, w, kh, kw, sh, sw, ph, pw, (h + 2 * ph - kh) / sh + 1,
                     (w + 2 * pw - kw) / sw + 1};
}

std::vector<int64_t> out_shape(const Pool2dShape& s) { return {s.n, s.c, s.oh, s.ow}; }

void max_pool2d_forward_binding(py::object out, py::object argmax, py::object x, int64_t kh,
                                int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                uintptr_t stream) {
  const DeviceView xv = device_view(x, "x", 4);
  const Pool2dShape s = make_shape(xv.shape, kh, kw, sh, sw, ph, pw);
  const DeviceView ov = device_output(out, "out", 4);
  require_shape(ov, out_shape(s), "out");
  int32_t* idx = nullptr;
  if (!argmax.is_none()) {
    const DeviceView av = device_output(argmax, "argmax", 4, "<i4");
    require_shape(av, out_shape(s), "argmax");
    idx = static_cast<int32_t*>(av.data);
  }
  py::gil_scoped_release release;
  fastlayers::cuda::max_pool2d_forward(ov.f32(), idx, xv.f32(), s, as_stream(stream));
}

void max_pool2d_backward_binding(py::object dx, py::object dout, py::object argmax, int64_t kh,
                                 int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                 uintptr_t stream) {
  const DeviceView dxv = device_output(dx, "dx", 4);
  const Pool2dShape s = make_shape(dxv.shape, kh, kw, sh, sw, ph, pw);
  const DeviceView gv = device_view(dout, "dout", 4);
  require_shape(gv, out_shape(s), "dout");
  const DeviceView av = device_view(argmax, "argmax", 4, "<i4");
  require_shape(av, out_shape(s), "argmax");
  py::gil_scoped_release release;
  fastlayers::cuda::max_pool2d_backward(dxv.f32(), gv.f32(), static_cast<const int32_t*>(av.data), s,
                                        as_stream(stream));
}

void avg_pool2d_forward_binding(py::object out, py::object x, int64_t kh, int64_t kw, int64_t sh,
                                int64_t sw, int64_t ph, int64_t pw, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x", 4);
  const Pool2dShape s = make_shape(xv.shape, kh, kw, sh, sw, ph, pw);
  const DeviceView ov = device_output(out, "out", 4);
  require_shape(ov, out_shape(s), "out");
  py::gil_scoped_release release;
  fastlayers::cuda::avg_pool2d_forward(ov.f32(), xv.f32(), s, as_stream(stream));
}

void avg_pool2d_backward_binding(py::object dx, py::object dout, int64_t kh, int64_t kw, int64_t sh,
                                 int64_t sw, int64_t ph, int64_t pw, uintptr_t stream) {
  const DeviceView dxv = device_output(dx, "dx", 4);
  const Pool2dShape s = make_shape(dxv.shape, kh, kw, sh, sw, ph, pw);
  const DeviceView gv = device_view(dout, "dout", 4);
  require_shape(gv, out_shape(s), "dout");
  py::gil_scoped_release release;
  fastlayers::cuda::avg_pool2d_backward(dxv.f32(), gv.f32(), s, as_stream(stream));
}

void global_avg_pool2d_forward_binding(py::object out, py::object x, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x", 4);
  const DeviceView ov = device_output(out, "out", 2);
  require_shape(ov, {xv.dim(0), xv.dim(1)}, "out");
  const int64_t planes = xv.dim(0) * xv.dim(1), hw = xv.dim(2) * xv.dim(3);
  FL_CHECK(hw >= 1 || planes == 0, "x: expected a spatial size of at least 1x1, got ", xv.dim(2), "x",
           xv.dim(3));
  py::gil_scoped_release release;
  fastlayers::cuda::global_avg_pool2d_forward(ov.f32(), xv.f32(), planes, hw, as_stream(stream));
}

void global_avg_pool2d_backward_binding(py::object dx, py::object dout, uintptr_t stream) {
  const DeviceView dxv = device_output(dx, "dx", 4);
  const DeviceView gv = device_view(dout, "dout", 2);
  require_shape(gv, {dxv.dim(0), dxv.dim(1)}, "dout");
  const int64_t planes = dxv.dim(0) * dxv.dim(1), hw = dxv.dim(2) * dxv.dim(3);
  py::gil_scoped_release release;
  fastlayers::cuda::global_avg_pool2d_backward(dxv.f32(), gv.f32(), planes, hw, as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(pool, [](py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward_binding, py::arg("out"), py::arg("argmax").none(true),
        py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"),
        py::arg("pw"), py::arg("stream") = 0,
        "out <- max pool of x; argmax (int32 flat plane index) unless None. NCHW float32 device arrays.");
  m.def("max_pool2d_backward", &max_pool2d_backward_binding, py::arg("dx"), py::arg("dout"),
        py::arg("argmax"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"),
        py::arg("pw"), py::arg("stream") = 0,
        "dx <- sum of dout over the windows whose argmax is each element (zero elsewhere).");
  m.def("avg_pool2d_forward", &avg_pool2d_forward_binding, py::arg("out"), py::arg("x"), py::arg("kh"),
        py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("stream") = 0,
        "out <- average pool of x (zero padding counted in the divisor).");
  m.def("avg_pool2d_backward", &avg_pool2d_backward_binding, py::arg("dx"), py::arg("dout"),
        py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"),
        py::arg("stream") = 0, "dx <- gradient of the average pool.");
  m.def("global_avg_pool2d_forward", &global_avg_pool2d_forward_binding, py::arg("out"), py::arg("x"),
        py::arg("stream") = 0, "out (N, C) <- mean of x (N, C, H, W) over H, W.");
  m.def("global_avg_pool2d_backward", &global_avg_pool2d_backward_binding, py::arg("dx"),
        py::arg("dout"), py::arg("stream") = 0, "dx (N, C, H, W) <- dout (N, C) / (H * W).");
});

}  // namespace fastlayers::cuda_bindings
