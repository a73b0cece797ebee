// CUDA bindings of dropout: the _cpu functions (csrc/bindings/dropout.cpp) with the same
// arguments, on device arrays, plus a final `stream`. Check, release the GIL, launch.
#include "bindings/cuda/registry.h"
#include "cuda/dropout.h"

namespace fastlayers::cuda_bindings {
namespace {

// out <- dropout(x): forward on x, or backward on dout (the same map).
void apply_binding(py::object out, py::object x, uint64_t seed, double p, uintptr_t stream) {
  const DeviceView xv = device_view(x, "x");
  const DeviceView yv = device_output(out, "out");
  FL_CHECK(yv.size() == xv.size(), "out: expected ", xv.size(), " elements, got ", yv.size());
  FL_CHECK(p >= 0.0 && p <= 1.0, "p: expected a probability in [0, 1], got ", p);
  py::gil_scoped_release release;
  cuda::dropout_apply(yv.f32(), xv.f32(), xv.size(), seed, p, as_stream(stream));
}

// keep (uint8, n) <- 1 where element i is kept.
void mask_binding(py::object keep, uint64_t seed, double p, uintptr_t stream) {
  const DeviceView kv = device_output(keep, "keep", -1, "|u1");
  FL_CHECK(p >= 0.0 && p <= 1.0, "p: expected a probability in [0, 1], got ", p);
  py::gil_scoped_release release;
  cuda::dropout_mask(static_cast<uint8_t*>(kv.data), kv.size(), seed, p, as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(dropout, [](py::module_& m) {
  m.def("dropout_apply", &apply_binding, py::arg("out"), py::arg("x"), py::arg("seed"), py::arg("p"),
        py::arg("stream") = 0,
        "out <- x with element i kept (times 1/(1-p)) or zeroed, decided by (seed, i) alone "
        "(the same elements as _cpu.dropout_apply).");
  m.def("dropout_mask", &mask_binding, py::arg("keep"), py::arg("seed"), py::arg("p"),
        py::arg("stream") = 0, "keep <- 1 where dropout(seed, p) keeps element i, else 0.");
});

}  // namespace fastlayers::cuda_bindings
