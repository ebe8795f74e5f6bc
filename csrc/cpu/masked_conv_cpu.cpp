// CPU entry points of the masked convolution: checks, the side-padded copies and packed weights
// the implicit GEMM reads (masked_conv_plan.h), dispatch to the instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/all.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

#include "../masked_conv_checks.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

// t [B, C, H, W] with `side` zero columns left and right: [B, C, H, side + W + side], contiguous.
// Rows are not padded: the kernels leave out taps whose row is outside the image.
at::Tensor side_padded(const at::Tensor& t, int64_t side) {
  auto out = at::empty({t.size(0), t.size(1), t.size(2), side + t.size(3) + side}, t.options());
  out.narrow(3, 0, side).zero_();
  out.narrow(3, side + t.size(3), side).zero_();
  out.narrow(3, side, t.size(3)).copy_(t);
  return out;
}

// Whether the implicit GEMM must leave out the taps outside the image one edge pixel at a time
// (gemm_rows' exact_edges): only a non-finite weight makes the zero padding matter, and checking
// the packed weights costs a pass over them, nothing next to the convolution.
bool has_nonfinite(const at::Tensor& packed) {
  return !at::isfinite(packed).all().item<bool>();
}

// Positions of the plan's taps in the flattened kh*kw kernel.
at::Tensor tap_index(const TapPlan& plan, int64_t kw) {
  std::vector<int64_t> index;
  for (size_t t = 0; t < plan.dy.size(); ++t) index.push_back(plan.dy[t] * kw + plan.dx[t]);
  return at::tensor(index, at::kLong);
}

// The kept taps of weight [Cout, Cin, kh, kw] as [T, Cin, Cout] (forward) or [T, Cout, Cin]
// (input gradient): one contiguous k-by-n matrix per tap.
at::Tensor packed_taps(const at::Tensor& weight, const at::Tensor& index, bool transposed) {
  auto taps = weight.reshape({weight.size(0), weight.size(1), -1}).index_select(2, index);
  return (transposed ? taps.permute({2, 0, 1}) : taps.permute({2, 1, 0})).contiguous();
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
  const TapPlan plan = forward_plan(mask);
  const auto src = side_padded(x, mask.centre_col());
  const auto packed = packed_taps(weight, tap_index(plan, mask.kw), false);
  auto out = at::empty({B, mask.out_channels, H, W}, x.options());
  const at::Tensor bias_c = bias.defined() ? bias.contiguous() : at::Tensor();
  GEN_EXT_DISPATCH_ISA(
      masked_conv_gemm_rows(src, packed, plan, bias_c, has_nonfinite(packed), out));
  return out;
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                            const at::Tensor& weight, c10::string_view mask_type,
                                            int64_t color_channels) {
  const char* op = "masked_conv2d_backward";
  const auto mask = check_masked_conv_inputs(x, weight, at::Tensor(), std::string(mask_type),
                                             color_channels, op);
  check_masked_conv_grad(grad, x, weight, op);
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  if (B * H * W == 0 || mask.out_channels == 0 || mask.in_channels == 0) {
    return {at::zeros(x.sizes(), x.options()), at::zeros(weight.sizes(), weight.options())};
  }
  const int64_t cc = mask.centre_col();
  // input gradient: the transposed taps over the output gradient padded at the sides
  const TapPlan input_plan = input_grad_plan(mask);
  const auto index = tap_index(input_plan, mask.kw);
  auto grad_x = at::empty(x.sizes(), x.options());
  const auto packed = packed_taps(weight, index, true);
  GEN_EXT_DISPATCH_ISA(masked_conv_gemm_rows(side_padded(grad, cc), packed, input_plan,
                                             at::Tensor(), has_nonfinite(packed), grad_x));
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

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("masked_conv2d", &forward);
  m.impl("masked_conv2d_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
