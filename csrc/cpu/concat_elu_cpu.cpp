// CPU entry points of the fused concat-ELU with dropout: checks, layout, dispatch to the
// instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../concat_elu_checks.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

at::Tensor forward(const at::Tensor& x, double p, int64_t seed) {
  check_concat_elu_inputs(x, p, "concat_elu");
  auto out = at::empty(concat_elu_output_shape(x), x.options());
  if (out.numel() == 0) return out;
  const int64_t B = x.size(0), N = x.numel() / B;
  auto out_rows = out.view({B, 2 * N});
  GEN_EXT_DISPATCH_ISA(concat_elu_forward(x.contiguous().view({B, N}), p, seed, out_rows));
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed) {
  constexpr const char* op = "concat_elu_backward";
  check_concat_elu_inputs(x, p, op);
  check_concat_elu_grad(grad, x, op);
  auto grad_x = at::empty(x.sizes(), x.options());
  if (x.numel() == 0) return grad_x;
  const int64_t B = x.size(0), N = x.numel() / B;
  auto grad_x_rows = grad_x.view({B, N});
  GEN_EXT_DISPATCH_ISA(concat_elu_backward(grad.contiguous().view({B, 2 * N}),
                                           x.contiguous().view({B, N}), p, seed, grad_x_rows));
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("concat_elu", &forward);
  m.impl("concat_elu_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
