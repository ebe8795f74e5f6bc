// CPU entry points of the fused gated activation: checks, layout, dispatch to the
// instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "../gated_checks.h"
#include "../memory_layout.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& residual) {
  constexpr const char* op = "gated_activation";
  check_gated_x(x, op);
  if (residual.has_value()) check_gated_like_output(*residual, x, op, "residual");
  const auto layout = kernel_layout(x);
  auto out = at::empty(gated_output_shape(x), x.options().memory_format(layout));
  if (out.numel() == 0) return out;
  const auto [B, N] = gated_rows(out, layout);
  auto out_rows = as_rows(out, B, N);
  const at::Tensor r =
      residual.has_value() ? as_rows(residual->contiguous(layout), B, N) : at::Tensor();
  GEN_EXT_DISPATCH_ISA(gated_forward(as_rows(x.contiguous(layout), B, 2 * N), r, out_rows));
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x) {
  constexpr const char* op = "gated_activation_backward";
  check_gated_x(x, op);
  check_gated_like_output(grad, x, op, "grad");
  const auto layout = kernel_layout(x);
  auto grad_x = at::empty(x.sizes(), x.options().memory_format(layout));
  if (x.numel() == 0) return grad_x;
  const auto [B, N] = gated_rows(grad, layout);
  auto grad_x_rows = as_rows(grad_x, B, 2 * N);
  // A fully broadcast gradient (every stride 0: the backward of out.sum()) is read in place;
  // anything else as dense rows.
  const bool broadcast = std::all_of(grad.strides().begin(), grad.strides().end(),
                                     [](int64_t s) { return s == 0; });
  const auto g =
      broadcast ? grad.as_strided({B, N}, {0, 0}) : as_rows(grad.contiguous(layout), B, N);
  GEN_EXT_DISPATCH_ISA(gated_backward(g, as_rows(x.contiguous(layout), B, 2 * N), grad_x_rows));
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("gated_activation", &forward);
  m.impl("gated_activation_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
