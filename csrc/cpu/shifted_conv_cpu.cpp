// CPU entry points of the shifted convolutions: checks, then either the masked convolution's
// implicit GEMM over a tap plan of every tap (shifted_conv_plan.h; no copy padded with rows) or,
// where it is faster for the shape and exact, oneDNN's convolution of a padded copy.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/conv2d.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include "../memory_layout.h"
#include "../shifted_conv_checks.h"
#include "conv_path.h"
#include "kernels.h"
#include "shifted_conv_plan.h"
#include "tap_gemm_inputs.h"

namespace gen_ext {
namespace cpu {
namespace {

// Identifies a call's shape for the path choice (conv_path.h): everything the speed of either
// path depends on.
std::string path_key(const char* op, const at::Tensor& x, const ShiftedConv& c,
                     const std::string& shift, bool bias) {
  std::ostringstream key;
  key << op << " x[" << x.size(0) << "," << c.in_channels << "," << x.size(2) << ","
      << x.size(3) << "] out " << c.out_channels << " kernel " << c.kh << "x" << c.kw
      << " shift " << shift << " " << c10::toString(x.scalar_type()) << (bias ? " bias" : "")
      << " " << cpu_capability() << " " << at::get_num_threads() << " threads";
  return key.str();
}

at::Tensor kernel_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          const ShiftedConv& c) {
  const TapPlan plan = shifted_forward_plan(c);
  const auto src = side_padded(x, c.side());
  const auto packed = packed_taps(weight, tap_index(plan, c.kw), false);
  auto out = at::empty({x.size(0), c.out_channels, x.size(2), x.size(3)}, x.options());
  const at::Tensor bias_c = bias.defined() ? bias.contiguous() : at::Tensor();
  GEN_EXT_DISPATCH_ISA(
      masked_conv_gemm_rows(src, packed, plan, bias_c, !all_finite(packed), out));
  return out;
}

// ---- the dense alternative: oneDNN's convolution of x padded on top and at the sides ----
// It multiplies the padding's zeros, which the kernels (and the reference) never do. Only a
// non-finite factor makes that matter (0 * inf is NaN), and the checks look at the small tensors:
// - forward: the padding meets only weights, so a finite weight makes the dense output exact,
//   whatever x holds (every product with an image value is one the reference takes too);
// - backward: the input gradient's products (output gradient times weight) are the reference's
//   own; the weight gradient's also multiply the padding by output gradients, and a non-finite
//   one there makes that weight's gradient NaN, so a finite weight gradient proves it exact.

at::Tensor padded_input(const at::Tensor& x, const ShiftedConv& c) {
  return at::constant_pad_nd(x, {c.left, c.right, c.top, 0});
}

// The dense forward, where it is exact (a finite weight).
std::optional<at::Tensor> dense_forward(const at::Tensor& x, const at::Tensor& weight,
                                        const at::Tensor& bias, const ShiftedConv& c) {
  if (!all_finite(weight)) return std::nullopt;
  const std::optional<at::Tensor> b = bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt;
  return at::conv2d(padded_input(x, c), weight, b).contiguous(kernel_layout(x));
}

at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias_opt, c10::string_view shift_view) {
  const at::Tensor bias = bias_opt.has_value() ? *bias_opt : at::Tensor();
  const std::string shift(shift_view);
  const auto c = check_shifted_conv_inputs(x, weight, bias, shift, "shifted_conv2d");
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  // the output in x's layout (memory_layout.h), so that a channels-last model stays channels last
  // from one convolution to the next; the dense path computes in it, the kernel's NCHW result is
  // copied into it
  const auto layout = kernel_layout(x);
  if (B * H * W == 0 || c.out_channels == 0) {
    return at::empty({B, c.out_channels, H, W}, x.options().memory_format(layout));
  }
  if (c.in_channels == 0) {  // nothing to convolve: the bias alone
    auto out = at::zeros({B, c.out_channels, H, W}, x.options().memory_format(layout));
    return bias.defined() ? out.add_(bias.view({1, -1, 1, 1})) : out;
  }
  return run_on_conv_path<at::Tensor>(
      [&] { return path_key("shifted_conv2d", x, c, shift, bias.defined()); },
      [&] { return kernel_forward(x, weight, bias, c).contiguous(layout); },
      [&] { return dense_forward(x, weight, bias, c); });
}

// The kernels' input gradient and weight gradient.
std::tuple<at::Tensor, at::Tensor> kernel_backward(const at::Tensor& grad, const at::Tensor& x,
                                                   const at::Tensor& weight,
                                                   const ShiftedConv& c) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  // input gradient: the mirrored taps over the output gradient padded at the sides
  const TapPlan input_plan = shifted_input_grad_plan(c);
  const auto index = tap_index(input_plan, c.kw);
  auto grad_x = at::empty(x.sizes(), x.options());
  const auto packed = packed_taps(weight, index, true);
  GEN_EXT_DISPATCH_ISA(masked_conv_gemm_rows(side_padded(grad, c.side()), packed, input_plan,
                                             at::Tensor(), !all_finite(packed), grad_x));
  // weight gradient: the forward plan over x padded at the sides
  const TapPlan plan = shifted_forward_plan(c);
  auto grad_packed =
      at::zeros({static_cast<int64_t>(plan.dy.size()), c.in_channels, c.out_channels}, x.options());
  auto grad_pixels = at::empty({B, H, W, c.out_channels}, x.options());
  GEN_EXT_DISPATCH_ISA(to_channels_last(grad.contiguous(), grad_pixels));
  GEN_EXT_DISPATCH_ISA(
      masked_conv_weight_grad(side_padded(x, c.side()), grad_pixels, plan, grad_packed));
  // every tap is in the plan, in the weight's (row, column) order
  auto grad_weight = grad_packed.permute({2, 1, 0}).reshape(weight.sizes()).contiguous();
  return {grad_x, grad_weight};
}

using Grads = std::tuple<at::Tensor, at::Tensor>;

// The dense backward, where it is exact (a finite weight gradient). (Running it channels last
// for an NCHW x gained nothing measurable: oneDNN's 13-15% there went to converting grad.)
std::optional<Grads> dense_backward(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& weight, const ShiftedConv& c) {
  auto [grad_padded, grad_weight, grad_bias] = at::convolution_backward(
      grad, padded_input(x, c), weight, std::nullopt, {1, 1}, {0, 0}, {1, 1}, false, {0, 0}, 1,
      {true, true, false});
  if (!all_finite(grad_weight)) return std::nullopt;
  auto grad_x = grad_padded.narrow(2, c.top, x.size(2)).narrow(3, c.left, x.size(3)).contiguous();
  return Grads{grad_x, grad_weight.contiguous()};
}

Grads backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
               c10::string_view shift_view) {
  const char* op = "shifted_conv2d_backward";
  const std::string shift(shift_view);
  const auto c = check_shifted_conv_inputs(x, weight, at::Tensor(), shift, op);
  check_conv2d_grad(grad, x, weight, op);
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  if (B * H * W == 0 || c.out_channels == 0 || c.in_channels == 0) {
    return {at::zeros(x.sizes(), x.options()), at::zeros(weight.sizes(), weight.options())};
  }
  return run_on_conv_path<Grads>(
      [&] { return path_key(op, x, c, shift, false); },
      [&] { return kernel_backward(grad, x, weight, c); },
      [&] { return dense_backward(grad, x, weight, c); });
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("shifted_conv2d", &forward);
  m.impl("shifted_conv2d_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
