// Bindings for the loss family (softmax, log_softmax, softmax cross-entropy, BCE with
// logits, MSE): check what memory safety depends on, release the GIL, call. The
// Python layer (fastlayers.ops.loss) validates and documents the contract.
#include <pybind11/numpy.h>

#include <cstdint>

#include "bindings/registry.h"
#include "cpu/loss.h"

namespace fastlayers::bindings {
namespace {

void require_same_shape(const py::array& a, const py::array& b, const char* name,
                        const char* b_name) {
  bool same = a.ndim() == b.ndim();
  for (int i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  FL_CHECK(same, name, ": expected the shape of ", b_name);
}

// A float32 C-contiguous input.
void require_input(const py::array& a, const char* name) {
  require_float32(a, name);
  require_c_contiguous(a, name);
}

// A float32 C-contiguous writeable output of the same shape as `like`.
void require_output_like(const py::array& out, const py::array& like, const char* name,
                         const char* like_name) {
  require_input(out, name);
  require_writeable(out, name);
  require_same_shape(out, like, name, like_name);
}

SoftmaxShape softmax_shape(const py::array& x, int64_t axis) {
  const int64_t nd = x.ndim();
  FL_CHECK(nd >= 1, "x: expected at least 1 dimension");
  FL_CHECK(axis >= -nd && axis < nd, "axis: ", axis, " is out of range for a ", nd, "-D array");
  if (axis < 0) axis += nd;
  SoftmaxShape s{1, x.shape(axis), 1};
  for (int64_t i = 0; i < axis; ++i) s.outer *= x.shape(i);
  for (int64_t i = axis + 1; i < nd; ++i) s.inner *= x.shape(i);
  return s;
}

void softmax_forward_binding(py::array y, py::array x, int64_t axis, bool log_y) {
  require_input(x, "x");
  require_output_like(y, x, "out", "x");
  const SoftmaxShape s = softmax_shape(x, axis);
  py::gil_scoped_release release;
  softmax_forward(static_cast<float*>(y.mutable_data()), static_cast<const float*>(x.data()), s, log_y);
}

void softmax_backward_binding(py::array dx, py::array dy, py::array y, int64_t axis, bool log_y) {
  require_input(y, "y");
  require_input(dy, "dout");
  require_same_shape(dy, y, "dout", "the forward output");
  require_output_like(dx, y, "dx", "the forward output");
  const SoftmaxShape s = softmax_shape(y, axis);
  py::gil_scoped_release release;
  softmax_backward(static_cast<float*>(dx.mutable_data()), static_cast<const float*>(dy.data()),
                   static_cast<const float*>(y.data()), s, log_y);
}

// logits (n, c) float32, labels (n,) int64, both C-contiguous.
CrossEntropyShape cross_entropy_shape(const py::array& logits, const py::array& labels) {
  require_input(logits, "logits");
  require_ndim(logits, 2, "logits");
  if (!labels.dtype().equal(py::dtype::of<int64_t>())) {
    throw py::type_error(str_cat("labels: expected dtype int64, got ", std::string(py::str(labels.dtype()))));
  }
  require_ndim(labels, 1, "labels");
  require_c_contiguous(labels, "labels");
  const CrossEntropyShape s{logits.shape(0), logits.shape(1)};
  FL_CHECK(labels.shape(0) == s.n, "labels: expected shape (", s.n, ",), got (", labels.shape(0), ",)");
  FL_CHECK(s.c >= 1, "logits: expected at least one class, got shape (", s.n, ", ", s.c, ")");
  return s;
}

void require_stats(const py::array& stats, int64_t n, bool writeable) {
  require_input(stats, "stats");
  if (writeable) require_writeable(stats, "stats");
  require_ndim(stats, 2, "stats");
  FL_CHECK(stats.shape(0) == n && stats.shape(1) == 2, "stats: expected shape (", n, ", 2)");
}

double cross_entropy_forward_binding(py::array stats, py::array logits, py::array labels) {
  const CrossEntropyShape s = cross_entropy_shape(logits, labels);
  require_stats(stats, s.n, true);
  py::gil_scoped_release release;
  return softmax_cross_entropy_forward(static_cast<float*>(stats.mutable_data()),
                                       static_cast<const float*>(logits.data()),
                                       static_cast<const int64_t*>(labels.data()), s);
}

void cross_entropy_backward_binding(py::array dlogits, py::array stats, py::array logits,
                                    py::array labels, float scale) {
  const CrossEntropyShape s = cross_entropy_shape(logits, labels);
  require_stats(stats, s.n, false);
  require_output_like(dlogits, logits, "dlogits", "logits");
  py::gil_scoped_release release;
  softmax_cross_entropy_backward(static_cast<float*>(dlogits.mutable_data()),
                                 static_cast<const float*>(stats.data()),
                                 static_cast<const float*>(logits.data()),
                                 static_cast<const int64_t*>(labels.data()), scale, s);
}

// Two same-shape float32 C-contiguous inputs; returns their element count.
int64_t pair_size(const py::array& a, const py::array& b, const char* a_name, const char* b_name) {
  require_input(a, a_name);
  require_input(b, b_name);
  require_same_shape(b, a, b_name, a_name);
  return static_cast<int64_t>(a.size());
}

// An optional gradient output (None to skip it).
float* optional_output(const py::object& out, const py::array& like, const char* name,
                       const char* like_name) {
  if (out.is_none()) return nullptr;
  py::array arr = py::reinterpret_borrow<py::array>(out);
  require_output_like(arr, like, name, like_name);
  return static_cast<float*>(arr.mutable_data());
}

double bce_forward_binding(py::array x, py::array t) {
  const int64_t n = pair_size(x, t, "logits", "targets");
  py::gil_scoped_release release;
  return bce_with_logits_forward(static_cast<const float*>(x.data()), static_cast<const float*>(t.data()), n);
}

void bce_backward_binding(py::object dx, py::object dt, py::array x, py::array t, float scale) {
  const int64_t n = pair_size(x, t, "logits", "targets");
  float* dxp = optional_output(dx, x, "dlogits", "logits");
  float* dtp = optional_output(dt, x, "dtargets", "logits");
  py::gil_scoped_release release;
  bce_with_logits_backward(dxp, dtp, static_cast<const float*>(x.data()),
                           static_cast<const float*>(t.data()), scale, n);
}

double mse_forward_binding(py::array p, py::array t) {
  const int64_t n = pair_size(p, t, "pred", "target");
  py::gil_scoped_release release;
  return mse_forward(static_cast<const float*>(p.data()), static_cast<const float*>(t.data()), n);
}

void mse_backward_binding(py::object dp, py::object dt, py::array p, py::array t, float scale) {
  const int64_t n = pair_size(p, t, "pred", "target");
  float* dpp = optional_output(dp, p, "dpred", "pred");
  float* dtp = optional_output(dt, p, "dtarget", "pred");
  py::gil_scoped_release release;
  mse_backward(dpp, dtp, static_cast<const float*>(p.data()), static_cast<const float*>(t.data()),
               scale, n);
}

}  // namespace

FL_REGISTER_BINDINGS(loss, [](py::module_& m) {
  m.def("softmax_forward", &softmax_forward_binding, py::arg("out"), py::arg("x"), py::arg("axis"),
        py::arg("log"), "out <- softmax(x) (or log_softmax when log) along axis; float32, C-contiguous.");
  m.def("softmax_backward", &softmax_backward_binding, py::arg("dx"), py::arg("dout"), py::arg("y"),
        py::arg("axis"), py::arg("log"), "dx <- gradient of (log_)softmax from dout and its output y.");
  m.def("softmax_cross_entropy_forward", &cross_entropy_forward_binding, py::arg("stats"),
        py::arg("logits"), py::arg("labels"),
        "Sum over rows of -log_softmax(logits)[i, labels[i]]; stats (n, 2) <- {row max, log-sum-exp - max}.");
  m.def("softmax_cross_entropy_backward", &cross_entropy_backward_binding, py::arg("dlogits"),
        py::arg("stats"), py::arg("logits"), py::arg("labels"), py::arg("scale"),
        "dlogits <- scale * (softmax(logits) - onehot(labels)).");
  m.def("bce_with_logits_forward", &bce_forward_binding, py::arg("logits"), py::arg("targets"),
        "Sum of max(x, 0) - x t + log(1 + exp(-|x|)).");
  m.def("bce_with_logits_backward", &bce_backward_binding, py::arg("dlogits"), py::arg("dtargets"),
        py::arg("logits"), py::arg("targets"), py::arg("scale"),
        "dlogits <- scale (sigmoid(x) - t), dtargets <- -scale x (either may be None).");
  m.def("mse_forward", &mse_forward_binding, py::arg("pred"), py::arg("target"), "Sum of (pred - target)^2.");
  m.def("mse_backward", &mse_backward_binding, py::arg("dpred"), py::arg("dtarget"), py::arg("pred"),
        py::arg("target"), py::arg("scale"), "dpred <- 2 scale (p - t), dtarget <- -dpred (either may be None).");
});

}  // namespace fastlayers::bindings
