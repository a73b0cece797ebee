// Batch norm and layer norm on the CPU (contract and accuracy scheme in norm.h): argument
// checks, then the loops of the SIMD path in use (norm_impl.h, built per ISA; chosen by
// FL_SIMD_SELECT).
#include "cpu/norm.h"

#include "common/dispatch.h"
#include "common/error.h"
#include "cpu/norm_kernels.h"

namespace fastlayers {
namespace {

void check_shape(const BatchNormShape& sh) {
  FL_CHECK(sh.n >= 1 && sh.c >= 1 && sh.s >= 1, "batch_norm: expected positive sizes, got N=",
           sh.n, " C=", sh.c, " S=", sh.s);
}

void check_shape(const LayerNormShape& sh) {
  FL_CHECK(sh.rows >= 0 && sh.d >= 1, "layer_norm: expected rows >= 0 and D >= 1, got rows=",
           sh.rows, " D=", sh.d);
}

}  // namespace

void batch_norm_forward_train(float* y, double* save_mean, double* save_invstd,
                              float* running_mean, float* running_var, const float* x,
                              const float* gamma, const float* beta, const BatchNormShape& shape,
                              double momentum, double eps) {
  check_shape(shape);
  FL_CHECK(eps > 0.0, "eps: expected > 0, got ", eps);
  // The unbiased variance divides by M - 1.
  FL_CHECK(shape.n * shape.s > 1 || running_var == nullptr,
           "x: expected more than 1 value per channel when training, got N*H*W = ",
           shape.n * shape.s);
  FL_SIMD_SELECT(norm_kernels)
      .batch_norm_forward(y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta,
                          shape, true, momentum, eps);
}

void batch_norm_forward_eval(float* y, double* save_mean, double* save_invstd, const float* x,
                             const float* running_mean, const float* running_var,
                             const float* gamma, const float* beta, const BatchNormShape& shape,
                             double eps) {
  check_shape(shape);
  FL_CHECK(eps > 0.0, "eps: expected > 0, got ", eps);
  FL_CHECK(running_mean && running_var, "running_mean/running_var: required in eval mode");
  // Eval mode only reads the running statistics (the loops update them only when
  // training); the const_cast lets both modes share one entry of the table.
  FL_SIMD_SELECT(norm_kernels)
      .batch_norm_forward(y, save_mean, save_invstd, const_cast<float*>(running_mean),
                          const_cast<float*>(running_var), x, gamma, beta, shape, false, 0.0, eps);
}

void batch_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dout,
                         const float* x, const double* save_mean, const double* save_invstd,
                         const float* gamma, const BatchNormShape& shape, bool training) {
  check_shape(shape);
  FL_SIMD_SELECT(norm_kernels)
      .batch_norm_backward(dx, dgamma, dbeta, dout, x, save_mean, save_invstd, gamma, shape, training);
}

void layer_norm_forward(float* y, double* save_mean, double* save_invstd, const float* x,
                        const float* weight, const float* bias, const LayerNormShape& shape,
                        double eps) {
  check_shape(shape);
  FL_CHECK(eps > 0.0, "eps: expected > 0, got ", eps);
  FL_SIMD_SELECT(norm_kernels).layer_norm_forward(y, save_mean, save_invstd, x, weight, bias, shape, eps);
}

void layer_norm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                         const float* x, const double* save_mean, const double* save_invstd,
                         const float* weight, const LayerNormShape& shape) {
  check_shape(shape);
  FL_SIMD_SELECT(norm_kernels)
      .layer_norm_backward(dx, dweight, dbias, dout, x, save_mean, save_invstd, weight, shape);
}

}  // namespace fastlayers
