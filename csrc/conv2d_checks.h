#pragma once
// The argument checks every 2-D convolution op shares (masked_conv_checks.h,
// shifted_conv_checks.h): x and weight 4-D, float, on one device, the channels agreeing; a bias
// of the output channels; an incoming gradient of the output's shape. gen_ext/ops/arg_checks.py
// has the same checks with the same messages for the fake kernels and the Triton kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <vector>

namespace gen_ext {

inline void check_conv2d_same_as_x(const at::Tensor& t, const at::Tensor& x, const char* op,
                                   const char* name) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must match x in dtype and device (", x.scalar_type(), " on ", x.device(),
              "), got ", t.scalar_type(), " on ", t.device());
}

// x [B, C, H, W] float32/float64 and weight [out_channels, C, kh, kw] like it.
inline void check_conv2d_operands(const at::Tensor& x, const at::Tensor& weight, const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [B, C, H, W], got ", x.dim(), "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(weight.dim() == 4, op,
              ": weight must be 4-D [out_channels, in_channels, kh, kw], got ", weight.dim(),
              "-D");
  check_conv2d_same_as_x(weight, x, op, "weight");
  TORCH_CHECK(weight.size(1) == x.size(1), op, ": weight has ", weight.size(1),
              " input channels but x has ", x.size(1));
}

// bias (may be undefined): [out_channels], like x.
inline void check_conv2d_bias(const at::Tensor& bias, const at::Tensor& weight,
                              const at::Tensor& x, const char* op) {
  if (!bias.defined()) return;
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": bias must have shape [",
              weight.size(0), "], got ", bias.sizes());
  check_conv2d_same_as_x(bias, x, op, "bias");
}

// grad: the output's shape [B, out_channels, H, W] (stride 1, 'same' size), like x.
inline void check_conv2d_grad(const at::Tensor& grad, const at::Tensor& x,
                              const at::Tensor& weight, const char* op) {
  const std::vector<int64_t> want{x.size(0), weight.size(0), x.size(2), x.size(3)};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), op,
              ": grad must have the output's shape ", at::IntArrayRef(want), ", got ",
              grad.sizes());
  check_conv2d_same_as_x(grad, x, op, "grad");
}

}  // namespace gen_ext
