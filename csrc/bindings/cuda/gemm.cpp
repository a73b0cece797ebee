// CUDA bindings of GEMM: the same entry point as _cpu.gemm on device arrays (plus a
// batched form and the SGEMM ladder): check, release the GIL, launch on `stream`.
#include <pybind11/pybind11.h>

#include "bindings/cuda/registry.h"
#include "cuda/gemm.h"

namespace fastlayers::cuda_bindings {
namespace {

// op(x) of a (rows, cols) array: (rows, cols), or (cols, rows) when transposed.
struct OpShape {
  int64_t rows, cols;
};
OpShape op_shape(const DeviceView& v, int first, bool trans) {
  return trans ? OpShape{v.dim(first + 1), v.dim(first)} : OpShape{v.dim(first), v.dim(first + 1)};
}

// out <- alpha * op(a) @ op(b) + beta * out, all C-contiguous device arrays.
void gemm_binding(py::object out, py::object a, py::object b, bool trans_a, bool trans_b, float alpha,
                  float beta, uintptr_t stream) {
  const DeviceView av = device_view(a, "a", 2), bv = device_view(b, "b", 2);
  const DeviceView cv = device_output(out, "out", 2);
  const OpShape oa = op_shape(av, 0, trans_a), ob = op_shape(bv, 0, trans_b);
  FL_CHECK(oa.cols == ob.rows, "b: expected ", oa.cols, " rows in op(b) to match op(a)'s ", oa.cols,
           " columns, got ", ob.rows);
  require_shape(cv, {oa.rows, ob.cols}, "out");
  py::gil_scoped_release release;
  cuda::gemm(trans_a, trans_b, oa.rows, ob.cols, oa.cols, alpha, av.f32(), av.dim(1), bv.f32(), bv.dim(1), beta,
             cv.f32(), cv.dim(1), as_stream(stream));
}

// out[i] <- alpha * op(a[i]) @ op(b[i]) + beta * out[i] for 3-D arrays (batch first).
void gemm_batched_binding(py::object out, py::object a, py::object b, bool trans_a, bool trans_b, float alpha,
                          float beta, uintptr_t stream) {
  const DeviceView av = device_view(a, "a", 3), bv = device_view(b, "b", 3);
  const DeviceView cv = device_output(out, "out", 3);
  const int64_t batch = av.dim(0);
  FL_CHECK(bv.dim(0) == batch, "b: expected a batch of ", batch, " to match a, got ", bv.dim(0));
  const OpShape oa = op_shape(av, 1, trans_a), ob = op_shape(bv, 1, trans_b);
  FL_CHECK(oa.cols == ob.rows, "b: expected ", oa.cols, " rows in op(b) to match op(a)'s ", oa.cols,
           " columns, got ", ob.rows);
  require_shape(cv, {batch, oa.rows, ob.cols}, "out");
  py::gil_scoped_release release;
  cuda::gemm_strided_batched(trans_a, trans_b, oa.rows, ob.cols, oa.cols, alpha, av.f32(), av.dim(2),
                             av.dim(1) * av.dim(2), bv.f32(), bv.dim(2), bv.dim(1) * bv.dim(2), beta, cv.f32(),
                             cv.dim(2), cv.dim(1) * cv.dim(2), batch, as_stream(stream));
}

// out <- a @ b with rung `rung` of the SGEMM ladder.
void gemm_rung_binding(int rung, py::object out, py::object a, py::object b, uintptr_t stream) {
  FL_CHECK(rung >= 0 && rung < cuda::gemm_rung_count(), "rung: expected 0 .. ", cuda::gemm_rung_count() - 1,
           ", got ", rung);
  const DeviceView av = device_view(a, "a", 2), bv = device_view(b, "b", 2);
  const DeviceView cv = device_output(out, "out", 2);
  FL_CHECK(av.dim(1) == bv.dim(0), "b: expected ", av.dim(1), " rows to match a's columns, got ", bv.dim(0));
  require_shape(cv, {av.dim(0), bv.dim(1)}, "out");
  py::gil_scoped_release release;
  cuda::gemm_rung(rung, av.dim(0), bv.dim(1), av.dim(1), av.f32(), bv.f32(), cv.f32(), as_stream(stream));
}

py::list gemm_rungs() {
  py::list names;
  for (int r = 0; r < cuda::gemm_rung_count(); ++r) names.append(cuda::gemm_rung_name(r));
  return names;
}

}  // namespace

FL_REGISTER_CUDA_BINDINGS(gemm, [](py::module_& m) {
  m.def("gemm", &gemm_binding, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("alpha"), py::arg("beta"), py::arg("stream") = 0,
        "out <- alpha * op(a) @ op(b) + beta * out (float32 C-contiguous device arrays; out is not read "
        "when beta == 0).");
  m.def("gemm_batched", &gemm_batched_binding, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("alpha"), py::arg("beta"), py::arg("stream") = 0,
        "out[i] <- alpha * op(a[i]) @ op(b[i]) + beta * out[i] for 3-D device arrays (batch first).");
  m.def("gemm_rung", &gemm_rung_binding, py::arg("rung"), py::arg("out"), py::arg("a"), py::arg("b"),
        py::arg("stream") = 0, "out (m, n) <- a (m, k) @ b (k, n) with rung `rung` of the SGEMM ladder.");
  m.def("gemm_rungs", &gemm_rungs, "Names of the SGEMM ladder's rungs, in order (index = rung).");
  m.def("_gemm_force_tile", &cuda::gemm_force_tile, py::arg("mode"),
        "For tests: 0 = tile by size, 1 = the 64x64 tile, 2 = the 128x128 tile. Returns the old mode.");
  m.def("_gemm_force_split", &cuda::gemm_force_split, py::arg("splits"),
        "For tests: split-K. 0 = by size, -1 = never, s >= 2 = about s slices of k. Returns the old setting.");
});

}  // namespace fastlayers::cuda_bindings
