// CUDA bindings of the activation family: the same functions, argument names and order
// as the _cpu ones (csrc/bindings/activation.cpp), on device arrays, plus a final
// `stream`. Check what memory safety depends on, release the GIL, launch.
#include <string>

#include "bindings/cuda/registry.h"
#include "cuda/activation.h"

namespace fastlayers::cuda_bindings {
namespace {

// float32, C-contiguous, exactly n elements (any shape: the ops are element-wise).
DeviceView flat_input(const py::handle& obj, int64_t n, const char* name) {
  DeviceView v = device_view(obj, name);
  FL_CHECK(v.size() == n, name, ": expected ", n, " elements, got ", v.size());
  return v;
}

DeviceView flat_output(const py::handle& obj, int64_t n, const char* name) {
  DeviceView v = device_output(obj, name);
  FL_CHECK(v.size() == n, name, ": expected ", n, " elements, got ", v.size());
  return v;
}

// The packed ReLU mask: C-contiguous uint8 with at least ceil(n / 8) bytes.
uint8_t* mask_pointer(const py::object& obj, int64_t n, bool writeable) {
  FL_CHECK(!obj.is_none(), "mask: this activation needs a mask array");
  const DeviceView v = writeable ? device_output(obj, "mask", -1, "|u1") : device_view(obj, "mask", -1, "|u1");
  FL_CHECK(v.size() >= activation_mask_bytes(n), "mask: expected at least ", activation_mask_bytes(n),
           " bytes, got ", v.size());
  return static_cast<uint8_t*>(v.data);
}

// relu / leaky_relu: backward reads the packed mask (cpu/activation.h's activation_saved,
// which lives in the CPU library this module does not link).
bool uses_mask(Activation kind) { return kind == Activation::kRelu || kind == Activation::kLeakyRelu; }

Activation to_kind(int kind) {
  FL_CHECK(kind >= 0 && kind < kNumActivations, "kind: unknown activation ", kind);
  return static_cast<Activation>(kind);
}

// out <- f(x); mask written for relu / leaky_relu (None: forward only).
void forward_binding(py::object out, py::object mask, py::object x, int kind_id, float alpha,
                     float beta, float threshold, uintptr_t stream) {
  const Activation kind = to_kind(kind_id);
  const DeviceView xv = device_view(x, "x");
  const int64_t n = xv.size();
  const DeviceView yv = flat_output(out, n, "out");
  uint8_t* m = uses_mask(kind) && !mask.is_none()
                   ? mask_pointer(mask, n, true)
                   : nullptr;
  const ActivationParams params{alpha, beta, threshold};
  py::gil_scoped_release release;
  cuda::activation_forward(yv.f32(), m, xv.f32(), n, kind, params, as_stream(stream));
}

// dx <- dout * f'(.), from the mask (relu, leaky_relu) or the saved x / y.
void backward_binding(py::object dx, py::object dout, py::object saved, py::object mask,
                      int kind_id, float alpha, float beta, float threshold, uintptr_t stream) {
  const Activation kind = to_kind(kind_id);
  const DeviceView dyv = device_view(dout, "dout");
  const int64_t n = dyv.size();
  const DeviceView dxv = flat_output(dx, n, "dx");
  const uint8_t* m = nullptr;
  const float* s = nullptr;
  if (uses_mask(kind)) {
    m = mask_pointer(mask, n, false);
  } else {
    FL_CHECK(!saved.is_none(), "saved: this activation needs the saved input or output");
    s = flat_input(saved, n, "saved").f32();
  }
  const ActivationParams params{alpha, beta, threshold};
  py::gil_scoped_release release;
  cuda::activation_backward(dxv.f32(), m, s, dyv.f32(), n, kind, params, as_stream(stream));
}

void add_binding(py::object out, py::object a, py::object b, uintptr_t stream) {
  const DeviceView av = device_view(a, "a");
  const int64_t n = av.size();
  const DeviceView bv = flat_input(b, n, "b");
  const DeviceView yv = flat_output(out, n, "out");
  py::gil_scoped_release release;
  cuda::add_forward(yv.f32(), av.f32(), bv.f32(), n, as_stream(stream));
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(activation, [](py::module_& m) {
  m.def("activation_forward", &forward_binding, py::arg("out"), py::arg("mask"), py::arg("x"),
        py::arg("kind"), py::arg("alpha"), py::arg("beta"), py::arg("threshold"),
        py::arg("stream") = 0,
        "out <- f(x) for activation `kind` (float32 device arrays); mask (uint8, ceil(n/8) "
        "bytes) is written for relu / leaky_relu unless None.");
  m.def("activation_backward", &backward_binding, py::arg("dx"), py::arg("dout"), py::arg("saved"),
        py::arg("mask"), py::arg("kind"), py::arg("alpha"), py::arg("beta"), py::arg("threshold"),
        py::arg("stream") = 0,
        "dx <- dout * f'(.) from the packed mask (relu, leaky_relu) or the saved x / y.");
  m.def("add_forward", &add_binding, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("stream") = 0,
        "out <- a + b (float32 device arrays, same number of elements).");
  m.def(
      "set_eltwise_launch",
      [](int threads, int max_blocks) {
        const cuda::EltwiseLaunch old = cuda::get_eltwise_launch();
        cuda::set_eltwise_launch({threads, max_blocks});
        return py::make_tuple(old.threads, old.max_blocks);
      },
      py::arg("threads"), py::arg("max_blocks"),
      "Threads per block and grid cap of the element-wise kernels (activation, dropout, optim); "
      "returns the previous pair. For tests: small values run partial blocks and several "
      "grid-stride rounds.");
});

}  // namespace fastlayers::cuda_bindings
