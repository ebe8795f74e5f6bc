// CPU entry points of the masked convolution: checks, the side-padded copies and packed weights
// the implicit GEMM reads (masked_conv_plan.h, tap_gemm_inputs.h), dispatch to the
// instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/conv2d.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include "../masked_conv_checks.h"
#include "conv_path.h"
#include "kernels.h"
#include "tap_gemm_inputs.h"

namespace gen_ext {
namespace cpu {
namespace {

// ---- the dense alternative: oneDNN's convolution of the masked weight ----
// It multiplies what the kernels skip (masked taps, the zero padding), which is exact while every
// value is finite and NaN otherwise (0 * inf). Every non-finite input reaches some result through
// those products, so a finite sum of the results proves the dense path exact; a non-finite sum
// (or an overflow) sends the call to the kernel, which matches the reference in every case.

// [Cout, Cin, kh, kw], true at the taps the mask drops.
at::Tensor dropped_taps(const PixelCnnMask& m, const at::Tensor& like) {
  auto dropped = at::empty({m.out_channels, m.in_channels, m.kh, m.kw}, like.options().dtype(at::kBool));
  bool* d = dropped.data_ptr<bool>();
  for (int64_t o = 0; o < m.out_channels; ++o)
    for (int64_t i = 0; i < m.in_channels; ++i)
      for (int64_t r = 0; r < m.kh; ++r)
        for (int64_t c = 0; c < m.kw; ++c) *d++ = !m.kept(o, i, r, c);
  return dropped;
}

// Identifies a call's shape for the path choice (conv_path.h): everything the speed of either
// path depends on.
std::string path_key(const char* op, const at::Tensor& x, const PixelCnnMask& m, bool bias) {
  std::ostringstream key;
  key << op << " x[" << x.size(0) << "," << m.in_channels << "," << x.size(2) << ","
      << x.size(3) << "] out " << m.out_channels << " kernel " << m.kh << "x" << m.kw << " mask "
      << (m.type_b ? "B" : "A") << (m.groups > 1 ? " colour" : "") << " "
      << c10::toString(x.scalar_type()) << (bias ? " bias" : "") << " " << cpu_capability()
      << " " << at::get_num_threads() << " threads";
  return key.str();
}

at::Tensor kernel_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          const PixelCnnMask& mask) {
  const TapPlan plan = forward_plan(mask);
  const auto src = side_padded(x, mask.centre_col());
  const auto packed = packed_taps(weight, tap_index(plan, mask.kw), false);
  auto out = at::empty({x.size(0), mask.out_channels, x.size(2), x.size(3)}, x.options());
  const at::Tensor bias_c = bias.defined() ? bias.contiguous() : at::Tensor();
  GEN_EXT_DISPATCH_ISA(
      masked_conv_gemm_rows(src, packed, plan, bias_c, !all_finite(packed), out));
  return out;
}

// The dense forward, where a finite result proves it exact.
std::optional<at::Tensor> dense_forward(const at::Tensor& x, const at::Tensor& weight,
                                        const at::Tensor& bias, const PixelCnnMask& mask) {
  const auto masked = weight.masked_fill(dropped_taps(mask, weight), 0);
  const std::optional<at::Tensor> b = bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt;
  auto out = at::conv2d(x, masked, b, {1, 1}, {mask.centre_row(), mask.centre_col()}).contiguous();
  if (!all_finite(out)) return std::nullopt;
  return out;
}

at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias_opt, c10::string_view mask_type,
                   int64_t color_channels) {
  const at::Tensor bias = bias_opt.has_value() ? *bias_opt : at::Tensor();
  const auto mask = check_masked_conv_inputs(x, weight, bias, std::string(mask_type),
                                             color_channels, "masked_conv2d");
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  if (B * H * W == 0 || mask.out_channels == 0) {
    return at::empty({B, mask.out_channels, H, W}, x.options());
  }
  if (mask.in_channels == 0) {  // nothing to convolve: the bias alone
    auto out = at::zeros({B, mask.out_channels, H, W}, x.options());
    return bias.defined() ? out.add_(bias.view({1, -1, 1, 1})) : out;
  }
  return run_on_conv_path<at::Tensor>(
      [&] { return path_key("masked_conv2d", x, mask, bias.defined()); },
      [&] { return kernel_forward(x, weight, bias, mask); },
      [&] { return dense_forward(x, weight, bias, mask); });
}

// The kernels' input gradient and weight gradient (of the kept taps; the masked ones are zero).
std::tuple<at::Tensor, at::Tensor> kernel_backward(const at::Tensor& grad, const at::Tensor& x,
                                                   const at::Tensor& weight,
                                                   const PixelCnnMask& mask) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t cc = mask.centre_col();
  // input gradient: the transposed taps over the output gradient padded at the sides
  const TapPlan input_plan = input_grad_plan(mask);
  const auto index = tap_index(input_plan, mask.kw);
  auto grad_x = at::empty(x.sizes(), x.options());
  const auto packed = packed_taps(weight, index, true);
  GEN_EXT_DISPATCH_ISA(masked_conv_gemm_rows(side_padded(grad, cc), packed, input_plan,
                                             at::Tensor(), !all_finite(packed), grad_x));
  // weight gradient of the kept taps; the masked ones stay zero
  const TapPlan plan = forward_plan(mask);
  auto grad_packed = at::zeros({static_cast<int64_t>(plan.dy.size()), mask.in_channels,
                                mask.out_channels}, x.options());
  auto grad_pixels = at::empty({B, H, W, mask.out_channels}, x.options());
  GEN_EXT_DISPATCH_ISA(to_channels_last(grad.contiguous(), grad_pixels));
  GEN_EXT_DISPATCH_ISA(
      masked_conv_weight_grad(side_padded(x, cc), grad_pixels, plan, grad_packed));
  auto grad_weight = at::zeros({mask.out_channels, mask.in_channels, mask.kh * mask.kw},
                               weight.options());
  grad_weight.index_copy_(2, index, grad_packed.permute({2, 1, 0}));
  return {grad_x, grad_weight.view(weight.sizes())};
}

using Grads = std::tuple<at::Tensor, at::Tensor>;

// The dense backward, where it is exact. A finite input gradient proves the output gradient
// finite (each of its values meets the centre tap of some input pixel), and with it the weight
// gradient of the kept taps exact.
std::optional<Grads> dense_backward(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& weight, const PixelCnnMask& mask) {
  const auto dropped = dropped_taps(mask, weight);
  const auto masked = weight.masked_fill(dropped, 0);
  auto [grad_x, grad_weight, grad_bias] = at::convolution_backward(
      grad, x, masked, std::nullopt, {1, 1}, {mask.centre_row(), mask.centre_col()}, {1, 1},
      false, {0, 0}, 1, {true, true, false});
  if (!all_finite(grad_x)) return std::nullopt;
  return Grads{grad_x.contiguous(), grad_weight.contiguous().masked_fill_(dropped, 0)};
}

Grads backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
               c10::string_view mask_type, int64_t color_channels) {
  const char* op = "masked_conv2d_backward";
  const auto mask = check_masked_conv_inputs(x, weight, at::Tensor(), std::string(mask_type),
                                             color_channels, op);
  check_conv2d_grad(grad, x, weight, op);
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  if (B * H * W == 0 || mask.out_channels == 0 || mask.in_channels == 0) {
    return {at::zeros(x.sizes(), x.options()), at::zeros(weight.sizes(), weight.options())};
  }
  return run_on_conv_path<Grads>(
      [&] { return path_key(op, x, mask, false); },
      [&] { return kernel_backward(grad, x, weight, mask); },
      [&] { return dense_backward(grad, x, weight, mask); });
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("masked_conv2d", &forward);
  m.impl("masked_conv2d_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
