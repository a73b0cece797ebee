// Bindings for the in-place optimiser updates: check, release the GIL, call. The Python
// layer (fastlayers.ops.optim) validates hyper-parameters with full messages; this
// re-checks what memory safety depends on (dtypes, contiguity, equal sizes, writeable).
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "bindings/registry.h"
#include "cpu/optim.h"

namespace fastlayers::bindings {
namespace {

// A float32 C-contiguous array of n elements (writeable when `write`), or nullptr for None.
float* flat_or_null(const py::object& o, int64_t n, const char* name, bool write) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error(str_cat(name, ": expected a numpy.ndarray"));
  py::array a = py::reinterpret_borrow<py::array>(o);
  require_float32(a, name);
  require_c_contiguous(a, name);
  if (write) require_writeable(a, name);
  FL_CHECK(static_cast<int64_t>(a.size()) == n, name, ": expected ", n, " elements, got ", a.size());
  // grad may be read-only; the kernel gets a const pointer for it.
  return write ? static_cast<float*>(a.mutable_data()) : const_cast<float*>(static_cast<const float*>(a.data()));
}

int64_t param_size(const py::array& param) {
  require_float32(param, "param");
  return static_cast<int64_t>(param.size());
}

void sgd_binding(py::array param, py::array grad, py::object velocity, double lr, double momentum,
                 double dampening, bool nesterov, double weight_decay, bool first_step) {
  const int64_t n = param_size(param);
  float* p = flat_or_null(param, n, "param", true);
  const float* g = flat_or_null(grad, n, "grad", false);
  float* vel = flat_or_null(velocity, n, "velocity", true);
  const SgdParams sp{lr, momentum, dampening, weight_decay, nesterov, first_step};
  py::gil_scoped_release release;
  sgd_step(p, vel, g, n, sp);
}

void rmsprop_binding(py::array param, py::array grad, py::array square_avg, double lr,
                     double alpha, double eps, double weight_decay, double momentum,
                     py::object momentum_buf, bool centered, py::object grad_avg) {
  const int64_t n = param_size(param);
  float* p = flat_or_null(param, n, "param", true);
  const float* g = flat_or_null(grad, n, "grad", false);
  float* sq = flat_or_null(square_avg, n, "square_avg", true);
  float* mb = flat_or_null(momentum_buf, n, "momentum_buf", true);
  float* ga = flat_or_null(grad_avg, n, "grad_avg", true);
  const RmspropParams rp{lr, alpha, eps, weight_decay, momentum, centered};
  py::gil_scoped_release release;
  rmsprop_step(p, sq, mb, ga, g, n, rp);
}

void adagrad_binding(py::array param, py::array grad, py::array sum_sq, double lr, double eps,
                     double weight_decay, double lr_decay, int64_t step) {
  const int64_t n = param_size(param);
  float* p = flat_or_null(param, n, "param", true);
  const float* g = flat_or_null(grad, n, "grad", false);
  float* s = flat_or_null(sum_sq, n, "sum_sq", true);
  const AdagradParams ap{lr, eps, weight_decay, lr_decay, step};
  py::gil_scoped_release release;
  adagrad_step(p, s, g, n, ap);
}

void adam_binding(py::array param, py::array grad, py::array m, py::array v, int64_t step,
                  double lr, double beta1, double beta2, double eps, double weight_decay,
                  bool decoupled_weight_decay, bool amsgrad, py::object max_v) {
  const int64_t n = param_size(param);
  float* p = flat_or_null(param, n, "param", true);
  const float* g = flat_or_null(grad, n, "grad", false);
  float* mp = flat_or_null(m, n, "m", true);
  float* vp = flat_or_null(v, n, "v", true);
  float* mv = flat_or_null(max_v, n, "max_v", true);
  const AdamParams ap{lr, beta1, beta2, eps, weight_decay, step, decoupled_weight_decay, amsgrad};
  py::gil_scoped_release release;
  adam_step(p, mp, vp, mv, g, n, ap);
}

}  // namespace

FL_REGISTER_BINDINGS(optim, [](py::module_& m) {
  m.def("sgd_step", &sgd_binding, py::arg("param"), py::arg("grad"),
        py::arg("velocity").none(true), py::arg("lr"), py::arg("momentum"), py::arg("dampening"),
        py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_step"),
        "In-place SGD update of param (and velocity) from grad, PyTorch semantics.");
  m.def("rmsprop_step", &rmsprop_binding, py::arg("param"), py::arg("grad"), py::arg("square_avg"),
        py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("momentum"), py::arg("momentum_buf").none(true), py::arg("centered"),
        py::arg("grad_avg").none(true), "In-place RMSprop update, PyTorch semantics.");
  m.def("adagrad_step", &adagrad_binding, py::arg("param"), py::arg("grad"), py::arg("sum_sq"),
        py::arg("lr"), py::arg("eps"), py::arg("weight_decay"), py::arg("lr_decay"),
        py::arg("step"), "In-place Adagrad update, PyTorch semantics.");
  m.def("adam_step", &adam_binding, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("decoupled_weight_decay"), py::arg("amsgrad"),
        py::arg("max_v").none(true), "In-place Adam / AdamW update, PyTorch semantics.");
});

}  // namespace fastlayers::bindings
