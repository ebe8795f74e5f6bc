#pragma once
// Argument checks of the masked convolution ops, shared by the CPU and CUDA kernels.
// gen_ext/ops/masked_conv.py checks the same things with the same messages for the fake kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string>

#include "gen_ext/pixelcnn_mask.h"

namespace gen_ext {

inline void check_masked_conv_same(const at::Tensor& t, const at::Tensor& x, const char* op,
                                   const char* name) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must match x in dtype and device (", x.scalar_type(), " on ", x.device(),
              "), got ", t.scalar_type(), " on ", t.device());
}

// Checks the inputs (bias may be undefined) and returns the mask they describe.
inline PixelCnnMask check_masked_conv_inputs(const at::Tensor& x, const at::Tensor& weight,
                                             const at::Tensor& bias, const std::string& mask_type,
                                             int64_t color_channels, const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [B, C, H, W], got ", x.dim(), "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(weight.dim() == 4, op,
              ": weight must be 4-D [out_channels, in_channels, kh, kw], got ", weight.dim(),
              "-D");
  check_masked_conv_same(weight, x, op, "weight");
  TORCH_CHECK(weight.size(1) == x.size(1), op, ": weight has ", weight.size(1),
              " input channels but x has ", x.size(1));
  TORCH_CHECK(weight.size(2) % 2 == 1 && weight.size(3) % 2 == 1, op,
              ": weight's kernel size must be odd in both dimensions, got ", weight.size(2), "x",
              weight.size(3));
  TORCH_CHECK(mask_type == "A" || mask_type == "B", op, ": mask_type must be 'A' or 'B', got '",
              mask_type, "'");
  TORCH_CHECK(color_channels == 1 || color_channels == 3, op,
              ": color_channels must be 1 or 3, got ", color_channels);
  if (color_channels == 3) {
    TORCH_CHECK(weight.size(0) % 3 == 0 && weight.size(1) % 3 == 0, op,
                ": with color_channels=3 the input and output channel counts must be divisible "
                "by 3, got ",
                weight.size(1), " and ", weight.size(0));
  }
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op,
                ": bias must have shape [", weight.size(0), "], got ", bias.sizes());
    check_masked_conv_same(bias, x, op, "bias");
  }
  return PixelCnnMask{weight.size(0), weight.size(1), weight.size(2), weight.size(3),
                      mask_type == "B", color_channels};
}

inline void check_masked_conv_grad(const at::Tensor& grad, const at::Tensor& x,
                                   const at::Tensor& weight, const char* op) {
  const std::vector<int64_t> want{x.size(0), weight.size(0), x.size(2), x.size(3)};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), op,
              ": grad must have the output's shape ", at::IntArrayRef(want), ", got ",
              grad.sizes());
  check_masked_conv_same(grad, x, op, "grad");
}

}  // namespace gen_ext
