// Pooling entry points: re-check what memory safety depends on, pick the SIMD build of
// the plane loops (pool_impl.h) and run it on get_num_threads() threads.
#include "cpu/pool.h"

#include <cstdint>
#include <limits>

#include "common/dispatch.h"
#include "common/error.h"
#include "common/threads.h"

namespace fastlayers {
namespace {

const pool_detail::PoolKernels& kernels() { return FL_SIMD_SELECT(pool_detail::pool_kernels); }

// The geometry the loops rely on: windows inside the padded input, every window holding
// at least one input element (p <= k / 2), output sizes by the floor formula, plane
// indices that fit the int32 argmax.
void check_shape(const Pool2dShape& s) {
  FL_CHECK(s.n >= 0 && s.c >= 0, "x: negative batch or channel count (", s.n, ", ", s.c, ")");
  FL_CHECK(s.h >= 1 && s.w >= 1, "x: spatial size must be at least 1x1, got ", s.h, "x", s.w);
  FL_CHECK(s.h * s.w <= std::numeric_limits<int32_t>::max(), "x: plane of ", s.h, "x", s.w,
           " elements is too large for int32 argmax indices");
  FL_CHECK(s.kh >= 1 && s.kw >= 1, "kernel_size: expected >= 1, got (", s.kh, ", ", s.kw, ")");
  FL_CHECK(s.sh >= 1 && s.sw >= 1, "stride: expected >= 1, got (", s.sh, ", ", s.sw, ")");
  FL_CHECK(s.ph >= 0 && s.pw >= 0 && 2 * s.ph <= s.kh && 2 * s.pw <= s.kw,
           "padding: expected 0 <= padding <= kernel_size / 2, got (", s.ph, ", ", s.pw,
           ") for kernel_size (", s.kh, ", ", s.kw, ")");
  FL_CHECK(s.h + 2 * s.ph >= s.kh && s.w + 2 * s.pw >= s.kw, "kernel_size: (", s.kh, ", ", s.kw,
           ") is larger than the padded input (", s.h + 2 * s.ph, ", ", s.w + 2 * s.pw, ")");
  const int64_t oh = (s.h + 2 * s.ph - s.kh) / s.sh + 1, ow = (s.w + 2 * s.pw - s.kw) / s.sw + 1;
  FL_CHECK(s.oh == oh && s.ow == ow, "out: expected output size (", oh, ", ", ow, "), got (", s.oh,
           ", ", s.ow, ")");
}

}  // namespace

void max_pool2d_forward(float* out, int32_t* argmax, const float* x, const Pool2dShape& s) {
  check_shape(s);
  kernels().max_forward(out, argmax, x, s, get_num_threads());
}

void max_pool2d_backward(float* dx, const float* dout, const int32_t* argmax, const Pool2dShape& s) {
  check_shape(s);
  const int64_t bad = kernels().max_backward(dx, dout, argmax, s, get_num_threads());
  FL_CHECK(bad == 0, "cache: ", bad, " argmax entries lie outside the input plane of ", s.h, "x",
           s.w, " (the cache was modified or belongs to another input)");
}

void avg_pool2d_forward(float* out, const float* x, const Pool2dShape& s) {
  check_shape(s);
  kernels().avg_forward(out, x, s, get_num_threads());
}

void avg_pool2d_backward(float* dx, const float* dout, const Pool2dShape& s) {
  check_shape(s);
  kernels().avg_backward(dx, dout, s, get_num_threads());
}

void global_avg_pool2d_forward(float* out, const float* x, int64_t planes, int64_t hw) {
  FL_CHECK(planes >= 0 && hw >= 1, "x: expected at least one element per plane, got ", hw);
  kernels().global_avg_forward(out, x, planes, hw, get_num_threads());
}

void global_avg_pool2d_backward(float* dx, const float* dout, int64_t planes, int64_t hw) {
  FL_CHECK(planes >= 0 && hw >= 1, "x: expected at least one element per plane, got ", hw);
  kernels().global_avg_backward(dx, dout, planes, hw, get_num_threads());
}

}  // namespace fastlayers
