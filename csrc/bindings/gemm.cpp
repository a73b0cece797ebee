// Bindings for GEMM: check, release the GIL, call.
#include <pybind11/numpy.h>

#include "bindings/registry.h"
#include "cpu/gemm.h"

namespace fastlayers::bindings {
namespace {

// out <- alpha * op(a) @ op(b) + beta * out. The Python layer (fastlayers.ops.gemm)
// validates and documents the contract; this re-checks what memory safety depends on.
void gemm_binding(py::array out, py::array a, py::array b, bool trans_a, bool trans_b,
                  float alpha, float beta) {
  require_float32(a, "a");
  require_float32(b, "b");
  require_float32(out, "out");
  require_ndim(a, 2, "a");
  require_ndim(b, 2, "b");
  require_ndim(out, 2, "out");
  require_writeable(out, "out");
  require_c_contiguous(out, "out");

  // op(a) is (m, k), op(b) is (k, n): a transpose swaps shape and strides.
  const int64_t m = trans_a ? a.shape(1) : a.shape(0);
  const int64_t k = trans_a ? a.shape(0) : a.shape(1);
  const int64_t kb = trans_b ? b.shape(1) : b.shape(0);
  const int64_t n = trans_b ? b.shape(0) : b.shape(1);
  FL_CHECK(k == kb, "b: expected ", k, " rows in op(b) to match op(a)'s ", k, " columns, got ", kb);
  FL_CHECK(out.shape(0) == m && out.shape(1) == n, "out: expected shape (", m, ", ", n,
           "), got (", out.shape(0), ", ", out.shape(1), ")");

  const int64_t a_rs = element_stride(a, 0, "a"), a_cs = element_stride(a, 1, "a");
  const int64_t b_rs = element_stride(b, 0, "b"), b_cs = element_stride(b, 1, "b");
  const ConstMatrixView av{static_cast<const float*>(a.data()), trans_a ? a_cs : a_rs, trans_a ? a_rs : a_cs};
  const ConstMatrixView bv{static_cast<const float*>(b.data()), trans_b ? b_cs : b_rs, trans_b ? b_rs : b_cs};
  const MatrixView cv{static_cast<float*>(out.mutable_data()), n, 1};

  py::gil_scoped_release release;
  gemm(cv, av, bv, GemmShape{m, n, k}, alpha, beta);
}

}  // namespace

FL_REGISTER_BINDINGS(gemm, [](py::module_& m) {
  m.def("gemm", &gemm_binding, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("alpha"), py::arg("beta"),
        "out <- alpha * op(a) @ op(b) + beta * out (float32; out C-contiguous).");
});

}  // namespace fastlayers::bindings
