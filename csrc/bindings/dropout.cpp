// Bindings for dropout: check what memory safety depends on, release the GIL, call.
// fastlayers.ops.dropout validates p and the seed and allocates the outputs.
#include <pybind11/numpy.h>

#include "bindings/registry.h"
#include "cpu/dropout.h"

namespace fastlayers::bindings {
namespace {

// out <- dropout(x): forward on x, or backward on dout (the same map).
void apply_binding(py::array out, py::array x, uint64_t seed, double p) {
  require_float32(x, "x");
  require_float32(out, "out");
  require_c_contiguous(x, "x");
  require_c_contiguous(out, "out");
  require_writeable(out, "out");
  const auto n = static_cast<int64_t>(x.size());
  FL_CHECK(static_cast<int64_t>(out.size()) == n, "out: expected ", n, " elements, got ", out.size());
  FL_CHECK(p >= 0.0 && p <= 1.0, "p: expected a probability in [0, 1], got ", p);
  const auto* xp = static_cast<const float*>(x.data());
  auto* yp = static_cast<float*>(out.mutable_data());
  py::gil_scoped_release release;
  dropout_apply(yp, xp, n, seed, p);
}

// keep (uint8, n) <- 1 where element i is kept.
void mask_binding(py::array keep, uint64_t seed, double p) {
  if (!keep.dtype().equal(py::dtype::of<uint8_t>())) throw py::type_error("keep: expected dtype uint8");
  require_c_contiguous(keep, "keep");
  require_writeable(keep, "keep");
  FL_CHECK(p >= 0.0 && p <= 1.0, "p: expected a probability in [0, 1], got ", p);
  const auto n = static_cast<int64_t>(keep.size());
  auto* kp = static_cast<uint8_t*>(keep.mutable_data());
  py::gil_scoped_release release;
  dropout_mask(kp, n, seed, p);
}

}  // namespace

FL_REGISTER_BINDINGS(dropout, [](py::module_& m) {
  m.def("dropout_apply", &apply_binding, py::arg("out"), py::arg("x"), py::arg("seed"), py::arg("p"),
        "out <- x with element i kept (times 1/(1-p)) or zeroed, decided by (seed, i) alone.");
  m.def("dropout_mask", &mask_binding, py::arg("keep"), py::arg("seed"), py::arg("p"),
        "keep <- 1 where dropout(seed, p) keeps element i, else 0.");
});

}  // namespace fastlayers::bindings
