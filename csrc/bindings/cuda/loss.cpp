// CUDA bindings of the loss family: the same names, arguments and meaning as the _cpu
// bindings (bindings/loss.cpp), arrays as device arrays, plus a final `stream`. The loss
// forwards return the sum as a Python float, as on the CPU (which synchronises `stream`);
// their "_to" forms write scale * the sum into a 0-d device array and do not wait.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/cuda/registry.h"
#include "cuda/loss.h"

namespace fastlayers::cuda_bindings {
namespace {

SoftmaxShape softmax_shape(const DeviceView& x, int64_t axis) {
  const int64_t nd = x.ndim();
  FL_CHECK(nd >= 1, "x: expected at least 1 dimension");
  FL_CHECK(axis >= -nd && axis < nd, "axis: ", axis, " is out of range for a ", nd, "-D array");
  if (axis < 0) axis += nd;
  SoftmaxShape s{1, x.dim(static_cast<int>(axis)), 1};
  for (int64_t i = 0; i < axis; ++i) s.outer *= x.dim(static_cast<int>(i));
  for (int64_t i = axis + 1; i < nd; ++i) s.inner *= x.dim(static_cast<int>(i));
  return s;
}

void softmax_forward_binding(py::object out, py::object x, int64_t axis, bool log_y, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x");
  const DeviceView yv = device_output(out, "out");
  require_shape(yv, xv.shape, "out");
  const SoftmaxShape s = softmax_shape(xv, axis);
  py::gil_scoped_release release;
  fastlayers::cuda::softmax_forward(yv.f32(), xv.f32(), s, log_y, as_stream(stream));
}

void softmax_backward_binding(py::object dx, py::object dout, py::object y, int64_t axis, bool log_y,
                              uintptr_t stream) {
  const DeviceView yv = device_view(y, "y");
  const DeviceView gv = device_view(dout, "dout");
  require_shape(gv, yv.shape, "dout");
  const DeviceView dv = device_output(dx, "dx");
  require_shape(dv, yv.shape, "dx");
  const SoftmaxShape s = softmax_shape(yv, axis);
  py::gil_scoped_release release;
  fastlayers::cuda::softmax_backward(dv.f32(), gv.f32(), yv.f32(), s, log_y, as_stream(stream));
}

// logits (n, c) float32 and labels (n,) int64 device arrays.
CrossEntropyShape cross_entropy_shape(const DeviceView& logits, const DeviceView& labels) {
  const CrossEntropyShape s{logits.dim(0), logits.dim(1)};
  FL_CHECK(labels.dim(0) == s.n, "labels: expected shape (", s.n, ",), got (", labels.dim(0), ",)");
  FL_CHECK(s.c >= 1, "logits: expected at least one class, got shape (", s.n, ", ", s.c, ")");
  return s;
}

// The checked arguments of a cross-entropy forward: stats (n, 2) out, logits (n, c),
// labels (n,) int64.
struct CrossEntropyForward {
  DeviceView stats, logits, labels;
  CrossEntropyShape shape;
  const int64_t* label_data() const { return static_cast<const int64_t*>(labels.data); }
};
CrossEntropyForward cross_entropy_forward_args(const py::object& stats, const py::object& logits,
                                               const py::object& labels) {
  CrossEntropyForward f{{}, device_view(logits, "logits", 2), device_view(labels, "labels", 1, "<i8"), {}};
  f.shape = cross_entropy_shape(f.logits, f.labels);
  f.stats = device_output(stats, "stats", 2);
  require_shape(f.stats, {f.shape.n, 2}, "stats");
  return f;
}

double cross_entropy_forward_binding(py::object stats, py::object logits, py::object labels, uintptr_t stream) {
  const CrossEntropyForward f = cross_entropy_forward_args(stats, logits, labels);
  py::gil_scoped_release release;
  return fastlayers::cuda::softmax_cross_entropy_forward(f.stats.f32(), f.logits.f32(), f.label_data(), f.shape,
                                                         as_stream(stream));
}

// The forwards' "_to" forms: loss, a 0-d float32 device array, <- scale * the sum; they
// return without waiting for the GPU.
float* loss_output(const py::object& loss) { return device_output(loss, "loss", 0).f32(); }

void cross_entropy_forward_to_binding(py::object loss, py::object stats, py::object logits, py::object labels,
                                      double scale, uintptr_t stream) {
  float* out = loss_output(loss);
  const CrossEntropyForward f = cross_entropy_forward_args(stats, logits, labels);
  py::gil_scoped_release release;
  fastlayers::cuda::softmax_cross_entropy_forward_to(out, f.stats.f32(), f.logits.f32(), f.label_data(), scale,
                                                     f.shape, as_stream(stream));
}

void cross_entropy_backward_binding(py::object dlogits, py::object stats, py::object logits, py::object labels,
                                    float scale, uintptr_t stream) {
  const DeviceView lv = device_view(logits, "logits", 2);
  const DeviceView yv = device_view(labels, "labels", 1, "<i8");
  const CrossEntropyShape s = cross_entropy_shape(lv, yv);
  const DeviceView sv = device_view(stats, "stats", 2);
  require_shape(sv, {s.n, 2}, "stats");
  const DeviceView dv = device_output(dlogits, "dlogits", 2);
  require_shape(dv, lv.shape, "dlogits");
  py::gil_scoped_release release;
  fastlayers::cuda::softmax_cross_entropy_backward(dv.f32(), sv.f32(), lv.f32(),
                                                   static_cast<const int64_t*>(yv.data), scale, s,
                                                   as_stream(stream));
}

// Two float32 device arrays of one shape.
struct Pair {
  DeviceView a, b;
};
Pair pair(const py::object& a, const py::object& b, const char* a_name, const char* b_name) {
  Pair p{device_view(a, a_name), device_view(b, b_name)};
  require_shape(p.b, p.a.shape, b_name);
  return p;
}

// An optional gradient output of the shape of `like` (None: nullptr, not written).
float* optional_output(const py::object& out, const DeviceView& like, const char* name) {
  if (out.is_none()) return nullptr;
  const DeviceView v = device_output(out, name);
  require_shape(v, like.shape, name);
  return v.f32();
}

double bce_forward_binding(py::object x, py::object t, uintptr_t stream) {
  const Pair p = pair(x, t, "logits", "targets");
  py::gil_scoped_release release;
  return fastlayers::cuda::bce_with_logits_forward(p.a.f32(), p.b.f32(), p.a.size(), as_stream(stream));
}

void bce_forward_to_binding(py::object loss, py::object x, py::object t, double scale, uintptr_t stream) {
  float* out = loss_output(loss);
  const Pair p = pair(x, t, "logits", "targets");
  py::gil_scoped_release release;
  fastlayers::cuda::bce_with_logits_forward_to(out, p.a.f32(), p.b.f32(), p.a.size(), scale, as_stream(stream));
}

void bce_backward_binding(py::object dx, py::object dt, py::object x, py::object t, float scale,
                          uintptr_t stream) {
  const Pair p = pair(x, t, "logits", "targets");
  float* dxp = optional_output(dx, p.a, "dlogits");
  float* dtp = optional_output(dt, p.a, "dtargets");
  py::gil_scoped_release release;
  fastlayers::cuda::bce_with_logits_backward(dxp, dtp, p.a.f32(), p.b.f32(), scale, p.a.size(), as_stream(stream));
}

double mse_forward_binding(py::object pred, py::object target, uintptr_t stream) {
  const Pair p = pair(pred, target, "pred", "target");
  py::gil_scoped_release release;
  return fastlayers::cuda::mse_forward(p.a.f32(), p.b.f32(), p.a.size(), as_stream(stream));
}

void mse_forward_to_binding(py::object loss, py::object pred, py::object target, double scale, uintptr_t stream) {
  float* out = loss_output(loss);
  const Pair p = pair(pred, target, "pred", "target");
  py::gil_scoped_release release;
  fastlayers::cuda::mse_forward_to(out, p.a.f32(), p.b.f32(), p.a.size(), scale, as_stream(stream));
}

void mse_backward_binding(py::object dp, py::object dt, py::object pred, py::object target, float scale,
                          uintptr_t stream) {
  const Pair p = pair(pred, target, "pred", "target");
  float* dpp = optional_output(dp, p.a, "dpred");
  float* dtp = optional_output(dt, p.a, "dtarget");
  py::gil_scoped_release release;
  fastlayers::cuda::mse_backward(dpp, dtp, p.a.f32(), p.b.f32(), scale, p.a.size(), as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(loss, [](py::module_& m) {
  m.def("softmax_forward", &softmax_forward_binding, py::arg("out"), py::arg("x"), py::arg("axis"), py::arg("log"),
        py::arg("stream") = 0, "out <- softmax(x) (or log_softmax when log) along axis; float32 device arrays.");
  m.def("softmax_backward", &softmax_backward_binding, py::arg("dx"), py::arg("dout"), py::arg("y"),
        py::arg("axis"), py::arg("log"), py::arg("stream") = 0,
        "dx <- gradient of (log_)softmax from dout and its output y.");
  m.def("softmax_cross_entropy_forward", &cross_entropy_forward_binding, py::arg("stats"), py::arg("logits"),
        py::arg("labels"), py::arg("stream") = 0,
        "Sum over rows of -log_softmax(logits)[i, labels[i]] (synchronises the stream); "
        "stats (n, 2) <- {row max, log-sum-exp - max}.");
  m.def("softmax_cross_entropy_forward_to", &cross_entropy_forward_to_binding, py::arg("loss"), py::arg("stats"),
        py::arg("logits"), py::arg("labels"), py::arg("scale"), py::arg("stream") = 0,
        "loss (0-d) <- scale * the sum above, without waiting for the GPU; the labels are not checked "
        "(one outside [0, C) makes the loss NaN).");
  m.def("softmax_cross_entropy_backward", &cross_entropy_backward_binding, py::arg("dlogits"), py::arg("stats"),
        py::arg("logits"), py::arg("labels"), py::arg("scale"), py::arg("stream") = 0,
        "dlogits <- scale * (softmax(logits) - onehot(labels)).");
  m.def("bce_with_logits_forward", &bce_forward_binding, py::arg("logits"), py::arg("targets"),
        py::arg("stream") = 0, "Sum of max(x, 0) - x t + log(1 + exp(-|x|)) (synchronises the stream).");
  m.def("bce_with_logits_forward_to", &bce_forward_to_binding, py::arg("loss"), py::arg("logits"),
        py::arg("targets"), py::arg("scale"), py::arg("stream") = 0,
        "loss (0-d) <- scale * the sum above, without waiting for the GPU.");
  m.def("bce_with_logits_backward", &bce_backward_binding, py::arg("dlogits").none(true),
        py::arg("dtargets").none(true), py::arg("logits"), py::arg("targets"), py::arg("scale"),
        py::arg("stream") = 0, "dlogits <- scale (sigmoid(x) - t), dtargets <- -scale x (either may be None).");
  m.def("mse_forward", &mse_forward_binding, py::arg("pred"), py::arg("target"), py::arg("stream") = 0,
        "Sum of (pred - target)^2 (synchronises the stream).");
  m.def("mse_forward_to", &mse_forward_to_binding, py::arg("loss"), py::arg("pred"), py::arg("target"),
        py::arg("scale"), py::arg("stream") = 0, "loss (0-d) <- scale * the sum above, without waiting for the GPU.");
  m.def("mse_backward", &mse_backward_binding, py::arg("dpred").none(true), py::arg("dtarget").none(true),
        py::arg("pred"), py::arg("target"), py::arg("scale"), py::arg("stream") = 0,
        "dpred <- 2 scale (p - t), dtarget <- -dpred (either may be None).");
});

}  // namespace fastlayers::cuda_bindings
