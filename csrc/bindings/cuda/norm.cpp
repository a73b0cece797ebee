// CUDA bindings of batch norm and layer norm: the same names, arguments and meaning as
// the _cpu bindings (bindings/norm.cpp), arrays as device arrays, plus a final `stream`.
// Saved statistics are float64 device arrays, everything else float32.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bindings/cuda/registry.h"
#include "cuda/norm.h"

namespace fastlayers::cuda_bindings {
namespace {

// A device array of exactly `len` elements of dtype `typestr` (any rank), or nullptr for None.
void* vector_or_null(const py::object& o, int64_t len, const char* name, bool write, const char* typestr) {
  if (o.is_none()) return nullptr;
  const DeviceView v = write ? device_output(o, name, -1, typestr) : device_view(o, name, -1, typestr);
  FL_CHECK(v.size() == len, name, ": expected ", len, " elements, got ", v.size());
  return v.data;
}

float* f32_or_null(const py::object& o, int64_t len, const char* name, bool write) {
  return static_cast<float*>(vector_or_null(o, len, name, write, "<f4"));
}

double* f64_or_null(const py::object& o, int64_t len, const char* name, bool write) {
  return static_cast<double*>(vector_or_null(o, len, name, write, "<f8"));
}

BatchNormShape bn_shape(const DeviceView& x) {
  FL_CHECK(x.ndim() == 2 || x.ndim() == 4, "x: expected a 2-D or 4-D array, got ", x.ndim(), "-D");
  const int64_t s = x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1;
  return {x.dim(0), x.dim(1), s};
}

void batch_norm_forward_binding(py::object y, py::object save_mean, py::object save_invstd,
                                py::object running_mean, py::object running_var, py::object x, py::object gamma,
                                py::object beta, bool training, double momentum, double eps, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x");
  const BatchNormShape sh = bn_shape(xv);
  const DeviceView yv = device_output(y, "out");
  require_shape(yv, xv.shape, "out");
  double* sm = f64_or_null(save_mean, sh.c, "save_mean", true);
  double* si = f64_or_null(save_invstd, sh.c, "save_invstd", true);
  FL_CHECK(sm && si, "save_mean/save_invstd: required");
  float* rm = f32_or_null(running_mean, sh.c, "running_mean", training);
  float* rv = f32_or_null(running_var, sh.c, "running_var", training);
  const float* g = f32_or_null(gamma, sh.c, "gamma", false);
  const float* b = f32_or_null(beta, sh.c, "beta", false);
  FL_CHECK(training || (rm && rv), "running_mean/running_var: required in eval mode (training=False)");
  FL_CHECK(!training || rm == nullptr || rm != rv, "running_var: must not share memory with running_mean");
  py::gil_scoped_release release;
  if (training) {
    fastlayers::cuda::batch_norm_forward_train(yv.f32(), sm, si, rm, rv, xv.f32(), g, b, sh, momentum, eps,
                                               as_stream(stream));
  } else {
    fastlayers::cuda::batch_norm_forward_eval(yv.f32(), sm, si, xv.f32(), rm, rv, g, b, sh, eps, as_stream(stream));
  }
}

void batch_norm_backward_binding(py::object dx, py::object dgamma, py::object dbeta, py::object dout, py::object x,
                                 py::object save_mean, py::object save_invstd, py::object gamma, bool training,
                                 uintptr_t stream) {
  const DeviceView xv = device_view(x, "x");
  const BatchNormShape sh = bn_shape(xv);
  const DeviceView gv = device_view(dout, "dout");
  require_shape(gv, xv.shape, "dout");
  const DeviceView dv = device_output(dx, "dx");
  require_shape(dv, xv.shape, "dx");
  float* dg = f32_or_null(dgamma, sh.c, "dgamma", true);
  float* db = f32_or_null(dbeta, sh.c, "dbeta", true);
  const double* sm = f64_or_null(save_mean, sh.c, "save_mean", false);
  const double* si = f64_or_null(save_invstd, sh.c, "save_invstd", false);
  FL_CHECK(sm && si, "save_mean/save_invstd: required");
  const float* g = f32_or_null(gamma, sh.c, "gamma", false);
  py::gil_scoped_release release;
  fastlayers::cuda::batch_norm_backward(dv.f32(), dg, db, gv.f32(), xv.f32(), sm, si, g, sh, training,
                                        as_stream(stream));
}

// Layer norm sees x as (rows, d): d = the product of the normalised trailing dimensions.
LayerNormShape ln_shape(const DeviceView& x, int64_t d) {
  FL_CHECK(d >= 1 && x.size() % d == 0, "normalized_shape: ", d, " elements do not divide x's size ", x.size());
  return {x.size() / d, d};
}

void layer_norm_forward_binding(py::object y, py::object save_mean, py::object save_invstd, py::object x,
                                py::object weight, py::object bias, int64_t d, double eps, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x");
  const LayerNormShape sh = ln_shape(xv, d);
  const DeviceView yv = device_output(y, "out");
  require_shape(yv, xv.shape, "out");
  double* sm = f64_or_null(save_mean, sh.rows, "save_mean", true);
  double* si = f64_or_null(save_invstd, sh.rows, "save_invstd", true);
  FL_CHECK(sm && si, "save_mean/save_invstd: required");
  const float* w = f32_or_null(weight, d, "weight", false);
  const float* b = f32_or_null(bias, d, "bias", false);
  py::gil_scoped_release release;
  fastlayers::cuda::layer_norm_forward(yv.f32(), sm, si, xv.f32(), w, b, sh, eps, as_stream(stream));
}

void layer_norm_backward_binding(py::object dx, py::object dweight, py::object dbias, py::object dout,
                                 py::object x, py::object save_mean, py::object save_invstd, py::object weight,
                                 int64_t d, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x");
  const LayerNormShape sh = ln_shape(xv, d);
  const DeviceView gv = device_view(dout, "dout");
  require_shape(gv, xv.shape, "dout");
  const DeviceView dv = device_output(dx, "dx");
  require_shape(dv, xv.shape, "dx");
  float* dw = f32_or_null(dweight, d, "dweight", true);
  float* db = f32_or_null(dbias, d, "dbias", true);
  const double* sm = f64_or_null(save_mean, sh.rows, "save_mean", false);
  const double* si = f64_or_null(save_invstd, sh.rows, "save_invstd", false);
  FL_CHECK(sm && si, "save_mean/save_invstd: required");
  const float* w = f32_or_null(weight, d, "weight", false);
  py::gil_scoped_release release;
  fastlayers::cuda::layer_norm_backward(dv.f32(), dw, db, gv.f32(), xv.f32(), sm, si, w, sh, as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(norm, [](py::module_& m) {
  m.def("batch_norm_forward", &batch_norm_forward_binding, py::arg("out"), py::arg("save_mean"),
        py::arg("save_invstd"), py::arg("running_mean").none(true), py::arg("running_var").none(true), py::arg("x"),
        py::arg("gamma").none(true), py::arg("beta").none(true), py::arg("training"), py::arg("momentum"),
        py::arg("eps"), py::arg("stream") = 0,
        "Batch norm forward on (N, F) or (N, C, H, W) float32 device x; writes out and the saved "
        "float64 mean / invstd (C,); training mode updates running_mean/var in place.");
  m.def("batch_norm_backward", &batch_norm_backward_binding, py::arg("dx"), py::arg("dgamma").none(true),
        py::arg("dbeta").none(true), py::arg("dout"), py::arg("x"), py::arg("save_mean"), py::arg("save_invstd"),
        py::arg("gamma").none(true), py::arg("training"), py::arg("stream") = 0,
        "Batch norm backward: writes dx and (when given) dgamma, dbeta.");
  m.def("layer_norm_forward", &layer_norm_forward_binding, py::arg("out"), py::arg("save_mean"),
        py::arg("save_invstd"), py::arg("x"), py::arg("weight").none(true), py::arg("bias").none(true),
        py::arg("d"), py::arg("eps"), py::arg("stream") = 0,
        "Layer norm forward over the last d elements of float32 device x.");
  m.def("layer_norm_backward", &layer_norm_backward_binding, py::arg("dx"), py::arg("dweight").none(true),
        py::arg("dbias").none(true), py::arg("dout"), py::arg("x"), py::arg("save_mean"), py::arg("save_invstd"),
        py::arg("weight").none(true), py::arg("d"), py::arg("stream") = 0,
        "Layer norm backward: writes dx and (when given) dweight, dbias.");
});

}  // namespace fastlayers::cuda_bindings
