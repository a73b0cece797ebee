// Thread count used by every OpenMP kernel.
#include "common/threads.h"

#include <omp.h>

#include <atomic>

#include "common/error.h"

namespace fastlayers {
namespace {
std::atomic<int>& threads_setting() {
  static std::atomic<int> n{omp_get_max_threads() > 0 ? omp_get_max_threads() : 1};
  return n;
}
}  // namespace

int get_num_threads() { return threads_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  FL_CHECK(n >= 1, "num_threads: expected an integer >= 1, got ", n);
  threads_setting().store(n, std::memory_order_relaxed);
}

}  // namespace fastlayers
