// CUDA bindings of the in-place optimiser updates: the _cpu functions
// (csrc/bindings/optim.cpp) with the same arguments, on device arrays, plus a final
// `stream`. fastlayers.ops.optim validates hyper-parameters and aliasing; this re-checks
// what memory safety depends on (dtypes, contiguity, equal sizes, writeable).
#include "bindings/cuda/registry.h"
#include "cuda/optim.h"

namespace fastlayers::cuda_bindings {
namespace {

// A float32 C-contiguous device array of n elements (writeable when `write`), or nullptr
// for None.
float* flat_or_null(const py::object& o, int64_t n, const char* name, bool write) {
  if (o.is_none()) return nullptr;
  const DeviceView v = write ? device_output(o, name) : device_view(o, name);
  FL_CHECK(v.size() == n, name, ": expected ", n, " elements, got ", v.size());
  return v.f32();
}

// A required array (None is a TypeError naming it, from device_view).
float* flat(const py::object& o, int64_t n, const char* name, bool write) {
  const DeviceView v = write ? device_output(o, name) : device_view(o, name);
  FL_CHECK(v.size() == n, name, ": expected ", n, " elements, got ", v.size());
  return v.f32();
}

void sgd_binding(py::object param, py::object grad, py::object velocity, double lr, double momentum,
                 double dampening, bool nesterov, double weight_decay, bool first_step, uintptr_t stream) {
  const int64_t n = device_view(param, "param").size();
  float* p = flat(param, n, "param", true);
  const float* g = flat(grad, n, "grad", false);
  float* vel = flat_or_null(velocity, n, "velocity", true);
  const SgdParams sp{lr, momentum, dampening, weight_decay, nesterov, first_step};
  py::gil_scoped_release release;
  cuda::sgd_step(p, vel, g, n, sp, as_stream(stream));
}

void rmsprop_binding(py::object param, py::object grad, py::object square_avg, double lr, double alpha,
                     double eps, double weight_decay, double momentum, py::object momentum_buf,
                     bool centered, py::object grad_avg, uintptr_t stream) {
  const int64_t n = device_view(param, "param").size();
  float* p = flat(param, n, "param", true);
  const float* g = flat(grad, n, "grad", false);
  float* sq = flat(square_avg, n, "square_avg", true);
  float* mb = flat_or_null(momentum_buf, n, "momentum_buf", true);
  float* ga = flat_or_null(grad_avg, n, "grad_avg", true);
  const RmspropParams rp{lr, alpha, eps, weight_decay, momentum, centered};
  py::gil_scoped_release release;
  cuda::rmsprop_step(p, sq, mb, ga, g, n, rp, as_stream(stream));
}

void adagrad_binding(py::object param, py::object grad, py::object sum_sq, double lr, double eps,
                     double weight_decay, double lr_decay, int64_t step, uintptr_t stream) {
  const int64_t n = device_view(param, "param").size();
  float* p = flat(param, n, "param", true);
  const float* g = flat(grad, n, "grad", false);
  float* s = flat(sum_sq, n, "sum_sq", true);
  const AdagradParams ap{lr, eps, weight_decay, lr_decay, step};
  py::gil_scoped_release release;
  cuda::adagrad_step(p, s, g, n, ap, as_stream(stream));
}

void adam_binding(py::object param, py::object grad, py::object m, py::object v, int64_t step, double lr,
                  double beta1, double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
                  bool amsgrad, py::object max_v, uintptr_t stream) {
  const int64_t n = device_view(param, "param").size();
  float* p = flat(param, n, "param", true);
  const float* g = flat(grad, n, "grad", false);
  float* mp = flat(m, n, "m", true);
  float* vp = flat(v, n, "v", true);
  float* mv = flat_or_null(max_v, n, "max_v", true);
  const AdamParams ap{lr, beta1, beta2, eps, weight_decay, step, decoupled_weight_decay, amsgrad};
  py::gil_scoped_release release;
  cuda::adam_step(p, mp, vp, mv, g, n, ap, as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(optim, [](py::module_& m) {
  m.def("sgd_step", &sgd_binding, py::arg("param"), py::arg("grad"), py::arg("velocity").none(true),
        py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("nesterov"),
        py::arg("weight_decay"), py::arg("first_step"), py::arg("stream") = 0,
        "In-place SGD update of param (and velocity) from grad on device arrays, PyTorch semantics.");
  m.def("rmsprop_step", &rmsprop_binding, py::arg("param"), py::arg("grad"), py::arg("square_avg"),
        py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"),
        py::arg("momentum_buf").none(true), py::arg("centered"), py::arg("grad_avg").none(true),
        py::arg("stream") = 0, "In-place RMSprop update on device arrays, PyTorch semantics.");
  m.def("adagrad_step", &adagrad_binding, py::arg("param"), py::arg("grad"), py::arg("sum_sq"),
        py::arg("lr"), py::arg("eps"), py::arg("weight_decay"), py::arg("lr_decay"), py::arg("step"),
        py::arg("stream") = 0, "In-place Adagrad update on device arrays, PyTorch semantics.");
  m.def("adam_step", &adam_binding, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("decoupled_weight_decay"), py::arg("amsgrad"),
        py::arg("max_v").none(true), py::arg("stream") = 0,
        "In-place Adam / AdamW update on device arrays, PyTorch semantics.");
});

}  // namespace fastlayers::cuda_bindings
