// The `fastlayers._cpu` extension module: runtime information, thread and SIMD
// settings, and every op family's entry points (registered by their own files).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>

#include "bindings/registry.h"
#include "common/cpu_features.h"
#include "common/error.h"
#include "common/threads.h"
#include "cpu/gemm.h"

namespace fastlayers::bindings {

std::vector<BindingEntry>& binding_registry() {
  static std::vector<BindingEntry> entries;
  return entries;
}

namespace {

py::dict runtime_info() {
  const CpuFeatures& f = cpu_features();
  py::dict features;
  features["sse2"] = f.sse2;
  features["avx"] = f.avx;
  features["avx2"] = f.avx2;
  features["fma"] = f.fma;
  features["avx512f"] = f.avx512f;
  features["avx512dq"] = f.avx512dq;
  features["avx512bw"] = f.avx512bw;
  features["avx512vl"] = f.avx512vl;
  py::list supported;
  for (SimdPath p : {SimdPath::kAvx512, SimdPath::kAvx2, SimdPath::kScalar}) {
    if (simd_path_supported(p)) supported.append(simd_path_name(p));
  }
  const GemmBlocking gb = gemm_blocking();
  py::dict gemm;
  gemm["isa"] = gb.isa;
  gemm["MR"] = gb.mr;
  gemm["NR"] = gb.nr;
  gemm["KC"] = gb.kc;
  gemm["MC"] = gb.mc;
  gemm["NC"] = gb.nc;

  py::dict d;
  d["version"] = FL_VERSION;
  d["compiler"] = FL_COMPILER_ID;
  d["cpu_vendor"] = f.vendor;
  d["cpu_brand"] = f.brand;
  d["cpu_features"] = features;
  d["simd_path"] = simd_path_name(simd_path());
  d["simd_reason"] = simd_reason();
  d["simd_paths_supported"] = supported;
  d["num_threads"] = get_num_threads();
  d["gemm_blocking"] = gemm;
  return d;
}

void set_simd(const std::string& name) {
  SimdPath p;
  if (name == "avx512") {
    p = SimdPath::kAvx512;
  } else if (name == "avx2") {
    p = SimdPath::kAvx2;
  } else if (name == "scalar") {
    p = SimdPath::kScalar;
  } else {
    throw ArgumentError(str_cat("path: expected one of 'avx512', 'avx2', 'scalar', got '", name, "'"));
  }
  set_simd_path(p);
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "fastlayers CPU kernels (C++, OpenMP, run-time SIMD dispatch)";
  py::register_exception<ArgumentError>(m, "ArgumentError", PyExc_ValueError);

  // Resolve the SIMD path now, so that a bad FASTLAYERS_SIMD fails the import with a
  // clear message instead of the first kernel call.
  simd_path();

  m.def("runtime_info", &runtime_info, "Build, CPU and SIMD information as a dict.");
  m.def("get_num_threads", &get_num_threads, "Number of threads the kernels use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the number of threads the kernels use.");
  m.def("get_simd_path", [] { return std::string(simd_path_name(simd_path())); });
  m.def("set_simd_path", &set_simd, py::arg("path"),
        "Force the SIMD path ('avx512', 'avx2' or 'scalar'); refused if the CPU lacks it.");

  auto& entries = binding_registry();
  std::sort(entries.begin(), entries.end(),
            [](const BindingEntry& x, const BindingEntry& y) { return std::strcmp(x.family, y.family) < 0; });
  for (const BindingEntry& e : entries) e.fn(m);
}

}  // namespace fastlayers::bindings
