// Thread count used by every OpenMP kernel.
//
// The count is a process-wide setting rather than OpenMP's per-thread ICV, so that a
// kernel called from any Python thread uses what fastlayers.set_num_threads() chose.
// Every parallel region passes it explicitly: `#pragma omp parallel num_threads(n)`.
#pragma once

namespace fastlayers {

// Number of threads kernels use; defaults to OpenMP's default (OMP_NUM_THREADS or the
// number of cores).
int get_num_threads();
// Sets it; n must be >= 1.
void set_num_threads(int n);

}  // namespace fastlayers
