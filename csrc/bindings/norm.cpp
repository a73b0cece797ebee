// Bindings for batch norm and layer norm: check, release the GIL, call. The Python layer
// (fastlayers.ops.norm) validates with full messages and allocates; this re-checks what
// memory safety depends on (dtypes, contiguity, sizes).
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "bindings/registry.h"
#include "cpu/norm.h"

namespace fastlayers::bindings {
namespace {

int64_t numel(const py::array& a) { return static_cast<int64_t>(a.size()); }

// A float32 C-contiguous array with the same shape as `like`.
void require_like(const py::array& a, const py::array& like, const char* name, bool write) {
  require_float32(a, name);
  require_c_contiguous(a, name);
  if (write) require_writeable(a, name);
  FL_CHECK(a.ndim() == like.ndim(), name, ": expected ", like.ndim(), "-D, got ", a.ndim(), "-D");
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    FL_CHECK(a.shape(i) == like.shape(i), name, ": shape differs from x's in dimension ", i);
  }
}

// A C-contiguous 1-D array of `len` elements of dtype T, or nullptr for None.
template <typename T>
T* vector_or_null(const py::object& o, int64_t len, const char* name, bool write) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error(str_cat(name, ": expected a numpy.ndarray"));
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (!a.dtype().equal(py::dtype::of<T>())) {
    throw py::type_error(str_cat(name, ": unexpected dtype ", std::string(py::str(a.dtype()))));
  }
  require_c_contiguous(a, name);
  if (write) require_writeable(a, name);
  FL_CHECK(numel(a) == len, name, ": expected ", len, " elements, got ", numel(a));
  // Read-only arrays are fine for inputs; the kernel gets const pointers for those.
  return write ? static_cast<T*>(a.mutable_data()) : const_cast<T*>(static_cast<const T*>(a.data()));
}

BatchNormShape bn_shape(const py::array& x) {
  FL_CHECK(x.ndim() == 2 || x.ndim() == 4, "x: expected a 2-D or 4-D array, got ", x.ndim(), "-D");
  const int64_t s = x.ndim() == 4 ? static_cast<int64_t>(x.shape(2) * x.shape(3)) : 1;
  return {static_cast<int64_t>(x.shape(0)), static_cast<int64_t>(x.shape(1)), s};
}

void batch_norm_forward_binding(py::array y, py::array save_mean, py::array save_invstd,
                                py::object running_mean, py::object running_var, py::array x,
                                py::object gamma, py::object beta, bool training, double momentum,
                                double eps) {
  require_float32(x, "x");
  require_c_contiguous(x, "x");
  const BatchNormShape sh = bn_shape(x);
  require_like(y, x, "out", true);
  double* sm = vector_or_null<double>(save_mean, sh.c, "save_mean", true);
  double* si = vector_or_null<double>(save_invstd, sh.c, "save_invstd", true);
  FL_CHECK(sm && si, "save_mean/save_invstd: required");
  float* rm = vector_or_null<float>(running_mean, sh.c, "running_mean", training);
  float* rv = vector_or_null<float>(running_var, sh.c, "running_var", training);
  const float* g = vector_or_null<float>(gamma, sh.c, "gamma", false);
  const float* b = vector_or_null<float>(beta, sh.c, "beta", false);
  float* yp = static_cast<float*>(y.mutable_data());
  const float* xp = static_cast<const float*>(x.data());

  py::gil_scoped_release release;
  if (training) {
    batch_norm_forward_train(yp, sm, si, rm, rv, xp, g, b, sh, momentum, eps);
  } else {
    batch_norm_forward_eval(yp, sm, si, xp, rm, rv, g, b, sh, eps);
  }
}

void batch_norm_backward_binding(py::array dx, py::object dgamma, py::object dbeta, py::array dout,
                                 py::array x, py::array save_mean, py::array save_invstd,
                                 py::object gamma, bool training) {
  require_float32(x, "x");
  require_c_contiguous(x, "x");
  const BatchNormShape sh = bn_shape(x);
  require_like(dout, x, "dout", false);
  require_like(dx, x, "dx", true);
  float* dg = vector_or_null<float>(dgamma, sh.c, "dgamma", true);
  float* db = vector_or_null<float>(dbeta, sh.c, "dbeta", true);
  const double* sm = vector_or_null<double>(save_mean, sh.c, "save_mean", false);
  const double* si = vector_or_null<double>(save_invstd, sh.c, "save_invstd", false);
  const float* g = vector_or_null<float>(gamma, sh.c, "gamma", false);
  float* dxp = static_cast<float*>(dx.mutable_data());
  const float* dyp = static_cast<const float*>(dout.data());
  const float* xp = static_cast<const float*>(x.data());

  py::gil_scoped_release release;
  batch_norm_backward(dxp, dg, db, dyp, xp, sm, si, g, sh, training);
}

// Layer norm sees x as (rows, d): d = the product of the normalised trailing dimensions.
LayerNormShape ln_shape(const py::array& x, int64_t d) {
  FL_CHECK(d >= 1 && numel(x) % d == 0, "normalized_shape: ", d,
           " elements do not divide x's size ", numel(x));
  return {numel(x) / d, d};
}

void layer_norm_forward_binding(py::array y, py::array save_mean, py::array save_invstd,
                                py::array x, py::object weight, py::object bias, int64_t d,
                                double eps) {
  require_float32(x, "x");
  require_c_contiguous(x, "x");
  const LayerNormShape sh = ln_shape(x, d);
  require_like(y, x, "out", true);
  double* sm = vector_or_null<double>(save_mean, sh.rows, "save_mean", true);
  double* si = vector_or_null<double>(save_invstd, sh.rows, "save_invstd", true);
  const float* w = vector_or_null<float>(weight, d, "weight", false);
  const float* b = vector_or_null<float>(bias, d, "bias", false);
  float* yp = static_cast<float*>(y.mutable_data());
  const float* xp = static_cast<const float*>(x.data());

  py::gil_scoped_release release;
  layer_norm_forward(yp, sm, si, xp, w, b, sh, eps);
}

void layer_norm_backward_binding(py::array dx, py::object dweight, py::object dbias,
                                 py::array dout, py::array x, py::array save_mean,
                                 py::array save_invstd, py::object weight, int64_t d) {
  require_float32(x, "x");
  require_c_contiguous(x, "x");
  const LayerNormShape sh = ln_shape(x, d);
  require_like(dout, x, "dout", false);
  require_like(dx, x, "dx", true);
  float* dw = vector_or_null<float>(dweight, d, "dweight", true);
  float* db = vector_or_null<float>(dbias, d, "dbias", true);
  const double* sm = vector_or_null<double>(save_mean, sh.rows, "save_mean", false);
  const double* si = vector_or_null<double>(save_invstd, sh.rows, "save_invstd", false);
  const float* w = vector_or_null<float>(weight, d, "weight", false);
  float* dxp = static_cast<float*>(dx.mutable_data());
  const float* dyp = static_cast<const float*>(dout.data());
  const float* xp = static_cast<const float*>(x.data());

  py::gil_scoped_release release;
  layer_norm_backward(dxp, dw, db, dyp, xp, sm, si, w, sh);
}

}  // namespace

FL_REGISTER_BINDINGS(norm, [](py::module_& m) {
  m.def("batch_norm_forward", &batch_norm_forward_binding, py::arg("out"), py::arg("save_mean"),
        py::arg("save_invstd"), py::arg("running_mean").none(true), py::arg("running_var").none(true),
        py::arg("x"), py::arg("gamma").none(true), py::arg("beta").none(true), py::arg("training"),
        py::arg("momentum"), py::arg("eps"),
        "Batch norm forward on (N, F) or (N, C, H, W) float32 x; writes out and the saved "
        "float64 mean / invstd (C,); training mode updates running_mean/var in place.");
  m.def("batch_norm_backward", &batch_norm_backward_binding, py::arg("dx"),
        py::arg("dgamma").none(true), py::arg("dbeta").none(true), py::arg("dout"), py::arg("x"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("gamma").none(true),
        py::arg("training"), "Batch norm backward: writes dx and (when given) dgamma, dbeta.");
  m.def("layer_norm_forward", &layer_norm_forward_binding, py::arg("out"), py::arg("save_mean"),
        py::arg("save_invstd"), py::arg("x"), py::arg("weight").none(true),
        py::arg("bias").none(true), py::arg("d"), py::arg("eps"),
        "Layer norm forward over the last d elements of float32 x.");
  m.def("layer_norm_backward", &layer_norm_backward_binding, py::arg("dx"),
        py::arg("dweight").none(true), py::arg("dbias").none(true), py::arg("dout"), py::arg("x"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("weight").none(true), py::arg("d"),
        "Layer norm backward: writes dx and (when given) dweight, dbias.");
});

}  // namespace fastlayers::bindings
