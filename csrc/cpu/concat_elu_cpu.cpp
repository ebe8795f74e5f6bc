// CPU entry points of the fused concat-ELU with dropout: checks, layout, dispatch to the
// instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../concat_elu_checks.h"
#include "../memory_layout.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

at::Tensor forward(const at::Tensor& x, double p, int64_t seed, at::IntArrayRef pad) {
  constexpr const char* op = "concat_elu";
  check_concat_elu_inputs(x, p, op);
  check_concat_elu_pad(x, pad, op);
  const auto layout = kernel_layout(x);
  auto out = at::empty(concat_elu_output_shape(x, pad), x.options().memory_format(layout));
  if (x.numel() == 0) return out.zero_();  // an empty x may still have a border
  GEN_EXT_DISPATCH_ISA(
      concat_elu_forward(x.contiguous(layout), p, seed, pad, is_channels_last(layout), out));
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed,
                    at::IntArrayRef pad) {
  constexpr const char* op = "concat_elu_backward";
  check_concat_elu_inputs(x, p, op);
  check_concat_elu_pad(x, pad, op);
  check_concat_elu_grad(grad, x, pad, op);
  const auto layout = kernel_layout(x);
  auto grad_x = at::empty(x.sizes(), x.options().memory_format(layout));
  if (x.numel() == 0) return grad_x;
  GEN_EXT_DISPATCH_ISA(concat_elu_backward(grad.contiguous(layout), x.contiguous(layout), p, seed,
                                           pad, is_channels_last(layout), grad_x));
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("concat_elu", &forward);
  m.impl("concat_elu_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
