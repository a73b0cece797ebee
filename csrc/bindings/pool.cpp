// Bindings for pooling: check, release the GIL, call. The Python layer
// (fastlayers.ops.pool) validates and documents the contract; this re-checks what memory
// safety depends on: dtypes, ranks, contiguity and that every buffer has the shape the
// geometry implies.
#include <pybind11/numpy.h>

#include <cstdint>

#include "bindings/registry.h"
#include "cpu/pool.h"

namespace fastlayers::bindings {
namespace {

void require_int32(const py::array& arr, const char* name) {
  if (!arr.dtype().equal(py::dtype::of<int32_t>())) {
    throw py::type_error(str_cat(name, ": expected dtype int32, got ", std::string(py::str(arr.dtype()))));
  }
}

// A float32 C-contiguous 4-D array of exactly `shape`.
void require_nchw(const py::array& arr, const char* name, const int64_t (&shape)[4]) {
  require_float32(arr, name);
  require_ndim(arr, 4, name);
  require_c_contiguous(arr, name);
  FL_CHECK(arr.shape(0) == shape[0] && arr.shape(1) == shape[1] && arr.shape(2) == shape[2] &&
               arr.shape(3) == shape[3],
           name, ": expected shape (", shape[0], ", ", shape[1], ", ", shape[2], ", ", shape[3],
           "), got (", arr.shape(0), ", ", arr.shape(1), ", ", arr.shape(2), ", ", arr.shape(3), ")");
}

// Geometry from the input shape (n, c, h, w) and the pooling parameters; the output size
// by the floor formula. Fails (ValueError) when the window does not fit.
Pool2dShape make_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  FL_CHECK(kh >= 1 && kw >= 1, "kernel_size: expected >= 1, got (", kh, ", ", kw, ")");
  FL_CHECK(sh >= 1 && sw >= 1, "stride: expected >= 1, got (", sh, ", ", sw, ")");
  FL_CHECK(ph >= 0 && pw >= 0, "padding: expected >= 0, got (", ph, ", ", pw, ")");
  FL_CHECK(h + 2 * ph >= kh && w + 2 * pw >= kw, "kernel_size: (", kh, ", ", kw,
           ") is larger than the padded input (", h + 2 * ph, ", ", w + 2 * pw, ")");
  return Pool2dShape{n, c, h, w, kh, kw, sh, sw, ph, pw, (h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1};
}

// out (N, C, OH, OW) <- max pool of x (N, C, H, W); argmax (N, C, OH, OW) int32 or None.
void max_pool2d_forward_binding(py::array out, py::object argmax_or_none, py::array x,
                                int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  require_input(x, 4, "x");
  const Pool2dShape s = make_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), kh, kw, sh, sw, ph, pw);
  const int64_t oshape[4] = {s.n, s.c, s.oh, s.ow};
  require_nchw(out, "out", oshape);
  require_writeable(out, "out");
  int32_t* idx = nullptr;
  if (!argmax_or_none.is_none()) {
    FL_CHECK(py::isinstance<py::array>(argmax_or_none), "argmax: expected a numpy.ndarray or None");
    py::array argmax = py::reinterpret_borrow<py::array>(argmax_or_none);
    require_int32(argmax, "argmax");
    require_ndim(argmax, 4, "argmax");
    require_c_contiguous(argmax, "argmax");
    require_writeable(argmax, "argmax");
    FL_CHECK(argmax.size() == out.size(), "argmax: expected ", out.size(), " elements, got ", argmax.size());
    idx = static_cast<int32_t*>(argmax.mutable_data());
  }
  float* o = static_cast<float*>(out.mutable_data());
  const float* xp = static_cast<const float*>(x.data());
  py::gil_scoped_release release;
  max_pool2d_forward(o, idx, xp, s);
}

// dx (N, C, H, W) <- scatter of dout (N, C, OH, OW) to argmax (N, C, OH, OW).
void max_pool2d_backward_binding(py::array dx, py::array dout, py::array argmax, int64_t kh,
                                 int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  require_output(dx, 4, "dx");
  const Pool2dShape s = make_shape(dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3), kh, kw, sh, sw, ph, pw);
  const int64_t oshape[4] = {s.n, s.c, s.oh, s.ow};
  require_nchw(dout, "dout", oshape);
  require_int32(argmax, "argmax");
  require_ndim(argmax, 4, "argmax");
  require_c_contiguous(argmax, "argmax");
  FL_CHECK(argmax.size() == dout.size(), "argmax: expected ", dout.size(), " elements, got ", argmax.size());
  float* d = static_cast<float*>(dx.mutable_data());
  const float* g = static_cast<const float*>(dout.data());
  const int32_t* idx = static_cast<const int32_t*>(argmax.data());
  py::gil_scoped_release release;
  max_pool2d_backward(d, g, idx, s);
}

// out (N, C, OH, OW) <- average pool of x (N, C, H, W), zero padding counted.
void avg_pool2d_forward_binding(py::array out, py::array x, int64_t kh, int64_t kw, int64_t sh,
                                int64_t sw, int64_t ph, int64_t pw) {
  require_input(x, 4, "x");
  const Pool2dShape s = make_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), kh, kw, sh, sw, ph, pw);
  const int64_t oshape[4] = {s.n, s.c, s.oh, s.ow};
  require_nchw(out, "out", oshape);
  require_writeable(out, "out");
  float* o = static_cast<float*>(out.mutable_data());
  const float* xp = static_cast<const float*>(x.data());
  py::gil_scoped_release release;
  avg_pool2d_forward(o, xp, s);
}

// dx (N, C, H, W) <- gradient of the average pool for dout (N, C, OH, OW).
void avg_pool2d_backward_binding(py::array dx, py::array dout, int64_t kh, int64_t kw, int64_t sh,
                                 int64_t sw, int64_t ph, int64_t pw) {
  require_output(dx, 4, "dx");
  const Pool2dShape s = make_shape(dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3), kh, kw, sh, sw, ph, pw);
  const int64_t oshape[4] = {s.n, s.c, s.oh, s.ow};
  require_nchw(dout, "dout", oshape);
  float* d = static_cast<float*>(dx.mutable_data());
  const float* g = static_cast<const float*>(dout.data());
  py::gil_scoped_release release;
  avg_pool2d_backward(d, g, s);
}

// out (N, C) <- mean of x (N, C, H, W) over H and W.
void global_avg_pool2d_forward_binding(py::array out, py::array x) {
  require_input(x, 4, "x");
  require_output(out, 2, "out");
  FL_CHECK(out.shape(0) == x.shape(0) && out.shape(1) == x.shape(1), "out: expected shape (",
           x.shape(0), ", ", x.shape(1), "), got (", out.shape(0), ", ", out.shape(1), ")");
  const int64_t planes = x.shape(0) * x.shape(1), hw = x.shape(2) * x.shape(3);
  float* o = static_cast<float*>(out.mutable_data());
  const float* xp = static_cast<const float*>(x.data());
  py::gil_scoped_release release;
  global_avg_pool2d_forward(o, xp, planes, hw);
}

// dx (N, C, H, W) <- dout (N, C) / (H * W), broadcast over each plane.
void global_avg_pool2d_backward_binding(py::array dx, py::array dout) {
  require_output(dx, 4, "dx");
  require_input(dout, 2, "dout");
  FL_CHECK(dout.shape(0) == dx.shape(0) && dout.shape(1) == dx.shape(1), "dout: expected shape (",
           dx.shape(0), ", ", dx.shape(1), "), got (", dout.shape(0), ", ", dout.shape(1), ")");
  const int64_t planes = dx.shape(0) * dx.shape(1), hw = dx.shape(2) * dx.shape(3);
  float* d = static_cast<float*>(dx.mutable_data());
  const float* g = static_cast<const float*>(dout.data());
  py::gil_scoped_release release;
  global_avg_pool2d_backward(d, g, planes, hw);
}

}  // namespace

FL_REGISTER_BINDINGS(pool, [](py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward_binding, py::arg("out"), py::arg("argmax"),
        py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"),
        py::arg("pw"),
        "out <- max pool of x; argmax (int32 flat plane index) unless None. NCHW float32.");
  m.def("max_pool2d_backward", &max_pool2d_backward_binding, py::arg("dx"), py::arg("dout"),
        py::arg("argmax"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"),
        py::arg("pw"), "dx <- 0, then dx[argmax] += dout per plane.");
  m.def("avg_pool2d_forward", &avg_pool2d_forward_binding, py::arg("out"), py::arg("x"), py::arg("kh"),
        py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"),
        "out <- average pool of x (zero padding counted in the divisor).");
  m.def("avg_pool2d_backward", &avg_pool2d_backward_binding, py::arg("dx"), py::arg("dout"),
        py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"),
        "dx <- gradient of the average pool.");
  m.def("global_avg_pool2d_forward", &global_avg_pool2d_forward_binding, py::arg("out"), py::arg("x"),
        "out (N, C) <- mean of x (N, C, H, W) over H, W.");
  m.def("global_avg_pool2d_backward", &global_avg_pool2d_backward_binding, py::arg("dx"),
        py::arg("dout"), "dx (N, C, H, W) <- dout (N, C) / (H * W).");
});

}  // namespace fastlayers::bindings
