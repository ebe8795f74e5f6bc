// CPU entry points of the fused gated activation: checks, layout, dispatch to the
// instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "../gated_checks.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& residual) {
  constexpr const char* op = "gated_activation";
  check_gated_x(x, op);
  if (residual.has_value()) check_gated_like_output(*residual, x, op, "residual");
  auto out = at::empty(gated_output_shape(x), x.options());
  if (out.numel() == 0) return out;
  const int64_t B = x.size(0), N = out.numel() / B;
  auto out_rows = out.view({B, N});
  const at::Tensor r = residual.has_value() ? residual->contiguous().view({B, N}) : at::Tensor();
  GEN_EXT_DISPATCH_ISA(gated_forward(x.contiguous().view({B, 2 * N}), r, out_rows));
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x) {
  constexpr const char* op = "gated_activation_backward";
  check_gated_x(x, op);
  check_gated_like_output(grad, x, op, "grad");
  auto grad_x = at::empty(x.sizes(), x.options());
  if (x.numel() == 0) return grad_x;
  const int64_t B = x.size(0), N = grad.numel() / B;
  auto grad_x_rows = grad_x.view({B, 2 * N});
  // A fully broadcast gradient (every stride 0: the backward of out.sum()) is read in place;
  // anything else as dense rows.
  const bool broadcast = std::all_of(grad.strides().begin(), grad.strides().end(),
                                     [](int64_t s) { return s == 0; });
  const auto g = broadcast ? grad.as_strided({B, N}, {0, 0}) : grad.contiguous().view({B, N});
  GEN_EXT_DISPATCH_ISA(gated_backward(g, x.contiguous().view({B, 2 * N}), grad_x_rows));
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("gated_activation", &forward);
  m.impl("gated_activation_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
