// Bindings for the machine probes (FMA peak, STREAM bandwidth): check, release the
// GIL, call. fastlayers.machine caches the results and documents the overrides.
#include <cmath>

#include "bindings/registry.h"
#include "common/peak.h"

namespace fastlayers::bindings {
namespace {

// Python ints are taken as int64 so that a huge value gets the ValueError below
// rather than pybind11's generic TypeError.
int checked_threads(int64_t threads) {
  FL_CHECK(threads >= 1 && threads <= 4096, "threads: expected an integer in [1, 4096], got ", threads);
  return static_cast<int>(threads);
}

double peak_binding(int64_t threads, double seconds) {
  const int n = checked_threads(threads);
  FL_CHECK(std::isfinite(seconds) && seconds > 0.0 && seconds <= 60.0,
           "seconds: expected a duration in (0, 60], got ", seconds);
  py::gil_scoped_release release;
  return measure_peak_gflops(n, seconds);
}

double bandwidth_binding(int64_t threads, int64_t megabytes) {
  const int n = checked_threads(threads);
  FL_CHECK(megabytes >= 1 && megabytes <= 65536, "megabytes: expected an integer in [1, 65536], got ",
           megabytes);
  py::gil_scoped_release release;
  return measure_bandwidth_gbs(n, megabytes);
}

}  // namespace

FL_REGISTER_BINDINGS(peak, [](py::module_& m) {
  m.def("measure_peak_gflops", &peak_binding, py::arg("threads"), py::arg("seconds") = 0.2,
        "FP32 FMA peak in GFLOP/s with `threads` threads on the current SIMD path; "
        "takes about `seconds`, best of the repeats.");
  m.def("measure_bandwidth_gbs", &bandwidth_binding, py::arg("threads"), py::arg("megabytes") = 64,
        "STREAM triad bandwidth in GB/s (12 bytes per element) with `threads` threads "
        "over three float32 arrays of `megabytes` MB each; best of 5 runs.");
});

}  // namespace fastlayers::bindings
